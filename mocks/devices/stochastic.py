"""Stochastic magnetic synapses: two-state devices that switch with a probability set by the drive.

Three models share one two-state engine (:class:`TwoStateArray`): state 0 is the reset state
(domain wall pinned / re-injected, MTJ parallel), state 1 the switched one (wall past the
pinning site, MTJ antiparallel). A drive held for a time moves each device along a two-state
Markov chain whose transition probabilities the model gives; a source level of the other kind
(a voltage into a current-driven device) is converted through the device's own resistance in
the state it is leaving (the devices are ohmic). Everything is vectorised over the devices; every
random draw comes from the bench's generator.

**Domain-wall synapse, Ellis, Welbourne et al.** (arXiv 2303.01886; Neuromorph. Comput. Eng. 3,
021001 (2023); authors' code ``mattoaellis/binary_stochastic_synapses``): a drive x passes the
wall with ``P(x) = (1 − a) + a·σ(dx·(x − x0))``, σ logistic, fitted x0 = 4.63168, dx = 2.72741,
a = 0.97813; per-device spread of x0, dx, a (normal, default std 0). The unit of x, the pulse
width, the readout and the reset are not published: here x is the pulse amplitude in units of
``drive_unit_v`` volts, the probability does not depend on the width, pulses at or below
``read_max_v`` are reads (the wall does not move), a pulse at or below −``reset_v`` re-injects
the wall (state 0, certain), and the readout is a DW-MTJ with two resistances.

**Thermally activated depinning** *(standard model; arXiv 0907.2867)*: a current I held for t
depins with ``P = 1 − exp(−t·ν0·exp(−E·(1 − I/I_dep)^n / kT))`` (barrier 0 at and above I_dep);
per-device spread of E/kT and I_dep (Im et al., PRL 102, 147204 (2009)). A current at or below
−``reset_a`` re-injects the wall.

**MTJ** *(standard model, PHYSICS §3.1)*: a thermally activated two-state chain with rates
``1/τ_P→AP = exp(−Δ(1 − I/I_c0)^β)/τ0`` and ``1/τ_AP→P = exp(−Δ(1 + I/I_c0)^β)/τ0`` (barriers
clipped at 0), held for t: the exact two-state transition probabilities, which reduce to the
Néel–Brown ``P_sw = 1 − exp(−t/τ(I))`` for a large Δ and give telegraph switching (dwell
``τ0·exp(Δ(1 ∓ I/I_c0))``) for a small Δ (superparamagnetic mode). Above I_c0 the precessional
channel of Sun (PRB 62, 570 (2000)) adds, for the thermal distribution of initial angles
(P(θ0 > θ) = exp(−Δθ²), Butler et al., IEEE Trans. Magn. 48, 4684 (2012)),
``P_prec = exp(−(π²Δ/4)·exp(−2(I/I_c0 − 1)·t/τ_D))``, combined with the thermal channel as
independent (1 − P = (1 − P_th)(1 − P_prec)). Negative currents switch AP → P the same way.
So the 50 % current is the thermal I_c0[1 − ln(t/(τ0 ln 2))/Δ] (below I_c0) for pulses longer
than τ0·ln 2, where the thermal channel alone reaches 0.5, and precessional (above I_c0,
→ I_c0(1 + (τ_D/2t)·ln(π²Δ/(4 ln 2))) as t/τ0 → 0) for shorter ones: with τ0 = 1 ns the
crossover is at 0.69 ns, shorter than the 1–10 ns of PHYSICS §3.1, because the thermal rate
reaches 1/τ0 as the barrier vanishes at I_c0.
Per-device Δ and I_c0 spread (normal, relative std); readout R_P, R_AP = R_P·(1 + TMR) with read
noise, and a read current disturbs the state through the same physics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from mocks.devices.rram import _non_negative, _positive, check_params, params_from_dict

_MAX_EXP = 700.0  # cap on exponents before exp() (probabilities saturate long before)


def logistic(z):
    """σ(z) = 1/(1 + e^−z), overflow-free."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=float)))


