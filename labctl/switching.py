"""Switching-probability statistics: Wilson intervals, adaptive sampling, binomial fits.

A switching experiment gives, at each (amplitude, width) point, k switches out of n independent
reset → pulse → read trials. This module turns those counts into probabilities with Wilson score
intervals, decides where more trials pay (:func:`transition_points`), and fits the device models
by binomial maximum likelihood with standard errors from the Fisher information
(:func:`fit_model`):

- ``dw-sigmoid`` (Ellis, Welbourne et al., arXiv 2303.01886): ``P = (1 − a) + a·σ(dx·(x − x0))``,
  x the pulse amplitude (V); the width is not part of the model.
- ``mtj-neel-brown`` (PHYSICS §3.1): ``P = 1 − exp(−(t/τ0)·exp(−Δ(1 − I/I_c0)^β))``, τ0 and β
  fixed; Δ and I_c0 come from the width dependence of the 50 % current.
- ``dw-depinning`` (PHYSICS §2.2): the same law with τ0 = 1/ν0, Δ = E_pin/k_BT, I_c0 = I_dep.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize
from threadpoolctl import threadpool_limits  # installed with scikit-learn, a dependency

Z95 = 1.959963984540054


def wilson(k, n, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval (low, high) of a binomial proportion k/n (NaN where n = 0)."""
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denom = 1.0 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half


def transition_points(k, n, low: float = 0.1, high: float = 0.9) -> np.ndarray:
    """Points whose Wilson interval overlaps (low, high): where P may lie between 0.1 and 0.9,
    so more trials there sharpen the fit (boolean mask)."""
    lo, hi = wilson(k, n)
    return (hi > low) & (lo < high)


def refine_amplitudes(amplitudes, mask, extra: int) -> np.ndarray:
    """``extra`` new amplitudes spread evenly over the span of the masked (transition) points,
    widened by one grid step each side; none if nothing is in transition."""
    amplitudes = np.asarray(amplitudes, dtype=float)
    idx = np.flatnonzero(mask)
    if extra <= 0 or idx.size == 0:
        return np.empty(0)
    lo_i, hi_i = max(idx[0] - 1, 0), min(idx[-1] + 1, amplitudes.size - 1)
    lo, hi = amplitudes[lo_i], amplitudes[hi_i]
    new = np.linspace(lo, hi, extra + 2)[1:-1]
    return new[~np.isin(np.round(new, 12), np.round(amplitudes, 12))]


# ---------------------------------------------------------------------------------- models
def dw_sigmoid(theta, amplitude, width):
    x0, dx, a = theta
    return (1.0 - a) + a * 0.5 * (1.0 + np.tanh(0.5 * dx * (amplitude - x0)))


def dw_sigmoid_gradient(theta, amplitude, width):
    """∂P/∂(x0, dx, a), shape (points, 3)."""
    x0, dx, a = theta
    s = 0.5 * (1.0 + np.tanh(0.5 * dx * (amplitude - x0)))
    slope = a * s * (1.0 - s)
    return np.stack([-dx * slope, (amplitude - x0) * slope, s - 1.0], axis=-1)


def thermal(tau0: float, beta: float):
    """Néel–Brown / depinning law with fixed τ0 (s) and β: θ = (Δ, I_c0); returns the
    probability and its gradient ∂P/∂(Δ, I_c0)."""

    def parts(theta, amplitude, width):
        delta, ic0 = theta
        x = np.clip(1.0 - amplitude / ic0, 0.0, None)
        rate_t = np.exp(np.minimum(-delta * x ** beta + np.log(width / tau0), 700.0))
        return x, rate_t

    def probability(theta, amplitude, width):
        return -np.expm1(-parts(theta, amplitude, width)[1])

    def gradient(theta, amplitude, width):
        delta, ic0 = theta
        x, rate_t = parts(theta, amplitude, width)
        dp = np.exp(-rate_t) * rate_t  # ∂P/∂(ln rate)
        d_delta = -dp * x ** beta
        d_ic0 = np.where(x > 0, -dp * delta * beta * x ** (beta - 1) * amplitude / ic0 ** 2,
                         0.0)
        return np.stack([d_delta, d_ic0], axis=-1)

    return probability, gradient


def _guess_sigmoid(amplitude, width, k, n):
    p = k / n
    a = float(np.clip(1.0 - 2.0 * np.mean(p[amplitude <= np.quantile(amplitude, 0.2)]),
                      0.5, 0.999))
    order = np.argsort(amplitude)
    x0 = float(np.interp(0.5, np.maximum.accumulate(p[order]) + 1e-9 * np.arange(p.size),
                         amplitude[order]))
    span = float(np.ptp(amplitude)) or 1.0
    return np.array([x0, 8.0 / span, a])


