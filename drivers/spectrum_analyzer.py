"""Keysight X-Series signal analyzers (N9010B EXA, N9030B PXA), Spectrum Analyzer mode.

Extends pymeasure's :class:`~pymeasure.instruments.agilent.AgilentE4408B` (the ESA, whose
frequency, points and sweep-time commands the X-Series keep) with resolution and video
bandwidths, trace averaging, single sweeps completed with ``*OPC?``, the whole trace in ONE
transaction (ASCII or an IEEE 488.2 block of REAL,32), marker peak search and a tested
:meth:`shutdown`. Reference: Keysight X-Series Signal Analyzers, Spectrum Analyzer Mode
User's & Programmer's Reference.
"""

from __future__ import annotations

import logging

import numpy as np
from pymeasure.instruments import Instrument
from pymeasure.instruments.agilent import AgilentE4408B
from pymeasure.instruments.rohdeschwarz import FSL
from pymeasure.instruments.validators import strict_discrete_set, strict_range

from drivers.rf_generator import switch_control

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())



def read_ieee_block(instrument, query: str, dtype: str) -> np.ndarray:
    """Send ``query`` and read its IEEE 488.2 definite-length block (``#<n><length><data>``
    plus the terminator) as numbers of numpy ``dtype``: one transaction. A reply that is no
    block is read to its end (so the next query starts clean) and raises ValueError."""
    instrument.write(query)
    head = instrument.read_bytes(2)
    if head[:1] != b"#" or not head[1:2].isdigit():
        instrument.read()
        raise ValueError(f"{instrument.name}: expected an IEEE 488.2 block, got {head!r}")
    length = int(instrument.read_bytes(int(head[1:2])))
    data = instrument.read_bytes(length)
    instrument.read_bytes(1)  # the message terminator
    return np.frombuffer(data, dtype=dtype).astype(float)


