"""Protocol tests (pymeasure expected_protocol) for the neuron bench's generator and scope
drivers, and their runs against the mock personalities."""

import warnings

import numpy as np
import pytest
from pymeasure.test import expected_protocol

from drivers.infiniivision import InfiniiVision
from drivers.keysight33500b import Keysight33500B
from labctl.safety import Limits, apply_limits
from labctl.station import Station

warnings.filterwarnings("ignore", category=FutureWarning)

BURST = ("OUTP OFF;OUTP:LOAD INF;FUNC PULS;FUNC:PULS:WIDT 1e-06;FUNC:PULS:PER 0.002;"
         "FUNC:PULS:WIDT 0.001;VOLT:LOW 0;VOLT:HIGH 2;VOLT:LOW 0;BURS:MODE TRIG;BURS:NCYC 3;"
         "BURS:STAT ON;TRIG:SOUR BUS;OUTP ON")


@pytest.mark.parametrize("prop, get_cmd, set_cmd, value, wire", [
    ("voltage_high", "VOLT:HIGH?", "VOLT:HIGH %s", 1.5, "1.5"),
    ("voltage_low", "VOLT:LOW?", "VOLT:LOW %s", -0.25, "-0.25"),
    ("pulse_width", "FUNC:PULS:WIDT?", "FUNC:PULS:WIDT %s", 2e-6, "2e-06"),
])
def test_awg_limited_controls(prop, get_cmd, set_cmd, value, wire):
    with expected_protocol(Keysight33500B, [(set_cmd % wire, None), (get_cmd, wire)]) as awg:
        setattr(awg, prop, value)
        assert getattr(awg, prop) == pytest.approx(value)


def test_awg_limits_refuse_before_writing():
    with expected_protocol(Keysight33500B, []) as awg:
        apply_limits(awg, Limits(voltage=1.0, current=1e-3, pulse_width=1e-3))
        with pytest.raises(ValueError, match="voltage_high value 2 is outside"):
            awg.voltage_high = 2.0
        with pytest.raises(ValueError, match="pulse_width"):
            awg.configure_pulse_burst(0.5, 0.0, 2e-3, 4e-3, 1)
        with pytest.raises(ValueError, match="below the period"):
            awg.configure_pulse_burst(0.5, 0.0, 1e-4, 1e-4, 1)
        with pytest.raises(ValueError, match="burst cycles"):
            awg.configure_pulse_burst(0.5, 0.0, 1e-4, 1e-3, 0)


def test_awg_burst_trigger_and_shutdown_in_one_write_each():
    with expected_protocol(Keysight33500B, [
            (BURST, None), ("*TRG;*OPC?", "1"),
            ("OUTP OFF;BURS:STAT OFF;FUNC DC;VOLT:OFFS 0;*OPC?", "1")]) as awg:
        awg.configure_pulse_burst(2.0, 0.0, 1e-3, 2e-3, 3)
        awg.trigger_burst()
        awg.shutdown()


def _block(payload: bytes) -> bytes:
    digits = str(len(payload))
    return f"#{len(digits)}{digits}".encode() + payload


def test_scope_read_waveform_protocol():
    codes = np.array([32768, 33768, 31768], dtype=">u2")
    pre = "1,0,3,1,+1.0E-06,-2.0E-06,0,+1.0E-04,+5.0E-01,32768"
    with expected_protocol(InfiniiVision, [
            (":WAVeform:SOURce CHANnel2;:WAVeform:FORMat WORD;:WAVeform:BYTeorder MSBFirst;"
             ":WAVeform:UNSigned 1;:WAVeform:POINts:MODE RAW;:WAVeform:POINts 1000", None),
            (":waveform:preamble?", pre),
            (":WAVeform:DATA?", _block(codes.tobytes()) + b"\n")]) as scope:
        t, v = scope.read_waveform(2, 1000)
    assert t == pytest.approx([-2e-6, -1e-6, 0.0])
    assert v == pytest.approx([0.5, 0.6, 0.4])


