"""Tests of the Keithley 2450 personality: raw SCPI over pyvisa-py/TCP, pymeasure's stock driver
over the in-process adapter, the error queue, compliance physics, sweeps, buffers, binary blocks."""

import numpy as np
import pytest
import pyvisa
from pymeasure.instruments.keithley import Keithley2450

from mocks.clock import VirtualClock
from mocks.instruments.keithley2450 import POINT_OVERHEAD_S, Keithley2450Personality
from mocks.transports import InProcessAdapter, TcpInstrumentServer


class Resistor:
    """Stand-in two-terminal device: ohmic, drops to r_low once it has seen |V| > v_switch."""

    def __init__(self, r=10e3, r_low=None, v_switch=1.0):
        self.r, self.r_low, self.v_switch = r, r_low, v_switch
        self.applied = []

    def current(self, v, index=0):
        return np.asarray(v, dtype=float) / self.r

    def measure_current(self, v, index=0):
        return self.current(v, index)

    def voltage_at_current(self, i, index=0):
        return np.asarray(i, dtype=float) * self.r

    def apply(self, v, dt, index=0):
        self.applied.append((float(v), float(dt)))
        if self.r_low is not None and abs(v) > self.v_switch:
            self.r = self.r_low


def make(device=None, **kw):
    return Keithley2450Personality(clock=VirtualClock(), device=device, **kw)


def errors(p):
    out = []
    while True:
        reply = p.handle_message(":SYST:ERR?")
        code = int(reply.split(",")[0])
        if code == 0:
            return out
        out.append(code)


@pytest.fixture
def visa_smu():
    """(pyvisa resource, personality): an independent client over TCP on 127.0.0.1."""
    p = make(Resistor(10e3))
    server = TcpInstrumentServer(p).start()
    rm = pyvisa.ResourceManager("@py")
    res = rm.open_resource(server.resource, read_termination="\n", write_termination="\n")
    res.timeout = 5000
    yield res, p
    res.close()
    rm.close()
    server.stop()


# ---------------------------------------------------------------- raw SCPI over pyvisa-py
def test_idn_and_rst_defaults_over_tcp(visa_smu):
    smu, _ = visa_smu
    assert smu.query("*IDN?") == "KEITHLEY INSTRUMENTS,MODEL 2450,04512345,1.7.7b"
    smu.write("*RST")
    assert smu.query(":SOUR:FUNC?") == "VOLT"
    assert float(smu.query(":SOUR:VOLT?")) == 0.0
    assert float(smu.query(":SOUR:VOLT:ILIM?")) == pytest.approx(1.05e-4)
    assert float(smu.query(":SOUR:CURR:VLIM?")) == pytest.approx(21.0)
    assert smu.query(":SENS:FUNC?") == '"CURR:DC"'
    assert float(smu.query(":SENS:CURR:NPLC?")) == 1.0
    assert smu.query(":SENS:CURR:RANG:AUTO?") == "1"
    assert smu.query(":OUTP?") == "0"
    assert smu.query(":SOUR:VOLT:READ:BACK?") == "1"
    assert smu.query(":FORM:BORD?") == "SWAP"
    assert smu.query(":TRIG:STAT?") == "IDLE;IDLE;0"
    assert smu.query(":SYST:LFR?") == "50"


def test_manual_examples_and_forms(visa_smu):
    smu, p = visa_smu
    # long form, short form, mixed case, ';' chains with the SCPI path rule
    smu.write(":SOURce:FUNCtion CURRent;:SOURce:CURRent:LEVel 1e-5")
    assert smu.query(":sour:func?") == "CURR"
    assert float(smu.query("SOUR:CURR?")) == pytest.approx(1e-5)
    smu.write(':sense:function "VOLT";:SENS:VOLT:RANG 20;:sens:volt:nplc 0.1')
    assert smu.query(":SENS:FUNC?;:SENS:VOLT:RANG?;NPLC?") == '"VOLT:DC";2.000000E+01;1.000000E-01'
    assert smu.query(":SENS:VOLT:RANG:AUTO?") == "0"
    smu.write("OUTP ON")
    v = float(smu.query(":READ?"))
    assert v == pytest.approx(1e-5 * 10e3, rel=1e-3)
    smu.write(":OUTPut:STATe OFF")
    assert smu.query("*OPC?") == "1"  # also orders the check after the server handled OFF
    assert p.output_on is False and p.device_voltage == 0.0
    assert errors(p) == []