def arrhenius_rate(drive, critical, barrier, exponent, attempt_hz):
    """Thermal escape rate (1/s) over a barrier lowered by the drive:
    ``attempt·exp(−barrier·(1 − drive/critical)^exponent)``, the bracket clipped at 0."""
    x = np.clip(1.0 - np.asarray(drive, dtype=float) / critical, 0.0, None)
    return attempt_hz * np.exp(-np.minimum(barrier * x ** exponent, _MAX_EXP))


def escape_probability(rate, t):
    """P(at least one escape in t) = 1 − exp(−rate·t), accurate for small rate·t."""
    return -np.expm1(-np.asarray(rate, dtype=float) * t)


def neel_brown_probability(current, width, delta, ic0, tau0, beta=1.0):
    """Néel–Brown switching probability ``1 − exp(−t/τ(I))``, ``τ = τ0·exp(Δ(1 − I/I_c0)^β)``
    (bracket clipped at 0). Also thermally activated depinning with τ0 = 1/ν0, Δ = E/kT,
    I_c0 = I_dep, β = n. Vectorised over every argument."""
    return escape_probability(arrhenius_rate(current, ic0, delta, beta, 1.0 / tau0), width)


def ic50(width, delta, ic0, tau0, beta=1.0):
    """The 50 % switching current of :func:`neel_brown_probability` at pulse width ``width``:
    ``I_c0·[1 − (ln(t/(τ0·ln 2))/Δ)^(1/β)]`` (PHYSICS §3.1)."""
    return ic0 * (1.0 - (np.log(np.asarray(width) / (tau0 * math.log(2.0))) / delta)
                  ** (1.0 / beta))


def dw_sigmoid(x, x0, dx, a):
    """Ellis et al. switching probability ``(1 − a) + a·σ(dx·(x − x0))``."""
    return (1.0 - a) + a * logistic(dx * (np.asarray(x, dtype=float) - x0))


def _spread(rng, size, mean, std, low=None, high=None):
    """Per-device values ~ N(mean, std), clipped to [low, high]; always draws (same stream
    whatever the std)."""
    values = mean + std * rng.standard_normal(size)
    return np.clip(values, low, high) if low is not None or high is not None else values


@dataclass(frozen=True)
class _Params:
    """Shared construction and checking of the parameter dataclasses below."""

    _LABEL = "device"
    _RULES = ()

    def __post_init__(self):
        check_params(self, self._LABEL, self._RULES)

    @classmethod
    def from_dict(cls, d: Mapping):
        return params_from_dict(cls, d, cls._LABEL)


@dataclass(frozen=True)
class _ReadoutParams(_Params):
    """The two readout resistances and the read noise every domain-wall model shares."""

    r_reset_ohm: float = 1000.0
    """Readout resistance in the reset state (wall pinned / re-injected, state 0), Ω."""
    r_switched_ohm: float = 1500.0
    """Readout resistance in the switched state (wall past the pinning site, state 1), Ω."""
    read_noise_rel: float = 0.002
    """Relative std of the multiplicative read noise."""


_DW_RULES = (
    *((n, _positive, "> 0") for n in ("dx", "drive_unit_v", "reset_v", "r_reset_ohm",
                                      "r_switched_ohm")),
    ("a", lambda a: 0 < a <= 1, "in (0, 1]"),
    *((n, _non_negative, ">= 0") for n in ("x0_std", "dx_std", "a_std", "read_max_v",
                                           "read_noise_rel")),
)


@dataclass(frozen=True)
class DWSynapseParams(_ReadoutParams):
    """Ellis, Welbourne et al. (arXiv 2303.01886) fitted values, then the lab-facing layer
    (unit of x, read/reset thresholds, readout: not published, so parameters)."""

    x0: float = 4.63168
    """Drive at the sigmoid centre (units of x)."""
    dx: float = 2.72741
    """Sigmoid steepness (1/units of x)."""
    a: float = 0.97813
    """Amplitude: the floor 1 − a is the probability at no drive."""
    x0_std: float = 0.0
    """Device-to-device std of x0 (units of x)."""
    dx_std: float = 0.0
    """Device-to-device std of dx."""
    a_std: float = 0.0
    """Device-to-device std of a (clipped to (0, 1])."""
    drive_unit_v: float = 1.0
    """Volts per unit of x (the pulse amplitude is x·drive_unit_v)."""
    read_max_v: float = 0.5
    """Pulses with 0 < V <= read_max_v are reads: the wall does not move."""
    reset_v: float = 1.0
    """A pulse at or below −reset_v re-injects the wall (state 0)."""

    _LABEL = "dw-synapse"
    _RULES = _DW_RULES


