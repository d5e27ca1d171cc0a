"""RF spintronic procedures end to end on the simulated benches: the fits recover the benches'
hidden parameters within their reported intervals, program-resonance sets a 9-junction chain,
chain-response follows the chain model, list mode for maps, safe state after abort, CLI, GUI."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pymeasure.experiment import Results
from scipy.stats import binom

import labctl
import labctl.runner
from labctl.gui import make_window
from labctl.runner import build
from labctl.station import Station
from mocks.devices.spintronics import chain_voltage
from procedures.spin_diode import SpinDiode

Z95 = 1.959964
SEEDS = (11, 12, 13, 14, 15, 16, 17, 18)


def min_inside(n: int, coverage: float = 0.95, risk: float = 1e-3) -> int:
    """The fewest of n independent intervals of nominal ``coverage`` that must contain the
    truth: fewer happens with probability below ``risk`` if the intervals are honest."""
    k = 0
    while binom.cdf(k, n, coverage) < risk:
        k += 1
    return k


def inside(parameter, truth: float) -> bool:
    lo, hi = parameter.interval(Z95)
    return lo <= truth <= hi


def latest(station, device, model):
    return station.calibration.latest(station.chip, device, model)


@pytest.fixture
def spin_station():
    station = Station.load("sim-spin-diode", sim=True)
    yield station
    station.close()


@pytest.fixture
def chain_station():
    station = Station.load("sim-rf-chain", sim=True)
    yield station
    station.close()


def test_spin_diode_fits_recover_hidden_resonance_and_damping(tmp_path):
    """f_r, α and the sensitivity of a junction on benches of 8 seeds: each parameter's 95 %
    interval contains the hidden value on at least ``min_inside(8)`` of them."""
    hits = {"f_r": 0, "alpha": 0, "sensitivity": 0}
    for seed in SEEDS:
        with Station.load("sim-spin-diode", sim=True, seed=seed) as st:
            labctl.run("spin-diode", station=st, out=tmp_path)
            cal = latest(st, "mtj0", "spin-diode")
            dev = st.bench.devices["mtj"]
            s = dev.sym[0]
            truth = {"f_r": dev.resonances(bias=[0.0], field_mt=0.0)[0],
                     "alpha": dev.alpha[0],
                     "sensitivity": dev.ksd[0] * (abs(s) + math.sqrt(s * s + 4)) / 2}
            for name in hits:
                hits[name] += inside(cal.parameters[name], truth[name])
            assert cal.parameters["linewidth"].value == pytest.approx(
                truth["alpha"] * truth["f_r"], rel=1e-2)
    need = min_inside(len(SEEDS))
    assert all(count >= need for count in hits.values()), (hits, need)


def test_spin_diode_map_uses_the_list_mode(spin_station, tmp_path):
    gen = spin_station.bench.instruments["rf_source"]
    sent = []
    original = gen.handle_message

    def spy(message):
        sent.append(message)
        return original(message)

    gen.handle_message = spy
    df = labctl.run("spin-diode", station=spin_station, out=tmp_path, points=41,
                    map_axis="power", map_steps=3, map_start=-35, map_stop=-25)
    assert len(df) == 3 * 41
    lists = [m for m in sent if ":LIST:FREQ " in m]
    assert len(lists) == 1 and lists[0].count(",") >= 3 * 41 - 1  # the whole map, one list
    assert sum(m == "*TRG" for m in sent) == 3 * 41 - 1
    assert not [m for m in sent if m.startswith(":FREQ ") or m.startswith(":POW ")]
    # the rectified voltage grows with power: V ∝ P over the map's rows (10 dB -> x10)
    peak = df.groupby("Power (dBm)")["Rectified voltage (V)"].apply(lambda v: v.abs().max())
    assert peak.iloc[-1] / peak.iloc[0] == pytest.approx(10, rel=0.02)
    sidecar = Path(df.attrs["results_file"]).with_suffix(".h5")
    from labctl.arrayfile import load_maps
    assert load_maps(sidecar)["rectified_voltage"].shape == (3, 41)


def test_bias_map_rows_follow_the_hidden_tuning(spin_station, tmp_path):
    """A frequency x bias map in one list: each row's fitted f_r is the hidden resonance at
    that bias within 5 of its standard errors (p = 6e-7 per row)."""
    mtj = spin_station.bench.devices["mtj"]
    df = labctl.run("spin-diode", station=spin_station, out=tmp_path, points=61,
                    map_axis="bias", map_start=-20e-6, map_stop=20e-6, map_steps=3)
    assert sorted(df["Bias current (A)"].unique()) == pytest.approx([-20e-6, 0.0, 20e-6])
    fits = spin_station.calibration.history(spin_station.chip, "mtj0", "spin-diode")
    assert len(fits) == 3
    for cal in fits:
        truth = mtj.resonances(bias=[cal.extra["bias_current_a"]], field_mt=0.0)[0]
        assert abs(cal["f_r"] - truth) <= 5 * cal.parameters["f_r"].stderr
    assert spin_station.bench.instruments["smu"].output_on is False


def test_resonance_tuning_recovers_the_tuning_law(spin_station, tmp_path):
    labctl.run("resonance-tuning", station=spin_station, out=tmp_path, bias_steps=5,
               field_steps=2)
    fit = latest(spin_station, "mtj0", "resonance-tuning").parameters
    dev = spin_station.bench.devices["mtj"]
    truth = {"f0": dev.f_r0[0], "kappa_i": dev.tune_per_a[0],
             "inv_hs": 1 / dev.params.field_saturation_mt}
    for name, value in truth.items():  # one run: within 4 standard errors (p = 6e-5 each)
        assert abs(fit[name].value - value) <= 4 * fit[name].stderr, (name, fit[name], value)


def test_stno_spectrum_recovers_threshold_and_q(tmp_path):
    """I_th and Q of oscillators on 8 seeds, as for the spin-diode fits."""
    hits = {"i_th": 0, "q": 0}
    seeds = SEEDS[:6]
    for seed in seeds:
        with Station.load("sim-stno", sim=True, seed=seed) as st:
            df = labctl.run("stno-spectrum", station=st, out=tmp_path, current_steps=16)
            fit = latest(st, "stno", "stno").parameters
            dev = st.bench.devices["osc"]
            hits["i_th"] += inside(fit["i_th"], dev.stno_i_th)
            hits["q"] += inside(fit["q"], dev.stno_q)
            below = df["Current (A)"] < 0.95 * dev.stno_i_th
            assert (df.loc[below, "Power (W)"] == 0).all()  # nothing seen below threshold
    need = min_inside(len(seeds))
    assert all(count >= need for count in hits.values()), (hits, need)


def test_program_resonance_sets_a_nine_junction_chain(chain_station, tmp_path):
    tolerance, detuning = 20e3, 300e3
    df = labctl.run("program-resonance", station=chain_station, out=tmp_path,
                    tolerance=tolerance, detuning=detuning)
    final = df.groupby("Junction").last()
    assert list(final.index) == list(range(9)) and final["Verified"].all()
    dev = chain_station.bench.devices["chain"]
    f_in = np.geomspace(40e6, 120e6, 9)
    bias = np.array([latest(chain_station, f"mtj{k}", "programmed-resonance")["bias_current"]
                     for k in range(9)])
    np.testing.assert_allclose(bias, final["Bias current (A)"].to_numpy())
    true_f_r = dev.resonances(bias=bias)  # the hidden resonances at the programmed biases
    assert np.all(np.abs(true_f_r - (f_in + detuning)) <= tolerance), true_f_r - f_in - detuning
    for role in [f"bias{k}" for k in range(9)] + ["rf_source"]:  # left safe
        mock = chain_station.bench.instruments[role]
        assert not getattr(mock, "output_on", False) and not getattr(mock, "rf_on", False)


def test_program_resonance_uses_a_chain_junctions_tuning_calibration(chain_station, tmp_path):
    """resonance-tuning on junction 4's own SMU (smu_role=bias4) calibrates its slope, which
    program-resonance then uses instead of a probe step: its first measurement is at 0 A."""
    f_in = np.geomspace(40e6, 120e6, 9)
    labctl.run("resonance-tuning", station=chain_station, out=tmp_path, smu_role="bias4",
               device_name="mtj4", f_guess=f_in[4], field_steps=1, bias_steps=4)
    fit = latest(chain_station, "mtj4", "resonance-tuning").parameters
    dev = chain_station.bench.devices["chain"]
    assert abs(fit["f0"].value - dev.f_r0[4]) <= 4 * fit["f0"].stderr
    df = labctl.run("program-resonance", station=chain_station, out=tmp_path, junctions="4")
    assert df["Bias current (A)"].iloc[0] == 0.0 and df["Verified"].iloc[-1] == 1
    assert len(df) == 2  # the calibrated slope lands within tolerance in one correction


def test_chain_response_follows_the_chain_model(chain_station, tmp_path):
    labctl.run("program-resonance", station=chain_station, out=tmp_path)
    df = labctl.run("chain-response", station=chain_station, out=tmp_path, steps=6)
    dev = chain_station.bench.devices["chain"]
    bias = [latest(chain_station, f"mtj{k}", "programmed-resonance")["bias_current"]
            for k in range(9)]
    f = np.geomspace(40e6, 120e6, 9)[:3]
    p = np.array([[10 ** (x / 10) * 1e-3, 1e-6, 1e-6] for x in df["Swept value"]])
    loss = 10 ** (-4.77 / 10)
    model = chain_voltage(p * loss, np.broadcast_to(f, p.shape), dev.resonances(bias=bias),
                          dev.alpha, dev.ksd, dev.sym, 1.0, dev.signs)
    measured = df["Chain output (V)"].to_numpy()
    # reading noise: 10 µV (SMU) ⊕ 2 µV (device) ⊕ 50 ppm of the reading; 5 sigma
    sigma = np.sqrt(10e-6 ** 2 + 2e-6 ** 2 + (50e-6 * model) ** 2)
    assert np.all(np.abs(measured - model) <= 5 * sigma), measured - model
    # the oscillator the chain drives is followed by the analyzer while it oscillates
    assert df["Oscillator frequency (Hz)"].notna().all()


def test_abort_leaves_rf_source_smu_and_coil_safe(spin_station):
    proc = build("spin-diode", {"points": 100, "field": 5.0, "map_axis": "field",
                                "map_start": 5.0, "map_stop": 10.0, "map_steps": 3})
    proc.station = spin_station
    calls = {"n": 0}

    def stop_after_some():
        calls["n"] += 1
        return calls["n"] > 20

    proc.should_stop = stop_after_some
    proc.emit = lambda topic, record: None  # no worker: rows and progress go nowhere
    proc.startup()
    try:
        proc.execute()
    finally:
        proc.shutdown()
    bench = spin_station.bench
    assert bench.devices["mtj"].field_mt == 0.0 and bench.instruments["field"].on is False
    assert max(bench.instruments["field"].steps) <= 0.05 + 1e-12  # ramped up and down
    assert bench.instruments["rf_source"].rf_on is False
    assert bench.instruments["rf_source"].sweep is None
    assert bench.instruments["smu"].output_on is False
    assert bench.devices["mtj"].tones == {}


def labctl_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("labctl")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "labctl.cli"]
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_cli_runs_stno_spectrum_and_refuses_an_over_limit_bias(tmp_path):
    done = labctl_cli(tmp_path, "run", "stno-spectrum", "--sim", "--set", "current_steps=4",
                      "--transport", "tcp")
    assert done.returncode == 0, done.stderr
    bad = labctl_cli(tmp_path, "run", "spin-diode", "--sim", "--set", "bias_current=0.001")
    assert bad.returncode == 2
    assert "bias_current" in bad.stderr and "limit" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("name", ["spin-diode", "resonance-tuning", "program-resonance",
                                  "stno-spectrum", "chain-response"])
def test_gui_window_for_every_rf_procedure(qtbot, name, tmp_path):
    cls = labctl.runner.procedure_class(name)
    with Station.load(cls.DEFAULT_SIM_STATION, sim=True) as station:
        window = make_window(cls, station, out=tmp_path)
        qtbot.addWidget(window)
        assert set(cls.DISPLAYS) <= set(window.inputs.__dict__)
        window.close()


def test_gui_queues_a_spin_diode_run(qtbot, spin_station, tmp_path, queue_to_finished):
    window = make_window(SpinDiode, spin_station, out=tmp_path)
    qtbot.addWidget(window)
    window.inputs.points.setValue(31)
    experiment = queue_to_finished(window)
    assert len(Results.load(experiment.results.data_filename).data) == 31
    assert spin_station.bench.instruments["rf_source"].rf_on is False
    window.close()
