"""Protocol tests for drivers.keithley2450 (native 2450 SCPI) with pymeasure's expected_protocol."""

import logging
import warnings

import numpy as np
import pytest
from pymeasure.test import expected_protocol

from drivers.keithley2450 import Keithley2450

LIN_SETUP = ':TRAC:CLE;:SOUR:FUNC VOLT;:SENS:FUNC "CURR"'
OPC = ("*OPC?", "1")


def trac_data(n):
    return f':TRAC:DATA? 1, {n}, "defbuffer1", SOUR, READ, REL'


def test_init_name_and_no_scpi_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with expected_protocol(Keithley2450, []) as smu:
            assert smu.name == "Keithley 2450 SourceMeter"
    with expected_protocol(Keithley2450, [], name="SMU A") as smu:
        assert smu.name == "SMU A"


def test_source_limits_attribute():
    assert Keithley2450.SOURCE_LIMITS == {
        "source_voltage": "voltage", "source_current": "current",
        "compliance_current": "current", "compliance_voltage": "voltage"}


@pytest.mark.parametrize("prop, get_cmd, set_cmd, value, wire", [
    ("source_voltage", ":SOUR:VOLT?", ":SOUR:VOLT:LEV %s", -1.25, "-1.25"),
    ("source_current", ":SOUR:CURR?", ":SOUR:CURR:LEV %s", 2e-6, "2e-06"),
    ("compliance_current", ":SOUR:VOLT:ILIM?", ":SOUR:VOLT:ILIM %s", 1e-3, "0.001"),
    ("compliance_voltage", ":SOUR:CURR:VLIM?", ":SOUR:CURR:VLIM %s", 2.5, "2.5"),
    ("current_nplc", ":SENS:CURR:NPLC?", ":SENS:CURR:NPLC %s", 0.1, "0.1"),
    ("voltage_nplc", ":SENS:VOLT:NPLC?", ":SENS:VOLT:NPLC %s", 10, "10"),
])
def test_float_controls(prop, get_cmd, set_cmd, value, wire):
    with expected_protocol(Keithley2450, [(set_cmd % wire, None), (get_cmd, wire)]) as smu:
        setattr(smu, prop, value)
        assert getattr(smu, prop) == pytest.approx(value)


@pytest.mark.parametrize("prop, value", [
    ("source_voltage", 210.5), ("source_voltage", -211), ("source_current", 1.1),
    ("compliance_current", 1e-10), ("compliance_current", 1.2), ("compliance_voltage", 0.01),
    ("compliance_voltage", 211), ("current_nplc", 0.001), ("voltage_nplc", 11),
])
def test_float_controls_reject_out_of_range(prop, value):
    with expected_protocol(Keithley2450, []) as smu:
        with pytest.raises(ValueError):
            setattr(smu, prop, value)


@pytest.mark.parametrize("prop", list(Keithley2450.SOURCE_LIMITS))
def test_narrowed_source_setter_raises_before_writing(prop):
    with expected_protocol(Keithley2450, []) as smu:
        setattr(smu, prop + "_values", [0.001, 0.002])
        assert smu.present_limits(prop) == (0.001, 0.002)
        with pytest.raises(ValueError):
            setattr(smu, prop, 0.003)
    with expected_protocol(Keithley2450, []) as other:  # narrowing is per instance
        assert other.present_limits(prop)[1] > 0.002


def test_present_limits_unknown_prop():
    with expected_protocol(Keithley2450, []) as smu:
        with pytest.raises(KeyError):
            smu.present_limits("voltage_range")


@pytest.mark.parametrize("prop, get_cmd, set_cmd", [
    ("output_enabled", ":OUTP?", ":OUTP %d"),
    ("source_readback", ":SOUR:VOLT:READ:BACK?", ":SOUR:VOLT:READ:BACK %d"),
    ("remote_sense", ":SENS:CURR:RSEN?", ":SENS:CURR:RSEN %d"),
])
@pytest.mark.parametrize("state", [True, False])
def test_bool_controls(prop, get_cmd, set_cmd, state):
    with expected_protocol(Keithley2450, [(set_cmd % state, None), (get_cmd, str(int(state)))]
                           ) as smu:
        setattr(smu, prop, state)
        assert getattr(smu, prop) is state