def test_error_queue_and_esr(visa_smu):
    smu, p = visa_smu
    smu.write(":SOUR:VOLT:BOGUS 1")          # not in the 2450 command set
    smu.write(":SOUR:VOLT 250")              # beyond ±210 V
    smu.write(":SOUR:VOLT:ILIM")             # missing parameter
    smu.write(":SENS:CURR:NPLC 20")          # NPLC 0.01..10
    smu.write(":SYST:AZER ON")               # a 2400-series command, not the 2450's
    assert smu.query(":SYST:ERR:COUN?") == "5"
    codes = [int(smu.query(":SYST:ERR?").split(",")[0]) for _ in range(6)]
    assert codes == [-113, -222, -109, -222, -113, 0]
    assert int(smu.query("*ESR?")) == 32 | 16  # CME and EXE
    assert int(smu.query("*ESR?")) == 0
    assert float(smu.query(":SOUR:VOLT?")) == 0.0  # rejected value not applied


def test_sweep_1000_points_ohms_law_and_clock(visa_smu):
    smu, p = visa_smu
    r = 10e3
    smu.write("*RST;:SOUR:FUNC VOLT;:SENS:FUNC \"CURR\";:SOUR:VOLT:ILIM 1e-3;:SENS:CURR:NPLC 0.1")
    smu.write(":SOUR:VOLT:DEL 0")  # turns the auto delay off
    assert smu.query(":SOUR:VOLT:DEL:AUTO?") == "0"
    smu.write(":SOUR:SWE:VOLT:LIN -2, 2, 1000, 0.001")
    t0 = p.clock.now
    smu.write(":INIT")
    assert smu.query("*OPC?") == "1"
    elapsed = p.clock.now - t0
    nominal = 1000 * (0.001 + 0.1 / 50.0)
    assert nominal <= elapsed <= nominal + 1000 * POINT_OVERHEAD_S * 1.01
    assert smu.query(":TRIG:STAT?") == "IDLE;IDLE;9"
    assert smu.query(":OUTP?") == "0"  # the sweep model ends with SOURCE_OUTPUT OFF
    assert int(smu.query(':TRAC:ACT? "defbuffer1"')) == 1000
    data = smu.query_ascii_values(':TRAC:DATA? 1, 1000, "defbuffer1", SOUR, READ')
    assert len(data) == 2000
    v, i = np.array(data[0::2]), np.array(data[1::2])
    assert v == pytest.approx(np.linspace(-2, 2, 1000), abs=1e-3)
    assert i == pytest.approx(np.linspace(-2, 2, 1000) / r, rel=1e-3, abs=1e-9)
    assert float(smu.query(":TRAC:STAT:MAX?")) == pytest.approx(2 / r, rel=1e-3)
    assert smu.query(":TRAC:ACT:STAR?;:TRAC:ACT:END?") == "1;1000"


def test_binary_real_block(visa_smu):
    smu, _ = visa_smu
    smu.write(":SOUR:SWE:VOLT:LIN 0, 1, 11, 0")
    smu.write(":INIT;*WAI")
    smu.write(":FORM REAL")
    values = smu.query_binary_values(':TRAC:DATA? 1, 11, "defbuffer1", SOUR, READ',
                                     datatype="d", is_big_endian=False)
    assert len(values) == 22
    assert values[0::2] == pytest.approx(np.linspace(0, 1, 11), abs=1e-3)
    assert np.array(values[1::2]) == pytest.approx(np.linspace(0, 1, 11) / 10e3, rel=1e-3,
                                                   abs=1e-9)
    smu.write(":FORM SREAL;:FORM:BORD NORM")
    single = smu.query_binary_values(':TRAC:DATA? 1, 11, "defbuffer1", READ',
                                     datatype="f", is_big_endian=True)
    assert single == pytest.approx(values[1::2], rel=1e-6)
    smu.write(":FORM ASC")
    assert smu.query(":FORM?") == "ASC"


