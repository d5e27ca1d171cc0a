"""VDSP: the rule's closed form, the network learning digits, crossbar weights programmed by
pulses through the array controllers, and the train-vdsp procedure end to end."""

import math
import warnings

import numpy as np
import pytest

import labctl
from labctl import vdsp
from labctl.station import Station
from labctl.vdsp_crossbar import CrossbarWeights

warnings.filterwarnings("ignore", category=FutureWarning)


def test_rule_closed_form():
    w = np.array([0.0, 0.5, 1.0, 0.0, 0.5, 1.0])
    v = np.array([-1.0, -1.0, -1.0, 0.5, 0.5, 0.5])
    lr = 0.1
    dw = vdsp.vdsp_update(w, v, lr)
    expected = [lr * (math.e - 1), 0.5 * lr * (math.e - 1), 0.0,
                0.0, -0.5 * lr * (math.exp(0.5) - 1), -lr * (math.exp(0.5) - 1)]
    assert dw == pytest.approx(expected)


def test_digits_are_binary_and_split_without_overlap():
    x_train, y_train, x_test, y_test = vdsp.load_binary_digits(seed=3)
    assert set(np.unique(x_train)) == {0.0, 1.0} and x_train.shape[1] == 64
    assert len(x_train) + len(x_test) == 1797 and len(x_test) == 539
    assert set(np.unique(y_test)) == set(range(10))


def test_ideal_network_learns_digits_without_labels():
    """300 training images, 200 test images, 100 outputs: chance is 10 %; a binomial count at
    p = 0.1 over 200 images has sd 2.1 %, so 40 % is > 14 sd above chance."""
    x_train, y_train, x_test, y_test = vdsp.load_binary_digits(seed=0)
    x_train, y_train, x_test, y_test = x_train[:300], y_train[:300], x_test[:200], y_test[:200]
    initial = np.random.default_rng(0).uniform(0.0, 1.0, (64, 100))
    net = vdsp.SpikingNetwork(vdsp.IdealWeights(initial), 64, 100)
    net.responses(x_train, learn=True)
    assigned = vdsp.assign_labels(net.responses(x_train, learn=False), y_train)
    accuracy = np.mean(vdsp.predict(net.responses(x_test, learn=False), assigned) == y_test)
    assert accuracy > 0.4
    assert net.weights.updates > len(x_train)  # several post spikes, each an update


def test_crossbar_weights_follow_the_rule_by_pulses():
    with Station.load("sim-vdsp-crossbar", sim=True) as st:
        tiles = [st.instrument(f"array{k}") for k in range(8)]
        cw = CrossbarWeights(tiles, 64, 100, np.random.default_rng(0))
        cal = cw.calibrate()
        assert cal["g_hi_s"] > cal["g_lo_s"] > 0 and 0 < cal["delta_set"] < 0.5
        assert np.all(np.diff(cw.w_set) >= 0) and np.all(np.diff(cw.w_reset) <= 0)
        cw.initialise()
        w0 = cw.matrix().copy()
        # uniform targets (mean 1/2, sd 0.29) reached along tile 0's median curve; the other
        # tiles, the RESET history and the devices' variability shift and widen the spread
        assert 0.3 < np.median(w0) < 0.7 and 0.2 < w0.std() < 0.4
        v_pre = np.where(np.arange(64) < 32, -1.0, 1.0)  # inputs 0-31 fired, 32-63 did not
        for _ in range(10):
            cw.update_column(37, v_pre, 0.05)
        change = cw.matrix()[:, 37] - w0[:, 37]
        assert change[:32].mean() > 0.1 and change[32:].mean() < -0.1
        untouched = np.delete(np.arange(100), 37)
        # the other columns saw only half-select (V/2 = 0.6 V, below the 0.8 V thresholds)
        assert np.abs(cw.matrix()[:, untouched] - w0[:, untouched]).max() < 0.05
        assert cw.updates == 10 and cw.pulses > 0


def test_too_few_tiles_is_refused():
    with Station.load("sim-vdsp-crossbar", sim=True) as st:
        tiles = [st.instrument("array0")]
        with pytest.raises(ValueError, match="needs 8 crossbars"):
            CrossbarWeights(tiles, 64, 100, np.random.default_rng(0))


