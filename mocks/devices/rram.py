"""Simulated bipolar RRAM (memristor) devices, vectorised over arrays of devices.

Switching law: the data-driven bipolar model with voltage-dependent saturation of
I. Messaris, A. Serb, S. Stathopoulos, A. Khiat, S. Nikolaidis and T. Prodromakis,
"A data-driven Verilog-A ReRAM model", IEEE Trans. Comput.-Aided Des. Integr. Circuits Syst.
37(12), 3151-3162 (2018), as implemented by the authors' group in ArC ONE's VirtualArC
(``arc-instruments/arc1_pyqt``, ``arc1pyqt/VirtualArC/parametric_device.py`` and ``virtualarc.py``)
and by MemTorch ``Data_Driven2021`` (``coreylammie/MemTorch``,
``memtorch/bh/memristor/Data_Driven2021.py``, citing arXiv:2012.02267). In the model's own sign
convention (model voltage ``Vm``)::

    Vm > 0:  dR/dt = s_p(Vm)·(r_p(Vm) − R)²·H(r_p(Vm) − R)     R rises toward r_p   (RESET)
    Vm < 0:  dR/dt = s_n(Vm)·(R − r_n(Vm))²·H(R − r_n(Vm))     R falls toward r_n   (SET)
    s(V) = |A|·(exp(|V|/t) − 1),   r(V) = a0 + a1·V

A voltage held constant for Δt is integrated exactly (MemTorch PR #125 form)::

    R' = r − (r − R)/(1 + s·|r − R|·Δt)        only where the Heaviside condition holds

which is monotone, never crosses r(V), and composes: n pulses of Δt equal one pulse of n·Δt.
Defaults are VirtualArC's: A_p = 11.483, A_n = −11.483 Ω⁻¹·s⁻¹, t_p = t_n = 1.731 V,
a0_p = 9000 Ω, a0_n = 5000 Ω, a1_p = a1_n = 500 Ω/V, formed R = 5 kΩ + (1 − 1.25·U)·3 kΩ,
i.e. uniform on (4.25, 8] kΩ; read noise ±1 % uniform (``readNoise = 0.01``).

Lab-facing extensions, each *(standard model)*, each a named parameter of :class:`RRAMParams`:

- polarity (``set_polarity``): the applied voltage V maps to ``Vm = −set_polarity·V``, so with the
  default +1 a positive voltage SETs (lowers R); −1 is VirtualArC's native convention.
- thresholds (``v_set_threshold``, ``v_reset_threshold``): the published s(V) has no threshold;
  below the threshold magnitude for its direction a voltage changes nothing, at or above it the
  published s(V) acts unchanged.
- I–V: ``I = sinh(b·V)/(b·R)`` (the model's a·G·sinh(bV) with a = 1/b, so ohmic for small V and
  exactly ``V/R`` for b = 0); exact inverse ``V = asinh(b·I·R)/b``.
- forming: devices start virgin at a log-normal high resistance (floored at
  ``r_virgin_min_ohm``). A SET-polarity voltage of magnitude ≥ the device's forming voltage
  accumulates forming time; once the accumulated time reaches ``t_form_s`` (relative tolerance
  1e-9) the device takes its pre-drawn formed resistance and the rest of that ``apply`` is spent
  (the formed state first meets the voltage in the next call, after a compliance-limited source
  has had the chance to re-clamp). The switching law does not act on virgin devices. A fraction
  ``p_unformable`` never forms.
- breakdown: if |I| at the applied voltage exceeds ``i_breakdown_a`` at the start or at the end of
  an update (R is monotone within an update, so these bound |I| over it), the device is shorted
  for good: R = ``r_short_ohm``, state ``"short"``, never switches again, not undone by
  :meth:`RRAMArray.clear_fault`.
- variability: device-to-device (D2D) log-normal |A| and t (median = published value), normal a0
  and a1 (relative sd), normal forming voltage, log-normal virgin R; cycle-to-cycle (C2C) per
  update the fraction g of the remaining distance to r(V) covered in the update (exact noiseless
  value ``g = x/(1 + x)``, ``x = s·|r − R|·Δt``) becomes ``clip(g·(1 + c2c_rel_std·ξ), 0, 1)``,
  ξ ~ N(0, 1), i.e. ΔR·(1 + 0.3ξ) as in aihwkit's ``dw_min_std``; the clip keeps every update
  monotone and stops it at r(V) instead of crossing it. Read noise multiplies the measured
  current by 1 + U(−a, a), a = ``read_noise_rel``. Every spread has its own parameter; 0 turns it
  off (the random draws still happen, so other quantities of a seeded array stay the same).
- faults: per-device states normal / short / open / stuck, injected with
  :meth:`RRAMArray.set_fault` and removed with :meth:`RRAMArray.clear_fault`. Short:
  R = ``r_short_ohm``; open: R = ``r_open_ohm`` (current ≈ 0 while the inverse stays finite);
  stuck: R frozen (no switching, forming or breakdown). A fault hides the device's state, which
  clearing the fault restores.

- retention *(standard model)*: the power-law conductance drift ``G(t) = G0·(t/t0)^−ν`` of
  MemTorch's ``model_conductance_drift`` (``coreylammie/MemTorch``,
  ``memtorch/bh/nonideality/endurance_retention_models/conductance_drift.py``, after Boybat et al.,
  NVMTS 2018), written ``R = r_programmed·(1 + age/t0)^ν`` so it is finite at age 0.
  :meth:`RRAMArray.age` advances every device's age (time since its last programming event: a
  switching update or forming, which resets the age to 0 and ``r_programmed`` to the new R) and
  sets R on the formed normal devices. ν = ``retention_nu`` (0: off), t0 = ``retention_t0_s``.
- endurance *(standard model)*: each device survives a log-normal number of cycles (median
  ``endurance_median_cycles``, 0 = unlimited; sigma ``endurance_sigma_ln``; rounded up to a whole
  cycle, at least 1), drawn after every other construction draw, only when endurance is on, from
  a generator spawned from the array's (``Generator.spawn``), so a seed gives the same devices
  and the same later draws either way. A cycle is a SET update following a RESET update on
  that device (:attr:`RRAMArray.cycles`). When the count reaches the device's endurance its RESET
  ceiling collapses onto its SET floor (``r_p(V) := r_n(V)``: a0_p = a0_n, a1_p = −a1_n): the
  window closes and the device stays near its LRS.

Exponent cap: ``|V|/t`` is capped at 200 inside s(V) (|V| ≳ 350 V) so products stay finite; at
that point one update already reaches r(V) to machine precision.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np

NORMAL, SHORT, OPEN, STUCK = 0, 1, 2, 3
"""Per-device state codes returned by :attr:`RRAMArray.state`."""
STATE_NAMES = ("normal", "short", "open", "stuck")
"""Names of the state codes, indexed by code."""

_FAULT_CODES = {"short": SHORT, "open": OPEN, "stuck": STUCK}
_SET, _RESET = 0, 1  # rows of the per-direction parameter tables (model V < 0, model V > 0)
_FORM_TIME_RTOL = 1e-9  # forming completes at accumulated time >= t_form·(1 − rtol)
_MAX_EXPONENT = 200.0  # cap on |V|/t inside s(V)
_MAX_DT_S = 1e9  # longest hold accepted by apply (s); keeps s·|r − R|·Δt finite
_L_AMP, _L_INV_T, _L_A0, _L_A1 = range(4)  # quantities in the switching-law table
_W_X, _W_BOUND, _W_DIST, _W_TMP, _W_R, _W_U, _W_ABS_V, _W_ROWS = range(8)  # workspace rows
_V_MIN = math.ulp(0.0)  # smallest positive voltage: a zero threshold still needs V ≠ 0


@dataclass(frozen=True)
class RRAMParams:
    """Named physical parameters of :class:`RRAMArray`, with published defaults.

    Switching-law values are VirtualArC's defaults (``arc-instruments/arc1_pyqt``,
    ``arc1pyqt/VirtualArC/virtualarc.py``) for the Messaris et al. data-driven model
    (IEEE TCAD 37(12), 3151 (2018)). The remaining fields are *(standard model)* lab-facing
    extensions; their defaults are typical values (PHYSICS.md §1.4), not fitted to a paper.
    Any field may be given to the constructor or through :meth:`from_dict`.
    """

    # --- switching law (authors' code: VirtualArC ParametricDevice) ---
    A_p: float = 11.483
    """Rate prefactor toward r_p (R rising, model V > 0), Ω⁻¹·s⁻¹, > 0."""
    A_n: float = -11.483
    """Rate prefactor toward r_n (R falling, model V < 0), Ω⁻¹·s⁻¹, < 0 (published sign)."""
    t_p: float = 1.731
    """Voltage scale of s_p(V) = A_p·(exp(|V|/t_p) − 1), V, > 0."""
    t_n: float = 1.731
    """Voltage scale of s_n(V), V, > 0."""
    a0_p: float = 9000.0
    """Intercept of the RESET ceiling r_p(V) = a0_p + a1_p·V, Ω, > 0."""
    a0_n: float = 5000.0
    """Intercept of the SET floor r_n(V) = a0_n + a1_n·V (V < 0), Ω, > 0."""
    a1_p: float = 500.0
    """Slope of r_p(V), Ω/V."""
    a1_n: float = 500.0
    """Slope of r_n(V), Ω/V."""
    r_formed_min_ohm: float = 4250.0
    """Formed (initial) R is uniform on (r_formed_min_ohm, r_formed_max_ohm], Ω (VirtualArC)."""
    r_formed_max_ohm: float = 8000.0
    """Upper end of the formed-R distribution, Ω (VirtualArC: 5 kΩ + 3 kΩ)."""

    # --- polarity, thresholds, I–V (standard model) ---
    set_polarity: int = 1
    """+1: a positive applied voltage SETs (lowers R); −1: VirtualArC's native convention."""
    v_set_threshold: float = 0.8
    """|V| at and above which a SET-polarity voltage switches, V, ≥ 0 (0.5 V reads never do)."""
    v_reset_threshold: float = 0.8
    """|V| at and above which a RESET-polarity voltage switches, V, ≥ 0."""
    iv_nonlinearity_b: float = 1.0
    """b in I = sinh(b·V)/(b·R), 1/V, ≥ 0; 0 is exactly ohmic."""

    # --- forming (standard model) ---
    v_form_mean: float = 2.8
    """Mean per-device forming voltage (magnitude, SET polarity), V, > 0."""
    v_form_std: float = 0.2
    """D2D standard deviation of the forming voltage (normal, clipped at 0), V, ≥ 0."""
    t_form_s: float = 10e-6
    """Cumulative time at or above the forming voltage needed to form, s, ≥ 0."""
    p_unformable: float = 0.0
    """Fraction of devices that never form, in [0, 1]."""
    r_virgin_median_ohm: float = 5e6
    """Median virgin (unformed) resistance, Ω, > 0."""
    r_virgin_sigma_ln: float = 0.35
    """D2D log-normal sigma of the virgin resistance (natural log), ≥ 0."""
    r_virgin_min_ohm: float = 1e6
    """Floor of the virgin resistance, Ω, > 0."""

    # --- breakdown and faults (standard model) ---
    i_breakdown_a: float = 2e-3
    """|I| above which the device shorts permanently, A, > 0."""
    r_short_ohm: float = 100.0
    """Resistance of a shorted device (breakdown or injected fault), Ω, > 0."""
    r_open_ohm: float = 1e12
    """Resistance of an open device (injected fault), Ω, > 0."""

    # --- variability (standard model; aihwkit-style C2C, VirtualArC read noise) ---
    A_sigma_ln: float = 0.25
    """D2D log-normal sigma of |A_p| and |A_n| (independent draws), ≥ 0."""
    t_sigma_ln: float = 0.25
    """D2D log-normal sigma of t_p and t_n, ≥ 0."""
    a0_rel_std: float = 0.03
    """D2D relative standard deviation of a0_p, a0_n (normal), ≥ 0."""
    a1_rel_std: float = 0.03
    """D2D relative standard deviation of a1_p, a1_n (normal), ≥ 0."""
    c2c_rel_std: float = 0.3
    """C2C relative standard deviation of each update, ΔR·(1 + c2c_rel_std·ξ), ≥ 0."""
    read_noise_rel: float = 0.01
    """Half-width a of the uniform multiplicative read noise U(−a, a) on the current, in [0, 1)."""

    # --- retention and endurance (standard model; MemTorch conductance drift) ---
    retention_nu: float = 0.0
    """Drift exponent ν of R = r_programmed·(1 + age/t0)^ν (G ∝ (1 + age/t0)^−ν), ≥ 0; 0 = off
    (MemTorch's default drift coefficient is 0.1)."""
    retention_t0_s: float = 1.0
    """Time scale t0 of the retention drift, s, > 0."""
    endurance_median_cycles: float = 0.0
    """Median number of SET/RESET cycles a device survives (log-normal D2D), ≥ 0; 0 = unlimited."""
    endurance_sigma_ln: float = 0.5
    """D2D log-normal sigma of the endurance (natural log), ≥ 0."""

    def __post_init__(self) -> None:
        check_params(self, "RRAM", _RULES)
        if not self.r_formed_min_ohm < self.r_formed_max_ohm:
            raise ValueError("RRAM parameter 'r_formed_min_ohm': must be < r_formed_max_ohm, got "
                             f"{self.r_formed_min_ohm!r} >= {self.r_formed_max_ohm!r}")

    @classmethod
    def from_dict(cls, d: Mapping) -> RRAMParams:
        """Build from a mapping of field name to value (e.g. a station or bench file section).

        An unknown key, a value of the wrong type or out of range raises ``ValueError`` naming
        the key.
        """
        return params_from_dict(cls, d, "RRAM")


