"""Crossbar (mocks.devices.crossbar) and the RRAM retention / endurance extensions: closed forms
with fixed seeds.

Tolerances: exact identities are checked to rounding (rtol 1e-12, or 1e-9 where a linear solve
or a power law sits in between); statistical checks use z = 5 on the sampling distribution
(a mean within z·σ/√N).
"""

import math

import numpy as np
import pytest

from mocks.clock import VirtualClock
from mocks.devices.crossbar import Crossbar
from mocks.devices.hfox import WeakResetArray, WeakResetParams
from mocks.devices.rram import OPEN, RRAMArray, RRAMParams

Z = 5.0
QUIET = dict.fromkeys(("A_sigma_ln", "t_sigma_ln", "a0_rel_std", "a1_rel_std", "c2c_rel_std",
                       "read_noise_rel", "v_form_std", "r_virgin_sigma_ln"), 0.0)


def quiet(**overrides) -> RRAMParams:
    """Every spread and the read noise off, ohmic I–V: closed forms hold exactly."""
    return RRAMParams(**{**QUIET, "iv_nonlinearity_b": 0.0, **overrides})


def rng(seed: int = 1) -> np.random.Generator:
    return np.random.default_rng(seed)


def xbar(shape=(6, 5), params=None, seed=1, clock=None) -> Crossbar:
    return Crossbar(RRAMArray(shape, params or quiet(), rng(seed), formed=True), clock=clock)


def s_of(amp: float, t: float, v: float) -> float:
    """Published rate s(V) = |A|·(exp(|V|/t) − 1), Ω⁻¹·s⁻¹."""
    return abs(amp) * math.expm1(abs(v) / t)


# ----------------------------------------------------------------------------- driven lines
def test_driven_lines_apply_exactly_the_device_voltages():
    """No floating line: one devices.apply with V = row_v − col_v (C2C and D2D on)."""
    a = Crossbar(RRAMArray((8, 7), rng=rng(2), formed=True))
    b = RRAMArray((8, 7), rng=rng(2), formed=True)
    row_v, col_v = rng(3).uniform(-0.8, 0.8, 8), rng(4).uniform(-0.8, 0.8, 7)
    for scale in (1.0, 1.5, -1.5):
        a.apply(scale * row_v, scale * col_v, 1e-5)
        b.apply(np.subtract.outer(scale * row_v, scale * col_v), 1e-5)
    a.apply(np.full(8, 0.7), np.full(7, -0.6), 1e-5)  # uniform: the scalar path
    b.apply(0.7 - (-0.6), 1e-5)
    np.testing.assert_array_equal(a.devices.resistance, b.resistance)
    np.testing.assert_array_equal(a.devices.max_abs_voltage, b.max_abs_voltage)


def test_line_currents_sum_device_currents_and_conserve_charge():
    x = Crossbar(RRAMArray((5, 4), rng=rng(5), formed=True))  # b = 1: non-linear I–V
    row_v, col_v = np.array([0.3, -0.2, 0.1, 0.0, 0.25]), np.array([0.0, 0.1, -0.05, 0.2])
    i = x.currents(row_v, col_v, noisy=False)
    np.testing.assert_allclose(i, x.devices.current(row_v[:, None] - col_v[None, :]), rtol=1e-15)
    row_in, col_out = x.line_currents(row_v, col_v, noisy=False)
    np.testing.assert_allclose(row_in, i.sum(axis=1), rtol=1e-15)
    np.testing.assert_allclose(col_out, i.sum(axis=0), rtol=1e-15)
    assert math.isclose(row_in.sum(), col_out.sum(), rel_tol=1e-12)


# ----------------------------------------------------------------------------- floating lines
def test_float_solve_satisfies_kcl_on_every_floating_line():
    x = xbar((9, 7), quiet(A_sigma_ln=0.3, a0_rel_std=0.3), seed=6)
    x.devices.apply(rng(7).choice([-2.0, 1.5], size=(9, 7)), 1e-3)  # a mix of HRS and LRS
    x.devices.set_fault((4, 2), "short")
    x.devices.set_fault((1, 1), "open")
    row_v = np.array([0.5, np.nan, -0.2, np.nan, np.nan, 0.1, np.nan, np.nan, np.nan])
    col_v = np.array([np.nan, 0.0, np.nan, 0.3, np.nan, np.nan, np.nan])
    i = x.currents(row_v, col_v, noisy=False)
    scale = np.abs(i).sum()
    np.testing.assert_allclose(i.sum(axis=1)[np.isnan(row_v)], 0.0, atol=1e-12 * scale)
    np.testing.assert_allclose(i.sum(axis=0)[np.isnan(col_v)], 0.0, atol=1e-12 * scale)
    row_in, col_out = x.line_currents(row_v, col_v, noisy=False)
    assert not row_in[np.isnan(row_v)].any() and not col_out[np.isnan(col_v)].any()
    assert math.isclose(row_in.sum(), col_out.sum(), rel_tol=1e-9)
    # transposed problem (more floating columns than rows) goes the other way round
    row_w = np.where(np.isnan(row_v), np.linspace(-0.3, 0.3, 9), np.nan)
    j = x.currents(row_w, np.full(7, np.nan), noisy=False)
    assert abs(j.sum(axis=0)).max() <= 1e-12 * np.abs(j).sum()
    assert abs(j.sum(axis=1)[np.isnan(row_w)]).max() <= 1e-12 * np.abs(j).sum()


