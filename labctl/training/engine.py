"""The in-situ training engine: batches and epochs over a network on hardware layers.

Each step measures the weights through the instruments, computes loss and gradients in numpy,
lets the optimizer produce an update, and applies it as device operations — with a checkpoint
protocol that makes a kill at any point resumable without repeating or losing a pulse
(:mod:`labctl.training.checkpoint`): pending record → operations → commit. Every step starts
with exactly one fresh measurement (the test evaluation at an epoch boundary reuses it), so the
sequence of device operations and reads does not depend on where a run was stopped. Step 0 is
the SET of every device (the paper's starting state); step 1's measurement also calibrates the
pairs' offsets (:mod:`labctl.training.rram`, offset trim; checkpointed with the network's state,
so a resumed run keeps the offsets it began with); steps 1.. are the batches, epoch by epoch,
in an order drawn from ``numpy.random.default_rng([seed, epoch])`` (a resumed run draws the same
batches).

**Resume** (:meth:`Trainer.run` with ``resume=True``): the pulse log (the run's array file) is the
truth. With a pending record one step ahead of the checkpoint, the pulses logged since the
checkpoint must be a prefix, in whole operations, of the pending operations: exactly the rest is
applied, then the step is committed. Without one, the log must end where the checkpoint says;
anything else is refused (one line) before any device is touched.

Rows (one per step, through ``on_row``): step, epoch, loss and batch accuracy, the test accuracy
of the weights after each epoch (in the row of the next epoch's first step, whose measurement it
uses, and in a last row after the final step; NaN otherwise), pulses of the step and in total,
per-step measurement and update transactions, hardware time (the bench's virtual clock; NaN on
hardware) and an energy estimate (V²·G·width per device pulse with G as measured before it, or
the user's energy per pulse).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from labctl.array import Pulse, PulseLog, Selection
from labctl.errors import ConfigError
from labctl.training.bnn import BinaryNet
from labctl.training.checkpoint import Checkpoints
from labctl.training.data import Dataset
from labctl.training.rram import CrossbarPairs, plan_rows

log = logging.getLogger(__name__)

ROW_COLUMNS = ["Step", "Epoch", "Loss", "Batch accuracy", "Test accuracy", "Pulses",
               "Total pulses", "Transactions", "Hardware time (s)", "Energy (J)",
               "Trainer time (s)"]


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 5
    batch_size: int = 32
    seed: int = 0
    energy_per_pulse: float = 0.0
    """J per device pulse; 0: estimate V²·G·width from the measured conductances."""
    set_first: bool = True
    """Step 0 SETs every device (the paper's protocol) before training."""


class PulseLogs:
    """Lengths and contents of the pulse log of each array role: from the run's array file
    (``file`` with ``groups``: role → HDF5 group), else from the controllers' own logs."""

    def __init__(self, pairs: CrossbarPairs, file=None, groups: dict[str, str] | None = None):
        self.pairs, self.file, self.groups = pairs, file, groups or {}

    def _arrays(self, role: str, start: int = 0, stop: int | None = None
                ) -> dict[str, np.ndarray]:
        if self.file is not None:
            return self.file.pulse_arrays(self.groups[role], start, stop)
        return {k: v[start:stop] for k, v in self.pairs.arrays[role].pulse_log.arrays().items()}

    def lengths(self) -> dict[str, int]:
        if self.file is not None:
            return {role: self.file.pulse_count(self.groups[role]) for role in self.pairs.roles}
        return {role: len(self.pairs.arrays[role].pulse_log) for role in self.pairs.roles}

    def raw(self, role: str, start: int, stop: int) -> dict[str, np.ndarray]:
        return self._arrays(role, start, stop)

    def since(self, role: str, start: int):
        a = self._arrays(role, start)
        return (a["row"].astype(np.int64), a["col"].astype(np.int64),
                a["amplitude_v"].astype(float))


def fingerprint(data: Dataset, settings: TrainSettings, shapes) -> dict:
    """What a resumed run must share with the run it continues."""
    return {"dataset": data.name, "train_samples": len(data.y_train),
            "batch_size": settings.batch_size, "seed": settings.seed,
            "layers": [[int(a), int(b)] for a, b in shapes]}


def resume_problem(meta: dict, expected: dict) -> str | None:
    """A line naming what differs between a checkpoint's run and ``expected`` (None: fine)."""
    differ = [f"{key} {meta['fingerprint'].get(key)!r} -> {value!r}"
              for key, value in expected.items() if meta["fingerprint"].get(key) != value]
    return f"cannot resume a run with other settings ({'; '.join(differ)})" if differ else None


def logged_operations(rows: dict[str, np.ndarray], bias: str) -> list[Pulse]:
    """The pulse operations of a stretch of pulse log (one per run of equal ``op`` numbers)."""
    op = rows["op"]
    if op.size == 0:
        return []
    starts = np.concatenate([[0], np.nonzero(np.diff(op))[0] + 1])
    ends = np.concatenate([starts[1:], [op.size]])
    return [Pulse(Selection.cells(rows["row"][a:b], rows["col"][a:b]),
                  float(rows["amplitude_v"][a]), float(rows["width_s"][a]), bias)
            for a, b in zip(starts, ends, strict=True)]


class Trainer:
    """Trains ``net`` on ``data``; with ``pairs`` its layers are on hardware (checkpointed if
    ``checkpoints`` is given), without, they are software layers updated in place."""

    def __init__(self, net: BinaryNet, data: Dataset, settings: TrainSettings,
                 pairs: CrossbarPairs | None = None, logs: PulseLogs | None = None,
                 checkpoints: Checkpoints | None = None,
                 clock: Callable[[], float | None] | None = None,
                 on_row: Callable[[dict], None] | None = None,
                 progress: Callable[[float], None] | None = None,
                 should_stop: Callable[[], bool] | None = None):
        self.net, self.data, self.settings = net, data, settings
        self.pairs = pairs
        self.logs = logs if logs is not None or pairs is None else PulseLogs(pairs)
        self.checkpoints = checkpoints
        self.clock = clock or (lambda: None)
        self.on_row = on_row or (lambda row: None)
        self.progress = progress or (lambda pct: None)
        self.should_stop = should_stop or (lambda: False)
        n = len(data.y_train)
        self.batches_per_epoch = math.ceil(n / settings.batch_size)
        self.last_step = settings.epochs * self.batches_per_epoch
        self.totals = {"pulses": 0, "energy": 0.0, "hardware_time": 0.0, "trainer_time": 0.0}
        self.test_accuracy: list[float] = []
        self.marks: list[dict[str, int]] = []  # pulse-log lengths before each step's pulses
        self.stopped = False
        self.fingerprint = fingerprint(data, settings,
                                       [(layer.n_in, layer.n_out) for layer in net.layers])

    # ------------------------------------------------------------------ batches
    def batch(self, step: int) -> tuple[int, np.ndarray]:
        """(epoch, sample indices) of step ≥ 1."""
        epoch, b = divmod(step - 1, self.batches_per_epoch)
        order = np.random.default_rng([self.settings.seed, epoch]).permutation(
            len(self.data.y_train))
        bs = self.settings.batch_size
        return epoch, order[b * bs:(b + 1) * bs]

    # ------------------------------------------------------------------ the loop
    def run(self, resume: bool = False) -> dict:
        """Train to the last step (or until ``should_stop``); returns :meth:`summary`."""
        step = self._resume() if resume else self._first_step()
        while step <= self.last_step:
            if self.should_stop():
                self.stopped = True
                log.warning("training stopped before step %d of %d", step, self.last_step)
                break
            self._step(step)
            step += 1
        if not self.stopped and self.last_step > 0:
            self._final()
        return self.summary()

    def _first_step(self) -> int:
        if self.pairs is not None and self.settings.set_first:
            self._finish(0, self.pairs.set_plan(), {"loss": math.nan, "correct": 0, "n": 0,
                                                    "test": math.nan},
                         started=time.perf_counter(), hw0=self.clock())
        return 1

    def _step(self, step: int) -> None:
        started, hw0 = time.perf_counter(), self.clock()
        transactions0 = self.pairs.transactions if self.pairs is not None else 0
        epoch, idx = self.batch(step)
        if self.pairs is not None:
            self.pairs.invalidate()  # one fresh measurement per step, however the run went
            if step == 1 and self.settings.set_first and self.pairs.settings.trim:
                self.pairs.calibrate()  # the offsets of the pairs, from this step's read
        test = math.nan
        if step > 1 and (step - 1) % self.batches_per_epoch == 0:
            test = self._evaluate()  # the weights after the previous epoch, as measured now
        x, y = self.data.x_train[idx], self.data.y_train[idx]
        loss, correct, updates = self.net.step(x, y, self.net.lr_scale(epoch))
        info = {"loss": loss, "correct": correct, "n": len(y), "test": test,
                "reads": (self.pairs.transactions - transactions0) if self.pairs else 0}
        if self.pairs is None:
            pulses = sum(layer.apply_update(u) for layer, u in zip(self.net.layers, updates,
                                                                  strict=True))
            self.totals["pulses"] += pulses
            self._emit(step, info, pulses, 0, started, hw0)
            return
        counts = [self.pairs.counts(u) for u in updates]
        for layer, c in zip(self.pairs.layers, counts, strict=True):
            layer.record(c)
        self._finish(step, self.pairs.plan(dict(enumerate(counts))), info, started, hw0)

    def _finish(self, step: int, plan, info: dict, started: float, hw0) -> None:
        """Pending record, device operations, commit, row (the protocol of the module)."""
        shapes = {role: a.shape for role, a in self.pairs.arrays.items()}
        before = self.logs.lengths()
        sizes = {role: sum(op.sel.size(shapes[role]) for op in ops) for role, ops in plan.items()}
        pulses = sum(sizes.values())
        energy = (pulses * self.settings.energy_per_pulse if self.settings.energy_per_pulse > 0
                  else self.pairs.energy(plan))
        after = {role: before[role] + sizes.get(role, 0) for role in before}
        self.totals["pulses"] += pulses
        self.totals["energy"] += energy
        self.marks.append(before)
        meta = {"step": step, "log_before": before, "log_after": after, "info": info,
                "pulses": pulses, "totals": self.totals, "test_accuracy": self.test_accuracy,
                "marks": self.marks, "fingerprint": self.fingerprint}
        if self.checkpoints is not None:
            self.checkpoints.write_pending(meta, self._state(), plan, shapes)
        transactions0 = self.pairs.transactions
        self.pairs.apply(plan)
        if self.checkpoints is not None:
            self.checkpoints.commit()
        self._emit(step, info, pulses, self.pairs.transactions - transactions0, started, hw0)

    def _evaluate(self) -> float:
        test = self.net.accuracy(self.data.x_test, self.data.y_test)
        self.test_accuracy.append(test)
        return test

    def _final(self) -> None:
        """The test accuracy after the last step: one more measurement, one more row."""
        started, hw0 = time.perf_counter(), self.clock()
        if self.pairs is not None:
            self.pairs.invalidate()
        transactions0 = self.pairs.transactions if self.pairs is not None else 0
        test = self._evaluate()
        reads = self.pairs.transactions - transactions0 if self.pairs is not None else 0
        self._emit(self.last_step, {"loss": math.nan, "correct": 0, "n": 0, "test": test,
                                    "reads": reads}, 0, 0, started, hw0)

    def _emit(self, step: int, info: dict, pulses: int, transactions: int, started: float,
              hw0) -> None:
        test = info["test"]
        hw1 = self.clock()
        if hw0 is not None and hw1 is not None:
            self.totals["hardware_time"] += hw1 - hw0
        self.totals["trainer_time"] += time.perf_counter() - started
        epoch = 0 if step == 0 else (step - 1) // self.batches_per_epoch + 1
        self.on_row({"Step": step, "Epoch": epoch, "Loss": info["loss"],
                     "Batch accuracy": info["correct"] / info["n"] if info["n"] else math.nan,
                     "Test accuracy": test, "Pulses": pulses,
                     "Total pulses": self.totals["pulses"],
                     "Transactions": transactions + info.get("reads", 0),
                     "Hardware time (s)": (self.totals["hardware_time"] if hw1 is not None
                                           else math.nan),
                     "Energy (J)": self.totals["energy"],
                     "Trainer time (s)": self.totals["trainer_time"]})
        self.progress(100.0 * step / self.last_step)

    # ------------------------------------------------------------------ resume
    def _resume(self) -> int:
        if self.pairs is None or self.checkpoints is None:
            raise ConfigError("resume", "resuming needs hardware layers and a checkpoint file")
        pending = self.checkpoints.load_pending()
        if pending is not None and pending[0]["step"] == 0 and \
                not self.checkpoints.path.is_file():  # stopped inside step 0
            meta, state = {"step": -1}, {}
        else:
            meta, state = self.checkpoints.load()
        now = self.logs.lengths()
        if pending is not None and pending[0]["step"] == meta["step"] + 1:
            p_meta, p_state, plan = pending
            done = {role: now[role] - p_meta["log_before"][role] for role in now}
            shapes = {role: a.shape for role, a in self.pairs.arrays.items()}
            for role, n in done.items():
                self._check_prefix(role, plan.get(role, []), shapes[role],
                                   p_meta["log_before"][role], n)
            self._restore(p_meta, p_state)
            started, hw0 = time.perf_counter(), self.clock()
            self.pairs.apply(plan, skip=done)
            self.checkpoints.commit()
            log.info("resumed step %d: %s pulses were applied before the stop, the rest now",
                     p_meta["step"], done)
            self._emit(p_meta["step"], p_meta["info"], p_meta["pulses"], 0, started, hw0)
            return p_meta["step"] + 1
        extra = {role: now[role] - meta["log_after"][role] for role in now}
        if any(extra.values()):
            raise ConfigError(str(self.checkpoints.path), f"the pulse log has {extra} pulses "
                              "beyond the checkpoint and no pending update explains them")
        self._restore(meta, state)
        return meta["step"] + 1

    def _state(self) -> dict[str, np.ndarray]:
        """What a checkpoint holds besides its meta: the network's and the pairs' state."""
        return {**self.net.state(), **self.pairs.state()}

    def _restore(self, meta: dict, state: dict[str, np.ndarray]) -> None:
        problem = resume_problem(meta, self.fingerprint)
        if problem:
            raise ConfigError(str(self.checkpoints.path), problem)
        self.net.load_state(state)
        if self.pairs is not None:  # the offsets the run calibrated (if it did), not anew
            self.pairs.load_state(state)
        self.totals = dict(meta["totals"])
        self.test_accuracy = list(meta["test_accuracy"])
        self.marks = list(meta["marks"])

    def replay_chip(self) -> int:
        """Bring a *simulated* chip that was lost with its process (a fresh bench of the same
        seed) to the state the pulse log says it had: every logged operation again, step by
        step, with the one whole-array read per board that came before each step's pulses (the
        measurement; at an epoch's end the test evaluation's read, which the next step reuses),
        so the simulator's random draws come out as they did. Nothing is logged again. Real
        hardware keeps its state: never call this on a real station. Returns the pulses replayed.
        """
        if self.pairs is None or self.checkpoints is None:
            raise ConfigError("resume", "replay needs hardware layers and a checkpoint file")
        meta = self.checkpoints.latest_meta()
        marks, now = meta["marks"], self.logs.lengths()
        s = self.pairs.settings
        saved = {role: a.pulse_log for role, a in self.pairs.arrays.items()}
        replayed = 0
        try:
            for array in self.pairs.arrays.values():
                array.pulse_log = PulseLog()  # a throw-away log: the file has these already
            for k, mark in enumerate(marks):
                if k > 0:
                    self.pairs.measure()
                for role in self.pairs.roles:
                    end = marks[k + 1][role] if k + 1 < len(marks) else now[role]
                    ops = logged_operations(self.logs.raw(role, mark[role], end), s.pulse_bias)
                    if ops:
                        self.pairs.arrays[role].submit(ops)
                    replayed += end - mark[role]
        finally:
            for role, pulse_log in saved.items():
                self.pairs.arrays[role].pulse_log = pulse_log
        self.pairs.invalidate()
        log.info("replayed %d logged pulses onto the simulated chip", replayed)
        return replayed

    def _check_prefix(self, role: str, ops, shape, start: int, n: int) -> None:
        rows, cols, amps = plan_rows(ops, shape)
        got = self.logs.since(role, start)
        if n < 0 or n > rows.size or not (np.array_equal(got[0][:n], rows[:n]) and
                                          np.array_equal(got[1][:n], cols[:n]) and
                                          np.allclose(got[2][:n], amps[:n])):
            raise ConfigError(f"pulse log of {role}", f"the {n} pulses logged since the last "
                              "checkpoint are not the start of the pending update")

    def summary(self) -> dict:
        return {"steps": self.last_step, "stopped": self.stopped,
                "test_accuracy": self.test_accuracy[-1] if self.test_accuracy else math.nan,
                "test_accuracy_by_epoch": list(self.test_accuracy), **self.totals}
