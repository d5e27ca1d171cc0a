"""RF instrument drivers: protocol tests (expected_protocol) for what labctl adds, the stock
pymeasure drivers against the mocks unchanged, and the mocks' SCPI behaviour."""

from __future__ import annotations

import struct
import warnings

import numpy as np
import pytest
from pymeasure.instruments.agilent import Agilent8257D, AgilentE4408B
from pymeasure.instruments.kepco import KepcoBOP3612
from pymeasure.instruments.rohdeschwarz import FSL
from pymeasure.test import expected_protocol

from drivers.field_source import KepcoBopField
from drivers.rf_generator import KeysightN5183B, RohdeSchwarzSMB100A
from drivers.spectrum_analyzer import KeysightN9010B, RohdeSchwarzFSV
from mocks.devices.spintronics import STNO_BIAS, RfCircuit, RfCircuitParams
from mocks.instruments.kepco_bop import KepcoBopPersonality
from mocks.instruments.rf_generator import KeysightMxgPersonality, RohdeSchwarzSmbPersonality
from mocks.instruments.spectrum_analyzer import (
    KeysightXSeriesPersonality,
    RohdeSchwarzFsvPersonality,
)
from mocks.transports import InProcessAdapter


def block(values, fmt=">f") -> bytes:
    payload = struct.pack(f"{fmt[0]}{len(values)}{fmt[1]}", *values)
    size = str(len(payload)).encode()
    return b"#" + str(len(size)).encode() + size + payload


# ============================================================================ N5183B protocol
@pytest.mark.parametrize("prop, get_cmd, set_cmd, value, wire", [
    ("frequency", ":FREQ?", ":FREQ 2100000000", 2.1e9, "2100000000"),
    ("power", ":POW?", ":POW -30.0000", -30, "-30"),
    ("output_enabled", ":OUTP?", ":OUTP 1", True, "1"),
    ("modulation_enabled", ":OUTP:MOD?", ":OUTP:MOD 0", False, "0"),
    ("frequency_mode", ":FREQ:MODE?", ":FREQ:MODE LIST", "LIST", "LIST"),
    ("power_mode", ":POW:MODE?", ":POW:MODE FIX", "FIX", "FIX"),
    ("list_trigger_source", ":LIST:TRIG:SOUR?", ":LIST:TRIG:SOUR BUS", "BUS", "BUS"),
])
def test_mxg_controls(prop, get_cmd, set_cmd, value, wire):
    with expected_protocol(KeysightN5183B, [(set_cmd, None), (get_cmd, wire)]) as gen:
        setattr(gen, prop, value)
        got = getattr(gen, prop)
        assert got == (pytest.approx(value) if isinstance(value, float | int) else value)


@pytest.mark.parametrize("prop, value", [
    ("frequency", 8e3), ("frequency", 21e9), ("power", 21), ("power", -131),
    ("frequency_mode", "SWE"), ("list_trigger_source", "TIM"),
])
def test_mxg_rejects_out_of_range(prop, value):
    with expected_protocol(KeysightN5183B, []) as gen, pytest.raises(ValueError):
        setattr(gen, prop, value)


def test_mxg_no_scpi_warning_and_measurements():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with expected_protocol(KeysightN5183B, [(":LIST:FREQ:POIN?", "3"),
                                                (":LIST:POW:POIN?", "1"),
                                                (":LIST:IND?", "2")]) as gen:
            assert (gen.list_frequency_points, gen.list_power_points, gen.list_index) == (3, 1, 2)


def test_mxg_load_list_is_one_message():
    wire = (":LIST:TYPE LIST;:LIST:TRIG:SOUR BUS;:LIST:FREQ 1000000,2000000;:LIST:POW -30,-20;"
            ":LIST:DWEL 0.001;:FREQ:MODE LIST;:POW:MODE LIST")
    with expected_protocol(KeysightN5183B, [(wire, None), (":INIT:CONT 0;:INIT;*OPC?", "1"),
                                            ("*TRG", None),
                                            (":ABOR;:FREQ:MODE CW;:POW:MODE FIX", None)]) as gen:
        assert gen.load_list([1e6, 2e6], [-30, -20]) == 2
        gen.start_list()
        gen.next_point()
        gen.stop_list()


