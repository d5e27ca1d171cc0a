"""The RF spintronic network model of Ross et al. (arXiv:2211.03659, Nat. Nanotechnol. 18, 1273
(2023), authors' code) and the universal auto-oscillator: closed forms shared by the fits, the
in-situ trainer and the simulated devices (one definition, so the trainer's model and the
simulator's physics cannot drift apart). Sources and parameter values:
:mod:`mocks.devices.spintronics`. Units are SI: Hz, W, A, V.
"""

from __future__ import annotations

import math

import numpy as np


def k_sd(tmr_ratio: float, i_th: float, gamma_p: float = math.pi / 4, beta_s: float = 1.0
         ) -> float:
    """Spin-diode sensitivity K_SD in V/W (= 1/A) from ΔR/R, I_th (A), the polarizer angle
    γ_p (rad) and β_s (Ross et al. authors' code): (ΔR/R)(1/I_th)·tan(γ_p)/(8√2)·β_s."""
    return tmr_ratio / i_th * math.tan(gamma_p) / (8.0 * math.sqrt(2.0)) * beta_s


K_SD_ROSS = k_sd(1.0, 10e-6)  # 8.84e3 V/W: ΔR/R = 1, I_th = 10 µA, γ_p = π/4, β_s = 1


def spin_diode_shape(f, f_r, alpha, sym=0.0, anti=1.0):
    """Rectified voltage per watt per unit K_SD: s·Γ²/(δ²+Γ²) + a·2Γδ/(δ²+Γ²), Γ = α·f_r,
    δ = f − f_r (broadcasting numpy arrays; f and f_r in Hz)."""
    gamma = np.asarray(alpha) * np.asarray(f_r)
    delta = np.asarray(f) - np.asarray(f_r)
    den = delta * delta + gamma * gamma
    return (sym * gamma * gamma + anti * 2.0 * gamma * delta) / den


def chain_signs(n: int, first: int = 1) -> np.ndarray:
    """(−1)^k for k = 0..n−1 (``first`` = −1 gives the (−1)^(k+1) option)."""
    return first * (1.0 - 2.0 * (np.arange(n) % 2))


def chain_voltage(powers, freqs, resonances, alpha=0.01, ksd=K_SD_ROSS, sym=0.0,
                  anti=1.0, signs=None):
    """DC output (V) of chains of series spin-diode junctions fed by several RF tones.

    ``powers`` and ``freqs`` (W, Hz) have shape (..., n_inputs): the tones on the common line;
    ``resonances`` (Hz) has shape (n_chains, n_junctions) (or (n_junctions,) for one chain).
    ``alpha``, ``ksd`` (V/W), ``sym``, ``anti`` broadcast against ``resonances``; ``signs``
    (n_junctions,) defaults to (−1)^k. Returns shape (..., n_chains) (or (...) for one chain):
    V_j = Σ_i P_i·Σ_k s_k·K_SD,jk·shape(f_i, f_r,jk) — the W·P of arXiv:2211.03659."""
    res = np.asarray(resonances, dtype=float)
    single = res.ndim == 1
    res = np.atleast_2d(res)
    if signs is None:
        signs = chain_signs(res.shape[-1])
    gamma = np.broadcast_to(np.asarray(alpha, dtype=float), res.shape) * res        # (J, K)
    weight = np.asarray(signs, dtype=float) * np.broadcast_to(np.asarray(ksd, dtype=float),
                                                              res.shape)
    a = weight * np.broadcast_to(np.asarray(anti, dtype=float), res.shape) * 2 * gamma
    s = weight * np.broadcast_to(np.asarray(sym, dtype=float), res.shape) * gamma * gamma
    d = np.asarray(freqs, dtype=float)[..., None, None, :] - res[..., None]      # (..., J, K, I)
    g = (a[..., None] * d + s[..., None]) / (d * d + (gamma * gamma)[..., None])
    out = np.einsum("...jki,...i->...j", g, np.asarray(powers, dtype=float))
    return out[..., 0] if single else out


def stno_power_fraction(current, i_th, q):
    """Normalised oscillation power p0 = (ξ − 1)/(ξ + Q), ξ = I/I_th, 0 below threshold."""
    xi = np.asarray(current, dtype=float) / i_th
    return np.where(xi > 1.0, (xi - 1.0) / (xi + q), 0.0)


def stno_output(current, i_th, q, f0, shift_hz, gain, resistance):
    """(p0, frequency in Hz, output power in W) of the auto-oscillator at DC current(s) I (A)."""
    p0 = stno_power_fraction(current, i_th, q)
    return p0, f0 + shift_hz * p0, gain * p0 * resistance * np.asarray(current, float) ** 2
