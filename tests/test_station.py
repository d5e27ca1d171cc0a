"""Station and bench files: validation with one clear line, limits, sim swap, fault injection."""

from __future__ import annotations

import pytest
import yaml
from pyvisa.errors import VisaIOError

from labctl.errors import ConfigError
from labctl.registry import STATION_DIR
from labctl.safety import Limits, narrowed
from labctl.station import Station
from mocks.bench import Bench


def write_station(tmp_path, mutate):
    data = yaml.safe_load((STATION_DIR / "sim-rram-cell.yaml").read_text())
    mutate(data)
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(limts={}), r"station.yaml: limts: unknown key"),
    (lambda d: d["limits"].update(voltage=-1), r"limits.voltage: must be > 0"),
    (lambda d: d["limits"].update(voltage="high"), r"limits.voltage: expected float"),
    (lambda d: d["limits"].pop("current"), r"limits.current: missing required key"),
    (lambda d: d["instruments"]["smu"].update(driver="keithley2451"),
     r"instruments.smu.driver: unknown driver 'keithley2451' \(known: .*keithley2450"),
    (lambda d: d["instruments"]["smu"].update(resource="smu-on-the-desk"),
     r"instruments.smu.resource: invalid VISA resource"),
    (lambda d: d["instruments"]["smu"].update(colour="red"), r"instruments.smu.colour"),
    (lambda d: d.update(instruments={}), r"instruments: no instruments listed"),
])
def test_bad_station_file_names_file_and_key(tmp_path, mutate, message):
    path = write_station(tmp_path, mutate)
    with pytest.raises(ConfigError, match=message) as info:
        Station.load(path)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_malformed_yaml_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nlimits: {voltage: 1\n")
    with pytest.raises(ConfigError, match=r"broken.yaml line \d+: not valid YAML"):
        Station.load(path)


def test_sim_role_missing_from_bench(tmp_path):
    path = write_station(tmp_path, lambda d: d["instruments"].update(
        scope={"driver": "keithley2450", "resource": "TCPIP::127.0.0.1::5026::SOCKET"}))
    with pytest.raises(ConfigError, match=r"instruments.scope: bench 'rram-cell' has no"):
        Station.load(path, sim=True)


def test_unreachable_instrument_fails_with_one_line(tmp_path):
    path = write_station(tmp_path, lambda d: d["instruments"]["smu"].update(
        resource="TCPIP::127.0.0.1::1::SOCKET", options={"visa_library": "@py", "timeout": 500}))
    station = Station.load(path)
    with pytest.raises(ConfigError, match=r"instruments.smu: (cannot open|.* does not answer)"):
        station.instrument("smu")


def test_bad_bench_device_param(tmp_path):
    bench = tmp_path / "b.yaml"
    bench.write_text(yaml.safe_dump({
        "name": "b", "devices": {"cell": {"model": "rram", "params": {"A_q": 1.0}}},
        "instruments": {"smu": {"personality": "keithley2450", "device": "cell"}}}))
    with pytest.raises(ConfigError, match=r"b.yaml: devices.cell.params: .*A_q"):
        Bench.load(bench)


def test_limits_narrow_driver_setters(sim_station):
    smu = sim_station.instrument("smu")
    assert smu.present_limits("source_voltage") == (-4.0, 4.0)
    assert smu.present_limits("compliance_current") == (1e-9, 0.005)
    smu.source_voltage = 3.9
    with pytest.raises(ValueError):
        smu.source_voltage = -4.01


def test_narrowed_and_limit_check():
    assert narrowed([-210, 210], 3) == [-3.0, 3.0]
    assert narrowed([1e-9, 1.05], 1e-3) == [1e-9, 1e-3]
    limits = Limits(voltage=2.0, current=1e-3, pulse_width=1e-3)
    assert limits.check("voltage", -2.5, "v_min").startswith("v_min = -2.5 V exceeds")
    assert limits.check("pulse_width", 1e-4, "w") is None


def test_seeded_bench_is_reproducible():
    a, b, c = Bench.load("rram-cell", seed=1), Bench.load("rram-cell", seed=1), Bench.load(
        "rram-cell", seed=2)
    ra, rb, rc = (x.devices["cell"].device_parameters()["v_form"] for x in (a, b, c))
    assert ra == pytest.approx(rb)
    assert ra != pytest.approx(rc)


def test_transport_faults_timeout_garbage_disconnect(sim_station):
    smu = sim_station.instrument("smu")
    faults = sim_station.bench.faults["smu"]
    faults.drop_replies = 1
    with pytest.raises(VisaIOError, match="Timeout"):
        _ = smu.id
    assert smu.id.startswith("KEITHLEY INSTRUMENTS,MODEL 2450")
    faults.garbage_replies = 1
    with pytest.raises(ValueError):
        smu.measure_iv()
    faults.disconnected = True
    with pytest.raises(VisaIOError):
        _ = smu.source_voltage
    faults.disconnected = False
    assert smu.source_voltage == 0.0


def test_instrument_error_fault_reaches_error_queue(sim_station):
    smu = sim_station.instrument("smu")
    sim_station.bench.instruments["smu"].fault_error = (-200, "injected")
    assert smu.check_errors()  # the driver sees the instrument error
    assert smu.check_errors() == []


def test_tcp_fault_dropped_connection():
    station = Station.load("sim-rram-cell-formed", sim=True, transport="tcp")
    try:
        smu = station.instrument("smu")
        assert smu.source_voltage == 0.0
        station.bench.servers["smu"].drop_connections()
        with pytest.raises(VisaIOError):
            _ = smu.source_voltage
    finally:
        station.bench.stop()


def test_device_short_fault_shows_in_measurement(sim_station):
    smu = sim_station.instrument("smu")
    sim_station.bench.devices["cell"].set_fault(0, "short")
    smu.apply_voltage(compliance_current=1e-3)
    smu.measure_current(nplc=0.1)
    smu.source_voltage = 0.05
    smu.output_enabled = True
    v, i = smu.measure_iv()
    assert v / i == pytest.approx(100.0, rel=0.05)  # r_short of the model
    smu.shutdown()


def test_scientific_notation_without_dot_is_a_number(tmp_path):
    path = write_station(tmp_path, lambda d: d["limits"].update(current="5e-3"))
    assert Station.load(path).limits.current == 5e-3
