"""Electroforming: a voltage ramp with compliance until the resistance drops."""

from __future__ import annotations

import logging

import numpy as np
from pymeasure.experiment import FloatParameter

from procedures.base import SmuVoltageProcedure

log = logging.getLogger(__name__)


class Forming(SmuVoltageProcedure):
    """Form a virgin cell: staircase up to a ceiling under compliance, stop on a resistance drop."""

    NAME = "forming"
    LIMITED = {"v_start": "voltage", "v_stop": "voltage", "v_read": "voltage",
               "compliance": "current"}
    DEFAULT_SIM_STATION = "sim-rram-cell"
    X_AXIS = "Set voltage (V)"
    Y_AXIS = "Current (A)"
    DISPLAYS = ("v_stop", "compliance", "drop_ratio")

    v_start = FloatParameter("Start voltage", units="V", default=0.0, minimum=-210, maximum=210)
    v_stop = FloatParameter("Voltage ceiling", units="V", default=4.0, minimum=-210, maximum=210)
    v_step = FloatParameter("Voltage step", units="V", default=0.05, minimum=1e-4, maximum=10)
    compliance = FloatParameter("Current compliance", units="A", default=1e-4, minimum=1e-9,
                                maximum=1.05)
    nplc = FloatParameter("Integration time", units="NPLC", default=0.1, minimum=0.01,
                          maximum=10)
    v_read = FloatParameter("Read voltage", units="V", default=0.1, minimum=-5, maximum=5)
    drop_ratio = FloatParameter("Resistance drop to detect", default=10.0, minimum=1.5,
                                maximum=1e6)

    DATA_COLUMNS = ["Point", "Set voltage (V)", "Voltage (V)", "Current (A)",
                    "Resistance (ohm)", "Compliance", "Formed"]

    forming_voltage: float | None = None
    formed_resistance: float | None = None

    def ramp(self) -> np.ndarray:
        n = max(1, int(np.ceil(abs(self.v_stop - self.v_start) / self.v_step - 1e-9)))
        return np.linspace(self.v_start, self.v_stop, n + 1)

    def startup(self) -> None:
        super().startup()
        self.instruments["smu"].output_enabled = True

    def read_resistance(self) -> float:
        smu = self.instruments["smu"]
        smu.source_voltage = self.v_read
        v, i = smu.measure_iv()
        smu.source_voltage = 0.0
        return v / i if i != 0 else np.inf

    def execute(self) -> None:
        smu = self.instruments["smu"]
        r_initial = self.read_resistance()
        log.info("initial resistance at %g V: %.4g ohm", self.v_read, r_initial)
        ramp = self.ramp()
        for k, v_set in enumerate(ramp):
            if self.should_stop():
                log.warning("forming aborted at %g V", v_set)
                return
            v, i, tripped = smu.step_and_measure(v_set)
            r = v / i if i != 0 else np.inf
            formed = tripped or (v_set != 0 and r < r_initial / self.drop_ratio)
            self.emit("results", {"Point": k, "Set voltage (V)": v_set, "Voltage (V)": v,
                                  "Current (A)": i, "Resistance (ohm)": r,
                                  "Compliance": int(tripped), "Formed": int(formed)})
            self.emit("progress", 100.0 * (k + 1) / ramp.size)
            if formed:
                self.forming_voltage = float(v_set)
                break
        smu.ramp_to_voltage(0.0)
        if self.forming_voltage is None:
            log.warning("no forming up to %g V (R = %.4g ohm)", self.v_stop, r_initial)
            return
        self.formed_resistance = self.read_resistance()
        log.info("formed at %g V; resistance %.4g ohm -> %.4g ohm", self.forming_voltage,
                 r_initial, self.formed_resistance)
        self.emit("progress", 100.0)

    def summary(self) -> str:
        if self.forming_voltage is None:
            return f"not formed up to {self.v_stop:g} V"
        return (f"formed at {self.forming_voltage:g} V; resistance after forming "
                f"{self.formed_resistance:.4g} ohm")