def _guess_thermal(tau0: float, beta: float):
    def guess(amplitude, width, k, n):
        p = k / n
        widths = np.unique(width)
        levels, i50 = [], []
        for w in widths:
            sel = width == w
            a, pw = amplitude[sel], p[sel]
            order = np.argsort(a)
            if pw.max() < 0.5 or pw.min() > 0.5:
                continue
            mono = np.maximum.accumulate(pw[order]) + 1e-12 * np.arange(pw.size)
            i50.append(float(np.interp(0.5, mono, a[order])))
            levels.append(math.log(w / (tau0 * math.log(2.0))) ** (1.0 / beta))
        if len(i50) >= 2:
            slope, intercept = np.polyfit(levels, i50, 1)
            if slope < 0 < intercept:
                return np.array([(-intercept / slope) ** beta, intercept])
        ic = float(np.median(amplitude)) * 1.5 if not i50 else i50[0] * 1.5
        lever = math.log(float(np.median(width)) / (tau0 * math.log(2.0)))
        return np.array([3.0 * lever, ic])
    return guess


@dataclass(frozen=True)
class SwitchingModel:
    """A switching-probability law fitted by :func:`fit_model`."""

    name: str
    parameters: tuple[str, ...]
    units: tuple[str, ...]
    source: str
    """What the amplitude is: 'voltage' (V) or 'current' (A)."""
    probability: Callable
    gradient: Callable
    """∂P/∂θ, shape (points, parameters)."""
    guess: Callable
    bounds: tuple[tuple[float, float], ...]


def model(name: str, tau0: float = 1e-9, beta: float = 1.0) -> SwitchingModel:
    """The named model (``dw-sigmoid``, ``dw-depinning``, ``mtj-neel-brown``)."""
    if name == "dw-sigmoid":
        return SwitchingModel(name, ("x0", "dx", "a"), ("V", "1/V", ""), "voltage", dw_sigmoid,
                              dw_sigmoid_gradient, _guess_sigmoid,
                              ((-np.inf, np.inf), (1e-9, np.inf), (1e-6, 1.0)))
    if name in ("dw-depinning", "mtj-neel-brown"):
        names = ("barrier_kt", "i_dep") if name == "dw-depinning" else ("delta", "ic0")
        return SwitchingModel(name, names, ("", "A"), "current", *thermal(tau0, beta),
                              _guess_thermal(tau0, beta), ((1e-3, 1e4), (1e-15, np.inf)))
    raise ValueError(f"unknown switching model {name!r} (known: {', '.join(MODELS)})")


MODELS = ("dw-sigmoid", "dw-depinning", "mtj-neel-brown")


@dataclass
class Fit:
    """Fitted values, their standard errors (Fisher information) and covariance."""

    model: SwitchingModel
    values: np.ndarray
    stderr: np.ndarray
    covariance: np.ndarray
    deviance: float

    def parameters(self) -> dict[str, tuple[float, float, str]]:
        """name -> (value, stderr, unit), as the calibration store takes them."""
        return {n: (float(v), float(s), u) for n, v, s, u in
                zip(self.model.parameters, self.values, self.stderr, self.model.units,
                    strict=True)}

    def interval(self, name: str, z: float = Z95) -> tuple[float, float]:
        k = self.model.parameters.index(name)
        return self.values[k] - z * self.stderr[k], self.values[k] + z * self.stderr[k]


def _clip_p(p):
    return np.clip(p, 1e-12, 1.0 - 1e-12)


