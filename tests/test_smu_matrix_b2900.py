"""The SMU + matrix array controller with a Keysight B2900-series SMU (10 µs pulses) next to the
Keithley 2450 (2.05 ms): SMU adapters, capabilities, the B2900 mock on a two-terminal device,
and write-verify on the default random target map."""

from __future__ import annotations

import numpy as np
import pytest
from pymeasure.test import expected_protocol
from test_array_programming import check_write_verify

import labctl
from drivers.keysight_b2900 import KeysightB2900
from drivers.smu_port import B2900Port, smu_port
from labctl.arrayfile import load_pulses
from labctl.station import Station
from mocks.devices.rram import RRAMArray
from mocks.instruments import two_terminal
from mocks.instruments.keysight_b2900 import KeysightB2900Personality

IDN = "Keysight Technologies,B2912A,MY51140012,3.4.2011.5100"
PREPARE = (":SOUR1:FUNC:MODE VOLT;:SOUR1:VOLT:MODE FIX;:SOUR1:FUNC:SHAP DC;:SOUR1:VOLT 0;"
           ":SENS1:CURR:NPLC 0.1")


@pytest.mark.parametrize("station, min_width", [
    ("sim-crossbar-smu-matrix-b2900", 10e-6),     # B2912A data sheet: 10 µs pulses
    ("sim-crossbar-smu-matrix", 0.1 / 50 + 50e-6),  # 2450: t_int (0.1 PLC at 50 Hz) + 50 µs
])
def test_capabilities_report_the_smus_shortest_pulse(station, min_width):
    with Station.load(station, sim=True) as st:
        caps = st.instrument("array").capabilities
        assert caps.min_pulse_width == pytest.approx(min_width, rel=1e-9)
        assert caps.time_grid == pytest.approx(1e-6)
        assert caps.hardware_compliance


def test_b2900_port_prepares_reads_and_pulses_in_few_messages():
    setup = (":SOUR1:FUNC:MODE VOLT;:SOUR1:FUNC:SHAP PULS;:SOUR1:VOLT 0;:SOUR1:VOLT:MODE LIST;"
             ":SOUR1:LIST:VOLT 1.2,0.2;:SOUR1:PULS:DEL 0;:SOUR1:PULS:WIDT 1e-05;"
             ":TRIG1:SOUR AINT;:TRIG1:COUN 2;:ARM1:COUN 1;:FORM:ELEM:SENS VOLT,CURR,TIME;"
             ":INIT (@1)")
    with expected_protocol(KeysightB2900, [
        ("*IDN?", IDN),
        (PREPARE, None),
        (":SOUR1:VOLT 0.2;:OUTP1 1;:MEAS:CURR? (@1)", "+2.0E-05"),
        (setup, None),
        ("*OPC?", "1"),
        (":FETC:ARR? (@1)", "1.2,1e-3,0.1,0.2,3e-5,0.2"),
        # after the pulsed list: back to a fixed DC level in the reading's message
        (":SOUR1:VOLT:MODE FIX;:SOUR1:FUNC:SHAP DC;:SOUR1:VOLT 0;:OUTP1 1;:MEAS:CURR? (@1)",
         "-1.0E-06"),
    ]) as smu:
        port = smu_port(smu)
        assert isinstance(port, B2900Port)
        port.prepare(0.1)
        assert port.min_pulse_width == 10e-6
        assert port.read(0.2) == pytest.approx(2e-5)
        # 10 µs computed on the 1 µs grid is not exactly 1e-05: sent as set
        currents = port.pulses([1.2], 10 * 1e-6 + 1e-21, 0.2)
        assert currents == pytest.approx([1e-3, 3e-5])
        assert port.read(0.0) == pytest.approx(-1e-6)


def test_smu_port_refuses_an_instrument_it_has_no_adapter_for():
    with pytest.raises(TypeError, match="no SMU \\+ matrix adapter for object"):
        smu_port(object())