def check_params(params, label: str, rules) -> None:
    """Coerce and check the fields of a frozen parameter dataclass in place: ``int`` fields take
    integers, ``bool`` fields bools, every other field a finite number (stored as float); then
    each ``(name, test, rule)`` of ``rules`` must hold. A failure raises ``ValueError`` naming the
    field ("<label> parameter 'name': ...")."""
    for f in fields(params):
        value = getattr(params, f.name)
        if f.type == "bool":
            ok, expected, cast = isinstance(value, (bool, np.bool_)), "a bool", bool
        elif f.type == "int":
            ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
            expected, cast = "an integer", int
        else:
            ok = (isinstance(value, (int, float, np.integer, np.floating))
                  and not isinstance(value, bool) and math.isfinite(value))
            expected, cast = "a finite number", float
        if not ok:
            raise ValueError(f"{label} parameter {f.name!r}: expected {expected}, got {value!r}")
        object.__setattr__(params, f.name, cast(value))
    for name, test, rule in rules:
        if not test(getattr(params, name)):
            raise ValueError(
                f"{label} parameter {name!r}: must be {rule}, got {getattr(params, name)!r}")


def params_from_dict(cls, d: Mapping, label: str):
    """``cls(**d)`` for a parameter dataclass, with an unknown key or a non-mapping rejected by
    a message naming it."""
    if not isinstance(d, Mapping):
        raise TypeError(f"{label} parameters: expected a mapping, got {type(d).__name__}")
    valid = [f.name for f in fields(cls)]
    for key in d:
        if key not in valid:
            raise ValueError(f"unknown {label} parameter {key!r}; valid parameters: "
                             + ", ".join(valid))
    return cls(**d)