# ---------------------------------------------------------------- pymeasure's stock driver
def test_pymeasure_stock_driver():
    p = make(Resistor(10e3))
    smu = Keithley2450(InProcessAdapter(p))
    assert "MODEL 2450" in smu.id
    smu.reset()
    smu.apply_voltage(compliance_current=1e-3)
    smu.measure_current(nplc=1)
    assert smu.source_mode == "voltage"
    assert smu.compliance_current == pytest.approx(1e-3)
    smu.enable_source()
    assert smu.source_enabled is True
    smu.source_voltage = 0.5
    assert smu.source_voltage == pytest.approx(0.5)
    assert p.device_voltage == pytest.approx(0.5)
    assert smu.current == pytest.approx(0.5 / 10e3, rel=1e-3)
    smu.current_nplc = 0.1
    assert smu.current_nplc == pytest.approx(0.1)
    smu.source_voltage = 20  # 2 mA into 10 kΩ: clamps at 1 mA
    assert smu.current == pytest.approx(1e-3, rel=1e-3)
    assert p.device_voltage == pytest.approx(10.0)
    smu.apply_current(compliance_voltage=2)
    smu.measure_voltage()
    smu.source_current = 1e-4
    smu.enable_source()
    assert smu.voltage == pytest.approx(1.0, rel=1e-3)
    smu.current_output_off_state = "HIMP"
    assert smu.current_output_off_state == "HIMP"
    smu.use_rear_terminals()
    smu.use_front_terminals()
    smu.beep(440, 0.1)
    smu.disable_source()
    assert p.output_on is False and p.device_voltage == 0.0
    assert smu.check_errors() == []


# ---------------------------------------------------------------- physics
def test_compliance_voltage_source():
    dev = Resistor(1e3)
    p = make(dev)
    p.handle_message(":SOUR:VOLT:ILIM 1e-4;:SOUR:VOLT 1;:OUTP ON")
    reply = p.handle_message(':READ? "defbuffer1", READ, SOUR')
    i, v = map(float, reply.split(","))
    assert i == pytest.approx(1e-4, rel=1e-3)
    assert v == pytest.approx(0.1, rel=1e-3)      # readback is the actual, clamped voltage
    assert p.device_voltage == pytest.approx(0.1)
    assert p.handle_message(":SOUR:VOLT:ILIM:TRIP?") == "1"
    p.handle_message(":SOUR:VOLT 0.05")
    p.handle_message(":READ?")
    assert p.handle_message(":SOUR:VOLT:ILIM:TRIP?") == "0"


def test_compliance_current_source_and_open_circuit():
    p = make(Resistor(1e6))
    p.handle_message(":SOUR:FUNC CURR;:SOUR:CURR 1e-5;:SOUR:CURR:VLIM 2;:SENS:FUNC 'VOLT';:OUTP ON")
    assert float(p.handle_message(":READ?")) == pytest.approx(2.0, rel=1e-3)
    assert p.handle_message(":SOUR:CURR:VLIM:TRIP?") == "1"
    q = make(None)
    q.handle_message(":SOUR:VOLT 1;:OUTP ON")
    assert abs(float(q.handle_message(":READ?"))) < 1e-9


def test_device_switching_mid_point_is_reclamped():
    dev = Resistor(1e6, r_low=100.0, v_switch=1.5)
    p = make(dev)
    p.handle_message(":SOUR:VOLT:ILIM 1e-3;:SOUR:VOLT 2;:OUTP ON")
    i = float(p.handle_message(":READ?"))
    assert i == pytest.approx(1e-3, rel=1e-3)
    assert len(dev.applied) >= 8
    first_v, last_v = dev.applied[0][0], dev.applied[-1][0]
    assert first_v == pytest.approx(2.0) and last_v == pytest.approx(0.1)
    assert p.device_voltage == pytest.approx(0.1)


def test_output_off_device_sees_zero():
    dev = Resistor(1e3)
    p = make(dev)
    p.handle_message(":SOUR:VOLT 0.5")
    assert p.device_voltage == 0.0
    assert abs(float(p.handle_message(":READ?"))) < 1e-9
    assert all(v == 0.0 for v, _ in dev.applied)


def test_measurement_noise_is_seeded():
    readings = []
    for _ in range(2):
        p = make(Resistor(1e4), rng=np.random.default_rng(7))
        p.handle_message(":SOUR:VOLT 1;:OUTP ON;:SENS:COUN 5")
        p.handle_message(":READ?")
        readings.append(p.handle_message(':TRAC:DATA? 1, 5'))
    assert readings[0] == readings[1]
    values = np.array(readings[0].split(","), dtype=float)
    assert values.std() > 0 and values == pytest.approx(1e-4, rel=1e-3)


