"""HfOx weak-RESET model (mocks.devices.hfox, Majumdar et al. arXiv:2107.06064): published
distributions, the mean trajectory, RTN and 1/f statistics, electrical layer, switches.

Statistical tolerances come from the sampling distributions with z = 5 (two-sided p ≈ 6e-7 per
check at fixed seeds): a mean within z·σ/√N with σ the distribution's own (closed-form)
standard deviation; an empirical quantile within z·sqrt(P(1 − P)/N) of its probability P.
The reference CDFs are computed here with ``statistics.NormalDist`` and ``math``, independently
of the module's inverse CDFs.
"""

import dataclasses
import math
import statistics

import numpy as np
import pytest

from mocks.devices.hfox import WeakResetArray, WeakResetParams, kasdin_taps, norm_ppf
from mocks.devices.rram import OPEN, STUCK

Z = 5.0
PHI = statistics.NormalDist()
P = WeakResetParams()
PW = P.pulse_width_ref_s
RESET_V, SET_V = -1.5, 1.5  # default polarity: negative weak-RESETs, positive SETs


def rng(seed: int = 1) -> np.random.Generator:
    return np.random.default_rng(seed)


def mean_only(**kw) -> WeakResetParams:
    return WeakResetParams(rtn=False, flicker=False, **kw)


def quantile_check(x: np.ndarray, value: float, prob: float) -> None:
    """The fraction of ``x`` at or below ``value`` is ``prob`` within sampling error."""
    frac = np.mean(x <= value)
    assert abs(frac - prob) <= Z * math.sqrt(prob * (1 - prob) / x.size), (frac, prob)


def truncated_normal_moments(mu, sd, lo, hi):
    a, b = (lo - mu) / sd, (hi - mu) / sd
    mass = PHI.cdf(b) - PHI.cdf(a)
    pa, pb = PHI.pdf(a), PHI.pdf(b)
    mean = mu + sd * (pa - pb) / mass
    var = sd**2 * (1 + (a * pa - b * pb) / mass - ((pa - pb) / mass) ** 2)
    return mean, math.sqrt(var), (PHI.cdf(a) + PHI.cdf(b)) / 2


def truncated_expon_moments(loc, scale, hi):
    """Exp(scale) shifted by loc, truncated to [loc, hi] (the lower truncations sit at or below
    loc): mean, sd and median."""
    b = hi - loc
    e = math.exp(-b / scale)
    m1 = scale - b * e / (1 - e)
    m2 = 2 * scale**2 - (b * b + 2 * scale * b) * e / (1 - e)
    median = loc - scale * math.log1p(-(1 - e) / 2)
    return loc + m1, math.sqrt(m2 - m1 * m1), median


# ----------------------------------------------------------------------------- distributions
def test_acklam_inverse_normal_cdf_matches_the_standard_library():
    u = np.concatenate([np.linspace(1e-10, 1 - 1e-10, 20001), [1e-300, 1e-15, 0.02425, 0.97575]])
    ref = np.array([PHI.inv_cdf(x) for x in u])
    np.testing.assert_allclose(norm_ppf(u), ref, rtol=1.2e-9, atol=1e-12)


def test_kasdin_taps_are_the_published_sequence():
    b = kasdin_taps(15)
    np.testing.assert_allclose(b[:5], [1, 0.5, 0.375, 0.3125, 0.2734375], rtol=1e-15)
    gammas = [math.gamma(k + 0.5) / (math.gamma(0.5) * math.factorial(k)) for k in range(15)]
    np.testing.assert_allclose(b, gammas, rtol=1e-12)
    assert round(b.sum(), 2) == 4.33 and round(P.flicker_alpha * 0.5 * b.sum(), 3) == 0.054


