"""Binarized networks trained in situ: Majumdar's Adam-to-pulses rule, Laborieux's metaplasticity.

The network (PHYSICS.md §5.2, §5.3): layers of binary weights W_b ∈ {−1, +1} (held by a
:class:`~labctl.training.layers.HardwareLayer`), each followed by a per-output affine map (scale
γ, bias β: the trainable part of a BatchNorm, trained in software with plain Adam); hidden layers
binarize their output with sign(·), the last gives the logits of a softmax cross-entropy. The
pre-activation of layer ℓ is s = a·W_b/√n_in. Backward: straight-through estimator, d sign(y)/dy
= 1 where |y| ≤ 1 (hardtanh), 0 elsewhere; dL/dW_b is the gradient of the hidden weight.

**Update (Majumdar et al., arXiv 2107.06064, authors' code)**: Adam moments of dL/dW_b give
u = −lr·m̂/(√v̂ + eps) with lr in *pulses* (the paper: 100), so u is a number of weak-RESET pulses;
on the hardware n = round(clip(u, −14, 14)) pulses on BL (n > 0) or BLb (n < 0); no separate
hidden weight is stored — the resistances are the hidden weight. ``lr`` decays by ``lr_gamma``
every ``lr_step`` epochs (StepLR; the paper: 7, 0.5).

**Metaplasticity (Laborieux et al., Nat. Commun. 12, 2549 (2021), arXiv 2003.03533)**: an update
toward a sign flip (sign(W_h)·u < 0) is scaled by f_meta = 1 − tanh²(m·|W_h|); others pass
unchanged; m = 0 is the plain BNN. On the hardware, W_h is the measured ln R_BL − ln R_BLb (the
quantity whose sign is the weight and which the pulses move, ≈ 7e-4 per pulse before the knee),
so ``meta`` m is in 1/(ln R): with m = 5 an update toward a flip is halved at |W_h| ≈ 0.18
(a resistance ratio of 1.2) and cut to 4 % at |W_h| ≈ 0.4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labctl.training.layers import HardwareLayer
from labctl.training.optim import Adam, softmax_cross_entropy


@dataclass(frozen=True)
class BnnConfig:
    """Hyper-parameters of the binarized network's training."""

    lr: float = 20.0
    """Learning rate of the binary weights, pulses per unit of Adam's m̂/(√v̂ + eps)."""
    lr_affine: float = 8e-3
    """Adam learning rate of the scales and biases (software)."""
    lr_step: int = 0
    """Epochs between learning-rate decays (0: none)."""
    lr_gamma: float = 0.5
    """Factor of each decay."""
    meta: float = 0.0
    """Metaplasticity m, 1/(unit of the hidden weight); 0 = plain BNN."""
    max_pulses: int = 14
    """Largest |update| in pulses."""


class BinaryNet:
    """A binarized multilayer network on hardware layers (module docstring)."""

    def __init__(self, layers: list[HardwareLayer], config: BnnConfig | None = None):
        self.layers = list(layers)
        self.config = config or BnnConfig()
        self.gamma = [np.ones(layer.n_out) for layer in self.layers]
        self.beta = [np.zeros(layer.n_out) for layer in self.layers]
        self.adam_w = [Adam((layer.n_in, layer.n_out)) for layer in self.layers]
        self.adam_g = [Adam(layer.n_out) for layer in self.layers]
        self.adam_b = [Adam(layer.n_out) for layer in self.layers]

    # ------------------------------------------------------------------ forward
    def _forward(self, x: np.ndarray, weights: list[np.ndarray]):
        acts, pres = [np.asarray(x, dtype=float)], []
        for k, w in enumerate(weights):
            s = acts[-1] @ w / np.sqrt(w.shape[0])
            y = self.gamma[k] * s + self.beta[k]
            pres.append((s, y))
            if k < len(weights) - 1:
                acts.append(np.where(y >= 0, 1.0, -1.0))
        return acts, pres

    def logits(self, x: np.ndarray, weights: list[np.ndarray] | None = None) -> np.ndarray:
        """Logits of ``x`` with the weights as measured (or ``weights``)."""
        weights = [layer.weights() for layer in self.layers] if weights is None else weights
        return self._forward(x, weights)[1][-1][1]

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        """Fraction of ``x`` classified as ``y`` (one measurement of the weights)."""
        return float(np.mean(self.logits(x).argmax(axis=1) == y))

    # ------------------------------------------------------------------ one step
    def step(self, x: np.ndarray, y: np.ndarray, lr_scale: float = 1.0
             ) -> tuple[float, int, list[np.ndarray]]:
        """Forward (measured weights), backward, Adam: updates the affine parameters in place
        and returns (loss, correct, the weight updates in pulses per layer, not yet applied)."""
        cfg = self.config
        weights = [layer.weights() for layer in self.layers]
        acts, pres = self._forward(x, weights)
        loss, dy, correct = softmax_cross_entropy(pres[-1][1], y)
        updates: list[np.ndarray] = [np.empty(0)] * len(self.layers)
        for k in range(len(self.layers) - 1, -1, -1):
            s, _ = pres[k]
            n_in = weights[k].shape[0]
            d_gamma, d_beta = (dy * s).sum(axis=0), dy.sum(axis=0)
            ds = dy * self.gamma[k]
            grad_w = acts[k].T @ ds / np.sqrt(n_in)
            if k > 0:
                da = ds @ weights[k].T / np.sqrt(n_in)
                dy = da * (np.abs(pres[k - 1][1]) <= 1.0)
            self.gamma[k] -= cfg.lr_affine * self.adam_g[k].direction(d_gamma)
            self.beta[k] -= cfg.lr_affine * self.adam_b[k].direction(d_beta)
            u = -cfg.lr * lr_scale * self.adam_w[k].direction(grad_w)
            if cfg.meta > 0:
                wh = self.layers[k].hidden()
                toward_flip = np.sign(wh) * u < 0
                u = np.where(toward_flip, u * (1 - np.tanh(cfg.meta * np.abs(wh)) ** 2), u)
            updates[k] = np.clip(u, -cfg.max_pulses, cfg.max_pulses)
        return loss, correct, updates

    def lr_scale(self, epoch: int) -> float:
        cfg = self.config
        return cfg.lr_gamma ** (epoch // cfg.lr_step) if cfg.lr_step > 0 else 1.0

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, np.ndarray]:
        """The software state (affine parameters, Adam moments) as named arrays."""
        out: dict[str, np.ndarray] = {}
        for k in range(len(self.layers)):
            out[f"gamma{k}"], out[f"beta{k}"] = self.gamma[k].copy(), self.beta[k].copy()
            for name, adam in (("w", self.adam_w), ("g", self.adam_g), ("b", self.adam_b)):
                out.update(adam[k].state(f"adam_{name}{k}"))
        return out

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        for k in range(len(self.layers)):
            self.gamma[k] = np.array(state[f"gamma{k}"], dtype=float)
            self.beta[k] = np.array(state[f"beta{k}"], dtype=float)
            for name, adam in (("w", self.adam_w), ("g", self.adam_g), ("b", self.adam_b)):
                adam[k].load_state(f"adam_{name}{k}", state)
