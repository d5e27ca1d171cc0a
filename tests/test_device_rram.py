"""Simulated RRAM physics (mocks.devices.rram): closed forms, statistics, faults, seeding.

Statistical tolerances come from the sampling distributions: a mean within z·σ/√N, a variance
within the chi-square bounds (Wilson–Hilferty approximation) or, for non-normal data, within
z·sqrt(Var(s²)). z = 5 unless stated (two-sided p ≈ 6e-7 per check at fixed seeds).
"""

import dataclasses
import math

import numpy as np
import pytest

from mocks.devices.rram import NORMAL, OPEN, SHORT, STUCK, RRAMArray, RRAMParams

Z = 5.0
QUIET = dict.fromkeys(("A_sigma_ln", "t_sigma_ln", "a0_rel_std", "a1_rel_std", "c2c_rel_std",
                       "read_noise_rel", "v_form_std", "r_virgin_sigma_ln"), 0.0)


def quiet(**overrides) -> RRAMParams:
    """Every spread off: all devices share the published parameters."""
    return RRAMParams(**{**QUIET, **overrides})


def rng(seed: int = 1) -> np.random.Generator:
    return np.random.default_rng(seed)


def s_of(amp: float, t: float, v: float) -> float:
    """Published rate s(V) = |A|·(exp(|V|/t) − 1), Ω⁻¹·s⁻¹."""
    return abs(amp) * math.expm1(abs(v) / t)


def chi2_var_bounds(sigma2: float, n: int, z: float = Z) -> tuple[float, float]:
    """Bounds on the sample variance of n normal draws (chi-square, Wilson–Hilferty)."""
    k = n - 1
    c = 2.0 / (9.0 * k)
    lo, hi = ((1 - c + s * z * math.sqrt(c)) ** 3 for s in (-1, 1))
    return sigma2 * lo, sigma2 * hi


def assert_normal_sample(x: np.ndarray, mean: float, sd: float) -> None:
    n = x.size
    assert abs(x.mean() - mean) <= Z * sd / math.sqrt(n)
    lo, hi = chi2_var_bounds(sd**2, n)
    assert lo <= x.var(ddof=1) <= hi


# ----------------------------------------------------------------------------- closed form
@pytest.mark.parametrize("v", [1.5, -1.5])
def test_n_pulses_equal_one_pulse_and_match_closed_form(v):
    p = quiet()
    n, dt = 7, 1e-5
    a = RRAMArray(64, p, rng(), formed=True)
    b = RRAMArray(64, p, rng(), formed=True)
    r0 = a.resistance
    for _ in range(n):
        a.apply(v, dt)
    b.apply(v, n * dt)
    np.testing.assert_allclose(a.resistance, b.resistance, rtol=1e-12)
    # v > 0 SETs (default polarity): model branch n, r_n(Vm) = a0_n + a1_n·Vm with Vm = −v.
    if v > 0:
        r, s = p.a0_n - p.a1_n * v, s_of(p.A_n, p.t_n, v)
    else:
        r, s = p.a0_p - p.a1_p * v, s_of(p.A_p, p.t_p, v)
    expected = np.abs(r - r0) / (1 + n * s * np.abs(r - r0) * dt)
    np.testing.assert_allclose(np.abs(r - a.resistance), expected, rtol=1e-9)
    assert np.all(np.sign(r - a.resistance) == np.sign(r - r0))  # never crossed r(V)


@pytest.mark.parametrize("v", [1.5, -1.5])
def test_updates_with_variability_are_monotone_and_never_cross(v):
    a = RRAMArray(2000, rng=rng(2), formed=True)  # D2D and C2C on
    d = a.device_parameters()
    if v > 0:  # SET: R falls toward r_n(−v); devices already below it must not move
        r, step_sign = d["a0_n"] - d["a1_n"] * v, -1
    else:
        r, step_sign = d["a0_p"] - d["a1_p"] * v, 1
    start = a.resistance
    below = step_sign * (r - start) <= 0  # Heaviside condition fails
    assert not below.all() and (below.any() or v < 0)  # formed R never exceeds r_p
    previous = start
    for _ in range(30):
        a.apply(v, 2e-6)
        now = a.resistance
        assert np.all(step_sign * (now - previous) >= 0)  # monotone
        assert (step_sign * (r - now) >= 0)[~below].all()  # never beyond r(V)
        previous = now
    np.testing.assert_array_equal(previous[below], start[below])
    assert np.all(np.abs(previous - r)[~below] < np.abs(start - r)[~below])


