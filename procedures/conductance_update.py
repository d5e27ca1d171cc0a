"""Conductance update: potentiation then depression pulse trains, and the nonlinear update fit.

Per selected device (all of them together): an optional preparing pulse (a full RESET, so every
device starts near its lowest conductance), a read, ``n_pulses`` identical potentiation (SET,
positive) pulses, then ``n_pulses`` identical depression (RESET, negative) pulses, with a read
after every pulse. Each phase is one controller call (a pulse train on the whole selection; a
train step pulses every selected device once, then reads it). The default pulses are short
(1 µs) so that one pulse moves a device by a small step; they run on the controller's fast
pulse path with the unselected lines open (``pulse_bias = float``; ArC TWO holds the unselected
lines at a bias only for pulses of 30 µs and more).

**Model** — the nonlinear weight-update model of NeuroSim (P.-Y. Chen, X. Peng and S. Yu,
"NeuroSim: a circuit-level macro model for benchmarking neuro-inspired architectures in online
learning", IEEE TCAD 37(12), 3067-3080 (2018); authors' code ``neurosim/MLP_NeuroSim_V3.0``,
``Cell.cpp`` ``RealDevice::Write``: G = B·(1 − exp(−P/A)) + G_min, B = (G_max − G_min)/(1 −
exp(−P_max/A))), written with the dimensionless nonlinearity ν = P_max/A and ``N`` pulses per
phase::

    potentiation (p SET pulses):  G(p) = G_min + (G_max − G_min)·f_ν(p/N)
    depression   (q RESET pulses): G(q) = G_max − (G_max − G_min)·f_ν(q/N)
    f_ν(x) = (1 − exp(−ν·x))/(1 − exp(−ν)),   f_0(x) = x (linear device)

ν > 0: large first steps that shrink (saturating, the usual RRAM); ν < 0: steps that grow. The
depression curve is NeuroSim's LTD branch (negative A there) mirrored so that ν_D > 0 means the
same kind of saturation as ν_P > 0 (ν_D = −P_max/A_LTD).

**Fit** — each phase of each device separately: for a given ν the model is linear in its two
end points, so they have a closed-form least-squares solution and the residual sum of squares
S(ν) is a function of ν alone; ν is found by a grid over [−``NU_BOUND``, ``NU_BOUND``] and a
golden-section refinement (numpy only, vectorised over devices). Its standard error comes from
the curvature of S: se(ν)² ≈ 2·σ²/S''(ν), σ² = S/(points − 3).

**Reported** — per device: ν_P, ν_D (with standard errors), the fitted end points, the dynamic
range G_max/G_min (G_max = mean of the potentiation end and the depression start, G_min = mean of
the potentiation start and the depression end), the **asymmetry** Δν = ν_P − ν_D (reported as
|Δν|; NeuroSim's LTP/LTD nonlinearity mismatch) and the **first-step ratio**
ΔG_P(1)/|ΔG_D(1)| = (G_max,P − G_min,P)·f_ν_P(1/N) / ((G_max,D − G_min,D)·f_ν_D(1/N)) (1 for a
symmetric device). Across the devices that switched (each phase moved the conductance by more
than ``SWITCHING_SNR`` RMS residuals; stuck and unformed devices are listed and left out): mean,
standard deviation, standard error of the mean, median.

Rows: one per pulse number (X) with the median, quartiles and mean of the selected devices'
conductance (Y), which plots one clean curve live; every device's conductance trace and its fit
go to the array file (``/traces/conductance``, ``/traces/fit``, ``/maps/nu_p`` …).
"""

from __future__ import annotations

import logging
import math

import numpy as np
from pymeasure.experiment import FloatParameter, IntegerParameter, ListParameter

from procedures.array_base import BIAS_CHOICES, ArrayProcedure, describe

log = logging.getLogger(__name__)

NU_BOUND = 40.0
"""|ν| searched (a device with ν ≥ 40 moves 98 % of its range in the first 10 % of its pulses)."""
_GRID_STEP = 0.05
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0

FIT_COLUMNS = ("row", "col", "nu_p", "nu_p_se", "nu_d", "nu_d_se", "g_min_p", "g_max_p",
               "g_max_d", "g_min_d", "dynamic_range", "asymmetry", "first_step_ratio",
               "rms_p", "rms_d", "switching")
"""Columns of ``/traces/fit`` (one row per device): ν and standard error of each phase, the
fitted end points (S), dynamic range, |ν_P − ν_D|, first-step ratio, RMS residuals (S), and
whether the device switched (1) or not (0: excluded from the statistics)."""
SWITCHING_SNR = 5.0
"""A device switched if each phase moved its conductance by more than this many RMS residuals
of its fit (a stuck or unformed device does not, and its ν means nothing)."""


