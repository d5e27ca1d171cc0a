"""RF spintronic networks trained offline on the calibrated chain model and fine-tuned in situ
(Ross et al., Nat. Nanotechnol. 18, 1273 (2023), arXiv:2211.03659; PHYSICS.md §3.2–3.4).

A layer is a set of chains of series spin-diode junctions (:class:`ChainLayer`), one junction
per input frequency f_i, alternate junctions of opposite sign s_k = (−1)^k. Chain j's DC output
is V_j = Σ_i P_i·W_ji, W_ji = Σ_k s_k·K_jk·g(f_i, r_jk), with the spin-diode shape
g = (2Γd + σΓ²)/(d² + Γ²), d = f − r, Γ = α·r (:func:`labctl.rfmodel.chain_voltage`).
The **weights are the detunings** δ_jk = r_jk − f_k of each junction from its own input
frequency; they are trained as θ = δ/(α_jk·f_k) ∈ [−1, 1] (the near-linear, monotonic part of
g, where |g| grows to its peak at |d| = Γ), so one learning rate fits every layer. α, K (V/W)
and σ of each junction are its calibration (a spin-diode fit), not the nominal values.

Hidden chain j drives a spin-torque oscillator: I = (V + V_bias)·g_m clamped to [I_th, 4·I_th],
emitted power P = A·p0·R·I², p0 = (ξ − 1)/(ξ + Q), ξ = I/I_th (the paper's code: V_bias =
11.08 mV, g_m = 3.388 µA/mV, I_th = 10 µA, Q = 2, A = 1.25 W/(A²Ω), R = 1 kΩ), at its own
frequency, which feeds the output layer; the output chains' voltages are the logits (in units
of ``v_scale``) of a softmax cross-entropy, optimised with Adam.

**In-situ fine-tuning** (the paper's "model-trainer twin fed non-ideal forward values"):
:meth:`RfNet.step` takes the hidden and output chain voltages *measured* on the hardware as the
forward values, and back-propagates through the model's Jacobians at those values, so the
device-to-device spread the model does not know (oscillator power, programming error) is
trained around.

Inputs: features scaled to u ∈ [0, 1] by the training set's range (clipped) and sent as the
powers P_max·[u, 1 − u] (a complementary pair per feature, so Σ P is constant and the chains
get the equivalent of a bias) at 2·n_features frequencies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labctl.rfmodel import chain_signs, chain_voltage
from labctl.training.optim import Adam, softmax_cross_entropy

U_FLOOR = 1e-3  # smallest encoded input (a source cannot be set to zero power: −60 dBm at 1 µW)


def shape_slope(f, r, alpha, sym):
    """∂g/∂r of g = (2Γd + σΓ²)/(d² + Γ²), d = f − r, Γ = α·r (broadcasting)."""
    gamma = alpha * r
    d = f - r
    num = 2 * gamma * d + sym * gamma * gamma
    den = d * d + gamma * gamma
    d_num = 2 * (alpha * d - gamma) + 2 * sym * gamma * alpha
    d_den = -2 * d + 2 * gamma * alpha
    return (d_num * den - num * d_den) / (den * den)


@dataclass
class ChainLayer:
    """Calibrated chains: ``f_in`` (K,) input frequencies (Hz); ``alpha``, ``ksd`` (V/W),
    ``sym`` of each junction, (J, K); ``signs`` (K,) (default (−1)^k)."""

    f_in: np.ndarray
    alpha: np.ndarray
    ksd: np.ndarray
    sym: np.ndarray
    signs: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.f_in = np.asarray(self.f_in, dtype=float)
        self.alpha, self.ksd, self.sym = (np.asarray(a, dtype=float) for a in
                                          (self.alpha, self.ksd, self.sym))
        if self.signs is None:
            self.signs = chain_signs(self.f_in.size)

    @property
    def shape(self) -> tuple[int, int]:
        return self.alpha.shape

    def detuning(self, theta: np.ndarray) -> np.ndarray:
        """δ (Hz) of the normalised weights θ: δ = θ·α·f_in."""
        return theta * self.alpha * self.f_in[None, :]

    def resonances(self, theta: np.ndarray) -> np.ndarray:
        return self.f_in[None, :] + self.detuning(theta)

    def forward(self, powers: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Chain voltages (B, J) for input powers (B, K) in W."""
        return chain_voltage(powers, self.f_in, self.resonances(theta), self.alpha, self.ksd,
                             self.sym, 1.0, self.signs)

    def backward(self, powers: np.ndarray, theta: np.ndarray, d_v: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
        """(dL/dθ (J, K), dL/dP (B, K)) from dL/dV (B, J)."""
        r = self.resonances(theta)
        weights = chain_voltage(np.eye(self.f_in.size), self.f_in, r, self.alpha, self.ksd,
                                self.sym, 1.0, self.signs)           # (K inputs, J chains)
        d_p = d_v @ weights.T
        slope = shape_slope(self.f_in[None, None, :], r[..., None], self.alpha[..., None],
                            self.sym[..., None])                    # (J, K junction, K input)
        m = d_v.T @ powers                                          # (J, K input)
        d_r = self.signs[None, :] * self.ksd * np.einsum("jki,ji->jk", slope, m)
        return d_r * self.alpha * self.f_in[None, :], d_p


@dataclass(frozen=True)
class Neuron:
    """The chain → oscillator link and the oscillator's emitted power (module docstring)."""

    v_bias: float = 11.08e-3      # V
    g_m: float = 3.388e-3         # A/V (3.388 µA/mV)
    i_th: float = 10e-6           # A
    q: float = 2.0
    gain: float = 1.25            # W/(A²·Ω)
    resistance: float = 1000.0    # Ω

    def current(self, v: np.ndarray) -> np.ndarray:
        return np.clip((v + self.v_bias) * self.g_m, self.i_th, 4 * self.i_th)

    def power(self, v: np.ndarray) -> np.ndarray:
        """Emitted power (W) at chain voltage ``v`` (V)."""
        i = self.current(v)
        xi = i / self.i_th
        return self.gain * self.resistance * i * i * (xi - 1) / (xi + self.q)

    def slope(self, v: np.ndarray) -> np.ndarray:
        """dP/dV (W/V); 0 where the current is clamped."""
        raw = (v + self.v_bias) * self.g_m
        i = self.current(v)
        xi = i / self.i_th
        p0 = (xi - 1) / (xi + self.q)
        dp0 = (1 + self.q) / (xi + self.q) ** 2 / self.i_th
        d_power = self.gain * self.resistance * (dp0 * i * i + 2 * p0 * i)
        inside = (raw > self.i_th) & (raw < 4 * self.i_th)
        return np.where(inside, d_power * self.g_m, 0.0)


@dataclass(frozen=True)
class RfConfig:
    lr: float = 0.03
    """Adam learning rate of θ (units of α·f per step)."""
    p_max: float = 1e-6
    """Input power (W) of u = 1 (the paper's unit, 1 µW = −30 dBm)."""
    v_scale: float = 1e-3
    """Logit unit (V): logits = V_out / v_scale."""
    init_spread: float = 0.3
    """Standard deviation of the initial θ."""


class RfNet:
    """The two-layer network: ``layers`` = (hidden ChainLayer, output ChainLayer)."""

    def __init__(self, hidden: ChainLayer, output: ChainLayer, neuron: Neuron,
                 config: RfConfig, x_range: tuple[np.ndarray, np.ndarray], seed: int = 0,
                 restart: int = 0):
        if output.shape[1] != hidden.shape[0]:
            raise ValueError(f"the output chains have {output.shape[1]} junctions for "
                             f"{hidden.shape[0]} hidden neurons")
        self.layers = (hidden, output)
        self.neuron, self.config = neuron, config
        self.lo, self.hi = (np.asarray(a, dtype=float) for a in x_range)
        rng = np.random.default_rng([seed, 6, restart])  # restart: another initial θ
        self.theta = [np.clip(config.init_spread * rng.standard_normal(layer.shape), -1, 1)
                      for layer in self.layers]
        self.adam = [Adam(layer.shape) for layer in self.layers]

    # ------------------------------------------------------------------ forward
    def encode(self, x: np.ndarray) -> np.ndarray:
        """Input powers (B, 2·features) in W."""
        u = np.clip((np.asarray(x, dtype=float) - self.lo) / (self.hi - self.lo), U_FLOOR,
                    1 - U_FLOOR)
        return self.config.p_max * np.concatenate([u, 1 - u], axis=1)

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The model's (hidden chain voltages, output chain voltages), V."""
        v1 = self.layers[0].forward(self.encode(x), self.theta[0])
        return v1, self.layers[1].forward(self.neuron.power(v1), self.theta[1])

    def accuracy(self, x: np.ndarray, y: np.ndarray, v_out: np.ndarray | None = None) -> float:
        """Fraction classified right by the model, or by measured output voltages ``v_out``."""
        v_out = self.forward(x)[1] if v_out is None else v_out
        return float(np.mean(v_out.argmax(axis=1) == y))

    # ------------------------------------------------------------------ one step
    def step(self, x: np.ndarray, y: np.ndarray, measured=None) -> tuple[float, int]:
        """One Adam step on θ; forward values from the model, or ``measured`` = (hidden, output
        chain voltages) from the hardware (the twin fed non-ideal forward values). Returns
        (loss, correct)."""
        powers = self.encode(x)
        v1, v2 = self.forward(x) if measured is None else measured
        hidden_power = self.neuron.power(v1)
        loss, d_logits, correct = softmax_cross_entropy(v2 / self.config.v_scale, y)
        d_v2 = d_logits / self.config.v_scale
        g2, d_hidden = self.layers[1].backward(hidden_power, self.theta[1], d_v2)
        g1, _ = self.layers[0].backward(powers, self.theta[0],
                                        d_hidden * self.neuron.slope(v1))
        for k, g in enumerate((g1, g2)):
            self.theta[k] = np.clip(self.theta[k] - self.config.lr * self.adam[k].direction(g),
                                    -1.0, 1.0)
        return loss, correct

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, np.ndarray]:
        out = {f"theta{k}": t.copy() for k, t in enumerate(self.theta)}
        for k, adam in enumerate(self.adam):
            out.update(adam.state(f"adam{k}"))
        return out

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.theta = [np.array(state[f"theta{k}"], dtype=float) for k in range(2)]
        for k, adam in enumerate(self.adam):
            adam.load_state(f"adam{k}", state)