def test_two_by_two_float_read_is_the_series_sneak_closed_form():
    """Row 0 at V, column 0 at 0, row 1 and column 1 floating: the sneak path is
    (0,1) → (1,1) → (1,0) in series, so I = V/R00 + V/(R01 + R11 + R10)."""
    x = xbar((2, 2), seed=8)
    r = x.devices.resistance
    v = 0.4
    expected = v / r[0, 0] + v / (r[0, 1] + r[1, 1] + r[1, 0])
    assert math.isclose(x.read_device(0, 0, v, "float"), expected, rel_tol=1e-12)
    assert math.isclose(x.read_device(0, 0, v, "ground"), v / r[0, 0], rel_tol=1e-12)


def test_hrs_device_among_lrs_reads_high_under_float_and_exact_under_ground():
    x = xbar((8, 8), seed=9)
    d = x.devices
    d.apply(2.0, 1.0)  # every device SET to r_n(2 V) = 4 kΩ
    d.apply(-2.5, 1.0, (3, 5))  # one device RESET to r_p(2.5 V) = 10.25 kΩ
    r = d.resistance
    assert r[3, 5] > 2.5 * r.max(where=np.arange(64).reshape(8, 8) != 29, initial=0)
    vread = 0.2
    exact = vread / r[3, 5]
    floated = x.read_device(3, 5, vread, "float")
    assert math.isclose(x.read_device(3, 5, vread, "ground"), exact, rel_tol=1e-12)
    assert floated > 3 * exact  # sneak paths through the LRS neighbours dominate
    # half-biased schemes sit in between: the unselected rows leak into the sensed column
    half, third = (x.read_device(3, 5, vread, b) for b in ("v/2", "v/3"))
    col = np.delete(vread / r[:, 5], 3)
    assert math.isclose(half, exact + col.sum() / 2, rel_tol=1e-12)
    assert math.isclose(third, exact + col.sum() / 3, rel_tol=1e-12)


# ----------------------------------------------------------------------------- whole-array reads
@pytest.mark.parametrize("bias", ["v/2", "v/3", "ground"])
def test_read_all_equals_single_reads(bias):
    x = Crossbar(RRAMArray((5, 6), RRAMParams(read_noise_rel=0.0), rng(11), formed=True))
    x.devices.apply(rng(12).choice([-2.0, 1.5], size=(5, 6)), 1e-3)
    single = np.array([[x.read_device(r, c, 0.3, bias) for c in range(6)] for r in range(5)])
    np.testing.assert_allclose(x.read_all(0.3, bias), single, rtol=1e-12)
    for r in range(5):
        np.testing.assert_allclose(x.read_row(r, 0.3, bias), single[r], rtol=1e-12)


def test_float_whole_array_read_has_no_sneak_current():
    """Row r at vread, every column sensed at 0: the floating rows settle at 0 V."""
    x = xbar((6, 6), seed=13)
    expected = 0.3 / x.devices.resistance
    np.testing.assert_allclose(x.read_all(0.3, "float"), expected, rtol=1e-12)
    np.testing.assert_allclose(x.read_row(2, 0.3, "float"), expected[2], rtol=1e-12)
    row_v = np.full(6, np.nan)
    row_v[2] = 0.3
    i = x.currents(row_v, np.zeros(6), noisy=False)
    np.testing.assert_allclose(i[2], expected[2], rtol=1e-12)
    assert np.abs(np.delete(i, 2, axis=0)).max() < 1e-15


def test_noisy_reads_carry_the_device_read_noise():
    x = Crossbar(RRAMArray((40, 50), rng=rng(14), formed=True))  # ±1 % uniform
    quiet_read = x.read_all(0.2, "float", noisy=False)
    ratio = x.read_all(0.2, "float") / quiet_read - 1
    a = x.devices.params.read_noise_rel
    assert np.abs(ratio).max() <= a * (1 + 1e-9)
    assert abs(ratio.mean()) <= Z * a / math.sqrt(3 * ratio.size)
    assert x.read_device(3, 4, 0.2, "v/2") != x.read_device(3, 4, 0.2, "v/2")


