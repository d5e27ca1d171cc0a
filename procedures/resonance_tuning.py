"""Resonance of a spin-diode junction vs DC bias current and field, fitted to the tuning law
f_r = f0·(1 + κ_I·I)·(1 + H/H_s) and stored as the junction's ``resonance-tuning``."""

from __future__ import annotations

import logging
import math

import numpy as np
from pymeasure.experiment import FloatParameter, IntegerParameter

from labctl.spectroscopy import FitError, fit_tuning
from procedures.rf_base import JunctionProcedure, fit_row

log = logging.getLogger(__name__)


class ResonanceTracker:
    """Where to look for the next resonance: the last one found, moved by the local slope."""

    def __init__(self, guess: float):
        self.points: list[tuple[float, float]] = []
        self.start_guess = guess

    def new_row(self) -> None:
        self.points = self.points[:1]  # a new field starts from the first bias of the last row

    def guess(self, x: float) -> float:
        if not self.points:
            return self.start_guess
        if len(self.points) == 1:
            return self.points[-1][1]
        (x0, y0), (x1, y1) = self.points[-2], self.points[-1]
        return y1 + (y1 - y0) / (x1 - x0) * (x - x1) if x1 != x0 else y1

    def found(self, x: float, f_r: float) -> None:
        self.points.append((x, f_r))


class ResonanceTuning(JunctionProcedure):
    """Junction resonance vs DC bias current and field (spin-diode spectra), tuning law fitted."""

    NAME = "resonance-tuning"
    DEFAULT_SIM_STATION = "sim-spin-diode"
    LIMITED = {"bias_start": "current", "bias_stop": "current",
               "compliance_voltage": "voltage"}
    X_AXIS = "Bias current (A)"
    Y_AXIS = "f_r (Hz)"
    DISPLAYS = ("bias_start", "bias_stop", "bias_steps", "field_start", "field_stop")

    f_guess = FloatParameter("Expected resonance", units="Hz", default=100e6, minimum=9e3,
                             maximum=20e9)
    alpha_guess = FloatParameter("Expected damping", default=0.01, minimum=1e-4, maximum=0.5)
    window_linewidths = FloatParameter("Window half-width", units="linewidths", default=6.0,
                                       minimum=2, maximum=50)
    points = IntegerParameter("Points per spectrum", default=61, minimum=8, maximum=3201)
    power = FloatParameter("RF power", units="dBm", default=-30, minimum=-130, maximum=20)
    bias_start = FloatParameter("First bias current", units="A", default=-30e-6, minimum=-0.1,
                                maximum=0.1)
    bias_stop = FloatParameter("Last bias current", units="A", default=30e-6, minimum=-0.1,
                               maximum=0.1)
    bias_steps = IntegerParameter("Bias currents", default=7, minimum=1, maximum=1000)
    field_start = FloatParameter("First field", units="mT", default=0.0, minimum=-100,
                                 maximum=100)
    field_stop = FloatParameter("Last field", units="mT", default=20.0, minimum=-100,
                                maximum=100)
    field_steps = IntegerParameter("Fields", default=3, minimum=1, maximum=1000)

    DATA_COLUMNS = ["Field (mT)", "Bias current (A)", *fit_row(None)]

    def execute(self) -> None:
        gen, smu, coil = self.junction_instruments()
        currents = np.linspace(self.bias_start, self.bias_stop, self.bias_steps)
        fields = np.linspace(self.field_start, self.field_stop, self.field_steps)
        self.bias(smu, currents[0])
        tracker = ResonanceTracker(self.f_guess)
        found = []
        total, done = currents.size * fields.size, 0
        for h in fields:
            coil.ramp_to_field(h)
            tracker.new_row()
            for i in currents:
                if self.should_stop():
                    log.warning("resonance-tuning aborted at %g A, %g mT", i, h)
                    return
                smu.source_current = i
                centre = tracker.guess(i)
                freqs = self.window(centre, self.window_linewidths * self.alpha_guess * centre,
                                    self.points)
                _, fit = self.spectrum(gen, smu, freqs, self.power)
                if fit is None and self.should_stop():
                    return
                if fit is not None:
                    tracker.found(i, fit["f_r"].value)
                    found.append((i, h, fit["f_r"].value, fit["f_r"].stderr))
                self.emit("results", {"Field (mT)": h, "Bias current (A)": i, **fit_row(fit)})
                done += 1
                self.emit("progress", 100.0 * done / total)
        self.store(found)

    def store(self, found) -> None:
        if not found:
            log.warning("no resonance found: nothing calibrated")
            return
        i, h, f, e = (np.array(x) for x in zip(*found, strict=True))
        try:
            self.fit = fit_tuning(i, h, f, e)
        except (FitError, RuntimeError, ValueError) as exc:
            log.warning("no tuning fit: %s", exc)
            return
        fit = self.fit
        log.info("tuning: f0 = %.6g Hz, df/dI = %.4g Hz/A, df/dH = %.4g Hz/mT",
                 fit["f0"].value, fit["df_di"].value, fit["df_dh"].value)
        finite = {k: p for k, p in fit.items() if math.isfinite(p.value)}
        self.save_calibration(self.device_name, "resonance-tuning", finite,
                              power_dbm=self.power, points=len(found))