class KeysightN9010B(AgilentE4408B):
    """Keysight X-Series signal analyzer (N9010B EXA, N9030B PXA) in Spectrum Analyzer mode.

    .. code-block:: python

        sa = KeysightN9010B("TCPIP::192.168.1.40::5025::SOCKET")
        sa.configure(center=250e6, span=20e6, rbw=30e3, points=1001, averages=10)
        freqs, dbm = sa.frequencies, sa.sweep_and_read()   # one transaction
        f_peak, p_peak = sa.peak()
        sa.shutdown()
    """

    def __init__(self, adapter, name="Keysight N9010B Signal Analyzer", **kwargs):
        super().__init__(adapter, name, **kwargs)

    center_frequency = Instrument.control(
        ":FREQ:CENT?", ":FREQ:CENT %.12g",
        """Control the centre frequency in Hz (float strictly from 10 to 26.5e9).""",
        validator=strict_range, values=[10, 26.5e9],
    )

    span = Instrument.control(
        ":FREQ:SPAN?", ":FREQ:SPAN %.12g",
        """Control the frequency span in Hz (float strictly from 10 to 26.5e9).""",
        validator=strict_range, values=[10, 26.5e9],
    )

    resolution_bandwidth = Instrument.control(
        ":BAND?", ":BAND %.6g",
        """Control the resolution bandwidth (3 dB) in Hz (float strictly from 1 to 8e6);
        setting it turns auto RBW off.""",
        validator=strict_range, values=[1, 8e6],
    )

    video_bandwidth = Instrument.control(
        ":BAND:VID?", ":BAND:VID %.6g",
        """Control the video bandwidth in Hz (float strictly from 1 to 50e6); setting it turns
        auto VBW off.""",
        validator=strict_range, values=[1, 50e6],
    )

    frequency_points = Instrument.control(
        ":SWE:POIN?", ":SWE:POIN %d",
        """Control the number of trace points (int strictly from 1 to 40001).""",
        validator=strict_range, values=[1, 40001], cast=int,
    )

    averaging_enabled = switch_control(":AVER", """Control whether traces are averaged (bool).""")

    average_count = Instrument.control(
        ":AVER:COUN?", ":AVER:COUN %d",
        """Control the number of sweeps averaged (int strictly from 1 to 10000).""",
        validator=strict_range, values=[1, 10000], cast=int,
    )

    continuous_sweep = switch_control(
        ":INIT:CONT", """Control continuous (True) or single (False) sweeping (bool).""")

    trace_format = Instrument.control(
        ":FORM?", ":FORM %s",
        """Control the trace data format: 'ASC' or 'REAL,32' (str).""",
        validator=strict_discrete_set, values=["ASC", "REAL,32"],
        get_process_list=lambda v: "ASC" if str(v[0]).startswith("ASC") else "REAL,32",
    )

    def configure(self, center: float, span: float, rbw: float | None = None,
                  vbw: float | None = None, points: int = 1001, averages: int = 1,
                  binary: bool = True) -> None:
        """Set up a single-sweep measurement in one message: centre and span (Hz), RBW and VBW
        (Hz, None: auto), points (1 to 40001), power-averaged sweeps (1: averaging off) and
        the trace format (REAL,32 big-endian if ``binary``, else ASCII)."""
        strict_range(center, [10, 26.5e9])
        strict_range(span, [10, 26.5e9])
        strict_range(points, [1, 40001])
        strict_range(averages, [1, 10000])
        parts = [":INIT:CONT 0", f":FREQ:CENT {center:.12g}", f":FREQ:SPAN {span:.12g}",
                 f":SWE:POIN {int(points)}"]
        parts.append(":BAND:AUTO 1" if rbw is None else f":BAND {strict_range(rbw, [1, 8e6]):.6g}")
        parts.append(":BAND:VID:AUTO 1" if vbw is None
                     else f":BAND:VID {strict_range(vbw, [1, 50e6]):.6g}")
        parts.append(f":AVER:TYPE RMS;:AVER:COUN {int(averages)};:AVER {int(averages > 1)}")
        parts.append(":FORM REAL,32;:FORM:BORD NORM" if binary else ":FORM ASC")
        self.write(";".join(parts))
        self._binary = binary

    def single_sweep(self) -> None:
        """Take one (averaged) measurement and wait for it (``:INIT;*OPC?``)."""
        self.ask(":INIT;*OPC?")

    def sweep_and_read(self) -> np.ndarray:
        """Take a measurement and read the whole trace in dBm: ONE transaction
        (``:INIT;*WAI;:TRAC? TRACE1``), in the format set by :meth:`configure`."""
        return self._read_trace(":INIT;*WAI;:TRAC? TRACE1")

    def trace(self, number: int = 1) -> np.ndarray:
        """Read trace ``number`` (1) in dBm as it stands, in one transaction."""
        strict_discrete_set(number, [1])
        return self._read_trace(f":TRAC? TRACE{number}")

    def _read_trace(self, query: str) -> np.ndarray:
        if not getattr(self, "_binary", False):
            return np.asarray(self.values(query), dtype=float)
        return read_ieee_block(self, query, ">f4")

    def peak(self) -> tuple[float, float]:
        """Marker 1 to the highest point; return (frequency in Hz, level in dBm) in one query."""
        reply = self.values(":CALC:MARK1:MAX;:CALC:MARK1:X?;:CALC:MARK1:Y?", separator=";")
        return float(reply[0]), float(reply[1])

    def shutdown(self):
        """Leave the analyzer safe and free-running: abort nothing (it sources nothing), return
        to continuous sweeping with averaging off."""
        log.info("Shutting down %s.", self.name)
        self.write(":AVER 0;:INIT:CONT 1")
        Instrument.shutdown(self)


