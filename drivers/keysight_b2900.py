"""Keysight B2900 series precision source/measure units: B2901A, B2902A, B2911A, B2912A.

Not in pymeasure. Commands follow the Keysight B2900 Series SCPI Command Reference: per channel
``c`` (``{ch}``: 1, or 1 and 2 on the B2902A/B2912A) ``:SOURce{c}:FUNCtion:MODE``,
``:SOURce{c}:FUNCtion:SHAPe``, ``:SOURce{c}:<VOLT|CURR>[:TRIGgered]``,
``:SOURce{c}:LIST:<VOLT|CURR>``, ``:SOURce{c}:PULSe:DELay|WIDTh``,
``:SENSe{c}:<CURR|VOLT>:PROTection``, ``:TRIGger{c}:COUNt``, ``:ARM{c}:COUNt``,
``:INITiate (@c)``, ``:FETCh:ARRay? (@c)``, ``:TRACe{c}:DATA?``, ``:OUTPut{c}``.

Safety: every source setter (levels, compliances, pulse width) is a ``strict_range`` control in
:class:`~drivers.limits.LimitedControl`, narrowed per instrument by the station's chip limits;
:meth:`B2900Channel.pulse_list` checks every level and the width before a byte is written.

.. code-block:: python

    smu = KeysightB2900("TCPIP::192.168.0.30::INSTR")
    ch = smu.ch_1
    data = ch.pulse_list([-1.5, 5.0, 0.1], width=1e-4, count=1000, compliance=10e-3)
    data["CURR"].reshape(1000, 3)        # one transaction to fetch 3000 readings
    smu.shutdown()
"""

from __future__ import annotations

import logging

import numpy as np
from pymeasure.instruments import Channel, Instrument, SCPIMixin
from pymeasure.instruments.validators import strict_discrete_set, strict_range

from drivers.limits import LimitedControl, SourceLimits
from drivers.waiting import ask_covering

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

HARDWARE_LIMITS = {
    "source_voltage": [-210.0, 210.0],
    "source_current": [-3.03, 3.03],
    "triggered_voltage": [-210.0, 210.0],
    "triggered_current": [-3.03, 3.03],
    "compliance_current": [1e-9, 3.03],
    "compliance_voltage": [0.02, 210.0],
    "pulse_width": [10e-6, 1e5],
}
MIN_PULSE_WIDTH = {"B2901A": 50e-6, "B2902A": 50e-6, "B2911A": 10e-6, "B2912A": 10e-6}
"""Shortest pulse of each model, s."""
MAX_LIST = 2500
"""Most points of a source list (``:SOUR:LIST``)."""
MAX_POINTS = 100_000
"""Most points of one trigger model run (arm count x trigger count) and of the buffers."""
ELEMENTS = ("VOLT", "CURR", "TIME")
BOOL = {True: 1, False: 0}
SOURCE = {"voltage": "VOLT", "current": "CURR"}


def _fmt(value: float) -> str:
    return f"{value:g}"


def _limited(get: str, set_: str, doc: str, prop: str) -> LimitedControl:
    return LimitedControl(Channel.control(get, set_, doc, validator=strict_range,
                                          values=HARDWARE_LIMITS[prop]))


