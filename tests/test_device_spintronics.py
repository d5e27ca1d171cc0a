"""RF spintronic device models against closed forms (Ross et al. arXiv 2211.03659, the universal
auto-oscillator) and their statistics with fixed seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mocks.devices.spintronics import (
    CHAIN_OUTPUT,
    K_SD_ROSS,
    STNO_BIAS,
    RfCircuit,
    RfCircuitParams,
    analyzer_trace,
    chain_signs,
    chain_voltage,
    k_sd,
    spin_diode_shape,
    stno_output,
)


def test_ksd_is_the_authors_value():
    # (ΔR/R)(1/I_th)·tan(π/4)/(8√2) with ΔR/R = 1, I_th = 10 µA: 8.84 mV per µW
    assert K_SD_ROSS == pytest.approx(1 / 10e-6 / (8 * math.sqrt(2)))
    assert K_SD_ROSS * 1e-6 == pytest.approx(8.84e-3, rel=1e-3)
    assert k_sd(0.5, 20e-6) == pytest.approx(K_SD_ROSS / 4)


def test_antisymmetric_lorentzian_closed_forms():
    f_r, alpha = 80e6, 0.01
    gamma = alpha * f_r
    # the authors' G: zero on resonance, ±K_SD at δ = ±αf_r, -2δ/(αf_r) slope near resonance
    assert spin_diode_shape(f_r, f_r, alpha) == 0
    assert spin_diode_shape(f_r + gamma, f_r, alpha) == pytest.approx(1.0)
    assert spin_diode_shape(f_r - gamma, f_r, alpha) == pytest.approx(-1.0)
    d = 1e-3 * gamma
    assert spin_diode_shape(f_r - d, f_r, alpha) == pytest.approx(-2 * d / gamma, rel=1e-5)
    f = np.linspace(f_r - 20 * gamma, f_r + 20 * gamma, 4001)
    ross = 2 * alpha * f_r * (f - f_r) / ((alpha * f_r) ** 2 + (f - f_r) ** 2)
    np.testing.assert_allclose(spin_diode_shape(f, f_r, alpha), ross, rtol=1e-12)
    # the symmetric part peaks on resonance with its own weight
    assert spin_diode_shape(f_r, f_r, alpha, sym=0.3, anti=0.0) == pytest.approx(0.3)


def test_chain_voltage_is_the_authors_weighted_sum():
    rng = np.random.default_rng(7)
    res = rng.uniform(40e6, 120e6, (3, 5))          # 3 chains of 5 junctions
    p = rng.uniform(0, 1e-6, (4, 6))                 # a batch of 4, 6 inputs
    f = rng.uniform(40e6, 120e6, (4, 6))
    out = chain_voltage(p, f, res)
    expected = np.zeros((4, 3))
    for b in range(4):
        for j in range(3):
            for i in range(6):
                g = sum((-1) ** k * K_SD_ROSS * 2 * 0.01 * res[j, k] * (f[b, i] - res[j, k])
                        / ((0.01 * res[j, k]) ** 2 + (f[b, i] - res[j, k]) ** 2)
                        for k in range(5))
                expected[b, j] += p[b, i] * g
    np.testing.assert_allclose(out, expected, rtol=1e-10)
    assert chain_voltage(p[0], f[0], res[0]).shape == ()
    np.testing.assert_array_equal(chain_signs(4, -1), [-1, 1, -1, 1])


def test_oscillator_closed_forms_with_the_authors_values():
    # Ross neuron: P = 1.25e-6·p·R·I² (µA, µW), Q = 2, I_th = 10 µA, R = 1 kΩ: 40 µA -> 1 µW
    p0, f, power = stno_output(40e-6, 10e-6, 2.0, 250e6, 40e6, 1.25, 1000.0)
    assert p0 == pytest.approx(0.5) and power == pytest.approx(1.0e-6)
    assert f == pytest.approx(250e6 + 40e6 * 0.5)
    p0, _, power = stno_output(np.array([5e-6, 10e-6]), 10e-6, 2.0, 250e6, 40e6, 1.25, 1000.0)
    assert np.all(p0 == 0) and np.all(power == 0)


def test_analyzer_sees_a_tone_at_its_power_and_integrates_a_line():
    f = np.linspace(99e6, 101e6, 20001)
    cw = analyzer_trace(f, 10e3, [(100e6, 1e-3, 1e-6)])  # a 1 mHz-wide line: a CW tone
    assert cw.max() == pytest.approx(1e-6, rel=1e-4)
    wide = analyzer_trace(f, 10e3, [(100e6, 50e3, 2e-6)])
    enbw = 10e3 / (2 * math.sqrt(2 * math.log(2))) * math.sqrt(2 * math.pi)
    # the Lorentzian tails beyond ±1 MHz hold 2/π·atan(25e3/1e6)... of the power
    inside = 1 - 2 / math.pi * math.atan(25e3 / 1e6)
    assert wide.sum() * (f[1] - f[0]) / enbw == pytest.approx(2e-6 * inside, rel=1e-3)


def test_circuit_hidden_parameters_are_seeded():
    a, b = (RfCircuit(9, rng=np.random.default_rng(3)) for _ in range(2))
    c = RfCircuit(9, rng=np.random.default_rng(4))
    np.testing.assert_array_equal(a.f_r0, b.f_r0)
    assert not np.array_equal(a.f_r0, c.f_r0)
    # a geometric grid 40-120 MHz with 0.3 % spread: every junction within 5 sigma of its slot
    grid = np.geomspace(40e6, 120e6, 9)
    assert np.all(np.abs(a.f_r0 / grid - 1) < 5 * 0.003)


def test_junction_voltage_tuning_and_linearity():
    dev = RfCircuit(2, RfCircuitParams(noise_v_rms=0.0), rng=np.random.default_rng(5))
    f_r = dev.resonances()[1]
    dev.set_rf(0, f_r + dev.alpha[1] * f_r, 1e-6, True)
    v1 = dev.voltage_at_current(0.0, 1)
    dev.set_rf(0, f_r + dev.alpha[1] * f_r, 2e-6, True)
    assert dev.voltage_at_current(0.0, 1) == pytest.approx(2 * v1)    # V ∝ P
    assert v1 == pytest.approx(dev.ksd[1] * 1e-6 * (dev.sym[1] / 2 + 1))
    # f_r = f_r0·(1 + κ_I·I)·(1 + H/H_s), each junction on its own bias
    dev.field_mt = 50.0
    dev.set_operating_point(0.02, 20e-6, 1)
    expected = dev.f_r0[1] * (1 + dev.tune_per_a[1] * 20e-6) * (1 + 50.0 / 500.0)
    assert dev.resonances()[1] == pytest.approx(expected)
    assert dev.resonances()[0] == pytest.approx(dev.f_r0[0] * 1.1)
    # an SMU sourcing I on the junction reads I·R plus the rectified voltage at that bias
    v = dev.voltage_at_current(20e-6, 1)
    assert v == pytest.approx(20e-6 * dev.resistance[1] + dev.rectified()[1])
    assert dev.current(v, 1) == pytest.approx(20e-6)


def test_chain_output_and_oscillator_drive():
    dev = RfCircuit(9, RfCircuitParams(stno=True, stno_driven_by_chain=True,
                                       noise_v_rms=0.0, chain_loss_db=3.0),
                    rng=np.random.default_rng(6))
    f_in = np.geomspace(40e6, 120e6, 9)[:3] * 1.004
    for i, f in enumerate(f_in):
        dev.set_rf(i, f, 1e-6, True)
    expected = chain_voltage(np.full(3, 1e-6 * 10 ** -0.3), f_in, dev.resonances(),
                             dev.alpha, dev.ksd, dev.sym, 1.0, dev.signs)
    assert dev.chain_output() == pytest.approx(expected)
    assert dev.voltage_at_current(0.0, CHAIN_OUTPUT) == pytest.approx(expected)
    i = (expected * 1e3 + 11.08) * 3.388e-6
    assert dev.oscillator_current() == pytest.approx(
        min(max(i, dev.stno_i_th), 4 * dev.stno_i_th))
    dev.set_rf(0, f_in[0], 0.0, False)
    assert 0 not in dev.tones


def test_read_noise_statistics():
    """2000 readings at a fixed state: the sample SD is within σ·(1 ± 5/sqrt(2·2000)) (χ²)."""
    dev = RfCircuit(1, RfCircuitParams(noise_v_rms=3e-6), rng=np.random.default_rng(8))
    v = np.array([dev.voltage_at_current(10e-6, 0) for _ in range(2000)])
    assert abs(v.std(ddof=1) / 3e-6 - 1) < 5 / math.sqrt(2 * 2000)
    assert abs(v.mean() - 10e-6 * dev.resistance[0]) < 5 * 3e-6 / math.sqrt(2000)


def test_oscillator_on_its_own_line():
    dev = RfCircuit(0, RfCircuitParams(stno=True), rng=np.random.default_rng(9))
    dev.set_operating_point(0.0, 0.5 * dev.stno_i_th, STNO_BIAS)
    assert dev.emission_lines() == []
    dev.set_operating_point(0.0, 3 * dev.stno_i_th, STNO_BIAS)
    (f, fwhm, power), = dev.emission_lines()
    p0 = 2 / (3 + dev.stno_q)
    assert f == pytest.approx(250e6 + 40e6 * p0)
    assert fwhm == pytest.approx(40e3 * (1 + 2.0 ** 2) / p0)
    assert power == pytest.approx(1.25 * p0 * 1000 * (3 * dev.stno_i_th) ** 2)


@pytest.mark.parametrize("params, match", [
    ({"alpha": 0}, "alpha"), ({"first_sign": 2}, "first_sign"), ({"bogus": 1}, "bogus"),
    ({"gamma_p_deg": 90}, "gamma_p_deg"),
])
def test_bad_parameters_are_named(params, match):
    with pytest.raises(ValueError, match=match):
        RfCircuitParams.from_dict(params)


def test_a_circuit_needs_something():
    with pytest.raises(ValueError, match="junctions or an oscillator"):
        RfCircuit(0)
