"""A two-layer RF spintronic network (Ross et al., "Multilayer spintronic neural networks with
radiofrequency connections", Nat. Nanotechnol. 18, 1273 (2023), arXiv:2211.03659; PHYSICS.md
§3.4), built from the chain and oscillator model of :mod:`mocks.devices.spintronics`.

Wiring (the paper's architecture, one hidden layer)::

    RF sources (one per input frequency) -> combiner -> input line
        -> n_hidden chains of n_inputs series junctions -> DC output -> V->I -> STNO (one each)
    STNO emissions (one frequency per neuron) -> amplifier -> output line (+ a probe source)
        -> n_outputs chains of n_hidden junctions -> DC outputs (the logits)

Every chain is an :class:`~mocks.devices.spintronics.RfCircuit` with its own hidden per-junction
parameters (resonance spread, damping, sensitivity, symmetric part, resistance, tuning slope)
and, for a hidden chain, its oscillator's hidden threshold current and Q; each oscillator's
power reaches the output line scaled by a hidden factor 1 + ``osc_power_spread_rel`` ·N(0, 1)
(coupling and amplifier spread: the "spread of oscillator power" Ross et al. train around; its
size on their hardware is not published, 10 % is a parameter choice). Chain k's junction
resonances lie on the geometric grid of its input frequencies (hidden chains:
``f_in_min``…``f_in_max``; output chains: the oscillators' frequencies
``f_osc_min``…``f_osc_max``). The oscillators' frequency does not move with their current
(``stno_shift_hz`` = 0; the paper's code keeps each neuron's frequency fixed), and each emission
reaches the output line as a tone at its centre frequency (its linewidth, ≲ 1 MHz, is below the
output junctions' 2αf_r ≈ 5 MHz and is neglected).

Terminals (an instrument's ``index``): junction g ≥ 0 (hidden chains first, chain-major, then
the output chains) is that junction's bias tee; ``-1 - c`` is the DC output of chain c (hidden
chains 0…n_hidden−1, then the output chains). RF sources with ``index`` < :data:`OUTPUT_LINE`
put their tone on the input line, ``index`` ≥ :data:`OUTPUT_LINE` on the output line (the probe
used to program the output junctions, off while the network runs).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from mocks.devices.rram import params_from_dict
from mocks.devices.spintronics import CHAIN_OUTPUT, RfCircuit, RfCircuitParams

OUTPUT_LINE = 100  # RF source indices from here on feed the output line


@dataclass(frozen=True)
class RfNetworkParams:
    """The network's frequency plan and link; ``chain`` holds the parameters of every chain
    (:class:`~mocks.devices.spintronics.RfCircuitParams`, whose frequency grid and oscillator
    frequency are replaced per chain; a bench gives it as a mapping)."""

    f_in_min_hz: float = 40e6
    f_in_max_hz: float = 120e6
    f_osc_min_hz: float = 200e6
    f_osc_max_hz: float = 300e6
    link_gain_db: float = 0.0        # amplifier between the oscillators and the output line
    osc_power_spread_rel: float = 0.1  # hidden spread of each oscillator's power on that line
    chain: RfCircuitParams = dataclasses.field(default_factory=RfCircuitParams)

    def __post_init__(self) -> None:
        for name in ("f_in_min_hz", "f_in_max_hz", "f_osc_min_hz", "f_osc_max_hz",
                     "link_gain_db", "osc_power_spread_rel"):
            value = getattr(self, name)
            signed = name == "link_gain_db"
            if isinstance(value, bool) or not isinstance(value, int | float) or \
                    not math.isfinite(value) or (not signed and value < 0) or \
                    (name.endswith("_hz") and value == 0):
                raise ValueError(f"RF network parameter {name!r}: expected a "
                                 f"{'finite' if signed else 'positive'} number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if isinstance(self.chain, Mapping):
            object.__setattr__(self, "chain", RfCircuitParams.from_dict(self.chain))

    @classmethod
    def from_dict(cls, d: Mapping) -> RfNetworkParams:
        return params_from_dict(cls, d, "RF network")


class RfNetwork:
    """``shape`` = (n_inputs, n_hidden, n_outputs): the network of the module docstring."""

    def __init__(self, shape, params: RfNetworkParams | None = None,
                 rng: np.random.Generator | None = None, formed: bool = True):
        p = params or RfNetworkParams()
        try:
            n_in, n_hidden, n_out = (int(v) for v in shape)
        except (TypeError, ValueError):
            raise ValueError(f"an RF network's shape is [inputs, hidden, outputs], got {shape}"
                             ) from None
        if min(n_in, n_hidden, n_out) < 1:
            raise ValueError(f"an RF network needs at least one of each layer, got {shape}")
        self.params, self.shape = p, (n_in, n_hidden, n_out)
        rng = rng if rng is not None else np.random.default_rng(0)
        self.f_osc = (np.geomspace(p.f_osc_min_hz, p.f_osc_max_hz, n_hidden) if n_hidden > 1
                      else np.array([p.f_osc_min_hz]))
        base = p.chain
        self.hidden = [RfCircuit(n_in, dataclasses.replace(
            base, f_r_min_hz=p.f_in_min_hz, f_r_max_hz=p.f_in_max_hz, stno=True,
            stno_driven_by_chain=True, stno_f0_hz=float(f), stno_shift_hz=0.0), rng)
            for f in self.f_osc]
        self.outputs = [RfCircuit(n_hidden, dataclasses.replace(
            base, f_r_min_hz=p.f_osc_min_hz, f_r_max_hz=p.f_osc_max_hz, stno=False), rng)
            for _ in range(n_out)]
        self.chains = self.hidden + self.outputs
        self._stale = True  # the output line's tones need recomputing
        self.osc_coupling = np.clip(1 + p.osc_power_spread_rel * rng.standard_normal(n_hidden),
                                    0.0, None)

    # -- wiring -----------------------------------------------------------------------------
    @property
    def n(self) -> int:
        return sum(c.n for c in self.chains)

    def set_rf(self, index: int, frequency: float, power_w: float, on: bool) -> None:
        """Source ``index`` drives the input line (index < OUTPUT_LINE) or the output line."""
        targets = self.hidden if index < OUTPUT_LINE else self.outputs
        for chain in targets:
            chain.set_rf(index, frequency, power_w, on)
        self._stale = True

    def _sync(self) -> None:
        """The output line carries the oscillators' emission (amplified) and the probe
        (recomputed after a change of tones or biases)."""
        if not self._stale:
            return
        self._stale = False
        gain = 10 ** (self.params.link_gain_db / 10)
        tones = {}
        for k, chain in enumerate(self.hidden):
            for f, _, power in chain.emission_lines():
                tones[-1 - k] = (f, power * gain * self.osc_coupling[k])
        for chain in self.outputs:
            probe = {i: t for i, t in chain.tones.items() if i >= OUTPUT_LINE}
            chain.tones = {**tones, **probe}

    def _locate(self, index: int) -> tuple[RfCircuit, int]:
        if index >= 0:
            local = index
            for chain in self.chains:
                if local < chain.n:
                    return chain, local
                local -= chain.n
            raise IndexError(f"no junction {index} on this network of {self.n} junctions")
        c = -1 - index
        if c >= len(self.chains):
            raise IndexError(f"no chain output {index} on a network of {len(self.chains)} "
                             "chains")
        return self.chains[c], CHAIN_OUTPUT

    # -- physics ----------------------------------------------------------------------------
    def outputs_v(self) -> np.ndarray:
        """DC outputs (V) of the hidden chains, then of the output chains, noiseless."""
        self._sync()
        return np.array([c.chain_output() for c in self.chains])

    # -- two-terminal view for an SMU ---------------------------------------------------------
    def set_operating_point(self, v: float, i: float, index: int) -> None:
        chain, local = self._locate(index)
        chain.set_operating_point(v, i, local)
        self._stale = True

    def voltage_at_current(self, i, index: int = 0):
        chain, local = self._locate(index)
        self._sync()
        return chain.voltage_at_current(i, local)

    def current(self, v, index: int = 0):
        chain, local = self._locate(index)
        self._sync()
        return chain.current(v, local)

    def measure_current(self, v, index: int = 0):
        chain, local = self._locate(index)
        self._sync()
        return chain.measure_current(v, local)

    def apply(self, v, dt, index: int = 0) -> None:
        """Holding a bias changes nothing lasting in these devices."""
