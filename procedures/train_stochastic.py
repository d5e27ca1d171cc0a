"""train-stochastic: a 64 → 10 network of binary stochastic synapses trained in situ.

Ellis, Welbourne et al. (arXiv 2303.01886; PHYSICS.md §2.1): each synapse's drive amplitude is the
trained parameter, each forward pass of a batch measures ``trials`` (n) switching trials per
synapse of every active input on the array — one transaction — and the exact rule of the
authors' code (μ, σ, ε held fixed, z = μ + εσ + b, softmax cross-entropy, Adam) runs in numpy
with P(x) from the calibration store (:mod:`labctl.training.stochastic`). The network is the
array: outputs = rows, inputs = columns (the default station ``sim-dw-synapse-digits``: 10 × 64
domain-wall synapses for the binarized digits).

**Calibration first**: every synapse needs a ``dw-sigmoid`` fit (``array-switching-probability``
stores them as ``syn-<row>-<col>``). With ``calibrate`` on (default), the synapses that have none
are calibrated as the run's first stage (``cal_points`` amplitudes from ``cal_start`` to
``cal_stop``, ``cal_trials`` trials each, one transaction per amplitude) and stored; with it off a
missing fit stops the run before any device is touched, naming the procedure to run.

Rows: one per batch (:data:`~labctl.training.engine.ROW_COLUMNS`; "Pulses" are the device pulses
of the step's measurement, 2n per synapse trialled), one per test evaluation after each epoch
(``passes`` stochastic passes, accuracy averaged; after every ``eval_every``-th epoch
and the last), with the logistic-regression baseline and the
fraction of synapses with P in (0.1, 0.9) beside. The array file holds the pulse log (one row per
synapse per sample per forward with its count; one per synapse per evaluation), the final drives
and P (``/maps/drive``, ``/maps/p``); the checkpoint ``<results>.ckpt.npz`` is written after
every batch. ``resume`` = an earlier run's results file continues it; a forward logged after the
checkpoint is taken from the log, not measured again. A simulated bench dies with its process:
on ``--sim`` the resumed run first replays the logged operations onto the fresh bench of the same
seed so its random draws go on as they would have (``replay_sim``; turn it off when resuming on a
bench that lived on in the same Python session).
"""

from __future__ import annotations

import logging
import math

import numpy as np
from pymeasure.experiment import (
    BooleanParameter,
    FloatParameter,
    IntegerParameter,
    Metadata,
    Parameter,
)

from labctl.array import ArrayController, PulseLog
from labctl.arrayfile import ArrayFile
from labctl.errors import ConfigError
from labctl.training import data as datasets
from labctl.training import stochastic
from labctl.training.checkpoint import Checkpoints, checkpoint_path
from labctl.training.engine import ROW_COLUMNS, TrainSettings
from procedures.array_base import pulse_problems, release_array_file
from procedures.base import StationProcedure
from procedures.training_files import REPLAY_SIM, RESUME, TrainingRunFiles

log = logging.getLogger(__name__)