@pytest.mark.parametrize("prop, get_cmd, set_cmd, value, wire", [
    ("trigger_source", ":TRIGger:EDGE:SOURce?", ":TRIGger:EDGE:SOURce %s", "EXT", "EXT"),
    ("trigger_level", ":TRIGger:EDGE:LEVel?", ":TRIGger:EDGE:LEVel %s", 0.5, "0.5"),
    ("trigger_sweep", ":TRIGger:SWEep?", ":TRIGger:SWEep %s", "NORM", "NORM"),
    ("timebase_reference", ":TIMebase:REFerence?", ":TIMebase:REFerence %s", "LEFT", "LEFT"),
    ("waveform_points", ":WAVeform:POINts?", ":WAVeform:POINts %s", 100000, "100000"),
])
def test_scope_controls(prop, get_cmd, set_cmd, value, wire):
    with expected_protocol(InfiniiVision, [(set_cmd % wire, None), (get_cmd, wire)]) as scope:
        setattr(scope, prop, value)
        assert getattr(scope, prop) == value


def test_scope_setup_acquire_and_shutdown():
    with expected_protocol(InfiniiVision, [
            (":CHANnel1:DISPlay 1;:CHANnel1:COUPling DC;:CHANnel1:SCALe 0.25;"
             ":CHANnel1:OFFSet 1", None),
            (":SINGle;:OPERegister:CONDition?", "+8"), ("*OPC?", "1"),
            (":STOP", None)]) as scope:
        scope.setup_channel(1, 0.25, 1.0)
        scope.single()
        scope.wait_acquired()
        scope.shutdown()


def test_scope_rejects_a_malformed_block():
    with expected_protocol(InfiniiVision, [(":WAVeform:DATA?", b"1\n")]) as scope:
        scope.write(":WAVeform:DATA?")
        with pytest.raises(ValueError, match="definite-length block"):
            scope.read_block()


@pytest.mark.parametrize("transport", ["inprocess", "tcp"])
def test_drivers_against_the_mocks(transport):
    with Station.load("sim-nbox-neuron", sim=True, transport=transport) as st:
        awg, scope = st.instrument("awg"), st.instrument("scope")
        scope.write(":TIMebase:RANGe 1e-3;:TIMebase:REFerence LEFT;:TIMebase:POSition 0")
        scope.trigger_source, scope.trigger_sweep = "EXT", "NORM"
        scope.setup_channel(1, 0.25, 1.0)
        awg.configure_pulse_burst(2.2, 0.0, 1e-3, 2e-3, 1)
        scope.single()
        st.wait(1e-4)
        awg.trigger_burst()
        scope.wait_acquired()
        for fmt in ("word", "byte"):
            t, v = scope.read_waveform(1, 5000, fmt)
            assert t.size == 5000 and t[0] == pytest.approx(-1e-4)
            # the node charges towards 2.2·R_off/(R_s + R_off) and fires at V_th ≈ 1.05 V
            assert 0.95 < v.max() < 1.2
        assert scope.ask(":SYSTem:ERRor?").startswith("0") and awg.ask("SYST:ERR?")[0] == "0"
        st.shutdown()
        assert not st.bench.instruments["awg"].ch[1].output