def test_long_pulses_saturate_at_r_of_v():
    p = quiet()
    a = RRAMArray(16, p, rng(), formed=True)
    a.apply(1.5, 1.0)  # distance left ≈ 1/(s·Δt) ≈ 0.06 Ω
    np.testing.assert_allclose(a.resistance, p.a0_n - 1.5 * p.a1_n, atol=0.1)
    a.apply(-2.0, 1.0)
    np.testing.assert_allclose(a.resistance, p.a0_p + 2.0 * p.a1_p, atol=0.1)


# ----------------------------------------------------------------------------- thresholds
def test_reads_and_subthreshold_voltages_never_disturb():
    a = RRAMArray(500, rng=rng(3), formed=True)
    r0 = a.resistance
    for v in (0.5, -0.5, 0.79, -0.79):
        a.apply(v, 1.0)
    np.testing.assert_array_equal(a.resistance, r0)
    a.apply(a.params.v_set_threshold, 1e-3)  # at threshold: switches
    assert np.all(a.resistance <= r0) and np.any(a.resistance < r0)


@pytest.mark.parametrize("polarity", [1, -1])
def test_polarity_sets_and_resets(polarity):
    p = quiet(set_polarity=polarity)
    a = RRAMArray(100, p, rng(), formed=True)
    r0 = a.resistance
    a.apply(1.5 * polarity, 1e-4)  # SET polarity: R falls toward r_n = a0_n − 1.5·a1_n
    r_set = a.resistance
    assert np.all(r_set < r0) and np.all(r_set >= p.a0_n - 1.5 * p.a1_n)
    a.apply(-1.5 * polarity, 1e-4)  # RESET polarity: R rises toward r_p = a0_p + 1.5·a1_p
    r_reset = a.resistance
    assert np.all(r_reset > r_set) and np.all(r_reset <= p.a0_p + 1.5 * p.a1_p)


# ----------------------------------------------------------------------------- I–V
def test_current_and_voltage_at_current_are_exact_inverses():
    a = RRAMArray((8, 8), rng=rng(4), formed=True)
    v = np.linspace(-3, 3, 64).reshape(8, 8)
    np.testing.assert_allclose(a.voltage_at_current(a.current(v)), v, rtol=1e-12, atol=1e-15)
    i = np.linspace(-2e-3, 2e-3, 64).reshape(8, 8)
    np.testing.assert_allclose(a.current(a.voltage_at_current(i)), i, rtol=1e-12, atol=1e-18)
    b = a.params.iv_nonlinearity_b
    r = a.resistance
    np.testing.assert_allclose(a.current(2.0), np.sinh(2 * b) / (b * r), rtol=1e-14)
    np.testing.assert_allclose(a.current(-2.0), -a.current(2.0), rtol=0)


def test_zero_nonlinearity_is_exactly_ohmic_and_small_b_tends_to_it():
    ohmic = RRAMArray(50, RRAMParams(iv_nonlinearity_b=0.0), rng(5), formed=True)
    r = ohmic.resistance
    np.testing.assert_array_equal(ohmic.current(0.7), 0.7 / r)
    np.testing.assert_array_equal(ohmic.voltage_at_current(1e-4), 1e-4 * r)
    near = RRAMArray(50, RRAMParams(iv_nonlinearity_b=1e-6), rng(5), formed=True)
    np.testing.assert_allclose(near.current(0.7), 0.7 / r, rtol=1e-11)


# ----------------------------------------------------------------------------- forming
def test_virgin_devices_are_high_resistance_log_normal():
    p = RRAMParams()
    a = RRAMArray(20000, p, rng(6))
    r = a.resistance
    assert not a.formed.any() and r.min() >= 1e6
    assert_normal_sample(np.log(r), math.log(p.r_virgin_median_ohm), p.r_virgin_sigma_ln)