@pytest.mark.parametrize("prop, cmd", [
    ("current_limit_tripped", ":SOUR:VOLT:ILIM:TRIP?"),
    ("voltage_limit_tripped", ":SOUR:CURR:VLIM:TRIP?"),
])
def test_limit_tripped(prop, cmd):
    with expected_protocol(Keithley2450, [(cmd, "1"), (cmd, "0")]) as smu:
        assert getattr(smu, prop) is True
        assert getattr(smu, prop) is False


def test_line_frequency():
    with expected_protocol(Keithley2450, [(":SYST:LFR?", "50"), (":SYST:LFR?", "6.0E+01")]) as smu:
        assert smu.line_frequency == 50
        assert smu.line_frequency == 60


@pytest.mark.parametrize("value, wire, reply", [
    ("current", "CURR", "CURR:DC"), ("voltage", "VOLT", '"VOLT:DC"'), ("resistance", "RES", "RES"),
])
def test_sense_function(value, wire, reply):
    with expected_protocol(Keithley2450, [(f':SENS:FUNC "{wire}"', None),
                                          (":SENS:FUNC?", reply)]) as smu:
        smu.sense_function = value
        assert smu.sense_function == value


def test_reset():
    with expected_protocol(Keithley2450, [("*RST;*CLS", None)]) as smu:
        smu.reset()


def test_measure_iv_one_query():
    with expected_protocol(Keithley2450, [(':READ? "defbuffer1", SOUR, READ', "0.5,1.2E-06")]
                           ) as smu:
        assert smu.measure_iv() == (0.5, 1.2e-6)


def test_measure_iv_bad_reply():
    with expected_protocol(Keithley2450, [(':READ? "defbuffer1", SOUR, READ', "0.5")]) as smu:
        with pytest.raises(ValueError, match="expected 2"):
            smu.measure_iv()


def test_step_and_measure_one_query():
    with expected_protocol(Keithley2450, [(':SOUR:VOLT:LEV 2.5;:READ? "defbuffer1", SOUR, READ;'
                                           ':SOUR:VOLT:ILIM:TRIP?', "2.4,1.0E-04;1")]) as smu:
        assert smu.step_and_measure(2.5) == (2.4, 1e-4, True)


def test_step_and_measure_limit_writes_nothing():
    with expected_protocol(Keithley2450, []) as smu:
        smu.source_voltage_values = [-1.5, 1.5]
        with pytest.raises(ValueError, match="outside the limit"):
            smu.step_and_measure(2.0)


# ramps

def test_ramp_to_voltage_one_write():
    steps = ";".join(f":SOUR:VOLT:LEV {v}" for v in ("0.75", "0.5", "0.25", "0"))
    with expected_protocol(Keithley2450, [(":SOUR:VOLT?", "1"), (steps, None)]) as smu:
        smu.ramp_to_voltage(0, step=0.25)


def test_ramp_to_voltage_at_target_still_sets():
    with expected_protocol(Keithley2450, [(":SOUR:VOLT?", "0.3"), (":SOUR:VOLT:LEV 0.3", None)]
                           ) as smu:
        smu.ramp_to_voltage(0.3)


def test_ramp_to_current_one_write():
    steps = ";".join(f":SOUR:CURR:LEV {v}" for v in ("0.0001", "0.0002"))
    with expected_protocol(Keithley2450, [(":SOUR:CURR?", "0"), (steps, None)]) as smu:
        smu.ramp_to_current(2e-4)


def test_ramp_target_outside_narrowed_limit_writes_nothing():
    with expected_protocol(Keithley2450, []) as smu:
        smu.source_voltage_values = [-1.5, 1.5]
        with pytest.raises(ValueError, match=r"source_voltage value 2 .*\[-1.5, 1.5\]"):
            smu.ramp_to_voltage(2)


