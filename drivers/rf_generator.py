"""Keysight MXG/EXG analog signal generators (N5183B, N5173B).

Extends pymeasure's :class:`~pymeasure.instruments.agilent.Agilent8257D` (the PSG): the MXG/EXG
keep the PSG's frequency, power, output, AM, pulse-modulation and LF-output commands, so those
properties are inherited as they are; this class adds strict ranges, the list sweep
(``:LIST:FREQ``, ``:LIST:POW``, ``:LIST:DWEL``, ``:FREQ:MODE LIST``, point trigger ``BUS`` or
``IMMediate``, ``:INIT``, ``*TRG``) and a tested :meth:`shutdown`. Reference: Keysight X-Series
Signal Generators SCPI Command Reference (N5180-90056).

A frequency/power map goes out as ONE list (at most 3201 points per list, so a bigger map is
split into several): :meth:`load_list` writes every point in one message, :meth:`start_list`
arms the sweep at its first point, and each :meth:`next_point` (``*TRG``) moves to the next.
"""

from __future__ import annotations

import logging

import numpy as np
from pymeasure.instruments import Instrument, SCPIMixin, SCPIUnknownMixin
from pymeasure.instruments.agilent import Agilent8257D
from pymeasure.instruments.validators import strict_discrete_set, strict_range

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

MAX_LIST_POINTS = 3201
FREQ_RANGE = [9e3, 20e9]
POWER_RANGE = [-130.0, 20.0]


BOOL = {True: 1, False: 0}


def _fmt(x: float) -> str:
    return f"{x:.12g}"


def switch_control(header: str, doc: str):
    """An on/off control: ``header?`` answers 0/1, ``header 0|1`` sets it (bool)."""
    return Instrument.control(f"{header}?", f"{header} %d", doc,
                              validator=strict_discrete_set, values=BOOL, map_values=True)


def frequency_control(f_range) -> property:
    return Instrument.control(
        ":FREQ?", ":FREQ %.12g",
        f"""Control the CW output frequency in Hz (float strictly from {f_range[0]:g} to
        {f_range[1]:g}).""", validator=strict_range, values=f_range)


def power_control(p_range) -> property:
    return Instrument.control(
        ":POW?", ":POW %.4f",
        f"""Control the CW output power in dBm (float strictly from {p_range[0]:g} to
        {p_range[1]:g}).""", validator=strict_range, values=p_range)


def _list_arrays(name: str, frequencies, powers, f_range, p_range):
    """Check a list before anything is written: equal lengths (or one value), at most 3201
    points, every value finite and inside its range. Returns (frequencies, powers) arrays."""
    f = np.atleast_1d(np.asarray(frequencies, dtype=float)).ravel()
    p = np.atleast_1d(np.asarray(powers, dtype=float)).ravel()
    n = max(f.size, p.size)
    if f.size not in (1, n) or p.size not in (1, n):
        raise ValueError(f"{name}: {f.size} frequencies and {p.size} powers: the lists must "
                         "have the same length (or one value)")
    if not 1 <= n <= MAX_LIST_POINTS:
        raise ValueError(f"{name}: a list has 1 to {MAX_LIST_POINTS} points, got {n}")
    for values, (lo, hi), what in ((f, f_range, "frequency"), (p, p_range, "power")):
        bad = values[(values < lo) | (values > hi) | ~np.isfinite(values)]
        if bad.size:
            raise ValueError(f"{name}: list {what} {bad[0]:g} is outside [{lo:g}, {hi:g}]")
    return f, p


