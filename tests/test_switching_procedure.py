"""switching-probability end to end on the simulated benches: recovered physics, calibration
store, one pulse list per stage (transactions independent of the trials, over TCP), safe state,
abort, bad input; from Python, the CLI and the GUI.

Single-seed recovery checks allow 4 reported standard errors (a correct fit fails with
probability 6e-5 per parameter); the 95 %-coverage check over many seeds is in test_switching."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymeasure.experiment import Results
from test_cli import labctl_run, results_path

import labctl
from labctl.arrayfile import load_traces
from labctl.calibration import CalibrationStore
from labctl.errors import ConfigError
from labctl.gui import make_window
from labctl.runner import build, execute
from labctl.station import Station
from mocks.devices.stochastic import ic50
from procedures.switching_probability import SwitchingProbability, parse_widths

MTJ = dict(model="mtj-neel-brown", amplitude_start=30e-6, amplitude_stop=100e-6, points=10,
           widths="1e-5,1e-4,1e-3,1e-2", trials=100, adaptive_trials=200, refine=3,
           reset_amplitude=-250e-6, read_amplitude=10e-6, compliance=2.2)


def smu_channel(station):
    return station.bench.instruments["smu"].ch[1]


def assert_recovered(fit, truth: dict, sigmas: float = 4.0):
    for name, value in truth.items():
        k = fit.model.parameters.index(name)
        assert abs(fit.values[k] - value) < sigmas * fit.stderr[k], (name, fit.values[k], value)


def run_on(station, **params):
    proc = build(SwitchingProbability, params)
    results = execute(proc, station, out=station_out(station))
    return proc, results


def station_out(station) -> Path:
    return Path(station.bench.name + "-results")


def sim_station(name: str, tmp_path, monkeypatch):
    """The simulated station ``name``, run from ``tmp_path``; closed after the test."""
    monkeypatch.chdir(tmp_path)
    station = Station.load(name, sim=True)
    yield station
    station.close()


@pytest.fixture
def dw_station(tmp_path, monkeypatch):
    yield from sim_station("sim-dw-synapse", tmp_path, monkeypatch)


def test_dw_default_run_recovers_the_hidden_synapse(dw_station, calibration_dir):
    proc, results = run_on(dw_station)
    data = results.data
    assert set(data["Stage"]) == {1, 2}
    stage2 = data[data["Stage"] == 2]
    assert stage2["Trials"].min() == proc.trials + proc.adaptive_trials or \
        stage2["Trials"].min() == proc.adaptive_trials  # refined amplitudes start at stage 2
    assert stage2["P switch"].between(0.02, 0.98).all()  # trials went to the transition
    assert (data["P low"] <= data["P switch"] + 1e-12).all()
    assert (data["P switch"] <= data["P high"] + 1e-12).all()
    truth = dw_station.bench.devices["syn"].hidden(0)
    assert_recovered(proc.fit, {k: float(v) for k, v in truth.items()})

    cal = CalibrationStore(calibration_dir).latest(dw_station.chip, "dut", "dw-sigmoid")
    assert cal.run == results.data_filename and cal.procedure == "switching-probability"
    assert set(cal.parameters) == {"x0", "dx", "a"}
    assert cal.parameters["x0"].unit == "V" and cal.parameters["x0"].stderr > 0
    assert cal.extra["trials"] == int(data.groupby("Amplitude")["Trials"].max().sum())

    traces = load_traces(results.data_filename)
    assert "fit_values" in traces and traces["list001_r_read"].shape == (proc.trials,
                                                                         proc.points)
    channel = smu_channel(dw_station)
    assert channel.output is False and channel.level["VOLT"] == 0.0  # safe state


def test_mtj_width_dependence_gives_delta_and_ic0(dw_station, calibration_dir):
    with Station.load("sim-mtj", sim=True) as station:
        proc, results = run_on(station, device="mtj0", **MTJ)
        truth = station.bench.devices["mtj"].hidden(0)
        assert_recovered(proc.fit, {"delta": float(truth["delta"]), "ic0": float(truth["ic0"])})
        # the measured 50 % current at each width follows I_c0[1 − ln(t/(τ0 ln 2))/Δ]
        data = results.data
        for width, group in data.groupby("Width (s)"):
            last = group.drop_duplicates("Amplitude", keep="last").sort_values("Amplitude")
            p = last["P switch"].to_numpy()
            measured = np.interp(0.5, np.maximum.accumulate(p) + 1e-9 * np.arange(p.size),
                                 last["Amplitude"].to_numpy())
            expected = float(ic50(width, truth["delta"], truth["ic0"], 1e-9))
            assert measured == pytest.approx(expected, rel=0.03), width
        assert smu_channel(station).output is False
    cal = CalibrationStore(calibration_dir).latest(station.chip, "mtj0", "mtj-neel-brown")
    assert cal.parameters["ic0"].unit == "A" and cal.extra["widths_s"] == [1e-5, 1e-4, 1e-3,
                                                                            1e-2]


def test_transactions_do_not_depend_on_the_number_of_trials(tmp_path, monkeypatch):
    """Over TCP: a run with 10x the trials sends exactly as many messages (counted by the mock
    after a ``*OPC?`` round trip, so the last writes of the shutdown have arrived)."""
    monkeypatch.chdir(tmp_path)
    with Station.load("sim-dw-synapse", sim=True, transport="tcp") as station:
        mock = station.bench.instruments["smu"]
        smu = station.instrument("smu")  # opened (*IDN?) before counting
        counts = []
        for trials in (50, 500):
            before = mock.messages
            run_on(station, trials=trials, adaptive_trials=trials, refine=2)
            smu.ask("*OPC?")
            counts.append(mock.messages - before)
    # two stages x (configure + *OPC? + fetch), shutdown (abort, two channels off), *OPC?
    assert counts == [2 * 3 + 3 + 1] * 2


def test_abort_stops_between_stages_and_leaves_the_smu_safe(dw_station, tmp_path):
    """The procedure's own lifecycle (what the pymeasure worker calls), stopped after the
    first pulse list."""
    proc = build(SwitchingProbability, {"widths": "1e-4,1e-3"})
    proc.station, proc.results_path = dw_station, str(tmp_path / "aborted.csv")
    asked, rows = [], []
    proc.should_stop = lambda: asked.append(1) or len(asked) > 1
    proc.emit = lambda topic, record: rows.append(record) if topic == "results" else None
    proc.startup()
    try:
        proc.execute()
    finally:
        proc.shutdown()
    assert proc.fit is None and proc.calibration is None
    assert 0 < len(rows) == proc.points  # stage 1 of the first width only
    channel = smu_channel(dw_station)
    assert channel.output is False
    assert (channel.data[:, 5] != 0).any()  # the first list did run


@pytest.mark.parametrize("params, message", [
    ({"amplitude_stop": 9.0}, "amplitude_stop = 9 V exceeds the chip's voltage limit 8 V"),
    ({"widths": "1e-4, 0.05"}, "widths = 0.05 s exceeds the chip's pulse_width limit"),
    ({"widths": "1e-4, fast"}, "widths: 'fast' is not a number"),
    ({"reset_amplitude": 1.0}, "opposite to the write pulses"),
    ({"compliance": 0.05}, "compliance = 0.05 A exceeds"),
    ({"widths": "5e-6"}, "widths = 5e-06 s is shorter than this SMU's shortest pulse 1e-05 s"),
])
def test_bad_parameters_fail_before_anything_is_applied(dw_station, params, message):
    proc = build(SwitchingProbability, params)
    with pytest.raises(ConfigError, match=message):
        execute(proc, dw_station, out="never")
    assert smu_channel(dw_station).data.size == 0
    assert not Path("never").exists() or not list(Path("never").glob("*.csv"))


def test_parse_widths():
    assert parse_widths("1e-3; 1e-5,1e-3") == [1e-5, 1e-3]
    with pytest.raises(ValueError, match="positive"):
        parse_widths("-1e-3")
    with pytest.raises(ValueError, match="at least one"):
        parse_widths(" , ")


def test_python_api_and_cli(tmp_path, monkeypatch, calibration_dir):
    monkeypatch.chdir(tmp_path)
    df = labctl.run("switching-probability", sim=True, seed=7, trials=100, adaptive_trials=100)
    assert list(df.columns) == SwitchingProbability.DATA_COLUMNS
    assert df.attrs["hardware_time_s"] > 0
    chip = "sim-dw-synapse-seed7"
    assert CalibrationStore(calibration_dir).latest(chip, "dut", "dw-sigmoid").run == \
        df.attrs["results_file"]

    done = labctl_run(tmp_path, "run", "switching-probability", "--sim", "--station", "sim-mtj",
                      *(f"--set={k}={v}" for k, v in MTJ.items()), "--set", "trials=50",
                      "--set", "adaptive_trials=50")
    assert done.returncode == 0, done.stderr
    frame = pd.read_csv(results_path(done.stdout), comment="#")
    assert set(frame["Width (s)"]) == {1e-5, 1e-4, 1e-3, 1e-2}

    bad = labctl_run(tmp_path, "run", "switching-probability", "--sim", "--set",
                     "amplitude_stop=20")
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1 and "amplitude_stop" in bad.stderr


def test_gui_plots_p_versus_amplitude_live(qtbot, dw_station, tmp_path, queue_to_finished):
    window = make_window(SwitchingProbability, dw_station, out=tmp_path)
    qtbot.addWidget(window)
    window.show()
    assert (window.x_axis, window.y_axis) == ("Amplitude", "P switch")
    window.inputs.trials.setValue(100)
    experiment = queue_to_finished(window)
    data = Results.load(experiment.results.data_filename).data
    assert len(data) > 14 and math.isclose(data["Amplitude"].min(), 1.0)
    shot = tmp_path / "switching-gui.png"
    assert window.grab().save(str(shot)) and shot.stat().st_size > 0
    window.close()
