"""Stochastic synapse simulators: closed forms (P(x0), 10-90 width, I_c50(t_p), precessional
I_c(t_p), telegraph dwell times) and statistics with fixed seeds.

Statistical tolerances: a count K ~ Binomial(N, p) is checked within 4 standard deviations
sqrt(N·p·(1 − p)) of N·p, a mean of M exponential dwell times within 4·mean/sqrt(M), a sample
std within 4·std/sqrt(2(M − 1)) — each fails a correct model with probability < 1e-4."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mocks.devices.stochastic import (
    DepinningArray,
    DepinningParams,
    DWSynapseArray,
    DWSynapseParams,
    MTJArray,
    MTJParams,
    ic50,
    neel_brown_probability,
)

X0, DX, A = 4.63168, 2.72741, 0.97813


def within_binomial(k: int, n: int, p: float, sigmas: float = 4.0) -> bool:
    return abs(k - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


def bisect(f, lo: float, hi: float, target: float) -> float:
    """The x in [lo, hi] where the increasing f(x) = target."""
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if f(mid) < target else (lo, mid)
    return 0.5 * (lo + hi)


# ------------------------------------------------------------------ domain wall, Ellis et al.
def test_dw_published_closed_forms():
    dw = DWSynapseArray(1)
    p = lambda x: float(dw.switch_probability(x, 1e-4)[0])  # noqa: E731
    assert p(X0) == pytest.approx((1 - A) + A / 2, abs=1e-12)  # 0.511
    assert p(X0) == pytest.approx(0.511, abs=5e-4)
    assert p(1.0) == pytest.approx(1 - A, abs=5e-4)  # floor 0.0219 at low drive
    x10, x50, x90 = (bisect(p, 0.6, 12.0, q) for q in (0.1, 0.5, 0.9))
    # PHYSICS §2.1 derived values: P = 0.1 / 0.5 / 0.9 at 3.736 / 4.615 / 5.428, width 1.69
    assert (x10, x50, x90) == pytest.approx((3.736, 4.615, 5.428), abs=1e-3)
    assert x90 - x10 == pytest.approx(1.69, abs=5e-3)  # quoted to 3 figures
    q = lambda P: (P - (1 - A)) / A  # noqa: E731
    assert x90 - x10 == pytest.approx((math.log(q(.9) / (1 - q(.9)))
                                       - math.log(q(.1) / (1 - q(.1)))) / DX, rel=1e-9)


def test_dw_counts_follow_the_binomial_law():
    dw = DWSynapseArray(1000, rng=np.random.default_rng(11))
    k = dw.switch_counts(X0, 1e-4, 50)
    assert within_binomial(int(k.sum()), 1000 * 50, (1 - A) + A / 2)
    assert k.shape == (1000,) and k.min() >= 0 and k.max() <= 50


def test_dw_reset_write_read_sequence_matches_the_closed_form():
    """The SMU's pulse list path (state stepped pulse by pulse): reset re-injects the wall for
    certain, a read never moves it, a write at x switches with P(x)."""
    dw = DWSynapseArray(1, rng=np.random.default_rng(5))
    n = 4000
    states = dw.run_sequence(np.tile([-1.5, 4.0, 0.1], n), 1e-4, "voltage", 0).reshape(n, 3)
    assert np.all(states[:, 0] == 0)
    assert np.array_equal(states[:, 1], states[:, 2])
    p = float(dw.switch_probability(4.0, 1e-4)[0])
    assert within_binomial(int(states[:, 2].sum()), n, p)


def test_dw_device_to_device_spread():
    m = 20000
    dw = DWSynapseArray(m, DWSynapseParams(x0_std=0.1, dx_std=0.2, a_std=0.005),
                        np.random.default_rng(3))
    h = dw.hidden()
    for name, mean, std in (("x0", X0, 0.1), ("dx", DX, 0.2), ("a", A, 0.005)):
        values = h[name]
        if name == "a":
            values = values[values < 1.0]  # the clip at 1 cuts the upper tail (4.4 sigma: none)
        assert abs(values.mean() - mean) < 4 * std / math.sqrt(m)
        assert abs(values.std(ddof=1) - std) < 4 * std / math.sqrt(2 * (m - 1))
    # per-device drive amplitudes broadcast with the selection
    k = dw.switch_counts(np.linspace(3, 6, m), 1e-4, 1)
    assert k.shape == (m,)


def test_dw_readout_and_bad_parameters():
    dw = DWSynapseArray(2, rng=np.random.default_rng(0))
    assert dw.resistance.tolist() == [1000.0, 1000.0]
    dw.switched[1] = 1
    assert dw.current(0.1).tolist() == pytest.approx([1e-4, 0.1 / 1500])
    with pytest.raises(ValueError, match="'a'"):
        DWSynapseParams(a=1.5)
    with pytest.raises(ValueError, match="unknown dw-synapse parameter 'x1'"):
        DWSynapseParams.from_dict({"x1": 3})


# ------------------------------------------------------------------ thermal depinning
def test_depinning_closed_form_and_reset():
    p = DepinningParams(barrier_std_rel=0, i_dep_std_rel=0)
    track = DepinningArray(1, p, np.random.default_rng(0))
    t = 1e-4
    i50 = p.i_dep_a * (1 - math.log(t * p.attempt_hz / math.log(2)) / p.barrier_kt)
    assert float(track.switch_probability(i50, t)[0]) == pytest.approx(0.5, abs=1e-12)
    expected = 1 - math.exp(-t * p.attempt_hz * math.exp(-p.barrier_kt * (1 - 150e-6 / 200e-6)))
    assert float(track.switch_probability(150e-6, t)[0]) == pytest.approx(expected, rel=1e-12)
    track.switched[0] = 1
    assert track.run_sequence([-150e-6], t, "current", 0).tolist() == [0]


# ------------------------------------------------------------------ MTJ
def _mtj(**kw) -> MTJArray:
    return MTJArray(1, MTJParams(delta_std_rel=0, ic0_std_rel=0, r_p_std_rel=0, **kw),
                    np.random.default_rng(1))


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_mtj_ic50_follows_the_neel_brown_law(beta):
    """I_c50(t_p) = I_c0[1 − (ln(t_p/(τ0 ln 2))/Δ)^(1/β)] over six decades of width."""
    mtj = _mtj(beta=beta)
    for width in (1e-8, 1e-6, 1e-4, 1e-2):
        found = bisect(lambda i, w=width: float(mtj.switch_probability(i, w)[0]), 0.0, 100e-6,
                       0.5)
        expected = 100e-6 * (1 - (math.log(width / (1e-9 * math.log(2))) / 40.0) ** (1 / beta))
        assert found == pytest.approx(expected, rel=1e-9)
        assert float(ic50(width, 40.0, 100e-6, 1e-9, beta)) == pytest.approx(expected, rel=1e-12)


def test_mtj_switching_statistics_at_ic50():
    mtj = MTJArray(4000, MTJParams(delta_std_rel=0, ic0_std_rel=0), np.random.default_rng(2))
    width = 1e-3
    k = mtj.switch_counts(float(ic50(width, 40.0, 100e-6, 1e-9)), width, 10)
    assert within_binomial(int(k.sum()), 40000, 0.5)


def test_mtj_precessional_regime_above_ic0():
    """Sun: P_prec = exp(−(π²Δ/4)·exp(−2(I/I_c0 − 1)t/τ_D)); its 50 % current is
    I_c0(1 + τ*/t) with τ* = τ_D·ln(π/2θ0), θ0 = √(ln 2/Δ) (median initial angle)."""
    mtj = _mtj()
    t, tau_d, delta = 2e-9, 1.1e-9, 40.0
    tau_star = tau_d * math.log(math.pi / (2 * math.sqrt(math.log(2) / delta)))
    i_half = 100e-6 * (1 + tau_star / t)
    assert float(mtj.precessional(i_half, t, 0)) == pytest.approx(0.5, rel=1e-9)
    assert float(mtj.precessional(99e-6, t, 0)) == 0.0
    # total: thermal (barrier gone above I_c0) and precessional as independent channels
    p_th = 1 - math.exp(-t / 1e-9)
    assert float(mtj.switch_probability(i_half, t)[0]) == pytest.approx(
        1 - (1 - p_th) * 0.5, rel=1e-9)
    assert float(mtj.switch_probability(3 * 100e-6, 1e-7)[0]) == pytest.approx(1.0)


def test_mtj_readout_tmr_and_read_disturb():
    mtj = _mtj()
    assert float(mtj.resistance[0]) == 3000.0
    mtj.switched[0] = 1
    assert float(mtj.resistance[0]) == pytest.approx(3000.0 * 2.5)
    # a read current of 0.6 I_c0 for 10 ms disturbs P -> AP with the Néel–Brown probability
    p = float(neel_brown_probability(60e-6, 1e-2, 40.0, 100e-6, 1e-9))
    assert 0.01 < p < 0.99
    many = MTJArray(5000, MTJParams(delta_std_rel=0, ic0_std_rel=0), np.random.default_rng(4))
    many.apply(60e-6, 1e-2, source="current")
    assert within_binomial(int(many.switched.sum()), 5000, p)


def test_superparamagnetic_telegraph_dwell_times():
    """Δ = 3: telegraph switching with mean dwell τ0·exp(Δ(1 ∓ I/I_c0)) in P and in AP."""
    mtj = _mtj(delta=3.0)
    current = 20e-6
    times, states = mtj.telegraph(current, 2e-4, 0)
    dwell = np.diff(np.concatenate([[0.0], times]))[1:]  # drop the first (starts at t = 0)
    left = states[:-1][: dwell.size]  # the state each dwell was spent in, before the switch
    in_p = dwell[left == 0]
    in_ap = dwell[left == 1]
    for sample, sign in ((in_p, -1), (in_ap, +1)):
        expected = 1e-9 * math.exp(3.0 * (1 + sign * current / 100e-6))
        assert sample.size > 1000
        assert abs(sample.mean() - expected) < 4 * expected / math.sqrt(sample.size)
    # the telegraph occupancy of AP matches the rates: P(AP) = 1/(1 + exp(−2ΔI/I_c0))
    occupancy = in_ap.sum() / (in_ap.sum() + in_p.sum())
    assert occupancy == pytest.approx(1 / (1 + math.exp(-2 * 3.0 * 0.2)), abs=0.02)
