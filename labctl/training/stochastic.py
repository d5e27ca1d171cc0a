"""In-situ training of binary stochastic synapses (Ellis, Welbourne et al., arXiv 2303.01886).

Each synapse (i, j) — output line i, input line j of a stochastic-synapse array — is driven at
its own amplitude ``w[i, j]`` (V), the trained parameter; a trial switches it with probability
P(w) = (1 − a) + a·σ(dx·(w − x0)) (PHYSICS.md §2.1, the per-synapse x0, dx, a fitted by
``array-switching-probability`` and read from the calibration store). A forward pass of a batch
is ONE :meth:`~labctl.array.ArrayController.cell_switch_counts` transaction: n trials on every
synapse of every active input of every sample, counts k; Y_i = Σ_j k_ij / n. The exact rule of
the authors' code (§2.1), with binary inputs x_j and p_ij = x_j·P(w_ij):

    μ_i = Σ_j p_ij,  σ_i² = Σ_j p_ij(1 − p_ij)/n + 1e-4,  ε_i = (Y_i − μ_i)/σ_i (held fixed),
    z_i = μ_i + ε_i·σ_i + b_i  (= Y_i + b_i),  softmax cross-entropy,
    ∂z_i/∂w_ij = (1 + ε_i(1 − 2p_ij)/(2nσ_i))·x_j·a·dx·s(1 − s),  s = σ(dx(w − x0)),

Adam (lr 0.02). Initial drives w = x0 (p ≈ 0.51), b = 0. Drives stay within
[``drive_min``, ``drive_max``] (projected after each step; the array checks them too).

:class:`SynapseLayer` is the hardware layer (forward = measurement); :class:`StochasticNet` the
trained parameters and the rule; :class:`StochasticTrainer` extends
:class:`~labctl.training.engine.Trainer` (batches, rows, atomic checkpoints after every batch,
resume). The device operations are the measurements (the drives are settings, not writes): a
training forward logs one row per (sample, synapse) with its 2n pulses and its count, so a run
killed after a forward and before its checkpoint resumes from the logged counts without
measuring again; a test evaluation (``passes`` stochastic passes, accuracy averaged, as in the
paper; after every ``eval_every``-th epoch and the last) logs one row per synapse, and if a kill
loses its result the resumed run goes on without repeating it (that epoch's test accuracy is
NaN).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np

from labctl import switching
from labctl.array import ArrayController, PulseLog
from labctl.errors import ConfigError
from labctl.training.data import Dataset
from labctl.training.engine import Trainer, TrainSettings
from labctl.training.layers import HardwareLayer
from labctl.training.optim import Adam, softmax_cross_entropy

log = logging.getLogger(__name__)

MODEL = "dw-sigmoid"
VAR_FLOOR = 1e-4
"""Added to σ² in the authors' code (keeps σ > 0 when every p is 0 or 1)."""


def synapse_name(row: int, col: int) -> str:
    """The calibration device name of synapse (row, col) (as ``array-switching-probability``
    stores it)."""
    return f"syn-{row}-{col}"