def test_drawn_parameters_follow_the_published_truncated_distributions():
    n = 20000
    d = {k: v.ravel() for k, v in WeakResetArray(n, rng=rng(2)).device_parameters().items()}
    for name, lo, hi in (("m1", P.m1_min, P.m1_max), ("t_star", P.t_star_min, P.t_star_max),
                         ("c1", P.c1_min, P.c1_max), ("m2", P.m2_min, P.m2_max),
                         ("r0", P.r0_min_ohm, P.r0_max_ohm)):
        assert d[name].min() >= lo and d[name].max() <= hi
    moments = {
        "m1": (d["m1"], truncated_expon_moments(P.m1_loc, P.m1_scale, P.m1_max)),
        "m2": (d["m2"], truncated_expon_moments(P.m2_loc, P.m2_scale, P.m2_max)),
        "c1": (d["c1"], truncated_normal_moments(P.c1_mean, P.c1_sd, P.c1_min, P.c1_max)),
        "r0": (d["r0"], truncated_normal_moments(P.r0_mean_ohm, P.r0_sd_ohm, P.r0_min_ohm,
                                                 P.r0_max_ohm)),
        "ln_t_star": (np.log(d["t_star"]), truncated_normal_moments(
            math.log(P.t_star_scale), P.t_star_s, math.log(P.t_star_min),
            math.log(P.t_star_max))),
    }
    for name, (x, (mean, sd, median)) in moments.items():
        assert abs(x.mean() - mean) <= Z * sd / math.sqrt(n), name
        if name in ("c1", "r0", "ln_t_star"):  # third item: Φ at the median, in standard units
            mu, s = {"c1": (P.c1_mean, P.c1_sd), "r0": (P.r0_mean_ohm, P.r0_sd_ohm),
                     "ln_t_star": (math.log(P.t_star_scale), P.t_star_s)}[name]
            median = mu + s * PHI.inv_cdf(median)
        quantile_check(x, median, 0.5)
    # the headline numbers: slope ≈ 7e-4/pulse up to t* (median 515 after truncation; 542.5
    # before), then ≈ 3e-5/pulse
    assert round(moments["m1"][1][0], 4) == 0.0007 and round(moments["m2"][1][0], 5) == 0.00003
    t_median = P.t_star_scale * math.exp(P.t_star_s * PHI.inv_cdf(
        (PHI.cdf(math.log(41 / P.t_star_scale) / P.t_star_s)
         + PHI.cdf(math.log(2000 / P.t_star_scale) / P.t_star_s)) / 2))
    assert 514 < t_median < 516
    quantile_check(d["t_star"], t_median, 0.5)
    amp = d["rtn_amplitude"]
    assert amp.min() >= 0 and amp.max() <= P.rtn_amplitude_max
    assert abs(amp.mean() - 0.25) <= Z * (0.5 / math.sqrt(12)) / math.sqrt(n)


def test_without_d2d_every_device_is_the_median_device():
    d = WeakResetArray(5, WeakResetParams(d2d=False), rng(3)).device_parameters()
    big = WeakResetArray(20001, rng=rng(4)).device_parameters()
    for name, x in d.items():
        assert np.all(x == x.flat[0]), name
    assert d["rtn_amplitude"].flat[0] == 0.25
    assert 514 < d["t_star"].flat[0] < 516
    for name in ("m1", "c1", "m2", "r0"):  # the sample median of a large array comes close
        quantile_check(big[name].ravel(), d[name].flat[0], 0.5)


# ----------------------------------------------------------------------------- mean model
def test_mean_trajectory_slopes_before_and_after_the_knee():
    n = 4000
    a = WeakResetArray(n, mean_only(), rng(5))
    d = {k: v.ravel() for k, v in a.device_parameters().items()}
    r_set = d["r0"] * np.exp(d["c1"])
    np.testing.assert_allclose(a.resistance, r_set, rtol=1e-15)
    a.apply(RESET_V, 40 * PW)  # t* ≥ 41: every device still before its knee
    slope = np.log(a.resistance / r_set) / 40
    np.testing.assert_allclose(slope, d["m1"], rtol=1e-9)
    mean, sd, _ = truncated_expon_moments(P.m1_loc, P.m1_scale, P.m1_max)
    assert abs(slope.mean() - mean) <= Z * sd / math.sqrt(n)
    a.apply(RESET_V, 1960 * PW)  # t = 2000 ≥ every t*
    r_2000 = a.resistance
    expected = d["m2"] * 2000 + d["t_star"] * (d["m1"] - d["m2"]) + d["c1"]
    np.testing.assert_allclose(np.log(r_2000 / d["r0"]), expected, rtol=1e-9, atol=1e-12)
    a.apply(RESET_V, 100 * PW)
    slope = np.log(a.resistance / r_2000) / 100
    np.testing.assert_allclose(slope, d["m2"], rtol=1e-6, atol=1e-13)
    mean, sd, _ = truncated_expon_moments(P.m2_loc, P.m2_scale, P.m2_max)
    assert abs(slope.mean() - mean) <= Z * sd / math.sqrt(n)


