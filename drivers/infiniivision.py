"""Keysight InfiniiVision oscilloscopes: pymeasure's ``KeysightDSOX1102G`` plus edge trigger,
single acquisitions and the binary waveform transfer (one transaction per waveform)."""

from __future__ import annotations

import logging

import numpy as np
from pymeasure.instruments import Instrument
from pymeasure.instruments.keysight.keysightDSOX1102G import Channel, KeysightDSOX1102G
from pymeasure.instruments.validators import strict_discrete_set, strict_range

log = logging.getLogger(__name__)

BYTE_DTYPES = {"word": ">u2", "byte": "u1"}


class InfiniiVision(KeysightDSOX1102G):
    """A Keysight InfiniiVision X-series oscilloscope (DSOX1000G ... DSOX3000T).

    .. code-block:: python

        scope = InfiniiVision("TCPIP::192.168.1.40::5025::SOCKET")
        scope.timebase_range, scope.trigger_source = 2e-3, "EXT"
        scope.single()                       # arm; then trigger the generator
        t, v = scope.read_waveform(1, points=100_000)   # one binary transaction for the data
    """

    SOURCE_LIMITS: dict[str, str] = {}  # measures only: nothing to limit

    def __init__(self, adapter, name="Keysight InfiniiVision oscilloscope", **kwargs):
        # the stock __init__ hard-codes timeout=6000: a station's timeout option would clash
        kwargs.setdefault("timeout", 6000)
        super(KeysightDSOX1102G, self).__init__(adapter, name, **kwargs)
        self.ch1, self.ch2 = Channel(self, 1), Channel(self, 2)

    waveform_points = Instrument.control(
        ":WAVeform:POINts?", ":WAVeform:POINts %d",
        """Control the number of points :WAVeform:DATA? returns at most (int strictly from 100
        to 8e6; up to 62 500 in the normal points mode, up to the record in maximum/raw).""",
        validator=strict_range, values=[100, 8_000_000], cast=int)

    trigger_source = Instrument.control(
        ":TRIGger:EDGE:SOURce?", ":TRIGger:EDGE:SOURce %s",
        """Control the edge trigger source (str: "CHAN1" ... "CHAN4" or "EXT").""",
        validator=strict_discrete_set, values=["CHAN1", "CHAN2", "CHAN3", "CHAN4", "EXT"])

    trigger_level = Instrument.control(
        ":TRIGger:EDGE:LEVel?", ":TRIGger:EDGE:LEVel %g",
        """Control the edge trigger level in V (float strictly from -100 to 100).""",
        validator=strict_range, values=[-100, 100])

    trigger_sweep = Instrument.control(
        ":TRIGger:SWEep?", ":TRIGger:SWEep %s",
        """Control the trigger sweep (str: "AUTO" triggers itself without an edge, "NORM"
        waits for one).""",
        validator=strict_discrete_set, values=["AUTO", "NORM"])

    timebase_reference = Instrument.control(
        ":TIMebase:REFerence?", ":TIMebase:REFerence %s",
        """Control where the trigger reference sits on screen (str: "LEFT", "CENT", "RIGH").""",
        validator=strict_discrete_set, values=["LEFT", "CENT", "RIGH"])

    def setup_channel(self, channel: int, scale: float, offset: float) -> None:
        """Set a channel on, DC coupled, with ``scale`` V/div and ``offset`` V (one write)."""
        strict_range(channel, [1, 4])
        self.write(f":CHANnel{channel}:DISPlay 1;:CHANnel{channel}:COUPling DC;"
                   f":CHANnel{channel}:SCALe {scale:g};:CHANnel{channel}:OFFSet {offset:g}")

    def single(self) -> None:
        """Arm one acquisition and return once the scope is armed (the Run bit of the
        operation condition register, read in the same message): a trigger sent to another
        instrument afterwards cannot arrive before the scope is armed."""
        reply = self.ask(":SINGle;:OPERegister:CONDition?")
        if not int(float(reply)) & 8:
            raise ValueError(f"{self.name}: not armed after :SINGle (condition {reply.strip()})")

    def wait_acquired(self, timeout_s: float = 30.0) -> None:
        """Block until the armed acquisition has completed (``*OPC?``), for up to ``timeout_s``
        (the VISA timeout is raised for this query only: a slow trigger or a long time range
        must not look like a dead instrument)."""
        connection = getattr(self.adapter, "connection", None)
        old = getattr(connection, "timeout", None)
        if isinstance(old, (int, float)):
            connection.timeout = max(old, 1000.0 * timeout_s)
        try:
            self.ask("*OPC?")
        finally:
            if isinstance(old, (int, float)):
                connection.timeout = old

    def read_waveform(self, channel: int, points: int = 100_000, fmt: str = "word"):
        """Return (time relative to the trigger in s, voltage in V) of ``channel``'s last
        acquisition, up to ``points`` points in raw mode: configuration in one write, the
        preamble in one query, the data in ONE binary transaction (IEEE 488.2 block)."""
        if fmt not in BYTE_DTYPES:
            raise ValueError(f"{self.name}: waveform format {fmt!r} (word or byte)")
        strict_range(channel, [1, 4])
        strict_range(points, [100, 8_000_000])
        self.write(f":WAVeform:SOURce CHANnel{channel};:WAVeform:FORMat {fmt.upper()};"
                   f":WAVeform:BYTeorder MSBFirst;:WAVeform:UNSigned 1;"
                   f":WAVeform:POINts:MODE RAW;:WAVeform:POINts {int(points)}")
        pre = self._waveform_preamble()
        self.write(":WAVeform:DATA?")
        codes = np.frombuffer(self.read_block(), dtype=BYTE_DTYPES[fmt]).astype(float)
        if codes.size != pre["points"]:
            raise ValueError(f"{self.name}: {codes.size} points received, preamble says "
                             f"{pre['points']}")
        volts = (codes - pre["yreference"]) * pre["yincrement"] + pre["yorigin"]
        times = (np.arange(codes.size) - pre["xreference"]) * pre["xincrement"] + pre["xorigin"]
        return times, volts

    def read_block(self) -> bytes:
        """Read one IEEE 488.2 definite-length block (``#<n><length><data>``) and its
        terminator; return the data bytes."""
        head = self.read_bytes(2)
        if head[:1] != b"#" or not head[1:2].isdigit() or head[1:2] == b"0":
            self.adapter.flush_read_buffer()  # drop the rest of the bad reply
            raise ValueError(f"{self.name}: expected a definite-length block, got {head!r}")
        length = int(self.read_bytes(int(head[1:2])))
        data = self.read_bytes(length + 1)  # the data and the terminating newline
        return data[:length]

    def shutdown(self):
        """Leave the scope safe: stop acquiring (it sources nothing)."""
        log.info("Shutting down %s.", self.name)
        self.write(":STOP")
        super().shutdown()
