"""An array of stochastic synapses behind the array-controller interface: set_drives and
switch_counts (the operation in-situ training calls), one transaction, counts with the binomial
statistics of the hidden per-synapse P(x).

Tolerance: a sum K of independent Binomial(n, p_ij) counts is checked within 4 standard
deviations sqrt(Σ n·p_ij(1 − p_ij)) of Σ n·p_ij (a correct model fails with probability < 1e-4)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labctl.array import Counts, Selection
from labctl.calibration import CalibrationStore
from labctl.errors import ConfigError, LimitError
from labctl.gui import make_window
from labctl.runner import build, execute
from labctl.station import Station
from procedures.array_switching import ArraySwitching, synapse_name

RESET, VREAD, WIDTH = -1.5, 0.1, 1e-6


@pytest.fixture
def station():
    with Station.load("sim-dw-synapse-array", sim=True) as st:
        yield st


def expected(station, drives, cells):
    dev = station.bench.devices["syn"]
    rows, cols = cells
    return dev.switch_probability(drives[rows, cols], WIDTH, index=(rows, cols))


def within(k_sum: int, n: int, p: np.ndarray) -> bool:
    return abs(k_sum - n * p.sum()) <= 4 * math.sqrt(n * np.sum(p * (1 - p)))


def test_switch_counts_is_one_transaction_with_binomial_statistics(station):
    array = station.instrument("array")
    sim = station.bench.instruments["array"]
    assert array.capabilities.native_counts and array.capabilities.batched
    drives = np.linspace(3.5, 6.0, array.shape[0] * array.shape[1]).reshape(array.shape)
    array.set_drives(drives)
    inputs = np.zeros(array.shape[1], dtype=int)
    inputs[[0, 3, 4, 9, 15]] = 1
    n = 200
    before = sim.transactions
    k = array.switch_counts(inputs, n, reset=RESET, vread=VREAD, width=WIDTH)
    assert sim.transactions - before == 1
    assert k.shape == array.shape and k.dtype.kind == "i"
    assert np.all(k[:, inputs == 0] == 0)
    rows, cols = np.nonzero(np.broadcast_to(inputs == 1, array.shape))
    assert within(int(k.sum()), n, expected(station, drives, (rows, cols)))
    y = k.sum(axis=1) / n  # the output lines, Y_i = Σ_j k_ij / n
    assert y.shape == (array.shape[0],) and np.all(y <= inputs.sum())
    # one log row per active synapse standing for its 2n pulses, with its count
    assert len(array.pulse_log) == rows.size
    assert array.pulse_log.counts(array.shape).sum() == 2 * n * rows.size
    assert np.all(array.pulse_log.counts(array.shape)[:, inputs == 0] == 0)
    logged = array.pulse_log.arrays()
    assert np.array_equal(logged["switched"], k[logged["row"], logged["col"]])


def test_batched_pulse_trains_give_the_same_counts(station):
    """What a controller without native counts runs: one pulse train per synapse, one batch."""
    array = station.instrument("array")
    sim = station.bench.instruments["array"]
    rows, cols = np.array([0, 1, 2, 5]), np.array([0, 7, 7, 11])
    drives = np.full(array.shape, 4.6)
    op = array._check(Counts(Selection.cells(rows, cols), drives[rows, cols], 300, RESET,
                             WIDTH, VREAD))
    before = sim.transactions
    k = array._counts_by_trains(op)
    assert sim.transactions - before == 1
    assert within(int(k.sum()), 300, expected(station, drives, (rows, cols)))


def test_bad_drives_and_inputs_are_refused_before_anything_is_applied(station):
    array = station.instrument("array")
    with pytest.raises(LimitError, match="set the drives first"):
        array.switch_counts(np.ones(16), 4, reset=RESET, vread=VREAD, width=WIDTH)
    with pytest.raises(LimitError, match="exceeds the chip's voltage limit 8 V"):
        array.set_drives(np.full(array.shape, 9.0))
    with pytest.raises(LimitError, match="shape"):
        array.set_drives(np.ones((3, 3)))
    array.set_drives(np.full(array.shape, 4.0))
    with pytest.raises(LimitError, match="5 inputs for 16 columns"):
        array.switch_counts(np.ones(5), 4, reset=RESET, vread=VREAD, width=WIDTH)
    with pytest.raises(LimitError, match="pulse width"):
        array.switch_counts(np.ones(16), 4, reset=RESET, vread=VREAD, width=0.1)
    with pytest.raises(LimitError, match="trials"):
        array.switch_counts(np.ones(16), 0, reset=RESET, vread=VREAD, width=WIDTH)
    assert len(array.pulse_log) == 0
    assert station.bench.devices["syn"].switched.sum() == 0


def test_other_operations_and_shutdown(station):
    array = station.instrument("array")
    currents = array.read_all(0.1)
    assert currents.shape == array.shape
    assert np.allclose(currents, 0.1 / 1000, rtol=0.02)  # every wall pinned: 1 kΩ
    after = array.pulse_one(0, 0, 7.5, WIDTH, vread=0.1)  # P(7.5 V) > 0.999
    assert float(after) == pytest.approx(0.1 / 1500, rel=0.02)
    ramp = array.ramp(1, 1, 0.0, 8.0, 0.5, WIDTH, vread=0.1, stop_current=2e-4)
    assert (ramp.steps, ramp.stopped) == (17, False)  # 0.1 mA at most: never above 0.2 mA
    ramp = array.ramp(1, 2, 0.0, 8.0, 0.5, WIDTH, vread=0.1, stop_current=5e-5)
    assert (ramp.steps, ramp.stopped) == (1, True)
    train = array.pulse_train(Selection.row(2), [RESET, 7.5], WIDTH, vread=0.1)
    assert train.shape == (2, array.shape[1])
    array.shutdown()


def test_array_switching_procedure_calibrates_every_selected_synapse(station, calibration_dir,
                                                                     tmp_path):
    """One transaction per amplitude whatever the trials; per-synapse fits within 4 reported
    standard errors of the hidden x0, dx, a (8 synapses x 3 parameters at 4σ: a correct fit
    fails with probability ~1.5e-3); one calibration file per synapse."""

    sim = station.bench.instruments["array"]
    proc = build(ArraySwitching, {"rows": "0-1", "cols": "0-3"})
    before = sim.transactions
    results = execute(proc, station, out=tmp_path)
    assert sim.transactions - before == proc.points + 1  # + the safe idle at shutdown
    assert len(results.data) == 8 * proc.points
    dev = station.bench.devices["syn"]
    store = CalibrationStore(calibration_dir)
    assert len(proc.fits) == 8
    for (r, c), fit in proc.fits.items():
        truth = dev.hidden((r, c))
        for k, name in enumerate(fit.model.parameters):
            assert abs(fit.values[k] - float(truth[name])) < 4 * fit.stderr[k], (r, c, name)
        cal = store.latest(station.chip, synapse_name(r, c), "dw-sigmoid")
        assert cal["x0"] == pytest.approx(fit.values[0]) and cal.run == results.data_filename
    assert dev.switched.reshape(dev.shape)[2:, :].sum() == 0  # unselected rows never pulsed


def test_array_switching_refuses_over_limit_and_runs_in_the_gui(station, qtbot, tmp_path,
                                                                queue_to_finished):
    with pytest.raises(ConfigError, match="amplitude_stop = 9 V exceeds"):
        execute(build(ArraySwitching, {"amplitude_stop": 9.0}), station, out=tmp_path)
    window = make_window(ArraySwitching, station, out=tmp_path)
    qtbot.addWidget(window)
    window.inputs.rows.setValue("0")
    window.inputs.cols.setValue("0-1")
    window.inputs.trials.setValue(50)
    queue_to_finished(window)
    assert (window.x_axis, window.y_axis) == ("Amplitude (V)", "P switch")
    window.close()