def test_splitting_a_pulse_counts_the_same():
    p = mean_only()
    whole, single, split = (WeakResetArray(50, p, rng(6)) for _ in range(3))
    whole.apply(RESET_V, 10 * PW)
    for _ in range(10):
        single.apply(RESET_V, PW)
    for _ in range(100):
        split.apply(RESET_V, PW / 10)
    for a in (single, split):
        np.testing.assert_allclose(a.resistance, whole.resistance, rtol=1e-12)
        np.testing.assert_allclose(a.pulse_count, 10.0, rtol=1e-12)


def test_noise_advances_by_whole_pulses_only():
    a = WeakResetArray(4000, WeakResetParams(rtn=False), rng(7))
    a.apply(RESET_V, PW / 2)
    assert not a.log_terms()["w_flicker"].any()  # half a pulse: the register is untouched
    a.apply(RESET_V, PW / 2)  # the first whole pulse: one U(0, 1) sample, weight b_0 = 1
    u = a.log_terms()["w_flicker"].ravel() / P.flicker_alpha
    assert u.min() > 0 and u.max() < 1
    assert abs(u.mean() - 0.5) <= Z * math.sqrt(1 / 12 / u.size)
    for _ in range(18):  # 9 more whole pulses in halves: ten samples in the register
        a.apply(RESET_V, PW / 2)
    w = a.log_terms()["w_flicker"].ravel()
    b = kasdin_taps(P.flicker_taps)
    mean, sd = P.flicker_alpha * 0.5 * b[:10].sum(), P.flicker_alpha * math.sqrt(
        (b[:10] ** 2).sum() / 12)
    assert abs(w.mean() - mean) <= Z * sd / math.sqrt(w.size)


def test_centered_flicker_has_zero_mean():
    a = WeakResetArray(4000, WeakResetParams(rtn=False, flicker_centered=True), rng(8))
    a.apply(RESET_V, 30 * PW)
    w = a.log_terms()["w_flicker"].ravel()
    b = kasdin_taps(P.flicker_taps)
    sd = P.flicker_alpha * math.sqrt((b**2).sum() / 12)
    assert abs(w.mean()) <= Z * sd / math.sqrt(w.size)
    assert abs(w.std() - sd) <= 0.1 * sd


