"""Spin-diode spectroscopy: rectified DC voltage vs frequency at set RF powers, bias and field,
fitted for resonance, linewidth, symmetric/antisymmetric amplitudes and sensitivity."""

from __future__ import annotations

import logging
import re

import numpy as np
from pymeasure.experiment import FloatParameter, IntegerParameter, ListParameter

from labctl.spectroscopy import FitError, fit_spin_diode
from procedures.rf_base import JunctionProcedure, dbm_to_w, fit_row

log = logging.getLogger(__name__)


class SpinDiode(JunctionProcedure):
    """Spin-diode spectrum, or a map over power, bias or field, of one junction, fitted."""

    NAME = "spin-diode"
    DEFAULT_SIM_STATION = "sim-spin-diode"
    LIMITED = {"bias_current": "current", "compliance_voltage": "voltage"}
    X_AXIS = "Frequency (Hz)"
    Y_AXIS = "Rectified voltage (V)"
    DISPLAYS = ("f_center", "f_span", "power", "map_axis", "map_steps")

    f_center = FloatParameter("Centre frequency", units="Hz", default=100e6, minimum=9e3,
                              maximum=20e9)
    f_span = FloatParameter("Frequency span", units="Hz", default=12e6, minimum=1e3,
                            maximum=10e9)
    points = IntegerParameter("Points per spectrum", default=121, minimum=8, maximum=3201)
    power = FloatParameter("RF power", units="dBm", default=-30, minimum=-130, maximum=20)
    bias_current = FloatParameter("DC bias current", units="A", default=0.0, minimum=-0.1,
                                  maximum=0.1)
    field = FloatParameter("Field", units="mT", default=0.0, minimum=-100, maximum=100)
    map_axis = ListParameter("Map rows", choices=["none", "power", "bias", "field"],
                             default="none")
    map_start = FloatParameter("First row (dBm, A or mT)", default=-40, minimum=-130,
                               maximum=100, group_by="map_axis",
                               group_condition=lambda v: v != "none")
    map_stop = FloatParameter("Last row (dBm, A or mT)", default=-20, minimum=-130,
                              maximum=100, group_by="map_axis",
                              group_condition=lambda v: v != "none")
    map_steps = IntegerParameter("Rows", default=5, minimum=1, maximum=1000,
                                 group_by="map_axis", group_condition=lambda v: v != "none")

    DATA_COLUMNS = ["Power (dBm)", "Frequency (Hz)", "Bias current (A)", "Field (mT)",
                    "Rectified voltage (V)"]

    def limited_parameters(self) -> dict[str, str]:
        if self.map_axis == "bias":
            return {**self.LIMITED, "map_start": "current", "map_stop": "current"}
        return self.LIMITED

    def rows(self) -> np.ndarray:
        """(power dBm, bias A, field mT) of every row of the map (one row: no map)."""
        n = 1 if self.map_axis == "none" else self.map_steps
        rows = np.tile([self.power, self.bias_current, self.field], (n, 1))
        if self.map_axis != "none":
            column = ("power", "bias", "field").index(self.map_axis)
            rows[:, column] = np.linspace(self.map_start, self.map_stop, n)
        return rows

    def execute(self) -> None:
        gen, smu, coil = self.junction_instruments()
        rows = self.rows()
        freqs = self.window(self.f_center, self.f_span / 2, self.points)
        baselines = np.empty(len(rows))

        def set_row(r: int) -> None:
            """Bias and field of row r, then its baseline (RF off); the list waits meanwhile."""
            smu.source_current = rows[r, 1]
            coil.ramp_to_field(rows[r, 2])
            baselines[r] = self.baseline(gen, smu)
            gen.enable()

        def next_row(k: int) -> None:
            if (k + 1) % freqs.size == 0 and (k + 1) // freqs.size < len(rows):
                set_row((k + 1) // freqs.size)

        coil.ramp_to_field(rows[0, 2])
        self.bias(smu, rows[0, 1])
        set_row(0)
        total = freqs.size * len(rows)
        # the whole map in list mode: every row's frequencies at its power, one list
        volts = self.rf_points(gen, smu, np.tile(freqs, len(rows)),
                               np.repeat(rows[:, 0], freqs.size),
                               progress=lambda k: self.emit("progress", 100.0 * k / total),
                               on_point=next_row)
        if volts is None:
            log.warning("spin-diode aborted")
            return
        rect = volts.reshape(len(rows), freqs.size) - baselines[:, None]
        for r, (p, i, h) in enumerate(rows):
            for k, f in enumerate(freqs):
                self.emit("results", {"Power (dBm)": p, "Frequency (Hz)": f,
                                      "Bias current (A)": i, "Field (mT)": h,
                                      "Rectified voltage (V)": rect[r, k]})
        self.fits = self.fit_rows(freqs, rows[:, 0], rect)
        self.store(freqs, rows, rect)

    def fit_rows(self, freqs, powers, rect) -> list:
        fits = []
        for row, p in enumerate(powers):
            try:
                fits.append(fit_spin_diode(freqs, rect[row], float(dbm_to_w(p))))
            except FitError as exc:
                log.warning("no fit at %g dBm: %s", p, exc)
                fits.append(None)
        return fits

    def store(self, freqs, rows, rect) -> None:
        """Every row's fit to the sidecar with the map; to the calibration store the fit at the
        highest power for a power map or a single spectrum, every row's fit (its bias and field
        noted) for a bias or field map."""
        fits = {"fit_" + re.sub(r"\W+", "_", key).strip("_"):  # an HDF5 name: no "/"
                ([fit_row(f)[key] for f in self.fits], {"column": key}) for key in fit_row(None)}
        self.write_arrays(
            maps={"rectified_voltage": (rect, {"units": "V", "rows": self.map_axis,
                                               "columns": "frequency (Hz)"})},
            traces={"frequency": (freqs, {"units": "Hz"}),
                    "rows": (rows, {"columns": "power (dBm), bias (A), field (mT)"}), **fits})
        if self.map_axis in ("bias", "field"):
            chosen = [r for r in range(len(rows)) if self.fits[r]]
        else:
            chosen = [r for r in range(len(rows)) if self.fits[r]][-1:]
        if not chosen:
            log.warning("no spectrum could be fitted: nothing calibrated")
        for r in chosen:
            fit = self.fits[r]
            log.info("spin-diode fit at %g dBm, %g A, %g mT: f_r = %.6g ± %.2g Hz, alpha = "
                     "%.4g ± %.2g, sensitivity %.4g ± %.2g mV/mW", *rows[r], fit["f_r"].value,
                     fit["f_r"].stderr, fit["alpha"].value, fit["alpha"].stderr,
                     fit["sensitivity"].value, fit["sensitivity"].stderr)
            self.save_calibration(self.device_name, "spin-diode", fit,
                                  power_dbm=float(rows[r, 0]), bias_current_a=float(rows[r, 1]),
                                  field_mt=float(rows[r, 2]))
