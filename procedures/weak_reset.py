"""Weak RESET: SET every selected device, then trains of weak-RESET pulses with a read after each.

The protocol of Majumdar et al. (A. Majumdar, M. Bocquet, T. Hirtzlin, A. Laborieux, J.-O.
Klein, E. Nowak, E. Vianello, J.-M. Portal, D. Querlioz, "Model of the weak reset process in
HfOx resistive memory for deep learning frameworks", IEEE TED 68(10), 4925 (2021),
arXiv:2107.06064): one SET pulse brings every device to its low-resistance state, then
``n_pulses`` identical weak-RESET pulses raise its resistance step by step. Each chunk of
``chunk_pulses`` pulses is one controller call (a pulse train on the whole selection with a
read after every step).

**Model** — the paper's piecewise-linear mean model of w = ln(R/R0) against the pulse count t
(PHYSICS.md §1.2), continuous at the knee t*::

    w(t) = c1 + m1·t                       t ≤ t*
    w(t) = c1 + m1·t* + m2·(t − t*)        t ≥ t*

R0 (the LRS after SET) and c1 enter only as R0·e^c1, so the fit reports the intercept
ln(R0·e^c1) (``ln_r_start``), not c1 alone.

**Fit** — per device, on ln R from pulse ``fit_from`` on (the paper's 1/f noise model starts
from an empty filter register, so the first ~15 pulses carry a transient): for every integer
knee t* the model is linear in (intercept, m1, m2), solved in closed form from cumulative sums,
so the search over t* is exhaustive at one-pulse resolution (``knee_min`` .. the last pulse less
``knee_margin``). The random telegraph noise of HfOx only ever raises ln R (its high state adds
a positive offset for hundreds of pulses), so the fit is made robust: asymmetric least squares
first (points above the line weigh 0.05) find the baseline under the telegraph episodes, then
one-sided trimming drops the points more than ``trim_sigma`` robust standard deviations
(1.4826·MAD of the residuals) above the centre and the rest is fitted with equal weights
(``trim_iterations`` times; ``trim_sigma`` = 0 turns all this off).

**Reported** — per device m1, t*, m2, the intercept, the RMS residual, the fraction of points
trimmed and the contrast of the knee; across devices the median t* and its log-normal spread
(sd of ln t*), median and mean m1, median m2, each beside the published value of the paper's
fitted distributions (the authors' code; truncated as they sample them) and the standard error
of a median of that many devices (:func:`published_statistics`), and the number of resolved
knees (:func:`resolved`: contrast ≥ ``CONTRAST_MIN`` and m2 ≥ 0).

**The population's knee** — with the model's telegraph and 1/f noise a device whose first
segment hardly rises above the second (m1 close to m2) has no identifiable knee: its fitted t*
lands anywhere in the search range, mostly above the median, and the median t* of all devices
comes out 15-30 % high. The knee statistics (median t*, sd of ln t*) are therefore taken over the
devices whose fitted m1 is at least ``knee_m1_min`` (default 2e-4 per pulse: the first segment
rises by ≥ 0.1 in ln R over 500 pulses, five times or more the RMS of the trimmed residuals,
0.011-0.024 on the full-noise model). The model draws m1 and t* independently (D2D distributions
of the authors' code), so a selection on m1 alone leaves the distribution of t* as it is: on the
full-noise bench the selected devices' median t* is that of all devices' true knees within
0.1 % (256 devices, 206 selected), where the median over all fits is 16 % high.

**R0** — the intercept is ln(R0·e^c1) plus the mean of the noise terms that the asymmetric fit
does not remove: the authors' 1/f noise sums non-zero-mean samples, +α·½·Σb_k ≈ +0.054 in ln R
(PHYSICS.md §1.2; ``ln_r_offset``, 0 for zero-mean noise), which the reported R0·e^c1 has
subtracted.

Rows: one per pulse (X: pulse count, Y: median resistance), with quartiles and the median
ln(R/R_first); every device's R(t) and fit go to the array file (``/traces/resistance``,
``/traces/fit``, ``/maps/knee``, ``/maps/m1``, ``/maps/m2``).
"""

