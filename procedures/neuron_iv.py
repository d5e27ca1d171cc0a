"""Current-swept I–V of a threshold switch: the S-shaped curve, its threshold and hold points."""

from __future__ import annotations

import logging
import math

import numpy as np
from pymeasure.experiment import FloatParameter, IntegerParameter

from procedures.base import StationProcedure

log = logging.getLogger(__name__)


def s_curve_folds(current: np.ndarray, voltage: np.ndarray) -> dict[str, float]:
    """Threshold (first local maximum of V along rising I) and hold (the minimum after it) of
    a current-swept I–V; NaN if the curve has no negative-differential-resistance part."""
    i, v = np.asarray(current, float), np.asarray(voltage, float)
    falling = np.flatnonzero(np.diff(v) < 0)
    nan = {"v_th": math.nan, "i_th": math.nan, "v_hold": math.nan, "i_hold": math.nan}
    if not falling.size:
        return nan
    k_th = int(falling[0])
    k_hold = k_th + int(np.argmin(v[k_th:]))
    if k_hold == k_th:
        return nan
    return {"v_th": float(v[k_th]), "i_th": float(i[k_th]), "v_hold": float(v[k_hold]),
            "i_hold": float(i[k_hold])}


class NeuronIV(StationProcedure):
    """Current-swept I–V of a threshold switch (SMU): threshold and hold voltages."""

    NAME = "neuron-iv"
    ROLES = ("smu",)
    DEFAULT_SIM_STATION = "sim-nbox-neuron"
    X_AXIS = "Current (A)"
    Y_AXIS = "Voltage (V)"
    DISPLAYS = ("i_start", "i_stop", "points")

    i_start = FloatParameter("First current", units="A", default=1e-6, minimum=1e-9,
                             maximum=1.0)
    i_stop = FloatParameter("Last current", units="A", default=1.5e-3, minimum=1e-9,
                            maximum=1.0)
    points = IntegerParameter("Points (log spaced)", default=120, minimum=5, maximum=10000)
    compliance = FloatParameter("Voltage compliance", units="V", default=3.0, minimum=0.02,
                                maximum=210)
    delay = FloatParameter("Settling per point", units="s", default=1e-3, minimum=0,
                           maximum=10)
    nplc = FloatParameter("Integration time", units="NPLC", default=0.1, minimum=0.01,
                          maximum=10)

    LIMITED = {"i_start": "current", "i_stop": "current", "compliance": "voltage"}
    DATA_COLUMNS = ["Point", "Current (A)", "Voltage (V)", "Resistance (ohm)",
                    "Threshold voltage (V)", "Threshold current (A)", "Hold voltage (V)",
                    "Hold current (A)"]

    def preflight(self, limits) -> list[str]:
        problems = super().preflight(limits)
        if not self.i_start < self.i_stop:
            problems.append(f"i_start = {self.i_start:g} A must be below i_stop = "
                            f"{self.i_stop:g} A")
        return problems

    def execute(self) -> None:
        smu = self.instruments["smu"]
        levels = np.geomspace(self.i_start, self.i_stop, self.points)
        if self.should_stop():
            return
        i, v, _t = smu.sweep_current_list(levels, delay=self.delay, nplc=self.nplc,
                                          compliance=self.compliance)
        folds = s_curve_folds(i, v)
        for k in range(i.size):
            if self.should_stop():
                log.warning("neuron-iv aborted at point %d", k)
                return
            self.emit("results", {
                "Point": k, "Current (A)": i[k], "Voltage (V)": v[k],
                "Resistance (ohm)": v[k] / i[k] if i[k] else math.nan,
                "Threshold voltage (V)": folds["v_th"], "Threshold current (A)": folds["i_th"],
                "Hold voltage (V)": folds["v_hold"], "Hold current (A)": folds["i_hold"]})
            self.emit("progress", 100.0 * (k + 1) / i.size)