_DEPIN_RULES = (
    *((n, _positive, "> 0") for n in ("attempt_hz", "barrier_kt", "i_dep_a", "exponent",
                                      "reset_a", "r_reset_ohm", "r_switched_ohm")),
    *((n, _non_negative, ">= 0") for n in ("barrier_std_rel", "i_dep_std_rel",
                                           "read_noise_rel")),
)


@dataclass(frozen=True)
class DepinningParams(_ReadoutParams):
    """Thermally activated depinning (PHYSICS §2.2): E/kT 20–60, n ≈ 1 (3/2 cubic)."""

    attempt_hz: float = 1e9
    """Attempt frequency ν0, Hz."""
    barrier_kt: float = 40.0
    """Pinning barrier E_pin/k_BT at zero current."""
    i_dep_a: float = 200e-6
    """Depinning current at zero temperature, A (J ≈ 4e11 A/m² in a 100 nm × 5 nm track)."""
    exponent: float = 1.0
    """Barrier exponent n."""
    barrier_std_rel: float = 0.03
    """Relative device-to-device std of E/kT."""
    i_dep_std_rel: float = 0.03
    """Relative device-to-device std of I_dep."""
    reset_a: float = 100e-6
    """A current at or below −reset_a re-injects the wall (state 0)."""

    _LABEL = "dw-depinning"
    _RULES = _DEPIN_RULES


_MTJ_RULES = (
    *((n, _positive, "> 0") for n in ("tau0_s", "delta", "ic0_a", "tau_d_s", "r_p_ohm", "tmr")),
    ("beta", lambda b: b in (1.0, 2.0), "1 or 2"),
    *((n, _non_negative, ">= 0") for n in ("delta_std_rel", "ic0_std_rel", "r_p_std_rel",
                                           "read_noise_rel")),
)


@dataclass(frozen=True)
class MTJParams(_Params):
    """MTJ switching (PHYSICS §3.1, §3.5): τ0 ≈ 1 ns, memory Δ 40–60, stochastic bits Δ 1–15,
    I_c0 50–300 µA for 40–60 nm junctions, TMR 100–200 %, τ_D = 1/(αγμ0H_eff) ≈ 1.1 ns for
    α = 0.01, μ0H_eff = 0.5 T."""

    tau0_s: float = 1e-9
    """Attempt time τ0, s."""
    delta: float = 40.0
    """Thermal stability Δ = E_b/k_BT (small: superparamagnetic)."""
    delta_std_rel: float = 0.05
    """Relative device-to-device std of Δ."""
    ic0_a: float = 100e-6
    """Critical current I_c0, A."""
    ic0_std_rel: float = 0.05
    """Relative device-to-device std of I_c0."""
    beta: float = 1.0
    """Barrier exponent β (1 classic, 2 per arXiv 1204.1190)."""
    tau_d_s: float = 1.1e-9
    """Precession time τ_D, s (precessional regime above I_c0)."""
    r_p_ohm: float = 3000.0
    """Parallel-state resistance, Ω."""
    r_p_std_rel: float = 0.02
    """Relative device-to-device std of R_P."""
    tmr: float = 1.5
    """Tunnel magnetoresistance (R_AP − R_P)/R_P."""
    read_noise_rel: float = 0.002
    """Relative std of the multiplicative read noise."""

    _LABEL = "mtj"
    _RULES = _MTJ_RULES


