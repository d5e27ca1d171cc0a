"""Simulated HfOx RRAM under weak-RESET programming, vectorised over arrays of devices.

Model: A. Majumdar, M. Bocquet, T. Hirtzlin, A. Laborieux, J.-O. Klein, E. Nowak, E. Vianello,
J.-M. Portal, D. Querlioz, "Model of the Weak Reset Process in HfOx Resistive Memory for Deep
Learning Frameworks", IEEE Trans. Electron Devices 68(10), 4925-4932 (2021), arXiv:2107.06064, as
implemented in the authors' code (``Atreya95/Learning-with-memory-device-imperfections``,
``ConvNet/utils_device.py``: ``w_based_reset_model``, ``mean_w``, ``RTN``, ``pink_noise``)::

    R = R0·exp(w),   w = w_mean(t) + w_RTN + w_1/f,   t = weak-RESET pulses since the last SET
    w_mean = m1·t + c1                       (t < t*)
           = m2·t + t*·(m1 − m2) + c1        (t ≥ t*, continuous at t*)

Device-to-device parameters, drawn once per device by truncated inverse-CDF sampling
(u ~ U(F(lo), F(hi)), x = F⁻¹(u)), with the authors' fitted values (scipy parameterisation):
m1 ~ expon(loc 3.7416e-5, scale 6.5647e-4) on [3.74e-5, 0.0076]; t* ~ lognorm(s 0.80338, loc 0,
scale 542.54) on [41, 2000]; c1 ~ norm(0.0052931, 0.053208) on [−0.15, 0.15]; m2 ~
expon(loc 1.6e-34, scale 2.8891e-5) on [0, 1.3e-4]; R0 ~ norm(6988 Ω, 381.7 Ω) on [6252, 7897] Ω;
RTN amplitude A ~ U(0, 0.5). The inverse CDFs are written out here (scipy is not a dependency):
the normal one is Acklam's rational approximation (relative error < 1.2e-9).

Per pulse the random telegraph noise is a two-state Markov chain, P(L→H) = p = 8e-4,
P(H→L) = q = 2e-3; n pulses at once use the n-step matrix (λ = 1 − p − q): P(H | L, n) =
p/(p+q)·(1 − λⁿ), P(L | H, n) = q/(p+q)·(1 − λⁿ). After each update w_RTN = U1·U2·A in H, 0 in L
(U1, U2 ~ U(0, 1) redrawn). The 1/f noise is Kasdin's fractional-integration filter on a register
of the last 15 U(0, 1) samples, newest first (n pulses push n fresh samples): w_1/f =
α·Σ b_k·u_k, b_0 = 1, b_k = b_{k−1}·(k − ½)/k, α = 0.025. The samples have mean ½, so a full
register adds α·½·Σb ≈ +0.054 to ln R, as in the authors' code; ``flicker_centered`` uses
U(−½, ½) instead (zero-mean noise).

The paper's protocol: SET to the LRS, then weak-RESET pulses only (each update ≤ 14 pulses).
Switches ``d2d``, ``rtn``, ``flicker`` turn each term off (D2D off: every device takes the
truncated median of each distribution, A = 0.25); ``mean_only`` turns all three off. The random
draws happen whatever the switches, so the terms left on are the same draw for draw.

Lab-facing electrical layer *(standard model; pulse amplitude, width, read voltage and I–V are
not published in the sources available, so they are parameters)*:

- polarity: with ``set_polarity`` +1 a positive voltage SETs. A SET-polarity voltage at or above
  ``v_set_threshold`` returns the device to the state the authors' code starts from: t = 0,
  RTN in L, 1/f register cleared, R = R0·exp(c1) (the LRS).
- a RESET-polarity voltage at or above ``v_reset_threshold`` held for ``pulse_width_ref_s``
  counts as one weak-RESET pulse. Time accumulates, so t = (time held)/``pulse_width_ref_s`` may
  be fractional and a pulse split into sub-steps counts the same; w_mean follows t, while RTN and
  1/f advance by the whole pulses completed (relative tolerance 1e-9). Below threshold nothing
  changes (reads never disturb).
- I–V ``I = sinh(b·V)/(b·R)`` (b = ``iv_nonlinearity_b``, default 0: ohmic, as the authors'
  model gives only R), multiplicative read noise U(−a, a) (a = ``read_noise_rel``, §1.7).
- ``formed=False``: devices start virgin at ``r_virgin_ohm`` and form (into the LRS, as a SET)
  after ``t_form_s`` of cumulative SET-polarity bias at or above ``v_form``.
- faults short / open / stuck as in :class:`~mocks.devices.rram.RRAMArray` (a faulted device
  does not evolve). No breakdown and no retention drift are modelled (:meth:`WeakResetArray.age`
  does nothing). The model is fitted over ~2,000 pulses; far beyond, its log-linear growth is
  capped at ``r_open_ohm`` so R stays finite.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from mocks.devices.rram import (
    _V_MIN,
    NORMAL,
    DeviceArray,
    _non_negative,
    _positive,
    check_params,
    params_from_dict,
)

_TIME_RTOL = 1e-9  # a whole pulse completes at accumulated time >= width·(1 − rtol)
_MAX_PULSES = 2.0**62  # whole-pulse counts stay within int64 (the noise has long forgotten)
_MAX_LN = 700.0  # cap on ln(R/R0) before exp (R is capped at r_open_ohm anyway)


@dataclass(frozen=True)
class WeakResetParams:
    """Named parameters of :class:`WeakResetArray`: the authors' fitted distributions and
    noise values (Majumdar et al., arXiv:2107.06064, authors' code), then the lab-facing
    electrical parameters *(standard model)*. Any field may be given to the constructor or
    through :meth:`from_dict`."""

    # --- mean model D2D distributions (authors' code) ---
    m1_loc: float = 3.7415768289771944e-05
    """m1 (ln R per pulse before t*) ~ expon: loc."""
    m1_scale: float = 6.564678011593196e-04
    """m1 ~ expon: scale, > 0."""
    m1_min: float = 3.74e-5
    """Lower truncation of m1."""
    m1_max: float = 0.0076
    """Upper truncation of m1."""
    t_star_s: float = 0.8033817700570505
    """t* (pulses at the knee) ~ lognorm: shape s (sigma of ln t*), > 0."""
    t_star_scale: float = 542.5385224079308
    """t* ~ lognorm: scale (median before truncation), pulses, > 0."""
    t_star_min: float = 41.0
    """Lower truncation of t*, pulses, > 0."""
    t_star_max: float = 2000.0
    """Upper truncation of t*, pulses."""
    c1_mean: float = 0.005293141020227579
    """c1 (ln R offset) ~ norm: mean."""
    c1_sd: float = 0.05320804175540371
    """c1 ~ norm: standard deviation, > 0."""
    c1_min: float = -0.15
    """Lower truncation of c1."""
    c1_max: float = 0.15
    """Upper truncation of c1."""
    m2_loc: float = 1.644496812189661e-34
    """m2 (ln R per pulse after t*) ~ expon: loc."""
    m2_scale: float = 2.8890516951651312e-05
    """m2 ~ expon: scale, > 0."""
    m2_min: float = 0.0
    """Lower truncation of m2."""
    m2_max: float = 1.3e-4
    """Upper truncation of m2."""
    r0_mean_ohm: float = 6988.0
    """R0 (LRS after SET) ~ norm: mean, Ω."""
    r0_sd_ohm: float = 381.7
    """R0 ~ norm: standard deviation, Ω, > 0."""
    r0_min_ohm: float = 6252.0
    """Lower truncation of R0, Ω, > 0."""
    r0_max_ohm: float = 7897.0
    """Upper truncation of R0, Ω."""

    # --- noise (authors' code) ---
    rtn_amplitude_max: float = 0.5
    """RTN amplitude A ~ U(0, rtn_amplitude_max) per device, ln R, ≥ 0."""
    rtn_p: float = 8e-4
    """RTN P(L→H) per pulse, in [0, 1]."""
    rtn_q: float = 2e-3
    """RTN P(H→L) per pulse, in [0, 1]; p + q > 0."""
    flicker_alpha: float = 0.025
    """1/f coupling α (ln R), ≥ 0."""
    flicker_taps: int = 15
    """Length of the Kasdin filter and of the sample register, ≥ 1."""
    flicker_centered: bool = False
    """False: U(0, 1) samples as the authors (+0.054 mean in ln R); True: U(−½, ½)."""

    # --- switches ---
    d2d: bool = True
    """Device-to-device variability (off: every device takes the truncated medians)."""
    rtn: bool = True
    """Random telegraph noise term."""
    flicker: bool = True
    """1/f noise term."""
    mean_only: bool = False
    """The mean model alone: overrides d2d, rtn and flicker (all off)."""

    # --- electrical (standard model; not published in the sources available) ---
    set_polarity: int = 1
    """+1: a positive applied voltage SETs; −1: a negative one does."""
    v_set_threshold: float = 1.0
    """|V| at and above which a SET-polarity voltage SETs to the LRS, V, ≥ 0."""
    v_reset_threshold: float = 1.0
    """|V| at and above which a RESET-polarity voltage weak-RESETs, V, ≥ 0."""
    pulse_width_ref_s: float = 1e-6
    """Time at a weak-RESET bias that counts as one pulse, s, > 0."""
    iv_nonlinearity_b: float = 0.0
    """b in I = sinh(b·V)/(b·R), 1/V, ≥ 0; 0 is exactly ohmic."""
    read_noise_rel: float = 0.01
    """Half-width a of the uniform multiplicative read noise U(−a, a) on the current, in [0, 1)."""
    v_form: float = 2.5
    """|V| (SET polarity) at and above which a virgin device accumulates forming time, V, > 0."""
    t_form_s: float = 10e-6
    """Cumulative forming time that forms a virgin device, s, ≥ 0."""
    r_virgin_ohm: float = 5e6
    """Resistance of a virgin (unformed) device, Ω, > 0."""
    r_short_ohm: float = 100.0
    """Resistance of a shorted device (injected fault), Ω, > 0."""
    r_open_ohm: float = 1e12
    """Resistance of an open device (injected fault), Ω, > 0."""

    def __post_init__(self) -> None:
        check_params(self, "HfOx", _RULES)
        for name in ("m1", "t_star", "c1", "m2", "r0"):
            unit = "_ohm" if name == "r0" else ""
            lo, hi = getattr(self, f"{name}_min{unit}"), getattr(self, f"{name}_max{unit}")
            if not lo < hi:
                raise ValueError(f"HfOx parameter '{name}_min{unit}': must be < {name}_max{unit},"
                                 f" got {lo!r} >= {hi!r}")
        if not self.rtn_p + self.rtn_q > 0:
            raise ValueError("HfOx parameter 'rtn_p': rtn_p + rtn_q must be > 0")

    @classmethod
    def from_dict(cls, d: Mapping) -> WeakResetParams:
        """Build from a mapping of field name to value (e.g. a bench file section); an unknown
        key, a value of the wrong type or out of range raises ``ValueError`` naming the key."""
        return params_from_dict(cls, d, "HfOx")


_RULES = (
    *((name, _positive, "> 0") for name in (
        "m1_scale", "t_star_s", "t_star_scale", "t_star_min", "c1_sd", "m2_scale", "r0_sd_ohm",
        "r0_min_ohm", "pulse_width_ref_s", "v_form", "r_virgin_ohm", "r_short_ohm",
        "r_open_ohm", "flicker_taps")),
    *((name, _non_negative, ">= 0") for name in (
        "rtn_amplitude_max", "flicker_alpha", "v_set_threshold", "v_reset_threshold",
        "iv_nonlinearity_b", "t_form_s")),
    *((name, lambda x: 0 <= x <= 1, "in [0, 1]") for name in ("rtn_p", "rtn_q")),
    ("set_polarity", lambda x: x in (1, -1), "+1 or -1"),
    ("read_noise_rel", lambda x: 0 <= x < 1, "in [0, 1)"),
)


# ---------------------------------------------------------------------- distributions
_ACKLAM_A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
             1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00)
_ACKLAM_B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
             6.680131188771972e+01, -1.328068155288572e+01)
_ACKLAM_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
             -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00)
_ACKLAM_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
             3.754408661907416e+00)
_ACKLAM_P_LOW = 0.02425


def _poly(coeffs, x):
    out = np.full_like(x, coeffs[0])
    for c in coeffs[1:]:
        out *= x
        out += c
    return out


def norm_ppf(u) -> np.ndarray:
    """Standard normal inverse CDF Φ⁻¹(u) for u in (0, 1), vectorised: P. J. Acklam's rational
    approximation (relative error < 1.15e-9)."""
    u = np.asarray(u, dtype=float)
    x = np.empty_like(u)
    low, high = u < _ACKLAM_P_LOW, u > 1 - _ACKLAM_P_LOW
    mid = ~(low | high)
    q = u[mid] - 0.5
    r = q * q
    x[mid] = q * _poly(_ACKLAM_A, r) / (_poly(_ACKLAM_B, r) * r + 1)
    for tail, sign in ((low, 1.0), (high, -1.0)):
        p = u[tail] if sign > 0 else 1 - u[tail]
        q = np.sqrt(-2 * np.log(p))
        x[tail] = sign * _poly(_ACKLAM_C, q) / (_poly(_ACKLAM_D, q) * q + 1)
    return x


def norm_cdf(x: float) -> float:
    """Standard normal CDF Φ(x)."""
    return 0.5 * math.erfc(-x / math.sqrt(2))


class _Truncated:
    """A distribution truncated to [lo, hi], sampled by inverse CDF: u ~ U(F(lo), F(hi)),
    x = F⁻¹(u) (clipped to [lo, hi] against rounding)."""

    def __init__(self, cdf, ppf, lo: float, hi: float):
        self.ppf, self.lo, self.hi = ppf, lo, hi
        self.f_lo, self.f_hi = cdf(lo), cdf(hi)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.at(rng.random(n))

    def at(self, v) -> np.ndarray:
        """The quantile at fraction ``v`` of the truncated distribution (v = ½: its median)."""
        u = self.f_lo + (self.f_hi - self.f_lo) * np.asarray(v, dtype=float)
        return np.clip(self.ppf(u), self.lo, self.hi)


def truncated_distributions(p: WeakResetParams) -> dict[str, _Truncated]:
    """The five truncated D2D distributions of the mean model, by parameter name."""
    def expon(loc, scale, lo, hi):
        return _Truncated(lambda x: -math.expm1(-max(x - loc, 0.0) / scale),
                          lambda u: loc - scale * np.log1p(-u), lo, hi)

    def norm(mean, sd, lo, hi):
        return _Truncated(lambda x: norm_cdf((x - mean) / sd),
                          lambda u: mean + sd * norm_ppf(u), lo, hi)

    s, scale = p.t_star_s, p.t_star_scale
    return {
        "m1": expon(p.m1_loc, p.m1_scale, p.m1_min, p.m1_max),
        "t_star": _Truncated(lambda x: norm_cdf(math.log(x / scale) / s),
                             lambda u: scale * np.exp(s * norm_ppf(u)),
                             p.t_star_min, p.t_star_max),
        "c1": norm(p.c1_mean, p.c1_sd, p.c1_min, p.c1_max),
        "m2": expon(p.m2_loc, p.m2_scale, p.m2_min, p.m2_max),
        "r0": norm(p.r0_mean_ohm, p.r0_sd_ohm, p.r0_min_ohm, p.r0_max_ohm),
    }


def kasdin_taps(n: int) -> np.ndarray:
    """Kasdin's 1/f filter coefficients b_0..b_{n−1}: b_0 = 1, b_k = b_{k−1}·(k − ½)/k."""
    b = np.ones(n)
    for k in range(1, n):
        b[k] = b[k - 1] * (k - 0.5) / k
    return b


# ---------------------------------------------------------------------- the array
class WeakResetArray(DeviceArray):
    """An array of HfOx RRAM devices under weak-RESET programming (module docstring), with the
    device API of :class:`~mocks.devices.rram.RRAMArray` (``index`` arguments: see
    :class:`~mocks.devices.rram.DeviceArray`).

    ``rng``: the generator every draw comes from (default ``np.random.default_rng(0)``); the D2D
    parameters are drawn at construction in the order m1, t*, c1, m2, R0, A, whatever the
    switches and ``formed``. ``formed=True`` starts every device SET to its LRS; ``False`` virgin.
    """

    _LABEL = "HfOx"

    def __init__(self, shape: int | tuple[int, ...], params: WeakResetParams | None = None,
                 rng: np.random.Generator | None = None, formed: bool = True) -> None:
        n = self._init_array(shape, rng)
        params = WeakResetParams() if params is None else params
        if not isinstance(params, WeakResetParams):
            raise TypeError("WeakResetArray params: expected WeakResetParams, got "
                            f"{type(params).__name__}")
        if not isinstance(formed, (bool, np.bool_)):
            raise TypeError(f"WeakResetArray formed: expected a bool, got {formed!r}")
        self._params = p = params
        self._d2d = p.d2d and not p.mean_only
        self._rtn_on = p.rtn and not p.mean_only
        self._flicker_on = p.flicker and not p.mean_only

        dists = truncated_distributions(p)
        drawn = {name: dist.sample(self.rng, n) for name, dist in dists.items()}
        drawn["rtn_amplitude"] = p.rtn_amplitude_max * self.rng.random(n)
        if not self._d2d:
            drawn = {name: np.full(n, float(dist.at(0.5))) for name, dist in dists.items()}
            drawn["rtn_amplitude"] = np.full(n, p.rtn_amplitude_max / 2)
        self._m1, self._t_star, self._c1 = drawn["m1"], drawn["t_star"], drawn["c1"]
        self._m2, self._r0, self._amp = drawn["m2"], drawn["r0"], drawn["rtn_amplitude"]

        lam = 1.0 - p.rtn_p - p.rtn_q
        self._lam = lam
        self._pi_high = p.rtn_p / (p.rtn_p + p.rtn_q)
        self._taps = kasdin_taps(p.flicker_taps)

        self._t = np.zeros(n)  # weak-RESET pulses since SET (fractional)
        self._n_done = np.zeros(n, dtype=np.int64)  # whole pulses RTN and 1/f have seen
        self._high = np.zeros(n, dtype=bool)  # RTN state
        self._w_rtn = np.zeros(n)
        self._reg = np.zeros((n, p.flicker_taps))  # 1/f register, newest sample first
        self._w_flicker = np.zeros(n)
        self._cycles = np.zeros(n, dtype=np.int64)
        self._formed = np.full(n, bool(formed))
        self._form_time = np.zeros(n)
        self._init_state(np.where(self._formed, self._r0 * np.exp(self._c1), p.r_virgin_ohm))
        self._refresh()

    # ------------------------------------------------------------------ views
    @property
    def formed(self) -> np.ndarray:
        """Whether each device is formed (bool copy, array shape)."""
        return self._formed.reshape(self._shape).copy()

    @property
    def pulse_count(self) -> np.ndarray:
        """t: weak-RESET pulses (in units of ``pulse_width_ref_s``, may be fractional) since each
        device's last SET (copy, array shape)."""
        return self._t.reshape(self._shape).copy()

    @property
    def cycles(self) -> np.ndarray:
        """SETs that followed weak-RESET pulses, per device (int copy, array shape)."""
        return self._cycles.reshape(self._shape).copy()

    @property
    def rtn_high(self) -> np.ndarray:
        """Whether each device's RTN chain is in its high state (bool copy, array shape)."""
        return self._high.reshape(self._shape).copy()

    def log_terms(self) -> dict[str, np.ndarray]:
        """The terms of ln(R/R0) of each device (copies, array shape): ``w_mean``, ``w_rtn``,
        ``w_flicker`` (0 where switched off), as of its last update."""
        return {"w_mean": self._w_mean(None).reshape(self._shape),
                "w_rtn": self._w_rtn.reshape(self._shape).copy(),
                "w_flicker": self._w_flicker.reshape(self._shape).copy()}

    def device_parameters(self) -> dict[str, np.ndarray]:
        """Per-device parameters (copies, array shape): m1, m2 (ln R per pulse), t_star
        (pulses), c1 (ln R), r0 (Ω), rtn_amplitude (ln R); the medians when D2D is off."""
        out = {"m1": self._m1, "t_star": self._t_star, "c1": self._c1, "m2": self._m2,
               "r0": self._r0, "rtn_amplitude": self._amp}
        return {k: v.reshape(self._shape).copy() for k, v in out.items()}

    # ------------------------------------------------------------------ dynamics
    def age(self, dt_s) -> None:
        """No retention drift in this model: checks ``dt_s`` and does nothing."""
        self._check_dt("age", dt_s)

    def apply(self, v, dt, index=Ellipsis) -> None:
        """Hold voltage ``v`` (V; scalar or array broadcast to the selection) for ``dt`` s:
        record |V|; SET-polarity at/above threshold: back to the LRS (t = 0); RESET-polarity
        at/above threshold: ``dt/pulse_width_ref_s`` weak-RESET pulses; forming of virgin
        devices."""
        dt = self._check_dt("apply", dt)
        ids = self._select(index)
        v = np.asarray(v, dtype=float)
        sel_shape = self._shape if ids is None else ids.shape
        try:
            v = np.broadcast_to(v, sel_shape).ravel()
        except ValueError:
            raise ValueError(f"HfOx apply: voltage shape {v.shape} does not broadcast to the "
                             f"selection shape {sel_shape}") from None
        if not np.isfinite(v).all():
            raise ValueError("HfOx apply: voltages must be finite")
        k = np.arange(self._size) if ids is None else ids.ravel()
        u = np.abs(v)
        self._record_voltage(None if ids is None else k, u)
        if dt == 0:
            return
        p = self._params
        pv = v if p.set_polarity == 1 else -v  # > 0: SET polarity
        plain = self._plain[k]
        set_k = k[plain & (pv >= max(p.v_set_threshold, _V_MIN))]
        if set_k.size:
            self._set(set_k)
        reset_k = k[plain & (pv <= -max(p.v_reset_threshold, _V_MIN))]
        if reset_k.size:
            self._weak_reset(reset_k, dt / p.pulse_width_ref_s)
        if self._n_virgin:
            form_k = k[self._virgin[k] & (pv >= p.v_form)]
            if form_k.size:
                self._form(form_k, dt)

    def _set(self, k: np.ndarray) -> None:
        """Back to the state after SET: t = 0, RTN low, 1/f register cleared, R = R0·exp(c1)."""
        self._cycles[k] += self._t[k] > 0
        self._t[k] = 0.0
        self._n_done[k] = 0
        self._high[k] = False
        self._w_rtn[k] = 0.0
        self._reg[k] = 0.0
        self._w_flicker[k] = 0.0
        self._r[k] = self._r0[k] * np.exp(self._c1[k])

    def _weak_reset(self, k: np.ndarray, pulses: float) -> None:
        """Advance devices ``k`` by ``pulses`` weak-RESET pulses (the noise by whole ones)."""
        t = self._t[k] + pulses
        self._t[k] = t
        whole = np.floor(np.minimum(t * (1 + _TIME_RTOL), _MAX_PULSES)).astype(np.int64)
        n = whole - self._n_done[k]
        stepped = n > 0
        if stepped.any():
            j, n = k[stepped], n[stepped]
            self._n_done[j] = whole[stepped]
            self._noise(j, n)
        w = self._w_mean(k) + self._w_rtn[k] + self._w_flicker[k]
        self._r[k] = np.minimum(self._r0[k] * np.exp(np.minimum(w, _MAX_LN)),
                                self._params.r_open_ohm)

    def _noise(self, j: np.ndarray, n: np.ndarray) -> None:
        """RTN and 1/f updates of devices ``j`` after ``n`` (≥ 1) whole pulses each."""
        p = self._params
        taps = p.flicker_taps
        draws = self.rng.random((j.size, 3 + taps))  # flip test, U1, U2, fresh 1/f samples
        decay = 1.0 - self._lam ** n
        high = self._high[j]
        flip = np.where(high, (1.0 - self._pi_high) * decay, self._pi_high * decay)
        high ^= draws[:, 0] < flip
        self._high[j] = high
        if self._rtn_on:
            self._w_rtn[j] = np.where(high, draws[:, 1] * draws[:, 2] * self._amp[j], 0.0)
        fresh = draws[:, 3:]
        if p.flicker_centered:
            fresh -= 0.5
        pushed = np.minimum(n, taps)
        combined = np.concatenate([fresh, self._reg[j]], axis=1)
        reg = np.take_along_axis(combined, (taps - pushed)[:, None] + np.arange(taps), axis=1)
        self._reg[j] = reg
        if self._flicker_on:
            self._w_flicker[j] = p.flicker_alpha * (reg @ self._taps)

    def _w_mean(self, k: np.ndarray | None) -> np.ndarray:
        """Mean-model ln(R/R0) at each device's t (k None: every device)."""
        sel = slice(None) if k is None else k
        t, t_star = self._t[sel], self._t_star[sel]
        m1, m2, c1 = self._m1[sel], self._m2[sel], self._c1[sel]
        return np.where(t < t_star, m1 * t + c1, m2 * t + t_star * (m1 - m2) + c1)

    def _form(self, k: np.ndarray, dt: float) -> None:
        k = np.unique(k)
        self._form_time[k] += dt
        done = k[self._form_time[k] >= self._params.t_form_s * (1 - _TIME_RTOL)]
        if done.size:
            self._formed[done] = True
            self._refresh()
            self._set(done)

    def _refresh(self) -> None:
        """Recompute the masks after a state event (forming, fault)."""
        normal = (self._fault == NORMAL) & ~self._broken
        self._plain = normal & self._formed  # weak-RESET / SET act
        self._virgin = normal & ~self._formed  # can form
        self._n_virgin = int(np.count_nonzero(self._virgin))
