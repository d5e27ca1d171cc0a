"""Program junction resonances: set each junction's f_r to its target (input frequency +
detuning) through its DC bias, then verify by re-measuring (recipe (2) of PHYSICS.md §3.5).

Each junction k has its own bias tee and SMU (station roles ``bias0``, ``bias1``, …; a single
junction uses ``smu``). Its resonance is measured on its own DC port with a spin-diode spectrum
(the generator in list mode), the tuning slope df/dI is taken from the junction's newest
``resonance-tuning`` calibration or measured with a probe current, and the bias is corrected by
secant steps until the resonance lies within half the tolerance; the last measurement is the
verification. The bias found goes to the calibration store (model ``programmed-resonance``),
from which ``chain-response`` and training set it again.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from pymeasure.experiment import BooleanParameter, FloatParameter, IntegerParameter, Parameter

from labctl.calibration import Parameter as Fitted
from labctl.errors import ConfigError
from procedures.rf_base import RfProcedure, design_frequencies, numbered_roles, parse_floats

log = logging.getLogger(__name__)


def bias_roles(station) -> list[str]:
    """The junctions' bias SMUs: ``bias0, bias1, …``, else the single ``smu``."""
    return numbered_roles(station, "bias") or ["smu"]


class ProgramResonance(RfProcedure):
    """Set junction resonances to target detunings through their bias currents, verified."""

    NAME = "program-resonance"
    ROLES = ("rf_source",)
    DEFAULT_SIM_STATION = "sim-rf-chain"
    LIMITED = {"probe_current": "current", "compliance_voltage": "voltage"}
    X_AXIS = "Junction"
    Y_AXIS = "Error (Hz)"
    DISPLAYS = ("junctions", "detuning", "tolerance")

    junctions = Parameter("Junctions (all, or indices 0,2,…)", default="all")
    f_min = FloatParameter("Lowest input frequency", units="Hz", default=40e6, minimum=9e3,
                           maximum=20e9)
    f_max = FloatParameter("Highest input frequency", units="Hz", default=120e6, minimum=9e3,
                           maximum=20e9)
    detuning = FloatParameter("Target detuning f_r - f_in", units="Hz", default=300e3,
                              minimum=-1e9, maximum=1e9)
    detunings = Parameter("Per-junction detunings (Hz, comma list, or empty)",
                          default="")
    tolerance = FloatParameter("Tolerance", units="Hz", default=20e3, minimum=1, maximum=1e9)
    max_iterations = IntegerParameter("Corrections at most", default=6, minimum=1, maximum=50)
    probe_current = FloatParameter("Probe current (slope)", units="A", default=10e-6,
                                   minimum=-0.1, maximum=0.1)
    use_calibration = BooleanParameter("Slope from resonance-tuning calibration", default=True)
    alpha_guess = FloatParameter("Expected damping", default=0.01, minimum=1e-4, maximum=0.5)
    window_linewidths = FloatParameter("Window half-width", units="linewidths", default=5.0,
                                       minimum=2, maximum=50)
    points = IntegerParameter("Points per spectrum", default=41, minimum=8, maximum=3201)
    power = FloatParameter("RF power", units="dBm", default=-30, minimum=-130, maximum=20)

    DATA_COLUMNS = ["Junction", "Iteration", "Bias current (A)", "Target (Hz)", "f_r (Hz)",
                    "f_r err (Hz)", "Error (Hz)", "Verified"]

    # -- what to program ------------------------------------------------------------------------
    def selection(self, n: int) -> list[int]:
        if str(self.junctions).strip().lower() == "all":
            return list(range(n))
        picked = [int(x) for x in parse_floats(self.junctions, "junctions")]
        bad = [k for k in picked if not 0 <= k < n]
        if bad:
            raise ValueError(f"junctions: {bad[0]} is not a junction of this station (0..{n - 1})")
        return picked

    def targets(self, n: int) -> np.ndarray:
        f_in = design_frequencies(self.f_min, self.f_max, n)
        if str(self.detunings).strip():
            d = parse_floats(self.detunings, "detunings")
            if len(d) != n:
                raise ValueError(f"detunings: {len(d)} values for {n} junctions")
            return f_in + np.array(d)
        return f_in + self.detuning

    def check_instruments(self, station) -> list[str]:
        """Open every bias SMU and check the junction list and targets before the run."""
        roles = bias_roles(station)
        try:
            for role in roles:
                station.instrument(role)
            self.selection(len(roles))
            self.targets(len(roles))
        except (ConfigError, ValueError) as exc:
            return [str(exc)]
        return []

    def startup(self) -> None:
        super().startup()
        self.bias_roles = bias_roles(self.station)
        for role in self.bias_roles:
            self.instruments[role] = self.station.instrument(role)

    # -- programming ----------------------------------------------------------------------------
    def measure(self, gen, smu, centre: float):
        freqs = self.window(centre, self.window_linewidths * self.alpha_guess * centre,
                            self.points)
        _, fit = self.spectrum(gen, smu, freqs, self.power)
        return fit

    def slope(self, device: str) -> float | None:
        """df/dI (Hz/A) from the newest resonance-tuning calibration of ``device``, if any."""
        if not self.use_calibration:
            return None
        try:
            cal = self.station.calibration.latest(self.station.chip, device, "resonance-tuning")
        except ConfigError:
            return None
        value = cal.parameters.get("df_di")
        return value.value if value is not None and value.value != 0 else None

    def execute(self) -> None:
        gen = self.instruments["rf_source"]
        n = len(self.bias_roles)
        chosen, targets = self.selection(n), self.targets(n)
        limit = self.station.limits.current
        self.results = {}
        for done, k in enumerate(chosen):
            smu = self.instruments[self.bias_roles[k]]
            outcome = self.program(gen, smu, k, targets[k], limit)
            if outcome is None:
                log.warning("program-resonance aborted at junction %d", k)
                return
            self.results[k] = outcome
            self.emit("progress", 100.0 * (done + 1) / len(chosen))
        bad = {k: r for k, r in self.results.items() if not r["verified"]}
        log.info("program-resonance: %d of %d junctions within %g Hz", len(self.results) -
                 len(bad), len(self.results), self.tolerance)

    def program(self, gen, smu, k: int, target: float, limit: float) -> dict | None:
        device = f"mtj{k}"
        current = 0.0
        self.bias(smu, current)
        fit = self.measure(gen, smu, target)
        if fit is None:
            raise RuntimeError(f"junction {k}: no resonance found near {target:.6g} Hz")
        slope = self.slope(device)
        history = [(current, fit["f_r"].value)]
        if slope is None:  # measure it: one probe step
            smu.source_current = current = self.probe_current
            fit = self.measure(gen, smu, history[-1][1])
            if fit is None:
                raise RuntimeError(f"junction {k}: resonance lost at the probe current")
            history.append((current, fit["f_r"].value))
            slope = (history[1][1] - history[0][1]) / (history[1][0] - history[0][0])
        for iteration in range(self.max_iterations + 1):
            f_r = fit["f_r"].value
            error = f_r - target
            done = abs(error) <= self.tolerance / 2 or iteration == self.max_iterations
            self.emit("results", {"Junction": k, "Iteration": iteration,
                                  "Bias current (A)": current, "Target (Hz)": target,
                                  "f_r (Hz)": f_r, "f_r err (Hz)": fit["f_r"].stderr,
                                  "Error (Hz)": error,
                                  "Verified": int(done and abs(error) <= self.tolerance)})
            if done:
                break
            if self.should_stop():
                return None
            current = float(np.clip(current - error / slope, -limit, limit))
            smu.source_current = current
            fit = self.measure(gen, smu, target)
            if fit is None:
                raise RuntimeError(f"junction {k}: resonance lost at {current:g} A")
            history.append((current, fit["f_r"].value))
            (i0, f0), (i1, f1) = history[-2], history[-1]
            if i1 != i0 and (f1 - f0) / (i1 - i0) * slope > 0:  # secant, same sign only
                slope = (f1 - f0) / (i1 - i0)
        verified = abs(error) <= self.tolerance
        self.save_calibration(device, "programmed-resonance", {
            "bias_current": Fitted(current, math.nan, "A"),
            "f_r": fit["f_r"], "target": Fitted(float(target), 0.0, "Hz")},
            verified=bool(verified), tolerance_hz=self.tolerance)
        return {"bias": current, "f_r": fit["f_r"].value, "target": float(target),
                "verified": verified}