# ----------------------------------------------------------------------------- pulses, disturb
def test_half_select_disturb_under_v2_follows_the_closed_form_and_v3_spares_it():
    """Pulse device (2, 3) with 2.1 V, n times: under v/2 its row and column see 1.05 V (above
    the 0.8 V threshold) and follow the exact n-pulse form; under v/3 they see 0.7 V and the
    rest −0.7 V (both below threshold) and nothing but the selected device moves."""
    p = quiet()
    n, width, amp = 6, 1e-5, 2.1
    for bias in ("v/2", "v/3"):
        x = xbar((5, 6), p, seed=15)
        r0 = x.devices.resistance
        for _ in range(n):
            x.pulse(2, 3, amp, width, bias)
        r = x.devices.resistance
        sel = np.zeros((5, 6), dtype=bool)
        sel[2, 3] = True
        half = np.zeros((5, 6), dtype=bool)
        half[2, :] = half[:, 3] = True
        half &= ~sel
        for mask, v in ((sel, amp), (half, amp / 2)):
            if bias == "v/3" and v < amp:
                continue
            floor = p.a0_n - p.a1_n * v
            s = s_of(p.A_n, p.t_n, v)
            expected = floor + (r0 - floor) / (1 + n * s * (r0 - floor) * width)
            np.testing.assert_allclose(r[mask], expected[mask], rtol=1e-9)
        untouched = ~(sel | half) if bias == "v/2" else ~sel
        np.testing.assert_array_equal(r[untouched], r0[untouched])
        stress, disturb = x.stress_time, x.disturb_time
        biased = sel | half if bias == "v/2" else np.ones((5, 6), dtype=bool)
        np.testing.assert_allclose(stress, np.where(biased, n * width, 0.0), rtol=1e-12)
        np.testing.assert_allclose(disturb, np.where(biased & ~sel, n * width, 0.0), rtol=1e-12)


@pytest.mark.parametrize("bias,expected_v", [
    ("v/2", lambda a: [[a, a / 2], [a / 2, 0.0]]),
    ("v/3", lambda a: [[a, a / 3], [a / 3, -a / 3]]),
    ("ground", lambda a: [[a, a], [0.0, 0.0]]),
])
def test_pulse_bias_schemes_put_the_documented_voltages_on_the_devices(bias, expected_v):
    x = xbar((2, 2), seed=16)
    x.pulse(0, 0, 0.6, 1e-6, bias)  # below threshold: only the recorded |V| changes
    np.testing.assert_allclose(x.devices.max_abs_voltage, np.abs(expected_v(0.6)), rtol=1e-12)


def test_float_pulse_disturbs_through_sneak_paths():
    x = xbar((4, 4), seed=17)
    x.pulse(1, 2, 0.6, 1e-6, "float")
    v = x.devices.max_abs_voltage
    assert v[1, 2] == 0.6 and 0 < v[0, 0] < 0.6  # the sneak network carries a fraction of it
    assert np.count_nonzero(x.disturb_time) == 15


def test_whole_array_pulse_is_one_uniform_update_in_every_scheme():
    for bias in ("v/2", "v/3", "ground", "float"):
        x = xbar((4, 3), quiet(c2c_rel_std=0.3), seed=18)
        ref = RRAMArray((4, 3), quiet(c2c_rel_std=0.3), rng(18), formed=True)
        x.pulse(slice(None), [0, 1, 2], 1.5, 1e-5, bias)
        ref.apply(1.5, 1e-5)
        np.testing.assert_array_equal(x.devices.resistance, ref.resistance)
        assert not x.disturb_time.any() and np.all(x.stress_time == 1e-5)


def test_crossbar_drives_weak_reset_devices_too():
    """HfOx: 2.4 V RESET-polarity pulses under v/2 weak-RESET the half-selected devices
    (1.2 V ≥ 1 V); under v/3 (0.8 V) they do not."""
    p = WeakResetParams(rtn=False, flicker=False)
    for bias, moved in (("v/2", 6), ("v/3", 0)):
        x = Crossbar(WeakResetArray((4, 4), p, rng(19)))
        x.pulse(1, 1, -2.4, 3e-6, bias)
        counts = x.devices.pulse_count
        assert counts[1, 1] == pytest.approx(3.0)
        assert np.count_nonzero(counts) - 1 == moved