@pytest.mark.parametrize("freqs, powers", [
    ([1e6, 2e6], [-30, -20, -10]), ([1e6] * 3202, [-30]), ([5e3], [-30]), ([1e6], [25]),
    ([1e6, np.nan], [-30]),
])
def test_mxg_load_list_checks_before_writing(freqs, powers):
    with expected_protocol(KeysightN5183B, []) as gen, pytest.raises(ValueError):
        gen.load_list(freqs, powers)


def test_mxg_shutdown_protocol():
    with expected_protocol(KeysightN5183B, [(":ABOR;:FREQ:MODE CW;:POW:MODE FIX", None),
                                            (":OUTP:MOD 0", None), (":OUTP 0", None)]) as gen:
        gen.shutdown()
        assert gen.isShutdown


# ============================================================================ N9010B protocol
@pytest.mark.parametrize("prop, get_cmd, set_cmd, value, wire", [
    ("center_frequency", ":FREQ:CENT?", ":FREQ:CENT 250000000", 250e6, "2.5E+08"),
    ("span", ":FREQ:SPAN?", ":FREQ:SPAN 20000000", 20e6, "2E+07"),
    ("resolution_bandwidth", ":BAND?", ":BAND 30000", 30e3, "3E+04"),
    ("video_bandwidth", ":BAND:VID?", ":BAND:VID 100000", 100e3, "1E+05"),
    ("frequency_points", ":SWE:POIN?", ":SWE:POIN 1001", 1001, "1001"),
    ("average_count", ":AVER:COUN?", ":AVER:COUN 10", 10, "10"),
    ("averaging_enabled", ":AVER?", ":AVER 1", True, "1"),
    ("continuous_sweep", ":INIT:CONT?", ":INIT:CONT 0", False, "0"),
    ("trace_format", ":FORM?", ":FORM REAL,32", "REAL,32", "REAL,32"),
])
def test_xseries_controls(prop, get_cmd, set_cmd, value, wire):
    with expected_protocol(KeysightN9010B, [(set_cmd, None), (get_cmd, wire)]) as sa:
        setattr(sa, prop, value)
        got = getattr(sa, prop)
        assert got == (pytest.approx(value) if isinstance(value, float | int) else value)


@pytest.mark.parametrize("prop, value", [
    ("center_frequency", 27e9), ("span", 1), ("resolution_bandwidth", 9e6),
    ("frequency_points", 40002), ("average_count", 0), ("trace_format", "INT,32"),
])
def test_xseries_rejects_out_of_range(prop, value):
    with expected_protocol(KeysightN9010B, []) as sa, pytest.raises(ValueError):
        setattr(sa, prop, value)


CONFIGURE = (":INIT:CONT 0;:FREQ:CENT 250000000;:FREQ:SPAN 20000000;:SWE:POIN 5;:BAND 30000;"
             ":BAND:VID:AUTO 1;:AVER:TYPE RMS;:AVER:COUN 4;:AVER 1;")


def test_xseries_binary_trace_is_one_transaction():
    values = [-90.5, -80.25, -40.0, -80.0, -91.0]
    with expected_protocol(KeysightN9010B, [
        (CONFIGURE + ":FORM REAL,32;:FORM:BORD NORM", None),
        (":INIT;*WAI;:TRAC? TRACE1", block(values) + b"\n"),
        (":TRAC? TRACE1", block(values) + b"\n"),
    ]) as sa:
        sa.configure(250e6, 20e6, rbw=30e3, points=5, averages=4)
        np.testing.assert_array_equal(sa.sweep_and_read(), values)
        np.testing.assert_array_equal(sa.trace(), values)


def test_xseries_ascii_trace_single_sweep_and_peak():
    with expected_protocol(KeysightN9010B, [
        (CONFIGURE + ":FORM ASC", None),
        (":INIT;*WAI;:TRAC? TRACE1", "-90.5,-80.25,-40,-80,-91"),
        (":INIT;*OPC?", "1"),
        (":CALC:MARK1:MAX;:CALC:MARK1:X?;:CALC:MARK1:Y?", "2.5E+08;-40.0"),
    ]) as sa:
        sa.configure(250e6, 20e6, rbw=30e3, points=5, averages=4, binary=False)
        assert list(sa.sweep_and_read()) == [-90.5, -80.25, -40, -80, -91]
        sa.single_sweep()
        assert sa.peak() == (250e6, -40.0)


