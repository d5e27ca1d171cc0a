"""Retention: conductance of the selected devices at log-spaced times, and the drift fit.

Optionally programs the selected devices first (one pulse each, ``program_amplitude`` /
``program_width``; 0 V = leave them as they are), then reads them (one whole-array read when the
selection is the whole array) at ``n_points`` times log-spaced from ``t_first`` to ``t_last``
after the end of programming, waiting in between with the station (virtual time on a simulated
bench, real time on hardware; a stop request is honoured while waiting).

**Model** — power-law conductance drift *(standard model)*: MemTorch's
``model_conductance_drift`` (``coreylammie/MemTorch``,
``memtorch/bh/nonideality/endurance_retention_models/conductance_drift.py``, after Boybat et
al., NVMTS 2018), G(t) = G0·(t/t0)^−ν, written finite at t = 0::

    G(t) = G0·(1 + t/t0)^−ν

**Fit** — per device, ln G = ln G0 − ν·ln(1 + t/t0): for a given t0 it is linear in (ln G0, ν)
(closed-form least squares); t0 is either given (``t0`` > 0) or found by a grid over log t0 and
a golden-section refinement (numpy only). A free t0 also absorbs an unknown age at the first
read (devices not programmed by the run): G0·(1 + (t + τ)/t0)^−ν = G0'·(1 + t/(t0 + τ))^−ν.
The standard error of ν comes from the covariance of the least-squares fit, σ²(JᵀJ)⁻¹ (J: the
model's derivatives with respect to ln G0, ν and, when fitted, ln t0, with which ν is strongly
correlated). Across devices: mean,
standard deviation, standard error of the mean and median of ν.

Rows: one per read time (X: time in s, Y: median conductance), with quartiles and the mean;
every device's G(t) and fit go to the array file (``/traces/conductance``, ``/traces/time_s``,
``/traces/fit``, ``/maps/nu``).
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
from pymeasure.experiment import FloatParameter, IntegerParameter

from procedures.array_base import ArrayProcedure, describe

log = logging.getLogger(__name__)

FIT_COLUMNS = ("row", "col", "nu", "nu_se", "g0", "t0", "rms_log")
"""Columns of ``/traces/fit``: device, ν and its standard error, G0 (S), t0 (s), RMS residual of
ln G."""
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def _loglinear(x: np.ndarray, y: np.ndarray):
    """Least squares y ≈ a − ν·x along the last axis: (a, ν, se(ν), residual sum of squares)."""
    xm = x.mean(axis=-1, keepdims=True)
    ym = y.mean(axis=-1, keepdims=True)
    xc, yc = x - xm, y - ym
    sxx = np.einsum("...i,...i->...", xc, xc)
    sxy = np.einsum("...i,...i->...", xc, yc)
    syy = np.einsum("...i,...i->...", yc, yc)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(sxx > 0, sxy / sxx, 0.0)
        sse = np.maximum(syy - slope * sxy, 0.0)
        dof = max(y.shape[-1] - 2, 1)
        se = np.sqrt(sse / dof / sxx)
    return ym[..., 0] - slope * xm[..., 0], -slope, se, sse


def fit_drift(t, g, t0: float | None = None, t0_range: tuple[float, float] | None = None
              ) -> dict[str, np.ndarray]:
    """Fit G = G0·(1 + t/t0)^−ν per device.

    ``t``: (points,) times in s since programming (> 0); ``g``: (devices, points) conductances
    (S, > 0). ``t0``: fixed, or None to fit it in ``t0_range`` (default: 1e-3·min t .. 10·max t).
    Returns per device ``nu``, ``nu_se``, ``g0`` (S), ``t0`` (s), ``rms_log``.
    """
    t = np.asarray(t, dtype=float)
    y = np.log(np.atleast_2d(np.asarray(g, dtype=float)))
    n_dev, points = y.shape

    def at(log_t0: np.ndarray):
        x = np.log1p(t[None, :] / np.exp(log_t0)[:, None])
        return _loglinear(x, y)

    if t0 is not None:
        log_t0 = np.full(n_dev, math.log(t0))
    else:
        lo_t, hi_t = t0_range or (1e-3 * float(t.min()), 10.0 * float(t.max()))
        grid = np.linspace(math.log(lo_t), math.log(hi_t), 161)
        sse = np.stack([at(np.full(n_dev, v))[3] for v in grid], axis=1)
        best = np.argmin(sse, axis=1)
        lo = grid[np.maximum(best - 1, 0)]
        hi = grid[np.minimum(best + 1, grid.size - 1)]
        for _ in range(40):  # golden section on log t0 inside the bracketing grid cells
            c = hi - _GOLDEN * (hi - lo)
            d = lo + _GOLDEN * (hi - lo)
            left = at(c)[3] < at(d)[3]
            hi = np.where(left, d, hi)
            lo = np.where(left, lo, c)
        log_t0 = (lo + hi) / 2
    a, nu, se, sse = at(log_t0)
    if t0 is None and points > 3:  # ν and t0 are correlated: the 3-parameter covariance
        u = t[None, :] / np.exp(log_t0)[:, None]
        jac = np.stack([np.ones_like(u), -np.log1p(u), nu[:, None] * u / (1 + u)], axis=-1)
        jtj = np.einsum("dpi,dpj->dij", jac, jac)
        with np.errstate(divide="ignore", invalid="ignore"):
            cov = np.linalg.pinv(jtj)
            se = np.sqrt(np.maximum(sse / (points - 3), 0.0) * cov[:, 1, 1])
    return {"nu": nu, "nu_se": se, "g0": np.exp(a), "t0": np.exp(log_t0),
            "rms_log": np.sqrt(sse / points)}


class Retention(ArrayProcedure):
    """Read the selected devices at log-spaced times after programming; power-law drift ν."""

    NAME = "retention"
    DEFAULT_SIM_STATION = "sim-crossbar-drift"
    DATA_COLUMNS = ["Time (s)", "Median conductance (S)", "Q1 conductance (S)",
                    "Q3 conductance (S)", "Mean conductance (S)", "Devices"]
    X_AXIS = "Time (s)"
    Y_AXIS = "Median conductance (S)"
    DISPLAYS = ("t_first", "t_last", "n_points", "program_amplitude")
    LIMITED = {"v_read": "voltage", "program_amplitude": "voltage",
               "program_width": "pulse_width"}
    PULSES = ((("program_amplitude",), ("program_width",)),)

    program_amplitude = FloatParameter("Programming pulse amplitude (0 = none)", units="V",
                                       default=1.5, minimum=-20, maximum=20)
    program_width = FloatParameter("Programming pulse width", units="s", default=1e-4,
                                   minimum=1e-9, maximum=1)
    t_first = FloatParameter("First read after", units="s", default=1.0, minimum=1e-6,
                             maximum=1e9)
    t_last = FloatParameter("Last read after", units="s", default=1e4, minimum=1e-6,
                            maximum=1e9)
    n_points = IntegerParameter("Reads", default=20, minimum=3, maximum=10_000)
    t0 = FloatParameter("Drift time scale t0 (0 = fit)", units="s", default=0.0, minimum=0,
                        maximum=1e9)

    # after the run
    times: np.ndarray | None = None  # (reads,) s since programming
    conductance: np.ndarray | None = None  # (reads, devices) S
    fit: dict[str, np.ndarray] | None = None
    stats: dict[str, float] | None = None

    def preflight(self, limits) -> list[str]:
        problems = super().preflight(limits)
        if not self.t_last > self.t_first:
            problems.append(f"t_last = {self.t_last:g} s must be after t_first = "
                            f"{self.t_first:g} s")
        return problems

    def schedule(self) -> np.ndarray:
        """Read times after programming, s (log-spaced)."""
        return np.geomspace(self.t_first, self.t_last, int(self.n_points))

    def _now(self) -> float:
        """The station's time in s: its virtual clock on a simulated bench, else real time."""
        t = self.station.hardware_time
        return time.monotonic() if t is None else float(t)

    # ------------------------------------------------------------------ run
    def execute(self) -> None:
        array = self.array
        rows, cols = self.devices()
        sel = self.selection()
        bias = self.read_bias_scheme()
        v = self.v_read
        if self.program_amplitude != 0:
            array.pulse(sel, self.program_amplitude, self.program_width,
                        self.pulse_bias_scheme())
        start = self._now()
        times, reads = [], []
        schedule = self.schedule()
        for k, target in enumerate(schedule):
            if self.should_stop():
                log.warning("retention stopped after %d of %d reads", k, schedule.size)
                break
            wait = target - (self._now() - start)
            if wait > 0 and not self.station.wait(wait, self.should_stop):
                log.warning("retention stopped while waiting for read %d", k + 1)
                break
            before = self._now()
            g = np.asarray(array.read(sel, v, bias), float).reshape(-1) / v
            t = (before + self._now()) / 2 - start
            times.append(t)
            reads.append(g)
            q1, med, q3 = np.percentile(g, [25, 50, 75])
            self.emit("results", {"Time (s)": t, "Median conductance (S)": float(med),
                                  "Q1 conductance (S)": float(q1),
                                  "Q3 conductance (S)": float(q3),
                                  "Mean conductance (S)": float(g.mean()),
                                  "Devices": int(g.size)})
            self.emit("progress", 95.0 * (k + 1) / schedule.size)
        if not reads:
            return
        self.times = np.asarray(times)
        self.conductance = np.vstack(reads)
        self.file.write_trace("time_s", self.times, units="s",
                              origin="end of programming" if self.program_amplitude
                              else "start of the run")
        self.file.write_trace("conductance", self.conductance, units="S", vread=v, bias=bias,
                              axes="read, device")
        self.file.write_trace("devices", np.column_stack([rows, cols]), columns="row,col")
        if len(reads) >= 3:
            self._fit(rows, cols)
        self.emit("progress", 100.0)

    def _fit(self, rows, cols) -> None:
        g = self.conductance.T
        usable = np.all(g > 0, axis=1) & np.all(np.isfinite(g), axis=1)
        fit = {name: np.full(rows.size, np.nan) for name in FIT_COLUMNS[2:]}
        if usable.any():
            part = fit_drift(self.times, g[usable], self.t0 if self.t0 > 0 else None)
            for name, values in part.items():
                fit[name][usable] = values
        if not usable.all():
            log.warning("%d devices read a non-positive conductance: not fitted",
                        int(np.count_nonzero(~usable)))
        table = np.column_stack([rows, cols] + [fit[name] for name in FIT_COLUMNS[2:]])
        self.fit = {name: table[:, k] for k, name in enumerate(FIT_COLUMNS)}
        self.stats = {**describe(self.fit["nu"]),
                      "t0_median": float(np.nanmedian(self.fit["t0"]))}
        self.file.write_trace("fit", table, columns=",".join(FIT_COLUMNS),
                              model="G(t) = G0 (1 + t/t0)^-nu",
                              reference="MemTorch model_conductance_drift (Boybat et al. 2018)",
                              t0_fitted=int(self.t0 == 0))
        for name in ("nu", "g0"):
            values = np.full(self.shape, np.nan)
            values[rows, cols] = self.fit[name]
            self.file.write_map(name, values, units="S" if name == "g0" else "")
        log.info("retention: nu mean %.4g, sd %.4g, sem %.4g, median %.4g (n = %d)",
                 self.stats["mean"], self.stats["std"], self.stats["sem"],
                 self.stats["median"], self.stats["n"])

    def summary(self) -> str:
        if self.stats is None:
            return "no retention fit (fewer than 3 reads)"
        s = self.stats
        return (f"{s['n']} devices over {self.times[0]:.3g}..{self.times[-1]:.3g} s: drift "
                f"nu = {s['mean']:.4g} ± {s['std']:.2g} (mean ± sd; sem {s['sem']:.2g}), "
                f"median {s['median']:.4g}; median t0 {s['t0_median']:.3g} s")