from __future__ import annotations

import logging
import math
from statistics import NormalDist

import numpy as np
from pymeasure.experiment import FloatParameter, IntegerParameter

from procedures.array_base import ArrayProcedure, describe

log = logging.getLogger(__name__)

FLICKER_OFFSET = 0.025 * 0.5 * sum(math.gamma(k + 0.5) / (math.gamma(0.5) * math.factorial(k))
                                  for k in range(15))
"""Mean of the authors' 1/f term in ln R: α·½·Σ b_k over 15 taps, α = 0.025 (≈ 0.054)."""
FIT_COLUMNS = ("row", "col", "m1", "knee", "m2", "ln_r_start", "rms", "trimmed", "contrast")
"""Columns of ``/traces/fit``: device, m1 and m2 (ln R per pulse), knee t* (pulses), intercept
ln(R0·e^c1), RMS residual of ln R, fraction of points trimmed as telegraph noise, and the
contrast of the knee: (m1 − m2)·(t* − first pulse fitted)/RMS, the rise of the first segment
above the continuation of the second in units of the noise."""
CONTRAST_MIN = 10.0
"""A knee is *resolved* when its contrast is at least this and the fitted m2 is not negative
(:func:`resolved`): below, the first segment hardly rises above the noise (small m1 or small
t*) and the fitted t* is little better than a guess; a negative m2 is a telegraph episode at
the end of the trace taken for a knee."""

PUBLISHED = {
    # Majumdar et al., authors' code (scipy parameterisation), truncated as they sample
    "m1": {"dist": "expon", "loc": 3.7415768289771944e-05, "scale": 6.564678011593196e-04,
           "lo": 3.74e-5, "hi": 0.0076},
    "knee": {"dist": "lognorm", "s": 0.8033817700570505, "scale": 542.5385224079308,
             "lo": 41.0, "hi": 2000.0},
    "m2": {"dist": "expon", "loc": 1.644496812189661e-34, "scale": 2.8890516951651312e-05,
           "lo": 0.0, "hi": 1.3e-4},
}
PUBLISHED_START = {"r0_mean": 6988.0, "r0_sd": 381.7, "c1_mean": 0.005293141020227579,
                   "c1_sd": 0.05321}
"""R0 (Ω) and c1 (ln R) of the authors' code, normal (truncated to [6252, 7897] Ω and ±0.15)."""
_STD_NORMAL = NormalDist()
ASYMMETRY = 0.05
"""Weight of the points above the line in the first (asymmetric) fits of the robust fit."""
ASYMMETRIC_ITERATIONS = 5


# ====================================================================== published statistics
def _cdf_pdf_ppf(d: dict):
    """(cdf, pdf, ppf) of one published (untruncated) distribution."""
    if d["dist"] == "expon":
        loc, scale = d["loc"], d["scale"]
        return (lambda x: -math.expm1(-max(x - loc, 0.0) / scale),
                lambda x: math.exp(-(x - loc) / scale) / scale if x >= loc else 0.0,
                lambda u: loc - scale * math.log1p(-u))
    s, scale = d["s"], d["scale"]
    return (lambda x: _STD_NORMAL.cdf(math.log(x / scale) / s),
            lambda x: _STD_NORMAL.pdf(math.log(x / scale) / s) / (x * s),
            lambda u: scale * math.exp(s * _STD_NORMAL.inv_cdf(u)))


