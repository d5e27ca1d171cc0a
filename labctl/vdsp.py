"""Voltage-dependent synaptic plasticity (VDSP) in a one-layer spiking network with
winner-take-all, trained without labels (Garg, Balafrej, Stewart, Portal, Bocquet, Querlioz,
Drouin, Rouat, Beilliard, Alibart, arXiv 2203.11022; Front. Neurosci. 16, 983950 (2022);
PHYSICS.md §5.5). On a postsynaptic spike of output neuron j, for every input i::

    V_pre,i < 0 (i fired recently):    Δw_ij = +lr·(1 − w_ij)·(exp(−V_pre,i) − 1)
    V_pre,i > 0 (i still integrating): Δw_ij = −lr·w_ij·(exp(V_pre,i) − 1)

Inputs: LIF neurons driven by J = gain·pixel + bias, exact exponential update, threshold 1,
reset −1 (this makes the rule causal: a neuron that just fired sits below rest), floor −1,
refractory period. Outputs: adaptive LIF (n decays with τ_n and jumps by inc_n at each spike,
drive J − n, Nengo's AdaptiveLIF update n += (dt/τ_n)(inc_n·s − n) with s = spike/dt; the
adaptation learns during training and is frozen for labelling and testing, like the adaptive
thresholds of Diehl & Cook 2015) with winner-take-all: one output spikes per step, resets to −1
and clamps the others to 0 for the inhibition time while it integrates on.
Readout (labels are used only here): each output neuron takes the class it responds to most on
the training set; a test image is classified by the class whose neurons spike most.

The weights live in a :class:`Weights` store: :class:`IdealWeights` (floats in [0, 1]) or, in
:mod:`labctl.vdsp_crossbar`, the conductances of a memristor crossbar updated by pulses.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VdspConfig:
    """Network and rule parameters (defaults in the ranges of PHYSICS.md §5.5)."""

    dt: float = 5e-3            # s, simulation step (Nengo dt of the paper's code)
    t_present: float = 0.35     # s per image
    gain_in: float = 3.0        # input LIF drive per (binary) pixel
    bias_in: float = 0.8        # input LIF bias (below threshold: silent pixels rest at it)
    tau_in: float = 0.03        # s, input membrane time constant
    ref_in: float = 5e-3        # s, input refractory period
    tau_out: float = 0.06       # s, output membrane time constant
    gain_out: float = 0.004     # output drive per unit of filtered input rate × weight
    tau_syn: float = 5e-3       # s, synaptic filter
    tau_n: float = 5.0          # s, adaptation time constant (paper: 1 s)
    inc_n: float = 0.5          # adaptation increment (paper: 0.01); a spike adds inc_n/τ_n
    inhibit: float = 10e-3      # s, WTA clamp after a spike
    lr: float = 0.02            # learning rate

    @property
    def steps(self) -> int:
        return int(round(self.t_present / self.dt))


def vdsp_update(w: np.ndarray, v_pre: np.ndarray, lr: float) -> np.ndarray:
    """The VDSP weight change of one postsynaptic column ``w`` (inputs,) for presynaptic
    membrane potentials ``v_pre`` (inputs,)."""
    return np.where(v_pre < 0, lr * (1 - w) * np.expm1(-v_pre), -lr * w * np.expm1(v_pre))


def load_binary_digits(threshold: float = 8.0, seed: int = 0, test_fraction: float = 0.3):
    """scikit-learn's 8×8 digits (shipped with it: no download), binarised at ``threshold``
    (of 16), shuffled with ``seed`` and split: (x_train, y_train, x_test, y_test)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data > threshold).astype(float)
    y = digits.target.astype(int)
    order = np.random.default_rng(seed).permutation(len(y))
    x, y = x[order], y[order]
    n_test = int(round(test_fraction * len(y)))
    return x[n_test:], y[n_test:], x[:n_test], y[:n_test]


class IdealWeights:
    """Floating-point weights in [0, 1], updated exactly by the rule, starting from
    ``initial`` (inputs, outputs)."""

    def __init__(self, initial: np.ndarray):
        self.w = np.clip(np.array(initial, dtype=float), 0.0, 1.0)
        self.updates = 0

    def matrix(self) -> np.ndarray:
        return self.w

    def update_column(self, j: int, v_pre: np.ndarray, lr: float) -> None:
        self.w[:, j] = np.clip(self.w[:, j] + vdsp_update(self.w[:, j], v_pre, lr), 0.0, 1.0)
        self.updates += 1


