"""What an SMU does for the SMU + matrix array controller (:mod:`drivers.smu_matrix`), one
adapter per SMU family: source voltage and measure current, "pulse these amplitudes (each
``width`` s, optionally each followed by a read at ``vread``) and return the currents" as one
list sweep, a spot read at a voltage, the current compliance, the pulse-width limits and time
grid of the family, and the safe state.

- :class:`Keithley2450Port`: a list sweep (:meth:`~drivers.keithley2450.Keithley2450.
  sweep_voltage_list`) whose points are DC levels, each held for the source delay plus the
  measurement: a pulse of ``width`` is a point with delay ``width − t_int`` (t_int =
  ``nplc``/line frequency). The 2450 takes 0 or 50 µs..10 ks as list-sweep delay (2450
  Reference Manual, ``:SOURce:SWEep:VOLTage:LIST``), hence ``min_pulse_width = t_int + 50 µs``
  (2.05 ms at the default 0.1 PLC, 50 Hz) on a 1 µs grid. The sweep's trigger model ends with
  the output off.
- :class:`B2900Port`: a pulsed list sweep (:meth:`~drivers.keysight_b2900.B2900Channel.
  pulse_list`, base 0 V): each level is a pulse of ``width`` from 10 µs (B2911A/B2912A) or
  50 µs (B2901A/B2902A) (model from ``*IDN?``) to 100 000 s, set with 1 µs resolution
  (Keysight B2900 data sheet), measured at its end; spot reads are DC ``:MEAS:CURR?`` at
  ``nplc``.
"""

from __future__ import annotations

import math

import numpy as np

from drivers.keysight_b2900 import HARDWARE_LIMITS as B2900_LIMITS
from drivers.keysight_b2900 import KeysightB2900

TIME_GRID_S = 1e-6
MIN_SWEEP_DELAY_S = 50e-6     # 2450 :SOUR:SWE:<f>:LIST delay: 0, or 50 µs to 10 ks
MAX_SWEEP_DELAY_S = 1e4


def on_grid_up(t: float, grid: float = TIME_GRID_S) -> float:
    """``t`` rounded up to the time grid."""
    return math.ceil(round(t / grid, 6)) * grid


def _levels(amplitudes, vread: float | None) -> np.ndarray:
    """The list of levels: each amplitude, followed by ``vread`` if given."""
    levels = np.asarray(amplitudes, dtype=float).reshape(-1)
    if vread is not None:
        levels = np.column_stack([levels, np.full(levels.size, vread)]).reshape(-1)
    return levels


class SmuPort:
    """The SMU operations the composite uses. Subclasses set ``min_pulse_width``,
    ``max_pulse_width`` (s) and ``time_grid`` (s) in ``prepare``."""

    min_pulse_width: float
    max_pulse_width: float
    time_grid: float = TIME_GRID_S

    def __init__(self, smu):
        self.smu = smu

    @property
    def id(self) -> str:
        return str(self.smu.id).strip()

    def prepare(self, nplc: float) -> None:
        """Source voltage at 0 V, measure current at ``nplc`` power-line cycles."""
        raise NotImplementedError

    def output_ready(self) -> None:
        """Before routing a read: the output on at 0 V (whatever a sweep left)."""

    def read(self, voltage: float) -> float:
        """Source ``voltage`` (DC) and return the current measured (A); after
        :meth:`output_ready`."""
        raise NotImplementedError

    def pulses(self, amplitudes, width: float, vread: float | None) -> np.ndarray:
        """One list sweep: each amplitude for ``width`` s (each followed by ``vread`` for as
        long if given); the current (A) measured at each level."""
        raise NotImplementedError

    def set_compliance(self, current: float) -> None:
        raise NotImplementedError

    def zero(self) -> None:
        """Source level 0 V."""
        raise NotImplementedError

    def shutdown(self) -> None:
        self.smu.shutdown()