def published_statistics(n_devices: int) -> dict[str, dict[str, float]]:
    """The published median of each parameter (of the distribution truncated as the authors
    sample it) and the standard error of the median of ``n_devices`` draws from it,
    se = √(p(1 − p)/n)/f_T(median) with p = ½ (f_T: the truncated density). For m1 and m2 also
    the truncated mean, sd and the standard error of a mean of n draws; for t* the sd of ln t*
    (the log-normal s reduced by the truncation) and its standard error √(1/(2(n − 1)))·sd
    (normal approximation)."""
    out = {}
    for name, d in PUBLISHED.items():
        cdf, pdf, ppf = _cdf_pdf_ppf(d)
        f_lo, f_hi = cdf(d["lo"]), cdf(d["hi"])
        mass = f_hi - f_lo
        median = ppf(f_lo + 0.5 * mass)
        se = 0.5 / math.sqrt(n_devices) / (pdf(median) / mass)
        out[name] = {"median": median, "median_se": se}
        if d["dist"] == "expon":  # truncated exponential: mean and sd in closed form
            loc, scale = d["loc"], d["scale"]
            a, b = max(d["lo"], loc), d["hi"]
            z = (b - a) / scale
            mean = a + scale * (1 - z * math.exp(-z) / -math.expm1(-z))
            sd = _truncated_expon_sd(scale, z)
            out[name].update(mean=mean, mean_se=sd / math.sqrt(n_devices), sd=sd)
        else:  # sd of ln t*: a normal of sd s truncated to [ln lo, ln hi]
            a, b = (math.log(x / d["scale"]) / d["s"] for x in (d["lo"], d["hi"]))
            z = _STD_NORMAL.cdf(b) - _STD_NORMAL.cdf(a)
            pa, pb = _STD_NORMAL.pdf(a), _STD_NORMAL.pdf(b)
            var = 1 + (a * pa - b * pb) / z - ((pa - pb) / z) ** 2
            sigma = d["s"] * math.sqrt(var)
            out[name].update(sigma_ln=sigma, sigma_ln_se=sigma / math.sqrt(2 * (n_devices - 1)),
                             s=d["s"])
    # R0·e^c1: ln R0 + c1, close to normal (R0's sd is 5 % of its mean, both truncations nearly
    # symmetric): median R0_mean·e^c1_mean, sd √((sd_R0/R0)² + sd_c1²) in ln R; se of the median
    # of n: √(π/2)·sd/√n
    p = PUBLISHED_START
    sd_ln = math.hypot(p["r0_sd"] / p["r0_mean"], p["c1_sd"])
    median = p["r0_mean"] * math.exp(p["c1_mean"])
    out["r_start"] = {"median": median, "sd_ln": sd_ln,
                      "median_se": median * math.sqrt(math.pi / 2) * sd_ln / math.sqrt(n_devices)}
    return out


def _truncated_expon_sd(scale: float, z: float) -> float:
    """Standard deviation of an exponential of ``scale`` truncated to [0, z·scale]."""
    e = math.exp(-z)
    norm = -math.expm1(-z)
    m1 = (1 - e * (1 + z)) / norm  # E[x]/scale
    m2 = (2 - e * (z * z + 2 * z + 2)) / norm  # E[x²]/scale²
    return scale * math.sqrt(max(m2 - m1 * m1, 0.0))


