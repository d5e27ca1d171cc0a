"""Fits of RF spintronic measurements, each returning :class:`~labctl.calibration.Parameter`
values (value, standard error, unit) ready for the calibration store.

- :func:`fit_spin_diode`: rectified voltage vs frequency → resonance f_r, half-width Γ = α·f_r,
  symmetric and antisymmetric amplitudes, sensitivity (mV/mW) (PHYSICS.md §3.2).
- :func:`fit_tuning`: resonances vs bias current and field → f_r = f0·(1 + κ_I·I)·(1 + H/H_s).
- :func:`fit_emission_line`: one analyzer trace → the oscillator's frequency, FWHM and power.
- :func:`fit_oscillator`: power and frequency vs current → I_th, Q of the universal
  auto-oscillator, P = c·I²·p0, f = f0 + N·p0, p0 = (ξ − 1)/(ξ + Q) (PHYSICS.md §3.3).

Standard errors come from the fit covariance (least squares, scaled by the residual variance
unless the noise is known exactly); derived quantities by the delta method.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import curve_fit, least_squares
from scipy.special import digamma, polygamma, voigt_profile

from labctl.calibration import Parameter
from labctl.rfmodel import stno_power_fraction

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


class FitError(ValueError):
    """A fit that cannot be made from the data given (no resonance, too few points)."""


def _stderr(pcov: np.ndarray) -> np.ndarray:
    return np.sqrt(np.clip(np.diag(pcov), 0.0, None))


def _delta(fun, x: np.ndarray, cov: np.ndarray) -> tuple[float, float]:
    """fun(x) and its standard error by the delta method (central differences)."""
    x = np.asarray(x, dtype=float)
    value = float(fun(x))
    grad = np.empty(x.size)
    for k in range(x.size):
        h = 1e-6 * max(abs(x[k]), 1e-12)
        up, down = x.copy(), x.copy()
        up[k] += h
        down[k] -= h
        grad[k] = (fun(up) - fun(down)) / (2 * h)
    return value, float(math.sqrt(max(grad @ cov @ grad, 0.0)))


# ============================================================================ spin diode
def spin_diode_model(f, f_r, gamma, v_sym, v_anti, offset, slope):
    """V(f) = offset + slope·(f − f_r) + V_s·Γ²/(δ²+Γ²) + V_a·2Γδ/(δ²+Γ²), δ = f − f_r (V, Hz)."""
    d = f - f_r
    den = d * d + gamma * gamma
    return offset + slope * d + (v_sym * gamma * gamma + v_anti * 2 * gamma * d) / den


def peak_sensitivity(v_sym: float, v_anti: float) -> float:
    """Largest |V| of V_s·Γ²/(δ²+Γ²) + V_a·2Γδ/(δ²+Γ²) over δ: (|V_s| + √(V_s² + 4V_a²))/2."""
    return (abs(v_sym) + math.sqrt(v_sym * v_sym + 4 * v_anti * v_anti)) / 2


def fit_spin_diode(freqs, volts, power_w: float) -> dict[str, Parameter]:
    """Fit one spin-diode spectrum (Hz, V) taken at RF power ``power_w`` (W). Returns f_r (Hz),
    linewidth (half-width Γ, Hz), alpha (Γ/f_r), v_sym, v_anti, offset (V) and sensitivity
    (peak |V_dc|/P in mV/mW), each with its standard error."""
    f = np.asarray(freqs, dtype=float)
    v = np.asarray(volts, dtype=float)
    if f.size < 8:
        raise FitError(f"a spin-diode fit needs at least 8 points, got {f.size}")
    hi, lo = int(np.argmax(v)), int(np.argmin(v))
    edges = np.concatenate([v[: max(2, f.size // 10)], v[-max(2, f.size // 10):]])
    offset0 = float(np.median(edges))
    f0 = 0.5 * (f[hi] + f[lo])
    gamma0 = max(abs(f[hi] - f[lo]) / 2, 2 * float(np.median(np.diff(np.sort(f)))))
    anti0 = (v[hi] - v[lo]) / 2 * (1 if f[hi] > f[lo] else -1)
    sym0 = float(np.interp(f0, f, v)) - offset0 if np.all(np.diff(f) > 0) else 0.0
    amp = max(abs(anti0), abs(sym0), float(np.std(v)), 1e-12)
    scale = np.array([gamma0, gamma0, amp, amp, amp, amp / gamma0])
    # f_r is fitted as f0 − 5Γ0 + Γ0·z: z near 5, never near 0, where curve_fit's relative
    # difference step (|z|·1.5e-8) would move f_r by less than a float's resolution in Hz and
    # leave the covariance singular (a resonance exactly at the window's centre did)
    centre = np.array([f0 - 5 * gamma0, 0, 0, 0, 0, 0])

    def scaled(f, *z):  # parameters in units of the expected linewidth and amplitude
        return spin_diode_model(f, *(centre + scale * np.asarray(z)))

    z0 = (np.array([f0, gamma0, sym0, anti0, offset0, 0.0]) - centre) / scale
    try:
        zopt, zcov = curve_fit(scaled, f, v, p0=z0, maxfev=20000)
    except (RuntimeError, ValueError) as exc:
        raise FitError(f"the spin-diode fit did not converge ({exc})") from None
    if not np.all(np.isfinite(zcov)):
        raise FitError("the spin-diode fit is degenerate (no resonance in the window?)")
    popt = centre + scale * zopt
    pcov = zcov * np.outer(scale, scale)
    popt[1] = abs(popt[1])
    err = _stderr(pcov)
    f_r, gamma, vs, va, off, _ = popt
    alpha, alpha_err = _delta(lambda x: x[1] / x[0], popt[:2], pcov[:2, :2])
    sens, sens_err = _delta(lambda x: peak_sensitivity(x[0], x[1]) / power_w, popt[2:4],
                            pcov[2:4, 2:4])  # V/W = mV/mW
    return {
        "f_r": Parameter(float(f_r), float(err[0]), "Hz"),
        "linewidth": Parameter(float(gamma), float(err[1]), "Hz"),
        "alpha": Parameter(alpha, alpha_err, ""),
        "v_sym": Parameter(float(vs), float(err[2]), "V"),
        "v_anti": Parameter(float(va), float(err[3]), "V"),
        "offset": Parameter(float(off), float(err[4]), "V"),
        "sensitivity": Parameter(sens, sens_err, "mV/mW"),
    }


# ============================================================================ tuning
def tuning_model(x, f0, kappa_i, inv_hs):
    """f_r = f0·(1 + κ_I·I)·(1 + H/H_s); x = (I in A, H in mT)."""
    i, h = x
    return f0 * (1 + kappa_i * i) * (1 + inv_hs * h)


def fit_tuning(currents, fields_mt, f_r, f_r_err) -> dict[str, Parameter]:
    """Fit resonances f_r ± err (Hz) measured at bias currents (A) and fields (mT). A parameter
    without spread in the data (one field only, say) is held at 0 and reported with NaN error.
    Returns f0 (Hz), kappa_i (1/A), df_di (Hz/A at H = 0), inv_hs (1/mT), df_dh (Hz/mT)."""
    i = np.asarray(currents, dtype=float)
    h = np.asarray(fields_mt, dtype=float)
    y = np.asarray(f_r, dtype=float)
    s = np.asarray(f_r_err, dtype=float)
    free = [True, np.ptp(i) > 0, np.ptp(h) > 0]
    if y.size < 1 + sum(free[1:]) + 1:
        raise FitError(f"a tuning fit of {sum(free)} parameters needs more than {y.size} points")
    full = np.array([float(np.mean(y)), 0.0, 0.0])

    def model(x, *p):
        q = full.copy()
        q[np.array(free)] = p
        return tuning_model(x, *q)

    popt, pcov = curve_fit(model, (i, h), y, p0=full[np.array(free)], sigma=s,
                           absolute_sigma=False, maxfev=10000)
    cov = np.full((3, 3), np.nan)
    idx = np.flatnonzero(free)
    cov[np.ix_(idx, idx)] = pcov
    p = full.copy()
    p[idx] = popt
    err = np.sqrt(np.diag(cov))
    out = {"f0": Parameter(float(p[0]), float(err[0]), "Hz"),
           "kappa_i": Parameter(float(p[1]), float(err[1]), "1/A"),
           "inv_hs": Parameter(float(p[2]), float(err[2]), "1/mT")}
    for name, k in (("df_di", 1), ("df_dh", 2)):
        if free[k]:
            sub = [0, k]
            value, e = _delta(lambda x: x[0] * x[1], p[sub], cov[np.ix_(sub, sub)])
        else:
            value, e = 0.0, math.nan
        out[name] = Parameter(value, e, "Hz/A" if k == 1 else "Hz/mT")
    return out


def bias_for_resonance(target_hz: float, f0: float, kappa_i: float, inv_hs: float = 0.0,
                       field_mt: float = 0.0) -> float:
    """The bias current (A) that puts the resonance at ``target_hz`` by the tuning law."""
    if kappa_i == 0:
        raise FitError("the tuning curve has no current dependence (kappa_i = 0)")
    return (target_hz / (f0 * (1 + inv_hs * field_mt)) - 1) / kappa_i


# ============================================================================ oscillator
def emission_model(f, centre, fwhm, power, floor, rbw):
    """Displayed power (W) of a Lorentzian line (centre, FWHM Hz, power W) through a Gaussian
    RBW filter, plus a flat noise floor (W)."""
    sigma = rbw / FWHM_PER_SIGMA
    enbw = sigma * math.sqrt(2 * math.pi)
    return power * enbw * voigt_profile(f - centre, sigma, abs(fwhm) / 2) + floor


def fit_emission_line(freqs, dbm, rbw: float, averages: int, min_snr: float = 5.0
                      ) -> dict[str, Parameter] | None:
    """Fit an analyzer trace (Hz, dBm) of ``averages`` power-averaged sweeps. Returns the
    line's frequency, fwhm (Hz) and power (W) and the floor (W), or None when no line stands
    ``min_snr`` standard errors above the floor.

    Each displayed point is (line + floor)·X, X ~ Gamma(N, 1/N) (N averaged χ²₂ sweeps), so
    ln(point) = ln(model) + E[ln X] + ε with E[ln X] = ψ(N) − ln N and Var ε = ψ'(N) exactly:
    the fit is made on ln(power) with that known offset and noise (absolute errors)."""
    f = np.asarray(freqs, dtype=float)
    y = 1e-3 * 10 ** (np.asarray(dbm, dtype=float) / 10)
    n = int(averages)
    bias, sd = digamma(n) - math.log(n), math.sqrt(float(polygamma(1, n)))
    floor0 = float(np.median(y)) / math.exp(bias)
    k = int(np.argmax(y))
    step = float(f[1] - f[0])
    enbw = rbw / FWHM_PER_SIGMA * math.sqrt(2 * math.pi)
    power0 = max(float(np.sum(np.clip(y / math.exp(bias) - floor0, 0, None))) * step / enbw,
                 floor0)
    fwhm0 = max(2 * power0 * enbw / (math.pi * max(y[k] - floor0, floor0)), rbw / 2, 2 * step)
    scale = [step, fwhm0, power0, floor0]

    def resid(p):
        model = emission_model(f, p[0], p[1], p[2], p[3], rbw)
        return (np.log(np.clip(model, 1e-300, None)) + bias - np.log(y)) / sd

    try:
        sol = least_squares(resid, [f[k], fwhm0, power0, floor0], x_scale=scale,
                            bounds=([f[0], 0.0, 0.0, 0.0], [f[-1], np.inf, np.inf, np.inf]))
    except ValueError:
        return None
    js = sol.jac * np.asarray(scale)  # conditioned: the Jacobian in scaled parameters
    try:
        cov = np.linalg.inv(js.T @ js) * np.outer(scale, scale)
    except np.linalg.LinAlgError:
        return None
    err = _stderr(cov)
    centre, fwhm, power, floor = sol.x
    if not (err[2] > 0 and power / err[2] >= min_snr and f[0] < centre < f[-1]):
        return None
    return {"frequency": Parameter(float(centre), float(err[0]), "Hz"),
            "fwhm": Parameter(float(fwhm), float(err[1]), "Hz"),
            "power": Parameter(float(power), float(err[2]), "W"),
            "floor": Parameter(float(floor), float(err[3]), "W")}


def fit_oscillator(currents, power, power_err, freq, freq_err) -> dict[str, Parameter]:
    """Joint fit of output power (W) and frequency (Hz) against DC current (A), each with its
    standard error, to P = c·I²·p0(I), f = f0 + N·p0(I). Returns i_th (A), q, c (W/A²),
    f0 (Hz) and shift (N/2π in Hz), errors scaled by the reduced χ² when it exceeds 1."""
    i = np.asarray(currents, dtype=float)
    data = [np.asarray(x, dtype=float) for x in (power, power_err, freq, freq_err)]
    p, pe, fr, fe = data
    if i.size < 4:
        raise FitError(f"an oscillator fit needs at least 4 currents above threshold, "
                       f"got {i.size}")
    i_min = float(np.min(np.abs(i)))
    xs = np.abs(i)

    def resid(x):
        i_th, q, c, f0, shift = x
        p0 = stno_power_fraction(xs, i_th, q)
        return np.concatenate([(c * xs ** 2 * p0 - p) / pe, (f0 + shift * p0 - fr) / fe])

    best = None
    for frac in (0.5, 0.75, 0.9):  # starts below the lowest current that oscillates
        i_th0 = frac * i_min
        p0 = stno_power_fraction(xs, i_th0, 2.0)
        c0 = float(np.median(p / np.maximum(xs ** 2 * p0, 1e-30)))
        slope = np.polyfit(p0, fr, 1) if np.ptp(p0) > 0 else (0.0, float(np.mean(fr)))
        # parameters in natural units: x = centre + scale·z
        centre = np.array([0.0, 0.0, 0.0, float(slope[1]), 0.0])
        scale = np.array([i_th0, 1.0, abs(c0), float(np.max(fe)) + 1.0, abs(slope[0]) + 1.0])
        lo = (np.array([0, 0, 0, -np.inf, -np.inf]) - centre) / scale
        hi = (np.array([i_min, np.inf, np.inf, np.inf, np.inf]) - centre) / scale
        z0 = (np.array([i_th0, 2.0, c0, slope[1], slope[0]]) - centre) / scale
        sol = least_squares(lambda z, c=centre, s=scale: resid(c + s * z), z0, bounds=(lo, hi))
        if best is None or sol.cost < best[0].cost:
            best = sol, centre, scale
    sol, centre, scale = best
    dof = max(2 * i.size - 5, 1)
    chi2 = 2 * sol.cost / dof
    cov = np.linalg.pinv(sol.jac.T @ sol.jac) * max(chi2, 1.0) * np.outer(scale, scale)
    err = _stderr(cov)
    x = centre + scale * sol.x
    names = (("i_th", "A"), ("q", ""), ("c", "W/A^2"), ("f0", "Hz"), ("shift", "Hz"))
    return {name: Parameter(float(v), float(e), unit)
            for (name, unit), v, e in zip(names, x, err, strict=True)}