# ====================================================================== the model and its fit
def update_shape(nu, x) -> np.ndarray:
    """f_ν(x) = (1 − e^(−ν·x))/(1 − e^(−ν)) (x = pulses/N in [0, 1]); f_0(x) = x.

    ``nu`` and ``x`` broadcast against each other."""
    nu = np.asarray(nu, dtype=float)
    x = np.asarray(x, dtype=float)
    small = np.abs(nu) < 1e-9
    safe = np.where(small, 1.0, nu)
    with np.errstate(over="ignore", invalid="ignore"):
        f = np.expm1(-safe * x) / np.expm1(-safe)
    return np.where(small, x + 0.0 * nu, f)


def _linear_fit(f: np.ndarray, y: np.ndarray):
    """Least squares y ≈ a + b·f along the last axis: (a, b, residual sum of squares)."""
    fm = f.mean(axis=-1, keepdims=True)
    ym = y.mean(axis=-1, keepdims=True)
    fc, yc = f - fm, y - ym
    sff = np.einsum("...i,...i->...", fc, fc)
    sfy = np.einsum("...i,...i->...", fc, yc)
    syy = np.einsum("...i,...i->...", yc, yc)
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.where(sff > 0, sfy / sff, 0.0)
    a = ym[..., 0] - b * fm[..., 0]
    sse = np.maximum(syy - b * sfy, 0.0)
    return a, b, sse


