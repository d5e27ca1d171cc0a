"""In-situ training: datasets, optimizer, pair placement and pulses, checkpoints and resume,
the train-rram-bnn procedure from Python, CLI and GUI, and the README's Python example."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from pymeasure.experiment import Results

import labctl
from labctl.array import Pulse
from labctl.arrayfile import ArrayFile, load_maps, load_pulses
from labctl.errors import ConfigError
from labctl.station import Station
from labctl.training import data as datasets
from labctl.training.bnn import BinaryNet, BnnConfig
from labctl.training.checkpoint import Checkpoints
from labctl.training.engine import PulseLogs, Trainer, TrainSettings
from labctl.training.optim import Adam, softmax_cross_entropy
from labctl.training.rram import CrossbarPairs, PairSettings, place

ROLES = ("array", "array2")
LOGGED = ("row", "col", "amplitude_v", "width_s")  # what a device operation is (not when)


# ====================================================================== data
def test_digits_binarized_stratified_70_30():
    ds = datasets.digits(binarize=True, seed=3)
    assert len(ds.y_train) + len(ds.y_test) == 1797 and ds.n_features == 64
    assert len(ds.y_test) == pytest.approx(0.3 * 1797, abs=1)
    assert set(np.unique(ds.x_train)) == {0.0, 1.0}
    # stratified: each class's test share is 30 % up to rounding of its ~180 samples
    for c in range(10):
        n_test, n_all = np.sum(ds.y_test == c), np.sum(ds.y_test == c) + np.sum(ds.y_train == c)
        assert abs(n_test - 0.3 * n_all) <= 1
    scaled = datasets.load("digits-scaled", seed=3)
    assert scaled.x_train.max() == 1.0 and len(np.unique(scaled.x_train)) == 17


@pytest.mark.parametrize("kind", ["xor", "circles"])
def test_synthetic_sets_are_not_linearly_separable(kind):
    ds = datasets.load(kind, seed=1)
    assert ds.n_classes == 2 and ds.n_features == 2
    # a linear classifier does little better than chance on XOR / concentric circles
    assert datasets.logistic_baseline(ds) < 0.75


def test_user_files_load_and_bad_files_fail_in_one_line(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 3)), np.repeat([0, 1, 2], 20)
    np.savez(tmp_path / "ok.npz", x=x, y=y)
    assert datasets.load(str(tmp_path / "ok.npz")).n_classes == 3
    lines = ["a,b,c,label"] + [",".join(f"{v:.3f}" for v in row) + f",{c}"
                                for row, c in zip(x, y, strict=True)]
    (tmp_path / "ok.csv").write_text("\n".join(lines))
    assert datasets.load(str(tmp_path / "ok.csv")).n_features == 3
    (tmp_path / "bad.csv").write_text("1,2,0\n3,x,1\n")
    (tmp_path / "bad.npz").write_text("not a zip")
    np.savez(tmp_path / "keys.npz", a=x)
    np.savez(tmp_path / "labels.npz", x=x, y=y + 0.5)
    for name, words in (("bad.csv", "sample 2"), ("bad.npz", "readable"),
                        ("keys.npz", "expected arrays"), ("labels.npz", "integers"),
                        ("missing.npz", "not found")):
        with pytest.raises(ConfigError) as err:
            datasets.load(str(tmp_path / name))
        assert words in str(err.value) and "\n" not in str(err.value) and name in str(err.value)


# ====================================================================== loss, optimizer
def test_adam_first_step_is_the_gradient_sign_and_loss_gradient_matches_differences():
    g = np.array([[0.3, -2.0], [1e-3, -1e-4]])
    assert np.allclose(Adam(g.shape).direction(g), np.sign(g), atol=1e-3)
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(4, 3)), np.array([0, 2, 1, 2])
    loss, grad, _ = softmax_cross_entropy(z.copy(), y)
    h = 1e-6
    for i, j in [(0, 0), (1, 2), (3, 1)]:
        zp = z.copy()
        zp[i, j] += h
        assert (softmax_cross_entropy(zp, y)[0] - loss) / h == pytest.approx(grad[i, j], abs=1e-5)


# ====================================================================== pairs on arrays
def test_placement_fits_digits_on_two_32x32_and_refuses_what_does_not_fit():
    tiles = place([(64, 10)], {"array": (32, 32), "array2": (32, 32)})[0]
    assert [(t.role, t.in_start, t.in_stop, t.col0) for t in tiles] == \
        [("array", 0, 32, 0), ("array2", 32, 64, 0)]
    with pytest.raises(ConfigError, match="does not fit"):
        place([(64, 10)], {"array": (32, 32)})
    # layers share an array where room is left: 16-4 next to a 32-10 tile
    two = place([(32, 10), (16, 4)], {"array": (32, 32)})
    assert two[1][0].col0 == 20 and two[1][0].row0 == 0


@pytest.fixture
def station():
    st = Station.load("sim-bnn-hfox", sim=True)
    yield st
    st.close()


def test_updates_become_weak_reset_pulses_on_one_device_of_each_pair(station):
    pairs = CrossbarPairs.on_station(station, [(64, 10)], ROLES)
    pairs.apply(pairs.set_plan())
    w0 = pairs.hidden(0)
    layer = pairs.layers[0]
    update = np.zeros((64, 10))
    update[3, 4], update[40, 9], update[5, 0] = 14, -7, 30  # 30 is clipped to 14
    n_logged = {role: len(station.instrument(role).pulse_log) for role in ROLES}
    assert layer.apply_update(update) == 14 + 7 + 14
    log1 = station.instrument("array").pulse_log.arrays()
    new = slice(n_logged["array"], None)
    cells = set(zip(log1["row"][new], log1["col"][new], strict=True))
    assert cells == {(3, 8), (5, 0)}  # BL of output 4 is column 8; BL of output 0 column 0
    assert np.all(log1["amplitude_v"][new] == pytest.approx(-1.2))
    log2 = station.instrument("array2").pulse_log.arrays()
    assert set(zip(log2["row"][n_logged["array2"]:], log2["col"][n_logged["array2"]:],
                   strict=True)) == {(8, 19)}  # input 40 is row 8 of the second board; BLb of 9
    dw = pairs.hidden(0) - w0
    # pulses on BL raise ln R_BL (≥ m1_min = 3.7e-5 per pulse), on BLb lower W_h; the others
    # move by read noise only (±1 % per read: |Δ ln G| ≤ 0.02 + 0.02)
    assert dw[3, 4] > 14 * 3.7e-5 - 0.04 and dw[40, 9] < -(7 * 3.7e-5) + 0.04
    others = np.ones((64, 10), bool)
    others[[3, 40, 5], [4, 9, 0]] = False
    assert np.abs(dw[others]).max() <= 0.041
    assert np.array_equal(layer.operation_counts()[[3, 40, 5], [4, 9, 0]], [14, 7, 14])


def test_offset_trim_takes_out_the_pairs_spread_after_set(station):
    pairs = CrossbarPairs.on_station(station, [(64, 10)], ROLES)
    pairs.apply(pairs.set_plan())
    pairs.measure()
    n_logged = sum(len(station.instrument(role).pulse_log) for role in ROLES)
    pairs.calibrate()  # no device operation: offsets from the read just made
    assert sum(len(station.instrument(role).pulse_log) for role in ROLES) == n_logged
    # after SET, ln R_BL - ln R_BLb spreads by sqrt(2)·sqrt(0.0532² + 0.0546²) = 0.108 (c1, R0
    # D2D; truncation brings it to ≈ 0.10); 640 pairs estimate an sd to ±3 % (1/sqrt(2·640))
    assert 0.08 < pairs.raw_hidden(0).std() < 0.13
    pairs.invalidate()  # a second read: the trimmed W_h is read noise only, U(-1 %, 1 %) on
    trimmed = pairs.hidden(0)  # each device in each of the two reads: |ΔW_h| ≤ 4 · 0.01005
    assert np.abs(trimmed).max() <= 0.0403
    again = CrossbarPairs.on_station(station, [(64, 10)], ROLES)
    assert again.state() == {}
    again.load_state(pairs.state())
    assert np.array_equal(again.offsets[0], pairs.offsets[0])
    assert np.array_equal(again.hidden(0), again.raw_hidden(0) - pairs.offsets[0])


def test_transactions_per_step_depend_on_arrays_not_synapses(station):
    small = CrossbarPairs.on_station(station, [(8, 2)], ROLES)
    big = CrossbarPairs.on_station(station, [(32, 16)], ROLES)
    for pairs in (small, big):
        pairs.measure()
        before = pairs.transactions
        n_in, n_out = pairs.shapes[0]
        pairs.apply(pairs.plan({0: np.full((n_in, n_out), 3)}))
        pairs.measure()
        assert pairs.transactions - before == 2  # one update and one read on one array


# ====================================================================== resume
def _trainer(station, folder: Path, file: ArrayFile, resume: bool = False):
    ds = datasets.digits(seed=0)
    ds = datasets.Dataset(ds.name, ds.x_train[:96], ds.y_train[:96], ds.x_test[:60],
                          ds.y_test[:60])
    pairs = CrossbarPairs.on_station(station, [(64, 10)], ROLES, PairSettings())
    groups = {"array": "pulses", "array2": "pulses_array2"}
    for role, group in groups.items():
        station.instrument(role).pulse_log.sink = (lambda b, g=group: file.append_pulses(b, g))
    trainer = Trainer(BinaryNet(pairs.layers, BnnConfig(lr=20)), ds,
                      TrainSettings(epochs=2, batch_size=32, seed=5), pairs,
                      PulseLogs(pairs, file, groups), Checkpoints(folder / "run.ckpt.npz"),
                      clock=lambda: station.hardware_time)
    return trainer


def _log(file: ArrayFile) -> dict[str, np.ndarray]:
    return {f"{g}.{c}": file.pulse_arrays(g)[c] for g in ("pulses", "pulses_array2")
            for c in LOGGED}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("whole")
    st = Station.load("sim-bnn-hfox", sim=True)
    with ArrayFile(folder / "run.h5", "w") as f:
        summary = _trainer(st, folder, f).run()
        log = _log(f)
    st.close()
    return log, summary


class Crash(RuntimeError):
    pass


@pytest.mark.parametrize("where", ["before commit", "between arrays", "stop"])
def test_crash_then_resume_gives_the_pulse_log_of_an_uninterrupted_run(
        station, tmp_path, monkeypatch, uninterrupted, where):
    """The chip keeps its state (as real hardware does); the process state is lost: the resumed
    trainer is a new object built from the checkpoint, the pending record and the pulse log."""
    whole, summary = uninterrupted
    crash_at = 3  # the third training step (after step 0, the SET)
    calls = {"n": 0}
    if where == "before commit":
        real = Checkpoints.commit

        def commit(self):
            calls["n"] += 1
            if calls["n"] == crash_at + 1:
                raise Crash("killed after the pulses, before the checkpoint")
            real(self)

        monkeypatch.setattr(Checkpoints, "commit", commit)
    elif where == "between arrays":
        board = station.instrument("array2")
        real_submit = board.submit

        def submit(ops):
            calls["n"] += any(isinstance(op, Pulse) for op in ops)  # reads submit too
            if calls["n"] == crash_at + 1:
                raise Crash("killed after the first board's pulses, before the second's")
            return real_submit(ops)

        monkeypatch.setattr(board, "submit", submit)
    with ArrayFile(tmp_path / "run.h5", "w") as f:
        if where == "stop":  # an abort: should_stop() seen before the fourth step
            trainer = _trainer(station, tmp_path, f)
            trainer.should_stop = lambda: trainer.totals["pulses"] > 0 and \
                len(trainer.marks) == crash_at + 1
            assert trainer.run()["stopped"]
            assert not (tmp_path / "run.pending.npz").exists()
        else:
            with pytest.raises(Crash):
                _trainer(station, tmp_path, f).run()
            monkeypatch.undo()
            assert (tmp_path / "run.pending.npz").is_file()
        resumed = _trainer(station, tmp_path, f).run(resume=True)
        log = _log(f)
    for key, values in whole.items():
        assert np.array_equal(log[key], values), key
    assert resumed["pulses"] == summary["pulses"] == len(whole["pulses.row"]) + \
        len(whole["pulses_array2.row"])
    assert resumed["test_accuracy"] == summary["test_accuracy"]


def test_resume_refuses_a_log_that_the_checkpoint_does_not_explain(station, tmp_path):
    with ArrayFile(tmp_path / "run.h5", "w") as f:
        trainer = _trainer(station, tmp_path, f)
        trainer.last_step = 1
        trainer.run()
        station.instrument("array").pulse_one(0, 0, -1.2, 100e-6)  # a pulse nobody planned
        with pytest.raises(ConfigError, match="no pending update explains"):
            _trainer(station, tmp_path, f).run(resume=True)


# ====================================================================== the procedure
def test_procedure_from_python_rows_files_and_safe_state(tmp_path):
    with Station.load("sim-bnn-hfox", sim=True) as st:
        df = labctl.run("train-rram-bnn", station=st, out=tmp_path, epochs=1, train_subset=64,
                        batch_size=32, meta=5.0)
        for role in ROLES:  # every line back at 0 V (SoftGnd) after the run
            board = st.bench.instruments[role]
            assert not board.busy()
    assert list(df["Step"]) == [0, 1, 2, 2]  # the last row: the test after step 2
    assert df["Total pulses"].iloc[-1] == df["Pulses"].sum() > 1280  # the SET of 1280 devices
    assert np.isfinite(df["Test accuracy"].iloc[-1]) and np.isfinite(
        df["Software test accuracy"].iloc[-1])
    assert df["Logistic baseline"].iloc[-1] > 0.8
    assert (df["Hardware time (s)"].diff().iloc[1:] > 0).all()
    results = Path(df.attrs["results_file"])
    pulses = load_pulses(results)
    pulses2 = load_pulses(results, "pulses_array2")
    assert len(pulses) + len(pulses2) == df["Total pulses"].iloc[-1]
    maps = load_maps(results)
    assert maps["pulses_array"].sum() == len(pulses)
    assert results.with_suffix(".ckpt.npz").is_file()


def test_procedure_resumes_a_stopped_run(tmp_path):
    with Station.load("sim-bnn-hfox", sim=True) as st:
        first = labctl.run("train-rram-bnn", station=st, out=tmp_path, epochs=1,
                           train_subset=64, software_reference=False)
        path = first.attrs["results_file"]
        extended = labctl.run("train-rram-bnn", station=st, out=tmp_path, epochs=2,
                              train_subset=64, software_reference=False, resume=path,
                              replay_sim=False)  # the same bench: its chip kept its state
        with pytest.raises(ConfigError, match=r"other settings \(train_samples 64 -> 96"):
            labctl.run("train-rram-bnn", station=st, out=tmp_path, epochs=2, train_subset=96,
                       software_reference=False, resume=path, replay_sim=False)
    assert list(extended["Step"]) == [3, 4, 4]  # the first run's steps 0-2 are not repeated
    assert len(load_pulses(path)) + len(load_pulses(path, "pulses_array2")) == \
        extended["Total pulses"].iloc[-1]


def test_bad_dataset_and_too_small_station_fail_before_anything_is_applied(tmp_path):
    (tmp_path / "bad.csv").write_text("1,2\nx,y\n")
    with pytest.raises(ConfigError, match="bad.csv"):
        labctl.run("train-rram-bnn", sim=True, out=tmp_path, dataset=str(tmp_path / "bad.csv"))
    with pytest.raises(ConfigError, match="does not fit"):
        labctl.run("train-rram-bnn", sim=True, out=tmp_path, arrays="array")
    assert not list(tmp_path.glob("*.h5"))


def test_cli_run(tmp_path):
    from test_cli import labctl_run, results_path

    done = labctl_run(tmp_path, "run", "train-rram-bnn", "--sim", "--set", "epochs=1",
                      "--set", "train_subset=32", "--set", "software_reference=false")
    assert done.returncode == 0, done.stderr
    assert len(Results.load(str(results_path(done.stdout))).data) == 3
    bad = labctl_run(tmp_path, "run", "train-rram-bnn", "--sim", "--set", "dataset=nope")
    assert bad.returncode == 2 and "unknown dataset 'nope'" in bad.stderr


def test_gui_queue_runs_to_finished(qtbot, tmp_path, queue_to_finished):
    from labctl.gui import make_window
    from procedures.train_rram_bnn import TrainRramBnn

    with Station.load("sim-bnn-hfox", sim=True) as st:
        window = make_window(TrainRramBnn, st, out=tmp_path)
        qtbot.addWidget(window)
        window.inputs.epochs.setValue(1)
        window.inputs.train_subset.setValue(32)
        experiment = queue_to_finished(window)
        assert len(Results.load(experiment.results.data_filename).data) == 3
        window.close()


def test_readme_python_example_runs(tmp_path, monkeypatch):
    text = (Path(__file__).parents[1] / "README.md").read_text()
    block = re.search(r"### In-situ training from Python.*?```python\n(.*?)```", text, re.S)
    assert block, "README section 'In-situ training from Python' with a python block"
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(block.group(1), "README.md", "exec"), scope)  # noqa: S102 (our own README)
    assert scope["acc"] > 0.5


def test_sigkill_at_a_random_step_then_resume_gives_the_uninterrupted_pulse_log(tmp_path):
    """A subprocess killed at a random step (its simulated chip dies with it: the resumed run
    replays the log onto a fresh bench of the same seed), then resumed from the CLI."""
    from test_cli import labctl_command, labctl_run, results_path

    args = ["--sim", "--set", "epochs=1", "--set", "train_subset=224", "--set",
            "software_reference=false"]
    whole = labctl.run("train-rram-bnn", sim=True, out=tmp_path / "whole", epochs=1,
                       train_subset=224, software_reference=False)
    kill_after = int(np.random.default_rng(20261128).integers(1, 7))  # steps 0..6 have rows
    proc = subprocess.Popen([*labctl_command(), "run", "train-rram-bnn", *args, "--out",
                             str(tmp_path / "killed")], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        csv = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            found = list((tmp_path / "killed").glob("*.csv"))
            if found and _rows(found[0]) >= kill_after:
                csv = found[0]
                break
            time.sleep(0.005)  # polling the subprocess's file, not waiting on a mock
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert csv is not None, "the run ended before it could be killed"
    # it learns: chance is 0.1 ± 0.013 (binomial sd on 540 test samples); 0.25 is > 10 sd above
    assert whole["Test accuracy"].iloc[-1] > 0.25
    done = labctl_run(tmp_path, "run", "train-rram-bnn", *args, "--set", f"resume={csv}",
                      "--out", str(tmp_path / "resumed"))
    assert done.returncode == 0, done.stderr
    assert results_path(done.stdout).is_file()
    for group in ("pulses", "pulses_array2"):
        a, b = load_pulses(csv, group), load_pulses(whole.attrs["results_file"], group)
        assert len(a) == len(b) > 0
        for column in LOGGED:
            assert np.array_equal(a[column].to_numpy(), b[column].to_numpy()), (group, column)


def _rows(path: Path) -> int:
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    return max(0, len(lines) - 1)


def test_a_hidden_layer_trains_on_the_two_boards(tmp_path):
    df = labctl.run("train-rram-bnn", sim=True, out=tmp_path, hidden=8, epochs=1,
                    train_subset=64, software_reference=False)
    path = df.attrs["results_file"]
    # 64-8 on the first board (two 32x16 tiles), 8-10 on the second
    first, second = load_pulses(path), load_pulses(path, "pulses_array2")
    assert first["col"].max() == 31 and first["row"].max() == 31
    assert second["row"].max() == 7 and second["col"].max() == 19
    assert len(first) + len(second) == df["Total pulses"].iloc[-1]


def test_in_situ_within_five_points_of_the_same_network_in_software(tmp_path):
    """The issue's criterion on one full run (digits binarized, 70/30 stratified, 64-10, batch
    32, 5 epochs, full HfOx noise, offset trim on). Seed 0 is the first row of
    ``benchmarks/bench_bnn_gap.py``'s table (not picked): over seeds 0-7 the gap is 0.9, 1.9,
    3.9, 1.1, 0.0, 4.1, 5.7, -0.9 points (mean 2.1, sd 2.3), so one run within 5 points is what
    the criterion asks, not a sure thing; without the trim, seed 0 ends 5.4 points below."""
    with Station.load("sim-bnn-hfox", sim=True, seed=0) as st:
        df = labctl.run("train-rram-bnn", station=st, out=tmp_path, data_seed=0)
    last = df.iloc[-1]
    assert last["Software test accuracy"] - last["Test accuracy"] <= 0.05
    assert last["Logistic baseline"] > last["Software test accuracy"]  # the float reference
