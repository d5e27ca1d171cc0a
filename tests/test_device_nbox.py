"""NbOx neuron simulator: closed forms of the electrothermal switch and the relaxation circuit."""

import numpy as np
import pytest

from labctl import spiking
from mocks.devices.nbox import K_B_EV, NbOxNeurons, NbOxParams


def _dc(v_in: float, r_source: float = 0.0):
    return lambda t0, t1: (np.array([t0]), np.array([v_in]), r_source)


def _branches(d: NbOxNeurons, i_max: float = 3e-3):
    """The static I–V split at its folds: (V_th, V_hold, OFF branch (v, i), ON branch (v, i))."""
    i = np.geomspace(1e-8, i_max, 200_001)
    v = d.voltage_at_current(i, 0)
    k_th = int(np.flatnonzero(np.diff(v) < 0)[0])
    k_hold = k_th + int(np.flatnonzero(np.diff(v[k_th:]) > 0)[0])
    return v[k_th], v[k_hold], (v[:k_th + 1], i[:k_th + 1]), (v[k_hold:], i[k_hold:])


def test_static_iv_is_s_shaped_with_the_closed_form_threshold():
    """For R_c = 0 the maximum of V² = ΔT·R(T)/R_th lies where ΔT = k_B·T²/E_a
    (d/dT[(T − T0)·exp(E_a/k_B·T)] = 0), the lower root of that quadratic."""
    p = NbOxParams(r_contact_ohm=0.0)
    d = NbOxNeurons(1, p)
    v_th, v_hold, _, _ = _branches(d, 2e-2)
    assert v_hold < v_th  # negative differential resistance between the folds
    t0, ea = p.t_room_k, p.activation_energy_ev
    r_th = p.r_th_k_per_w + p.r_sub_k_per_w  # DC: the substrate is in steady state
    t_fold = (ea / K_B_EV) * (1 - np.sqrt(1 - 4 * K_B_EV * t0 / ea)) / 2
    r0 = p.r_off_ohm * np.exp(-ea / (K_B_EV * t0))
    expected = np.sqrt((t_fold - t0) * r0 * np.exp(ea / (K_B_EV * t_fold)) / r_th)
    # V is flat at the fold, so the 1e-4-spaced current grid finds its maximum to ≪ 1e-4
    assert v_th == pytest.approx(expected, rel=1e-4)


def test_current_source_and_voltage_source_agree_on_the_off_branch():
    d = NbOxNeurons(1)
    i = np.geomspace(1e-7, 5e-5, 20)
    v = d.voltage_at_current(i, 0)
    assert d.current(v, 0) == pytest.approx(i, rel=1e-6)


def test_tonic_period_equals_the_quasi_static_relaxation_integral():
    """τ_th = 60 ps ≪ the µs circuit: the film follows its static branches, so the period is
    ∫ C dV/(I_s − I_off) up the OFF branch (V_hold → V_th) plus ∫ C dV/(I_on − I_s) down the
    ON branch, I_s = (V_in − V)/R_s, both from the static I–V (no substrate: R_sub = 0)."""
    p = NbOxParams(r_sub_k_per_w=0.0, c_th_j_per_k=1e-16, dv_max_v=1e-3)
    d = NbOxNeurons(1, p)
    v_in = 2.0
    d.set_source(_dc(v_in))
    t = np.arange(0, 1.2e-3, 2e-8)
    spikes = spiking.spike_times(t, d.record(t)["node"][:, 0])
    period = np.diff(spikes[spikes > 2e-4]).mean()
    v_th, v_hold, (v_off, i_off), (v_on, i_on) = _branches(d)
    vv = np.linspace(v_hold, v_th, 20_001)[1:-1]
    i_s = (v_in - vv) / p.r_series_ohm
    quasi_static = (np.trapezoid(p.c_parallel_f / (i_s - np.interp(vv, v_off, i_off)), vv)
                    + np.trapezoid(p.c_parallel_f / (np.interp(vv, v_on, i_on) - i_s), vv))
    # timing error per fold ≤ one step (1 mV at ~1.5e4 V/s ≈ 70 ns), two folds per ~50 µs
    # period: 0.3 %; the finite-τ_th delay at the folds is ~(τ_th²·V/rate)^⅓ ≈ 10 ns: 2 % bound
    assert spikes.size > 15
    assert period == pytest.approx(quasi_static, rel=0.02)
    # in the limit R_on ≪ R_s ≪ R_off this is R_s·C·ln((V_in − V_hold)/(V_in − V_th)); here
    # the OFF leak and the discharge both lengthen it
    assert period > p.r_series_ohm * p.c_parallel_f * np.log((v_in - v_hold) / (v_in - v_th))