@dataclass(frozen=True)
class Calibration:
    """Per-synapse x0 (V), dx (1/V), a of P(x), each (rows, cols)."""

    x0: np.ndarray
    dx: np.ndarray
    a: np.ndarray

    @classmethod
    def load(cls, store, chip: str, shape) -> Calibration:
        """The newest ``dw-sigmoid`` fit of every synapse; one line naming what is missing."""
        values, missing = _read_fits(store, chip, shape)
        if missing:
            raise ConfigError(f"calibration store {store.root}",
                              f"{len(missing)} of {shape[0] * shape[1]} synapses of chip {chip!r} "
                              f"have no {MODEL!r} fit (first: {synapse_name(*missing[0])}); run "
                              "`labctl run array-switching-probability` on this station first, "
                              "or train with calibrate on")
        return cls(**values)

    def probability(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(P(w), s = σ(dx·(w − x0))) per synapse."""
        s = 1.0 / (1.0 + np.exp(-self.dx * (w - self.x0)))
        return np.clip((1.0 - self.a) + self.a * s, 0.0, 1.0), s


def _read_fits(store, chip: str, shape) -> tuple[dict[str, np.ndarray], list[tuple[int, int]]]:
    """x0, dx, a maps of the stored fits (NaN where none) and the synapses without one."""
    values = {name: np.full(shape, np.nan) for name in ("x0", "dx", "a")}
    missing = []
    for r in range(shape[0]):
        for c in range(shape[1]):
            entries = store.history(chip, synapse_name(r, c), MODEL)
            if not entries:
                missing.append((r, c))
                continue
            for name in values:
                values[name][r, c] = entries[-1][name]
    return values, missing


def missing_synapses(store, chip: str, shape) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the synapses without a ``dw-sigmoid`` fit in ``store``."""
    missing = np.array(_read_fits(store, chip, shape)[1], dtype=np.intp).reshape(-1, 2)
    return missing[:, 0], missing[:, 1]


def calibrate(array: ArrayController, store, chip: str, rows, cols, amplitudes, trials: int,
              settings: SynapseSettings, *, provenance: dict | None = None,
              should_stop=lambda: False) -> int:
    """Measure P(switch) of the synapses (``rows``, ``cols``) at ``amplitudes`` (one
    transaction per amplitude), fit the sigmoid per synapse and store it; returns the number
    stored (a synapse whose fit fails is reported and left out)."""
    amplitudes = np.asarray(amplitudes, dtype=float)
    if len(rows) == 0:
        return 0
    counts = np.empty((amplitudes.size, len(rows)), dtype=np.int64)
    for k, x in enumerate(amplitudes):
        if should_stop():
            return 0
        counts[k] = array.cell_switch_counts(rows, cols, np.full(len(rows), x), trials,
                                             **settings.counting())
    model = switching.model(MODEL)
    widths, n = np.full(amplitudes.size, settings.width), np.full(amplitudes.size, trials)
    stored = 0
    for j, (r, c) in enumerate(zip(rows, cols, strict=True)):
        try:
            fit = switching.fit_model(model, amplitudes, widths, counts[:, j], n)
        except ValueError as exc:
            log.warning("synapse (%d, %d): no fit (%s)", r, c, exc)
            continue
        store.save(chip, synapse_name(r, c), model.name, fit.parameters(),
                   extra={"width_s": settings.width, "trials": int(n.sum())},
                   **(provenance or {}))
        stored += 1
    return stored


@dataclass(frozen=True)
class SynapseSettings:
    """How a trial is run: ``n`` trials per synapse and forward; reset pulse, read voltage,
    pulse width, the read contrast that counts as switched, the bias scheme."""

    n: int = 1
    reset: float = -1.5
    vread: float = 0.1
    width: float = 1e-6
    contrast: float = 0.2
    bias: str = "v/2"
    drive_min: float = 0.0
    drive_max: float = 8.0

    def counting(self) -> dict:
        return {"reset": self.reset, "vread": self.vread, "width": self.width,
                "contrast": self.contrast, "bias": self.bias}


class SynapseLayer(HardwareLayer):
    """A layer of binary stochastic synapses on an array: drives (n_out, n_in) = the array's
    (rows, cols); :meth:`forward` measures, :meth:`apply_update` moves the drives."""

    def __init__(self, array: ArrayController, calibration: Calibration,
                 settings: SynapseSettings, drives: np.ndarray | None = None):
        self.array, self.cal, self.settings = array, calibration, settings
        self.n_out, self.n_in = array.shape
        self.drives = np.array(calibration.x0 if drives is None else drives, dtype=float)
        self._trials = np.zeros((self.n_in, self.n_out), dtype=np.int64)
        self.transactions = 0

    def weights(self) -> np.ndarray:
        """P(drive) of every synapse from the calibration, (n_in, n_out)."""
        return self.cal.probability(self.drives)[0].T

    def hidden(self) -> np.ndarray:
        return self.drives.T.copy()

    def cells(self, x: np.ndarray, passes: int = 1) -> tuple[np.ndarray, ...]:
        """(pass, sample, row, col) of every measured synapse instance of binary inputs ``x``
        (batch, n_in), in the order they are measured and logged."""
        b, j = np.nonzero(np.asarray(x) != 0)
        m = b.size * self.n_out
        rows = np.tile(np.arange(self.n_out), b.size * passes)
        samples = np.tile(np.repeat(b, self.n_out), passes)
        cols = np.tile(np.repeat(j, self.n_out), passes)
        return np.repeat(np.arange(passes), m), samples, rows, cols

    def measure(self, x: np.ndarray, passes: int = 1, per_synapse: bool = False) -> np.ndarray:
        """Counts k (passes, batch, n_out, n_in) of ``n`` trials per synapse of every active
        input, every sample and pass: one transaction."""
        x = np.asarray(x)
        p, b, r, c = self.cells(x, passes)
        counts = np.zeros((passes, len(x), self.n_out, self.n_in), dtype=np.int64)
        if r.size == 0:
            return counts
        k = self.array.cell_switch_counts(r, c, self.drives[r, c], self.settings.n,
                                          per_synapse=per_synapse, **self.settings.counting())
        self.transactions += 1
        np.add.at(self._trials, (c, r), self.settings.n)
        counts[p, b, r, c] = k
        return counts

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Y (batch, n_out) = Σ_j k_ij / n, measured."""
        return self.measure(x)[0].sum(axis=2) / self.settings.n

    def apply_update(self, update: np.ndarray) -> int:
        """Drives += ``update`` (n_in, n_out, V), kept in [drive_min, drive_max] and checked by
        the array; no device operation (the drives are used by the next measurement)."""
        s = self.settings
        new = np.clip(self.drives + np.asarray(update, dtype=float).T, s.drive_min, s.drive_max)
        self.array.set_drives(new)
        self.drives = new
        return 0

    def operation_counts(self) -> np.ndarray:
        """Trials run on each synapse so far, (n_in, n_out)."""
        return self._trials.copy()


class StochasticNet:
    """Drives w (in the layer), bias b and their Adam moments; the §2.1 rule."""

    def __init__(self, layer: SynapseLayer, lr: float = 0.02):
        self.layer, self.lr = layer, float(lr)
        self.layers = [layer]
        self.b = np.zeros(layer.n_out)
        self.adam_w = Adam(layer.drives.shape)
        self.adam_b = Adam(self.b.shape)

    def gradients(self, x: np.ndarray, y: np.ndarray, counts: np.ndarray
                  ) -> tuple[float, int, np.ndarray, np.ndarray]:
        """(loss, correct, dL/dw, dL/db) of a batch from its measured counts (batch, out, in)."""
        n = self.layer.settings.n
        x = np.asarray(x, dtype=float)
        pb, s = self.layer.cal.probability(self.layer.drives)  # P(w), (out, in)
        mu = x @ pb.T
        sigma = np.sqrt(x @ (pb * (1.0 - pb)).T / n + VAR_FLOOR)
        big_y = counts.sum(axis=2) / n
        eps = (big_y - mu) / sigma  # held fixed
        z = mu + eps * sigma + self.b
        loss, g, correct = softmax_cross_entropy(z, y)
        dp = self.layer.cal.a * self.layer.cal.dx * s * (1.0 - s)
        grad_w = dp * (g.T @ x + ((g * eps / (2.0 * n * sigma)).T @ x) * (1.0 - 2.0 * pb))
        return loss, correct, grad_w, g.sum(axis=0)

    def step(self, x: np.ndarray, y: np.ndarray, counts: np.ndarray) -> tuple[float, int]:
        """One Adam step from a batch's measured counts; returns (loss, correct)."""
        loss, correct, gw, gb = self.gradients(x, y, counts)
        self.layer.apply_update(-self.lr * self.adam_w.direction(gw).T)
        self.b -= self.lr * self.adam_b.direction(gb)
        return loss, correct

    def accuracy(self, x: np.ndarray, y: np.ndarray, counts: np.ndarray) -> float:
        """Accuracy averaged over the passes of ``counts`` (passes, batch, out, in)."""
        z = counts.sum(axis=3) / self.layer.settings.n + self.b
        return float(np.mean(z.argmax(axis=2) == np.asarray(y)[None, :]))

    def in_band(self, low: float = 0.1, high: float = 0.9) -> float:
        """Fraction of synapses with P(w) in (low, high)."""
        p = self.layer.weights()
        return float(np.mean((p > low) & (p < high)))

    def state(self) -> dict[str, np.ndarray]:
        return {"w": self.layer.drives.copy(), "b": self.b.copy(),
                **self.adam_w.state("adam_w"), **self.adam_b.state("adam_b")}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.layer.array.set_drives(state["w"])
        self.layer.drives = np.array(state["w"], dtype=float)
        self.b = np.array(state["b"], dtype=float)
        self.adam_w.load_state("adam_w", state)
        self.adam_b.load_state("adam_b", state)


class LogReader:
    """The array's pulse log: from the run's array file (``file``, ``group``) or in memory."""

    def __init__(self, array: ArrayController, file=None, group: str = "pulses"):
        self.array, self.file, self.group = array, file, group

    def length(self) -> int:
        return self.file.pulse_count(self.group) if self.file is not None \
            else len(self.array.pulse_log)

    def since(self, start: int) -> dict[str, np.ndarray]:
        if self.file is not None:
            return self.file.pulse_arrays(self.group, start)
        return {k: v[start:] for k, v in self.array.pulse_log.arrays().items()}


class StochasticTrainer(Trainer):
    """The engine's epochs, batches, rows and checkpoints over a :class:`StochasticNet`
    (module docstring); ``passes`` stochastic passes per test evaluation."""

    def __init__(self, net: StochasticNet, data: Dataset, settings: TrainSettings,
                 logs: LogReader, passes: int = 16, eval_every: int = 1, **kwargs):
        super().__init__(net, data, settings, logs=logs, **kwargs)
        self.layer = net.layer
        self.passes = int(passes)
        self.eval_every = max(int(eval_every), 1)
        self.fingerprint["n"] = self.layer.settings.n
        self.fingerprint["passes"] = self.passes
        self.evaluated = 0  # epochs whose test evaluation was run (or was not due)

    def _first_step(self) -> int:
        self.layer.array.set_drives(self.layer.drives)
        self._checkpoint(0)
        return 1

    def _step(self, step: int, counts: np.ndarray | None = None) -> None:
        if self._due(step) is not None:
            self._evaluate_epoch()
        started, hw0 = time.perf_counter(), self.clock()
        epoch, idx = self.batch(step)
        x, y = self.data.x_train[idx], self.data.y_train[idx]
        t0 = self.layer.transactions
        if counts is None:
            counts = self.layer.measure(x)[0]
        loss, correct = self.net.step(x, y, counts)
        pulses = self._count(x, 1)
        self._checkpoint(step)
        self._emit(step, {"loss": loss, "correct": correct, "n": len(y), "test": math.nan,
                          "reads": self.layer.transactions - t0}, pulses, 0, started, hw0)

    def _count(self, x: np.ndarray, passes: int) -> int:
        """Device pulses of a measurement of ``x`` (2n per synapse instance), into the totals
        (with their energy at the user's energy per pulse)."""
        pulses = int(passes * 2 * self.layer.settings.n * np.count_nonzero(x) * self.layer.n_out)
        self.totals["pulses"] += pulses
        self.totals["energy"] += pulses * self.settings.energy_per_pulse
        return pulses

    def _evaluate_epoch(self) -> None:
        """The test evaluation after epoch ``evaluated + 1``: one transaction, a checkpoint."""
        started, hw0 = time.perf_counter(), self.clock()
        t0 = self.layer.transactions
        counts = self.layer.measure(self.data.x_test, self.passes, per_synapse=True)
        self.evaluated += 1
        test = self.net.accuracy(self.data.x_test, self.data.y_test, counts)
        self.test_accuracy.append(test)
        pulses = self._count(self.data.x_test, self.passes)
        self._checkpoint(self.evaluated * self.batches_per_epoch)
        self._emit(self.evaluated * self.batches_per_epoch,
                   {"loss": math.nan, "correct": 0, "n": 0, "test": test,
                    "reads": self.layer.transactions - t0}, pulses, 0, started, hw0)

    def _due(self, step: int) -> int | None:
        """The epoch whose test evaluation must run before ``step`` (None: none); epochs
        without one due (every ``eval_every``-th and the last have one) are passed."""
        done = min((step - 1) // self.batches_per_epoch, self.settings.epochs)
        while self.evaluated < done:
            epoch = self.evaluated + 1
            if epoch % self.eval_every == 0 or epoch == self.settings.epochs:
                return epoch
            self.evaluated = epoch
        return None

    def _final(self) -> None:
        if self._due(self.last_step + 1) is not None:
            self._evaluate_epoch()

    def _checkpoint(self, step: int) -> None:
        if self.checkpoints is None:
            return
        meta = {"step": step, "log_after": self.logs.length(), "evaluated": self.evaluated,
                "totals": self.totals, "test_accuracy": self.test_accuracy, "marks": [],
                "fingerprint": self.fingerprint}
        self.checkpoints.write(meta, self.net.state())

    def _resume(self) -> int:
        """Continue after the checkpoint; a forward logged after it is used, not repeated."""
        if self.checkpoints is None:
            raise ConfigError("resume", "resuming needs a checkpoint file")
        meta, state = self.checkpoints.load()
        self._restore(meta, state)
        self.evaluated = int(meta["evaluated"])
        step = int(meta["step"]) + 1
        extra = self.logs.since(int(meta["log_after"]))
        if extra["row"].size == 0:
            return step
        if step <= self.last_step and self._due(step) is None:
            _, idx = self.batch(step)
            x = self.data.x_train[idx]
            _, b, r, c = self.layer.cells(x)
            if not self._matches(extra, r, c):
                raise ConfigError(str(self.checkpoints.path), "the pulse log after the "
                                  "checkpoint is not the measurement of the next batch")
            counts = np.zeros((len(x), self.layer.n_out, self.layer.n_in), dtype=np.int64)
            counts[b, r, c] = extra["switched"]
            log.info("resuming step %d from its logged measurement", step)
            self._step(step, counts)
            return step + 1
        _, _, r, c = self.layer.cells(self.data.x_test, self.passes)
        flat = np.unique(r * self.layer.n_in + c)
        if not self._matches(extra, flat // self.layer.n_in, flat % self.layer.n_in):
            raise ConfigError(str(self.checkpoints.path), "the pulse log after the checkpoint "
                              "is not the test evaluation that was due")
        log.warning("the test evaluation after epoch %d was measured but its result was lost "
                    "with the run; not repeated", self.evaluated + 1)
        self.evaluated += 1
        self.test_accuracy.append(math.nan)
        self._checkpoint(self.evaluated * self.batches_per_epoch)
        return step

    def replay_chip(self) -> int:
        """Bring a *simulated* bench that was lost with its process (a fresh bench of the same
        seed) to where the run left it: every logged counting operation again, in order, with a
        throw-away log, so the simulator's random draws continue as they would have. An
        evaluation (logged per synapse) is rebuilt from the test set. Never on real hardware.
        Returns the operations replayed."""
        logged = self.logs.since(0)
        ops = logged["op"]
        if ops.size == 0:
            return 0
        starts = np.concatenate([[0], np.nonzero(np.diff(ops))[0] + 1, [ops.size]])
        _, _, er, ec = self.layer.cells(self.data.x_test, self.passes)
        flat = np.unique(er * self.layer.n_in + ec)
        eval_rows, eval_cols = flat // self.layer.n_in, flat % self.layer.n_in
        eval_pulses = (2 * self.layer.settings.n * self.passes *
                       np.count_nonzero(self.data.x_test, axis=0)[eval_cols])
        array, saved = self.layer.array, self.layer.array.pulse_log
        array.pulse_log = PulseLog()
        try:
            for a, b in zip(starts[:-1], starts[1:], strict=True):
                r, c = logged["row"][a:b].astype(np.intp), logged["col"][a:b].astype(np.intp)
                drives, pulses = logged["amplitude_v"][a:b], logged["pulses"][a:b]
                if (r.size == flat.size and np.array_equal(r, eval_rows)
                        and np.array_equal(c, eval_cols) and np.array_equal(pulses, eval_pulses)):
                    table = np.zeros((self.layer.n_out, self.layer.n_in))
                    table[r, c] = drives
                    r, c, drives, n = er, ec, table[er, ec], self.layer.settings.n
                else:
                    n = int(pulses[0]) // 2
                array.cell_switch_counts(r, c, drives, n, **self.layer.settings.counting())
        finally:
            array.pulse_log = saved
        log.info("replayed %d logged operations onto the simulated chip", starts.size - 1)
        return starts.size - 1

    def _matches(self, rows: dict[str, np.ndarray], r: np.ndarray, c: np.ndarray) -> bool:
        return (rows["row"].size == r.size and np.array_equal(rows["row"], r)
                and np.array_equal(rows["col"], c)
                and np.allclose(rows["amplitude_v"], self.layer.drives[r, c]))

    def summary(self) -> dict:
        return {**super().summary(), "in_band": self.net.in_band(),
                "transactions": self.layer.transactions}
