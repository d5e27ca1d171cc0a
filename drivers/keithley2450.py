"""Keithley 2450 SourceMeter in its native SCPI command set (not the 2400 emulation).

Extends :class:`pymeasure.instruments.keithley.Keithley2450`. Command forms follow the Model 2450
Reference Manual (2450-901-01), section 6 "SCPI command reference": ``:SOURce``, ``:SENSe``,
``:TRACe``, ``:SOURce:SWEep:<function>:LINear|LIST``, ``:SOURce:LIST:<function>[:APPend]``,
``:TRACe:DATA?`` and ``:READ?``.

Safety: every source setter is a ``strict_range`` control wrapped in :class:`LimitedControl`, so a
safety layer narrows it per instance (``smu.source_voltage_values = [-1.5, 1.5]``) without slowing
reads; :attr:`Keithley2450.SOURCE_LIMITS` says
which physical quantity each one sets. Sweeps and ramps check every source level against the
present (possibly narrowed) limits before a single byte is written.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from pymeasure.instruments import Instrument
from pymeasure.instruments.keithley import Keithley2450 as PymeasureKeithley2450
from pymeasure.instruments.validators import strict_discrete_set, strict_range

from drivers.limits import LimitedControl, SourceLimits
from drivers.waiting import ask_covering

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

BUFFER = "defbuffer1"
LIST_CHUNK = 100  # values per :SOUR:LIST:<function>[:APP] command (manual, :SOURce:LIST)
MAX_SWEEP_COUNT = 268435455  # finite sweep count limit of :SOUR:SWE
NPLC_RANGE = [0.01, 10]
HARDWARE_LIMITS = {
    "source_voltage": [-210, 210],
    "source_current": [-1.05, 1.05],
    "compliance_current": [1e-9, 1.05],
    "compliance_voltage": [0.02, 210],
}
BOOL_MAP = {True: 1, False: 0}


def _fmt(value: float) -> str:
    """Format a number as it goes on the wire (``%g``, as the setters do)."""
    return f"{value:g}"


def _first_token(reply: str) -> str:
    """Reduce a function reply such as ``"CURR:DC"`` to its first node, ``CURR``."""
    return str(reply).strip().strip('"').split(":")[0].upper()


class Keithley2450(SourceLimits, PymeasureKeithley2450):
    """Keithley 2450 SourceMeter speaking its native SCPI command set.

    .. code-block:: python

        smu = Keithley2450("TCPIP::192.168.0.10::INSTR")
        smu.source_voltage_values = [-1.5, 1.5]     # safety layer narrows the source
        v, i, t = smu.sweep_voltage(0, 1, 11, compliance=1e-3)
        v, i, t = smu.sweep_voltage_list([0, 1, 0, -1, 0], delay=1e-3)
        smu.shutdown()
    """

    HARDWARE_LIMITS = HARDWARE_LIMITS
    SOURCE_LIMITS = {
        "source_voltage": "voltage",
        "source_current": "current",
        "compliance_current": "current",
        "compliance_voltage": "voltage",
    }

    def __init__(self, adapter, name="Keithley 2450 SourceMeter", **kwargs):
        super().__init__(adapter, name, **kwargs)

    #################
    # Source levels #
    #################

    source_voltage = LimitedControl(Instrument.control(
        ":SOUR:VOLT?", ":SOUR:VOLT:LEV %g",
        """Control the source voltage level in V (float strictly from -210 to 210; narrowed per
        instance by setting ``source_voltage_values``).""",
        validator=strict_range,
        values=HARDWARE_LIMITS["source_voltage"],
    ))

    source_current = LimitedControl(Instrument.control(
        ":SOUR:CURR?", ":SOUR:CURR:LEV %g",
        """Control the source current level in A (float strictly from -1.05 to 1.05; narrowed per
        instance by setting ``source_current_values``).""",
        validator=strict_range,
        values=HARDWARE_LIMITS["source_current"],
    ))

    compliance_current = LimitedControl(Instrument.control(
        ":SOUR:VOLT:ILIM?", ":SOUR:VOLT:ILIM %g",
        """Control the current limit (compliance) of the voltage source in A (float strictly from
        1e-9 to 1.05; narrowed per instance by setting ``compliance_current_values``).""",
        validator=strict_range,
        values=HARDWARE_LIMITS["compliance_current"],
    ))

    compliance_voltage = LimitedControl(Instrument.control(
        ":SOUR:CURR:VLIM?", ":SOUR:CURR:VLIM %g",
        """Control the voltage limit (compliance) of the current source in V (float strictly from
        0.02 to 210; narrowed per instance by setting ``compliance_voltage_values``).""",
        validator=strict_range,
        values=HARDWARE_LIMITS["compliance_voltage"],
    ))

    ###################
    # Output & status #
    ###################

    output_enabled = Instrument.control(
        ":OUTP?", ":OUTP %d",
        """Control whether the source output is on (bool).""",
        validator=strict_discrete_set,
        values=BOOL_MAP,
        map_values=True,
    )

    current_limit_tripped = Instrument.measurement(
        ":SOUR:VOLT:ILIM:TRIP?",
        """Get whether the voltage source is in current compliance (bool).""",
        values=BOOL_MAP,
        map_values=True,
    )

    voltage_limit_tripped = Instrument.measurement(
        ":SOUR:CURR:VLIM:TRIP?",
        """Get whether the current source is in voltage compliance (bool).""",
        values=BOOL_MAP,
        map_values=True,
    )

    source_readback = Instrument.control(
        ":SOUR:VOLT:READ:BACK?", ":SOUR:VOLT:READ:BACK %d",
        """Control voltage-source readback (bool): True records the measured source voltage as the
        SOUR element of a reading, False the programmed level.""",
        validator=strict_discrete_set,
        values=BOOL_MAP,
        map_values=True,
    )

    line_frequency = Instrument.measurement(
        ":SYST:LFR?",
        """Get the power line frequency in Hz (int, 50 or 60).""",
        get_process=lambda v: int(round(v)),
    )

    #########
    # Sense #
    #########

    sense_function = Instrument.control(
        ":SENS:FUNC?", ':SENS:FUNC "%s"',
        """Control the measure function (str strictly 'current', 'voltage' or 'resistance').
        The 2450 answers e.g. ``"CURR:DC"``, which reads back as 'current'.""",
        validator=strict_discrete_set,
        values={"current": "CURR", "voltage": "VOLT", "resistance": "RES"},
        map_values=True,
        cast=str,
        get_process=_first_token,
    )

    current_nplc = Instrument.control(
        ":SENS:CURR:NPLC?", ":SENS:CURR:NPLC %g",
        """Control the current-measurement integration time in power line cycles (float strictly
        from 0.01 to 10).""",
        validator=strict_range,
        values=NPLC_RANGE,
    )

    voltage_nplc = Instrument.control(
        ":SENS:VOLT:NPLC?", ":SENS:VOLT:NPLC %g",
        """Control the voltage-measurement integration time in power line cycles (float strictly
        from 0.01 to 10).""",
        validator=strict_range,
        values=NPLC_RANGE,
    )

    remote_sense = Instrument.control(
        ":SENS:CURR:RSEN?", ":SENS:CURR:RSEN %d",
        """Control 4-wire (remote) sensing for the current-measure function (bool; False is
        2-wire).""",
        validator=strict_discrete_set,
        values=BOOL_MAP,
        map_values=True,
    )

    ###########
    # Actions #
    ###########

    def reset(self):
        """Reset the instrument to defaults and clear the status and error queue (``*RST;*CLS``)."""
        self.write("*RST;*CLS")

    def measure_iv(self) -> tuple[float, float]:
        """Take one reading and return (source voltage in V, measured current in A) from a single
        ``:READ? "defbuffer1", SOUR, READ`` query (source voltage, sense current)."""
        reply = self.values(f':READ? "{BUFFER}", SOUR, READ')
        if len(reply) != 2:
            raise ValueError(f"{self.name}: expected 2 values from :READ?, got {reply!r}")
        return float(reply[0]), float(reply[1])

    def step_and_measure(self, voltage: float) -> tuple[float, float, bool]:
        """Set the source voltage (V, within the present limits), take one reading and read the
        current-limit flag, all in ONE query; return (source voltage in V, measured current in A,
        compliance tripped)."""
        self.check_levels("source_voltage", voltage)
        reply = self.ask(f':SOUR:VOLT:LEV {_fmt(voltage)};:READ? "{BUFFER}", SOUR, READ;'
                         ":SOUR:VOLT:ILIM:TRIP?").strip()
        reading, _, tripped = reply.partition(";")
        values = reading.split(",")
        if len(values) != 2 or tripped.strip() not in ("0", "1"):
            raise ValueError(f"{self.name}: unexpected reply to step-and-measure: {reply!r}")
        return float(values[0]), float(values[1]), tripped.strip() == "1"

    def ramp_to_voltage(self, target: float, step: float = 0.1) -> None:
        """Ramp the source voltage from its present level to ``target`` in V, in steps of at most
        ``step`` V, chained in one write (no sleeps). Every step is checked against the present
        ``source_voltage`` limits before anything is written."""
        self._ramp("source_voltage", ":SOUR:VOLT:LEV", target, step)

    def ramp_to_current(self, target: float, step: float = 1e-4) -> None:
        """Ramp the source current from its present level to ``target`` in A, in steps of at most
        ``step`` A, chained in one write (no sleeps). Every step is checked against the present
        ``source_current`` limits before anything is written."""
        self._ramp("source_current", ":SOUR:CURR:LEV", target, step)

    def _ramp(self, prop: str, set_header: str, target: float, step: float) -> None:
        if not step > 0:
            raise ValueError(f"{self.name}: ramp step must be > 0, got {step!r}")
        self.check_levels(prop, target)
        start = float(getattr(self, prop))
        count = max(1, math.ceil(abs(target - start) / step))
        levels = np.linspace(start, target, count + 1)[1:]
        self.check_levels(prop, levels)
        self.write(";".join(f"{set_header} {_fmt(level)}" for level in levels))

    def shutdown(self):
        """Leave the instrument safe: ``:ABOR`` any running sweep, ramp the source to zero, switch
        the output off. A failing abort or ramp (garbage reply, limits) is logged and the output is
        still switched off; only an unreachable instrument makes this raise."""
        log.info("Shutting down %s.", self.name)
        try:
            self.write(":ABOR")
            if self.source_mode == "current":
                self.ramp_to_current(0.0)
            else:
                self.ramp_to_voltage(0.0)
        except Exception:
            log.exception("%s: abort/ramp to zero failed; switching the output off.", self.name)
        self.output_enabled = False
        super(PymeasureKeithley2450, self).shutdown()

    ##########
    # Sweeps #
    ##########

    def sweep_voltage(self, start: float, stop: float, points: int, delay: float = 0.0,
                      count: int = 1, nplc: float | None = None,
                      compliance: float | None = None):
        """Run a linear voltage sweep (source V, measure I) into defbuffer1 and return
        (source voltage in V, measured current in A, relative time in s) as numpy arrays of
        ``points * count`` readings.

        :param start: first level in V; :param stop: last level in V (both within the present
            ``source_voltage`` limits, as is every level between them).
        :param points: number of levels (int from 2 to 1e6).
        :param delay: delay between points in s (-1 for auto delay, 0, or 50e-6 to 1e4).
        :param count: times to run the sweep (int from 1).
        :param nplc: current integration time in power line cycles (0.01 to 10), or None to keep.
        :param compliance: current limit in A (within ``compliance_current`` limits), or None to
            keep the present one.

        Three transactions: one write, ``*OPC?``, ``:TRAC:DATA?``.
        """
        points = self._check_int("points", points, 2, 1_000_000)
        levels = np.linspace(start, stop, points)
        self.check_levels("source_voltage", levels)
        sweep = (f":SOUR:SWE:VOLT:LIN {_fmt(start)}, {_fmt(stop)}, {points}, "
                 f"{self._delay_arg(delay, allow_auto=True)}, {self._count_arg(count)}, "
                 f'BEST, OFF, OFF, "{BUFFER}"')
        return self._run_sweep("VOLT", "CURR", [sweep], points * count, delay, nplc,
                               compliance)

    def sweep_voltage_list(self, values, delay: float, count: int = 1,
                           nplc: float | None = None, compliance: float | None = None):
        """Run an arbitrary voltage staircase (e.g. a bipolar hysteresis loop; source V, measure I)
        into defbuffer1 and return (source voltage in V, measured current in A, relative time in
        s) as numpy arrays of ``len(values) * count`` readings.

        :param values: levels in V, each within the present ``source_voltage`` limits.
        :param delay: delay between points in s (0, or 50e-6 to 1e4).
        :param count, nplc, compliance: as in :meth:`sweep_voltage`.

        The list goes out as ``:SOUR:LIST:VOLT`` plus ``:SOUR:LIST:VOLT:APP`` chunks of at most
        100 values, chained in the one configuring write.
        """
        return self._list_sweep("VOLT", "CURR", "source_voltage", values, delay, count, nplc,
                                compliance)

    def sweep_current_list(self, values, delay: float, count: int = 1,
                           nplc: float | None = None, compliance: float | None = None):
        """Run an arbitrary current staircase (source I, measure V) into defbuffer1 and return
        (source current in A, measured voltage in V, relative time in s) as numpy arrays.

        :param values: levels in A, each within the present ``source_current`` limits.
        :param delay: delay between points in s (0, or 50e-6 to 1e4).
        :param count: times to run the sweep (int from 1).
        :param nplc: voltage integration time in power line cycles (0.01 to 10), or None.
        :param compliance: voltage limit in V (within ``compliance_voltage`` limits), or None.
        """
        return self._list_sweep("CURR", "VOLT", "source_current", values, delay, count, nplc,
                                compliance)

    def _list_sweep(self, source, sense, prop, values, delay, count, nplc, compliance):
        levels = np.asarray(values, dtype=float).ravel()
        if levels.size == 0:
            raise ValueError(f"{self.name}: list sweep needs at least one level")
        self.check_levels(prop, levels)
        commands = []
        for first in range(0, levels.size, LIST_CHUNK):
            header = f":SOUR:LIST:{source}" + (":APP" if first else "")
            chunk = ",".join(_fmt(v) for v in levels[first:first + LIST_CHUNK])
            commands.append(f"{header} {chunk}")
        commands.append(f":SOUR:SWE:{source}:LIST 1, {self._delay_arg(delay, allow_auto=False)}, "
                        f'{self._count_arg(count)}, OFF, "{BUFFER}"')
        return self._run_sweep(source, sense, commands, levels.size * count, delay, nplc,
                               compliance)

    def _run_sweep(self, source, sense, sweep_commands, readings, delay, nplc, compliance):
        """Validate the options, then: one configuring write ending in ``:INIT``, ``*OPC?``, and
        ``:TRAC:DATA? 1, N, "defbuffer1", SOUR, READ, REL``."""
        setup = [":TRAC:CLE", f":SOUR:FUNC {source}", f':SENS:FUNC "{sense}"']
        if nplc is not None:
            strict_range(nplc, NPLC_RANGE)
            setup.append(f":SENS:{sense}:NPLC {_fmt(nplc)}")
        if compliance is not None:
            limit_prop, limit_header = {
                "VOLT": ("compliance_current", ":SOUR:VOLT:ILIM"),
                "CURR": ("compliance_voltage", ":SOUR:CURR:VLIM"),
            }[source]
            self.check_levels(limit_prop, compliance)
            setup.append(f"{limit_header} {_fmt(compliance)}")
        self.write(";".join(setup + sweep_commands + [":INIT"]))
        dwell = 0.05 if delay == -1 else float(delay)  # auto delay: at most ~50 ms per point
        self._wait_for_sweep(readings * (dwell + (nplc or 10) / 50.0 + 1e-3))
        data = np.asarray(
            self.values(f':TRAC:DATA? 1, {readings}, "{BUFFER}", SOUR, READ, REL'), dtype=float)
        if data.size != 3 * readings:
            raise ValueError(f"{self.name}: expected {3 * readings} values from :TRAC:DATA?, "
                             f"got {data.size}")
        data = data.reshape(readings, 3)
        return data[:, 0], data[:, 1], data[:, 2]

    def _wait_for_sweep(self, estimate_s: float) -> None:
        """``*OPC?`` with the VISA timeout raised to cover the sweep (estimate x 1.5 + 5 s):
        a long sweep must not look like a dead instrument."""
        ask_covering(self, "*OPC?", estimate_s)

    def _delay_arg(self, delay: float, allow_auto: bool) -> str:
        if (allow_auto and delay == -1) or delay == 0 or 50e-6 <= delay <= 1e4:
            return _fmt(delay)
        auto = "-1 (auto), " if allow_auto else ""
        raise ValueError(f"{self.name}: sweep delay {delay!r} s is not {auto}0 or 50e-6..1e4")

    def _count_arg(self, count: int) -> int:
        return self._check_int("count", count, 1, MAX_SWEEP_COUNT)

    def _check_int(self, what: str, value, low: int, high: int) -> int:
        if isinstance(value, bool) or int(value) != value or not low <= value <= high:
            raise ValueError(f"{self.name}: sweep {what} {value!r} is not an int from {low} to "
                             f"{high}")
        return int(value)