def test_forming_needs_its_voltage_and_the_cumulative_time():
    p = RRAMParams(t_form_s=10e-6)
    a = RRAMArray(200, p, rng(7))
    v_form = a.device_parameters()["v_form"]
    r_virgin = a.resistance
    a.apply(v_form - 0.01, 1.0)  # just below each device's forming voltage: never forms
    a.apply(-(v_form + 1.0), 1.0)  # RESET polarity: never forms
    a.apply(1.5, 1.0)  # the switching law does not act on virgin devices
    assert not a.formed.any()
    np.testing.assert_array_equal(a.resistance, r_virgin)
    for _ in range(9):  # 9 µs of the 10 µs needed
        a.apply(v_form, 1e-6)
    assert not a.formed.any()
    a.apply(v_form, 1e-6)  # the 10th µs: cumulative time reaches t_form
    assert a.formed.all()
    r = a.resistance
    assert np.all((r > 4250) & (r <= 8000))


def test_formed_resistance_is_uniform_on_virtualarc_range_and_predrawn():
    p = RRAMParams()
    formed = RRAMArray(20000, p, rng(8), formed=True)
    r = formed.resistance
    assert formed.formed.all() and np.all((r > 4250) & (r <= 8000))
    width = p.r_formed_max_ohm - p.r_formed_min_ohm
    assert abs(r.mean() - (p.r_formed_min_ohm + width / 2)) <= Z * width / math.sqrt(12 * r.size)
    virgin = RRAMArray(20000, p, rng(8))
    virgin.apply(5.0, 1e-3)  # forms every device; forming ends the call
    np.testing.assert_array_equal(virgin.resistance, r)


def test_unformable_devices_never_form():
    never = RRAMArray(100, RRAMParams(p_unformable=1.0), rng(9))
    never.apply(5.0, 1.0)
    assert not never.formed.any() and (never.state == NORMAL).all()
    p = 0.3
    some = RRAMArray(20000, RRAMParams(p_unformable=p), rng(9), formed=True)
    fraction = 1 - some.formed.mean()
    assert abs(fraction - p) <= Z * math.sqrt(p * (1 - p) / some.size)
    assert np.all(some.resistance[~some.formed] >= 1e6)


# ----------------------------------------------------------------------------- breakdown
def test_current_above_breakdown_shorts_permanently():
    p = RRAMParams()
    a = RRAMArray(3, p, rng(10), formed=True)
    # RESET polarity: R only rises, so |I| is largest at the start of the update.
    v_kill = -float(a.voltage_at_current(1.5 * p.i_breakdown_a, 0))
    v_safe = -float(a.voltage_at_current(0.9 * p.i_breakdown_a, 1))
    a.apply(v_kill, 1e-6, 0)
    a.apply(v_safe, 1e-6, 1)
    assert list(a.state_names()) == ["short", "normal", "normal"]
    assert a.resistance[0] == p.r_short_ohm
    a.clear_fault(0)
    for v in (1.5, -1.5, 5.0):
        a.apply(v, 1e-3, 0)
    assert a.state[0] == SHORT and a.resistance[0] == p.r_short_ohm


def test_breakdown_checked_at_end_of_a_set_update():
    p = quiet()
    a = RRAMArray(200, p, rng(11), formed=True)
    v = 2.9  # SET floor r_n = a0_n − 2.9·a1_n = 3550 Ω: |I| there exceeds i_breakdown
    i_end = math.sinh(v) / (p.a0_n - v * p.a1_n)
    assert i_end > p.i_breakdown_a
    survive_start = np.abs(a.current(v)) < p.i_breakdown_a
    assert survive_start.sum() > 50
    a.apply(v, 1e-3)
    assert np.all(a.state == SHORT)


def test_compliance_clamp_lets_forming_survive_and_no_compliance_kills():
    a = RRAMArray(2, rng=rng(12))
    for v in np.arange(0.1, 3.55, 0.1):  # a source sweep, 1 ms per point
        clamped = min(v, float(a.voltage_at_current(100e-6, 0)))  # 100 µA compliance
        a.apply(clamped, 1e-3, 0)
        a.apply(v, 1e-3, 1)  # no compliance
    assert a.formed.all()
    assert list(a.state_names()) == ["normal", "short"]
    v_form, v_max = a.device_parameters()["v_form"][0], a.max_abs_voltage
    assert v_form <= v_max[0] < v_form + 0.1  # clamped below threshold once formed
    assert v_max[1] == pytest.approx(3.5)


