"""train-stochastic: the Ellis et al. rule, one transaction per forward, the log, resume, and the
paper's checks on binarized digits (n = 1 against n = 64)."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

import labctl
from labctl.array import PulseLog
from labctl.calibration import CalibrationStore
from labctl.errors import ConfigError
from labctl.station import Station
from labctl.training import data as datasets
from labctl.training import stochastic
from labctl.training.checkpoint import Checkpoints
from labctl.training.engine import TrainSettings
from labctl.training.optim import softmax_cross_entropy

STATION = "sim-dw-synapse-digits"
AMPLITUDES = np.linspace(1.0, 7.5, 14)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A calibration store with every synapse of the digits array fitted (once per module)."""
    root = tmp_path_factory.mktemp("fits")
    with Station.load(STATION, sim=True) as st:
        array = st.instrument("array")
        rows, cols = np.nonzero(np.ones(array.shape, dtype=bool))
        stored = stochastic.calibrate(array, CalibrationStore(root), st.chip, rows, cols,
                                      AMPLITUDES, 300, stochastic.SynapseSettings())
    assert stored == rows.size
    return root


@pytest.fixture
def calibrated(fitted, calibration_dir):
    """This test's calibration folder, holding the fits."""
    shutil.copytree(fitted, calibration_dir, dirs_exist_ok=True)
    return calibration_dir


def layer_on(station, n: int = 1, drives=None) -> stochastic.SynapseLayer:
    array = station.instrument("array")
    cal = stochastic.Calibration.load(station.calibration, station.chip, array.shape)
    return stochastic.SynapseLayer(array, cal, stochastic.SynapseSettings(n=n), drives)


def test_the_calibration_recovers_the_devices(calibrated):
    with Station.load(STATION, sim=True) as st:
        layer = layer_on(st)
        device = st.instrument("array").sim.device
        # 14 amplitudes x 300 trials: the fitted x0 has a standard error of ~0.03 V (reported by
        # the fit); 5 standard errors bound every one of the 640 synapses
        stderr = np.array([[st.calibration.latest(st.chip, stochastic.synapse_name(r, c),
                                                  "dw-sigmoid").parameters["x0"].stderr
                            for c in range(64)] for r in range(10)])
        assert np.all(np.abs(layer.cal.x0 - device.x0.reshape(10, 64)) < 5 * stderr)


def test_missing_fits_fail_with_one_line_naming_the_calibration(calibration_dir):
    with Station.load(STATION, sim=True) as st:
        with pytest.raises(ConfigError, match="array-switching-probability"):
            stochastic.Calibration.load(st.calibration, st.chip, (10, 64))
    with pytest.raises(Exception, match="no 'dw-sigmoid' fit"):
        labctl.run("train-stochastic", sim=True, calibrate=False, epochs=1,
                   out=str(calibration_dir.parent / "results"))


def test_gradients_are_the_exact_rule_with_eps_held_fixed(calibrated):
    """dL/dw and dL/db of the §2.1 rule against central differences of the loss with ε fixed."""
    with Station.load(STATION, sim=True) as st:
        rng = np.random.default_rng(3)
        layer = layer_on(st, n=4, drives=4.6 + rng.normal(0, 0.5, (10, 64)))
        net = stochastic.StochasticNet(layer)
        net.b = rng.normal(0, 0.3, 10)
        ds = datasets.digits()
        x, y = ds.x_train[:8], ds.y_train[:8]
        counts = layer.measure(x)[0]
        loss, _, gw, gb = net.gradients(x, y, counts)
        n, cal = 4, layer.cal
        p0 = cal.probability(layer.drives)[0]
        mu0, var0 = x @ p0.T, x @ (p0 * (1 - p0)).T / n + 1e-4
        eps = (counts.sum(axis=2) / n - mu0) / np.sqrt(var0)

        def loss_at(w, b):
            p = cal.probability(w)[0]
            z = x @ p.T + eps * np.sqrt(x @ (p * (1 - p)).T / n + 1e-4) + b
            return softmax_cross_entropy(z, y)[0]

        assert loss == pytest.approx(loss_at(layer.drives, net.b), rel=1e-12)
        h = 1e-6
        for i, j in [(0, 20), (3, 27), (y[0], 35), (9, 44)]:
            dw = np.zeros((10, 64))
            dw[i, j] = h
            up, down = loss_at(layer.drives + dw, net.b), loss_at(layer.drives - dw, net.b)
            numeric = (up - down) / 2 / h
            assert gw[i, j] == pytest.approx(numeric, rel=1e-5, abs=1e-9)
        db = np.eye(10)[2] * h
        assert gb[2] == pytest.approx((loss_at(layer.drives, net.b + db) -
                                       loss_at(layer.drives, net.b - db)) / 2 / h, rel=1e-5)