def fit_model(m: SwitchingModel, amplitude, width, k, n) -> Fit:
    """Binomial maximum-likelihood fit of ``m`` to k switches in n trials at each (amplitude,
    width); standard errors from the inverse Fisher information
    ``I = Σ n·∇p∇pᵀ/(p(1 − p))`` (analytic gradients)."""
    amplitude, width = (np.asarray(x, dtype=float).reshape(-1) for x in (amplitude, width))
    k, n = (np.asarray(x, dtype=float).reshape(-1) for x in (k, n))
    keep = n > 0
    amplitude, width, k, n = amplitude[keep], width[keep], k[keep], n[keep]
    if amplitude.size < len(m.parameters) + 1:
        raise ValueError(f"{m.name} fit: {amplitude.size} points with trials, need at least "
                         f"{len(m.parameters) + 1}")
    start = m.guess(amplitude, width, k, n)
    scale = np.where(np.abs(start) > 0, np.abs(start), 1.0)
    lo = np.array([b[0] for b in m.bounds]) / scale
    hi = np.array([b[1] for b in m.bounds]) / scale

    def nll(u):
        theta = u * scale
        p = _clip_p(m.probability(theta, amplitude, width))
        value = -float(np.sum(k * np.log(p) + (n - k) * np.log1p(-p)))
        weight = -(k / p - (n - k) / (1.0 - p))
        return value, (weight @ m.gradient(theta, amplitude, width)) * scale

    best = None
    # L-BFGS-B calls BLAS on 3-vectors: a multi-threaded BLAS only thrashes (50x slower on a
    # busy 2-core machine), so the fit runs single-threaded
    with threadpool_limits(1, user_api="blas"):
        for jitter in (1.0, 0.8, 1.25):  # restarts only if a start ends on a bound
            u0 = np.clip(np.full(start.shape, jitter), lo, hi)
            res = optimize.minimize(nll, u0, jac=True, method="L-BFGS-B",
                                    bounds=list(zip(lo, hi, strict=True)),
                                    options={"ftol": 1e-14, "gtol": 1e-10, "maxiter": 2000})
            if best is None or res.fun < best.fun:
                best = res
            if np.all(res.x > lo + 1e-9) and np.all(res.x < hi - 1e-9):
                break
    theta = best.x * scale
    jac = m.gradient(theta, amplitude, width)
    p = _clip_p(m.probability(theta, amplitude, width))
    info = (jac * (n / (p * (1 - p)))[:, None]).T @ jac
    cov = np.linalg.pinv(info)
    stderr = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    sat = _clip_p(k / n)
    deviance = 2.0 * float(np.sum(k * np.log(sat / p) + (n - k) * np.log((1 - sat) / (1 - p))))
    return Fit(m, theta, stderr, cov, deviance)


# ---------------------------------------------------------------------------------- sampling
@dataclass
class Curve:
    """Counts at one pulse width, by amplitude (sorted)."""

    width: float
    amplitude: np.ndarray
    trials: np.ndarray
    switched: np.ndarray

    @property
    def probability(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.switched / self.trials


Counter = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]
"""``counter(amplitudes, n)`` -> (switched, valid trials) per amplitude: n trials each, run as
one pulse list by the instrument."""


def measure_curve(counter: Counter, width: float, amplitudes, trials: int,
                  adaptive_trials: int = 0, refine: int = 0,
                  on_stage: Callable[[int, Curve, np.ndarray], None] | None = None,
                  should_stop: Callable[[], bool] = lambda: False) -> Curve | None:
    """Adaptive sampling of one switching curve.

    Stage 1: ``trials`` at every amplitude. Stage 2: ``refine`` new amplitudes spread over the
    transition, then ``adaptive_trials`` more at every point whose Wilson interval overlaps
    (0.1, 0.9) — the trials go where P is uncertain and between 0.1 and 0.9, not on the flat
    0/1 tails. ``on_stage(stage, curve, touched)`` reports the cumulative counts after each
    stage (``touched``: the points that stage measured). Returns None if stopped.
    """
    amps = np.unique(np.asarray(amplitudes, dtype=float))
    k, n = counter(amps, trials)
    curve = Curve(width, amps, np.asarray(n, dtype=np.int64), np.asarray(k, dtype=np.int64))
    if on_stage is not None:
        on_stage(1, curve, np.ones(amps.size, dtype=bool))
    if adaptive_trials <= 0 or should_stop():
        return None if should_stop() else curve
    mask = transition_points(curve.switched, curve.trials)
    new = refine_amplitudes(amps, mask, refine)
    all_amps = np.concatenate([amps, new])
    order = np.argsort(all_amps)
    touched = np.concatenate([mask, np.ones(new.size, dtype=bool)])[order]
    curve = Curve(width, all_amps[order],
                  np.concatenate([curve.trials, np.zeros(new.size, np.int64)])[order],
                  np.concatenate([curve.switched, np.zeros(new.size, np.int64)])[order])
    if touched.any():
        k2, n2 = counter(curve.amplitude[touched], adaptive_trials)
        curve.switched[touched] += np.asarray(k2, dtype=np.int64)
        curve.trials[touched] += np.asarray(n2, dtype=np.int64)
    if on_stage is not None:
        on_stage(2, curve, touched)
    return curve


def fit_curves(m: SwitchingModel, curves: list[Curve]) -> Fit:
    """:func:`fit_model` over every curve (all widths together)."""
    return fit_model(m, np.concatenate([c.amplitude for c in curves]),
                     np.concatenate([np.full(c.amplitude.size, c.width) for c in curves]),
                     np.concatenate([c.switched for c in curves]),
                     np.concatenate([c.trials for c in curves]))