# ----------------------------------------------------------------------------- statistics
def test_read_noise_is_zero_mean_uniform_one_percent():
    a = RRAMArray(1, rng=rng(13), formed=True)
    n, half = 40000, a.params.read_noise_rel
    noise = a.measure_current(np.full(n, 0.5), 0) / a.current(0.5, 0) - 1
    assert np.all(np.abs(noise) <= half * (1 + 1e-9))
    sigma2 = half**2 / 3
    assert abs(noise.mean()) <= 4 * math.sqrt(sigma2 / n)
    var_of_var = (half**4 / 5 - sigma2**2) / n  # (μ4 − σ⁴)/N for U(−a, a)
    assert abs(noise.var() - sigma2) <= Z * math.sqrt(var_of_var)
    np.testing.assert_array_equal(a.current(0.5), a.current(0.5))  # current() is noiseless


def test_device_to_device_spreads_match_their_parameters():
    p = RRAMParams()
    d = RRAMArray(20000, p, rng(14)).device_parameters()
    for name, published in (("A_p", p.A_p), ("A_n", p.A_n)):
        assert np.all(np.sign(d[name]) == np.sign(published))
        assert_normal_sample(np.log(np.abs(d[name])), math.log(abs(published)), p.A_sigma_ln)
    for name, published in (("t_p", p.t_p), ("t_n", p.t_n)):
        assert_normal_sample(np.log(d[name]), math.log(published), p.t_sigma_ln)
    for name, published in (("a0_p", p.a0_p), ("a0_n", p.a0_n)):
        assert_normal_sample(d[name], published, p.a0_rel_std * published)
    assert_normal_sample(d["a1_p"], p.a1_p, p.a1_rel_std * p.a1_p)
    assert_normal_sample(d["v_form"], p.v_form_mean, p.v_form_std)


def test_cycle_to_cycle_spread_of_an_update():
    p = quiet(c2c_rel_std=0.3)
    a = RRAMArray(20000, p, rng(15), formed=True)
    r0, dt, v = a.resistance, 2e-8, 1.5
    r = p.a0_n - p.a1_n * v
    x = s_of(p.A_n, p.t_n, v) * (r0 - r) * dt
    g_expected = x / (1 + x)  # noiseless covered fraction, ≈ 1e-3
    a.apply(v, dt)
    ratio = (r0 - a.resistance) / (r0 - r) / g_expected - 1  # = 0.3·ξ
    assert_normal_sample(ratio, 0.0, p.c2c_rel_std)


# ----------------------------------------------------------------------------- seeding
def test_same_seed_same_devices_and_history_different_seed_differs():
    def run(seed):
        a = RRAMArray((16, 16), rng=rng(seed), formed=True)
        for v in (1.5, -1.2, 1.1):
            a.apply(v, 1e-5)
        return a.resistance, a.device_parameters(), a.measure_current(0.5)

    r1, d1, i1 = run(21)
    r2, d2, i2 = run(21)
    r3, d3, _ = run(22)
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_array_equal(i1, i2)
    for key in d1:
        np.testing.assert_array_equal(d1[key], d2[key])
    assert not np.any(r1 == r3) and not np.any(d1["A_p"] == d3["A_p"])


def test_default_rng_is_seeded():
    np.testing.assert_array_equal(RRAMArray(10).resistance, RRAMArray(10).resistance)


# ----------------------------------------------------------------------------- faults
def test_short_open_stuck_and_clear():
    p = quiet()  # every formed R lies above r_n(1.5 V) = 4250 Ω: a SET pulse lowers it
    a = RRAMArray(4, p, rng(16), formed=True)
    r0 = a.resistance
    a.set_fault(0, "short")
    a.set_fault(1, "open")
    a.set_fault(2, "stuck")
    assert list(a.state) == [SHORT, OPEN, STUCK, NORMAL]
    assert a.resistance[0] == p.r_short_ohm and a.resistance[1] == p.r_open_ohm
    assert abs(a.current(1.0, 1)) < 1e-11
    assert np.isfinite(a.voltage_at_current(1e-3, 1))
    a.apply(1.5, 1e-3)
    r1 = a.resistance
    assert r1[2] == r0[2] and r1[3] < r0[3]  # stuck frozen, normal switched
    a.set_fault(0, "open")  # fault over fault keeps the device's own state underneath
    a.clear_fault([0, 1, 2])
    np.testing.assert_array_equal(a.resistance[:3], r0[:3])
    assert (a.state == NORMAL).all()
    a.apply(1.5, 1e-3)
    assert np.all(a.resistance < r0)
    with pytest.raises(ValueError, match="short, open, stuck"):
        a.set_fault(0, "melted")