class TrainStochastic(TrainingRunFiles, StationProcedure):
    """In-situ training of binary stochastic synapses (Ellis, Welbourne et al.)."""

    NAME = "train-stochastic"
    ROLES = ("array",)
    DEFAULT_SIM_STATION = "sim-dw-synapse-digits"
    DATA_COLUMNS = [*ROW_COLUMNS, "Logistic baseline", "In-band fraction"]
    X_AXIS = "Step"
    Y_AXIS = "Loss"
    DISPLAYS = ("dataset", "trials", "epochs", "lr")
    LIMITED = {"v_read": "voltage", "reset_amplitude": "voltage", "drive_max": "voltage",
               "drive_min": "voltage", "cal_start": "voltage", "cal_stop": "voltage",
               "pulse_width": "pulse_width"}

    dataset = Parameter("Dataset (digits or a file of binary features)", default="digits")
    test_fraction = FloatParameter("Test fraction", default=0.3, minimum=0.05, maximum=0.95)
    data_seed = IntegerParameter("Split and batch seed", default=0, minimum=0,
                                 maximum=2**31 - 1)
    train_subset = IntegerParameter("Training samples used (0 = all)", default=0, minimum=0,
                                    maximum=10_000_000)
    trials = IntegerParameter("Trials per synapse and forward (n)", default=1, minimum=1,
                              maximum=1_000_000)
    epochs = IntegerParameter("Epochs", default=30, minimum=1, maximum=10_000)
    batch_size = IntegerParameter("Batch size", default=16, minimum=1, maximum=100_000)
    lr = FloatParameter("Learning rate (Adam)", units="V", default=0.02, minimum=0,
                        maximum=10)
    passes = IntegerParameter("Stochastic passes per test evaluation", default=16, minimum=1,
                              maximum=10_000)
    eval_every = IntegerParameter("Epochs between test evaluations (the last always)",
                                  default=1, minimum=1, maximum=10_000)
    reset_amplitude = FloatParameter("Reset pulse", units="V", default=-1.5, minimum=-210,
                                     maximum=210)
    v_read = FloatParameter("Read voltage", units="V", default=0.1, minimum=-5, maximum=5)
    pulse_width = FloatParameter("Pulse width", units="s", default=1e-6, minimum=1e-9,
                                 maximum=1)
    contrast = FloatParameter("Resistance change that counts as switched", default=0.2,
                              minimum=0.01, maximum=100)
    drive_min = FloatParameter("Lowest drive", units="V", default=0.0, minimum=-210,
                               maximum=210)
    drive_max = FloatParameter("Highest drive", units="V", default=8.0, minimum=-210,
                               maximum=210)
    calibrate = BooleanParameter("Calibrate synapses without a stored fit first",
                                 default=True)
    cal_start = FloatParameter("Calibration first amplitude", units="V", default=1.0,
                               minimum=-210, maximum=210)
    cal_stop = FloatParameter("Calibration last amplitude", units="V", default=7.5,
                              minimum=-210, maximum=210)
    cal_points = IntegerParameter("Calibration amplitudes", default=14, minimum=4,
                                  maximum=1000)
    cal_trials = IntegerParameter("Calibration trials per amplitude", default=300, minimum=1,
                                  maximum=1_000_000)
    energy_per_pulse = FloatParameter("Energy per pulse (for the estimate)", units="J",
                                      default=0.0, minimum=0, maximum=1)
    # the run's files, resume and replay as in train-rram-bnn (module docstring)
    resume = RESUME
    replay_sim = REPLAY_SIM
    array_file = Metadata("Array file", fget="_array_file_text")
    checkpoint_file = Metadata("Checkpoint", fget="_checkpoint_text")

    file: ArrayFile | None = None
    result: dict | None = None

    # ------------------------------------------------------------------ checks
    def _data(self) -> datasets.Dataset:
        ds = datasets.load(str(self.dataset), self.test_fraction, self.data_seed)
        if not (np.isin(ds.x_train, (0.0, 1.0)).all() and np.isin(ds.x_test, (0.0, 1.0)).all()):
            raise ConfigError(f"dataset {self.dataset}", "features must be binary (0 or 1): a "
                              "stochastic synapse is driven or not")
        if self.train_subset:
            ds = datasets.Dataset(ds.name, ds.x_train[:self.train_subset],
                                  ds.y_train[:self.train_subset], ds.x_test, ds.y_test)
        return ds

    def _synapses(self) -> stochastic.SynapseSettings:
        return stochastic.SynapseSettings(
            n=self.trials, reset=self.reset_amplitude, vread=self.v_read,
            width=self.pulse_width, contrast=self.contrast, drive_min=self.drive_min,
            drive_max=self.drive_max)

    def _settings(self) -> TrainSettings:
        return TrainSettings(epochs=self.epochs, batch_size=self.batch_size,
                             seed=self.data_seed, energy_per_pulse=self.energy_per_pulse)

    def preflight(self, limits) -> list[str]:
        problems = super().preflight(limits)
        if self.drive_min >= self.drive_max:
            problems.append(f"drive_min {self.drive_min} V must be below drive_max "
                            f"{self.drive_max} V")
        if self.cal_start >= self.cal_stop:
            problems.append("cal_start must be below cal_stop")
        try:
            self._data()
        except ConfigError as exc:
            problems.append(str(exc))
        if self.resume and not checkpoint_path(self.resume).is_file():
            problems.append(f"resume = {self.resume}: no checkpoint "
                            f"{checkpoint_path(self.resume)}")
        return problems

    def check_instruments(self, station) -> list[str]:
        """The role is an array controller that takes these pulses and fits the network."""
        array = station.instrument("array")
        if not isinstance(array, ArrayController):
            return ["role 'array' is not an array controller"]
        problems = pulse_problems(array, [
            (f"{name} = {getattr(self, name):g} V, pulse_width = {self.pulse_width:g} s",
             getattr(self, name), self.pulse_width)
            for name in ("reset_amplitude", "drive_min", "drive_max")])
        ds = self._data()
        if array.shape != (ds.n_classes, ds.n_features):
            problems.append(f"the {ds.n_features} -> {ds.n_classes} network needs a "
                            f"{ds.n_classes}x{ds.n_features} synapse array (outputs x inputs); "
                            f"the station's is {array.shape[0]}x{array.shape[1]}")
        return problems

    # ------------------------------------------------------------------ run
    def startup(self) -> None:
        super().startup()  # and the instrument check (TrainingRunFiles)
        self.array = self.instruments["array"]
        store, chip = self.station.calibration, self.station.chip
        if not self.calibrate:
            stochastic.Calibration.load(store, chip, self.array.shape)  # fails: one line
        self.file = self.open_array_file()
        logged = self.file.pulse_count("pulses") if self.resume else 0
        first_op = int(self.file.pulse_arrays("pulses", logged - 1)["op"][0]) + 1 if logged else 0
        self.array.pulse_log = PulseLog(sink=self.file.append_pulses, first_op=first_op,
                                        keep=False)  # the array file holds it

    def _calibrate_missing(self) -> None:
        store, chip = self.station.calibration, self.station.chip
        rows, cols = stochastic.missing_synapses(store, chip, self.array.shape)
        if rows.size == 0:
            return
        log.info("calibrating %d synapses without a stored fit", rows.size)
        stochastic.calibrate(
            self.array, store, chip, rows, cols,
            np.linspace(self.cal_start, self.cal_stop, self.cal_points), self.cal_trials,
            self._synapses(), should_stop=self.should_stop,
            provenance={"run": str(self.results_path), "procedure": self.NAME,
                        "station": self.station.name})

    def execute(self) -> None:
        ds = self._data()
        if self.calibrate:
            self._calibrate_missing()
            if self.should_stop():
                return
        cal = stochastic.Calibration.load(self.station.calibration, self.station.chip,
                                          self.array.shape)
        baseline = datasets.logistic_baseline(ds, self.data_seed)
        log.info("%s; logistic-regression baseline: test accuracy %.4f", ds.describe(), baseline)
        layer = stochastic.SynapseLayer(self.array, cal, self._synapses())
        net = stochastic.StochasticNet(layer, self.lr)

        def row(values: dict) -> None:
            values["Logistic baseline"] = baseline
            values["In-band fraction"] = net.in_band()
            self.emit("results", values)

        trainer = stochastic.StochasticTrainer(
            net, ds, self._settings(), stochastic.LogReader(self.array, self.file),
            passes=self.passes, eval_every=self.eval_every,
            checkpoints=Checkpoints(checkpoint_path(self._run_file())),
            clock=lambda: self.station.hardware_time, on_row=row,
            progress=lambda pct: self.emit("progress", pct), should_stop=self.should_stop)
        if self.resume and self.station.sim and self.replay_sim:
            trainer.replay_chip()  # the simulated bench's random draws died with its process
        summary = trainer.run(resume=bool(self.resume))
        self.file.write_map("drive", layer.drives, units="V")
        self.file.write_map("p", layer.weights().T, model=stochastic.MODEL)
        self.result = {**summary, "logistic_baseline": baseline, "dataset": ds.describe(),
                       "trials": self.trials}
        log.info(self.summary())

    def summary(self) -> str:
        if self.result is None:
            return "no training result"
        r = self.result
        hw = r["hardware_time"]
        return (f"{r['dataset']}: test accuracy {r['test_accuracy']:.4f} at n = {r['trials']} "
                f"(logistic regression {r['logistic_baseline']:.4f}); "
                f"{r['in_band']:.3f} of the synapses with P in (0.1, 0.9); "
                f"{r['transactions']} array transactions, {r['pulses']} device pulses"
                + ("" if math.isnan(hw) else f", {hw:.4g} s on the device"))

    def shutdown(self) -> None:
        super().shutdown()
        release_array_file(getattr(self, "instruments", {}), self.ROLES, self.file)
