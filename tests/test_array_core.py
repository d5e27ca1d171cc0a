"""The array-controller interface (labctl.array) and the array file, on a minimal backend."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from labctl.array import ArrayController as Base
from labctl.array import (
    Capabilities,
    Idle,
    Pulse,
    Ramp,
    RampResult,
    Read,
    Selection,
    Train,
    conductance,
)
from labctl.arrayfile import ArrayFile, load_maps, load_pulses, load_traces, sidecar_path
from labctl.errors import LimitError
from labctl.safety import Limits


class Ohmic(Base):
    """A 4x5 array of ohmic conductances; SET multiplies G by 1.1, RESET divides."""

    def __init__(self, hardware_compliance=False, time_grid=10e-9):
        super().__init__()
        self.g = np.full((4, 5), 1e-4)
        self.calls: list[list] = []
        self.idle = "float"
        self._caps = Capabilities(shape=(4, 5), read_voltage=(-1, 1), pulse_voltage=(-5, 5),
                                  min_pulse_width=20e-9, max_pulse_width=1.0,
                                  time_grid=time_grid, hardware_compliance=hardware_compliance,
                                  bias_schemes=("v/2", "ground"), batched=True)
        self.hw_compliance = None

    @property
    def capabilities(self):
        return self._caps

    @property
    def id(self):
        return "test,ohmic,0,1"

    def _set_compliance(self, current):
        self.hw_compliance = current

    def _cells(self, sel):
        return sel.cells_of(self._caps.shape)

    def _pulse(self, sel, amp):
        rr, cc = self._cells(sel)
        factor = np.where(np.asarray(amp) > 0, 1.1, 1 / 1.1)
        self.g[rr, cc] *= factor

    def _execute(self, ops):
        self.calls.append(ops)
        out = []
        for op in ops:
            if isinstance(op, Read):
                rr, cc = self._cells(op.sel)
                out.append((self.g[rr, cc] * op.vread).reshape(op.sel.result_shape((4, 5))))
            elif isinstance(op, Pulse):
                self._pulse(op.sel, op.amplitude)
                rr, cc = self._cells(op.sel)
                out.append(None if op.vread is None else self.g[rr, cc] * op.vread)
            elif isinstance(op, Train):
                reads = []
                for a in op.amplitudes:
                    self._pulse(op.sel, a)
                    rr, cc = self._cells(op.sel)
                    reads.append(self.g[rr, cc] * (op.vread or 0))
                out.append(None if op.vread is None else np.array(reads))
            elif isinstance(op, Ramp):
                volts, currents = [], []
                for v in op.voltages:
                    self.g[op.row, op.col] *= 1.5
                    i = self.g[op.row, op.col] * (op.vread if op.vread else v)
                    volts.append(v)
                    currents.append(i)
                    if op.stop_current is not None and abs(i) > op.stop_current:
                        break
                out.append(RampResult(np.array(volts), np.array(currents),
                                      len(volts) < len(op.voltages)))
            elif isinstance(op, Idle):
                self.idle = op.mode
                out.append(None)
        return out


@pytest.fixture
def ctrl():
    c = Ohmic()
    c.apply_chip_limits(Limits(voltage=3.0, current=1e-3, pulse_width=1e-3))
    return c


def test_selection_shapes_and_cells():
    shape = (4, 5)
    assert Selection.one(1, 2).result_shape(shape) == ()
    assert Selection.row(1).result_shape(shape) == (5,)
    assert Selection.column(3).result_shape(shape) == (4,)
    assert Selection.all().result_shape(shape) == (4, 5)
    rr, cc = Selection.all().cells_of(shape)
    assert rr.tolist()[:6] == [0, 0, 0, 0, 0, 1] and cc.tolist()[:6] == [0, 1, 2, 3, 4, 0]
    assert Selection.row(4).check(shape) == "row 4 outside the 4x5 array (0..3)"
    with pytest.raises(ValueError, match="2 rows but 1 columns"):
        Selection.cells([0, 1], [0])


def test_reads_have_the_selection_shape(ctrl):
    assert np.shape(ctrl.read_one(0, 0, 0.2)) == ()
    assert ctrl.read_row(1, 0.2).shape == (5,)
    assert ctrl.read_column(2, 0.2).shape == (4,)
    full = ctrl.read_all(0.2)
    assert full.shape == (4, 5)
    assert conductance(full, 0.2) == pytest.approx(np.full((4, 5), 1e-4))


@pytest.mark.parametrize("call, match", [
    (lambda c: c.pulse_one(0, 0, 3.5, 1e-6), "chip's voltage limit 3 V"),
    (lambda c: c.pulse_one(0, 0, 1.0, 2e-3), "chip's pulse_width limit"),
    (lambda c: c.pulse_one(0, 0, 1.0, 1e-9), "outside the controller's range"),
    (lambda c: c.pulse_one(0, 0, float("nan"), 1e-6), "finite"),
    (lambda c: c.read_one(0, 9, 0.2), "column 9 outside the 4x5 array"),
    (lambda c: c.read_one(0, 0, 0.2, bias="float"), "bias scheme 'float' not available"),
    (lambda c: c.read_one(0, 0, 1.5), "outside the controller's range -1..1 V"),
    (lambda c: c.pulse(Selection.row(0), np.ones(5), 1e-6), "need a 'cells' selection"),
])
def test_bad_operations_fail_before_anything_is_sent(ctrl, call, match):
    with pytest.raises(LimitError, match=match):
        call(ctrl)
    assert ctrl.calls == []
    assert len(ctrl.pulse_log) == 0


def test_a_batch_with_one_bad_operation_applies_nothing(ctrl):
    with pytest.raises(LimitError):
        ctrl.submit([Pulse(Selection.one(0, 0), 1.0, 1e-6), Pulse(Selection.one(0, 1), 9.0, 1e-6)])
    assert ctrl.calls == []
    assert np.all(ctrl.g == 1e-4)


def test_batch_runs_in_one_execute_and_fills_pending(ctrl):
    with ctrl.batch():
        a = ctrl.pulse_one(0, 0, 1.0, 1e-6, vread=0.2)
        b = ctrl.read_all(0.2)
        with pytest.raises(RuntimeError, match="not been executed"):
            b.result()
    assert len(ctrl.calls) == 1 and len(ctrl.calls[0]) == 2
    assert a.result() == pytest.approx([1.1e-4 * 0.2])
    assert b.result()[0, 0] == pytest.approx(1.1e-4 * 0.2)


def test_a_batch_that_raises_executes_nothing(ctrl):
    with pytest.raises(KeyError), ctrl.batch():
        ctrl.pulse_all(1.0, 1e-6)
        raise KeyError("user error")
    assert ctrl.calls == [] and np.all(ctrl.g == 1e-4)


def test_pulse_log_records_every_pulse_on_every_device(ctrl):
    ctrl.pulse_all(1.0, 1e-6)  # 20 devices
    ctrl.pulse(Selection.cells([0, 3], [1, 4]), np.array([1.0, -1.0]), 2e-6, vread=0.2)
    ctrl.pulse_train(Selection.row(2), [1.0, 1.0, -1.0], 1e-6, vread=0.2)  # 3 x 5
    ctrl.ramp(1, 1, 0.5, 2.0, 0.5, 1e-6, vread=0.2, stop_current=1e-4 * 0.2 * 3)
    frame = ctrl.pulse_log.to_frame()
    assert len(frame) == 20 + 2 + 15 + 3  # the ramp stops at its third step (G x 3.375)
    assert frame["op"].nunique() == 4
    cells = frame[frame["op"] == 1]
    assert cells[["row", "col", "amplitude_v", "width_s"]].to_numpy().tolist() == [
        [0, 1, 1.0, 2e-6], [3, 4, -1.0, 2e-6]]
    assert np.isnan(frame[frame["op"] == 0]["current_a"]).all()
    train = frame[frame["op"] == 2]
    assert train["amplitude_v"].tolist() == [1.0] * 10 + [-1.0] * 5
    counts = ctrl.pulse_log.counts((4, 5))
    assert counts[2].tolist() == [4] * 5 and counts[1, 1] == 4


def test_widths_are_put_on_the_time_grid():
    c = Ohmic(time_grid=1e-6)
    c.pulse_one(0, 0, 1.0, 2.4e-6)
    assert c.pulse_log.arrays()["width_s"][0] == pytest.approx(2e-6)
    assert c.width_on_grid(2.6e-6) == pytest.approx(3e-6)


def test_software_compliance_warns_once_and_stops_ramps(ctrl):
    with pytest.warns(RuntimeWarning, match="no hardware current compliance"):
        ctrl.set_compliance(5e-5)
    result = ctrl.ramp(0, 0, 0.5, 3.0, 0.5, 1e-6)  # read at the ramp voltage
    assert result.stopped and result.currents[-1] > 5e-5
    assert result.steps < 6
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ctrl.set_compliance(4e-5)
    assert caught == []  # warned once per controller


def test_hardware_compliance_goes_to_the_backend_and_is_limited():
    c = Ohmic(hardware_compliance=True)
    c.apply_chip_limits(Limits(voltage=3.0, current=1e-3))
    c.set_compliance(1e-4)
    assert c.hw_compliance == 1e-4
    with pytest.raises(LimitError, match="current limit"):
        c.set_compliance(2e-3)
    assert c.hw_compliance == 1e-4


def test_shutdown_grounds_every_line(ctrl):
    ctrl.float_all()
    ctrl.shutdown()
    assert ctrl.idle == "ground"


def test_array_file_round_trip(tmp_path, ctrl):
    results = tmp_path / "write-verify_1.csv"
    path = sidecar_path(results)
    assert path.name == "write-verify_1.h5"
    with ArrayFile(path, "w") as f:
        f.set_attrs(procedure="test", seed="3")
        ctrl.pulse_log.sink = f.append_pulses
        ctrl.pulse_all(1.0, 1e-6)
        ctrl.pulse_one(2, 3, -1.0, 1e-6, vread=0.2)
        f.write_map("g", np.arange(20.0).reshape(4, 5), units="S")
        f.write_trace("labels", np.array(["a", "b"]))
    pulses = load_pulses(results)  # by the results file name
    assert len(pulses) == 21 and pulses["current_a"].notna().sum() == 1
    assert load_maps(path)["g"][3, 4] == 19.0
    assert list(load_traces(path)["labels"]) == ["a", "b"]
    with ArrayFile(path) as f:
        assert f.attrs()["procedure"] == "test"
        assert f.attrs("maps", "g")["units"] == "S"


def test_array_file_errors_name_the_file(tmp_path):
    from labctl.errors import ConfigError

    with pytest.raises(ConfigError, match="nope.h5"):
        ArrayFile(tmp_path / "nope.h5")