# ---------------------------------------------------------------- sweeps, lists, buffers
def test_list_sweep_and_source_list():
    p = make(Resistor(1e3))
    p.handle_message(":SOUR:VOLT:ILIM 0.01;:SOUR:LIST:VOLT 0.1, 0.2, 0.3;:SOUR:LIST:VOLT:APP 0.4")
    assert p.handle_message(":SOUR:LIST:VOLT:POIN?") == "4"
    assert p.handle_message(":SOUR:LIST:VOLT?").count(",") == 3
    p.handle_message(':TRAC:MAKE "mybuf", 100')
    p.handle_message(':SOUR:SWE:VOLT:LIST 2, 0, 1, OFF, "mybuf"')
    p.handle_message(":INIT")
    assert p.handle_message(':TRAC:ACT? "mybuf"') == "3"
    data = p.handle_message(':TRAC:DATA? 1, 3, "mybuf", SOUR, UNIT, SOURUNIT').split(",")
    assert [float(x) for x in data[0::3]] == pytest.approx([0.2, 0.3, 0.4], abs=1e-4)
    assert data[1] == "Amp DC" and data[2] == "Volt DC"
    assert p.handle_message(":TRAC:ACT?") == "0"  # defbuffer1 untouched


def test_sweep_variants_and_fail_abort():
    p = make(Resistor(1e3))
    p.handle_message(":SOUR:VOLT:ILIM 1;:SOUR:SWE:VOLT:LIN:STEP 0, 1, 0.25, 0")
    p.handle_message(":INIT")
    assert p.handle_message(":TRAC:ACT?") == "5"
    p.handle_message(":SOUR:SWE:VOLT:LOG 0.01, 1, 3, 0, 2, BEST, ON, ON")
    p.handle_message(":INIT")
    data = p.handle_message(':TRAC:DATA? 1, 12, "defbuffer1", SOUR')
    assert [float(x) for x in data.split(",")][:6] == pytest.approx(
        [0.01, 0.1, 1, 1, 0.1, 0.01], rel=1e-3)
    # failAbort ON (the default): the sweep stops at the first point that hits the limit
    p.handle_message(":SOUR:VOLT:ILIM 1e-3;:SOUR:SWE:VOLT:LIN 0, 2, 5, 0")
    p.handle_message(":INIT")  # 0, 0.5, 1 V fit 1 mA into 1 kΩ; 1.5 V trips
    assert p.handle_message(":TRAC:ACT?") == "4"
    assert p.handle_message(":TRIG:STAT?") == "ABORTED;ABORTED;5"
    p.handle_message(":SOUR:SWE:VOLT:LIN 0, 2, 5, 0, 1, BEST, OFF")
    p.handle_message(":INIT")
    assert p.handle_message(":TRAC:ACT?") == "5"
    p.handle_message(":SOUR:SWE:VOLT:LIN:STEP 0, 1, 2")
    assert errors(p) == [-221]


def test_simple_loop_and_buffers():
    p = make(Resistor(1e3))
    p.handle_message(":SOUR:VOLT 0.1;:OUTP ON")
    p.handle_message(':TRIG:LOAD "SimpleLoop", 7, 0.01')
    t0 = p.clock.now
    p.handle_message(":INIT;*WAI")
    assert p.clock.now - t0 >= 7 * (0.01 + 1 / 50)
    assert p.handle_message(":TRAC:ACT?") == "7"
    assert float(p.handle_message(":FETC?")) == pytest.approx(1e-4, rel=1e-3)
    assert float(p.handle_message(":TRAC:STAT:AVER?")) == pytest.approx(1e-4, rel=1e-3)
    rel = p.handle_message(":TRAC:DATA? 1, 7, 'defbuffer1', REL, STAT, DATE, TIME").split(",")
    assert float(rel[0]) == 0.0 and int(rel[1]) & 8  # front terminals bit
    assert rel[2] == "01/01/2024"
    p.handle_message(":TRAC:POIN 3")
    assert p.handle_message(":TRAC:POIN?") == "3"
    p.handle_message(":SENS:COUN 5;:READ?")
    assert p.handle_message(":TRAC:ACT?") == "3"  # continuous fill wraps
    p.handle_message(':TRAC:FILL:MODE ONCE, "defbuffer1";:TRAC:CLE')
    p.handle_message(":READ?")
    assert p.handle_message(":TRAC:ACT?") == "3"
    p.handle_message(':TRAC:MAKE "b2", 10;:TRAC:DEL "b2";:TRAC:DEL "defbuffer1"')
    p.handle_message(':TRAC:DATA? 1, 99')
    assert errors(p) == [-221, -222]
    p.handle_message(':TRIG:LOAD "Empty"')
    assert p.handle_message(":TRIG:STAT?") == "IDLE;IDLE;0"


