"""Keysight B2900 driver: pymeasure expected_protocol for every property and method, limits,
shutdown; then the same driver against the mock personality (in-process and TCP), and the mock's
SCPI behaviour (forms, chains, error queue, ranges, channels)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pymeasure.test import expected_protocol

from drivers.keysight_b2900 import KeysightB2900
from labctl.safety import Limits, apply_limits
from mocks.devices.stochastic import DWSynapseArray, MTJArray, MTJParams
from mocks.instruments.keysight_b2900 import KeysightB2900Personality
from mocks.transports import InProcessAdapter, TcpInstrumentServer, TransportFaults


@pytest.mark.parametrize("prop, get_cmd, set_cmd, value, wire", [
    ("source_voltage", ":SOUR1:VOLT?", ":SOUR1:VOLT %s", -1.25, "-1.25"),
    ("source_current", ":SOUR1:CURR?", ":SOUR1:CURR %s", 2e-6, "2e-06"),
    ("triggered_voltage", ":SOUR1:VOLT:TRIG?", ":SOUR1:VOLT:TRIG %s", 5.0, "5"),
    ("triggered_current", ":SOUR1:CURR:TRIG?", ":SOUR1:CURR:TRIG %s", 1e-4, "0.0001"),
    ("pulse_width", ":SOUR1:PULS:WIDT?", ":SOUR1:PULS:WIDT %s", 1e-4, "0.0001"),
    ("pulse_delay", ":SOUR1:PULS:DEL?", ":SOUR1:PULS:DEL %s", 0.5, "0.5"),
    ("compliance_current", ":SENS1:CURR:PROT?", ":SENS1:CURR:PROT %s", 1e-3, "0.001"),
    ("compliance_voltage", ":SENS1:VOLT:PROT?", ":SENS1:VOLT:PROT %s", 2.5, "2.5"),
    ("current_nplc", ":SENS1:CURR:NPLC?", ":SENS1:CURR:NPLC %s", 0.1, "0.1"),
    ("voltage_nplc", ":SENS1:VOLT:NPLC?", ":SENS1:VOLT:NPLC %s", 10, "10"),
    ("trigger_period", ":TRIG1:TIM?", ":TRIG1:TIM %s", 1e-3, "0.001"),
])
def test_float_controls(prop, get_cmd, set_cmd, value, wire):
    with expected_protocol(KeysightB2900, [(set_cmd % wire, None), (get_cmd, wire)]) as smu:
        setattr(smu.ch_1, prop, value)
        assert getattr(smu.ch_1, prop) == pytest.approx(value)


@pytest.mark.parametrize("prop, get_cmd, set_cmd, value, wire", [
    ("source_mode", ":SOUR2:FUNC:MODE?", ":SOUR2:FUNC:MODE %s", "current", "CURR"),
    ("source_shape", ":SOUR2:FUNC:SHAP?", ":SOUR2:FUNC:SHAP %s", "pulse", "PULS"),
    ("voltage_mode", ":SOUR2:VOLT:MODE?", ":SOUR2:VOLT:MODE %s", "list", "LIST"),
    ("current_mode", ":SOUR2:CURR:MODE?", ":SOUR2:CURR:MODE %s", "fixed", "FIX"),
    ("trigger_source", ":TRIG2:SOUR?", ":TRIG2:SOUR %s", "timer", "TIM"),
    ("trigger_count", ":TRIG2:COUN?", ":TRIG2:COUN %s", 300, "300"),
    ("arm_count", ":ARM2:COUN?", ":ARM2:COUN %s", 1000, "1000"),
    ("output_enabled", ":OUTP2?", ":OUTP2 %s", True, "1"),
])
def test_discrete_controls_on_channel_2(prop, get_cmd, set_cmd, value, wire):
    with expected_protocol(KeysightB2900, [(set_cmd % wire, None), (get_cmd, wire)]) as smu:
        setattr(smu.ch_2, prop, value)
        assert getattr(smu.ch_2, prop) == value


@pytest.mark.parametrize("prop, cmd", [
    ("current_compliance_tripped", ":SENS1:CURR:PROT:TRIP?"),
    ("voltage_compliance_tripped", ":SENS1:VOLT:PROT:TRIP?"),
])
def test_tripped_flags(prop, cmd):
    with expected_protocol(KeysightB2900, [(cmd, "1"), (cmd, "0")]) as smu:
        assert getattr(smu.ch_1, prop) is True
        assert getattr(smu.ch_1, prop) is False


def test_list_points_and_measure():
    with expected_protocol(KeysightB2900, [
        (":SOUR1:LIST:VOLT:POIN?", "3"),
        (":MEAS:VOLT? (@1);:MEAS:CURR? (@1)", "+1.000000E-01;+1.000000E-04"),
    ]) as smu:
        assert smu.ch_1.list_points == 3
        assert smu.ch_1.measure() == (pytest.approx(0.1), pytest.approx(1e-4))


@pytest.mark.parametrize("prop, value", [
    ("source_voltage", 211), ("source_current", -3.1), ("pulse_width", 5e-6),
    ("compliance_current", 1e-10), ("compliance_voltage", 0.01), ("pulse_delay", -1),
    ("trigger_count", 0), ("arm_count", 100_001), ("source_mode", "power"),
])
def test_controls_reject_out_of_range(prop, value):
    with expected_protocol(KeysightB2900, []) as smu:
        with pytest.raises(ValueError):
            setattr(smu.ch_1, prop, value)


def test_chip_limits_narrow_every_source_setter_before_writing():
    with expected_protocol(KeysightB2900, []) as smu:
        applied = apply_limits(smu, Limits(voltage=2.0, current=1e-3, pulse_width=1e-3))
        assert applied["source_voltage"] == [-2.0, 2.0]
        assert applied["pulse_width"] == [10e-6, 1e-3]
        for prop, bad in (("source_voltage", 2.5), ("triggered_voltage", -2.1),
                          ("source_current", 2e-3), ("compliance_current", 2e-3),
                          ("compliance_voltage", 3.0), ("pulse_width", 2e-3)):
            with pytest.raises(ValueError, match="outside the limit"):
                setattr(smu.ch_2, prop, bad)
        with pytest.raises(ValueError, match="outside the limit"):
            smu.ch_1.pulse_list([-1.0, 2.5, 0.1], 1e-4)
        with pytest.raises(ValueError, match="pulse_width"):
            smu.ch_1.pulse_list([-1.0, 1.5, 0.1], 5e-3)


PULSE_SETUP = (":SOUR1:FUNC:MODE VOLT;:SOUR1:FUNC:SHAP PULS;:SOUR1:VOLT 0;:SOUR1:VOLT:MODE LIST;"
               ":SOUR1:LIST:VOLT -1.5,5,0.1;:SOUR1:PULS:DEL 0;:SOUR1:PULS:WIDT 0.0001;"
               ":SENS1:CURR:PROT 0.01;:TRIG1:SOUR AINT;:TRIG1:COUN 3;:ARM1:COUN 2;"
               ":FORM:ELEM:SENS VOLT,CURR,TIME;:INIT (@1)")


def test_pulse_list_is_three_transactions():
    reply = ",".join(f"{v},{i},{t}" for v, i, t in
                     [(-1.5, -1.5e-3, 1e-4), (5, 3.3e-3, 2e-4), (0.1, 6.6e-5, 3e-4)] * 2)
    with expected_protocol(KeysightB2900, [(PULSE_SETUP, None), ("*OPC?", "1"),
                                           (":FETC:ARR? (@1)", reply)]) as smu:
        data = smu.ch_1.pulse_list([-1.5, 5.0, 0.1], 1e-4, count=2, compliance=0.01)
    assert data["VOLT"].tolist() == [-1.5, 5, 0.1] * 2
    assert data["CURR"][1] == pytest.approx(3.3e-3)


def test_pulse_list_current_source_with_timer_and_bad_arguments():
    setup = (":SOUR1:FUNC:MODE CURR;:SOUR1:FUNC:SHAP PULS;:SOUR1:CURR 0;:SOUR1:CURR:MODE LIST;"
             ":SOUR1:LIST:CURR -0.00025,7e-05,1e-05;:SOUR1:PULS:DEL 0;:SOUR1:PULS:WIDT 0.001;"
             ":SENS1:VOLT:PROT 2;:TRIG1:SOUR TIM;:TRIG1:TIM 0.002;:TRIG1:COUN 3;:ARM1:COUN 1;"
             ":FORM:ELEM:SENS VOLT,CURR,TIME;:INIT (@1)")
    with expected_protocol(KeysightB2900, [(setup, None), ("*OPC?", "1"),
                                           (":FETC:ARR? (@1)", "1,2,3," * 2 + "1,2,3")]) as smu:
        data = smu.ch_1.pulse_list([-250e-6, 70e-6, 10e-6], 1e-3, source="current",
                                   compliance=2.0, period=2e-3)
        assert data["TIME"].tolist() == [3, 3, 3]
        with pytest.raises(ValueError, match="2500"):
            smu.ch_1.pulse_list(np.zeros(2501), 1e-4)
        with pytest.raises(ValueError, match="100000"):
            smu.ch_1.pulse_list([0.0, 0.1], 1e-4, count=50_001)
        with pytest.raises(ValueError, match="'power'"):
            smu.ch_1.pulse_list([0.1], 1e-4, source="power")


def test_shutdown_aborts_and_switches_every_channel_off():
    off = (":SOUR{c}:VOLT:MODE FIX;:SOUR{c}:CURR:MODE FIX;:SOUR{c}:FUNC:SHAP DC;"
           ":SOUR{c}:VOLT 0;:SOUR{c}:CURR 0;:OUTP{c} 0")
    with expected_protocol(KeysightB2900, [(":ABOR", None), (off.format(c=1), None),
                                           (off.format(c=2), None)]) as smu:
        smu.shutdown()
        assert smu.isShutdown
    with expected_protocol(KeysightB2900, [(":ABOR", None), (off.format(c=1), None)],
                           channels=1) as smu:
        smu.shutdown()


def test_min_pulse_width_by_model():
    assert KeysightB2900.min_pulse_width("Keysight Technologies,B2901A,MY1,1") == 50e-6
    assert KeysightB2900.min_pulse_width("Keysight Technologies,B2912A,MY1,1") == 10e-6
    assert KeysightB2900.min_pulse_width("Keysight Technologies,B2999Z,MY1,1") == 10e-6


def test_reset():
    with expected_protocol(KeysightB2900, [("*RST;*CLS", None)]) as smu:
        smu.reset()


# ------------------------------------------------------------------ against the mock
@pytest.fixture
def mock():
    return KeysightB2900Personality(device=DWSynapseArray(1, rng=np.random.default_rng(0)),
                                    rng=np.random.default_rng(1))


def driver(personality) -> KeysightB2900:
    return KeysightB2900(InProcessAdapter(personality, TransportFaults()))


def test_driver_against_mock_pulse_list_and_shutdown(mock):
    smu = driver(mock)
    assert smu.id.startswith("Keysight Technologies,B2912A")
    smu.ch_1.compliance_current = 0.02
    assert smu.ch_1.compliance_current == pytest.approx(0.02)
    before = mock.messages
    data = smu.ch_1.pulse_list([-1.5, 4.63168, 0.1], 1e-4, count=2000)
    assert mock.messages - before == 3
    r = (data["VOLT"] / data["CURR"]).reshape(2000, 3)
    assert np.allclose(r[:, 0], 1000, rtol=0.02)  # reset state during the reset pulse
    switched = r[:, 2] > 1250
    p = (1 - 0.97813) + 0.97813 / 2
    assert abs(switched.sum() - 2000 * p) < 4 * np.sqrt(2000 * p * (1 - p))
    assert np.all(np.diff(data["TIME"]) > 0)
    assert mock.clock.now == pytest.approx(6000 * (1e-4 + 20e-6))
    assert smu.check_errors() == []
    smu.shutdown()
    assert mock.ch[1].output is False and mock.ch[1].level["VOLT"] == 0.0


def test_mock_compliance_clamps_the_device_and_is_reported():
    mtj = MTJArray(1, MTJParams(), np.random.default_rng(0))
    mock = KeysightB2900Personality(device=mtj, model="B2911A")
    smu = KeysightB2900(InProcessAdapter(mock, TransportFaults()), channels=1)
    data = smu.ch_1.pulse_list([1.0], 1e-3, source="current", compliance=0.1)
    assert data["VOLT"][0] == pytest.approx(0.1)
    assert smu.ch_1.voltage_compliance_tripped is True
    # 1 A would switch for certain; clamped at 0.1 V the junction carries ~33 µA (a third of
    # I_c0): P = 1 − exp(−t/τ0·e^(−Δ·2/3)) ≈ 3e-6 for 1 ms
    assert mtj.switched[0] == 0


def test_mock_scpi_forms_chains_errors_and_channels():
    m = KeysightB2900Personality(model="B2901A")
    assert m.handle_message("*IDN?").startswith("Keysight Technologies,B2901A,")
    m.handle_message(":source:voltage:level:immediate:amplitude 1.5;:SOUR:VOLT:TRIG 2")
    assert float(m.handle_message(":SOUR:VOLT?")) == 1.5
    assert float(m.handle_message("sour1:volt:trig?")) == 2.0
    assert m.handle_message("SOUR:FUNC:MODE CURRENT;FUNC:MODE?") == "CURR"
    for bad, code in ((":SOUR2:VOLT 1", "-113"), (":SOUR:VOLT 300", "-222"),
                      (":SOUR:PULS:WIDT 20e-6", "-222"),  # the B2901A starts at 50 us
                      (":FETC:ARR? (@1)", "-230"), (":SOUR:VOLT:MODE SWEEPY", "-224"),
                      (":SOUR:LIST:VOLT " + ",".join(["0"] * 2501), "-222"),
                      (":MEAS:CURR? (@2)", "-222")):
        m.handle_message(bad)
        assert m.handle_message(":SYST:ERR?").startswith(code), bad
    assert m.handle_message(":SYST:ERR?") == '0,"No error"'
    m.handle_message("*RST")
    assert float(m.handle_message(":SOUR:VOLT?")) == 0.0
    assert m.handle_message("*OPC?") == "1"
    m.handle_message(":OUTP:ON:AUTO OFF;:OUTP OFF;:INIT")
    assert m.handle_message(":SYST:ERR?").startswith("-221")  # output off: no run


def test_mock_trace_buffer_and_elements():
    m = KeysightB2900Personality(device=DWSynapseArray(1, rng=np.random.default_rng(0)))
    m.handle_message(":TRAC:FEED SENS;:TRAC:POIN 4;:TRAC:FEED:CONT NEXT")
    m.handle_message(":SOUR:VOLT:MODE LIST;:SOUR:LIST:VOLT 0.1,0.2,0.3;:TRIG:COUN 3;:INIT")
    assert m.handle_message(":TRAC:POIN:ACT?") == "3"
    m.handle_message(":FORM:ELEM:SENS CURR,SOUR;:INIT")
    assert m.handle_message(":TRAC:POIN:ACT?") == "4"  # full: stops feeding
    values = [float(x) for x in m.handle_message(":TRAC:DATA? 0,4").split(",")]
    assert values[1::2] == [0.1, 0.2, 0.3, 0.1]
    assert values[0] == pytest.approx(0.1 / 1000, rel=0.02)
    assert m.handle_message(":FETC:ARR:SOUR? (@1)").count(",") == 2


def test_driver_over_tcp_counts_transactions_independent_of_trials(mock):
    server = TcpInstrumentServer(mock, 0, "127.0.0.1", TransportFaults()).start()
    try:
        smu = KeysightB2900(server.resource, read_termination="\n", write_termination="\n")
        counts = []
        for trials in (10, 1000):
            before = mock.messages
            smu.ch_1.pulse_list([-1.5, 4.0, 0.1, -1.5, 5.0, 0.1], 1e-4, count=trials)
            counts.append(mock.messages - before)
        assert counts == [3, 3]
        smu.adapter.close()
    finally:
        server.stop()


def test_superparamagnetic_mtj_telegraph_sampled_by_the_smu():
    """Δ = 15 read at 1 µA (I/I_c0 = 0.01): mean dwells τ0·exp(Δ(1 ∓ I/I_c0)) ≈ 2.9 ms in P
    and 3.8 ms in AP. The SMU samples the resistance every 100 µs for 4 s (a DC timer-triggered
    acquisition, one fetch); the run lengths give the mean dwells. ~1,200 dwells: each mean has
    a relative std of 1/√(dwells) (4σ ≈ 17 %), plus a sampling bias: a dwell shorter than
    100 µs (~3 %) is missed and merges two runs of the other state (allowance 6 %); the AP
    occupancy τ_AP/(τ_P + τ_AP) ± 4·sqrt(0.25/n_eff), n_eff ~ 600 dwell pairs."""
    mtj = MTJArray(1, MTJParams(delta=15.0, delta_std_rel=0, ic0_std_rel=0, r_p_std_rel=0),
                   np.random.default_rng(8))
    mock = KeysightB2900Personality(device=mtj, rng=np.random.default_rng(9))
    smu = driver(mock)
    points, period = 40_000, 1e-4
    smu.write(":SOUR1:FUNC:MODE CURR;:SOUR1:FUNC:SHAP DC;:SOUR1:CURR:TRIG 1e-6;"
              f":SENS1:VOLT:PROT 2;:SENS1:VOLT:NPLC 0.001;:TRIG1:SOUR TIM;:TRIG1:TIM {period};"
              f":TRIG1:COUN {points};:FORM:ELEM:SENS VOLT,CURR;:INIT (@1)")
    data = np.asarray(smu.values(":FETC:ARR? (@1)"), dtype=float).reshape(points, 2)
    ap = (data[:, 0] / data[:, 1]) > 3000 * 1.75
    edges = np.flatnonzero(np.diff(ap.astype(int)))
    runs = np.diff(edges) * period
    states = ap[edges[:-1] + 1]
    tau = {False: 1e-9 * math.exp(15.0 * 0.99), True: 1e-9 * math.exp(15.0 * 1.01)}
    for state, expected in tau.items():
        sample = runs[states == state]
        assert sample.size > 300
        assert abs(sample.mean() - expected) < (4 / math.sqrt(sample.size) + 0.06) * expected
    occupancy = tau[True] / (tau[True] + tau[False])
    assert abs(ap.mean() - occupancy) < 4 * math.sqrt(0.25 / (runs.size / 2))


def test_mock_refuses_a_device_it_cannot_drive():
    with pytest.raises(ValueError, match="two-state stochastic devices"):
        KeysightB2900Personality(device=object())
    with pytest.raises(ValueError, match="unknown B2900 model"):
        KeysightB2900Personality(model="B2987A")
