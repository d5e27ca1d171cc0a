"""Calibration store: round trip, history, provenance, atomic writes, clear errors."""

from __future__ import annotations

import math

import pytest
import yaml

from labctl.calibration import CalibrationStore, Parameter
from labctl.errors import ConfigError
from labctl.station import Station


def test_save_and_latest_round_trip(tmp_path):
    store = CalibrationStore(tmp_path)
    store.save("chip-A", "syn-0-3", "dw-sigmoid",
               {"x0": (4.63, 0.01, "V"), "dx": Parameter(2.73, 0.05, "1/V"), "a": 0.978},
               run="results/run1.csv", procedure="switching-probability", station="st")
    cal = store.latest("chip-A", "syn-0-3", "dw-sigmoid")
    assert cal.values() == {"x0": 4.63, "dx": 2.73, "a": 0.978}
    assert cal.parameters["x0"].stderr == 0.01 and cal.parameters["x0"].unit == "V"
    assert math.isnan(cal.parameters["a"].stderr)
    assert cal.run == "results/run1.csv" and cal.procedure == "switching-probability"
    lo, hi = cal.parameters["x0"].interval()
    assert lo == pytest.approx(4.63 - 1.96 * 0.01, rel=1e-4) and hi > 4.63
    # human readable: plain YAML with the names a person looks for
    text = (tmp_path / "chip-A" / "syn-0-3.yaml").read_text()
    assert "dw-sigmoid" in text and "stderr: 0.01" in text
    assert yaml.safe_load(text)["entries"][0]["parameters"]["dx"]["value"] == 2.73


def test_history_keeps_every_fit_and_latest_is_newest(tmp_path):
    store = CalibrationStore(tmp_path)
    for k in range(3):
        store.save("c", "d", "neel-brown", {"delta": (40.0 + k, 1.0)}, date=f"2026-11-2{k}")
    store.save("c", "d", "other", {"q": 1.0})
    assert [c["delta"] for c in store.history("c", "d", "neel-brown")] == [40.0, 41.0, 42.0]
    assert store.latest("c", "d", "neel-brown")["delta"] == 42.0
    assert len(store.history("c", "d")) == 4
    assert store.chips() == ["c"] and store.devices("c") == ["d"]
    assert not list((tmp_path / "c").glob(".*")), "no temporary file left behind"


def test_missing_calibration_names_device_and_model(tmp_path):
    with pytest.raises(ConfigError, match=r"no 'dw-sigmoid' calibration for device 'd7'"):
        CalibrationStore(tmp_path).latest("chip", "d7", "dw-sigmoid")


@pytest.mark.parametrize("name", ["../escape", "a/b", "", ".."])
def test_names_cannot_escape_the_folder(tmp_path, name):
    with pytest.raises(ConfigError, match="not a valid name"):
        CalibrationStore(tmp_path).save(name, "d", "m", {"x": 1.0})


def test_malformed_file_fails_with_file_and_key(tmp_path):
    path = tmp_path / "chip" / "dev.yaml"
    path.parent.mkdir()
    path.write_text("chip: chip\ndevice: dev\nentries:\n  - model: m\n    date: x\n"
                    "    parameters: {x0: {value: abc}}\n")
    with pytest.raises(ConfigError, match=r"dev.yaml: entries\[0\].parameters.x0.value"):
        CalibrationStore(tmp_path).history("chip", "dev")


def test_non_finite_fit_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not finite"):
        CalibrationStore(tmp_path).save("c", "d", "m", {"x": float("nan")})


def test_station_names_the_simulated_chip_by_bench_and_seed(calibration_dir):
    with Station.load("sim-rram-cell", sim=True, seed=11) as st:
        assert st.chip == "sim-rram-cell-seed11"
        st.calibration.save(st.chip, "cell0", "m", {"x": 1.0})
    assert (calibration_dir / "sim-rram-cell-seed11" / "cell0.yaml").is_file()


def test_station_file_sets_chip_and_calibration_folder(tmp_path):
    station_file = tmp_path / "probe.yaml"
    station_file.write_text(
        "name: probe\nchip: wafer3-die12\ncalibration: cal\n"
        "limits: {voltage: 1.0, current: 0.001}\n"
        "instruments:\n  smu: {driver: keithley2450, resource: 'TCPIP::127.0.0.1::5999::SOCKET'}\n")
    st = Station.load(station_file)
    assert st.chip == "wafer3-die12"
    assert st.calibration.root == (tmp_path / "cal").resolve()


def test_default_folder_is_the_users_not_the_installation(monkeypatch, tmp_path):
    monkeypatch.delenv("LABCTL_CALIBRATION")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert CalibrationStore().root == tmp_path / "xdg" / "labctl" / "calibration"
