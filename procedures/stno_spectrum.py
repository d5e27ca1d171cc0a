"""Spin-torque oscillator emission vs DC bias current: each spectrum fitted for frequency,
linewidth and power, then threshold current I_th and Q of the universal auto-oscillator."""

from __future__ import annotations

import logging
import math

import numpy as np
from pymeasure.experiment import FloatParameter, IntegerParameter, Parameter

from labctl.spectroscopy import FitError, fit_emission_line, fit_oscillator
from procedures.rf_base import RfProcedure

log = logging.getLogger(__name__)


class StnoSpectrum(RfProcedure):
    """Emission spectra of a spin-torque nano-oscillator vs bias current; I_th and Q fitted."""

    NAME = "stno-spectrum"
    ROLES = ("smu", "analyzer")
    DEFAULT_SIM_STATION = "sim-stno"
    LIMITED = {"current_start": "current", "current_stop": "current",
               "compliance_voltage": "voltage"}
    X_AXIS = "Current (A)"
    Y_AXIS = "Power (W)"
    DISPLAYS = ("current_start", "current_stop", "current_steps", "f_center", "f_span")

    current_start = FloatParameter("First bias current", units="A", default=2e-6,
                                   minimum=-0.1, maximum=0.1)
    current_stop = FloatParameter("Last bias current", units="A", default=40e-6, minimum=-0.1,
                                  maximum=0.1)
    current_steps = IntegerParameter("Bias currents", default=20, minimum=2, maximum=1000)
    f_center = FloatParameter("Analyzer centre", units="Hz", default=262e6, minimum=10,
                              maximum=26.5e9)
    f_span = FloatParameter("Analyzer span", units="Hz", default=40e6, minimum=10,
                            maximum=26.5e9)
    rbw = FloatParameter("Resolution bandwidth", units="Hz", default=100e3, minimum=1,
                         maximum=8e6)
    trace_points = IntegerParameter("Trace points", default=1001, minimum=101, maximum=40001)
    averages = IntegerParameter("Averaged sweeps", default=10, minimum=1, maximum=10000)
    device_name = Parameter("Device (calibration name)", default="stno")

    DATA_COLUMNS = ["Current (A)", "Frequency (Hz)", "Frequency err (Hz)", "Linewidth (Hz)",
                    "Linewidth err (Hz)", "Power (W)", "Power err (W)", "Peak (dBm)"]

    def execute(self) -> None:
        smu, sa = self.instruments["smu"], self.instruments["analyzer"]
        currents = np.linspace(self.current_start, self.current_stop, self.current_steps)
        self.bias(smu, currents[0])
        sa.configure(center=self.f_center, span=self.f_span, rbw=self.rbw,
                     points=self.trace_points, averages=self.averages)
        freqs = sa.frequencies
        traces = np.full((currents.size, freqs.size), np.nan)
        lines = {}
        for k, current in enumerate(currents):
            if self.should_stop():
                log.warning("stno-spectrum aborted at %g A", current)
                break
            smu.source_current = current
            traces[k] = sa.sweep_and_read()  # one transaction: sweep, wait, whole trace
            line = fit_emission_line(freqs, traces[k], self.rbw, self.averages)
            if line is not None:
                lines[k] = line
            nan = math.nan
            self.emit("results", {
                "Current (A)": current,
                "Frequency (Hz)": line["frequency"].value if line else nan,
                "Frequency err (Hz)": line["frequency"].stderr if line else nan,
                "Linewidth (Hz)": line["fwhm"].value if line else nan,
                "Linewidth err (Hz)": line["fwhm"].stderr if line else nan,
                "Power (W)": line["power"].value if line else 0.0,
                "Power err (W)": line["power"].stderr if line else nan,
                "Peak (dBm)": float(np.max(traces[k])),
            })
            self.emit("progress", 100.0 * (k + 1) / currents.size)
        self.store(currents, freqs, traces, lines)

    def store(self, currents, freqs, traces, lines) -> None:
        self.write_arrays(
            maps={"spectra": (traces, {"units": "dBm", "rows": "current (A)",
                                       "columns": "frequency (Hz)"})},
            traces={"current": (currents, {"units": "A"}), "frequency": (freqs, {"units": "Hz"})})
        ks = sorted(lines)
        try:
            fit = fit_oscillator(currents[ks], [lines[k]["power"].value for k in ks],
                                 [lines[k]["power"].stderr for k in ks],
                                 [lines[k]["frequency"].value for k in ks],
                                 [lines[k]["frequency"].stderr for k in ks])
        except FitError as exc:
            log.warning("no oscillator fit: %s", exc)
            return
        self.fit = fit
        log.info("STNO: I_th = %.4g ± %.2g A, Q = %.3g ± %.2g", fit["i_th"].value,
                 fit["i_th"].stderr, fit["q"].value, fit["q"].stderr)
        self.save_calibration(self.device_name, "stno", fit, rbw_hz=self.rbw,
                              averages=self.averages)