def test_xseries_rejects_a_bad_block_and_configuration():
    with expected_protocol(KeysightN9010B, [
        (CONFIGURE + ":FORM REAL,32;:FORM:BORD NORM", None),
        (":TRAC? TRACE1", b"-90,-80\n"),
    ]) as sa:
        sa.configure(250e6, 20e6, rbw=30e3, points=5, averages=4)
        with pytest.raises(ValueError, match="IEEE 488.2 block"):
            sa.trace()
    with expected_protocol(KeysightN9010B, []) as sa, pytest.raises(ValueError):
        sa.configure(250e6, 20e6, points=50000)


def test_xseries_shutdown_protocol():
    with expected_protocol(KeysightN9010B, [(":AVER 0;:INIT:CONT 1", None)]) as sa:
        sa.shutdown()


# ============================================================================ Kepco protocol
RAMP_START = ("FUNC:MODE CURR;VOLT 20;OUTP 1;CURR?", "0")


def test_kepco_ramp_runs_in_the_supply_list():
    with expected_protocol(KepcoBopField, [
        RAMP_START,
        ("LIST:CLE;LIST:CURR 0.05,0.1,0.15,0.2;LIST:DWEL 0.025;LIST:COUN 1;CURR:MODE LIST;"
         "*OPC?", "1"),
        ("CURR 0.2", None),
        ("MEASure:CURRent?", "0.2"),
    ], field_per_ampere=5.0, ramp_rate=2.0, max_step=0.05) as coil:
        coil.ramp_to_field(1.0)  # 1 mT / 5 mT/A = 0.2 A in 4 steps of 0.05 A
        assert coil.field == pytest.approx(1.0)


def test_kepco_shutdown_ramps_then_switches_off():
    with expected_protocol(KepcoBopField, [
        ("FUNC:MODE CURR;VOLT 20;OUTP 1;CURR?", "0.1"),
        ("LIST:CLE;LIST:CURR 0.05,0;LIST:DWEL 0.05;LIST:COUN 1;CURR:MODE LIST;*OPC?", "1"),
        ("CURR 0", None), ("OUTPut 0", None),
    ]) as coil:
        coil.shutdown()


@pytest.mark.parametrize("kwargs", [{"field_per_ampere": 0}, {"ramp_rate": -1},
                                    {"max_step": float("nan")}, {"compliance": 40}])
def test_kepco_rejects_bad_options(kwargs):
    with pytest.raises(ValueError):
        with expected_protocol(KepcoBopField, [], **kwargs):
            pass


def test_kepco_rejects_a_current_beyond_the_supply():
    with expected_protocol(KepcoBopField, []) as coil, pytest.raises(ValueError):
        coil.ramp_to_current(12.5)


# ============================================================================ against the mocks
@pytest.fixture
def circuit():
    return RfCircuit(1, rng=np.random.default_rng(1))