class B2900Channel(Channel):
    """One source/measure channel of a B2900 (``smu.ch_1``, ``smu.ch_2``)."""

    def check_levels(self, prop: str, levels) -> None:
        """The instrument's present limits of ``prop`` (see :class:`SourceLimits`)."""
        self.parent.check_levels(prop, levels)

    source_mode = Channel.control(
        ":SOUR{ch}:FUNC:MODE?", ":SOUR{ch}:FUNC:MODE %s",
        """Control the source function (str 'voltage' or 'current').""",
        validator=strict_discrete_set, values=SOURCE, map_values=True)

    source_shape = Channel.control(
        ":SOUR{ch}:FUNC:SHAP?", ":SOUR{ch}:FUNC:SHAP %s",
        """Control the source shape (str 'dc' or 'pulse'; with 'pulse' the immediate level is
        the base and each trigger gives a pulse at the triggered or list level).""",
        validator=strict_discrete_set, values={"dc": "DC", "pulse": "PULS"}, map_values=True)

    source_voltage = _limited(
        ":SOUR{ch}:VOLT?", ":SOUR{ch}:VOLT %g",
        """Control the immediate (DC or pulse base) voltage in V (float strictly from -210 to
        210; narrowed by the chip limits).""", "source_voltage")

    source_current = _limited(
        ":SOUR{ch}:CURR?", ":SOUR{ch}:CURR %g",
        """Control the immediate (DC or pulse base) current in A (float strictly from -3.03 to
        3.03; narrowed by the chip limits).""", "source_current")

    triggered_voltage = _limited(
        ":SOUR{ch}:VOLT:TRIG?", ":SOUR{ch}:VOLT:TRIG %g",
        """Control the triggered (pulse peak) voltage in V (float strictly from -210 to 210;
        narrowed by the chip limits).""", "triggered_voltage")

    triggered_current = _limited(
        ":SOUR{ch}:CURR:TRIG?", ":SOUR{ch}:CURR:TRIG %g",
        """Control the triggered (pulse peak) current in A (float strictly from -3.03 to 3.03;
        narrowed by the chip limits).""", "triggered_current")

    voltage_mode = Channel.control(
        ":SOUR{ch}:VOLT:MODE?", ":SOUR{ch}:VOLT:MODE %s",
        """Control the voltage source mode (str 'fixed' or 'list').""",
        validator=strict_discrete_set, values={"fixed": "FIX", "list": "LIST"}, map_values=True)

    current_mode = Channel.control(
        ":SOUR{ch}:CURR:MODE?", ":SOUR{ch}:CURR:MODE %s",
        """Control the current source mode (str 'fixed' or 'list').""",
        validator=strict_discrete_set, values={"fixed": "FIX", "list": "LIST"}, map_values=True)

    pulse_width = _limited(
        ":SOUR{ch}:PULS:WIDT?", ":SOUR{ch}:PULS:WIDT %g",
        """Control the pulse width in s (float strictly from 10e-6 to 1e5; the B2901A/B2902A
        start at 50e-6; narrowed by the chip's pulse-width limit).""", "pulse_width")

    pulse_delay = Channel.control(
        ":SOUR{ch}:PULS:DEL?", ":SOUR{ch}:PULS:DEL %g",
        """Control the delay from the trigger to the pulse in s (float strictly from 0 to
        99999.9).""",
        validator=strict_range, values=[0.0, 99999.9])

    compliance_current = _limited(
        ":SENS{ch}:CURR:PROT?", ":SENS{ch}:CURR:PROT %g",
        """Control the current compliance of the voltage source in A (float strictly from 1e-9
        to 3.03; narrowed by the chip limits).""", "compliance_current")

    compliance_voltage = _limited(
        ":SENS{ch}:VOLT:PROT?", ":SENS{ch}:VOLT:PROT %g",
        """Control the voltage compliance of the current source in V (float strictly from 0.02
        to 210; narrowed by the chip limits).""", "compliance_voltage")

    current_compliance_tripped = Channel.measurement(
        ":SENS{ch}:CURR:PROT:TRIP?",
        """Get whether the voltage source hit its current compliance in the last run (bool).""",
        values=BOOL, map_values=True)

    voltage_compliance_tripped = Channel.measurement(
        ":SENS{ch}:VOLT:PROT:TRIP?",
        """Get whether the current source hit its voltage compliance in the last run (bool).""",
        values=BOOL, map_values=True)

    current_nplc = Channel.control(
        ":SENS{ch}:CURR:NPLC?", ":SENS{ch}:CURR:NPLC %g",
        """Control the current integration time in power line cycles (float strictly from 4e-4
        to 100).""",
        validator=strict_range, values=[4e-4, 100.0])

    voltage_nplc = Channel.control(
        ":SENS{ch}:VOLT:NPLC?", ":SENS{ch}:VOLT:NPLC %g",
        """Control the voltage integration time in power line cycles (float strictly from 4e-4
        to 100).""",
        validator=strict_range, values=[4e-4, 100.0])

    trigger_count = Channel.control(
        ":TRIG{ch}:COUN?", ":TRIG{ch}:COUN %d",
        """Control the trigger count of the transient and acquisition layers (int strictly from
        1 to 100000).""",
        validator=strict_range, values=[1, MAX_POINTS], cast=int)

    arm_count = Channel.control(
        ":ARM{ch}:COUN?", ":ARM{ch}:COUN %d",
        """Control the arm count: how many times the trigger layer repeats (int strictly from 1
        to 100000).""",
        validator=strict_range, values=[1, MAX_POINTS], cast=int)

    trigger_source = Channel.control(
        ":TRIG{ch}:SOUR?", ":TRIG{ch}:SOUR %s",
        """Control the trigger source (str 'aint' automatic or 'timer').""",
        validator=strict_discrete_set, values={"aint": "AINT", "timer": "TIM"}, map_values=True)

    trigger_period = Channel.control(
        ":TRIG{ch}:TIM?", ":TRIG{ch}:TIM %g",
        """Control the timer trigger period in s (float strictly from 1e-5 to 1e5).""",
        validator=strict_range, values=[1e-5, 1e5])

    output_enabled = Channel.control(
        ":OUTP{ch}?", ":OUTP{ch} %d",
        """Control whether the channel output is on (bool).""",
        validator=strict_discrete_set, values=BOOL, map_values=True)

    list_points = Channel.measurement(
        ":SOUR{ch}:LIST:VOLT:POIN?",
        """Get the number of points in the voltage source list (int).""", cast=int)

    def measure(self) -> tuple[float, float]:
        """One spot measurement at the present source: (voltage in V, current in A)."""
        v, i = self.values(":MEAS:VOLT? (@{ch});:MEAS:CURR? (@{ch})", separator=";")
        return float(v), float(i)

    def pulse_list(self, levels, width: float, count: int = 1, source: str = "voltage",
                   base: float = 0.0, compliance: float | None = None,
                   period: float | None = None, delay: float = 0.0) -> dict[str, np.ndarray]:
        """Run a pulsed list sweep ``count`` times and return its whole buffer.

        :param levels: pulse peak levels in V or A (1 to 2500 of them, each within the present
            source limits), applied in order, one pulse per trigger.
        :param width: pulse width in s (within the pulse-width limits).
        :param count: repetitions of the list (arm count; ``len(levels) * count`` <= 100000).
        :param source: 'voltage' or 'current'.
        :param base: level between pulses (V or A).
        :param compliance: current (A, voltage source) or voltage (V, current source) limit,
            or None to keep the present one.
        :param period: timer period between pulses in s, or None for back-to-back pulses.
        :param delay: delay from each trigger to its pulse in s.
        :return: ``{"VOLT", "CURR", "TIME"}`` arrays of ``len(levels) * count`` readings, each
            taken at the end of its pulse.

        Three transactions whatever ``count``: one configuring write ending in ``:INIT``,
        ``*OPC?``, ``:FETC:ARR?``.
        """
        if source not in SOURCE:
            raise ValueError(f"{self.parent.name}: source {source!r} is not 'voltage' or "
                             "'current'")
        levels = np.asarray(levels, dtype=float).reshape(-1)
        count = int(count)
        if not 1 <= levels.size <= MAX_LIST:
            raise ValueError(f"{self.parent.name}: a source list holds 1 to {MAX_LIST} points, "
                             f"got {levels.size}")
        if not 1 <= count or levels.size * count > MAX_POINTS:
            raise ValueError(f"{self.parent.name}: {levels.size} points x {count} repetitions "
                             f"exceed the {MAX_POINTS}-point buffer")
        f = SOURCE[source]
        prop = f"source_{source}"
        self.check_levels(prop, np.append(levels, base))
        self.check_levels("pulse_width", width)
        strict_range(delay, [0.0, 99999.9])
        setup = [f":SOUR{{ch}}:FUNC:MODE {f}", ":SOUR{ch}:FUNC:SHAP PULS",
                 f":SOUR{{ch}}:{f} {_fmt(base)}", f":SOUR{{ch}}:{f}:MODE LIST",
                 f":SOUR{{ch}}:LIST:{f} " + ",".join(_fmt(x) for x in levels),
                 f":SOUR{{ch}}:PULS:DEL {_fmt(delay)}", f":SOUR{{ch}}:PULS:WIDT {_fmt(width)}"]
        if compliance is not None:
            limit_prop, limit_f = (("compliance_current", "CURR") if f == "VOLT"
                                   else ("compliance_voltage", "VOLT"))
            self.check_levels(limit_prop, compliance)
            setup.append(f":SENS{{ch}}:{limit_f}:PROT {_fmt(compliance)}")
        if period is None:
            setup.append(":TRIG{ch}:SOUR AINT")
            step = delay + width
        else:
            strict_range(period, [1e-5, 1e5])
            setup += [":TRIG{ch}:SOUR TIM", f":TRIG{{ch}}:TIM {_fmt(period)}"]
            step = max(period, delay + width)
        setup += [f":TRIG{{ch}}:COUN {levels.size}", f":ARM{{ch}}:COUN {count}",
                  ":FORM:ELEM:SENS " + ",".join(ELEMENTS), ":INIT (@{ch})"]
        self.write(";".join(setup))
        self.parent.wait_for_completion(levels.size * count * (step + 1e-4))
        data = np.asarray(self.values(":FETC:ARR? (@{ch})"), dtype=float)
        n = levels.size * count
        if data.size != len(ELEMENTS) * n:
            raise ValueError(f"{self.parent.name}: expected {len(ELEMENTS) * n} values from "
                             f":FETC:ARR?, got {data.size}")
        data = data.reshape(n, len(ELEMENTS))
        return {e: data[:, k] for k, e in enumerate(ELEMENTS)}

    def trigger_each_arm(self, pin: int | None) -> None:
        """Make the following runs emit a trigger on digital I/O pin ``EXT<pin>`` (int 1 to
        14, set as a trigger output) at the start of every arm cycle, i.e. once per repetition
        of a :meth:`pulse_list`, at the start of its first pulse; ``None`` stops it. One
        write."""
        if pin is None:
            self.write(":ARM{ch}:TRAN:TOUT 0")
            return
        pin = int(strict_range(pin, [1, 14]))
        self.write(f":SOUR:DIG:EXT{pin}:FUNC TOUT;:ARM{{ch}}:TRAN:TOUT:SIGN EXT{pin};"
                   ":ARM{ch}:TRAN:TOUT 1")

    def shutdown(self) -> None:
        """Safe state of the channel: immediate levels to 0, fixed mode, output off."""
        self.write(":SOUR{ch}:VOLT:MODE FIX;:SOUR{ch}:CURR:MODE FIX;:SOUR{ch}:FUNC:SHAP DC;"
                   ":SOUR{ch}:VOLT 0;:SOUR{ch}:CURR 0;:OUTP{ch} 0")