def test_settings_keep_state():
    p = make()
    cmds = {
        ":SOUR:VOLT:RANG 2": (":SOUR:VOLT:RANG?", "2.000000E+00"),
        ":SOUR:VOLT:RANG:AUTO ON": (":SOUR:VOLT:RANG:AUTO?", "1"),
        ":SOUR:CURR:RANG 1e-6": (":SOUR:CURR:RANG?", "1.000000E-06"),
        ":SOUR:VOLT:DEL:AUTO 0": (":SOUR:VOLT:DEL:AUTO?", "0"),
        ":SOUR:CURR:READ:BACK OFF": (":SOUR:CURR:READ:BACK?", "0"),
        ":SOUR:VOLT:PROT PROT20": (":SOUR:VOLT:PROT?", "PROT20"),
        ":SENS:CURR:RANG 1e-6": (":SENS:CURR:RANG?", "1.000000E-06"),
        ":SENS:CURR:RSEN ON": (":SENS:CURR:RSEN?", "1"),
        ":SENS:COUN 12": (":SENS:COUN?", "12"),
        ":SENS:CURR:AVER ON": (":SENS:CURR:AVER?", "1"),
        ":SENS:CURR:AVER:COUN 4": (":SENS:CURR:AVER:COUN?", "4"),
        ":SENS:CURR:AVER:TCON MOV": (":SENS:CURR:AVER:TCON?", "MOV"),
        ":SENS:CURR:AZER OFF": (":SENS:CURR:AZER?", "0"),
        ":OUTP:VOLT:SMOD ZERO": (":OUTP:VOLT:SMOD?", "ZERO"),
        ":ROUT:TERM REAR": (":ROUT:TERM?", "REAR"),
        ":DISP:LIGH:STAT ON25": (":DISP:LIGH:STAT?", "ON25"),
        ":FORM:BORD NORM": (":FORM:BORD?", "NORM"),
        ':SENS:FUNC "RES"': (":SENS:FUNC?", '"RES"'),
    }
    for cmd, (query, answer) in cmds.items():
        p.handle_message(cmd)
        assert p.handle_message(query) == answer, cmd
    p.handle_message(":STAT:PRES;:SYST:BEEP 440, 0.2;:DISP:CLE;:SENS:AZER:ONCE")
    assert errors(p) == []
    p.handle_message("*RST")
    assert p.handle_message(":SENS:COUN?") == "1"
    assert p.handle_message(":ROUT:TERM?") == "FRON"


def test_voltage_protection_clamps():
    p = make(Resistor(1e3))
    p.handle_message(":SOUR:VOLT:PROT PROT2;:SOUR:VOLT:ILIM 1;:SOUR:VOLT 5;:OUTP ON")
    assert p.device_voltage == pytest.approx(2.0)
    p.handle_message(":READ?")
    assert p.handle_message(":SOUR:VOLT:PROT:TRIP?") == "1"


# ---------------------------------------------------------------- with the real device model
def test_with_rram_forming_is_compliance_limited():
    rram = pytest.importorskip("mocks.devices.rram")
    dev = rram.RRAMArray(1, rng=np.random.default_rng(1))
    p = make(dev)
    r_virgin = float(dev.resistance.ravel()[0])
    p.handle_message(":SOUR:VOLT:ILIM 1e-4;:SENS:CURR:NPLC 1")
    p.handle_message(":SOUR:SWE:VOLT:LIN 0, 4, 401, 0.01, 1, BEST, OFF")
    p.handle_message(":INIT;*WAI")
    data = np.array(p.handle_message(':TRAC:DATA? 1, 401, "defbuffer1", SOUR, READ')
                    .split(","), dtype=float)
    v, i = data[0::2], data[1::2]
    assert np.all(np.abs(i) <= 1e-4 * 1.01)
    assert errors(p) == []
    if bool(dev.formed.ravel()[0]):
        assert float(dev.resistance.ravel()[0]) < r_virgin
        # after forming the source is clamped: readback voltage < programmed 4 V
        assert v[-1] < 4.0
    # the device never saw more than the programmed maximum
    assert float(dev.max_abs_voltage.ravel()[0]) <= 4.0 + 1e-9


def test_with_rram_small_read_is_ohmic():
    rram = pytest.importorskip("mocks.devices.rram")
    dev = rram.RRAMArray(1, rng=np.random.default_rng(1), formed=True)
    p = make(dev)
    p.handle_message(":SOUR:VOLT 0.1;:SOUR:VOLT:ILIM 1e-2;:OUTP ON")
    i = float(p.handle_message(":READ?"))
    r = float(dev.resistance.ravel()[0])
    expected = float(dev.current(0.1, 0))
    assert i == pytest.approx(expected, rel=0.03)
    assert 0.1 / i == pytest.approx(r, rel=0.05)
