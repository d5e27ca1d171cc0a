"""RF spintronic devices: spin-diode MTJs, chains of them, and a spin-torque nano-oscillator.

Sources:

- Spin diode *(standard model)*: Tulapurkar et al., Nature 438, 339 (2005); Sankey et al., PRL
  96, 227601 (2006). The rectified DC voltage of a junction driven at frequency f with RF power P
  is a symmetric plus an antisymmetric Lorentzian around its resonance f_r, half-width
  Γ = α·f_r, proportional to P::

      V_dc = P·K_SD·[s·Γ²/(δ² + Γ²) + a·2Γδ/(δ² + Γ²)],   δ = f − f_r

  With s = 0, a = 1 this is exactly the form of Ross et al., "Multilayer spintronic neural
  networks with radiofrequency connections", Nat. Nanotechnol. 18, 1273 (2023),
  arXiv:2211.03659, authors' code: G = K_SD·2αf_r(f − f_r)/((αf_r)² + (f − f_r)²),
  K_SD = (ΔR/R)(1/I_th)·tan(γ_p)/(8√2)·β_s with their values ΔR/R = 1, I_th = 10 µA,
  γ_p = π/4, β_s = 1, α = 0.01, R = 1 kΩ (K_SD = 8.84 mV/µW: |G| peaks at |δ| = Γ with value
  K_SD). s (damping-like torque) and a (field-like torque, Oersted field) are per-junction
  weights; the symmetric part is an extension of the authors' antisymmetric-only form.
- Resonance tuning *(standard model)*: vortex gyrotropic mode, f_r = f_r0·(1 + H/H_s)
  (de Loubens et al., PRL 102, 177602 (2009): linear in the perpendicular field up to the
  saturation field H_s) and a linear shift with the junction's DC bias current,
  f_r = f_r0·(1 + κ_I·I) (Oersted field and spin torque, Dussaux et al., Nat. Commun. 1, 8
  (2010)). κ_I and H_s for the junctions of arXiv:2211.03659 are not published in the sources
  available: they are parameters.
- Chains (arXiv:2211.03659, authors' code): junctions in series head to tail alternate sign,
  V_j = Σ_i P_i·W_ji, W_ji = Σ_k (−1)^k G(f_i, f_r,jk)  (:func:`chain_voltage`). The chain's DC
  output drives an oscillator through I = (V + V_bias)·g_m, V_bias = 11.08 mV, g_m = 3.388 µA/mV,
  clamped to [I_th, 4·I_th] (authors' code).
- Spin-torque nano-oscillator: the universal auto-oscillator model (Slavin & Tiberkevich, IEEE
  Trans. Magn. 45, 1875 (2009)): normalised power p0 = (ξ − 1)/(ξ + Q) above threshold
  (ξ = I/I_th), else 0; frequency f = f0 + (N/2π)·p0; generation linewidth (FWHM)
  Δf = Δf_1·(1 + ν²)/p0 (Kim, Tiberkevich & Slavin, PRL 100, 017207 (2008): Δf ∝ k_BT/E(p0),
  E ∝ p0; Δf_1 is the linewidth at p0 = 1 without the nonlinear factor). Output power
  P = A·p0·R·I² (Ross et al. authors' code: A = 1.25×10⁻⁶ with I in µA and P in µW, i.e.
  1.25 W/(A²·Ω) in SI, Q = 2, I_th = 10 µA, R = 1 kΩ; 40 µA gives 1.0 µW).

Units are SI: Hz, W, A, V, Ω; fields in mT. Every random draw (hidden per-device parameters,
read noise) comes from the generator the bench hands over.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.special import voigt_profile

from labctl.rfmodel import (  # noqa: F401  (re-exported: the devices' closed forms)
    K_SD_ROSS,
    chain_signs,
    chain_voltage,
    k_sd,
    spin_diode_shape,
    stno_output,
    stno_power_fraction,
)
from mocks.devices.rram import _non_negative, _positive, check_params, params_from_dict

CHAIN_OUTPUT = -1   # device index of a chain's DC output terminal
STNO_BIAS = -2      # device index of the oscillator's DC bias line
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def analyzer_trace(freqs, rbw, lines):
    """Power (W) a swept analyzer with a Gaussian RBW filter (3 dB width ``rbw``, Hz) displays
    at ``freqs`` for Lorentzian ``lines`` [(centre Hz, FWHM Hz, total power W), ...]: each line
    convolved with the filter (a Voigt profile) times the filter's noise bandwidth, so a CW tone
    reads its own power at its centre."""
    sigma = rbw / FWHM_PER_SIGMA
    enbw = sigma * math.sqrt(2.0 * math.pi)
    out = np.zeros(np.shape(freqs))
    for centre, fwhm, power in lines:
        if power > 0:
            out += power * enbw * voigt_profile(np.asarray(freqs) - centre, sigma, fwhm / 2.0)
    return out


@dataclass(frozen=True)
class RfCircuitParams:
    """Named parameters of :class:`RfCircuit`; defaults from arXiv:2211.03659 where published."""

    # junctions (spin diodes)
    f_r_min_hz: float = 40e6            # resonances on a geometric grid f_min·r^k (Leroux 2021)
    f_r_max_hz: float = 120e6
    f_r_spread_rel: float = 0.003       # hidden device-to-device spread of f_r0 (normal, rel.)
    alpha: float = 0.01                 # Ross et al.
    alpha_spread_rel: float = 0.05
    tmr_ratio: float = 1.0              # ΔR/R, Ross et al.
    i_th_a: float = 10e-6               # Ross et al. (sets K_SD)
    gamma_p_deg: float = 45.0           # polarizer angle, Ross et al.
    beta_s: float = 1.0
    ksd_spread_rel: float = 0.05
    sym_ratio: float = 0.2              # s/a, symmetric (damping-like) weight
    sym_spread: float = 0.05            # hidden spread of s/a (normal, absolute)
    resistance_ohm: float = 1000.0      # Ross et al.
    resistance_spread_rel: float = 0.02
    tune_per_a: float = 1000.0          # κ_I: relative f_r shift per A of bias (1 %/10 µA)
    tune_spread_rel: float = 0.1
    field_saturation_mt: float = 500.0  # H_s of f_r0·(1 + H/H_s)
    noise_v_rms: float = 2e-6           # white voltage noise of a DC reading (V)
    first_sign: int = 1                 # (−1)^k, or −1 for (−1)^(k+1)
    chain_loss_db: float = 0.0          # combiner + bias-tee insertion loss to the chain (dB)
    # oscillator (spin-torque nano-oscillator)
    stno: bool = False
    stno_driven_by_chain: bool = False  # else biased by its own DC line (STNO_BIAS)
    stno_f0_hz: float = 250e6
    stno_shift_hz: float = 40e6         # N/2π
    stno_i_th_a: float = 10e-6          # Ross et al.
    stno_i_th_spread_rel: float = 0.05
    stno_q: float = 2.0                 # Ross et al.
    stno_q_spread: float = 0.1
    stno_resistance_ohm: float = 1000.0
    stno_gain: float = 1.25             # A of P = A·p·R·I² in W/(A²·Ω) (Ross: 1.25e-6 µW/µA²Ω)
    stno_linewidth_hz: float = 40e3     # Δf_1
    stno_nu: float = 2.0                # nonlinear amplification factor ν
    v_bias_mv: float = 11.08            # chain → oscillator (Ross et al.)
    g_m_ua_per_mv: float = 3.388

    def __post_init__(self) -> None:
        check_params(self, "RF circuit", _RULES)

    @classmethod
    def from_dict(cls, d: Mapping) -> RfCircuitParams:
        return params_from_dict(cls, d, "RF circuit")


_RULES = (
    *((name, _positive, "> 0") for name in (
        "f_r_min_hz", "f_r_max_hz", "alpha", "tmr_ratio", "i_th_a", "beta_s", "resistance_ohm",
        "field_saturation_mt", "stno_f0_hz", "stno_i_th_a", "stno_q", "stno_resistance_ohm",
        "stno_gain", "stno_linewidth_hz", "g_m_ua_per_mv")),
    *((name, _non_negative, ">= 0") for name in (
        "f_r_spread_rel", "alpha_spread_rel", "ksd_spread_rel", "sym_spread",
        "resistance_spread_rel", "tune_spread_rel", "noise_v_rms", "chain_loss_db",
        "stno_i_th_spread_rel", "stno_q_spread", "stno_nu")),
    ("gamma_p_deg", lambda x: 0 < x < 90, "between 0 and 90"),
    ("first_sign", lambda x: x in (1, -1), "+1 or -1"),
)


class RfCircuit:
    """RF sources → combiner → bias tee → a chain of spin-diode junctions (→ an oscillator).

    ``shape`` is the number of junctions (0 for an oscillator alone). Terminals (the device
    index an instrument is wired with): ``k >= 0`` junction k's own DC bias line (its bias tee:
    bias current in, I·R + its rectified voltage out); :data:`CHAIN_OUTPUT` the chain's DC output
    (Σ_k s_k·V_k); :data:`STNO_BIAS` the oscillator's bias line. RF sources register their tones
    with :meth:`set_rf`; SMUs report their operating point with :meth:`set_operating_point`; a
    field coil sets :attr:`field_mt`; an analyzer reads :meth:`emission_lines`.

    Hidden per-device parameters (drawn once from ``rng``): ``f_r0``, ``alpha``, ``ksd``,
    ``sym``, ``resistance``, ``tune_per_a`` per junction; ``stno_i_th``, ``stno_q``.
    """

    def __init__(self, shape, params: RfCircuitParams | None = None,
                 rng: np.random.Generator | None = None, formed: bool = True):
        p = params or RfCircuitParams()
        n = int(np.prod(shape)) if not isinstance(shape, int) else shape
        if n < 0 or (n == 0 and not p.stno):
            raise ValueError(f"an RF circuit needs junctions or an oscillator, got shape {shape}")
        self.params, self.n = p, n
        self.rng = rng if rng is not None else np.random.default_rng(0)
        g = self.rng
        grid = (np.geomspace(p.f_r_min_hz, p.f_r_max_hz, n) if n > 1
                else np.full(n, p.f_r_min_hz))
        self.f_r0 = grid * (1 + p.f_r_spread_rel * g.standard_normal(n))
        self.alpha = p.alpha * (1 + p.alpha_spread_rel * g.standard_normal(n))
        base = k_sd(p.tmr_ratio, p.i_th_a, math.radians(p.gamma_p_deg), p.beta_s)
        self.ksd = base * (1 + p.ksd_spread_rel * g.standard_normal(n))
        self.sym = p.sym_ratio + p.sym_spread * g.standard_normal(n)
        self.resistance = p.resistance_ohm * (1 + p.resistance_spread_rel * g.standard_normal(n))
        self.tune_per_a = p.tune_per_a * (1 + p.tune_spread_rel * g.standard_normal(n))
        self.signs = chain_signs(n, p.first_sign)
        self.stno_i_th = p.stno_i_th_a * (1 + p.stno_i_th_spread_rel * g.standard_normal())
        self.stno_q = p.stno_q + p.stno_q_spread * g.standard_normal()
        self.bias = np.zeros(n)          # junction bias currents (A)
        self.stno_current = 0.0          # oscillator bias when driven by its own line (A)
        self.field_mt = 0.0
        self.tones: dict[int, tuple[float, float]] = {}  # source index -> (Hz, W at the chain)
        self._last_iv: dict[int, tuple[float, float]] = {}  # terminal -> (V, I) last evaluated

    # -- wiring -----------------------------------------------------------------------------
    def set_rf(self, index: int, frequency: float, power_w: float, on: bool) -> None:
        """RF source ``index`` puts ``power_w`` (W, at its output) at ``frequency`` (Hz)."""
        if on and power_w > 0:
            loss = 10 ** (-self.params.chain_loss_db / 10)
            self.tones[index] = (float(frequency), float(power_w) * loss)
        else:
            self.tones.pop(index, None)

    def set_operating_point(self, v: float, i: float, index: int) -> None:
        """An SMU on terminal ``index`` now holds current ``i`` (A) through it."""
        if index >= 0:
            self.bias[index] = i
        elif index == STNO_BIAS:
            self.stno_current = i

    # -- physics ----------------------------------------------------------------------------
    def resonances(self, bias=None, field_mt=None) -> np.ndarray:
        """Junction resonance frequencies (Hz) at bias currents (A) and field (mT)."""
        bias = self.bias if bias is None else np.asarray(bias, dtype=float)
        h = self.field_mt if field_mt is None else field_mt
        return self.f_r0 * (1 + h / self.params.field_saturation_mt) * (1 + self.tune_per_a * bias)

    def rectified(self, bias=None) -> np.ndarray:
        """Each junction's rectified DC voltage (V) for the tones present."""
        if not self.tones or self.n == 0:
            return np.zeros(self.n)
        f, p = (np.array(x) for x in zip(*self.tones.values(), strict=True))
        shape = spin_diode_shape(f[None, :], self.resonances(bias)[:, None],
                                 self.alpha[:, None], self.sym[:, None], 1.0)
        return self.ksd * (shape * p[None, :]).sum(axis=1)

    def chain_output(self) -> float:
        """The chain's DC output voltage (V): Σ_k s_k·V_k."""
        return float(self.signs @ self.rectified()) if self.n else 0.0

    def oscillator_current(self) -> float:
        """DC current (A) through the oscillator: its own line, or the chain's output through
        I = (V + V_bias)·g_m clamped to [I_th, 4·I_th] (V in mV, g_m in µA/mV)."""
        p = self.params
        if not p.stno_driven_by_chain:
            return self.stno_current
        i = (self.chain_output() * 1e3 + p.v_bias_mv) * p.g_m_ua_per_mv * 1e-6
        return float(np.clip(i, self.stno_i_th, 4 * self.stno_i_th))

    def emission_lines(self) -> list[tuple[float, float, float]]:
        """The oscillator's emission [(centre Hz, FWHM Hz, power W)] (empty below threshold)."""
        p = self.params
        if not p.stno:
            return []
        i = abs(self.oscillator_current())
        p0, f, power = stno_output(i, self.stno_i_th, self.stno_q, p.stno_f0_hz,
                                   p.stno_shift_hz, p.stno_gain, p.stno_resistance_ohm)
        if p0 <= 0:
            return []
        return [(float(f), p.stno_linewidth_hz * (1 + p.stno_nu ** 2) / float(p0), float(power))]

    # -- two-terminal view for an SMU ---------------------------------------------------------
    def _terminal(self, index: int) -> tuple[float, float]:
        """(series resistance Ω, open-circuit DC voltage V) of terminal ``index``."""
        if index == CHAIN_OUTPUT:
            return float(self.resistance.sum()) if self.n else 0.0, self.chain_output()
        if index == STNO_BIAS:
            return self.params.stno_resistance_ohm, 0.0
        if not 0 <= index < self.n:
            raise IndexError(f"no terminal {index} on an RF circuit of {self.n} junctions")
        return float(self.resistance[index]), 0.0

    def _junction_rectified(self, index: int, i: float) -> float:
        if index < 0:
            return 0.0
        bias = self.bias.copy()
        bias[index] = i
        return float(self.rectified(bias)[index])

    def voltage_at_current(self, i, index: int = 0):
        """Voltage (V) across terminal ``index`` carrying ``i`` (A), with read noise."""
        i = float(np.asarray(i, dtype=float).reshape(-1)[0])
        r, v0 = self._terminal(index)
        noise = self.params.noise_v_rms * self.rng.standard_normal()
        v = i * r + v0 + self._junction_rectified(index, i) + noise
        self._last_iv[index] = (v, i)
        return v

    def current(self, v, index: int = 0):
        """Current (A) through terminal ``index`` at voltage ``v`` (rectified part at the bias
        held, noiseless)."""
        v = float(np.asarray(v, dtype=float).reshape(-1)[0])
        r, v0 = self._terminal(index)
        held = self.bias[index] if index >= 0 else 0.0
        v_rect = v0 + self._junction_rectified(index, held)
        return (v - v_rect) / r if r > 0 else math.copysign(math.inf, v - v_rect)

    def measure_current(self, v, index: int = 0):
        """The current at ``v``: exactly the one that gave ``v`` in the last
        :meth:`voltage_at_current` (whose voltage already carries the read noise), else
        :meth:`current`."""
        v = float(np.asarray(v, dtype=float).reshape(-1)[0])
        last = self._last_iv.get(index)
        return last[1] if last is not None and last[0] == v else self.current(v, index)

    def apply(self, v, dt, index: int = 0) -> None:
        """Holding a bias changes nothing lasting in these devices."""
