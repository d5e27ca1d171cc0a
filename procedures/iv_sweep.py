"""Bipolar I-V sweep with compliance: hysteresis loops of a two-terminal device."""

from __future__ import annotations

import logging

import numpy as np
from pymeasure.experiment import FloatParameter, IntegerParameter, ListParameter

from procedures.base import SmuVoltageProcedure

log = logging.getLogger(__name__)


def bipolar_staircase(v_max: float, v_min: float, v_step: float) -> np.ndarray:
    """One cycle 0 -> v_max -> 0 -> v_min -> 0 in steps of at most v_step (V), no repeats."""

    def leg(a: float, b: float) -> np.ndarray:
        n = max(1, int(np.ceil(abs(b - a) / v_step - 1e-9)))
        return np.linspace(a, b, n + 1)[1:]

    parts = [np.zeros(1)]
    if v_max > 0:
        parts += [leg(0.0, v_max), leg(v_max, 0.0)]
    if v_min < 0:
        parts += [leg(0.0, v_min), leg(v_min, 0.0)]
    return np.concatenate(parts)


class IVSweep(SmuVoltageProcedure):
    """Bipolar I-V staircase with current compliance, N cycles, DC or pulsed (pulse then read)."""

    NAME = "iv-sweep"
    LIMITED = {"v_max": "voltage", "v_min": "voltage", "compliance": "current"}
    DEFAULT_SIM_STATION = "sim-rram-cell-formed"
    X_AXIS = "Set voltage (V)"
    Y_AXIS = "Current (A)"
    DISPLAYS = ("v_max", "v_min", "cycles", "mode")

    v_max = FloatParameter("Maximum voltage", units="V", default=1.5, minimum=0, maximum=210)
    v_min = FloatParameter("Minimum voltage", units="V", default=-1.5, minimum=-210, maximum=0)
    v_step = FloatParameter("Voltage step", units="V", default=0.05, minimum=1e-4, maximum=10)
    cycles = IntegerParameter("Cycles", default=3, minimum=1, maximum=10000)
    compliance = FloatParameter("Current compliance", units="A", default=1e-3, minimum=1e-9,
                                maximum=1.05)
    delay = FloatParameter("Step dwell", units="s", default=1e-3, minimum=50e-6, maximum=10)
    nplc = FloatParameter("Integration time", units="NPLC", default=0.1, minimum=0.01,
                          maximum=10)
    mode = ListParameter("Mode", choices=["dc", "pulsed"], default="dc")
    pulse_width = FloatParameter("Pulse width", units="s", default=1e-3, minimum=50e-6,
                                 maximum=10, group_by="mode", group_condition="pulsed")
    v_read = FloatParameter("Read voltage", units="V", default=0.1, minimum=-5, maximum=5,
                            group_by="mode", group_condition="pulsed")

    DATA_COLUMNS = ["Cycle", "Point", "Set voltage (V)", "Voltage (V)", "Current (A)",
                    "Resistance (ohm)", "Pulse current (A)", "Time (s)"]

    def staircase(self) -> np.ndarray:
        return bipolar_staircase(self.v_max, self.v_min, self.v_step)

    @property
    def pulse_on_time(self) -> float:
        """Longest time (s) the device sees a pulse level: the dwell plus the measurement at
        the slowest line frequency (50 Hz)."""
        return self.pulse_width + self.nplc / 50.0

    def limited_parameters(self) -> dict[str, str]:
        if self.mode == "pulsed":
            return {**self.LIMITED, "v_read": "voltage", "pulse_on_time": "pulse_width"}
        return self.LIMITED

    MAX_CHUNK_S = 1.0  # instrument time per sweep transaction: bounds the abort latency

    def run_cycle(self, smu, levels: np.ndarray, dwell: float):
        """One cycle as instrument-run list sweeps of at most ~MAX_CHUNK_S each, so an abort
        is honoured within that much instrument time even when the dwell is long. Returns
        (V, I, t) arrays, or (None, None, None) if a stop was requested between chunks."""
        per_point = dwell + self.nplc / 50.0 + 1e-3
        chunk = max(1, int(self.MAX_CHUNK_S / per_point))
        if self.mode == "pulsed":
            chunk = max(2, chunk - chunk % 2)  # keep each pulse with its read
        parts = []
        for first in range(0, levels.size, chunk):
            if first and self.should_stop():
                return None, None, None
            parts.append(smu.sweep_voltage_list(levels[first:first + chunk], delay=dwell,
                                                nplc=self.nplc, compliance=self.compliance))
        return (np.concatenate(x) for x in zip(*parts))

    def execute(self) -> None:
        smu = self.instruments["smu"]
        steps = self.staircase()
        pulsed = self.mode == "pulsed"
        if pulsed:  # each level: the pulse, then a read at v_read, both measured
            levels = np.empty(2 * steps.size)
            levels[0::2], levels[1::2] = steps, self.v_read
            dwell = self.pulse_width
        else:
            levels, dwell = steps, self.delay
        total = self.cycles * steps.size
        done = 0
        for cycle in range(1, self.cycles + 1):
            if self.should_stop():
                log.warning("iv-sweep aborted before cycle %d", cycle)
                return
            v, i, t = self.run_cycle(smu, levels, dwell)
            if v is None:
                log.warning("iv-sweep aborted in cycle %d", cycle)
                return
            if pulsed:
                pulse_i, v, i, t = i[0::2], v[1::2], i[1::2], t[1::2]
            else:
                pulse_i = np.full(v.size, np.nan)
            with np.errstate(divide="ignore", invalid="ignore"):
                # R = V/I is meaningless at 0 V (noise over noise): reported as NaN there
                r = np.where((i != 0) & (np.abs(v) > 1e-3), v / i, np.nan)
            for k in range(steps.size):
                if self.should_stop():
                    log.warning("iv-sweep aborted in cycle %d at point %d", cycle, k)
                    return
                self.emit("results", {
                    "Cycle": cycle, "Point": k, "Set voltage (V)": steps[k],
                    "Voltage (V)": v[k], "Current (A)": i[k], "Resistance (ohm)": r[k],
                    "Pulse current (A)": pulse_i[k], "Time (s)": t[k],
                })
                done += 1
                self.emit("progress", 100.0 * done / total)