def test_b2900_mock_pulses_a_two_terminal_device_for_the_width_and_reads_at_its_end():
    """A pulsed list [-1.2 V, 0.2 V] of 10 µs pulses into an RRAM cell: the cell changes as a
    twin cell held at -1.2 V for 10 µs under the same compliance, and the reading of the
    0.2 V pulse is the twin's current at 0.2 V within the cell's read noise (±1 % uniform, so
    1.5 % bounds it)."""
    cell = RRAMArray(1, rng=np.random.default_rng(3), formed=True)
    twin = RRAMArray(1, rng=np.random.default_rng(3), formed=True)
    smu = KeysightB2900Personality(device=cell)
    smu.handle_message(":SOUR:FUNC:MODE VOLT;:SOUR:FUNC:SHAP PULS;:SOUR:VOLT 0;"
                       ":SOUR:VOLT:MODE LIST;:SOUR:LIST:VOLT -1.2,0.2;:SOUR:PULS:WIDT 1e-05;"
                       ":SENS:CURR:PROT 0.01;:TRIG:COUN 2;:FORM:ELEM:SENS CURR,TIME;:INIT")
    current, t = (np.array(smu.handle_message(":FETC:ARR? (@1)").split(","), float)
                  .reshape(2, 2).T)
    r_before = float(twin.resistance[0])
    two_terminal.hold(twin, 0, -1.2, 10e-6, 0.01)
    two_terminal.hold(twin, 0, 0.2, 10e-6, 0.01)
    assert float(cell.resistance[0]) == pytest.approx(float(twin.resistance[0]), rel=1e-12)
    assert abs(float(cell.resistance[0]) / r_before - 1) > 0.005, "the pulse moved the cell"
    expected = float(np.asarray(twin.current(0.2, 0)).reshape(-1)[0])
    assert current[1] == pytest.approx(expected, rel=0.015)
    assert np.all(np.diff(t) >= 10e-6)  # the points are at least a pulse width apart


def test_write_verify_through_the_b2912a_programs_the_default_random_map(tmp_path,
                                                                         monkeypatch):
    """The map of the other backends (default target, seed, g range), on two rows holding two
    of the bench's unformable devices; the whole 32x32 array is measured in the README. The
    10 µs pulses move a device a few % of the way to its level, so it converges from either
    side (the 2450's 2.05 ms pulses saturate it instead: next test)."""
    with Station.load("sim-crossbar-smu-matrix-b2900", sim=True) as station:
        smu = station.bench.instruments["smu"]
        messages = []
        handle = smu.handle_message
        monkeypatch.setattr(smu, "handle_message", lambda m: (messages.append(m), handle(m))[1])
        frame = labctl.run("write-verify", station=station, out=tmp_path, rows="6-7",
                           tolerance=5.0, max_pulses=80, pulse_bias="float",
                           read_bias="ground")
        share = check_write_verify(station, frame, slice(6, 8))
        pulses = load_pulses(frame.attrs["results_file"])
    assert share >= 0.95, f"smu-matrix-b2900: only {share:.1%} converged"
    assert pulses["width_s"].min() == pytest.approx(10e-6)
    # SMU messages: per pulse one pulsed list (one configuring write ending in :INIT, *OPC?,
    # one fetch) and one reading after it; per verify read one reading per device
    n = len(frame)
    runs = sum(":INIT" in m for m in messages)
    readings = sum(":MEAS:CURR?" in m for m in messages)
    assert runs == len(pulses) == sum(m.startswith(":FETC:ARR?") for m in messages)
    assert readings > len(pulses) and (readings - len(pulses)) % n == 0


def test_write_verify_through_the_2450_reports_the_default_map_out_of_reach(tmp_path):
    """With the 2450's 2.05 ms pulses every SET carries a device to its SET level (< 4.6 kΩ)
    and every RESET to its RESET level (> 9.4 kΩ), over the default targets (5.3..8.7 kΩ): the
    devices are reported out of reach after ``stuck_after`` overshoots at the smallest drive,
    the budget is not spent."""
    with Station.load("sim-crossbar-smu-matrix", sim=True) as station:
        frame = labctl.run("write-verify", station=station, out=tmp_path, rows="6",
                           tolerance=5.0, max_pulses=80, pulse_bias="float",
                           read_bias="ground", stuck_after=5)
        unformed = ~station.bench.devices["xbar"].devices.formed[6]
    status = frame["Status"].to_numpy()
    assert np.array_equal(status == "stuck", unformed)
    formed = status[~unformed]
    assert set(formed) == {"out of reach"}
    assert frame.loc[~unformed, "Pulses"].max() <= 5 + 2  # a SET and a RESET before flipping