class KeysightN5183B(Agilent8257D):
    """Keysight MXG N5183B (and EXG N5173B) analog signal generator.

    .. code-block:: python

        gen = KeysightN5183B("TCPIP::192.168.1.30::5025::SOCKET")
        gen.frequency = 2.1e9; gen.power = -30; gen.enable()
        gen.load_list(freqs_hz, powers_dbm)        # one message
        gen.start_list()                           # at the first point
        gen.next_point()                           # *TRG: the next one
        gen.shutdown()
    """

    def __init__(self, adapter, name="Keysight N5183B MXG Signal Generator", **kwargs):
        # the MXG is a SCPI instrument: skip the PSG driver's "SCPI unknown" warning
        super(SCPIUnknownMixin, self).__init__(adapter, name, **kwargs)

    frequency = frequency_control(FREQ_RANGE)
    power = power_control(POWER_RANGE)
    output_enabled = switch_control(":OUTP", """Control whether the RF output is on (bool).""")
    modulation_enabled = switch_control(":OUTP:MOD",
                                        """Control the modulation master switch (bool).""")

    frequency_mode = Instrument.control(
        ":FREQ:MODE?", ":FREQ:MODE %s",
        """Control the frequency mode: 'CW' or 'LIST' (str).""",
        validator=strict_discrete_set, values=["CW", "LIST"],
    )

    power_mode = Instrument.control(
        ":POW:MODE?", ":POW:MODE %s",
        """Control the power mode: 'FIX' or 'LIST' (str).""",
        validator=strict_discrete_set, values=["FIX", "LIST"],
    )

    list_trigger_source = Instrument.control(
        ":LIST:TRIG:SOUR?", ":LIST:TRIG:SOUR %s",
        """Control what advances the list one point: 'BUS' (``*TRG``), 'IMM' (the dwell
        time), 'EXT' (the trigger input) or 'KEY' (str).""",
        validator=strict_discrete_set, values=["BUS", "IMM", "EXT", "KEY"],
    )

    list_frequency_points = Instrument.measurement(
        ":LIST:FREQ:POIN?", """Get the number of points in the frequency list (int).""",
        cast=int,
    )

    list_power_points = Instrument.measurement(
        ":LIST:POW:POIN?", """Get the number of points in the power list (int).""", cast=int,
    )

    list_index = Instrument.measurement(
        ":LIST:IND?", """Get the index of the list point being output (int, from 0).""",
        cast=int,
    )

    def load_list(self, frequencies, powers, dwell: float = 1e-3,
                  trigger: str = "BUS") -> int:
        """Load a list sweep and select list mode for frequency and power, in ONE message.

        :param frequencies: Hz per point (each 9e3 to 20e9), or one value for every point.
        :param powers: dBm per point (each -130 to 20), or one value for every point.
        :param dwell: s per point (used with the 'IMM' point trigger; 1e-6 to 100).
        :param trigger: point trigger source, as :attr:`list_trigger_source`.
        :returns: the number of points (at most 3201).
        """
        f, p = _list_arrays(self.name, frequencies, powers, FREQ_RANGE, POWER_RANGE)
        strict_range(dwell, [1e-6, 100.0])
        strict_discrete_set(trigger, ["BUS", "IMM", "EXT", "KEY"])
        n = max(f.size, p.size)
        self.write(";".join([
            ":LIST:TYPE LIST", f":LIST:TRIG:SOUR {trigger}",
            ":LIST:FREQ " + ",".join(_fmt(x) for x in f),
            ":LIST:POW " + ",".join(_fmt(x) for x in p),
            f":LIST:DWEL {_fmt(dwell)}",
            ":FREQ:MODE LIST", ":POW:MODE LIST",
        ]))
        return n

    def start_list(self) -> None:
        """Start the loaded list (single sweep) at its first point; with the 'IMM' point
        trigger this waits (``*OPC?``) until the sweep has run."""
        self.ask(":INIT:CONT 0;:INIT;*OPC?")

    def next_point(self) -> None:
        """Move a 'BUS'-triggered list to its next point (``*TRG``)."""
        self.write("*TRG")

    def stop_list(self) -> None:
        """Abort the list and return to CW frequency and fixed power."""
        self.write(":ABOR;:FREQ:MODE CW;:POW:MODE FIX")

    def shutdown(self):
        """Leave the generator safe: list aborted, CW mode, modulation off, RF output off.
        A failing abort is logged and the output is still switched off."""
        log.info("Shutting down %s.", self.name)
        try:
            self.stop_list()
            self.modulation_enabled = False
        except Exception:
            log.exception("%s: stopping the list/modulation failed; switching RF off.",
                          self.name)
        self.output_enabled = False
        Instrument.shutdown(self)


SMB_FREQ_RANGE = [9e3, 6e9]
SMB_POWER_RANGE = [-145.0, 18.0]