# ====================================================================== the fit
def fit_knee(t, w, knee_min: int, knee_max: int, weights=None):
    """Least-squares fit of the continuous two-slope model to every device, exhaustive over
    integer knees in [knee_min, knee_max].

    ``t``: (points,) pulse counts; ``w``: (devices, points) ln R; ``weights``: (devices,
    points), non-negative (None: all 1). Returns (intercept, m1, knee, m2, sse) per device.
    """
    t = np.asarray(t, dtype=float)
    y = np.asarray(w, dtype=float)
    n_dev, points = y.shape
    wt = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float)
    knees = np.arange(int(knee_min), int(knee_max) + 1, dtype=float)
    # left part (t ≤ k) sums via cumulative sums over t sorted ascending
    order = np.argsort(t)
    t, y, wt = t[order], y[:, order], wt[:, order]
    pos = np.searchsorted(t, knees, side="right")  # points with t ≤ k

    def split(values):  # (devices, points) -> left sums and right sums at every knee
        c = np.concatenate([np.zeros((n_dev, 1)), np.cumsum(values, axis=1)], axis=1)
        left = c[:, pos]
        return left, c[:, -1:] - left

    a0, b0 = split(wt)
    a1, b1 = split(wt * t)
    a2, b2 = split(wt * t * t)
    ay, by = split(wt * y)
    aty, bty = split(wt * t * y)
    syy = (wt * y * y).sum(axis=1)
    k = knees[None, :]
    # normal equations for basis (1, min(t, k), max(t − k, 0))
    s0 = a0 + b0
    s1 = a1 + k * b0
    s2 = b1 - k * b0
    s11 = a2 + k * k * b0
    s22 = b2 - 2 * k * b1 + k * k * b0
    s12 = k * (b1 - k * b0)
    sy = ay + by
    s1y = aty + k * by
    s2y = bty - k * by
    mat = np.stack([np.stack([s0, s1, s2], -1), np.stack([s1, s11, s12], -1),
                    np.stack([s2, s12, s22], -1)], -2)  # (devices, knees, 3, 3)
    rhs = np.stack([sy, s1y, s2y], -1)
    det = np.linalg.det(mat)
    ok = np.abs(det) > 1e-12 * np.abs(mat).max(axis=(-1, -2)) ** 3
    mat[~ok] = np.eye(3)
    coef = np.linalg.solve(mat, rhs[..., None])[..., 0]
    sse = syy[:, None] - np.einsum("dki,dki->dk", coef, rhs)
    sse[~ok] = np.inf
    best = np.argmin(sse, axis=1)
    idx = np.arange(n_dev)
    c = coef[idx, best]
    return c[:, 0], c[:, 1], knees[best], c[:, 2], np.maximum(sse[idx, best], 0.0)


def identified(fit: dict[str, np.ndarray], m1_min: float) -> np.ndarray:
    """Which devices' knees count in the population's knee statistics: fitted m1 ≥ ``m1_min``
    (a selection on m1 alone, independent of t* in the model; see the module docstring)."""
    return fit["m1"] >= m1_min


def resolved(fit: dict[str, np.ndarray]) -> np.ndarray:
    """Which devices' knees are resolved (``CONTRAST_MIN``)."""
    return (fit["contrast"] >= CONTRAST_MIN) & (fit["m2"] >= 0)


def model(t, intercept, m1, knee, m2) -> np.ndarray:
    """ln R of the fitted model at pulse counts ``t`` (devices, points)."""
    t = np.asarray(t, dtype=float)[None, :]
    k = np.asarray(knee, dtype=float)[:, None]
    return (np.asarray(intercept)[:, None] + np.asarray(m1)[:, None] * np.minimum(t, k)
            + np.asarray(m2)[:, None] * np.maximum(t - k, 0.0))


