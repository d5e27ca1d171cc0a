"""Switching probability of every selected synapse of a stochastic-synapse array, fitted per
synapse and stored in the calibration store (what in-situ training reads as P(x)).

For each amplitude, one :meth:`~labctl.array.ArrayController.cell_switch_counts` call runs
``trials`` reset → pulse → read trials on every selected cell — one transaction on a native or
batched controller, whatever the number of trials and cells. Each synapse's counts are fitted
with the Ellis et al. sigmoid (``dw-sigmoid``: x0, dx, a with standard errors) and saved as
device ``syn-<row>-<col>``.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from pymeasure.experiment import FloatParameter, IntegerParameter

from labctl import switching
from procedures.array_base import ArrayProcedure

log = logging.getLogger(__name__)


def synapse_name(row: int, col: int) -> str:
    """The calibration device name of synapse (row, col)."""
    return f"syn-{row}-{col}"


class ArraySwitching(ArrayProcedure):
    """P(switch) versus drive amplitude of every selected synapse; a sigmoid fit per synapse."""

    NAME = "array-switching-probability"
    DEFAULT_SIM_STATION = "sim-dw-synapse-array"
    X_AXIS = "Amplitude (V)"
    Y_AXIS = "P switch"
    DISPLAYS = ("rows", "cols", "trials", "pulse_width")
    LIMITED = {"v_read": "voltage", "amplitude_start": "voltage", "amplitude_stop": "voltage",
               "reset_amplitude": "voltage", "pulse_width": "pulse_width"}

    amplitude_start = FloatParameter("First amplitude", units="V", default=1.0, minimum=-210,
                                     maximum=210)
    amplitude_stop = FloatParameter("Last amplitude", units="V", default=7.5, minimum=-210,
                                    maximum=210)
    points = IntegerParameter("Amplitudes", default=14, minimum=4, maximum=1000)
    trials = IntegerParameter("Trials per amplitude and synapse", default=300, minimum=1,
                              maximum=1_000_000)
    reset_amplitude = FloatParameter("Reset pulse", units="V", default=-1.5, minimum=-210,
                                     maximum=210)
    pulse_width = FloatParameter("Pulse width", units="s", default=1e-6, minimum=1e-9,
                                 maximum=10)
    contrast = FloatParameter("Resistance change that counts as switched", default=0.2,
                              minimum=0.01, maximum=100)

    DATA_COLUMNS = ["Row", "Column", "Amplitude (V)", "Trials", "Switched", "P switch",
                    "P low", "P high"]

    fits: dict[tuple[int, int], switching.Fit] | None = None

    def execute(self) -> None:
        rows, cols = self.devices()
        amplitudes = np.linspace(self.amplitude_start, self.amplitude_stop, self.points)
        counts = np.zeros((amplitudes.size, rows.size), dtype=np.int64)
        for k, amplitude in enumerate(amplitudes):
            if self.should_stop():
                log.warning("array switching stopped at amplitude %g V", amplitude)
                return
            counts[k] = self.array.cell_switch_counts(
                rows, cols, np.full(rows.size, amplitude), self.trials,
                reset=self.reset_amplitude, vread=self.v_read, width=self.pulse_width,
                contrast=self.contrast, bias=self.pulse_bias_scheme())
            lo, hi = switching.wilson(counts[k], self.trials)
            for j, (r, c) in enumerate(zip(rows, cols, strict=True)):
                self.emit("results", {
                    "Row": int(r), "Column": int(c), "Amplitude (V)": float(amplitude),
                    "Trials": self.trials, "Switched": int(counts[k, j]),
                    "P switch": counts[k, j] / self.trials, "P low": lo[j], "P high": hi[j]})
            self.emit("progress", 80.0 * (k + 1) / amplitudes.size)
        self.fits = {}
        model = switching.model("dw-sigmoid")
        maps = {name: np.full(self.shape, math.nan) for name in model.parameters}
        store, chip = self.station.calibration, self.station.chip
        widths = np.full(amplitudes.size, self.pulse_width)
        trials = np.full(amplitudes.size, self.trials)
        for j, (r, c) in enumerate(zip(rows, cols, strict=True)):
            if self.should_stop():
                log.warning("array switching stopped while fitting")
                return
            try:
                fit = switching.fit_model(model, amplitudes, widths, counts[:, j], trials)
            except ValueError as exc:
                log.warning("synapse (%d, %d): no fit (%s)", r, c, exc)
                continue
            self.fits[(int(r), int(c))] = fit
            for name, value in zip(model.parameters, fit.values, strict=True):
                maps[name][r, c] = value
            store.save(chip, synapse_name(r, c), model.name, fit.parameters(),
                       run=str(self.results_path), procedure=self.NAME,
                       station=self.station.name,
                       extra={"width_s": self.pulse_width, "trials": int(trials.sum())})
            self.emit("progress", 80.0 + 20.0 * (j + 1) / rows.size)
        for name, values in maps.items():
            self.file.write_map(f"fit_{name}", values, model=model.name)
        self.file.write_trace("counts", counts, amplitudes_v=amplitudes,
                              trials=self.trials)