# ----------------------------------------------------------------------------- retention
def test_retention_drift_is_the_power_law_and_programming_restarts_it():
    p = quiet(retention_nu=0.1, retention_t0_s=2.0)
    a = RRAMArray((4, 5), p, rng(20), formed=True)
    r_prog = a.resistance
    np.testing.assert_array_equal(a.r_programmed, r_prog)
    a.age(3.0)
    a.age(7.0)  # ageing composes: the age is what counts
    np.testing.assert_allclose(a.resistance, r_prog * (1 + 10.0 / 2.0) ** 0.1, rtol=1e-12)
    np.testing.assert_allclose(a.age_s, 10.0)
    a.apply(1.5, 1e-5, (1, slice(None)))  # SET row 1: new programmed R, age 0
    r_new = a.resistance
    np.testing.assert_array_equal(a.r_programmed[1], r_new[1])
    assert np.all(a.age_s[1] == 0) and np.all(a.age_s[0] == 10.0)
    a.age(4.0)
    np.testing.assert_allclose(a.resistance[1], r_new[1] * (1 + 4.0 / 2.0) ** 0.1, rtol=1e-12)
    np.testing.assert_allclose(a.resistance[0], r_prog[0] * (1 + 14.0 / 2.0) ** 0.1, rtol=1e-12)


def test_retention_off_leaves_resistance_alone_and_faulted_devices_do_not_drift():
    a = RRAMArray(10, quiet(), rng(21), formed=True)
    r0 = a.resistance
    a.age(1e6)
    np.testing.assert_array_equal(a.resistance, r0)
    assert np.isnan(a.age_s).all()
    b = RRAMArray(3, quiet(retention_nu=0.2), rng(21), formed=True)
    r0 = b.resistance
    b.set_fault(0, "stuck")
    b.set_fault(1, "open")
    b.age(99.0)
    r = b.resistance
    assert r[0] == r0[0] and b.state[1] == OPEN and r[2] == pytest.approx(r0[2] * 100**0.2)
    b.clear_fault(1)
    b.age(0.0)
    assert b.resistance[1] == r0[1]  # restored; drifts at the next age() call
    b.age(1e-9)
    assert b.resistance[1] == pytest.approx(r0[1] * 100**0.2)


def test_crossbar_ages_devices_in_virtual_time():
    clock = VirtualClock()
    x = xbar((3, 3), quiet(retention_nu=0.1), seed=22, clock=clock)
    r0 = x.devices.resistance
    clock.advance(99.0)
    np.testing.assert_allclose(x.read_all(0.2, "ground"), 0.2 / (r0 * 100**0.1), rtol=1e-12)
    x.pulse(0, 0, 1.5, 1e-5, "v/3")  # reprograms (0, 0) only (half-selected see 0.5 V)
    r1 = x.devices.resistance
    clock.advance(9.0)
    x.read_row(0, 0.2, "ground")
    expected = r0 * 109**0.1
    expected[0, 0] = r1[0, 0] * 10**0.1
    np.testing.assert_allclose(x.devices.resistance, expected, rtol=1e-12)