class RohdeSchwarzFSV(FSL):
    """Rohde & Schwarz FSV signal and spectrum analyzer, Spectrum mode.

    Extends pymeasure's :class:`~pymeasure.instruments.rohdeschwarz.FSL` (frequency, span,
    bandwidths, sweep time, continuous sweep, trace mode, markers are inherited) with the same
    measurement interface as :class:`KeysightN9010B`: :meth:`configure`, :meth:`single_sweep`,
    :meth:`sweep_and_read` (the whole trace in ONE transaction, REAL,32 little-endian or
    ASCII), :meth:`peak`, :attr:`frequencies` and a tested :meth:`shutdown`. Averaging is the
    FSV's AVERage trace mode over ``SWE:COUN`` sweeps. Reference: R&S FSV Operating Manual.
    """

    def __init__(self, adapter, name="Rohde&Schwarz FSV", **kwargs):
        super().__init__(adapter, name, **kwargs)

    sweep_points = Instrument.control(
        "SWE:POIN?", "SWE:POIN %d",
        """Control the number of trace points (int strictly from 101 to 32001).""",
        validator=strict_range, values=[101, 32001], cast=int,
    )

    sweep_count = Instrument.control(
        "SWE:COUN?", "SWE:COUN %d",
        """Control the number of sweeps averaged in AVERage trace mode (int strictly from 0 to
        32767; 0 is the default count, 10).""",
        validator=strict_range, values=[0, 32767], cast=int,
    )

    @property
    def frequencies(self) -> np.ndarray:
        """Get the trace's frequencies in Hz (from start, stop and points)."""
        return np.linspace(self.freq_start, self.freq_stop, self.sweep_points)

    def configure(self, center: float, span: float, rbw: float | None = None,
                  vbw: float | None = None, points: int = 1001, averages: int = 1,
                  binary: bool = True) -> None:
        """Set up a single-sweep measurement in one message: centre and span (Hz), RBW and VBW
        (Hz, None: auto), points (101 to 32001), power-averaged sweeps (1: trace mode WRITe)
        and the trace format (REAL,32 if ``binary``, else ASCII)."""
        strict_range(center, [10, 7e9])
        strict_range(span, [10, 7e9])
        strict_range(points, [101, 32001])
        strict_range(averages, [1, 32767])
        rbw_cmd = ("BAND:RES:AUTO ON" if rbw is None
                   else f"BAND:RES {strict_range(rbw, [1, 10e6]):.6g}")
        vbw_cmd = ("BAND:VID:AUTO ON" if vbw is None
                   else f"BAND:VID {strict_range(vbw, [1, 10e6]):.6g}")
        parts = ["INIT:CONT OFF", f"FREQ:CENT {center:.12g}", f"FREQ:SPAN {span:.12g}",
                 f"SWE:POIN {int(points)}", rbw_cmd, vbw_cmd, "AVER:TYPE POW",
                 f"DISP:TRAC:MODE AVER;SWE:COUN {int(averages)}" if averages > 1
                 else "DISP:TRAC:MODE WRIT",
                 "FORM REAL,32" if binary else "FORM ASC"]
        self.write(";".join(parts))
        self._binary = binary

    def single_sweep(self) -> None:
        """Take one (averaged) measurement and wait for it (``INIT;*OPC?``)."""
        self.ask("INIT;*OPC?")

    def sweep_and_read(self) -> np.ndarray:
        """Take a measurement and read the whole trace in dBm: ONE transaction."""
        query = "INIT;*WAI;TRAC1? TRACE1"
        if getattr(self, "_binary", False):
            return read_ieee_block(self, query, "<f4")
        return np.asarray(self.values(query), dtype=float)

    def peak(self) -> tuple[float, float]:
        """Marker 1 to the highest point; return (frequency in Hz, level in dBm) in one query."""
        reply = self.values("CALC:MARK:MAX;:CALC:MARK:X?;:CALC:MARK:Y?", separator=";")
        return float(reply[0]), float(reply[1])

    def shutdown(self):
        """Leave the analyzer free-running in WRITe trace mode."""
        log.info("Shutting down %s.", self.name)
        self.write("DISP:TRAC:MODE WRIT;INIT:CONT ON")
        Instrument.shutdown(self)