def test_ramp_step_outside_narrowed_limit_writes_nothing():
    # present level 3 V is outside the narrowed range: the query happens, no level is written
    with expected_protocol(Keithley2450, [(":SOUR:VOLT?", "3")]) as smu:
        smu.source_voltage_values = [-1.5, 1.5]
        with pytest.raises(ValueError, match="outside the limit"):
            smu.ramp_to_voltage(0, step=1)


def test_ramp_bad_step():
    with expected_protocol(Keithley2450, []) as smu:
        with pytest.raises(ValueError, match="step"):
            smu.ramp_to_current(0, step=0)


# shutdown

def test_shutdown_voltage_mode():
    with expected_protocol(Keithley2450, [
        (":ABOR", None), (":SOUR:FUNC?", "VOLT"), (":SOUR:VOLT?", "0.2"),
        (":SOUR:VOLT:LEV 0.1;:SOUR:VOLT:LEV 0", None), (":OUTP 0", None),
    ]) as smu:
        smu.shutdown()
        assert smu.isShutdown


def test_shutdown_current_mode():
    with expected_protocol(Keithley2450, [
        (":ABOR", None), (":SOUR:FUNC?", "CURR"), (":SOUR:CURR?", "1e-4"),
        (":SOUR:CURR:LEV 0", None), (":OUTP 0", None),
    ]) as smu:
        smu.shutdown()


def test_shutdown_survives_garbage_reply(caplog):
    with expected_protocol(Keithley2450, [
        (":ABOR", None), (":SOUR:FUNC?", "VOLT"), (":SOUR:VOLT?", "#garbage"), (":OUTP 0", None),
    ]) as smu:
        with caplog.at_level(logging.ERROR):
            smu.shutdown()
    assert "switching the output off" in caplog.text


def test_shutdown_survives_narrowed_limits():
    with expected_protocol(Keithley2450, [
        (":ABOR", None), (":SOUR:FUNC?", "VOLT"), (":SOUR:VOLT?", "5"), (":OUTP 0", None),
    ]) as smu:
        smu.source_voltage_values = [-1, 1]
        smu.shutdown()


# sweeps

def test_sweep_voltage_three_transactions():
    write = (LIN_SETUP + ';:SENS:CURR:NPLC 1;:SOUR:VOLT:ILIM 0.001;'
             ':SOUR:SWE:VOLT:LIN 0, 1, 3, 0.01, 1, BEST, OFF, OFF, "defbuffer1";:INIT')
    reply = "0,1E-09,0,0.5,5E-04,0.01,1,1E-03,0.02"
    with expected_protocol(Keithley2450, [(write, None), OPC, (trac_data(3), reply)]) as smu:
        v, i, t = smu.sweep_voltage(0, 1, 3, delay=0.01, nplc=1, compliance=1e-3)
    assert isinstance(v, np.ndarray)
    np.testing.assert_allclose(v, [0, 0.5, 1])
    np.testing.assert_allclose(i, [1e-9, 5e-4, 1e-3])
    np.testing.assert_allclose(t, [0, 0.01, 0.02])


def test_sweep_voltage_defaults_and_count():
    write = (LIN_SETUP + ';:SOUR:SWE:VOLT:LIN -1, 1, 2, 0, 2, BEST, OFF, OFF, "defbuffer1";:INIT')
    reply = ",".join(["-1,-1e-3,0", "1,1e-3,1", "-1,-1e-3,2", "1,1e-3,3"])
    with expected_protocol(Keithley2450, [(write, None), OPC, (trac_data(4), reply)]) as smu:
        v, i, t = smu.sweep_voltage(-1, 1, 2, count=2)
    np.testing.assert_allclose(v, [-1, 1, -1, 1])
    np.testing.assert_allclose(t, [0, 1, 2, 3])