def fit_weak_reset(t, ln_r, knee_min: int, knee_max: int, trim_sigma: float = 3.0,
                   iterations: int = 3, chunk: int = 64) -> dict[str, np.ndarray]:
    """The robust fit of the module docstring, per device (rows of ``ln_r``, (devices,
    points)). Returns ``m1``, ``knee``, ``m2``, ``ln_r_start``, ``rms`` and ``trimmed``.

    With trimming on, the first fits weight the points above the line by ``ASYMMETRY`` only
    (asymmetric least squares: the line settles on the baseline below the telegraph-noise
    episodes, however long they are); then points more than ``trim_sigma`` robust standard
    deviations above the centre of the residuals are dropped and the others fitted with equal
    weights, ``iterations`` times or until the trimmed set no longer changes."""
    ln_r = np.atleast_2d(np.asarray(ln_r, dtype=float))
    t = np.asarray(t, dtype=float)
    out = {name: np.empty(ln_r.shape[0]) for name in FIT_COLUMNS[2:]}
    for start in range(0, ln_r.shape[0], chunk):  # bounded memory: (chunk, knees, 3, 3)
        finite = np.isfinite(ln_r[start:start + chunk])
        y = np.where(finite, ln_r[start:start + chunk], 0.0)
        weights = finite.astype(float)
        a, m1, knee, m2, sse = fit_knee(t, y, knee_min, knee_max, weights)
        if trim_sigma > 0:
            for _ in range(ASYMMETRIC_ITERATIONS):
                above = y > model(t, a, m1, knee, m2)
                a, m1, knee, m2, sse = fit_knee(t, y, knee_min, knee_max,
                                                finite * np.where(above, ASYMMETRY, 1.0))
            for _ in range(max(int(iterations), 1)):
                resid = np.where(finite, y - model(t, a, m1, knee, m2), np.nan)
                centre = np.nanmedian(resid, axis=1, keepdims=True)
                scale = 1.4826 * np.nanmedian(np.abs(resid - centre), axis=1, keepdims=True)
                new = (finite & (resid - centre <= trim_sigma * np.maximum(scale, 1e-12))
                       ).astype(float)
                if np.array_equal(new, weights):
                    break
                weights = new
                a, m1, knee, m2, sse = fit_knee(t, y, knee_min, knee_max, weights)
        n_used = weights.sum(axis=1)
        sl = slice(start, start + y.shape[0])
        out["m1"][sl], out["knee"][sl], out["m2"][sl], out["ln_r_start"][sl] = m1, knee, m2, a
        out["rms"][sl] = np.sqrt(sse / np.maximum(n_used, 1))
        out["trimmed"][sl] = 1.0 - n_used / y.shape[1]
        out["contrast"][sl] = (m1 - m2) * (knee - t.min()) / np.maximum(out["rms"][sl], 1e-12)
    return out


