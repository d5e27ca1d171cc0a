"""NbOx neuron bench: simulator closed forms, AWG/scope mocks and drivers, neuron-response."""

import warnings

import numpy as np
import pytest

import labctl
from labctl import spiking
from labctl.station import Station
from mocks.devices.nbox import K_B_EV, NbOxNeurons, NbOxParams

warnings.filterwarnings("ignore", category=FutureWarning)


def test_static_iv_is_s_shaped_with_the_closed_form_turning_point():
    """V(I) rises to a maximum then falls (NDR). For R_c = 0 the maximum of
    V² = ΔT·R(T)/R_th sits where ΔT = k_B·T²/E_a (d/dT[(T − T0)·e^(E_a/kT)] = 0)."""
    p = NbOxParams(r_contact_ohm=0.0)
    d = NbOxNeurons(1, p)
    i = np.geomspace(1e-6, 2e-3, 4000)
    v = d.voltage_at_current(i, 0)
    k = int(np.argmax(v))
    assert 0 < k < i.size - 1 and v[-1] < v[k]  # a maximum, then negative differential R
    r_th = p.r_th_k_per_w + p.r_sub_k_per_w
    t0, ea = p.t_room_k, p.activation_energy_ev
    t_max = (ea / K_B_EV) * (1 - np.sqrt(1 - 4 * K_B_EV * t0 / ea)) / 2
    r0 = p.r_off_ohm * np.exp(-ea / (K_B_EV * t0))
    v_th = np.sqrt((t_max - t0) * r0 * np.exp(ea / (K_B_EV * t_max)) / r_th)
    # grid spacing 0.2 % in I; V is flat at its maximum, so the sampled maximum is within 1e-4
    assert v[k] == pytest.approx(v_th, rel=1e-3)


def _station():
    return Station.load("sim-nbox-neuron", sim=True)


def test_waveform_of_100k_points_costs_one_transaction():
    with _station() as st:
        awg, scope = st.instrument("awg"), st.instrument("scope")
        mock = st.bench.instruments["scope"]
        scope.write(":TIMebase:RANGe 2e-3;:TIMebase:REFerence LEFT;:TIMebase:POSition 0")
        scope.trigger_source, scope.trigger_sweep = "EXT", "NORM"
        awg.configure_pulse_burst(2.0, 0.0, 1e-3, 2e-3, 1)
        scope.single()
        st.wait(1e-3)
        awg.trigger_burst()
        scope.wait_acquired()
        scope.write(":WAVeform:SOURce CHANnel1;:WAVeform:FORMat WORD;:WAVeform:POINts:MODE RAW;"
                    ":WAVeform:POINts 100000")
        before = mock.messages
        scope.write(":WAVeform:DATA?")
        data = scope.read_block()
        assert mock.messages - before == 1
        assert len(data) == 2 * 100_000
        t, v = scope.read_waveform(1, 100_000)
        assert t.size == 100_000 and v.max() > 0.9  # the neuron fired during the step
        assert scope.ask(":SYSTem:ERRor?").startswith("0") and awg.ask("SYST:ERR?")[0] == "0"


def test_stock_pymeasure_drivers_work_against_the_mocks():
    from pymeasure.instruments.agilent.agilent33500 import Agilent33500
    from pymeasure.instruments.keysight.keysightDSOX1102G import KeysightDSOX1102G

    with _station() as st:
        awg = Agilent33500(st.bench.adapter("awg"))
        awg.shape, awg.frequency, awg.amplitude, awg.offset = "PULS", 1e3, 1.0, 0.5
        awg.burst_state, awg.burst_ncycles, awg.output = True, 3, True
        awg.data_arb("ramp", range(-100, 100, 20), data_format="DAC")
        assert (awg.shape, awg.burst_ncycles, awg.output) == ("PULS", 3, True)
        assert awg.amplitude == pytest.approx(1.0)
        scope = KeysightDSOX1102G(st.bench.adapter("scope"))
        scope.timebase_range = 1e-3
        assert scope.timebase["MAIN:RANG"] == pytest.approx(1e-3)
        scope.ch1.scale = 0.2
        assert scope.ch1.current_configuration["RANG"] == pytest.approx(1.6)
        scope.digitize("channel1")
        data, preamble = scope.download_data("channel1", points=1000)
        assert preamble["points"] == data.size == 1000
        for mock in ("awg", "scope"):
            assert not st.bench.instruments[mock].errors


def test_shutdown_leaves_the_generator_off():
    with _station() as st:
        awg = st.instrument("awg")
        awg.configure_pulse_burst(2.0, 0.0, 1e-3, 2e-3, 1)
        st.shutdown()
        mock = st.bench.instruments["awg"]
        assert not mock.ch[1].output and mock.ch[1].function == "DC"


def test_out_of_limit_stimulus_is_refused_before_anything_is_sent():
    with pytest.raises(labctl.errors.ConfigError if hasattr(labctl, "errors") else Exception):
        labctl.run("neuron-response", sim=True, amp_stop=7.0)


@pytest.mark.parametrize("params, behaviour", [
    (dict(mode="rate", amp_start=1.8, amp_stop=2.2, points=3), spiking.TONIC),
    (dict(mode="burst", amp_start=5.0, amp_stop=5.0, points=1), spiking.PHASIC),
    (dict(mode="latency", amp_start=1.65, amp_stop=2.6, points=4, step_duration=1e-3),
     spiking.LATENCY),
    (dict(mode="isi", amp_start=1.55, amp_stop=1.55, points=1, repeats=2, step_duration=5e-3),
     spiking.STOCHASTIC),
])
def test_neuron_response_recognises_the_behaviour(params, behaviour, tmp_path):
    df = labctl.run("neuron-response", sim=True, out=tmp_path, **params)
    assert df["Behaviour"].iloc[-1] == behaviour
    traces = labctl.arrayfile.load_traces(df.attrs["results_file"])
    assert any(name.endswith("_node") for name in traces)