def test_a_forward_is_one_transaction_and_logs_each_synapse_instance(calibrated):
    with Station.load(STATION, sim=True) as st:
        layer = layer_on(st, n=64)
        array = st.instrument("array")
        ds = datasets.digits()
        x = ds.x_train[:32]
        before = array.sim.transactions
        counts = layer.measure(x)[0]
        assert array.sim.transactions - before == 1
        assert np.all(counts[:, :, x.sum(axis=0) == 0] == 0)
        b, j = np.nonzero(x)
        # the counts are Binomial(64, P_true) per (sample, active synapse): their total is within
        # 5 standard deviations of its mean
        p = array.sim.device.switch_probability(layer.drives, 1e-6, "voltage").reshape(10, 64)
        pij = p[:, j]
        mean, sd = 64 * pij.sum(), math.sqrt(64 * (pij * (1 - pij)).sum())
        assert abs(counts.sum() - mean) < 5 * sd
        logged = array.pulse_log.arrays()
        assert len(logged["row"]) == b.size * 10
        assert np.all(logged["pulses"] == 128)
        _, bb, rr, cc = layer.cells(x)
        assert np.array_equal(logged["switched"], counts[bb, rr, cc])
        # an evaluation logs one row per synapse: 16 passes of 540 samples in one transaction
        before = array.sim.transactions
        layer.measure(ds.x_test, 16, per_synapse=True)
        assert array.sim.transactions - before == 1
        assert len(array.pulse_log) == b.size * 10 + 10 * np.count_nonzero(ds.x_test.sum(0))


def _trainer(station, ds, ckpt, epochs, stop=lambda: False):
    layer = layer_on(station)
    net = stochastic.StochasticNet(layer)
    return stochastic.StochasticTrainer(
        net, ds, TrainSettings(epochs=epochs, batch_size=16, seed=5),
        stochastic.LogReader(layer.array), passes=2, checkpoints=Checkpoints(ckpt),
        should_stop=stop)


class Killed(Exception):
    pass


def _kill_after(array, rows: int):
    """A pulse log whose sink dies (like the process) once ``rows`` rows are logged."""
    def sink(block):
        if len(array.pulse_log) >= rows:
            raise Killed
    array.pulse_log = PulseLog(sink=sink)


@pytest.mark.parametrize("where", ["between steps", "after a forward", "after an evaluation",
                                   "after a forward, on a fresh bench"])
def test_kill_and_resume_logs_what_an_uninterrupted_run_logs(calibrated, tmp_path, where):
    ds = datasets.digits()
    ds = datasets.Dataset(ds.name, ds.x_train[:64], ds.y_train[:64], ds.x_test[:40],
                          ds.y_test[:40])
    with Station.load(STATION, sim=True) as st:
        whole = _trainer(st, ds, tmp_path / "a.ckpt.npz", 3)
        summary = whole.run()
        expected = st.instrument("array").pulse_log.arrays()
    assert summary["steps"] == 12 and len(summary["test_accuracy_by_epoch"]) == 3
    with Station.load(STATION, sim=True) as st:
        array = st.instrument("array")
        ckpt = tmp_path / "b.ckpt.npz"
        if where == "between steps":
            steps = iter(range(1000))
            first = _trainer(st, ds, ckpt, 3, stop=lambda: next(steps) >= 6)
            assert first.run()["stopped"]
        else:
            # the forward of step 6, or the test evaluation after epoch 1 (step 4's end)
            rows = _forward_rows(ds, 4) if where == "after an evaluation" else _forward_rows(ds, 6)
            _kill_after(array, rows + 1)
            with pytest.raises(Killed):
                _trainer(st, ds, ckpt, 3).run()
            array.pulse_log.sink = None
        if where.endswith("fresh bench"):  # the simulated chip died with the run: replay
            with Station.load(STATION, sim=True) as fresh:
                fresh.instrument("array").pulse_log = array.pulse_log
                trainer = _trainer(fresh, ds, ckpt, 3)
                assert trainer.replay_chip() == 1 + 6  # the evaluation after epoch 1, 6 forwards
                resumed = trainer.run(resume=True)
        else:
            resumed = _trainer(st, ds, ckpt, 3).run(resume=True)
        got = array.pulse_log.arrays()
    for column in ("op", "row", "col", "amplitude_v", "pulses", "switched"):
        assert np.array_equal(got[column], expected[column]), column
    if where == "after an evaluation":  # its result died with the run: NaN, not measured again
        assert math.isnan(resumed["test_accuracy_by_epoch"][0])
        assert resumed["test_accuracy_by_epoch"][1:] == summary["test_accuracy_by_epoch"][1:]
    else:
        assert resumed["test_accuracy_by_epoch"] == summary["test_accuracy_by_epoch"]