def _sse(nu: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Residual sum of squares at per-device ``nu`` (n,) for data ``y`` (n, points)."""
    return _linear_fit(update_shape(nu[:, None], x[None, :]), y)[2]


def fit_update(pulses, g, n_pulses: int | None = None) -> dict[str, np.ndarray]:
    """Fit G = a + b·f_ν(p/N) to every device's phase.

    ``pulses``: (points,) pulse counts from the start of the phase (0 = before its first pulse);
    ``g``: (devices, points) conductances. Returns per device ``nu``, ``nu_se``, ``g_start``
    (fitted G at p = 0), ``g_end`` (at p = N) and ``rms`` (S).
    """
    g = np.atleast_2d(np.asarray(g, dtype=float))
    p = np.asarray(pulses, dtype=float)
    n_total = float(n_pulses if n_pulses is not None else p.max())
    x = p / n_total
    n_dev, points = g.shape
    # scale for conditioning: conductances are ~1e-4 S
    scale = np.nanmax(np.abs(g), axis=1, keepdims=True)
    scale[~np.isfinite(scale) | (scale == 0)] = 1.0
    y = g / scale
    grid = np.arange(-NU_BOUND, NU_BOUND + _GRID_STEP / 2, _GRID_STEP)
    f_grid = update_shape(grid[:, None], x[None, :])  # (grid, points)
    sse_grid = np.empty((n_dev, grid.size))
    for k in range(0, n_dev, 256):  # bounded memory for whole-array selections
        sl = slice(k, k + 256)
        sse_grid[sl] = _linear_fit(f_grid[None, :, :], y[sl, None, :])[2]
    best = np.argmin(sse_grid, axis=1)
    lo = grid[np.maximum(best - 1, 0)]
    hi = grid[np.minimum(best + 1, grid.size - 1)]
    # golden-section refinement inside the bracketing grid cell (vectorised over devices)
    c = hi - _GOLDEN * (hi - lo)
    d = lo + _GOLDEN * (hi - lo)
    fc, fd = _sse(c, x, y), _sse(d, x, y)
    for _ in range(40):
        left = fc < fd
        hi = np.where(left, d, hi)
        lo = np.where(left, lo, c)
        c_new = hi - _GOLDEN * (hi - lo)
        d_new = lo + _GOLDEN * (hi - lo)
        c_keep = np.where(left, c_new, d)
        d_keep = np.where(left, c, d_new)
        fc_next = np.where(left, _sse(c_new, x, y), fd)
        fd_next = np.where(left, fc, _sse(d_new, x, y))
        c, d, fc, fd = c_keep, d_keep, fc_next, fd_next
    nu = (lo + hi) / 2
    a, b, sse = _linear_fit(update_shape(nu[:, None], x[None, :]), y)
    # standard error from the curvature of S(ν) at the minimum
    h = 1e-2
    curv = (_sse(nu + h, x, y) - 2 * sse + _sse(nu - h, x, y)) / h**2
    dof = max(points - 3, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        nu_se = np.where(curv > 0, np.sqrt(2 * (sse / dof) / curv), np.inf)
    s = scale[:, 0]
    g_start = a * s
    g_end = (a + b) * s  # f_ν(1) = 1
    return {"nu": nu, "nu_se": nu_se, "g_start": g_start, "g_end": g_end,
            "rms": np.sqrt(sse / points) * s}


# ====================================================================== the procedure
class ConductanceUpdate(ArrayProcedure):
    """Potentiation/depression pulse trains; NeuroSim nonlinearity ν_P, ν_D, asymmetry, range."""

    NAME = "conductance-update"
    DATA_COLUMNS = ["Pulse", "Phase", "Amplitude (V)", "Median conductance (S)",
                    "Q1 conductance (S)", "Q3 conductance (S)", "Mean conductance (S)",
                    "Devices"]
    X_AXIS = "Pulse"
    Y_AXIS = "Median conductance (S)"
    DISPLAYS = ("n_pulses", "set_amplitude", "reset_amplitude", "rows", "cols")
    LIMITED = {"v_read": "voltage", "set_amplitude": "voltage", "reset_amplitude": "voltage",
               "prepare_amplitude": "voltage", "set_width": "pulse_width",
               "reset_width": "pulse_width", "prepare_width": "pulse_width"}
    PULSES = ((("set_amplitude",), ("set_width",)), (("reset_amplitude",), ("reset_width",)),
              (("prepare_amplitude",), ("prepare_width",)))
    READS_AFTER_PULSES = True
    PHASES = ("initial", "potentiation", "depression")

    # identical short pulses (1 µs) move an RRAM gradually; they need the controller's fast
    # pulse path, which leaves the unselected lines open (ArC TWO holds them only from 30 µs)
    pulse_bias = ListParameter("Unselected lines in pulses", choices=BIAS_CHOICES,
                               default="float")
    n_pulses = IntegerParameter("Pulses per phase", default=50, minimum=3, maximum=100_000)
    set_amplitude = FloatParameter("Potentiation (SET) amplitude", units="V", default=1.0,
                                   minimum=0, maximum=20)
    set_width = FloatParameter("Potentiation pulse width", units="s", default=1e-6,
                               minimum=1e-9, maximum=1)
    reset_amplitude = FloatParameter("Depression (RESET) amplitude", units="V", default=-1.0,
                                     minimum=-20, maximum=0)
    reset_width = FloatParameter("Depression pulse width", units="s", default=1e-6,
                                 minimum=1e-9, maximum=1)
    prepare_amplitude = FloatParameter("Preparing pulse amplitude (0 = none)", units="V",
                                       default=-1.5, minimum=-20, maximum=20)
    prepare_width = FloatParameter("Preparing pulse width", units="s", default=1e-3,
                                   minimum=1e-9, maximum=1)

    # after the run
    conductance: np.ndarray | None = None  # (2·n_pulses + 1, devices), S
    fit: dict[str, np.ndarray] | None = None
    stats: dict[str, dict[str, float]] | None = None
    not_switching: list[tuple[int, int]] = []

    def preflight(self, limits) -> list[str]:
        problems = super().preflight(limits)
        if self.set_amplitude <= 0:
            problems.append("set_amplitude must be positive (the SET polarity)")
        if self.reset_amplitude >= 0:
            problems.append("reset_amplitude must be negative (the RESET polarity)")
        return problems

    # ------------------------------------------------------------------ run
    def execute(self) -> None:
        array = self.array
        rows, cols = self.devices()
        sel = self.selection()
        bias = self.pulse_bias_scheme()
        n, v = int(self.n_pulses), self.v_read
        if self.prepare_amplitude != 0:
            array.pulse(sel, self.prepare_amplitude, self.prepare_width, bias)
        g0 = np.asarray(array.read(sel, v, self.read_bias_scheme()), float).reshape(1, -1) / v
        self._emit_rows(g0, 0, 0, 0.0)
        self.emit("progress", 2.0)
        traces = [g0]
        for phase, amplitude, width in ((1, self.set_amplitude, self.set_width),
                                        (2, self.reset_amplitude, self.reset_width)):
            if self.should_stop():
                log.warning("conductance update stopped before the %s phase",
                            self.PHASES[phase])
                break
            currents = array.pulse_train(sel, np.full(n, amplitude), width, bias, vread=v,
                                         read_bias=self.read_bias_scheme())
            g = np.asarray(currents, float).reshape(n, -1) / v
            traces.append(g)
            if not self._emit_rows(g, 1 + (phase - 1) * n, phase, amplitude):
                break
            self.emit("progress", 2.0 + 46.0 * phase)
        g_all = np.vstack(traces)
        self.conductance = g_all
        self.file.write_trace("conductance", g_all, units="S", vread=v, pulse_bias=bias,
                              axes="pulse number (0 = before the first), device",
                              n_pulses=n)
        self.file.write_trace("devices", np.column_stack([rows, cols]), columns="row,col")
        if g_all.shape[0] == 2 * n + 1:
            self._fit(rows, cols, g_all)
        else:
            log.warning("conductance update incomplete: no fit")
        self.emit("progress", 100.0)

    def _emit_rows(self, g: np.ndarray, first: int, phase: int, amplitude: float) -> bool:
        q1, med, q3 = np.percentile(g, [25, 50, 75], axis=1)
        mean = g.mean(axis=1)
        for k in range(g.shape[0]):
            if self.should_stop():
                log.warning("conductance update stopped while writing rows")
                return False
            self.emit("results", {"Pulse": first + k, "Phase": self.PHASES[phase],
                                  "Amplitude (V)": amplitude,
                                  "Median conductance (S)": float(med[k]),
                                  "Q1 conductance (S)": float(q1[k]),
                                  "Q3 conductance (S)": float(q3[k]),
                                  "Mean conductance (S)": float(mean[k]),
                                  "Devices": int(g.shape[1])})
        return True

    def _fit(self, rows, cols, g_all: np.ndarray) -> None:
        n = int(self.n_pulses)
        p = np.arange(n + 1)
        pot = fit_update(p, g_all[: n + 1].T, n)
        dep = fit_update(p, g_all[n:].T, n)
        g_max = (pot["g_end"] + dep["g_start"]) / 2
        g_min = (pot["g_start"] + dep["g_end"]) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            dynamic_range = g_max / g_min
            step_p = (pot["g_end"] - pot["g_start"]) * update_shape(pot["nu"], 1.0 / n)
            step_d = (dep["g_start"] - dep["g_end"]) * update_shape(dep["nu"], 1.0 / n)
            first_step_ratio = step_p / step_d
        asymmetry = np.abs(pot["nu"] - dep["nu"])
        switching = ((pot["g_end"] - pot["g_start"] > SWITCHING_SNR * pot["rms"])
                     & (dep["g_start"] - dep["g_end"] > SWITCHING_SNR * dep["rms"]))
        table = np.column_stack([rows, cols, pot["nu"], pot["nu_se"], dep["nu"], dep["nu_se"],
                                 pot["g_start"], pot["g_end"], dep["g_start"], dep["g_end"],
                                 dynamic_range, asymmetry, first_step_ratio, pot["rms"],
                                 dep["rms"], switching])
        self.fit = {name: table[:, k] for k, name in enumerate(FIT_COLUMNS)}
        self.stats = {name: describe(self.fit[name][switching]) for name in
                      ("nu_p", "nu_d", "asymmetry", "first_step_ratio", "dynamic_range")}
        self.not_switching = [(int(r), int(c)) for r, c in zip(rows[~switching],
                                                               cols[~switching], strict=True)]
        if self.not_switching:
            log.warning("%d devices did not switch (excluded from the statistics): %s",
                        len(self.not_switching), self.not_switching)
        self.file.write_trace("fit", table, columns=",".join(FIT_COLUMNS),
                              model="G(p) = G_min + (G_max - G_min)(1 - exp(-nu p/N))/"
                                    "(1 - exp(-nu)); depression mirrored",
                              reference="Chen, Peng, Yu, IEEE TCAD 37(12), 3067 (2018)",
                              n_pulses=n)
        for name in ("nu_p", "nu_d", "dynamic_range", "asymmetry", "first_step_ratio"):
            values = np.full(self.shape, np.nan)
            values[rows, cols] = self.fit[name]
            self.file.write_map(name, values)
        for name, s in self.stats.items():
            log.info("%s: mean %.4g, sd %.4g, sem %.4g, median %.4g (n = %d)", name, s["mean"],
                     s["std"], s["sem"], s["median"], s["n"])

    def summary(self) -> str:
        if self.stats is None:
            return "no conductance-update fit (run incomplete)"
        s = self.stats

        def pm(name: str, fmt: str = ".3g") -> str:
            return f"{s[name]['mean']:{fmt}} ± {s[name]['std']:{fmt}}"

        text = (f"{s['nu_p']['n']} devices (mean ± sd): nu_P = {pm('nu_p')}, "
                f"nu_D = {pm('nu_d')}, |nu_P - nu_D| = {pm('asymmetry')}, first-step ratio "
                f"{pm('first_step_ratio')}, G_max/G_min = {pm('dynamic_range')}")
        if self.not_switching:
            text += f"; {len(self.not_switching)} did not switch"
        return text