# ====================================================================== the procedure
class WeakReset(ArrayProcedure):
    """SET, then weak-RESET pulse trains with reads; Majumdar two-slope fit (m1, t*, m2)."""

    NAME = "weak-reset"
    DEFAULT_SIM_STATION = "sim-crossbar-hfox"
    DATA_COLUMNS = ["Pulse", "Median resistance (ohm)", "Q1 resistance (ohm)",
                    "Q3 resistance (ohm)", "Median ln R change", "Devices"]
    X_AXIS = "Pulse"
    Y_AXIS = "Median resistance (ohm)"
    DISPLAYS = ("n_pulses", "reset_amplitude", "reset_width", "rows", "cols")
    LIMITED = {"v_read": "voltage", "set_amplitude": "voltage", "reset_amplitude": "voltage",
               "set_width": "pulse_width", "reset_width": "pulse_width"}
    PULSES = ((("set_amplitude",), ("set_width",)), (("reset_amplitude",), ("reset_width",)))
    READS_AFTER_PULSES = True

    set_amplitude = FloatParameter("SET amplitude", units="V", default=1.5, minimum=0,
                                   maximum=20)
    set_width = FloatParameter("SET pulse width", units="s", default=100e-6, minimum=1e-9,
                               maximum=1)
    reset_amplitude = FloatParameter("Weak-RESET amplitude", units="V", default=-1.2,
                                     minimum=-20, maximum=0)
    reset_width = FloatParameter("Weak-RESET pulse width", units="s", default=100e-6,
                                 minimum=1e-9, maximum=1)
    n_pulses = IntegerParameter("Weak-RESET pulses", default=2500, minimum=10,
                                maximum=10_000_000)
    chunk_pulses = IntegerParameter("Pulses per controller call", default=250, minimum=1,
                                    maximum=1_000_000)
    fit_from = IntegerParameter("Fit from pulse", default=15, minimum=0, maximum=10_000_000)
    knee_min = IntegerParameter("Smallest knee searched", units="pulses", default=20,
                                minimum=1, maximum=10_000_000)
    knee_margin = IntegerParameter("Pulses kept after the largest knee searched", default=50,
                                   minimum=2, maximum=10_000_000)
    trim_sigma = FloatParameter("Telegraph-noise trim (0 = off)", units="sigma", default=3.0,
                                minimum=0, maximum=100)
    trim_iterations = IntegerParameter("Trim iterations", default=3, minimum=0, maximum=20)
    knee_m1_min = FloatParameter("Knee statistics from devices with m1 at least",
                                 units="1/pulse", default=2e-4, minimum=0, maximum=1)
    ln_r_offset = FloatParameter("Mean ln R offset of the noise (subtracted from R0)",
                                 default=round(FLICKER_OFFSET, 4), minimum=-10, maximum=10)

    # after the run
    resistance: np.ndarray | None = None  # (pulses + 1, devices), Ω; row 0: after SET
    fit: dict[str, np.ndarray] | None = None
    stats: dict[str, float] | None = None

    def preflight(self, limits) -> list[str]:
        problems = super().preflight(limits)
        if self.set_amplitude <= 0:
            problems.append("set_amplitude must be positive (the SET polarity)")
        if self.reset_amplitude >= 0:
            problems.append("reset_amplitude must be negative (the RESET polarity)")
        if self.fit_from + 5 > self.n_pulses - self.knee_margin or \
                self.knee_min > self.n_pulses - self.knee_margin:
            problems.append(f"n_pulses = {self.n_pulses} leaves no knee to search between "
                            f"knee_min = {self.knee_min} (and fit_from = {self.fit_from}) and "
                            f"n_pulses - knee_margin = {self.n_pulses - self.knee_margin}")
        return problems

    # ------------------------------------------------------------------ run
    def execute(self) -> None:
        array = self.array
        rows, cols = self.devices()
        sel = self.selection()
        bias = self.pulse_bias_scheme()
        v = self.v_read
        total = int(self.n_pulses)
        array.pulse(sel, self.set_amplitude, self.set_width, bias)
        r0 = self._resistance(array.read(sel, v, self.read_bias_scheme()), 1)
        ref = np.log(r0[0])
        self._emit_rows(0, r0, ref)
        reads = [r0]
        done = 0
        while done < total:
            if self.should_stop():
                log.warning("weak reset stopped after %d of %d pulses", done, total)
                break
            k = min(int(self.chunk_pulses), total - done)
            currents = array.pulse_train(sel, np.full(k, self.reset_amplitude),
                                         self.reset_width, bias, vread=v,
                                         read_bias=self.read_bias_scheme())
            r = self._resistance(currents, k)
            reads.append(r)
            if not self._emit_rows(done + 1, r, ref):
                done += k
                break
            done += k
            self.emit("progress", 95.0 * done / total)
        self.resistance = np.vstack(reads)
        self.file.write_trace("resistance", self.resistance, units="ohm", vread=v, pulse_bias=bias,
                              axes="weak-RESET pulses since SET, device")
        self.file.write_trace("devices", np.column_stack([rows, cols]), columns="row,col")
        if done == total:
            self._fit(rows, cols)
        else:
            log.warning("weak reset incomplete (%d of %d pulses): no fit", done, total)
        self.emit("progress", 100.0)

    def _resistance(self, currents, k: int) -> np.ndarray:
        i = np.asarray(currents, float).reshape(k, -1)
        with np.errstate(divide="ignore"):
            return np.abs(self.v_read / i)

    def _emit_rows(self, first: int, r: np.ndarray, ref: np.ndarray) -> bool:
        q1, med, q3 = np.percentile(r, [25, 50, 75], axis=1)
        w = np.median(np.log(r) - ref, axis=1)
        for j in range(r.shape[0]):
            if self.should_stop():
                log.warning("weak reset stopped while writing rows")
                return False
            self.emit("results", {"Pulse": first + j, "Median resistance (ohm)": float(med[j]),
                                  "Q1 resistance (ohm)": float(q1[j]),
                                  "Q3 resistance (ohm)": float(q3[j]),
                                  "Median ln R change": float(w[j]),
                                  "Devices": int(r.shape[1])})
        return True

    def _fit(self, rows, cols) -> None:
        total = int(self.n_pulses)
        t = np.arange(int(self.fit_from), total + 1)
        ln_r = np.log(self.resistance[t].T)
        knee_max = total - int(self.knee_margin)
        fit = fit_weak_reset(t, ln_r, max(int(self.knee_min), int(self.fit_from) + 2), knee_max,
                             self.trim_sigma, int(self.trim_iterations))
        table = np.column_stack([rows, cols] + [fit[name] for name in FIT_COLUMNS[2:]])
        self.fit = {name: table[:, k] for k, name in enumerate(FIT_COLUMNS)}
        knee = self.fit["knee"][identified(self.fit, self.knee_m1_min)]
        self.stats = {"n": int(rows.size),
                      "n_knee": int(knee.size),
                      "knee_median": float(np.median(knee)) if knee.size else math.nan,
                      "knee_sigma_ln": float(np.std(np.log(knee), ddof=1)) if knee.size > 1
                      else math.nan,
                      "m1_median": float(np.median(self.fit["m1"])),
                      "m1_mean": describe(self.fit["m1"])["mean"],
                      "m1_sem": describe(self.fit["m1"])["sem"],
                      "m2_median": float(np.median(self.fit["m2"])),
                      "r_start_median": float(np.exp(np.median(self.fit["ln_r_start"])
                                                     - self.ln_r_offset)),
                      "knee_at_edge": int(np.count_nonzero(knee >= knee_max)),
                      "resolved": int(np.count_nonzero(resolved(self.fit)))}
        published = published_statistics(rows.size)
        self.file.write_trace("fit", table, columns=",".join(FIT_COLUMNS),
                              model="ln R = ln(R0 e^c1) + m1 min(t, t*) + m2 max(t - t*, 0)",
                              reference="Majumdar et al., IEEE TED 68(10), 4925 (2021), "
                                        "arXiv:2107.06064",
                              fit_from=int(self.fit_from), knee_max=knee_max,
                              trim_sigma=self.trim_sigma)
        for name in ("knee", "m1", "m2"):
            values = np.full(self.shape, np.nan)
            values[rows, cols] = self.fit[name]
            self.file.write_map(name, values)
        s = self.stats
        log.info("weak reset: median t* %.4g of %d devices with m1 >= %g (published %.4g), "
                 "median m1 %.4g (published %.4g ± %.2g), mean m1 %.4g (published %.4g), median "
                 "m2 %.4g (published %.4g ± %.2g); %d knees at the search edge, %d of %d resolved "
                 "(contrast >= %g)", s["knee_median"], s["n_knee"], self.knee_m1_min,
                 published["knee"]["median"], s["m1_median"],
                 published["m1"]["median"], published["m1"]["median_se"], s["m1_mean"],
                 published["m1"]["mean"], s["m2_median"], published["m2"]["median"],
                 published["m2"]["median_se"], s["knee_at_edge"], s["resolved"], s["n"],
                 CONTRAST_MIN)

    def summary(self) -> str:
        if self.stats is None:
            return "no weak-reset fit (run incomplete)"
        s, p = self.stats, published_statistics(self.stats["n"])
        pk = published_statistics(max(s["n_knee"], 2))["knee"]
        return (f"{s['n']} devices ({s['resolved']} knees resolved): median t* of the "
                f"{s['n_knee']} with m1 >= {self.knee_m1_min:g} = "
                f"{s['knee_median']:.4g} pulses (published "
                f"{pk['median']:.4g} ± {pk['median_se']:.2g}), sd ln t* "
                f"{s['knee_sigma_ln']:.3g} (published {p['knee']['sigma_ln']:.3g}); median m1 = "
                f"{s['m1_median']:.3g} (published {p['m1']['median']:.3g}), mean m1 = "
                f"{s['m1_mean']:.3g} (published {p['m1']['mean']:.3g}); median m2 = "
                f"{s['m2_median']:.3g} (published {p['m2']['median']:.3g}) per pulse; "
                f"R0·e^c1 = {s['r_start_median']:.4g} ohm (published "
                f"{p['r_start']['median']:.4g} ± {p['r_start']['median_se']:.2g})")