def test_scpi_mock_errors_and_forms():
    with Station.load("sim-nbox-neuron", sim=True) as st:
        awg, scope = st.bench.instruments["awg"], st.bench.instruments["scope"]
        assert awg.handle_message("sour1:volt:high 1.5;low 0.5;:SOUR:VOLT?") == \
            f"{1.0:+.15E}"
        assert awg.handle_message("SOURCE2:FUNCTION PULSE;:SOUR2:FUNC?") == "PULS"
        awg.handle_message("VOLT 30")  # beyond 10 Vpp into 50 ohm
        awg.handle_message("FOO:BAR 1")
        awg.handle_message("FUNC NOIS")
        codes = [awg.handle_message("SYST:ERR?").split(",")[0] for _ in range(4)]
        assert codes == ["-222", "-113", "-221", "0"]
        assert scope.handle_message(":timebase:scale 1e-4;:TIM:RANG?") == f"{1e-3:+.6E}"
        scope.handle_message(":CHAN1:SCAL 100")
        assert scope.handle_message(":SYST:ERR?").startswith("-222")
        # one binary block answers a waveform query: header, payload, nothing else
        scope.handle_message(":DIG CHAN1;:WAV:FORM BYTE;:WAV:POIN:MODE RAW;:WAV:POIN 1000")
        reply = scope.handle_message(":WAV:DATA?").encode("latin-1")
        assert reply[:2] == b"#4" and int(reply[2:6]) == len(reply) - 6 == 1000
        pre = scope.handle_message(":WAV:PRE?").split(",")
        assert pre[0] == "0" and int(pre[2]) == 1000 and float(pre[9]) == 128
        # WORD, MSB first unsigned vs LSB first signed: the same acquired record
        scope.handle_message(":WAV:FORM WORD;:WAV:BYT MSBF;:WAV:UNS 1")
        msb = scope.handle_message(":WAV:DATA?").encode("latin-1")[6:]
        scope.handle_message(":WAV:BYT LSBF;:WAV:UNS 0")
        lsb = scope.handle_message(":WAV:DATA?").encode("latin-1")[6:]
        unsigned = np.frombuffer(msb, ">u2").astype(int)
        assert np.array_equal(unsigned - 32768, np.frombuffer(lsb, "<i2"))


@pytest.mark.parametrize("load, emf_per_volt", [("INF", 1.0), ("50", 2.0)])
def test_arb_upload_plays_into_the_circuit_through_the_output_load(load, emf_per_volt):
    """A stock-driver DAC upload (a 0 → +full-scale staircase of 8 samples at 8 kSa/s: levels
    from the offset to the high level), played
    as one triggered burst: the EMF rebuilt from the two probes (node + R_s drop·(1 + 50 Ω/R_s))
    is the held staircase, doubled into a 50 Ω load setting (the output's 50 Ω source into a
    high-impedance circuit)."""
    from pymeasure.instruments.agilent.agilent33500 import Agilent33500

    with Station.load("sim-nbox-neuron", sim=True) as st:
        awg = Agilent33500(st.bench.adapter("awg"))
        awg.write(f"OUTP:LOAD {load}")
        awg.data_arb("stair", [0, 4681, 9362, 14043, 18724, 23405, 28086, 32767], "DAC")
        awg.arb_file, awg.shape, awg.arb_srate = "stair", "ARB", 8e3
        awg.amplitude, awg.offset = 0.5, 0.25  # DAC 0 → 0.25 V, +32767 → 0.5 V
        awg.burst_state, awg.burst_ncycles, awg.trigger_source = True, 1, "BUS"
        awg.output = True
        scope = st.instrument("scope")
        scope.write(":TIMebase:RANGe 1e-3;:TIMebase:REFerence LEFT;:TIMebase:POSition 1e-4")
        scope.trigger_source, scope.trigger_sweep = "EXT", "NORM"
        scope.single()
        awg.trigger()
        scope.wait_acquired()
        t, node = scope.read_waveform(1, 10_000)
        _, drop = scope.read_waveform(2, 10_000)
        p = st.bench.devices["neuron"].params
        emf = node + drop * (1 + 50.0 / p.r_series_ohm)
        for k in range(8):
            mid = (t > (k + 0.3) / 8e3) & (t < (k + 0.7) / 8e3)
            # scope noise 1 mV rms over ~40 samples, WORD quantisation 0.06 mV: 1 mV bound
            level = 0.25 + 0.25 * k / 7
            assert emf[mid].mean() == pytest.approx(emf_per_volt * level, abs=1e-3)
        assert not st.bench.instruments["awg"].errors
