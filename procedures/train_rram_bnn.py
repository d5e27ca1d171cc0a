"""train-rram-bnn: a binarized network trained in situ on differential pairs of HfOx crossbars.

Majumdar et al. (arXiv:2107.06064, PHYSICS.md §5.2): weight = sign(R_BL − R_BLb) read from the
arrays, gradients and Adam in software, each step up to ``max_pulses`` (14) weak-RESET pulses on
one device of each pair; optionally Laborieux's metaplasticity (``meta`` > 0, §5.3, on the
measured hidden weight ln R_BL − ln R_BLb). ``trim`` (default on): each pair's offset after the
SET is measured once and subtracted from its hidden weight (offset trim,
:mod:`labctl.training.rram`); off, the paper's protocol as published. Engine, checkpoints and
resume: :mod:`labctl.training`. The network is ``n_features``-[``hidden``]-``n_classes``; every
layer is placed on the arrays named in ``arrays`` (roles of the station; the default station
offers two 32×32 ArC TWO crossbars, enough for digits' 64 inputs × 10 classes × 2 devices).

Beside every run: a float logistic regression (scikit-learn) and the same network trained in
software (float hidden weight with the devices' nominal slope, same data, batches and Adam), their
test accuracies in each epoch-end row. Rows: one per step (:data:`~labctl.training.engine.
ROW_COLUMNS` plus the two references). The array file holds the pulse log of every array
(``pulses`` for the first role, ``pulses_<role>`` for the others), the pulses per device
(``/maps/pulses_<role>``) and the final measured hidden weights (``/traces/hidden<k>``); the
checkpoint is ``<results>.ckpt.npz``. ``resume`` = an earlier run's results file continues that
run (its array file and checkpoint) without repeating a pulse. A real chip keeps its state when
the process dies; a simulated one dies with it, so on a simulated bench the resumed run first
replays the logged pulses (and the reads between them) onto the fresh chip of the same seed
(``replay_sim``; turn it off when resuming on a bench that lived on in the same Python session).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
from pymeasure.experiment import (
    BooleanParameter,
    FloatParameter,
    IntegerParameter,
    Metadata,
    Parameter,
)

from labctl.array import ArrayController, PulseLog
from labctl.arrayfile import ArrayFile, sidecar_path
from labctl.errors import ConfigError
from labctl.training import data as datasets
from labctl.training.bnn import BinaryNet, BnnConfig
from labctl.training.checkpoint import Checkpoints, checkpoint_path
from labctl.training.engine import (
    ROW_COLUMNS,
    PulseLogs,
    Trainer,
    TrainSettings,
    fingerprint,
    resume_problem,
)
from labctl.training.layers import SoftwareBinaryLayer
from labctl.training.rram import CrossbarPairs, PairSettings, place
from procedures.array_base import pulse_problems, release_array_file
from procedures.base import StationProcedure
from procedures.training_files import REPLAY_SIM, RESUME, TrainingRunFiles

log = logging.getLogger(__name__)

NOMINAL_SLOPE = 4.92e-4
"""ln R per weak-RESET pulse of the software twin: the median of m1's published truncated
exponential (loc 3.74e-5 + scale 6.565e-4 · ln 2; PHYSICS.md §1.2)."""
INITIAL_SPREAD = 0.108
"""Standard deviation of the twin's initial hidden weight, ln R: ln R_BL − ln R_BLb just after
SET, √2·√(sd c1² + (sd R0 / R0)²) = √2·√(0.0532² + 0.0546²) with the published D2D values."""


class TrainRramBnn(TrainingRunFiles, StationProcedure):
    """In-situ BNN training on HfOx differential pairs (Majumdar; Laborieux metaplasticity)."""

    NAME = "train-rram-bnn"
    DEFAULT_SIM_STATION = "sim-bnn-hfox"
    DATA_COLUMNS = [*ROW_COLUMNS, "Software test accuracy", "Logistic baseline"]
    X_AXIS = "Step"
    Y_AXIS = "Loss"
    DISPLAYS = ("dataset", "hidden", "epochs", "lr", "meta")
    LIMITED = {"v_read": "voltage", "reset_amplitude": "voltage", "set_amplitude": "voltage",
               "reset_width": "pulse_width", "set_width": "pulse_width"}

    arrays = Parameter("Array roles (comma-separated)", default="array,array2")
    dataset = Parameter("Dataset (digits, digits-scaled, moons, circles, xor, or a file)",
                        default="digits")
    test_fraction = FloatParameter("Test fraction", default=0.3, minimum=0.05, maximum=0.95)
    data_seed = IntegerParameter("Split and batch seed", default=0, minimum=0,
                                 maximum=2**31 - 1)
    train_subset = IntegerParameter("Training samples used (0 = all)", default=0, minimum=0,
                                    maximum=10_000_000)
    hidden = IntegerParameter("Hidden units (0 = none)", default=0, minimum=0, maximum=4096)
    epochs = IntegerParameter("Epochs", default=5, minimum=1, maximum=10_000)
    batch_size = IntegerParameter("Batch size", default=32, minimum=1, maximum=100_000)
    lr = FloatParameter("Learning rate", units="pulses", default=20.0, minimum=0, maximum=1e4)
    lr_affine = FloatParameter("Learning rate of scales and biases", default=8e-3, minimum=0,
                               maximum=10)
    lr_step = IntegerParameter("Epochs between lr halvings (0 = none)", default=1, minimum=0,
                               maximum=10_000)
    meta = FloatParameter("Metaplasticity m (0 = off)", units="1/lnR", default=0.0, minimum=0,
                          maximum=1e4)
    max_pulses = IntegerParameter("Most pulses per update", default=14, minimum=1,
                                  maximum=1000)
    v_read = FloatParameter("Read voltage", units="V", default=0.2, minimum=-5, maximum=5)
    reset_amplitude = FloatParameter("Weak-RESET amplitude", units="V", default=-1.2,
                                     minimum=-20, maximum=0)
    reset_width = FloatParameter("Weak-RESET width", units="s", default=100e-6, minimum=1e-9,
                                 maximum=1)
    set_amplitude = FloatParameter("SET amplitude", units="V", default=1.5, minimum=0,
                                   maximum=20)
    set_width = FloatParameter("SET width", units="s", default=100e-6, minimum=1e-9, maximum=1)
    energy_per_pulse = FloatParameter("Energy per pulse (0 = estimate V²G·width)", units="J",
                                      default=0.0, minimum=0, maximum=1)
    trim = BooleanParameter("Trim each pair's offset after the SET", default=True)
    software_reference = BooleanParameter("Train the software twin too", default=True)
    resume = RESUME
    replay_sim = REPLAY_SIM

    array_file = Metadata("Array file", fget="_array_file_text")
    checkpoint_file = Metadata("Checkpoint", fget="_checkpoint_text")

    file: ArrayFile | None = None
    result: dict | None = None

    @property
    def ROLES(self) -> tuple[str, ...]:  # noqa: N802 (the base's name)
        return tuple(r.strip() for r in str(self.arrays).split(",") if r.strip())

    # ------------------------------------------------------------------ checks
    def _data(self) -> datasets.Dataset:
        ds = datasets.load(str(self.dataset), self.test_fraction, self.data_seed)
        if self.train_subset:
            ds = datasets.Dataset(ds.name, ds.x_train[:self.train_subset],
                                  ds.y_train[:self.train_subset], ds.x_test, ds.y_test)
        return ds

    def _shapes(self, ds: datasets.Dataset) -> list[tuple[int, int]]:
        sizes = [ds.n_features, *([self.hidden] if self.hidden else []), ds.n_classes]
        return list(zip(sizes[:-1], sizes[1:], strict=True))

    def preflight(self, limits) -> list[str]:
        problems = super().preflight(limits)
        if not self.ROLES:
            problems.append("arrays: name at least one array role")
        if self.reset_amplitude >= 0 or self.set_amplitude <= 0:
            problems.append("reset_amplitude must be negative and set_amplitude positive")
        try:
            self._data()
        except ConfigError as exc:
            problems.append(str(exc))
        if self.resume and not problems:
            problems += self._resume_problems()
        return problems

    def _resume_problems(self) -> list[str]:
        """The earlier run's files exist and its settings are this run's."""
        run = Path(self.resume)
        if not sidecar_path(run).is_file():
            return [f"resume = {self.resume}: no array file {sidecar_path(run)}"]
        checkpoints = Checkpoints(checkpoint_path(run))
        if not (checkpoints.path.is_file() or checkpoints.pending_path.is_file()):
            return [f"resume = {self.resume}: no checkpoint {checkpoints.path}"]
        try:
            meta = checkpoints.latest_meta()
        except ConfigError as exc:
            return [str(exc)]
        ds = self._data()
        problem = resume_problem(meta, fingerprint(ds, self._settings(), self._shapes(ds)))
        return [f"resume = {self.resume}: {problem}"] if problem else []

    def check_instruments(self, station) -> list[str]:
        """Every role an array controller that takes these pulses, and the network fits."""
        problems, shapes = [], {}
        for role in self.ROLES:
            array = station.instrument(role)
            if not isinstance(array, ArrayController):
                problems.append(f"role {role!r} is not an array controller")
                continue
            shapes[role] = array.shape
            problems += pulse_problems(array, [
                (f"{kind}_amplitude = {getattr(self, kind + '_amplitude'):g} V, "
                 f"{kind}_width = {getattr(self, kind + '_width'):g} s",
                 getattr(self, f"{kind}_amplitude"), getattr(self, f"{kind}_width"))
                for kind in ("reset", "set")])
        if not problems:
            try:
                place(self._shapes(self._data()), shapes)
            except ConfigError as exc:
                problems.append(exc.problem)
        return problems

    # ------------------------------------------------------------------ run
    def startup(self) -> None:
        super().startup()  # and the instrument check (TrainingRunFiles)
        self.file = self.open_array_file()
        self.groups = {role: "pulses" if k == 0 else f"pulses_{role}"
                       for k, role in enumerate(self.ROLES)}
        for role, group in self.groups.items():
            self.instruments[role].pulse_log = PulseLog(
                sink=lambda block, g=group: self.file.append_pulses(block, g))

    def _config(self) -> BnnConfig:
        return BnnConfig(lr=self.lr, lr_affine=self.lr_affine, lr_step=self.lr_step,
                         meta=self.meta, max_pulses=self.max_pulses)

    def _settings(self) -> TrainSettings:
        return TrainSettings(epochs=self.epochs, batch_size=self.batch_size,
                             seed=self.data_seed, energy_per_pulse=self.energy_per_pulse)

    def software_twin(self, ds: datasets.Dataset) -> dict:
        """The same network trained in software (module docstring); its summary."""
        rng = np.random.default_rng([self.data_seed, 1])
        layers = [SoftwareBinaryLayer(rng.normal(0.0, INITIAL_SPREAD, shape), NOMINAL_SLOPE)
                  for shape in self._shapes(ds)]
        return Trainer(BinaryNet(layers, self._config()), ds, self._settings(),
                       should_stop=self.should_stop).run()

    def execute(self) -> None:
        ds = self._data()
        baseline = datasets.logistic_baseline(ds, self.data_seed)
        log.info("%s; logistic-regression baseline: test accuracy %.4f", ds.describe(), baseline)
        twin = self.software_twin(ds) if self.software_reference else None
        twin_by_epoch = twin["test_accuracy_by_epoch"] if twin else []
        settings = PairSettings(v_read=self.v_read, reset_amplitude=self.reset_amplitude,
                                reset_width=self.reset_width, set_amplitude=self.set_amplitude,
                                set_width=self.set_width, max_pulses=self.max_pulses,
                                trim=self.trim)
        pairs = CrossbarPairs({role: self.instruments[role] for role in self.ROLES},
                              self._shapes(ds), settings)
        net = BinaryNet(pairs.layers, self._config())

        def row(values: dict) -> None:  # the twin's accuracy after the same epoch beside
            k = len(trainer.test_accuracy) - 1
            tested = not math.isnan(values["Test accuracy"])
            values["Software test accuracy"] = (twin_by_epoch[k] if tested and
                                                0 <= k < len(twin_by_epoch) else math.nan)
            values["Logistic baseline"] = baseline
            self.emit("results", values)

        trainer = Trainer(net, ds, self._settings(), pairs,
                          PulseLogs(pairs, self.file, self.groups),
                          Checkpoints(checkpoint_path(self._run_file())),
                          clock=lambda: self.station.hardware_time, on_row=row,
                          progress=lambda pct: self.emit("progress", pct),
                          should_stop=self.should_stop)
        if self.resume and self.station.sim and self.replay_sim:
            trainer.replay_chip()  # the simulated chip of the run died with its process
        summary = trainer.run(resume=bool(self.resume))
        for role, group in self.groups.items():
            a = self.file.pulse_arrays(group)
            counts = np.zeros(pairs.arrays[role].shape, dtype=np.int64)
            np.add.at(counts, (a["row"].astype(np.intp), a["col"].astype(np.intp)), 1)
            self.file.write_map(f"pulses_{role}", counts, units="pulses (whole run)")
        for k in range(len(pairs.layers)):
            self.file.write_trace(f"hidden{k}", pairs.hidden(k),
                                  units="ln R_BL - ln R_BLb - offset" if pairs.offsets
                                  else "ln R_BL - ln R_BLb")
        self.result = {**summary, "logistic_baseline": baseline,
                       "software_test_accuracy": twin["test_accuracy"] if twin else math.nan,
                       "transactions": pairs.transactions, "dataset": ds.describe()}
        log.info(self.summary())

    def summary(self) -> str:
        if self.result is None:
            return "no training result"
        r = self.result
        return (f"{r['dataset']}: test accuracy {r['test_accuracy']:.4f} in situ, "
                f"{r['software_test_accuracy']:.4f} in software, logistic regression "
                f"{r['logistic_baseline']:.4f}; {r['pulses']} pulses, {r['transactions']} "
                f"array transactions, {r['hardware_time']:.4g} s on the device, "
                f"{r['energy']:.3g} J (estimate)")

    def shutdown(self) -> None:
        super().shutdown()
        release_array_file(getattr(self, "instruments", {}), self.ROLES, self.file)