class KeysightB2900(SourceLimits, SCPIMixin, Instrument):
    """Keysight B2900-series SMU (B2901A/B2902A/B2911A/B2912A) with pulsed list sweeps.

    ``channels`` is 1 for the B2901A/B2911A, 2 for the B2902A/B2912A."""

    HARDWARE_LIMITS = HARDWARE_LIMITS
    SOURCE_LIMITS = {
        "source_voltage": "voltage",
        "source_current": "current",
        "triggered_voltage": "voltage",
        "triggered_current": "current",
        "compliance_current": "current",
        "compliance_voltage": "voltage",
        "pulse_width": "pulse_width",
    }

    ch_1 = Instrument.ChannelCreator(B2900Channel, 1)
    ch_2 = Instrument.ChannelCreator(B2900Channel, 2)

    def __init__(self, adapter, name: str = "Keysight B2900 SMU", channels: int = 2,
                 **kwargs):
        super().__init__(adapter, name, **kwargs)
        strict_discrete_set(channels, (1, 2))
        self.n_channels = int(channels)

    @property
    def channels_in_use(self) -> list[B2900Channel]:
        return [self.ch_1, self.ch_2][:self.n_channels]

    @staticmethod
    def min_pulse_width(identity: str) -> float:
        """The shortest pulse (s) of the model named in an ``*IDN?`` reply (the family's
        10 µs if the model is not recognised)."""
        for model, width in MIN_PULSE_WIDTH.items():
            if model in identity:
                return width
        return HARDWARE_LIMITS["pulse_width"][0]

    def wait_for_completion(self, estimate_s: float) -> None:
        """``*OPC?`` with the VISA timeout raised to cover ``estimate_s`` of instrument time."""
        ask_covering(self, "*OPC?", estimate_s)

    def reset(self) -> None:
        """Reset to defaults and clear the status and error queue (``*RST;*CLS``)."""
        self.write("*RST;*CLS")

    def shutdown(self) -> None:
        """Leave the instrument safe: abort any run, every channel to 0 and its output off.
        A failing abort is logged and the channels are still switched off."""
        log.info("Shutting down %s.", self.name)
        try:
            self.write(":ABOR")
        except Exception:
            log.exception("%s: abort failed; switching the outputs off.", self.name)
        for channel in self.channels_in_use:
            channel.shutdown()
        super().shutdown()