class RohdeSchwarzSMB100A(SCPIMixin, Instrument):
    """Rohde & Schwarz SMB100A analog signal generator (option B106: up to 6 GHz).

    The same list interface as :class:`KeysightN5183B` (:meth:`load_list`, :meth:`start_list`,
    :meth:`next_point`, :meth:`stop_list`), in the SMB's list commands: one list
    (``:LIST:SEL``) filled with ``:LIST:FREQ`` / ``:LIST:POW`` / ``:LIST:DWEL`` in one message,
    started by ``:FREQ:MODE LIST``; in ``STEP`` mode each point is selected by ``:LIST:IND``.
    Reference: R&S SMB100A Operating Manual, remote control commands.
    """

    def __init__(self, adapter, name="Rohde&Schwarz SMB100A Signal Generator", **kwargs):
        super().__init__(adapter, name, **kwargs)
        self._index = 0
        self._points = 0

    frequency = frequency_control(SMB_FREQ_RANGE)
    power = power_control(SMB_POWER_RANGE)
    output_enabled = switch_control(":OUTP", """Control whether the RF output is on (bool).""")
    am_enabled = switch_control(":AM:STAT",
                                """Control whether amplitude modulation is on (bool).""")

    am_depth = Instrument.control(
        ":AM?", ":AM %.4g",
        """Control the AM depth in percent (float strictly from 0 to 100).""",
        validator=strict_range, values=[0, 100],
    )

    pulse_modulation_enabled = switch_control(
        ":PULM:STAT", """Control whether pulse modulation is on (bool).""")

    frequency_mode = Instrument.control(
        ":FREQ:MODE?", ":FREQ:MODE %s",
        """Control the frequency mode: 'CW' or 'LIST' (str; LIST starts the selected list).""",
        validator=strict_discrete_set, values=["CW", "LIST"],
    )

    list_index = Instrument.measurement(
        ":LIST:IND?", """Get the index of the list point being output (int, from 0).""",
        cast=int,
    )

    def enable(self) -> None:
        """Switch the RF output on."""
        self.output_enabled = True

    def disable(self) -> None:
        """Switch the RF output off."""
        self.output_enabled = False

    def load_list(self, frequencies, powers, dwell: float = 1e-3,
                  trigger: str = "BUS") -> int:
        """Fill the list ``labctl`` in ONE message and learn it.

        :param frequencies: Hz per point (each 9e3 to 6e9), or one value for every point.
        :param powers: dBm per point (each -145 to 18), or one value for every point.
        :param dwell: s per point in AUTO mode (1e-3 to 100).
        :param trigger: 'BUS' (point by point, :meth:`next_point`: STEP mode) or 'IMM'
            (on the dwell times: AUTO mode).
        :returns: the number of points.
        """
        f, p = _list_arrays(self.name, frequencies, powers, SMB_FREQ_RANGE, SMB_POWER_RANGE)
        strict_range(dwell, [1e-3, 100.0])
        mode = {"BUS": "STEP", "IMM": "AUTO"}[strict_discrete_set(trigger, ["BUS", "IMM"])]
        n = max(f.size, p.size)
        f, p = np.broadcast_to(f, n), np.broadcast_to(p, n)
        self.write(";".join([
            ':LIST:SEL "labctl"', ":LIST:FREQ " + ",".join(_fmt(x) for x in f),
            ":LIST:POW " + ",".join(_fmt(x) for x in p), f":LIST:DWEL {_fmt(dwell)}",
            f":LIST:MODE {mode}", ":LIST:LEAR",
        ]))
        self._points = n
        return n

    def start_list(self) -> None:
        """Start the list at its first point (``:FREQ:MODE LIST``) and wait for it."""
        self.ask(":FREQ:MODE LIST;*OPC?")
        self._index = 0

    def next_point(self) -> None:
        """Output the next point of a STEP-mode list (``:LIST:IND``)."""
        self._index = min(self._index + 1, max(self._points - 1, 0))
        self.write(f":LIST:IND {self._index}")

    def stop_list(self) -> None:
        """Leave list mode for CW."""
        self.write(":FREQ:MODE CW")

    def shutdown(self):
        """Leave the generator safe: CW mode, AM and pulse modulation off, RF output off. A
        failing step is logged and the output is still switched off."""
        log.info("Shutting down %s.", self.name)
        try:
            self.write(":FREQ:MODE CW;:AM:STAT 0;:PULM:STAT 0")
        except Exception:
            log.exception("%s: leaving list/modulation failed; switching RF off.", self.name)
        self.output_enabled = False
        super().shutdown()
