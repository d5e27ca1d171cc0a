"""Simulated NbOx threshold-switching neurons: each an NbOx device in a Pearson–Anson circuit.

Source of the behaviours: Drouhin, Li, Grollier et al., "Characterization and modeling of
spiking and bursting in experimental NbOx neuron", arXiv 2209.00413 (Neuromorph. Comput. Eng.
2, 044008 (2022)): one NbOx device in a relaxation circuit shows tonic spiking, stochastic
spiking, leaky integrate-and-fire, spike latency, temporal integration and phasic bursting. The
paper's circuit values and fits are not published in the sources available (PHYSICS.md §4), so
the device follows the standard electrothermal threshold-switch model *(standard model)*:
M. D. Pickett and R. S. Williams, Nanotechnology 23, 215202 (2012); S. Kumar, J. P. Strachan and
R. S. Williams, Nature 548, 318 (2017); C. Funck et al., RSC Adv. (2015) (Poole–Frenkel-like
thermally activated conduction with Joule heating, no metal–insulator transition needed)::

    circuit   C·dV/dt    = (V_in − V)/(R_s + R_src) − V/R_d(T)            (node V: device ∥ C)
    device    R_d(T)     = R_c + R_0·exp(E_a/k_B·T),   R_0 set by R_d(T_room) = r_off_ohm
    heat      C_th·dT/dt = V²/R_d(T) − (T − T_a)/R_th                    (τ_th = R_th·C_th, ns)
    substrate C_s·dT_a/dt = (T − T_a)/R_th − (T_a − T_room)/R_sub        (τ_sub = R_sub·C_s, ms)

R_c is the electrode/contact resistance in series with the thermally activated film (it sets the
hold voltage and limits the ON current). Thermal runaway makes the quasi-static I–V S-shaped
with negative differential resistance: the OFF branch ends at the threshold (V_th, I_th) and the
ON branch at the hold point (V_hold, I_hold). With the input inside the oscillation window the
node charges through R_s to V_th, the device fires, discharges C down to V_hold and turns off:
a relaxation oscillator (period → R_s·C·ln((V_in − V_hold)/(V_in − V_th)) when R_on ≪ R_s ≪ R_off).

The slow variable for phasic bursting *(standard model, my choice; PHYSICS.md §4 lists it)*:
the film's heat flows into a substrate/electrode node T_a with a ms time constant. Under a
sustained strong input the average spiking power heats T_a, which lowers R_d and drifts the
operating point out of the oscillation window: a burst, then silence for as long as the input
lasts; under a moderate input the drift is too small and spiking is tonic. At DC (the SMU
sweep) the substrate is in steady state, so the static S-curve uses R_th + R_sub.

Noise for stochastic spiking *(standard model)*: the activation energy fluctuates,
E_a(t) = E_a,dev·(1 + σ·η(t)) with η a unit Ornstein–Uhlenbeck process of correlation time
τ_n (trap-level fluctuation), updated exactly for any step; near threshold it makes the firing
times random (noise-driven escape), far above threshold it barely perturbs the tonic period.
Device-to-device spread: E_a,dev = E_a·(1 + σ_d2d·ξ). Every draw comes from the bench's seeded
generator.

Integration (stiff: τ_th ~ ns, circuit µs, substrate ms), one adaptive step shared by all neurons:
V exactly exponential with the conductances frozen over the step; T by the exponential
(linearised, ETD1) step, which on a stable branch lands on the quasi-static root however long
the step, and during runaway (positive growth rate λ) is limited to λ·dt ≤ 0.5; T_a exponential;
η exact OU. Step limited by |ΔV| ≤ ``dv_max_v`` per step, the input edges, ``dt_max_s`` and τ_n.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from mocks.devices.rram import _non_negative, _positive, check_params, params_from_dict

K_B_EV = 8.617333262e-5  # Boltzmann constant, eV/K
NEWTON_ITERATIONS = 2  # per step, on the film's backward-Euler heat balance

Source = Callable[[float, float], tuple[np.ndarray, np.ndarray, float]]
"""What drives the circuit: ``source(t0, t1) -> (edges, levels, r_source_ohm)`` gives the input
EMF as piecewise-constant levels (V), ``levels[k]`` from ``edges[k]`` to ``edges[k + 1]`` (the
last to t1), with ``edges[0] = t0``, in absolute virtual time (s), and the source's output
resistance (Ω, ``math.inf``: open output)."""


@dataclass(frozen=True)
class NbOxParams:
    """Named physical parameters of :class:`NbOxNeurons` (PHYSICS.md §4 ranges, standard model).

    Defaults are typical values inside the published ranges (not fitted to a paper): they give
    V_th ≈ 1.05 V, V_hold ≈ 0.67 V on the fast (substrate-cold) S-curve (0.85 V and 0.55 V at
    DC, substrate heated), µs spikes, tonic spiking for steps of about 1.8 to 2.5 V through
    R_s = 10 kΩ onto C = 10 nF, and a burst then silence (phasic) from about 3 V.
    """

    r_off_ohm: float = 50e3
    """Device resistance at room temperature and low bias, Ω (10–100 kΩ)."""
    activation_energy_ev: float = 0.25
    """Activation energy E_a of the conduction, eV (0.1–0.3)."""
    r_contact_ohm: float = 500.0
    """Electrode/contact resistance in series with the film, Ω."""
    r_th_k_per_w: float = 6e5
    """Thermal resistance film → substrate node, K/W (1e5–1e6)."""
    c_th_j_per_k: float = 1e-14
    """Heat capacity of the switching volume, J/K (1e-16–1e-14; τ_th = 6 ns)."""
    t_room_k: float = 300.0
    """Ambient (heat-sink) temperature, K."""
    r_sub_k_per_w: float = 3e5
    """Thermal resistance substrate node → heat sink, K/W (0: no slow variable)."""
    tau_sub_s: float = 1e-3
    """Substrate thermal time constant R_sub·C_sub, s (the slow variable)."""
    r_series_ohm: float = 10e3
    """Series resistor R_s of the Pearson–Anson circuit, Ω (1–50 kΩ)."""
    c_parallel_f: float = 10e-9
    """Capacitor C in parallel with the device, F (0.1–100 nF)."""
    noise_rel: float = 0.0
    """Relative amplitude σ of the E_a fluctuation (0: deterministic)."""
    noise_tau_s: float = 10e-6
    """Correlation time τ_n of the E_a fluctuation, s."""
    ea_d2d_rel: float = 0.0
    """Device-to-device relative spread of E_a (normal)."""
    dv_max_v: float = 5e-3
    """Largest node-voltage change per integration step, V (accuracy)."""
    dt_max_s: float = 50e-6
    """Longest integration step, s."""

    def __post_init__(self) -> None:
        check_params(self, "NbOx", _RULES)

    @classmethod
    def from_dict(cls, d: Mapping) -> NbOxParams:
        """Build from a mapping (bench file ``params``); an unknown or bad key raises
        ``ValueError`` naming it."""
        return params_from_dict(cls, d, "NbOx")


_POSITIVE = ("r_off_ohm", "activation_energy_ev", "r_th_k_per_w", "c_th_j_per_k", "t_room_k",
             "tau_sub_s", "r_series_ohm", "c_parallel_f", "noise_tau_s", "dv_max_v", "dt_max_s")
_RULES = (
    *((name, _positive, "> 0") for name in _POSITIVE),
    *((name, _non_negative, ">= 0") for name in ("r_contact_ohm", "r_sub_k_per_w",
                                                 "noise_rel", "ea_d2d_rel")),
)


class NbOxNeurons:
    """An array of NbOx neurons (device + R_s + C each), sharing one parameter set and one input.

    ``shape``: int or tuple. ``rng``: the generator every draw comes from. ``formed`` is accepted
    for the bench interface (threshold switches need no forming) and must be a bool.

    Two faces: the circuit (``set_source``, ``record``, ``advance_to``) used by the AWG and the
    oscilloscope, and the two-terminal device (``current``, ``voltage_at_current``, ``apply``,
    ``measure_current``) used by an SMU wired across the device alone.
    """

    def __init__(self, shape: int | tuple[int, ...], params: NbOxParams | None = None,
                 rng: np.random.Generator | None = None, formed: bool = False) -> None:
        if not isinstance(formed, (bool, np.bool_)):
            raise TypeError(f"NbOxNeurons formed: expected a bool, got {formed!r}")
        self.shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        if not self.shape or any(int(s) < 1 for s in self.shape):
            raise ValueError(f"NbOxNeurons shape must be positive ints, got {shape!r}")
        self.size = int(np.prod(self.shape))
        self.params = p = NbOxParams() if params is None else params
        if not isinstance(p, NbOxParams):
            raise TypeError(f"NbOxNeurons params: expected NbOxParams, got {type(p).__name__}")
        self.rng = rng if rng is not None else np.random.default_rng(0)
        n = self.size
        self.ea = p.activation_energy_ev * (1 + p.ea_d2d_rel * self.rng.standard_normal(n))
        film_off = p.r_off_ohm - p.r_contact_ohm
        if film_off <= 0:
            raise ValueError("NbOx parameter 'r_off_ohm': must exceed r_contact_ohm")
        # R_0 per device so that every device has R_d(T_room) = r_off_ohm at its own E_a
        self.r0 = film_off * np.exp(-self.ea / (K_B_EV * p.t_room_k))
        self.c_sub = p.tau_sub_s / p.r_sub_k_per_w if p.r_sub_k_per_w > 0 else math.inf
        self.v = np.zeros(n)
        self.t = np.full(n, p.t_room_k)
        self.t_sub = np.full(n, p.t_room_k)
        self.eta = self.rng.standard_normal(n)  # stationary start of the OU process
        self.time = 0.0  # absolute virtual time of the state, s
        self.source: Source | None = None
        # the generator's sync output as wired to the scope's external trigger input:
        # sync(t) -> first sync edge at or after t (s), or None (set by the generator's mock)
        self.sync: Callable[[float], float | None] | None = None
        self.steps = 0  # integration steps taken (for benchmarks)

    # ================================================================== device physics
    def _film(self, t: np.ndarray, ea: np.ndarray) -> np.ndarray:
        return self.r0 * np.exp(ea / (K_B_EV * t))

    def _select(self, index, values: np.ndarray) -> np.ndarray:
        return values.reshape(self.shape)[index] if index is not Ellipsis else values

    def steady_temperature_at_current(self, i, index=Ellipsis) -> np.ndarray:
        """Steady film temperature (K) at a DC current ``i`` (A), substrate in steady state.

        T − T_room = (R_th + R_sub)·i²·R_d(T) has exactly one root (left side rising, right side
        falling in T): bisection to 1e-9 K."""
        p = self.params
        ea = self._select(index, self.ea.reshape(self.shape))
        r0 = self._select(index, self.r0.reshape(self.shape))
        i2 = np.asarray(i, dtype=float) ** 2
        r_th = p.r_th_k_per_w + p.r_sub_k_per_w
        lo = np.full(np.broadcast(i2, ea).shape, p.t_room_k)
        hi = lo + r_th * i2 * (p.r_contact_ohm + r0 * np.exp(ea / (K_B_EV * p.t_room_k)))
        for _ in range(64):
            mid = 0.5 * (lo + hi)
            excess = mid - p.t_room_k - r_th * i2 * (p.r_contact_ohm
                                                    + r0 * np.exp(ea / (K_B_EV * mid)))
            lo, hi = np.where(excess < 0, mid, lo), np.where(excess < 0, hi, mid)
        return 0.5 * (lo + hi)

    def voltage_at_current(self, i, index=Ellipsis) -> np.ndarray:
        """Static (DC) device voltage (V) when a source drives current ``i`` (A) through it:
        the S-shaped I–V, single-valued in current. The driven devices take that operating
        point's static temperatures (a current source holds them anywhere on the curve,
        including its negative-resistance part)."""
        i = np.asarray(i, dtype=float)
        ea = self._select(index, self.ea.reshape(self.shape))
        r0 = self._select(index, self.r0.reshape(self.shape))
        t = self.steady_temperature_at_current(i, index)
        v = i * (self.params.r_contact_ohm + r0 * np.exp(ea / (K_B_EV * t)))
        if np.shape(v) == np.shape(self.t.reshape(self.shape)[index]):
            self._hold(v, t, index)
        return v

    def _static_temperature(self, v, index) -> np.ndarray:
        """Film temperature held at ``v``: the present one if it balances the heat flow there
        (to 1e-6 K), else the heat balance T = T_room + (R_th + R_sub)·v²/R_d(T) iterated from
        it, which converges monotonically to the nearest stable root in the direction of the
        heat flow (from the OFF state past V_th: runaway to the ON branch)."""
        p = self.params
        v = np.asarray(v, dtype=float)
        ea = self._select(index, self.ea.reshape(self.shape))
        r0 = self._select(index, self.r0.reshape(self.shape))
        r_th = p.r_th_k_per_w + p.r_sub_k_per_w

        def balance(t):
            return p.t_room_k + r_th * v * v / (p.r_contact_ohm + r0 * np.exp(ea / (K_B_EV * t)))

        t = np.broadcast_to(self._select(index, self.t.reshape(self.shape)),
                            np.broadcast(v, ea).shape).copy()
        if np.all(np.abs(balance(t) - t) < 1e-6):
            return t
        for _ in range(400):
            t = balance(t)
        return t

    def current(self, v, index=Ellipsis) -> np.ndarray:
        """Static (DC) device current (A) at voltage ``v`` (V) on the branch the device is on
        (see :meth:`_static_temperature`): hysteretic under voltage control."""
        ea = self._select(index, self.ea.reshape(self.shape))
        r0 = self._select(index, self.r0.reshape(self.shape))
        t = self._static_temperature(v, index)
        return np.asarray(v, float) / (self.params.r_contact_ohm + r0 * np.exp(ea / (K_B_EV * t)))

    def measure_current(self, v, index=Ellipsis) -> np.ndarray:
        """What an ammeter reads at ``v``: the static current (no read noise of its own)."""
        return self.current(v, index)

    def apply(self, v, dt, index=Ellipsis) -> None:
        """Hold the device alone at ``v`` (V) for ``dt`` s (an SMU across it): dt ≫ τ_th, so the
        film and substrate take their static temperatures on the present branch."""
        self._hold(np.asarray(v, float), self._static_temperature(v, index), index)

    def _hold(self, v, t_film, index) -> None:
        p = self.params
        heat = (t_film - p.t_room_k) / (p.r_th_k_per_w + p.r_sub_k_per_w)
        self.t.reshape(self.shape)[index] = t_film
        self.t_sub.reshape(self.shape)[index] = p.t_room_k + p.r_sub_k_per_w * heat
        self.v.reshape(self.shape)[index] = v

    # ================================================================== circuit
    def set_source(self, source: Source | None) -> None:
        """Connect the input (``None``: nothing connected, the R_s end floats); the state is not
        advanced (the next :meth:`advance_to` or :meth:`record` integrates under the new one)."""
        self.source = source

    def advance_to(self, t_abs: float, relax_span_s: float | None = None) -> None:
        """Integrate the circuit from its state time to ``t_abs`` under the present source.

        A gap longer than ``relax_span_s`` (default 10·τ_sub) is shortened to its last
        ``relax_span_s``: by then the slow variable has forgotten its start to e⁻¹⁰, so the state
        is the one the source leaves the neuron in (exact for a constant idle input)."""
        span = 10 * self.params.tau_sub_s if relax_span_s is None else relax_span_s
        if t_abs - self.time > span:
            self.time = t_abs - span
        if t_abs > self.time:
            self._integrate(self.time, t_abs, None)

    def record(self, sample_times: np.ndarray) -> dict[str, np.ndarray]:
        """Integrate up to and across ``sample_times`` (absolute, increasing) and return the
        node voltage ``node``, the input EMF ``input`` and the R_s current ``current``, each
        shaped (samples, neurons), interpolated linearly between integration steps."""
        sample_times = np.asarray(sample_times, dtype=float)
        self.advance_to(float(sample_times[0]))
        ts, vs = self._integrate(float(sample_times[0]), float(sample_times[-1]), True)
        # one interpolation for every neuron: they share the integration steps
        k = np.clip(np.searchsorted(ts, sample_times, side="right") - 1, 0, max(ts.size - 2, 0))
        k1 = np.minimum(k + 1, ts.size - 1)
        span = ts[k1] - ts[k]
        w = np.clip((sample_times - ts[k]) / np.where(span > 0, span, 1.0), 0.0, 1.0)
        node = vs[k] + w[:, None] * (vs[k1] - vs[k])
        vin, r_src = self._input_at(sample_times)
        g_s = 1.0 / (self.params.r_series_ohm + r_src)
        return {"node": node, "input": np.repeat(vin[:, None], self.size, axis=1),
                "current": (vin[:, None] - node) * g_s}

    def _input_at(self, times: np.ndarray) -> tuple[np.ndarray, float]:
        if self.source is None:
            return np.zeros(times.size), math.inf
        edges, levels, r_src = self.source(float(times[0]), float(times[-1]))
        k = np.searchsorted(edges, times, side="right") - 1
        return np.asarray(levels)[np.clip(k, 0, len(levels) - 1)], r_src

    def _integrate(self, t0: float, t1: float, keep: bool | None):
        """The adaptive exponential scheme of the module docstring from t0 to t1."""
        p = self.params
        if self.source is None:
            edges, levels, r_src = np.array([t0]), np.array([0.0]), math.inf
        else:
            edges, levels, r_src = self.source(t0, t1)
        g_s = 1.0 / (p.r_series_ohm + r_src)
        inv_c, inv_cth, inv_rth = 1.0 / p.c_parallel_f, 1.0 / p.c_th_j_per_k, 1.0 / p.r_th_k_per_w
        sub = math.isfinite(self.c_sub)
        noisy = p.noise_rel > 0
        dt_cap = min(p.dt_max_s, p.noise_tau_s) if noisy else p.dt_max_s
        v, t, t_sub, eta = self.v, self.t, self.t_sub, self.eta
        times, volts = ([t0], [v.copy()]) if keep else (None, None)
        now, seg = t0, 0
        n_edges = len(edges)
        while now < t1:
            while seg + 1 < n_edges and edges[seg + 1] <= now:
                seg += 1
            vin = levels[seg]
            seg_end = edges[seg + 1] if seg + 1 < n_edges else t1
            ea = self.ea * (1 + p.noise_rel * eta) if noisy else self.ea
            film = self._film(t, ea)
            g = 1.0 / (p.r_contact_ohm + film)
            heat = v * v * g
            lam = (heat * g * film * ea / (K_B_EV * t * t) - inv_rth) * inv_cth
            dvdt = np.abs((vin - v) * g_s - g * v).max() * inv_c
            dt = min(dt_cap, seg_end - now, t1 - now)
            if dvdt > 0:
                dt = min(dt, p.dv_max_v / dvdt)
            lam_max = lam.max()
            if lam_max > 0:
                dt = min(dt, 0.5 / lam_max)
            dt = max(dt, 1e-13)
            # node voltage: exact with the conductances frozen over the step
            g_tot = g_s + g
            v_inf = vin * g_s / g_tot
            v = v_inf + (v - v_inf) * np.exp(-dt * g_tot * inv_c)
            # film temperature: ETD1 on the linearised heat balance
            z = lam * dt
            phi = np.where(np.abs(z) > 1e-9, np.expm1(z) / np.where(z == 0, 1.0, z), 1.0)
            flow = (t - t_sub) * inv_rth
            t_old = t
            t = np.maximum(t + (heat - flow) * inv_cth * phi * dt, p.t_room_k)
            # then Newton on the backward-Euler balance at the new node voltage (well posed:
            # its slope C_th·(1/dt − λ) > 0 since λ·dt ≤ 0.5), so the film tracks the
            # quasi-static branch closely even where it folds
            for _ in range(NEWTON_ITERATIONS):
                film = self._film(t, ea)
                g = 1.0 / (p.r_contact_ohm + film)
                heat = v * v * g
                slope = p.c_th_j_per_k / dt + inv_rth - heat * g * film * ea / (K_B_EV * t * t)
                resid = (t - t_old) * p.c_th_j_per_k / dt - heat + (t - t_sub) * inv_rth
                t = np.maximum(t - resid / np.maximum(slope, 0.5 * p.c_th_j_per_k / dt),
                               p.t_room_k)
            if sub:  # substrate: exponential toward its balance with the flow frozen
                t_eq = p.t_room_k + p.r_sub_k_per_w * flow
                t_sub = t_eq + (t_sub - t_eq) * math.exp(-dt / p.tau_sub_s)
            if noisy:
                decay = math.exp(-dt / p.noise_tau_s)
                eta = eta * decay + math.sqrt(1 - decay * decay) * self.rng.standard_normal(
                    self.size)
            now += dt
            self.steps += 1
            if keep:
                times.append(now)
                volts.append(v)
        self.v, self.t, self.t_sub, self.eta, self.time = v, t, t_sub, eta, t1
        if keep:
            return np.asarray(times), np.asarray(volts)
        return None