def test_train_vdsp_runs_both_networks_and_logs_every_pulse(tmp_path):
    df = labctl.run("train-vdsp", sim=True, out=tmp_path, train_images=20, test_images=20)
    assert list(df["Network"]) == ["ideal"] * 3 + ["crossbar"] * 3
    assert list(df["Phase"]) == ["train 1", "label", "test"] * 2
    test = df[df["Phase"] == "test"]
    assert test["Accuracy"].between(0, 1).all()
    pulses = labctl.arrayfile.load_pulses(df.attrs["results_file"])
    # weight coordinates; whole-tile calibration pulses also reach the 28 spare columns of
    # the last column of tiles (100..127)
    assert pulses["row"].between(0, 63).all() and pulses["col"].between(0, 127).all()
    crossbar_updates = df["Updates"].iloc[-1]
    assert crossbar_updates > 0
    maps = labctl.arrayfile.load_maps(df.attrs["results_file"])
    assert maps["crossbar_weights"].shape == maps["ideal_weights"].shape == (64, 100)


def _replay(compensated: bool, updates: int = 150) -> float:
    """RMS distance between crossbar and ideal weights after the same ``updates`` VDSP updates
    (random columns among 10, presynaptic potentials: 30 % just fired at −1, the rest
    integrating in [−0.2, 1]) from the same start (the chip's initial weights)."""
    with Station.load("sim-vdsp-crossbar", sim=True) as st:
        tiles = [st.instrument(f"array{k}") for k in range(8)]
        cw = CrossbarWeights(tiles, 64, 100, np.random.default_rng(0), compensate=compensated,
                             per_device_window=compensated)
        cw.calibrate()
        cw.initialise()
        ideal = vdsp.IdealWeights(cw.matrix())
        rng = np.random.default_rng(5)
        for j in rng.integers(0, 10, updates):
            v = np.where(rng.random(64) < 0.3, -1.0, rng.uniform(-0.2, 1.0, 64))
            cw.update_column(j, v, 0.02)
            ideal.update_column(j, v, 0.02)
        assert np.any(cw.gain_set != 1) == compensated  # step factors learnt only if asked
        return float(np.sqrt(np.mean((cw.matrix()[:, :10] - ideal.w[:, :10]) ** 2)))


def test_per_device_compensation_tracks_the_ideal_weights_closer():
    """Same chip, same start, same updates: the per-device window and step factors bring the
    crossbar weights closer to the ideal ones than the open-loop median-curve mapping (measured
    0.078 -> 0.063 RMS after 150 updates, 0.13 -> 0.09 after 400). An RMS over 640 weights has
    a relative sd of about 1/√(2·640) = 2.8 %, so the ratio of two has ~4 %: a ratio below 0.88
    is a 3-sd improvement, not chance."""
    open_loop, compensated = _replay(False), _replay(True)
    assert compensated < 0.88 * open_loop


def test_crossbar_network_tracks_the_ideal_one_on_digits(tmp_path):
    """The issue's criterion (crossbar within 5 points of the ideal network) at reduced size,
    with its statistical margin: on n paired test images the accuracy gap has standard error
    √(d/n) (d: fraction of images where exactly one network is right, McNemar), so a true gap
    of 5 points is rejected only if the measured one exceeds 5 + 2 SE. The full-size per-seed
    table is benchmarks/bench_vdsp.py."""
    df = labctl.run("train-vdsp", sim=True, out=tmp_path, train_images=300, test_images=200,
                    seed=0)
    test = df[df["Phase"] == "test"].set_index("Network")
    ideal, crossbar = test.loc["ideal", "Accuracy"], test.loc["crossbar", "Accuracy"]
    traces = labctl.arrayfile.load_traces(df.attrs["results_file"])
    right_ideal, right_crossbar = traces["ideal_test_correct"], traces["crossbar_test_correct"]
    assert right_ideal.mean() == pytest.approx(ideal) and right_ideal.size == 200
    se = math.sqrt(np.mean(right_ideal != right_crossbar) / right_ideal.size)
    assert ideal > 0.4
    assert ideal - crossbar < 0.05 + 2 * se