def test_subthreshold_leak_is_the_rc_of_the_off_circuit():
    """Input off (open): C discharges through the OFF device alone, τ = R_off·C."""
    p = NbOxParams()
    d = NbOxNeurons(1, p)
    d.v[:] = 0.3  # below threshold: the film stays within 1 K of T_room
    t = np.linspace(0, 400e-6, 4001)
    node = d.record(t)["node"][:, 0]
    tau = -1 / np.polyfit(t, np.log(node), 1)[0]
    # 0.3 V heats the film by R_th·V²/R_off ≈ 1 K, lowering R_d by E_a/(k_B·T²)·1 K ≈ 3 %
    assert tau == pytest.approx(p.r_off_ohm * p.c_parallel_f, rel=0.05)


def test_noise_makes_near_threshold_spiking_irregular_and_is_seeded():
    """Just below the oscillation window the quiet neuron stays silent; the E_a fluctuation
    makes it fire at random times (noise-driven escape, CV2 of the ISIs ≥ 0.3). Far above
    threshold the same noise leaves tonic spiking regular."""
    def spikes(v_in: float, noise: float, seed: int) -> np.ndarray:
        d = NbOxNeurons(1, NbOxParams(noise_rel=noise, noise_tau_s=5e-5, r_sub_k_per_w=0.0),
                        rng=np.random.default_rng(seed))
        d.set_source(_dc(v_in, 50.0))
        t = np.arange(0, 4e-3, 1e-7)
        return spiking.spike_times(t, d.record(t)["node"][:, 0])

    assert spikes(1.5, 0.0, 1).size <= 1
    noisy = spikes(1.5, 0.01, 1)
    assert noisy.size >= 10 and spiking.local_variation(noisy) >= spiking.CV_IRREGULAR
    assert np.array_equal(noisy, spikes(1.5, 0.01, 1))  # same seed, same spikes
    assert not np.array_equal(noisy, spikes(1.5, 0.01, 2))
    regular = spiking.local_variation(spikes(2.5, 0.01, 1))
    assert regular < spiking.CV_IRREGULAR and regular < 0.5 * spiking.local_variation(noisy)


def test_array_of_neurons_matches_single_neurons():
    p = NbOxParams(r_sub_k_per_w=0.0, ea_d2d_rel=0.02, c_th_j_per_k=1e-16, dv_max_v=1e-3)
    many = NbOxNeurons(3, p, rng=np.random.default_rng(5))
    many.set_source(_dc(2.0))
    t = np.arange(0, 3e-4, 2e-8)
    nodes = many.record(t)["node"]
    for k in range(3):
        one = NbOxNeurons(1, p)
        one.ea, one.r0 = many.ea[k:k + 1], many.r0[k:k + 1]
        one.set_source(_dc(2.0))
        single = spiking.spike_times(t, one.record(t)["node"][:, 0])
        shared = spiking.spike_times(t, nodes[:, k])
        # the shared step is the smallest of the three; at 1 mV per step the period moves by
        # ≲ 0.3 % with the step (see the period test), so spike times agree to 0.5 %
        assert shared.size == single.size
        assert np.abs(shared - single).max() < 0.005 * shared.max()


def test_bad_parameters_name_the_key():
    with pytest.raises(ValueError, match="r_series_ohm"):
        NbOxParams.from_dict({"r_series_ohm": -1})
    with pytest.raises(ValueError, match="unknown NbOx parameter 'r_s'"):
        NbOxParams.from_dict({"r_s": 1e3})
