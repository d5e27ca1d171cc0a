"""Loss and optimizer in numpy: softmax cross-entropy and Adam (Kingma & Ba, arXiv 1412.6980)."""

from __future__ import annotations

import numpy as np


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, int]:
    """Mean cross-entropy of ``logits`` (batch, classes) against integer labels ``y``; returns
    (loss, d loss / d logits, number of correct arg-max predictions)."""
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    n = len(y)
    idx = np.arange(n)
    loss = float(-np.mean(np.log(np.maximum(p[idx, y], 1e-300))))
    grad = p
    grad[idx, y] -= 1.0
    grad /= n
    return loss, grad, int(np.count_nonzero(logits.argmax(axis=1) == y))


class Adam:
    """Adam moments of one parameter array. :meth:`direction` returns the bias-corrected
    m̂/(√v̂ + eps) after adding gradient ``g``; the caller scales it by its learning rate (and,
    for device updates, turns it into pulses)."""

    def __init__(self, shape, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m = np.zeros(shape)
        self.v = np.zeros(shape)
        self.t = 0

    def direction(self, g: np.ndarray) -> np.ndarray:
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * g
        self.v = self.beta2 * self.v + (1 - self.beta2) * g * g
        m_hat = self.m / (1 - self.beta1 ** self.t)
        v_hat = self.v / (1 - self.beta2 ** self.t)
        return m_hat / (np.sqrt(v_hat) + self.eps)

    def state(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}.m": self.m.copy(), f"{prefix}.v": self.v.copy(),
                f"{prefix}.t": np.array(self.t)}

    def load_state(self, prefix: str, state: dict[str, np.ndarray]) -> None:
        self.m = np.array(state[f"{prefix}.m"], dtype=float)
        self.v = np.array(state[f"{prefix}.v"], dtype=float)
        self.t = int(state[f"{prefix}.t"])