# ----------------------------------------------------------------------------- endurance
def cycle(a: RRAMArray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n full SET/RESET cycles with saturating pulses; R after the last SET and last RESET."""
    for _ in range(n):
        a.apply(-2.0, 1.0)  # RESET to r_p(2 V)
        a.apply(1.5, 1.0)  # SET to r_n(1.5 V): completes a cycle
    r_set = a.resistance
    a.apply(-2.0, 1.0)
    return r_set, a.resistance


def test_window_collapses_after_exactly_the_median_cycles_without_spread():
    p = quiet(endurance_median_cycles=7, endurance_sigma_ln=0.0)
    a = RRAMArray(20, p, rng(23), formed=True)
    r_set, r_reset = cycle(a, 6)
    assert np.all(a.cycles == 6)
    np.testing.assert_allclose(r_reset, p.a0_p + 2.0 * p.a1_p, atol=0.1)  # window open
    r_set, r_reset = cycle(a, 1)
    assert np.all(a.cycles == 7)
    floor = p.a0_n - 1.5 * p.a1_n
    np.testing.assert_allclose(r_set, floor, atol=0.1)
    # the RESET ceiling is now r_n(2 V) < R: RESET cannot raise R any more
    np.testing.assert_array_equal(r_reset, r_set)
    d = a.device_parameters()
    np.testing.assert_array_equal(d["a0_p"], d["a0_n"])
    np.testing.assert_array_equal(d["endurance"], 7.0)


def test_endurance_is_log_normal_per_device_and_each_device_fails_at_its_own():
    p = quiet(endurance_median_cycles=1e6, endurance_sigma_ln=0.5)
    big = RRAMArray(20000, p, rng(24)).device_parameters()["endurance"]
    assert np.all(big == np.ceil(big))
    x = np.log(big)
    assert abs(x.mean() - math.log(1e6)) <= Z * 0.5 / math.sqrt(x.size)
    p = quiet(endurance_median_cycles=6, endurance_sigma_ln=0.5)
    a = RRAMArray(300, p, rng(25), formed=True)
    endurance = a.device_parameters()["endurance"]
    assert len(np.unique(endurance)) > 3
    for k in range(1, 9):
        _, r_reset = cycle(a, 1)
        worn = endurance <= k
        assert np.all(a.cycles == k)
        assert np.all(r_reset[worn] < p.a0_n) and np.all(r_reset[~worn] > p.a0_p)


def test_new_options_change_neither_the_devices_nor_the_history_of_a_seed():
    def run(**kw):
        a = RRAMArray((6, 6), RRAMParams(**kw), rng(26), formed=True)
        v = rng(27).choice([-1.5, -1.0, 0.3, 1.0, 1.4], size=(6, 6))
        for volts in (1.5, -1.2, v, 1.1, -v):
            a.apply(volts, 1e-5)
        return a.resistance, a.device_parameters()

    r, d = run()
    for kw in ({"retention_nu": 0.1}, {"endurance_median_cycles": 1e3}):
        r2, d2 = run(**kw)
        np.testing.assert_array_equal(r, r2)
        for key in ("A_p", "t_n", "a0_p", "v_form", "r_formed"):
            np.testing.assert_array_equal(d[key], d2[key])


def test_cycles_count_set_after_reset_per_device():
    a = RRAMArray(3, quiet(), rng(28), formed=True)
    a.apply(1.5, 1e-5)  # SET without a RESET before: no cycle
    a.apply(np.array([-1.5, -1.5, 0.0]), 1e-5)
    a.apply(np.array([-1.5, 1.5, 1.5]), 1e-5)
    a.apply(1.5, 1e-5)
    np.testing.assert_array_equal(a.cycles, [1, 1, 0])
    with pytest.raises(ValueError, match="cycles|endurance_median_cycles"):
        RRAMParams(endurance_median_cycles=-1)


# ----------------------------------------------------------------------------- validation
def test_bad_arguments_raise_value_errors_naming_them():
    x = xbar((3, 4), seed=29)
    r0 = x.devices.resistance
    cases = [
        (lambda: x.apply(np.zeros(4), np.zeros(4), 1e-6), "row_v"),
        (lambda: x.apply(np.zeros(3), np.zeros((4, 1)), 1e-6), "col_v"),
        (lambda: x.apply(np.zeros(3), np.zeros(4), -1.0), "dt"),
        (lambda: x.apply(np.full(3, np.inf), np.zeros(4), 1e-6), "row_v"),
        (lambda: x.currents(np.zeros(2), np.zeros(4)), "row_v"),
        (lambda: x.pulse(5, 0, 1.5, 1e-6, "v/2"), "rows"),
        (lambda: x.pulse(0, [0, 9], 1.5, 1e-6, "v/2"), "cols"),
        (lambda: x.pulse(0, 0, float("nan"), 1e-6, "v/2"), "amplitude"),
        (lambda: x.pulse(0, 0, 1.5, 1e-6, "v/4"), "bias"),
        (lambda: x.read_device(3, 0, 0.2, "ground"), "r"),
        (lambda: x.read_device(0, 1.5, 0.2, "ground"), "c"),
        (lambda: x.read_row(0, "high", "ground"), "vread"),
        (lambda: x.read_all(0.2, "open"), "bias"),
        (lambda: Crossbar(RRAMArray(5)), "devices"),
        (lambda: Crossbar(object()), "devices"),
        (lambda: Crossbar(RRAMArray((2, 2)), clock=3.0), "clock"),
    ]
    for call, name in cases:
        with pytest.raises(ValueError, match=rf"\b{name}\b"):
            call()
    np.testing.assert_array_equal(x.devices.resistance, r0)
    assert not x.devices.max_abs_voltage.any()


def test_views_pass_through_to_the_devices():
    x = xbar((3, 4), seed=30)
    assert x.shape == (3, 4) and (x.rows, x.cols) == (3, 4)
    np.testing.assert_allclose(x.conductance, 1 / x.devices.resistance, rtol=1e-15)
    x.devices.set_fault((2, 1), "open")
    assert x.state[2, 1] == OPEN
    assert abs(x.read_device(2, 1, 0.2, "ground")) < 1e-12