def _forward_rows(ds, steps: int) -> int:
    """Log rows of the first ``steps`` forwards (batch 16, seed 5, 10 outputs)."""
    total = 0
    for step in range(1, steps + 1):
        epoch, b = divmod(step - 1, 4)
        order = np.random.default_rng([5, epoch]).permutation(len(ds.y_train))
        total += 10 * np.count_nonzero(ds.x_train[order[b * 16:(b + 1) * 16]])
    return total


def test_a_log_that_is_not_the_next_measurement_is_refused(calibrated, tmp_path):
    ds = datasets.digits()
    ds = datasets.Dataset(ds.name, ds.x_train[:32], ds.y_train[:32], ds.x_test[:20],
                          ds.y_test[:20])
    with Station.load(STATION, sim=True) as st:
        steps = iter(range(1000))
        _trainer(st, ds, tmp_path / "c.ckpt.npz", 2, stop=lambda: next(steps) >= 1).run()
        layer = layer_on(st)
        layer.measure(ds.x_test[:3])  # something else was measured after the checkpoint
        with pytest.raises(ConfigError, match="not the measurement of the next batch"):
            _trainer(st, ds, tmp_path / "c.ckpt.npz", 2).run(resume=True)


def test_n1_reaches_80_percent_and_n64_does_better_with_more_synapses_in_band(calibrated):
    """The paper's checks on the simulated bench: 15 epochs, batch 16, Adam lr 0.02, the test
    accuracy a mean of 16 stochastic passes over the 540 test digits (one evaluation, at the
    end)."""
    ds = datasets.digits()
    final = {}
    for n in (1, 64):
        with Station.load(STATION, sim=True) as st:
            layer = layer_on(st, n)
            layer.array.pulse_log = PulseLog(sink=lambda block: None, keep=False)
            trainer = stochastic.StochasticTrainer(
                stochastic.StochasticNet(layer), ds, TrainSettings(epochs=15, batch_size=16),
                stochastic.LogReader(layer.array), eval_every=15)
            final[n] = trainer.run()
    assert final[1]["test_accuracy"] >= 0.80
    # 540 test samples: the standard error of an accuracy near 0.85 is 0.015 (pass-averaged,
    # smaller); n = 64 must be ahead by more than two of them
    assert final[64]["test_accuracy"] > final[1]["test_accuracy"] + 0.03
    assert final[64]["in_band"] > final[1]["in_band"]
    # one transaction per batch and one per evaluation, whatever the number of synapses
    assert final[1]["transactions"] == 15 * 79 + 1


def test_runs_from_labctl_run_with_rows_files_and_the_baseline(calibrated, tmp_path):
    df = labctl.run("train-stochastic", sim=True, trials=4, epochs=2, train_subset=48,
                    out=str(tmp_path))
    assert len(df) == 2 * 3 + 2  # a row per batch and per evaluation
    tested = df.dropna(subset=["Test accuracy"])
    assert len(tested) == 2 and tested["Logistic baseline"].nunique() == 1
    assert (df["Transactions"] == 1).all()
    assert df["Hardware time (s)"].is_monotonic_increasing
    results = tmp_path / df.attrs["results_file"]
    from labctl.arrayfile import ArrayFile, sidecar_path

    with ArrayFile(sidecar_path(results), "r") as f:
        assert f.pulse_count() > 0
    # resume it for one more epoch on a fresh bench (replayed): the log of a 3-epoch run
    more = labctl.run("train-stochastic", sim=True, trials=4, epochs=3, train_subset=48,
                      resume=str(results), out=str(tmp_path))
    assert len(more) == 3 + 1
    whole = labctl.run("train-stochastic", sim=True, trials=4, epochs=3, train_subset=48,
                       out=str(tmp_path / "whole"))
    with ArrayFile(sidecar_path(results), "r") as f:
        got = f.pulse_arrays("pulses")
    with ArrayFile(sidecar_path(whole.attrs["results_file"]), "r") as f:
        expected = f.pulse_arrays("pulses")
    assert np.unique(got["op"]).size == 3 * 3 + 3
    for column in ("op", "row", "col", "amplitude_v", "pulses", "switched"):
        assert np.array_equal(got[column], expected[column]), column
    assert more["Test accuracy"].iloc[-1] == whole["Test accuracy"].iloc[-1]


def test_runs_from_the_gui(calibrated, qtbot, tmp_path, queue_to_finished):
    from pymeasure.experiment import Results

    from labctl.gui import make_window
    from procedures.train_stochastic import TrainStochastic

    with Station.load(STATION, sim=True) as st:
        window = make_window(TrainStochastic, st, out=tmp_path)
        qtbot.addWidget(window)
        window.inputs.epochs.setValue(1)
        window.inputs.train_subset.setValue(32)
        experiment = queue_to_finished(window)
        assert len(Results.load(experiment.results.data_filename).data) == 2 + 1
        window.close()