def test_max_abs_voltage_records_every_apply():
    a = RRAMArray((2, 3), rng=rng(17), formed=True)
    a.apply(0.3, 1e-3)
    a.apply(-1.2, 1e-3, (0, 1))
    a.apply(np.array([0.5, -0.9]), 1e-3, (slice(None), 2))
    a.apply(2.5, 0.0, 5)  # zero-width hold still counts as applied
    np.testing.assert_array_equal(a.max_abs_voltage, [[0.3, 1.2, 0.5], [0.3, 0.3, 2.5]])


# ----------------------------------------------------------------------------- indexing
def test_index_forms_select_the_same_devices():
    p = quiet()
    shaped, flat, mask = (RRAMArray((4, 5), p, rng(), formed=True) for _ in range(3))
    r0 = shaped.resistance
    sel = np.zeros((4, 5), dtype=bool)
    sel[1, 2] = True
    shaped.apply(1.5, 1e-4, (1, 2))
    flat.apply(1.5, 1e-4, 7)
    mask.apply(1.5, 1e-4, sel)
    for a in (shaped, flat, mask):
        changed = a.resistance != r0
        np.testing.assert_array_equal(changed, sel)
        np.testing.assert_array_equal(a.resistance, shaped.resistance)
    assert shaped.current(0.5, (1, 2)) == shaped.current(0.5)[1, 2]


def test_per_device_voltages_equal_separate_calls():
    p = quiet()
    a, b = (RRAMArray((6, 6), p, rng(), formed=True) for _ in range(2))
    v = rng(18).choice([-1.5, -0.4, 0.0, 0.6, 1.2, 1.5], size=(6, 6))
    a.apply(v, 1e-5)
    for level in np.unique(v):
        b.apply(level, 1e-5, v == level)
    np.testing.assert_array_equal(a.resistance, b.resistance)
    np.testing.assert_array_equal(a.max_abs_voltage, np.abs(v))


def test_apply_rejects_bad_input_before_changing_anything():
    a = RRAMArray((3, 3), rng=rng(19), formed=True)
    r0 = a.resistance
    for v, dt, index in ((1.5, -1e-3, ...), (float("nan"), 1e-3, ...), (np.ones(4), 1e-3, ...),
                         (1.5, 1e-3, (5, 0))):
        with pytest.raises(ValueError):
            a.apply(v, dt, index)
    np.testing.assert_array_equal(a.resistance, r0)
    assert not a.max_abs_voltage.any()


# ----------------------------------------------------------------------------- parameters
def test_params_from_dict_round_trip_and_errors():
    p = RRAMParams.from_dict({"v_set_threshold": 1, "set_polarity": -1, "A_p": 12.0})
    assert p.v_set_threshold == 1.0 and isinstance(p.v_set_threshold, float)
    assert RRAMParams.from_dict(dataclasses.asdict(p)) == p
    with pytest.raises(ValueError, match=r"'v_threshold'.*A_p.*read_noise_rel"):
        RRAMParams.from_dict({"v_threshold": 1.0})
    with pytest.raises(ValueError, match="'t_form_s'"):
        RRAMParams.from_dict({"t_form_s": "10us"})
    with pytest.raises(ValueError, match="'set_polarity'"):
        RRAMParams.from_dict({"set_polarity": 0})
    with pytest.raises(ValueError, match="'A_n'"):
        RRAMParams(A_n=11.483)
    with pytest.raises(ValueError, match="'c2c_rel_std'"):
        RRAMParams(c2c_rel_std=True)
    with pytest.raises(ValueError, match="'r_formed_min_ohm'"):
        RRAMParams(r_formed_min_ohm=9000.0)