def test_sweep_voltage_list_chunks_of_100():
    values = np.round(np.concatenate([np.linspace(0, 1, 101), np.linspace(1, -1, 101)[1:],
                                      np.linspace(-1, 0, 51)[1:]]), 6)
    assert values.size == 251
    text = [f"{v:g}" for v in values]
    write = (LIN_SETUP
             + ";:SOUR:LIST:VOLT " + ",".join(text[:100])
             + ";:SOUR:LIST:VOLT:APP " + ",".join(text[100:200])
             + ";:SOUR:LIST:VOLT:APP " + ",".join(text[200:])
             + ';:SOUR:SWE:VOLT:LIST 1, 0.001, 1, OFF, "defbuffer1";:INIT')
    reply = ",".join(f"{v:g},{v * 1e-3:g},{k * 1e-3:g}" for k, v in enumerate(values))
    with expected_protocol(Keithley2450, [(write, None), OPC, (trac_data(251), reply)]) as smu:
        v, i, t = smu.sweep_voltage_list(values, delay=1e-3)
    np.testing.assert_allclose(v, values)
    np.testing.assert_allclose(i, values * 1e-3, atol=1e-12)
    assert t.shape == (251,)


def test_sweep_current_list():
    write = (':TRAC:CLE;:SOUR:FUNC CURR;:SENS:FUNC "VOLT";:SENS:VOLT:NPLC 0.1;'
             ':SOUR:CURR:VLIM 2;:SOUR:LIST:CURR 1e-06,-1e-06;'
             ':SOUR:SWE:CURR:LIST 1, 0, 3, OFF, "defbuffer1";:INIT')
    reply = ",".join(["1e-6,0.1,0", "-1e-6,-0.1,1"] * 3)
    with expected_protocol(Keithley2450, [(write, None), OPC, (trac_data(6), reply)]) as smu:
        i, v, t = smu.sweep_current_list([1e-6, -1e-6], delay=0, count=3, nplc=0.1,
                                         compliance=2)
    np.testing.assert_allclose(v, [0.1, -0.1] * 3)


@pytest.mark.parametrize("call", [
    lambda s: s.sweep_voltage(0, 2, 5),
    lambda s: s.sweep_voltage(-2, 0, 5),
    lambda s: s.sweep_voltage_list([0, 1, 1.6, 0], delay=0),
    lambda s: s.sweep_voltage_list([0, 1, 0], delay=0, compliance=2e-3),
    lambda s: s.sweep_current_list([0, 2e-3], delay=0),
    lambda s: s.sweep_current_list([0, 1e-4], delay=0, compliance=3),
])
def test_sweep_narrowed_limit_raises_before_any_byte(call):
    with expected_protocol(Keithley2450, []) as smu:
        smu.source_voltage_values = [-1.5, 1.5]
        smu.compliance_current_values = [1e-9, 1e-3]
        smu.source_current_values = [-1e-3, 1e-3]
        smu.compliance_voltage_values = [0.02, 2]
        with pytest.raises(ValueError, match="outside the limit"):
            call(smu)


def test_sweep_error_names_value_and_limit():
    with expected_protocol(Keithley2450, []) as smu:
        smu.source_voltage_values = [-1.5, 1.5]
        with pytest.raises(ValueError, match=r"source_voltage value -1.6 .*\[-1.5, 1.5\]"):
            smu.sweep_voltage_list([0, -1.6], delay=0)


@pytest.mark.parametrize("kwargs", [
    dict(points=1), dict(points=2.5), dict(delay=1e-6), dict(delay=-2), dict(count=0),
    dict(count=True), dict(nplc=20), dict(compliance=0),
])
def test_sweep_bad_options_write_nothing(kwargs):
    args = dict(start=0, stop=1, points=3) | kwargs
    with expected_protocol(Keithley2450, []) as smu:
        with pytest.raises(ValueError):
            smu.sweep_voltage(**args)


def test_sweep_list_rejects_auto_delay_and_empty():
    with expected_protocol(Keithley2450, []) as smu:
        with pytest.raises(ValueError):
            smu.sweep_voltage_list([0, 1], delay=-1)
        with pytest.raises(ValueError):
            smu.sweep_voltage_list([], delay=0)


def test_sweep_short_data_raises():
    write = (LIN_SETUP + ';:SOUR:SWE:VOLT:LIN 0, 1, 2, 0, 1, BEST, OFF, OFF, "defbuffer1";:INIT')
    with expected_protocol(Keithley2450, [(write, None), OPC, (trac_data(2), "0,1,0")]) as smu:
        with pytest.raises(ValueError, match="expected 6"):
            smu.sweep_voltage(0, 1, 2)