def _positive(x: float) -> bool:
    return x > 0


def _non_negative(x: float) -> bool:
    return x >= 0


_RULES = (
    ("A_p", _positive, "> 0"),
    ("A_n", lambda x: x < 0, "< 0"),
    *((name, _positive, "> 0") for name in (
        "t_p", "t_n", "a0_p", "a0_n", "r_formed_min_ohm", "v_form_mean", "r_virgin_median_ohm",
        "r_virgin_min_ohm", "i_breakdown_a", "r_short_ohm", "r_open_ohm", "retention_t0_s")),
    ("set_polarity", lambda x: x in (1, -1), "+1 or -1"),
    *((name, _non_negative, ">= 0") for name in (
        "v_set_threshold", "v_reset_threshold", "iv_nonlinearity_b", "v_form_std", "t_form_s",
        "r_virgin_sigma_ln", "A_sigma_ln", "t_sigma_ln", "a0_rel_std", "a1_rel_std",
        "c2c_rel_std", "retention_nu", "endurance_median_cycles", "endurance_sigma_ln")),
    ("p_unformable", lambda x: 0 <= x <= 1, "in [0, 1]"),
    ("read_noise_rel", lambda x: 0 <= x < 1, "in [0, 1)"),
)


class DeviceArray:
    """What every simulated two-terminal device array shares: shape and indexing, the I–V
    ``I = sinh(b·V)/(b·R)`` (exactly V/R for b = 0) and its inverse, read noise, injected faults
    and the record of applied voltages.

    A subclass keeps, per device (flat, C order): ``_r`` (effective resistance, Ω), ``_r_hidden``
    (the device's own R while an injected short/open masks it), ``_fault`` (int8 state code),
    ``_broken`` (shorted for good) and ``_mav`` (largest |V| applied), all set up by
    :meth:`_init_array` and :meth:`_init_state`; and ``_params`` with ``iv_nonlinearity_b``,
    ``read_noise_rel``, ``r_short_ohm`` and ``r_open_ohm``. It implements ``_refresh`` (recompute
    its masks after a state event), ``apply``, ``age``, ``formed``, ``cycles`` and
    ``device_parameters``.

    ``index`` arguments select devices: ``Ellipsis`` (all, the default), a tuple (numpy indexing
    of the shaped array, e.g. ``(row, col)`` or ``(rows, slice(None))``), a boolean mask of the
    array's shape or of ``(size,)``; any other index (int, slice, integer array or list) selects
    by flat device number (C order). Voltages and currents broadcast to the selection's shape.
    """

    _LABEL = "device"  # how error messages name the model

    def _init_array(self, shape, rng) -> int:
        """Validate and store ``shape`` and ``rng``; return the number of devices."""
        name = type(self).__name__
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        if not shape or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool)
                                and n > 0 for n in shape):
            raise ValueError(f"{name} shape: expected positive ints, got {shape!r}")
        rng = np.random.default_rng(0) if rng is None else rng
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"{name} rng: expected numpy.random.Generator, got {rng!r}")
        self._shape = tuple(int(n) for n in shape)
        self._size = n = math.prod(self._shape)
        self.rng = rng
        self._ids = np.arange(n).reshape(self._shape)
        return n

    def _init_state(self, r: np.ndarray) -> None:
        """Effective R (flat) and the fault bookkeeping every array keeps."""
        n = self._size
        self._r = r
        self._r_hidden = np.zeros(n)
        self._fault = np.zeros(n, dtype=np.int8)
        self._broken = np.zeros(n, dtype=bool)
        self._mav = np.zeros(n)

    def _check_dt(self, what: str, dt) -> float:
        dt = float(dt)
        if not 0 <= dt <= _MAX_DT_S:
            raise ValueError(f"{self._LABEL} {what}: dt must be in [0, {_MAX_DT_S:g}] s, "
                             f"got {dt!r}")
        return dt

    # ------------------------------------------------------------------ read-only views
    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the device array."""
        return self._shape

    @property
    def size(self) -> int:
        """Number of devices."""
        return self._size

    @property
    def params(self):
        """The parameter set the devices were built from."""
        return self._params

    @property
    def resistance(self) -> np.ndarray:
        """Noiseless device resistance in Ω (copy, array shape); r_short / r_open when faulted."""
        return self._r.reshape(self._shape).copy()

    @property
    def state(self) -> np.ndarray:
        """Per-device state code (int8 copy): NORMAL, SHORT, OPEN or STUCK."""
        code = np.where(self._fault != NORMAL, self._fault,
                        np.where(self._broken, SHORT, NORMAL)).astype(np.int8)
        return code.reshape(self._shape)

    def state_names(self) -> np.ndarray:
        """Per-device state as strings ("normal", "short", "open", "stuck"), array shape."""
        return np.array(STATE_NAMES)[self.state]

    @property
    def max_abs_voltage(self) -> np.ndarray:
        """Largest |V| ever applied to each device through :meth:`apply`, V (copy)."""
        return self._mav.reshape(self._shape).copy()

    # ------------------------------------------------------------------ I–V
    def current(self, v, index=Ellipsis) -> np.ndarray:
        """Noiseless current in A at voltage ``v`` (V) across the selected devices (no state
        change)."""
        return self._iv(np.asarray(v, dtype=float), self._take(self._r, index))

    def measure_current(self, v, index=Ellipsis) -> np.ndarray:
        """Current in A with multiplicative read noise 1 + U(−a, a) drawn from ``self.rng``."""
        i = self.current(v, index)
        a = self._params.read_noise_rel
        if a:
            i = i * (1.0 + self.rng.uniform(-a, a, np.shape(i)))
        return i

    def voltage_at_current(self, i, index=Ellipsis) -> np.ndarray:
        """Voltage in V at which the selected devices carry current ``i`` (A): the exact inverse
        of :meth:`current`, ``asinh(b·I·R)/b`` (``I·R`` for b = 0)."""
        r = self._take(self._r, index)
        i = np.asarray(i, dtype=float)
        b = self._params.iv_nonlinearity_b
        return i * r if b == 0 else np.arcsinh(b * i * r) / b

    def _iv(self, v, r):
        b = self._params.iv_nonlinearity_b
        return v / r if b == 0 else np.sinh(b * v) / (b * r)

    def _record_voltage(self, k: np.ndarray | None, u) -> None:
        if k is None:
            np.maximum(self._mav, u, out=self._mav)
        else:
            np.maximum.at(self._mav, k, u)

    # ------------------------------------------------------------------ faults
    def set_fault(self, index, kind: str) -> None:
        """Inject a fault on the selected devices: ``"short"``, ``"open"`` or ``"stuck"``."""
        if kind not in _FAULT_CODES:
            raise ValueError(f"{self._LABEL} fault kind {kind!r} unknown; valid kinds: "
                             + ", ".join(_FAULT_CODES))
        code = _FAULT_CODES[kind]
        k = self._flat_unique(index)
        hidden = (self._fault[k] == SHORT) | (self._fault[k] == OPEN)
        device_r = np.where(hidden, self._r_hidden[k], self._r[k])
        self._fault[k] = code
        if code == STUCK:
            self._r[k] = device_r
        else:
            self._r_hidden[k] = device_r
            self._r[k] = self._params.r_short_ohm if code == SHORT else self._params.r_open_ohm
        self._refresh()

    def clear_fault(self, index) -> None:
        """Remove injected faults from the selected devices, restoring their state (a device
        shorted by breakdown stays shorted)."""
        k = self._flat_unique(index)
        hidden = k[(self._fault[k] == SHORT) | (self._fault[k] == OPEN)]
        self._r[hidden] = self._r_hidden[hidden]
        self._fault[k] = NORMAL
        self._refresh()

    def _refresh(self) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ indexing
    def _select(self, index) -> np.ndarray | None:
        """Flat device ids for ``index`` (shaped like the selection), or None for all devices."""
        if index is Ellipsis:
            return None
        try:
            if isinstance(index, tuple) or (
                    isinstance(index, np.ndarray) and index.dtype == bool
                    and index.shape == self._shape):
                ids = self._ids[index]
            else:
                ids = self._ids.reshape(-1)[index]
        except (IndexError, TypeError, ValueError) as exc:
            raise ValueError(f"{self._LABEL} index {index!r} invalid for an array of shape "
                             f"{self._shape}: {exc}") from None
        return np.asarray(ids)

    def _flat_unique(self, index) -> np.ndarray:
        ids = self._select(index)
        return np.arange(self._size) if ids is None else np.unique(ids)

    def _take(self, values: np.ndarray, index) -> np.ndarray:
        ids = self._select(index)
        return values.reshape(self._shape) if ids is None else values[ids]


class RRAMArray(DeviceArray):
    """An array of simulated bipolar RRAM devices sharing one parameter set.

    ``shape``: int or tuple of positive ints. ``rng``: the ``numpy.random.Generator`` that every
    draw comes from (default ``np.random.default_rng(0)``); device-to-device parameters are drawn
    at construction in a fixed order, so the same seed gives the same devices whatever
    ``formed`` is. ``formed=True`` starts every formable device formed (crossbar benches);
    ``False`` starts every device virgin. ``index`` arguments: see :class:`DeviceArray`.
    """

    _LABEL = "RRAM"

    def __init__(self, shape: int | tuple[int, ...], params: RRAMParams | None = None,
                 rng: np.random.Generator | None = None, formed: bool = False) -> None:
        n = self._init_array(shape, rng)
        rng = self.rng
        params = RRAMParams() if params is None else params
        if not isinstance(params, RRAMParams):
            raise TypeError(f"RRAMArray params: expected RRAMParams, got {type(params).__name__}")
        if not isinstance(formed, (bool, np.bool_)):
            raise TypeError(f"RRAMArray formed: expected a bool, got {formed!r}")
        self._params = p = params

        # Device-to-device draws, in this fixed order. Switching parameters: one table,
        # _law[direction, quantity, device], direction 0 = SET (the model's "n" branch),
        # 1 = RESET ("p"); quantities |A|, 1/t, a0, a1.
        self._law = np.empty((2, 4, n))
        for col, published, sigma_ln in ((_L_AMP, (-p.A_n, p.A_p), p.A_sigma_ln),
                                         (_L_INV_T, (1 / p.t_n, 1 / p.t_p), -p.t_sigma_ln)):
            self._law[:, col] = (np.array(published)[:, None]
                                 * np.exp(sigma_ln * rng.standard_normal((2, n))))
        for col, published, rel_std in ((_L_A0, (p.a0_n, p.a0_p), p.a0_rel_std),
                                        (_L_A1, (p.a1_n, p.a1_p), p.a1_rel_std)):
            self._law[:, col] = (np.array(published)[:, None]
                                 * (1 + rel_std * rng.standard_normal((2, n))))
        self._inv_t_max = self._law[:, _L_INV_T].max(axis=1)
        self._v_form = np.maximum(p.v_form_mean + p.v_form_std * rng.standard_normal(n), 0.0)
        self._r_virgin = np.maximum(
            p.r_virgin_median_ohm * np.exp(p.r_virgin_sigma_ln * rng.standard_normal(n)),
            p.r_virgin_min_ohm)
        self._formable = rng.random(n) >= p.p_unformable
        self._r_formed = p.r_formed_max_ohm - rng.random(n) * (p.r_formed_max_ohm
                                                               - p.r_formed_min_ohm)

        # Endurance: drawn after everything else, only when on, and from a child generator
        # (Generator.spawn leaves rng's own stream untouched), so turning it on changes neither
        # the devices nor any later draw of a seeded array.
        self._wears = p.endurance_median_cycles > 0
        self._endurance = (np.maximum(np.ceil(p.endurance_median_cycles * np.exp(
            p.endurance_sigma_ln * rng.spawn(1)[0].standard_normal(n))), 1.0) if self._wears
            else np.full(n, np.inf))

        # Per-device state.
        self._formed = self._formable & bool(formed)
        self._init_state(np.where(self._formed, self._r_formed, self._r_virgin))
        self._form_time = np.zeros(n)
        self._work = np.empty((_W_ROWS, n))  # scratch for apply (untouched until used)
        self._law_scratch = np.empty(4 * n)
        # Retention (kept only when it acts): R at the last programming event, and the ageing
        # clock at that event.
        self._drifts = p.retention_nu > 0
        self._r_prog = self._r.copy() if self._drifts else None
        self._t_prog = np.zeros(n) if self._drifts else None
        self._age_clock = 0.0  # total time passed to age(), s
        # Endurance: 2·(completed cycles) + (1 if the last switching update was a RESET).
        self._phase = np.zeros(n, dtype=np.int64)
        self._worn = np.zeros(n, dtype=bool)
        self._refresh()

    # ------------------------------------------------------------------ read-only views
    @property
    def formed(self) -> np.ndarray:
        """Whether each device is formed (bool copy, array shape)."""
        return self._formed.reshape(self._shape).copy()

    @property
    def cycles(self) -> np.ndarray:
        """Completed SET/RESET cycles per device (int copy, array shape): SET updates that
        followed a RESET update."""
        return (self._phase >> 1).reshape(self._shape)

    @property
    def age_s(self) -> np.ndarray:
        """Time in s each device has aged (through :meth:`age`) since its last programming event
        (copy, array shape); NaN when retention is off (``retention_nu`` = 0: not tracked)."""
        if not self._drifts:
            return np.full(self._shape, np.nan)
        return (self._age_clock - self._t_prog).reshape(self._shape)

    @property
    def r_programmed(self) -> np.ndarray:
        """Resistance in Ω each device had right after its last programming event, which
        retention drift starts from (copy, array shape); NaN when retention is off."""
        if not self._drifts:
            return np.full(self._shape, np.nan)
        return self._r_prog.reshape(self._shape).copy()

    def device_parameters(self) -> dict[str, np.ndarray]:
        """Per-device drawn parameters (copies, array shape): A_p, A_n (Ω⁻¹·s⁻¹, signed as
        published), t_p, t_n (V), a0_p, a0_n (Ω), a1_p, a1_n (Ω/V), v_form (V), r_virgin (Ω),
        r_formed (Ω), formable (bool), endurance (cycles; inf when endurance is off). After an
        endurance failure a0_p and a1_p hold the collapsed RESET ceiling."""
        out = {}
        for row, suffix, sign in ((_RESET, "_p", 1.0), (_SET, "_n", -1.0)):
            law = self._law[row]
            out["A" + suffix] = sign * law[_L_AMP]
            out["t" + suffix] = 1.0 / law[_L_INV_T]
            out["a0" + suffix] = law[_L_A0].copy()
            out["a1" + suffix] = law[_L_A1].copy()
        out.update(v_form=self._v_form.copy(), r_virgin=self._r_virgin.copy(),
                   r_formed=self._r_formed.copy(), formable=self._formable.copy(),
                   endurance=self._endurance.copy())
        return {k: v.reshape(self._shape) for k, v in out.items()}

    # ------------------------------------------------------------------ dynamics
    def apply(self, v, dt, index=Ellipsis) -> None:
        """Hold voltage ``v`` (V; scalar or array broadcast to the selection) for ``dt`` s.

        In order: record |V| in :attr:`max_abs_voltage`; breakdown check at the present state;
        the exact switching update (with C2C) on formed normal devices at or above threshold;
        breakdown check at the switched state; forming of virgin devices in the SET polarity.
        """
        dt = self._check_dt("apply", dt)
        ids = self._select(index)
        v = np.asarray(v, dtype=float)
        if v.ndim == 0:
            vs = float(v)
            if not math.isfinite(vs):
                raise ValueError(f"RRAM apply: voltage must be finite, got {vs!r}")
            self._apply_uniform(vs, dt, None if ids is None else ids.ravel())
            return
        sel_shape = self._shape if ids is None else ids.shape
        try:
            v = np.broadcast_to(v, sel_shape).ravel()
        except ValueError:
            raise ValueError(f"RRAM apply: voltage shape {v.shape} does not broadcast to the "
                             f"selection shape {sel_shape}") from None
        if not np.isfinite(v).all():
            raise ValueError("RRAM apply: voltages must be finite")
        self._apply_each(v, dt, None if ids is None else ids.ravel())

    def _apply_uniform(self, v: float, dt: float, k: np.ndarray | None) -> None:
        """One voltage for the whole selection ``k`` (flat ids, or None = every device)."""
        u = abs(v)
        self._record_voltage(k, u)
        if dt == 0 or u == 0:
            return
        self._breakdown(k, u, u)
        p = self._params
        set_dir = v * p.set_polarity > 0
        if u >= (p.v_set_threshold if set_dir else p.v_reset_threshold):
            kp = self._plain_subset(k)
            if kp is None or kp.size:
                self._switch(kp, _SET if set_dir else _RESET, u, u, dt)
        if set_dir and self._n_virgin:
            self._form(k, u, dt)

    def _apply_each(self, v: np.ndarray, dt: float, k: np.ndarray | None) -> None:
        """Per-device voltages ``v`` (flat, aligned with ``k``; k None = every device)."""
        work = self._workspace(v.size)
        u = np.abs(v, out=work[_W_ABS_V, :v.size])
        self._record_voltage(k, u)
        if dt == 0:
            return
        u_max = float(u.max())
        self._breakdown(k, u, u_max)
        p = self._params
        pv = v if p.set_polarity == 1 else -v  # > 0: SET polarity
        plain = (None if self._all_plain else self._plain) if k is None else self._plain[k]
        for direction, in_dir in (
                (_SET, pv >= max(p.v_set_threshold, _V_MIN)),
                (_RESET, pv <= -max(p.v_reset_threshold, _V_MIN))):
            if plain is not None:
                in_dir &= plain
            j = np.flatnonzero(in_dir)
            if k is None and j.size == self._size:  # every device: no gather needed
                self._switch(None, direction, u, u_max, dt)
            elif j.size:
                u_j = u.take(j, out=work[_W_U, :j.size], mode="clip")
                self._switch(j if k is None else k[j], direction, u_j, u_max, dt)
        if self._n_virgin:
            j = np.flatnonzero(pv > 0)
            if j.size:
                self._form(j if k is None else k[j], u[j], dt)

    def _switch(self, k: np.ndarray | None, direction: int, u, u_max: float, dt: float) -> None:
        """Exact constant-voltage update of devices ``k`` (None = all) at |V| = ``u`` (≤ u_max)
        toward r(V), in place, then the end-of-update breakdown check.

        Works in preallocated rows of the workspace (fresh large temporaries cost page faults).
        """
        m = self._size if k is None else k.size
        work = self._workspace(m)
        x, bound, dist, tmp = (work[i, :m] for i in (_W_X, _W_BOUND, _W_DIST, _W_TMP))
        if k is None:
            r_now, law = self._r, self._law[direction]
        else:
            r_now = self._r.take(k, out=work[_W_R, :m], mode="clip")
            law = self._law[direction].take(k, axis=1, out=self._law_work(m), mode="clip")
        amp, inv_t, a0, a1 = (law[col] for col in (_L_AMP, _L_INV_T, _L_A0, _L_A1))
        np.multiply(inv_t, u, out=x)
        sign = 1.0 if direction == _RESET else -1.0
        if u_max * self._inv_t_max[direction] > _MAX_EXPONENT:
            np.minimum(x, _MAX_EXPONENT, out=x)
        np.expm1(x, out=x)
        x *= amp
        x *= sign * dt  # ±s·Δt
        np.multiply(a1, u, out=bound)
        if sign > 0:
            np.add(a0, bound, out=bound)  # r_p(Vm) = a0_p + a1_p·|V|
        else:
            np.subtract(a0, bound, out=bound)  # r_n(Vm) = a0_n − a1_n·|V|
        np.subtract(bound, r_now, out=dist)  # r − R, signed
        if sign > 0:
            np.maximum(dist, 0.0, out=dist)  # Heaviside: RESET acts only below r_p
            np.maximum(bound, r_now, out=bound)  # the update ends at or below max(R, r)
        else:
            np.minimum(dist, 0.0, out=dist)
            np.minimum(bound, r_now, out=bound)
        x *= dist  # s·|r − R|·Δt ≥ 0
        np.add(x, 1.0, out=tmp)
        x /= tmp  # covered fraction g = x/(1 + x) of the remaining distance
        c2c = self._params.c2c_rel_std
        if c2c:
            self.rng.standard_normal(out=tmp)
            tmp *= c2c
            tmp += 1.0
            x *= tmp
            np.clip(x, 0.0, 1.0, out=x)
        x *= dist
        r_now += x
        (np.minimum if sign > 0 else np.maximum)(r_now, bound, out=r_now)  # rounding guard
        if k is not None:
            self._r[k] = r_now
        self._programmed(k, r_now, direction)
        if sign < 0:  # R fell during the update: |I| is largest at its end
            self._breakdown(k, u, u_max, r_now)

    def _programmed(self, k: np.ndarray | None, r_now: np.ndarray, direction: int) -> None:
        """Bookkeeping of a switching update of devices ``k`` (None = all; ``r_now``: their new
        R): retention restarts from R, and a SET after a RESET completes a cycle."""
        if self._drifts:
            if k is None:
                np.copyto(self._r_prog, r_now)
                self._t_prog.fill(self._age_clock)
            else:
                self._r_prog[k] = r_now
                self._t_prog[k] = self._age_clock
        phase = self._phase  # 2·cycles + last-was-RESET: a SET adds the low bit, RESET sets it
        if k is None:
            if direction == _RESET:
                phase |= 1
                return
            phase += phase & 1
        else:
            if direction == _RESET:
                phase[k] |= 1
                return
            ph = phase[k]
            ph += ph & 1
            phase[k] = ph
        if self._wears:
            self._wear_out(k)

    def _wear_out(self, k: np.ndarray | None) -> None:
        """Close the window of devices of ``k`` whose cycle count reached their endurance: the
        RESET ceiling r_p(V) = a0_p + a1_p·|V| becomes the SET floor a0_n − a1_n·|V|."""
        if k is None:
            hit = np.flatnonzero(((self._phase >> 1) >= self._endurance) & ~self._worn)
        else:
            hit = k[((self._phase[k] >> 1) >= self._endurance[k]) & ~self._worn[k]]
        if hit.size:
            self._worn[hit] = True
            self._law[_RESET, _L_A0, hit] = self._law[_SET, _L_A0, hit]
            self._law[_RESET, _L_A1, hit] = -self._law[_SET, _L_A1, hit]

    def _workspace(self, m: int) -> np.ndarray:
        """Scratch rows of at least ``m`` floats (the preallocated ones unless m > size)."""
        return self._work if m <= self._size else np.empty((_W_ROWS, m))

    def _law_work(self, m: int) -> np.ndarray:
        """Scratch for ``m`` gathered switching-law records."""
        if m > self._size:
            return np.empty((4, m))
        return self._law_scratch[:4 * m].reshape(4, m)

    def _breakdown(self, k: np.ndarray | None, u, u_max: float, r: np.ndarray | None = None
                   ) -> None:
        """Short every live device of ``k`` whose |I| at |V| = ``u`` (≤ u_max) exceeds
        i_breakdown; ``r``: the devices' resistances if already at hand."""
        if r is None:
            r = self._r if k is None else self._r[k]
        if r.size == 0:
            return
        i_bd = self._params.i_breakdown_a
        if self._iv(u_max, float(r.min())) <= i_bd:  # |I| rises with |V| and with 1/R
            return
        hit = self._iv(u, r) > i_bd
        hit &= self._live if k is None else self._live[k]
        if hit.any():
            dead = np.flatnonzero(hit) if k is None else k[hit]
            self._broken[dead] = True
            self._r[dead] = self._params.r_short_ohm
            self._refresh()

    def _form(self, k: np.ndarray | None, u, dt: float) -> None:
        """Accumulate forming time on virgin devices of ``k`` at |V| = ``u`` ≥ their V_form."""
        m = (self._virgin_live if k is None else self._virgin_live[k]) & (
            u >= (self._v_form if k is None else self._v_form[k]))
        if not m.any():
            return
        kk = np.unique(np.flatnonzero(m) if k is None else k[m])
        self._form_time[kk] += dt
        done = kk[self._form_time[kk] >= self._params.t_form_s * (1 - _FORM_TIME_RTOL)]
        if done.size:
            self._formed[done] = True
            self._r[done] = self._r_formed[done]
            if self._drifts:
                self._r_prog[done] = self._r_formed[done]
                self._t_prog[done] = self._age_clock
            self._refresh()

    # ------------------------------------------------------------------ retention
    def age(self, dt_s) -> None:
        """Let ``dt_s`` s pass without bias: every device ages by ``dt_s``, and each formed
        normal device takes R = r_programmed·(1 + age/t0)^ν (a no-op on R when ν = 0)."""
        dt = self._check_dt("age", dt_s)
        if dt == 0:
            return
        self._age_clock += dt
        if not self._drifts:
            return
        nu, t0 = self._params.retention_nu, self._params.retention_t0_s
        k = None if self._all_plain else np.flatnonzero(self._plain)
        if k is None:
            drift = self._age_clock - self._t_prog
            drift /= t0
            drift += 1.0
            np.power(drift, nu, out=drift)
            np.multiply(self._r_prog, drift, out=self._r)
        elif k.size:
            drift = (1.0 + (self._age_clock - self._t_prog[k]) / t0) ** nu
            self._r[k] = self._r_prog[k] * drift

    # ------------------------------------------------------------------ bookkeeping
    def _refresh(self) -> None:
        """Recompute the derived masks after any state event (forming, breakdown, fault)."""
        self._live = (self._fault == NORMAL) & ~self._broken  # can break down
        self._plain = self._live & self._formed  # the switching law acts
        self._virgin_live = self._live & ~self._formed & self._formable  # can form
        self._all_plain = bool(self._plain.all())
        self._n_virgin = int(np.count_nonzero(self._virgin_live))

    def _plain_subset(self, k: np.ndarray | None) -> np.ndarray | None:
        if k is None:
            return None if self._all_plain else np.flatnonzero(self._plain)
        return k[self._plain[k]]
