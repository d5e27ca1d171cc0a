"""NbOx neuron bench: simulator closed forms, AWG/scope mocks and drivers, neuron-response."""

import warnings

import numpy as np
import pytest

import labctl
from labctl import spiking
from labctl.station import Station
from mocks.devices.nbox import NbOxNeurons, NbOxParams

warnings.filterwarnings("ignore", category=FutureWarning)


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
    (dict(mode="rate", amp_start=2.0, amp_stop=2.4, points=3), spiking.TONIC),
    (dict(mode="burst", amp_start=5.0, amp_stop=5.0, points=1), spiking.PHASIC),
    (dict(mode="latency", amp_start=1.65, amp_stop=2.6, points=4, step_duration=1e-3),
     spiking.LATENCY),
    (dict(mode="isi", amp_start=1.5, amp_stop=1.5, points=1, repeats=2, step_duration=5e-3),
     spiking.STOCHASTIC),
    (dict(mode="lif"), spiking.LIF),
    (dict(mode="integration", points=4), spiking.INTEGRATION),
])
def test_neuron_response_recognises_each_behaviour(params, behaviour, tmp_path):
    df = labctl.run("neuron-response", sim=True, out=tmp_path, **params)
    assert df["Behaviour"].iloc[-1] == behaviour
    traces = labctl.arrayfile.load_traces(df.attrs["results_file"])
    assert sum(name.endswith("_node") for name in traces) == len(df)


def test_lif_leak_is_the_rc_of_the_circuit(tmp_path):
    """Between pulses the generator sits at 0 V: C leaks through (R_s + 50 Ω) ∥ R_off."""
    df = labctl.run("neuron-response", sim=True, out=tmp_path, mode="lif")
    p = NbOxParams()
    r = 1 / (1 / (p.r_series_ohm + 50.0) + 1 / p.r_off_ohm)
    # the node sits near 0.8 V between pulses, heating the film ~5 K: R_off lower by ≲ 15 %
    assert df["Leak time (s)"].iloc[0] == pytest.approx(r * p.c_parallel_f, rel=0.15)
    assert df["Pulses to fire"].iloc[0] == 2


def test_neuron_iv_finds_the_folds_of_the_static_s_curve(tmp_path):
    df = labctl.run("neuron-iv", sim=True, out=tmp_path)
    d = NbOxNeurons(1)
    i = np.geomspace(1e-6, 1.5e-3, 100_000)
    v = d.voltage_at_current(i)
    k_th = int(np.flatnonzero(np.diff(v) < 0)[0])
    v_hold = v[k_th:].min()
    # 120 log points (6 % apart in I): V is flat at both folds, so a grid point lies within
    # ~(3 %)²·|d²V/d(ln I)²| ≲ 0.5 % of the fold voltage; SMU noise is 50 ppm
    assert df["Threshold voltage (V)"].iloc[-1] == pytest.approx(v[k_th], rel=0.01)
    assert df["Hold voltage (V)"].iloc[-1] == pytest.approx(v_hold, rel=0.01)
    assert df["Hold voltage (V)"].iloc[-1] < df["Threshold voltage (V)"].iloc[-1]