def test_stock_psg_driver_works_on_the_mxg_mock(circuit):
    mock = KeysightMxgPersonality(device=circuit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        gen = Agilent8257D(InProcessAdapter(mock))
    gen.frequency, gen.power = 100e6, -20
    gen.enable()
    assert (gen.frequency, gen.power, gen.is_enabled) == (100e6, -20, True)
    assert circuit.tones == {0: (100e6, pytest.approx(1e-5))}
    gen.config_amplitude_modulation(frequency=2e3, depth=50, shape="triangle")
    gen.config_pulse_modulation(frequency=5e3)
    gen.enable_modulation()
    assert (gen.has_amplitude_modulation, gen.has_pulse_modulation, gen.has_modulation) == (
        True, True, True)
    assert (gen.amplitude_depth, gen.internal_shape, gen.internal_frequency) == (
        50, "triangle", 2e3)
    gen.start_frequency, gen.stop_frequency, gen.step_points = 1e8, 2e8, 11
    assert (gen.start_frequency, gen.stop_frequency, gen.step_points) == (1e8, 2e8, 11)
    assert not mock.errors
    gen.config_step_sweep()  # PSG-only commands (:SWE:GEN, FREQ:MODE SWE): the MXG refuses
    assert {code for code, _ in mock.errors} == {-113, -224}
    mock.errors.clear()
    gen.shutdown()
    assert not mock.errors and not gen.is_enabled and circuit.tones == {}


def test_mxg_mock_list_mode_drives_the_device_point_by_point(circuit):
    mock = KeysightMxgPersonality(device=circuit)
    gen = KeysightN5183B(InProcessAdapter(mock))
    gen.enable()
    gen.load_list([99e6, 100e6, 101e6], [-30, -25, -20])
    gen.start_list()
    seen = [circuit.tones[0]]
    for _ in range(3):  # the third trigger is past the end: a single sweep rests on the last
        gen.next_point()
        seen.append(circuit.tones[0])
    assert [f for f, _ in seen] == [99e6, 100e6, 101e6, 101e6]
    assert [p for _, p in seen] == pytest.approx([1e-6, 10 ** -5.5, 1e-5, 1e-5])
    assert mock.clock.now == pytest.approx(4 * 1e-3)  # output on + two switches, 1 ms each
    gen.shutdown()
    assert not mock.errors and circuit.tones == {}


def test_mxg_mock_immediate_list_runs_on_the_virtual_clock(circuit):
    mock = KeysightMxgPersonality(device=circuit)
    gen = KeysightN5183B(InProcessAdapter(mock))
    gen.load_list([99e6, 100e6], [-30], dwell=0.5, trigger="IMM")
    t0 = mock.clock.now
    gen.start_list()  # *OPC? waits for the end
    assert mock.clock.now - t0 >= 1.0 and gen.list_index == 1


@pytest.mark.parametrize("message, code", [
    (":FREQ 25 GHZ", -222), (":POW 30", -222), (":FREQ:MODE SWEEP", -224), (":BOGUS 1", -113),
    (":LIST:FREQ 1e6,2e6;:LIST:POW -30,-20,-10;:FREQ:MODE LIST;:POW:MODE LIST;:INIT", -221),
    (":LIST:FREQ", -109),
])
def test_mxg_mock_errors(message, code):
    mock = KeysightMxgPersonality()
    mock.handle_message(message)
    assert mock.handle_message(":SYST:ERR?").startswith(f"{code},")


def test_mxg_mock_long_short_forms_any_case_and_chains():
    mock = KeysightMxgPersonality()
    mock.handle_message(":sour:frequency:cw 1.5 GHz;:POWer:LEVel:IMMediate:AMPLitude -12.5 dBm")
    assert mock.handle_message(":FREQ?;:POW?") == "+1.50000000000000E+09;-1.25000000E+01"
    assert mock.handle_message("*IDN?").startswith("Keysight Technologies,N5183B,")
    mock.handle_message("*RST")
    assert float(mock.handle_message(":FREQ:CW?")) == 1e9


@pytest.fixture
def oscillator():
    dev = RfCircuit(0, RfCircuitParams(stno=True), rng=np.random.default_rng(2))
    dev.set_operating_point(0.0, 30e-6, STNO_BIAS)
    return dev


@pytest.mark.parametrize("binary", [True, False])
def test_xseries_mock_1001_point_trace_costs_one_transaction(oscillator, binary):
    mock = KeysightXSeriesPersonality(device=oscillator, rng=np.random.default_rng(3))
    sa = KeysightN9010B(InProcessAdapter(mock))
    sa.configure(center=265e6, span=20e6, rbw=100e3, points=1001, averages=4, binary=binary)
    before = mock.messages
    trace = sa.sweep_and_read()
    assert mock.messages - before == 1
    assert trace.size == 1001 and np.all(np.isfinite(trace))
    f_line = oscillator.emission_lines()[0][0]
    assert abs(sa.frequencies[int(np.argmax(trace))] - f_line) < 2e6  # within a few FWHM
    before = mock.messages
    sa.trace()
    assert mock.messages - before == 1
    f_peak, level = sa.peak()
    assert abs(f_peak - f_line) < 2e6 and level == pytest.approx(trace.max(), abs=1e-4)
    sa.shutdown()
    assert not mock.errors and mock.s["continuous"]


def test_xseries_mock_swapped_binary_and_averaging_noise(oscillator):
    """Power-averaged noise: each point's relative SD is 1/sqrt(N); over 1001 points the
    sample SD of the floor-only trace's linear power lies within 1/sqrt(N)·(1 ± 5/sqrt(2·1001))."""
    oscillator.set_operating_point(0.0, 0.0, STNO_BIAS)  # below threshold: floor only
    mock = KeysightXSeriesPersonality(device=oscillator, rng=np.random.default_rng(4))
    mock.handle_message(":INIT:CONT 0;:FREQ:CENT 265 MHz;:FREQ:SPAN 20 MHz;:BAND 100 kHz;"
                        ":AVER:COUN 16;:AVER:TYPE RMS;:AVER ON;:FORM REAL,64;:FORM:BORD SWAP;:INIT")
    reply = mock.handle_message(":TRAC? TRACE1").encode("latin-1")
    n = int(reply[1:2])
    dbm = np.frombuffer(reply[2 + n:], dtype="<f8")
    p = 10 ** (dbm / 10)
    rel = p.std() / p.mean()
    assert abs(rel * 4 - 1) < 5 / np.sqrt(2 * 1001)
    assert not mock.errors


def test_stock_esa_driver_works_on_the_xseries_mock(oscillator):
    mock = KeysightXSeriesPersonality(device=oscillator)
    sa = AgilentE4408B(InProcessAdapter(mock))
    sa.start_frequency, sa.stop_frequency = 255e6, 275e6
    assert sa.center_frequency == pytest.approx(265e6)
    sa.frequency_points, sa.sweep_time = 501, 0.05
    assert (sa.frequency_points, sa.sweep_time) == (501, pytest.approx(0.05))
    trace = sa.trace()
    assert trace.shape == (501,) and sa.trace_df().shape == (501, 2)
    assert not mock.errors


def test_stock_kepco_driver_and_field_on_the_mock(circuit):
    mock = KepcoBopPersonality(device=circuit, coil_mt_per_a=4.0)
    bop = KepcoBOP3612(InProcessAdapter(mock))
    bop.operating_mode = "CURR"
    bop.voltage_setpoint, bop.current_setpoint = 10, 0.5
    bop.output_enabled = True
    assert bop.operating_mode == "CURR" and bop.current == pytest.approx(0.5)
    assert bop.voltage == pytest.approx(0.5 * 1.5) and circuit.field_mt == pytest.approx(2.0)
    assert bop.confidence_test == 0 and bop.bop_test == 0
    bop.beep()
    bop.wait_to_continue()
    assert not mock.errors


def test_kepco_field_driver_ramps_never_steps(circuit):
    mock = KepcoBopPersonality(device=circuit, coil_mt_per_a=5.0)
    coil = KepcoBopField(InProcessAdapter(mock), field_per_ampere=5.0, ramp_rate=2.0,
                         max_step=0.05)
    t0 = mock.clock.now
    coil.ramp_to_field(25.0)  # 5 A: 100 steps of 0.05 A, 25 ms each
    assert coil.field == pytest.approx(25.0) and circuit.field_mt == pytest.approx(25.0)
    assert max(mock.steps) <= 0.05 + 1e-12 and len(mock.steps) == 100
    assert mock.clock.now - t0 == pytest.approx(100 * 0.025)
    coil.shutdown()
    assert circuit.field_mt == 0.0 and max(mock.steps) <= 0.05 + 1e-12
    assert mock.handle_message("OUTP?") == "0" and not mock.errors


# ============================================================================ SMB100A
@pytest.mark.parametrize("prop, get_cmd, set_cmd, value, wire", [
    ("frequency", ":FREQ?", ":FREQ 100000000", 100e6, "100000000"),
    ("power", ":POW?", ":POW -30.0000", -30, "-30"),
    ("output_enabled", ":OUTP?", ":OUTP 1", True, "1"),
    ("am_enabled", ":AM:STAT?", ":AM:STAT 0", False, "0"),
    ("am_depth", ":AM?", ":AM 30", 30, "30"),
    ("pulse_modulation_enabled", ":PULM:STAT?", ":PULM:STAT 1", True, "1"),
    ("frequency_mode", ":FREQ:MODE?", ":FREQ:MODE CW", "CW", "CW"),
])
def test_smb_controls(prop, get_cmd, set_cmd, value, wire):
    with expected_protocol(RohdeSchwarzSMB100A, [(set_cmd, None), (get_cmd, wire)]) as gen:
        setattr(gen, prop, value)
        got = getattr(gen, prop)
        assert got == (pytest.approx(value) if isinstance(value, float | int) else value)


@pytest.mark.parametrize("prop, value", [
    ("frequency", 7e9), ("power", 19), ("power", -146), ("am_depth", 101),
    ("frequency_mode", "SWE"),
])
def test_smb_rejects_out_of_range(prop, value):
    with expected_protocol(RohdeSchwarzSMB100A, []) as gen, pytest.raises(ValueError):
        setattr(gen, prop, value)


def test_smb_list_protocol_and_shutdown():
    wire = (':LIST:SEL "labctl";:LIST:FREQ 1000000,2000000;:LIST:POW -30,-30;'
            ":LIST:DWEL 0.001;:LIST:MODE STEP;:LIST:LEAR")
    with expected_protocol(RohdeSchwarzSMB100A, [
        (wire, None), (":FREQ:MODE LIST;*OPC?", "1"), (":LIST:IND 1", None),
        (":LIST:IND 1", None), (":LIST:IND?", "1"), (":FREQ:MODE CW", None),
        (":FREQ:MODE CW;:AM:STAT 0;:PULM:STAT 0", None), (":OUTP 0", None),
    ]) as gen:
        assert gen.load_list([1e6, 2e6], -30) == 2
        gen.start_list()
        gen.next_point()
        gen.next_point()  # past the end: stays on the last point
        assert gen.list_index == 1
        gen.stop_list()
        gen.shutdown()
    with expected_protocol(RohdeSchwarzSMB100A, []) as gen, pytest.raises(ValueError):
        gen.load_list([1e6, 7e9], -30)


def test_smb_mock_step_list_and_errors(circuit):
    mock = RohdeSchwarzSmbPersonality(device=circuit)
    gen = RohdeSchwarzSMB100A(InProcessAdapter(mock))
    gen.enable()
    gen.load_list([99e6, 100e6, 101e6], [-30, -25, -20])
    gen.start_list()
    seen = [circuit.tones[0][0]]
    for _ in range(2):
        gen.next_point()
        seen.append(circuit.tones[0][0])
    assert seen == [99e6, 100e6, 101e6] and gen.list_index == 2
    assert circuit.tones[0][1] == pytest.approx(1e-5)
    assert mock.handle_message("*IDN?").startswith("Rohde&Schwarz,SMB100A,")
    mock.handle_message(":LIST:IND 7")
    mock.handle_message(":SOUR1:POW 25")
    assert [code for code, _ in mock.errors] == [-222, -222]
    gen.shutdown()
    assert circuit.tones == {} and mock.sweep is None


# ============================================================================ FSV
FSV_CONFIGURE = ("INIT:CONT OFF;FREQ:CENT 250000000;FREQ:SPAN 20000000;SWE:POIN 101;"
                 "BAND:RES 30000;BAND:VID:AUTO ON;AVER:TYPE POW;DISP:TRAC:MODE AVER;SWE:COUN 4;")


def test_fsv_protocol_binary_trace_peak_and_shutdown():
    values = [-90.5, -40.0, -91.0]
    with expected_protocol(RohdeSchwarzFSV, [
        (FSV_CONFIGURE + "FORM REAL,32", None),
        ("INIT;*WAI;TRAC1? TRACE1", block(values, "<f") + b"\n"),
        ("INIT;*OPC?", "1"),
        ("CALC:MARK:MAX;:CALC:MARK:X?;:CALC:MARK:Y?", "250000000;-40"),
        ("SWE:COUN 0", None), ("SWE:COUN?", "0"), ("SWE:POIN?", "101"),
        ("DISP:TRAC:MODE WRIT;INIT:CONT ON", None),
    ]) as sa:
        sa.configure(250e6, 20e6, rbw=30e3, points=101, averages=4)
        np.testing.assert_array_equal(sa.sweep_and_read(), values)
        sa.single_sweep()
        assert sa.peak() == (250e6, -40.0)
        sa.sweep_count = 0
        assert sa.sweep_count == 0 and sa.sweep_points == 101
        sa.shutdown()


@pytest.mark.parametrize("kwargs", [{"points": 100}, {"center": 8e9}, {"rbw": 20e6},
                                    {"averages": 0}])
def test_fsv_configure_checks_before_writing(kwargs):
    args = {"center": 250e6, "span": 20e6, **kwargs}
    with expected_protocol(RohdeSchwarzFSV, []) as sa, pytest.raises(ValueError):
        sa.configure(**args)


@pytest.mark.parametrize("binary", [True, False])
def test_fsv_mock_1001_point_trace_costs_one_transaction(oscillator, binary):
    mock = RohdeSchwarzFsvPersonality(device=oscillator, rng=np.random.default_rng(5))
    sa = RohdeSchwarzFSV(InProcessAdapter(mock))
    sa.configure(center=265e6, span=20e6, rbw=100e3, points=1001, averages=4, binary=binary)
    before = mock.messages
    trace = sa.sweep_and_read()
    assert mock.messages - before == 1 and trace.size == 1001
    f_peak, level = sa.peak()
    assert abs(f_peak - oscillator.emission_lines()[0][0]) < 2e6
    assert level == pytest.approx(trace.max(), abs=1e-4)
    sa.shutdown()
    assert not mock.errors and mock.s["trace_type"] == "WRIT"


def test_stock_fsl_driver_works_on_the_fsv_mock(oscillator):
    mock = RohdeSchwarzFsvPersonality(device=oscillator)
    sa = FSL(InProcessAdapter(mock))
    assert mock.s["points"] == 691  # the FSV's *RST trace length
    sa.freq_center, sa.freq_span = 265e6, 10e6
    sa.res_bandwidth, sa.video_bandwidth, sa.sweep_time = 30e3, "AUTO", "AUTO"
    sa.continuous_sweep_enabled = False
    sa.single_sweep()
    x, y = sa.read_trace()
    assert len(x) == len(y) == 691 and sa.freq_start == pytest.approx(260e6)
    marker = sa.create_marker()
    marker.to_trace(1)
    marker.to_peak()
    assert abs(marker.x - oscillator.emission_lines()[0][0]) < 2e6
    assert marker.y == pytest.approx(max(y), abs=1e-6)
    sa.trace_mode, sa.attenuation = "AVER", 20
    assert (sa.trace_mode, sa.attenuation) == ("AVER", 20)
    assert not mock.errors
    sa.trace_mode = "MAXH"  # not modelled: refused, not faked
    assert [code for code, _ in mock.errors] == [-221]


def test_xseries_mock_log_averaging_reads_noise_low():
    """Log-power averaging of noise: the mean of 10·log10 of an exponential variable is
    10·log10(e)·ψ(1) = −2.507 dB below its power mean. Standard errors: the dB mean over 1001
    points x 16 sweeps 5.57 dB/sqrt(16016) = 0.044 dB, the power-averaged reference
    4.34 dB/sqrt(16016) = 0.034 dB; together 0.056 dB, so ±0.3 dB is over 5 sigma."""
    dev = RfCircuit(0, RfCircuitParams(stno=True), rng=np.random.default_rng(1))
    mock = KeysightXSeriesPersonality(device=dev, rng=np.random.default_rng(6))
    assert mock.handle_message(":AVER:TYPE?") == "LOG"
    mock.handle_message(":FREQ:CENT 265 MHz;:FREQ:SPAN 20 MHz;:BAND 100 kHz;:AVER:COUN 16;"
                        ":AVER ON;:INIT")
    log_dbm = np.array(mock.handle_message(":TRAC? TRACE1").split(","), dtype=float)
    mock.handle_message(":AVER:TYPE RMS;:INIT")
    rms_w = 10 ** (np.array(mock.handle_message(":TRAC? TRACE1").split(","), float) / 10)
    floor_dbm = 10 * np.log10(rms_w.mean())
    assert log_dbm.mean() - floor_dbm == pytest.approx(-2.507, abs=0.3)
    mock.handle_message(":AVER:TYPE SCAL")
    assert mock.errors and mock.errors[-1][0] == -224


def test_kepco_mock_list_queries_and_refusals():
    mock = KepcoBopPersonality()
    mock.handle_message("LIST:CLE;LIST:CURR 0.1,0.2;LIST:CURR 0.3;LIST:DWEL 0.01")
    assert mock.handle_message("LIST:CURR:POIN?;LIST:DWEL:POIN?") == "3;1"
    mock.handle_message("LIST:COUN 0;OUTP 1;FUNC:MODE CURR;VOLT 10;CURR:MODE LIST")
    mock.handle_message("LIST:DWEL 20;CURR 13")
    assert [code for code, _ in mock.errors] == [-221, -222, -222]
    assert mock.output_current() == 0.0