class SpikingNetwork:
    """The one-layer WTA network of the module docstring around a weight store."""

    def __init__(self, weights, n_in: int, n_out: int, config: VdspConfig | None = None):
        self.weights, self.n_in, self.n_out = weights, n_in, n_out
        self.cfg = config or VdspConfig()
        # the state carries over from image to image, as in a continuous input stream
        self.n_adapt = np.zeros(n_out)
        self.v_in = np.zeros(n_in)
        self.refractory = np.zeros(n_in)
        self.syn = np.zeros(n_in)

    def present(self, image: np.ndarray, learn: bool) -> np.ndarray:
        """Run one image; return the spike count of each output neuron."""
        c = self.cfg
        drive = c.gain_in * image + c.bias_in
        decay_in, decay_out = math.exp(-c.dt / c.tau_in), math.exp(-c.dt / c.tau_out)
        decay_syn = math.exp(-c.dt / c.tau_syn)
        v_in, refractory, syn = self.v_in, self.refractory, self.syn
        v_out = np.zeros(self.n_out)
        clamp, others = 0, np.ones(self.n_out, dtype=bool)
        counts = np.zeros(self.n_out)
        w = self.weights.matrix()
        for _ in range(c.steps):
            active = refractory <= 0
            v_in = np.where(active, drive + (v_in - drive) * decay_in, v_in)
            refractory -= c.dt
            fired = v_in >= 1.0
            v_in = np.where(fired, -1.0, np.maximum(v_in, -1.0))
            refractory[fired] = c.ref_in
            syn = syn * decay_syn + (1 - decay_syn) * fired / c.dt
            j_out = c.gain_out * (syn @ w) - self.n_adapt
            spike = np.zeros(self.n_out)
            v_out = j_out + (v_out - j_out) * decay_out
            if clamp > 0:  # the last winner integrates from its reset, the others sit at 0
                clamp -= 1
                v_out[others] = 0.0
            winner = int(np.argmax(v_out))
            if v_out[winner] >= 1.0:
                spike[winner] = 1.0
                counts[winner] += 1
                others = np.arange(self.n_out) != winner
                v_out[others] = 0.0
                v_out[winner] = -1.0
                clamp = round(c.inhibit / c.dt)
                if learn:
                    self.weights.update_column(winner, v_in, c.lr)
                    w = self.weights.matrix()
            if learn:  # homeostasis while learning; frozen for labelling and testing
                # Nengo's AdaptiveLIF: n += (dt/τ_n)(inc_n·s − n), s = spike/dt
                self.n_adapt = self.n_adapt + c.dt / c.tau_n * (c.inc_n * spike / c.dt
                                                                - self.n_adapt)
        self.v_in, self.refractory, self.syn = v_in, refractory, syn
        return counts

    def responses(self, images: np.ndarray, learn: bool,
                  progress: Callable[[int], bool] | None = None) -> np.ndarray:
        """Spike counts (images, outputs); ``progress(k)`` returning False stops early."""
        out = np.zeros((len(images), self.n_out))
        for k, image in enumerate(images):
            out[k] = self.present(image, learn)
            if progress is not None and progress(k) is False:
                return out[:k + 1]
        return out


def assign_labels(responses: np.ndarray, labels: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """Each output neuron's class: the one with its largest mean response (−1: never fired)."""
    mean = np.stack([responses[labels == c].mean(axis=0) if np.any(labels == c)
                     else np.zeros(responses.shape[1]) for c in range(n_classes)])
    assigned = mean.argmax(axis=0)
    assigned[mean.max(axis=0) == 0] = -1
    return assigned


def predict(responses: np.ndarray, assigned: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """Class with the most spikes from its neurons (−1 if no labelled neuron fired)."""
    votes = np.stack([responses[:, assigned == c].sum(axis=1) for c in range(n_classes)],
                     axis=1)
    guess = votes.argmax(axis=1)
    guess[votes.max(axis=1) == 0] = -1
    return guess