class Keithley2450Port(SmuPort):
    """A Keithley 2450 (:class:`~drivers.keithley2450.Keithley2450`)."""

    max_pulse_width = MAX_SWEEP_DELAY_S

    def prepare(self, nplc: float) -> None:
        smu = self.smu
        smu.source_mode = "voltage"
        smu.sense_function = "current"
        smu.current_nplc = nplc
        smu.source_voltage_delay = 0.0
        smu.source_voltage = 0.0
        self.t_int = nplc / float(smu.line_frequency)
        self.min_pulse_width = on_grid_up(self.t_int + MIN_SWEEP_DELAY_S)
        self._output_on = False

    def output_ready(self) -> None:
        if not self._output_on:
            # after a sweep the level is still the last pulse amplitude, which must not reach
            # the lines when the output comes back on: level 0 first, in the same write
            self.smu.write(":SOUR:VOLT:LEV 0;:OUTP ON")
            self._output_on = True

    def read(self, voltage: float) -> float:
        return self.smu.step_and_measure(voltage)[1]

    def pulses(self, amplitudes, width: float, vread: float | None) -> np.ndarray:
        delay = max(round(width - self.t_int, 9), MIN_SWEEP_DELAY_S)
        _, currents, _ = self.smu.sweep_voltage_list(_levels(amplitudes, vread), delay=delay)
        self._output_on = False  # the sweep's trigger model ends with the output off
        return np.asarray(currents, dtype=float)

    def set_compliance(self, current: float) -> None:
        self.smu.compliance_current = current

    def zero(self) -> None:
        self.smu.source_voltage = 0.0

    def shutdown(self) -> None:
        self._output_on = False
        super().shutdown()


class B2900Port(SmuPort):
    """Channel ``channel`` of a Keysight B2900 (:class:`~drivers.keysight_b2900.KeysightB2900`)."""

    max_pulse_width = B2900_LIMITS["pulse_width"][1]

    def __init__(self, smu, channel: int = 1):
        super().__init__(smu)
        if channel not in range(1, smu.n_channels + 1):
            raise ValueError(f"{smu.name}: no channel {channel!r} (1 to {smu.n_channels})")
        self.ch = getattr(smu, f"ch_{channel}")

    def prepare(self, nplc: float) -> None:
        self.min_pulse_width = KeysightB2900.min_pulse_width(self.id)
        self.ch.write(":SOUR{ch}:FUNC:MODE VOLT;:SOUR{ch}:VOLT:MODE FIX;:SOUR{ch}:FUNC:SHAP DC;"
                      f":SOUR{{ch}}:VOLT 0;:SENS{{ch}}:CURR:NPLC {nplc:g}")
        self._dc = True

    def read(self, voltage: float) -> float:
        """One query (the output is on at the pulses' 0 V base after a pulsed list)."""
        self.smu.check_levels("source_voltage", voltage)
        # after a pulsed list: back to a fixed DC source, in the same message as the reading
        setup = "" if self._dc else ":SOUR{ch}:VOLT:MODE FIX;:SOUR{ch}:FUNC:SHAP DC;"
        self._dc = True
        return float(self.ch.ask(f"{setup}:SOUR{{ch}}:VOLT {voltage:g};:OUTP{{ch}} 1;"
                                 ":MEAS:CURR? (@{ch})"))

    def pulses(self, amplitudes, width: float, vread: float | None) -> np.ndarray:
        self._dc = False
        # the width as set (1 ns, far below the 1 µs grid): 10e-6 computed on the grid is
        # 1.0000000000000001e-05, which the strict width limits would refuse
        return self.ch.pulse_list(_levels(amplitudes, vread), width=round(width, 9))["CURR"]

    def set_compliance(self, current: float) -> None:
        self.ch.compliance_current = current

    def zero(self) -> None:
        self.ch.source_voltage = 0.0


def smu_port(smu) -> SmuPort:
    """The adapter of ``smu``'s family."""
    if isinstance(smu, KeysightB2900):
        return B2900Port(smu)
    if hasattr(smu, "sweep_voltage_list") and hasattr(smu, "step_and_measure"):
        return Keithley2450Port(smu)
    raise TypeError(f"no SMU + matrix adapter for {type(smu).__name__} (Keithley 2450 or "
                    "Keysight B2900 series)")