# ----------------------------------------------------------------------------- RTN
@pytest.mark.parametrize("pulses,per_call", [(3000, 3000), (300, 1)])
def test_rtn_occupancy_follows_the_n_step_chain(pulses, per_call):
    """From L, P(H) after n pulses = p/(p+q)·(1 − λⁿ), λ = 1 − p − q; stationary 0.2857."""
    n = 20000 if per_call > 1 else 4000
    a = WeakResetArray(n, WeakResetParams(flicker=False), rng(9))
    for _ in range(pulses // per_call):
        a.apply(RESET_V, per_call * PW)
    p, q = P.rtn_p, P.rtn_q
    expected = p / (p + q) * (1 - (1 - p - q) ** pulses)
    if pulses == 3000:
        assert round(expected, 3) == 0.286
    high = a.rtn_high.ravel()
    assert abs(high.mean() - expected) <= Z * math.sqrt(expected * (1 - expected) / n)
    w = a.log_terms()["w_rtn"].ravel()
    amp = a.device_parameters()["rtn_amplitude"].ravel()
    assert not w[~high].any()
    x = w[high] / amp[high]  # U1·U2: mean 1/4, variance 1/9 − 1/16
    assert x.min() > 0 and x.max() < 1
    assert abs(x.mean() - 0.25) <= Z * math.sqrt(7 / 144 / x.size)


def test_rtn_leaves_the_high_state_at_rate_q():
    """Devices found in H after a long run return to L over the next pulse with P = q·1."""
    a = WeakResetArray(20000, WeakResetParams(flicker=False, rtn_p=0.5, rtn_q=0.25), rng(10))
    a.apply(RESET_V, 200 * PW)  # λ = 0.25: stationary P(H) = 2/3 to machine precision
    before = a.rtn_high.ravel()
    a.apply(RESET_V, PW)
    after = a.rtn_high.ravel()
    left = np.mean(~after[before])
    assert abs(left - 0.25) <= Z * math.sqrt(0.25 * 0.75 / before.sum())


# ----------------------------------------------------------------------------- electrical layer
def test_set_returns_to_the_lrs_and_counts_a_cycle():
    a = WeakResetArray((3, 4), rng=rng(11))
    d = a.device_parameters()
    lrs = d["r0"] * np.exp(d["c1"])
    np.testing.assert_allclose(a.resistance, lrs, rtol=1e-15)
    a.apply(RESET_V, 50 * PW)
    assert np.all(a.resistance != lrs) and np.all(a.pulse_count == 50)
    a.apply(0.99 * P.v_set_threshold, 1.0)  # below the SET threshold: nothing
    assert np.all(a.pulse_count == 50)
    a.apply(P.v_set_threshold, PW)
    np.testing.assert_array_equal(a.resistance, lrs)
    assert not a.pulse_count.any() and not a.rtn_high.any() and np.all(a.cycles == 1)
    for term in a.log_terms()["w_rtn"], a.log_terms()["w_flicker"]:
        assert not term.any()
    a.apply(SET_V, PW)
    assert np.all(a.cycles == 1)  # SET after SET is no cycle


def test_reads_and_subthreshold_voltages_never_disturb():
    a = WeakResetArray(100, rng=rng(12))
    r0 = a.resistance
    for v in (0.2, -0.2, -0.99, 0.99):
        a.apply(v, 1.0)
    np.testing.assert_array_equal(a.resistance, r0)
    np.testing.assert_array_equal(a.max_abs_voltage, 0.99)


@pytest.mark.parametrize("polarity", [1, -1])
def test_polarity(polarity):
    a = WeakResetArray(10, mean_only(set_polarity=polarity), rng(13))
    a.apply(-1.5 * polarity, 5 * PW)
    assert np.all(a.pulse_count == 5)
    a.apply(1.5 * polarity, PW)
    assert not a.pulse_count.any()


def test_current_iv_and_read_noise():
    a = WeakResetArray(1, WeakResetParams(iv_nonlinearity_b=0.5), rng(14))
    r = a.resistance[0]
    assert a.current(0.3, 0) == pytest.approx(math.sinh(0.15) / (0.5 * r), rel=1e-15)
    assert a.voltage_at_current(a.current(0.3, 0), 0) == pytest.approx(0.3, rel=1e-12)
    noise = a.measure_current(np.full(40000, 0.2), 0) / a.current(0.2, 0) - 1
    half = P.read_noise_rel
    assert np.abs(noise).max() <= half * (1 + 1e-9)
    assert abs(noise.mean()) <= Z * half / math.sqrt(3 * noise.size)
    ohmic = WeakResetArray(3, rng=rng(14))
    np.testing.assert_allclose(ohmic.current(0.2), 0.2 / ohmic.resistance, rtol=1e-15)


def test_virgin_devices_form_into_the_lrs():
    a = WeakResetArray(6, rng=rng(15), formed=False)
    assert not a.formed.any() and np.all(a.resistance == P.r_virgin_ohm)
    a.apply(RESET_V, 10 * PW)
    a.apply(P.v_form * 0.99, 1.0)
    assert not a.formed.any() and not a.pulse_count.any()
    a.apply(P.v_form, P.t_form_s / 2, [0, 1])
    a.apply(P.v_form, P.t_form_s / 2, [1, 2])
    assert list(a.formed) == [False, True, False, False, False, False]
    d = a.device_parameters()
    assert a.resistance[1] == d["r0"][1] * math.exp(d["c1"][1])


def test_faults_freeze_devices_and_clear():
    a = WeakResetArray(4, rng=rng(16))
    r0 = a.resistance
    a.set_fault(0, "stuck")
    a.set_fault(1, "open")
    assert list(a.state[:2]) == [STUCK, OPEN] and abs(a.current(1.0, 1)) < 1e-11
    a.apply(RESET_V, 20 * PW)
    assert a.resistance[0] == r0[0] and list(a.pulse_count) == [0, 0, 20, 20]
    a.clear_fault([0, 1])
    np.testing.assert_array_equal(a.resistance[:2], r0[:2])
    a.age(10.0)  # no retention model: nothing changes
    np.testing.assert_array_equal(a.resistance[:2], r0[:2])
    with pytest.raises(ValueError, match="short, open, stuck"):
        a.set_fault(0, "melted")


# ----------------------------------------------------------------------------- switches, seeds
def run(params: WeakResetParams, seed: int = 17):
    a = WeakResetArray((20, 20), params, rng(seed))
    history = []
    for pulses in (3, 7, 14, 1, 40, 200):
        a.apply(RESET_V, pulses * PW)
        history.append(a.resistance)
    return a, np.array(history)


def test_all_switches_off_is_the_mean_only_model():
    _, off = run(WeakResetParams(d2d=False, rtn=False, flicker=False))
    _, mean = run(WeakResetParams(mean_only=True))
    np.testing.assert_array_equal(off, mean)
    assert np.all(mean == mean[:, :1, :1])  # every device the same median device


def test_each_switch_removes_its_own_term_only():
    full, _ = run(P)
    terms = full.log_terms()
    for switch, gone, kept in (("rtn", "w_rtn", "w_flicker"), ("flicker", "w_flicker", "w_rtn"),
                               ("d2d", None, "w_flicker")):
        a, _ = run(dataclasses.replace(P, **{switch: False}))
        t = a.log_terms()
        if gone:
            assert not t[gone].any() and terms[gone].any()
        np.testing.assert_array_equal(t[kept], terms[kept])
        np.testing.assert_array_equal(a.rtn_high, full.rtn_high)
        if switch != "d2d":
            np.testing.assert_array_equal(t["w_mean"], terms["w_mean"])
    ln_r = np.log(full.resistance / full.device_parameters()["r0"])
    np.testing.assert_allclose(ln_r, sum(terms.values()), rtol=1e-12, atol=1e-15)


def test_same_seed_same_history_different_seed_differs():
    _, h1 = run(P, 18)
    _, h2 = run(P, 18)
    _, h3 = run(P, 19)
    np.testing.assert_array_equal(h1, h2)
    assert not np.any(h1[-1] == h3[-1])


def test_params_from_dict_and_errors():
    p = WeakResetParams.from_dict({"rtn": False, "v_reset_threshold": 2, "flicker_taps": 8})
    assert p.v_reset_threshold == 2.0 and isinstance(p.v_reset_threshold, float)
    assert WeakResetParams.from_dict(dataclasses.asdict(p)) == p
    for bad, name in (({"rtn": 1}, "rtn"), ({"flicker_taps": 1.5}, "flicker_taps"),
                      ({"m1_min": 0.01}, "m1_min"), ({"rtn_p": 1.5}, "rtn_p"),
                      ({"set_polarity": 0}, "set_polarity"), ({"walls": 3}, "walls"),
                      ({"pulse_width_ref_s": 0.0}, "pulse_width_ref_s")):
        with pytest.raises(ValueError, match=f"'{name}'"):
            WeakResetParams.from_dict(bad)
    with pytest.raises(TypeError):
        WeakResetArray(3, params={"rtn": False})
    with pytest.raises(ValueError, match="dt"):
        WeakResetArray(3).apply(RESET_V, -1.0)