class TwoStateArray:
    """Base of the stochastic two-state device arrays (see the module docstring).

    Subclasses set ``DRIVE`` (``"voltage"`` or ``"current"``: what the switching law takes),
    draw their per-device parameters and the two resistances ``_r[0]``, ``_r[1]`` (flat arrays),
    and implement :meth:`transition` (probabilities 0→1 and 1→0 for a drive held for a time).

    ``index``: ``Ellipsis`` (all devices) or anything that indexes the flat device array.
    """

    DRIVE = "voltage"
    PARAMS: type = _Params

    def __init__(self, shape, params=None, rng: np.random.Generator | None = None,
                 formed: bool = True):
        self.params = params if params is not None else self.PARAMS()
        if not isinstance(self.params, self.PARAMS):
            raise TypeError(f"{type(self).__name__} params: expected {self.PARAMS.__name__}")
        self.shape = (shape,) if isinstance(shape, int | np.integer) else tuple(shape)
        if not self.shape or any(int(n) <= 0 for n in self.shape):
            raise ValueError(f"{type(self).__name__} shape: expected positive ints, "
                             f"got {shape!r}")
        self.size = math.prod(self.shape)
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.switched = np.zeros(self.size, dtype=np.int8)
        """Switch state per device (flat, C order): 0 reset, 1 switched."""
        self._draw(self.size)

    def _at(self, values: np.ndarray, index):
        """``values`` (flat, one per device) at ``index``: a tuple or Ellipsis indexes the
        shaped array, anything else the flat one (as in :class:`mocks.devices.rram.DeviceArray`)."""
        if index is Ellipsis or isinstance(index, tuple):
            return values.reshape(self.shape)[index]
        return values[index]

    def _set(self, values: np.ndarray, index, new) -> None:
        if index is Ellipsis or isinstance(index, tuple):
            values.reshape(self.shape)[index] = new
        else:
            values[index] = new

    # ------------------------------------------------------------------ subclass interface
    def _draw(self, n: int) -> None:
        raise NotImplementedError

    def transition(self, drive, width, index=Ellipsis) -> tuple[np.ndarray, np.ndarray]:
        """(P(0→1), P(1→0)) for ``drive`` (V or A, per ``DRIVE``) held ``width`` s."""
        raise NotImplementedError

    def hidden(self, index=Ellipsis) -> dict[str, np.ndarray]:
        """The device parameters drawn for the selection (what a fit should recover)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ device-array API
    # (what :class:`mocks.devices.crossbar.Crossbar` and the SMU personalities use)
    @property
    def resistance(self) -> np.ndarray:
        """Noiseless resistance in Ω of every device in its present state (array shape)."""
        return self._resistance(Ellipsis).copy()

    @property
    def state(self) -> np.ndarray:
        """Fault state codes (all NORMAL: faults are not modelled), array shape."""
        return np.zeros(self.shape, dtype=np.int8)

    def age(self, dt: float) -> None:
        """Retention: the two states are stable between pulses (nothing changes)."""

    def _resistance(self, index) -> np.ndarray:
        s = self._at(self.switched, index)
        return np.where(s == 1, self._at(self._r[1], index), self._at(self._r[0], index))

    def resistance_of(self, state: int, index=Ellipsis) -> np.ndarray:
        """Noiseless resistance in Ω the selected devices have in ``state`` (0 or 1)."""
        return self._at(self._r[int(state)], index)

    def current(self, v, index=Ellipsis) -> np.ndarray:
        """Noiseless current (A) at voltage ``v`` (V) across the selected devices."""
        return np.asarray(v, dtype=float) / self._resistance(index)

    def measure_current(self, v, index=Ellipsis) -> np.ndarray:
        """Current with multiplicative read noise N(1, read_noise_rel)."""
        i = self.current(v, index)
        return i * (1.0 + self.params.read_noise_rel * self.rng.standard_normal(np.shape(i)))

    def voltage_at_current(self, i, index=Ellipsis) -> np.ndarray:
        """Voltage (V) across the selected devices carrying ``i`` (A)."""
        return np.asarray(i, dtype=float) * self._resistance(index)

    def reset(self, index=Ellipsis) -> None:
        """Put the selected devices in state 0 (re-inject the wall / set the MTJ parallel)."""
        self._set(self.switched, index, 0)

    # ------------------------------------------------------------------ drive
    def _drives(self, level, source: str, index, limit: float | None = None,
                series_ohm: float = 0.0):
        """The drive each device sees from a source ``level`` of kind ``source`` (V or A),
        leaving state 0 and leaving state 1: a voltage (behind ``series_ohm``, e.g. a
        generator's 50 Ω) into a current-driven device gives V/(R + R_s), and the compliance
        ``limit`` of the other quantity (A for a voltage source, V for a current source)
        clamps it."""
        level = np.asarray(level, dtype=float)
        if source == self.DRIVE and limit is None and series_ohm == 0.0:
            return level, level
        out = []
        for r in self._r:
            r = self._at(r, index)
            if source == "voltage":
                i = level / (r + series_ohm)
                if limit is not None:
                    i = np.clip(i, -limit, limit)
                out.append(i if self.DRIVE == "current" else i * r)
            else:
                v = level * r
                if limit is not None:
                    v = np.clip(v, -limit, limit)
                out.append(v / r if self.DRIVE == "current" else v)
        return out[0], out[1]

    def probabilities(self, level, width, source: str, index=Ellipsis, limit=None,
                      series_ohm: float = 0.0):
        """(P(0→1), P(1→0)) of the selected devices for a source ``level`` (V or A per
        ``source``) held ``width`` s, each state's drive through its own resistance."""
        d0, d1 = self._drives(level, source, index, limit, series_ohm)
        p01 = self.transition(d0, width, index)[0]
        p10 = self.transition(d1, width, index)[1]
        return p01, p10

    def apply(self, v, dt, index=Ellipsis, source: str = "voltage") -> np.ndarray:
        """Hold a source level ``v`` (V, or A with ``source="current"``; scalar or one per
        selected device) for ``dt`` s on the selected devices; draw each device's new state.
        Returns the new states."""
        p01, p10 = self.probabilities(v, dt, source, index)
        s = self._at(self.switched, index)
        u = self.rng.random(np.shape(p01))
        new = np.where(s == 0, u < p01, u >= p10).astype(np.int8)
        self._set(self.switched, index, new)
        return new

    def run_sequence(self, levels, widths, source: str, device: int,
                     limit: float | None = None, series_ohm: float = 0.0) -> np.ndarray:
        """Apply source ``levels`` (V or A per ``source``, one after another, each held its
        ``widths`` s, clamped by the compliance ``limit``) to one ``device`` (flat number);
        return its state after each. Probabilities are computed vectorised, then the chain is
        stepped (each step depends on the last)."""
        levels = np.asarray(levels, dtype=float).reshape(-1)
        widths = np.broadcast_to(np.asarray(widths, dtype=float), levels.shape)
        p01, p10 = self.probabilities(levels, widths, source, np.full(levels.shape, device),
                                      limit, series_ohm)
        return self._step_chain(p01, p10, device)

    def run_interleaved(self, first: dict, second: dict, before: np.ndarray,
                        device: int) -> np.ndarray:
        """Two sources on one ``device`` (e.g. an SMU and a pulse generator through a bias
        tee): ``first`` and ``second`` are :meth:`run_sequence` keyword sets (``levels``,
        ``widths``, ``source``, optional ``limit``, ``series_ohm``); step k of ``second`` is
        applied just before step ``before[k]`` (non-decreasing) of ``first``. Returns the state
        after each step of ``first``."""
        before = np.asarray(before, dtype=np.int64)
        n1, n2 = np.size(first["levels"]), np.size(second["levels"])
        # positions in the merged sequence: first's step j after the second's steps before it
        pos1 = np.arange(n1) + np.searchsorted(before, np.arange(n1), side="right")
        pos2 = before + np.arange(n2)
        p01, p10 = np.empty(n1 + n2), np.empty(n1 + n2)
        for spec, pos in ((first, pos1), (second, pos2)):
            levels = np.asarray(spec["levels"], dtype=float).reshape(-1)
            widths = np.broadcast_to(np.asarray(spec["widths"], dtype=float), levels.shape)
            p01[pos], p10[pos] = self.probabilities(
                levels, widths, spec["source"], np.full(levels.shape, device),
                spec.get("limit"), spec.get("series_ohm", 0.0))
        return self._step_chain(p01, p10, device)[pos1]

    def _step_chain(self, p01: np.ndarray, p10: np.ndarray, device: int) -> np.ndarray:
        """Step ``device``'s two-state chain through the transition probabilities; the state
        after each step."""
        u = self.rng.random(p01.size)
        up = (u < p01).tolist()
        down = (u < p10).tolist()
        s = int(self.switched[device])
        out = bytearray(p01.size)
        for k in range(p01.size):
            s = (up[k] if s == 0 else not down[k]) and 1 or 0
            out[k] = s
        self.switched[device] = s
        return np.frombuffer(bytes(out), dtype=np.int8).copy()

    def switch_probability(self, level, width, source: str | None = None,
                           index=Ellipsis) -> np.ndarray:
        """P(0→1) of one pulse from the reset state (the closed form the counts follow)."""
        return self.probabilities(level, width, source or self.DRIVE, index)[0]

    def switch_counts(self, level, width, n: int, source: str | None = None,
                      index=Ellipsis) -> np.ndarray:
        """Switch counts of ``n`` independent reset → pulse → read trials per device (iid
        Bernoulli, so drawn as Binomial(n, P(0→1)) at once). ``level`` broadcasts with the
        selection (per-device drive amplitudes). The devices end in the state of their last
        trial."""
        p = self.switch_probability(level, width, source, index)
        k = self.rng.binomial(int(n), p)
        last = self.rng.random(np.shape(p)) < p
        self._set(self.switched, index, last.astype(np.int8))
        return k


def _reinjected(up, drive, threshold):
    """(P(0→1), P(1→0)) of a domain-wall device: ``up`` as given, and re-injection of the wall
    (back to state 0, certain) by a drive at or below −``threshold``."""
    down = np.where(drive <= -threshold, 1.0, 0.0)
    return up, np.broadcast_to(down, np.shape(up))


class DWSynapseArray(TwoStateArray):
    """Ellis et al. domain-wall binary stochastic synapses (see the module docstring)."""

    DRIVE = "voltage"
    PARAMS = DWSynapseParams

    def _draw(self, n):
        p = self.params
        self.x0 = _spread(self.rng, n, p.x0, p.x0_std)
        self.dx = _spread(self.rng, n, p.dx, p.dx_std, low=1e-6)
        self.a = _spread(self.rng, n, p.a, p.a_std, low=1e-6, high=1.0)
        self._r = (np.full(n, p.r_reset_ohm), np.full(n, p.r_switched_ohm))

    def hidden(self, index=Ellipsis):
        u = self.params.drive_unit_v
        return {"x0": self._at(self.x0, index) * u, "dx": self._at(self.dx, index) / u,
                "a": self._at(self.a, index)}

    def transition(self, drive, width, index=Ellipsis):
        p = self.params
        v = np.asarray(drive, dtype=float)
        drive_p = dw_sigmoid(v / p.drive_unit_v, self._at(self.x0, index),
                             self._at(self.dx, index), self._at(self.a, index))
        return _reinjected(np.where(v > p.read_max_v, drive_p, 0.0), v, p.reset_v)


class DepinningArray(TwoStateArray):
    """Thermally activated domain-wall depinning (see the module docstring)."""

    DRIVE = "current"
    PARAMS = DepinningParams

    def _draw(self, n):
        p = self.params
        self.barrier = _spread(self.rng, n, p.barrier_kt, p.barrier_std_rel * p.barrier_kt,
                               low=0.0)
        self.i_dep = _spread(self.rng, n, p.i_dep_a, p.i_dep_std_rel * p.i_dep_a, low=1e-12)
        self._r = (np.full(n, p.r_reset_ohm), np.full(n, p.r_switched_ohm))

    def hidden(self, index=Ellipsis):
        return {"barrier_kt": self._at(self.barrier, index), "i_dep": self._at(self.i_dep, index)}

    def transition(self, drive, width, index=Ellipsis):
        p = self.params
        i = np.asarray(drive, dtype=float)
        up = neel_brown_probability(i, width, self._at(self.barrier, index),
                                    self._at(self.i_dep, index), 1.0 / p.attempt_hz, p.exponent)
        return _reinjected(up, i, p.reset_a)


class MTJArray(TwoStateArray):
    """Magnetic tunnel junctions, thermal + precessional switching (see the module docstring)."""

    DRIVE = "current"
    PARAMS = MTJParams

    def _draw(self, n):
        p = self.params
        self.delta = _spread(self.rng, n, p.delta, p.delta_std_rel * p.delta, low=1e-3)
        self.ic0 = _spread(self.rng, n, p.ic0_a, p.ic0_std_rel * p.ic0_a, low=1e-12)
        r_p = _spread(self.rng, n, p.r_p_ohm, p.r_p_std_rel * p.r_p_ohm, low=1.0)
        self._r = (r_p, r_p * (1.0 + p.tmr))

    def hidden(self, index=Ellipsis):
        return {"delta": self._at(self.delta, index), "ic0": self._at(self.ic0, index)}

    def rates(self, current, index=Ellipsis) -> tuple[np.ndarray, np.ndarray]:
        """Thermal rates (1/s) P→AP and AP→P at ``current`` (A)."""
        p = self.params
        i = np.asarray(current, dtype=float)
        delta, ic0 = self._at(self.delta, index), self._at(self.ic0, index)
        return (arrhenius_rate(i, ic0, delta, p.beta, 1.0 / p.tau0_s),
                arrhenius_rate(-i, ic0, delta, p.beta, 1.0 / p.tau0_s))

    def mean_dwell(self, current, index=Ellipsis) -> tuple[np.ndarray, np.ndarray]:
        """Mean telegraph dwell times (s) in P and in AP at ``current`` (A)."""
        up, down = self.rates(current, index)
        return 1.0 / up, 1.0 / down

    def precessional(self, current, width, index=Ellipsis) -> np.ndarray:
        """Sun's precessional switching probability in the direction of ``current`` (0 below
        I_c0): exp(−(π²Δ/4)·exp(−2(|I|/I_c0 − 1)·t/τ_D))."""
        over = np.abs(np.asarray(current, dtype=float)) / self._at(self.ic0, index) - 1.0
        growth = np.minimum(2.0 * np.clip(over, 0.0, None) * width / self.params.tau_d_s,
                            _MAX_EXP)
        p = np.exp(-(math.pi ** 2 / 4.0) * self._at(self.delta, index) * np.exp(-growth))
        return np.where(over > 0, p, 0.0)

    def transition(self, drive, width, index=Ellipsis):
        i = np.asarray(drive, dtype=float)
        up, down = self.rates(i, index)
        k = up + down
        pi_ap = np.divide(up, k, out=np.zeros_like(k), where=k > 0)
        relax = escape_probability(k, width)  # 1 − e^{−kt}
        p01 = pi_ap * relax
        p10 = (1.0 - pi_ap) * relax
        prec = self.precessional(i, width, index)
        p01 = np.where(i > 0, 1.0 - (1.0 - p01) * (1.0 - prec), p01)
        p10 = np.where(i < 0, 1.0 - (1.0 - p10) * (1.0 - prec), p10)
        return p01, p10

    def telegraph(self, current, duration: float, device: int = 0) -> tuple[np.ndarray,
                                                                            np.ndarray]:
        """Event-driven telegraph trace of one device held at ``current`` (A) for ``duration``
        s: (switching times in s, state after each switch). Dwell times are exponential with
        the mean dwell of the state left."""
        t_p, t_ap = (float(x) for x in self.mean_dwell(current, device))
        times, states = [], []
        t, s = 0.0, int(self.switched[device])
        while True:
            t += self.rng.exponential(t_p if s == 0 else t_ap)
            if t > duration:
                break
            s = 1 - s
            times.append(t)
            states.append(s)
        self.switched[device] = s
        return np.array(times), np.array(states, dtype=np.int8)
