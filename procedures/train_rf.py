"""``train-rf``: an RF spintronic network trained on its calibrated model, programmed into the
junctions, evaluated in the loop and fine-tuned in situ (Ross et al., arXiv 2211.03659;
:mod:`labctl.training.rf`).

The station (``sim-rf-net``): sources ``rf_source, rf_source2, …`` (one per input frequency, on
the input line), ``rf_probe`` (on the output line, programming only), one bias SMU per junction
``bias0, bias1, …`` (hidden chains first, chain-major, then the output chains), SMUs reading the
hidden chains' DC outputs ``hidden0, …`` and the output chains' ``out0, …``. The shape of the
network is read from the roles: n_in sources, n_hidden hidden readouts, n_out output readouts
and n_in·n_hidden + n_hidden·n_out junctions; a two-feature dataset needs n_in = 4 (each
feature u and 1 − u as powers).

Phases (``Phase`` column): **0** calibrate every junction (spin-diode spectra at 0 A and at
``probe_current`` through the program-resonance machinery: α, sensitivity, symmetric part, and
the tuning slope df/dI between the two, stored as ``spin-diode`` and ``resonance-tuning`` of
``mtj<k>``; a junction that has both in the store is not measured again unless ``recalibrate``),
then train offline on the calibrated model (rows per epoch: the model's test accuracy); **1**
program each junction to f_in + δ with :meth:`ProgramResonance.program` (verified by
re-measuring) and measure the test set through the hardware; **2** fine-tune in situ: each step
measures a batch of training samples (hidden and output chain voltages), back-propagates through
the model at those measured values, and moves every junction's resonance by its bias current
(the calibrated tuning slope); the test set is measured again at the end.

Every bias change is a logged programming operation (step, junction, bias before, bias after,
target f_r) in the checkpoint and, at the end, in the array file (``/traces/programming_log``).
A checkpoint (``<results>.ckpt.npz``) is written after programming and after every fine-tuning
step, with a write-ahead pending record before the step's bias changes (engine contract,
:mod:`labctl.training.checkpoint`). ``resume`` = an earlier run's results file continues from its
last record (a pending step, if the run was killed while it set biases, is completed and
committed): junctions whose SMU already holds the recorded bias are left alone (a bias setting
is absolute, so nothing is applied twice), the others are set to it (all of them on a fresh
simulated chip), then fine-tuning continues.
"""

from __future__ import annotations

import copy
import logging
import math

import numpy as np
from pymeasure.experiment import BooleanParameter, FloatParameter, IntegerParameter, Metadata
from pymeasure.experiment import Parameter as TextParameter

from labctl.arrayfile import ArrayFile, sidecar_path
from labctl.calibration import Parameter as Fitted
from labctl.errors import ConfigError
from labctl.training import data as datasets
from labctl.training.checkpoint import Checkpoints, checkpoint_path
from labctl.training.rf import ChainLayer, Neuron, RfConfig, RfNet
from procedures.program_resonance import ProgramResonance
from procedures.rf_base import RfProcedure, dbm_to_w, design_frequencies, numbered_roles
from procedures.training_files import TrainingRunFiles

log = logging.getLogger(__name__)

OP_COLUMNS = ("step", "junction", "bias_before_a", "bias_after_a", "target_hz")


class TrainRf(TrainingRunFiles, RfProcedure):
    """RF spintronic network: offline on the calibrated model, programmed, fine-tuned in situ."""

    NAME = "train-rf"
    DEFAULT_SIM_STATION = "sim-rf-net"
    ROLES = ("rf_probe",)
    DATA_COLUMNS = ["Phase", "Step", "Loss", "Batch accuracy", "Test accuracy",
                    "Programming operations", "Hardware time (s)", "Logistic baseline"]
    X_AXIS = "Step"
    Y_AXIS = "Test accuracy"
    DISPLAYS = ("dataset", "epochs", "finetune_steps")
    LIMITED = {"probe_current": "current", "compliance_voltage": "voltage"}

    dataset = TextParameter("Dataset (circles, xor, moons, or a 2-feature file)",
                            default="circles")
    test_fraction = FloatParameter("Test fraction", default=0.3, minimum=0.05, maximum=0.95)
    data_seed = IntegerParameter("Split, batch and initial-weight seed", default=0, minimum=0,
                                 maximum=2**31 - 1)
    epochs = IntegerParameter("Offline epochs (model)", default=30, minimum=1, maximum=100_000)
    restarts = IntegerParameter("Initial weights tried (best after 5 epochs kept)", default=4,
                                minimum=1, maximum=1000)
    batch_size = IntegerParameter("Batch size", default=32, minimum=1, maximum=100_000)
    lr = FloatParameter("Learning rate (offline)", units="alpha*f", default=0.03, minimum=0,
                        maximum=10)
    finetune_steps = IntegerParameter("In-situ fine-tuning steps", default=10, minimum=0,
                                      maximum=100_000)
    finetune_batch = IntegerParameter("In-situ batch size", default=128, minimum=1,
                                      maximum=100_000)
    finetune_lr = FloatParameter("Learning rate (in situ)", units="alpha*f", default=0.02,
                                 minimum=0, maximum=10)
    input_power = FloatParameter("Input power of u = 1", units="dBm", default=-30,
                                 minimum=-100, maximum=10)
    f_min = FloatParameter("Lowest input frequency", units="Hz", default=40e6, minimum=9e3,
                           maximum=20e9)
    f_max = FloatParameter("Highest input frequency", units="Hz", default=120e6, minimum=9e3,
                           maximum=20e9)
    osc_min = FloatParameter("Lowest oscillator frequency", units="Hz", default=200e6,
                             minimum=9e3, maximum=20e9)
    osc_max = FloatParameter("Highest oscillator frequency", units="Hz", default=300e6,
                             minimum=9e3, maximum=20e9)
    recalibrate = BooleanParameter("Measure junctions that have calibrations", default=False)
    probe_current = FloatParameter("Probe current (tuning curve)", units="A", default=10e-6,
                                   minimum=1e-9, maximum=0.1)
    tolerance = FloatParameter("Programming tolerance", units="Hz", default=10e3, minimum=1,
                               maximum=1e9)
    points = IntegerParameter("Points per spectrum", default=25, minimum=8, maximum=3201)
    power = FloatParameter("Probe power (spectra)", units="dBm", default=-30, minimum=-130,
                           maximum=20)
    resume = TextParameter("Resume the run of this results file", default="")

    checkpoint_file = Metadata("Checkpoint", fget="_checkpoint_text")

    result: dict | None = None

    # ------------------------------------------------------------------ files

    # ------------------------------------------------------------------ checks
    def _data(self) -> datasets.Dataset:
        return datasets.load(str(self.dataset), self.test_fraction, self.data_seed)

    @staticmethod
    def topology(station) -> dict[str, list[str]]:
        """The roles of the network's parts (module docstring)."""
        return {"sources": numbered_roles(station, "rf_source"),
                "hidden": numbered_roles(station, "hidden"),
                "out": numbered_roles(station, "out"),
                "junctions": numbered_roles(station, "bias")}

    def preflight(self, limits) -> list[str]:
        problems = super().preflight(limits)
        for lo, hi in (("f_min", "f_max"), ("osc_min", "osc_max")):
            if getattr(self, lo) >= getattr(self, hi):
                problems.append(f"{lo} must be below {hi}")
        try:
            ds = self._data()
            if ds.n_classes < 2:
                problems.append(f"dataset {self.dataset}: needs two classes or more")
        except ConfigError as exc:
            problems.append(str(exc))
        if self.resume:
            problems += self._resume_problems()
        return problems

    def _resume_problems(self) -> list[str]:
        checkpoints = Checkpoints(checkpoint_path(self.resume))
        if not checkpoints.path.is_file():
            return [f"resume = {self.resume}: no checkpoint {checkpoints.path}"]
        try:
            meta = checkpoints.latest_meta()
        except ConfigError as exc:
            return [str(exc)]
        differ = [f"{key} {meta.get(key)!r} -> {mine!r}" for key, mine in
                  (("procedure", self.NAME), ("dataset", str(self.dataset)),
                   ("data_seed", int(self.data_seed))) if meta.get(key) != mine]
        return ([f"resume = {self.resume}: cannot resume a run with other settings "
                 f"({'; '.join(differ)})"] if differ else [])

    def check_instruments(self, station) -> list[str]:
        roles = self.topology(station)
        n_in, n_h, n_out = (len(roles[k]) for k in ("sources", "hidden", "out"))
        ds = self._data()
        problems = []
        if not (n_in and n_h and n_out):
            problems.append("the station needs rf_source…, hidden… and out… roles (an RF "
                            "network station such as sim-rf-net)")
        elif n_in != 2 * ds.n_features:
            problems.append(f"dataset {self.dataset}: {ds.n_features} features need "
                            f"{2 * ds.n_features} input sources, the station has {n_in}")
        elif ds.n_classes != n_out:
            problems.append(f"dataset {self.dataset}: {ds.n_classes} classes, the station has "
                            f"{n_out} output chains")
        elif len(roles["junctions"]) != n_in * n_h + n_h * n_out:
            problems.append(f"the station has {len(roles['junctions'])} junction SMUs, a "
                            f"{n_in}-{n_h}-{n_out} network needs {n_in * n_h + n_h * n_out}")
        return problems

    # ------------------------------------------------------------------ run
    def startup(self) -> None:
        super().startup()  # and the instrument check (TrainingRunFiles)
        self.roles = self.topology(self.station)
        for group in self.roles.values():
            for role in group:
                self.instruments[role] = self.station.instrument(role)
        self.programmer = self._programmer()

    def _programmer(self) -> ProgramResonance:
        """The program-resonance machinery, driven with this run's instruments and settings."""
        prog = ProgramResonance()
        prog.station, prog.instruments = self.station, self.instruments
        prog.results_path = self.results_path
        prog.should_stop = self.should_stop
        prog.emit = lambda kind, value: None  # its rows: the calibration store keeps the result
        for name in ("tolerance", "points", "power", "probe_current", "nplc",
                     "compliance_voltage"):
            setattr(prog, name, getattr(self, name))
        prog.use_calibration = True
        return prog

    def frequencies(self) -> tuple[np.ndarray, np.ndarray]:
        """(input frequencies, oscillator frequencies), Hz: the design grids."""
        r = self.roles
        return (design_frequencies(self.f_min, self.f_max, len(r["sources"])),
                design_frequencies(self.osc_min, self.osc_max, len(r["hidden"])))

    def junctions(self) -> list[tuple[int, str, float]]:
        """(index, the SMU role, its input frequency) of every junction, in bias-role order."""
        f_in, f_osc = self.frequencies()
        n_h, n_out = len(self.roles["hidden"]), len(self.roles["out"])
        nominal = np.concatenate([np.tile(f_in, n_h), np.tile(f_osc, n_out)])
        return [(k, role, float(nominal[k])) for k, role in enumerate(self.roles["junctions"])]

    def _generator(self, k: int):
        """Junctions of the hidden layer are probed on the input line, the others on the
        output line."""
        n_hidden_junctions = len(self.roles["sources"]) * len(self.roles["hidden"])
        return self.instruments["rf_source" if k < n_hidden_junctions else "rf_probe"]

    def _sources_off(self) -> None:
        for role in [*self.roles["sources"], "rf_probe"]:
            self.instruments[role].disable()

    # -- phase 0: calibration ---------------------------------------------------------------
    def calibrate(self, k: int, role: str, f_nominal: float) -> dict[str, float] | None:
        """α, sensitivity K (V/W), symmetric ratio and df/dI of junction ``k``: from the store,
        else measured (two spectra) and stored. None if a stop was requested."""
        store, chip, device = self.station.calibration, self.station.chip, f"mtj{k}"
        if not self.recalibrate:
            try:
                diode = store.latest(chip, device, "spin-diode")
                tuning = store.latest(chip, device, "resonance-tuning")
                return self._junction_model(diode.values(), tuning["df_di"],
                                            diode.extra.get("power_w", dbm_to_w(self.power)))
            except ConfigError:
                pass
        prog, smu, gen = self.programmer, self.instruments[role], self._generator(k)
        fits = []
        for current in (0.0, self.probe_current):
            if self.should_stop():
                return None
            prog.bias(smu, current)
            fit = prog.measure(gen, smu, fits[0]["f_r"].value if fits else f_nominal)
            if fit is None:
                raise RuntimeError(f"junction {k}: no resonance found near {f_nominal:.6g} Hz "
                                   f"at {current:g} A")
            fits.append(fit)
        prog.bias(smu, 0.0)
        f0, f1 = fits[0]["f_r"], fits[1]["f_r"]
        df_di = (f1.value - f0.value) / self.probe_current
        err = math.hypot(f0.stderr, f1.stderr) / self.probe_current
        tuning = {"f0": f0, "df_di": Fitted(df_di, err, "Hz/A"),
                  "kappa_i": Fitted(df_di / f0.value, err / f0.value, "1/A")}
        power_w = float(dbm_to_w(self.power))
        self.save_calibration(device, "spin-diode", fits[0], power_w=power_w)
        self.save_calibration(device, "resonance-tuning", tuning,
                              note="two-point slope at zero field")
        return self._junction_model({n: p.value for n, p in fits[0].items()}, df_di, power_w)

    @staticmethod
    def _junction_model(fit: dict[str, float], df_di: float, power_w: float) -> dict:
        """The model of one junction from its spin-diode fit: V = P·K·(σΓ² + 2Γd)/(d² + Γ²)
        with K = V_anti/P and σ = V_sym/V_anti."""
        return {"alpha": fit["alpha"], "ksd": fit["v_anti"] / power_w,
                "sym": fit["v_sym"] / fit["v_anti"], "df_di": df_di}

    def build_net(self, ds: datasets.Dataset, cal: list[dict]) -> RfNet:
        f_in, f_osc = self.frequencies()
        n_in, n_h, n_out = (len(self.roles[k]) for k in ("sources", "hidden", "out"))
        layers = []
        for first, shape, freqs in ((0, (n_h, n_in), f_in), (n_h * n_in, (n_out, n_h), f_osc)):
            part = cal[first:first + shape[0] * shape[1]]
            layers.append(ChainLayer(freqs, *(np.reshape([c[key] for c in part], shape)
                                              for key in ("alpha", "ksd", "sym"))))
        config = RfConfig(lr=self.lr, p_max=float(dbm_to_w(self.input_power)))
        x_range = (ds.x_train.min(axis=0), ds.x_train.max(axis=0))
        nets = [RfNet(layers[0], layers[1], Neuron(), config, x_range, seed=self.data_seed,
                      restart=r) for r in range(self.restarts)]
        if len(nets) == 1:
            return nets[0]
        screened = [self.epoch_losses(copy.deepcopy(net), ds, range(min(5, self.epochs)))[-1][0]
                    for net in nets]  # the model only: no device is touched
        return nets[int(np.argmin(screened))]  # untrained: train_offline starts it again

    def epoch_losses(self, net: RfNet, ds: datasets.Dataset, epochs) -> list[tuple]:
        """Train ``net`` (the model) for ``epochs``: [(mean loss, training accuracy), …]."""
        n, out = len(ds.y_train), []
        for epoch in epochs:
            order = np.random.default_rng([self.data_seed, epoch]).permutation(n)
            losses, correct = 0.0, 0
            for b in range(0, n, self.batch_size):
                idx = order[b:b + self.batch_size]
                loss, c = net.step(ds.x_train[idx], ds.y_train[idx])
                losses += loss * idx.size
                correct += c
            out.append((losses / n, correct / n))
        return out

    def train_offline(self, net: RfNet, ds: datasets.Dataset, baseline: float) -> None:
        """Train the model for ``epochs`` (a row each)."""
        for epoch in range(self.epochs):
            if self.should_stop():
                return
            [(loss, train_accuracy)] = self.epoch_losses(net, ds, [epoch])
            self.row(0, epoch + 1, loss, train_accuracy, net.accuracy(ds.x_test, ds.y_test),
                     baseline)

    # -- phase 1: programming and the network in the loop -----------------------------------
    def targets(self, net: RfNet) -> np.ndarray:
        """Target resonance of every junction (Hz), in bias-role order."""
        return np.concatenate([layer.resonances(t).ravel() for layer, t in
                               zip(net.layers, net.theta, strict=True)])

    def program_all(self, targets: np.ndarray) -> np.ndarray | None:
        """Program every junction with :meth:`ProgramResonance.program`; the biases (A)."""
        self._sources_off()
        biases = np.zeros(targets.size)
        limit = self.station.limits.current
        for k, role, _ in self.junctions():
            if self.should_stop():
                return None
            out = self.programmer.program(self._generator(k), self.instruments[role], k,
                                          float(targets[k]), limit)
            if out is None:
                return None
            biases[k] = out["bias"]
            self.log_op(0, k, 0.0, out["bias"], targets[k])
            self.emit("progress", 20.0 + 20.0 * (k + 1) / targets.size)
        return biases

    def start_network(self) -> None:
        """Sources at the input frequencies, output on; readout SMUs at 0 A."""
        self.instruments["rf_probe"].disable()
        f_in, _ = self.frequencies()
        for role, f in zip(self.roles["sources"], f_in, strict=True):
            gen = self.instruments[role]
            gen.frequency, gen.power = float(f), self.input_power
            gen.enable()
        for role in [*self.roles["hidden"], *self.roles["out"]]:
            self.bias(self.instruments[role], 0.0)

    def measure(self, net: RfNet, x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Hidden and output chain voltages (V) of samples ``x``, measured: the sources set to
        each sample's powers, every readout SMU read. None if a stop was requested."""
        dbm = 10 * np.log10(net.encode(x) / 1e-3)
        gens = [self.instruments[r] for r in self.roles["sources"]]
        readers = [self.instruments[r] for r in [*self.roles["hidden"], *self.roles["out"]]]
        volts = np.empty((len(x), len(readers)))
        for b in range(len(x)):
            if self.should_stop():
                return None
            for gen, p in zip(gens, dbm[b], strict=True):
                gen.power = float(p)
            volts[b] = [float(smu.voltage) for smu in readers]
        n_h = len(self.roles["hidden"])
        return volts[:, :n_h], volts[:, n_h:]

    def test_in_loop(self, net: RfNet, ds: datasets.Dataset) -> float | None:
        measured = self.measure(net, ds.x_test)
        return None if measured is None else net.accuracy(ds.x_test, ds.y_test, measured[1])

    # -- phase 2: in-situ fine-tuning -------------------------------------------------------
    def finetune(self, net: RfNet, ds: datasets.Dataset, cal: list[dict], biases: np.ndarray,
                 first: int, baseline: float, checkpoints: Checkpoints) -> bool:
        """Fine-tuning steps ``first``…; False if stopped."""
        net.config = RfConfig(lr=self.finetune_lr, p_max=net.config.p_max,
                              v_scale=net.config.v_scale, init_spread=net.config.init_spread)
        slopes = np.array([c["df_di"] for c in cal])
        limit = self.station.limits.current
        n = len(ds.y_train)
        for step in range(first, self.finetune_steps + 1):
            idx = np.random.default_rng([self.data_seed, 1000 + step]).permutation(n)[
                :self.finetune_batch]
            measured = self.measure(net, ds.x_train[idx])
            if measured is None:
                return False
            before = self.targets(net)
            loss, correct = net.step(ds.x_train[idx], ds.y_train[idx], measured)
            after = self.targets(net)
            new = np.clip(biases + (after - before) / slopes, -limit, limit)
            changed = [(k, role) for k, role, _ in self.junctions() if new[k] != biases[k]]
            for k, _ in changed:
                self.log_op(step, k, biases[k], new[k], after[k])
            checkpoints.write_pending(self.meta(step), self.state(net, new), {}, {})
            for k, role in changed:
                self.instruments[role].source_current = float(new[k])
            biases[:] = new
            checkpoints.commit()
            test = (self.test_in_loop(net, ds) if step == self.finetune_steps else math.nan)
            if test is None:
                return False
            if step == self.finetune_steps:
                self.accuracy["in_situ"] = test
            self.row(2, step, loss, correct / idx.size, test, baseline)
            self.emit("progress", 40.0 + 60.0 * step / max(self.finetune_steps, 1))
        return True

    # -- bookkeeping ------------------------------------------------------------------------
    def log_op(self, step: int, k: int, before: float, after: float, target: float) -> None:
        self.ops.append((step, k, before, after, target))

    def meta(self, step: int) -> dict:
        return {"step": step, "ops": len(self.ops), "accuracy": self.accuracy,
                "procedure": self.NAME, "dataset": str(self.dataset),
                "data_seed": int(self.data_seed)}

    def state(self, net: RfNet, biases: np.ndarray) -> dict[str, np.ndarray]:
        return {**net.state(), "biases": np.array(biases, dtype=float),
                "ops": np.array(self.ops, dtype=float).reshape(-1, len(OP_COLUMNS))}

    def row(self, phase: int, step: int, loss: float, batch: float, test: float,
            baseline: float) -> None:
        self.emit("results", {
            "Phase": phase, "Step": step, "Loss": loss, "Batch accuracy": batch,
            "Test accuracy": test, "Programming operations": len(self.ops),
            "Hardware time (s)": (self.station.hardware_time
                                  if self.station.hardware_time is not None else math.nan),
            "Logistic baseline": baseline})

    # -- the run ----------------------------------------------------------------------------
    def execute(self) -> None:
        ds = self._data()
        baseline = datasets.logistic_baseline(ds, self.data_seed)
        log.info("%s; logistic-regression baseline: test accuracy %.4f", ds.describe(), baseline)
        self.ops: list[tuple] = []
        self.accuracy: dict[str, float] = {}
        checkpoints = Checkpoints(checkpoint_path(self._run_file()))
        self._sources_off()
        cal = []
        for k, role, f in self.junctions():
            c = self.calibrate(k, role, f)
            if c is None:
                return
            cal.append(c)
            self.emit("progress", 20.0 * (k + 1) / len(self.roles["junctions"]))
        net = self.build_net(ds, cal)
        if self.resume:
            pending = checkpoints.load_pending()
            meta, state = pending[:2] if pending is not None else checkpoints.load()
            net.load_state(state)
            biases = self.restore(state)  # a pending step's biases: the rest of them now
            if pending is not None:
                checkpoints.commit()
            self.ops = [tuple(r) for r in state["ops"]]
            self.accuracy = dict(meta["accuracy"])
            first = meta["step"] + 1
            self.start_network()
        else:
            self.train_offline(net, ds, baseline)
            self.accuracy["in_silico"] = net.accuracy(ds.x_test, ds.y_test)
            biases = self.program_all(self.targets(net))
            if biases is None:
                return
            self.start_network()
            test = self.test_in_loop(net, ds)
            if test is None:
                return
            self.accuracy["programmed"] = test
            checkpoints.write(self.meta(0), self.state(net, biases))
            self.row(1, 0, math.nan, math.nan, test, baseline)
            first = 1
        if not self.finetune(net, ds, cal, biases, first, baseline, checkpoints):
            log.warning("train-rf stopped")
            return
        self.accuracy.setdefault("in_situ", self.accuracy.get("programmed", math.nan))
        self.finish(net, ds, baseline, biases)

    def restore(self, state: dict[str, np.ndarray]) -> np.ndarray:
        """Set every junction whose SMU does not hold its checkpointed bias, output on (module
        docstring)."""
        biases = np.array(state["biases"], dtype=float)
        for k, role, _ in self.junctions():
            smu = self.instruments[role]
            if not (smu.source_enabled and
                    math.isclose(float(smu.source_current), biases[k], abs_tol=1e-12)):
                self.bias(smu, float(biases[k]))
        return biases

    def finish(self, net: RfNet, ds: datasets.Dataset, baseline: float,
               biases: np.ndarray) -> None:
        with ArrayFile(sidecar_path(self._run_file()), "a") as file:
            file.set_attrs(procedure=self.NAME, station=self.station.describe(),
                           seed=str(self.station.seed), results_file=str(self._run_file()))
            file.write_trace("programming_log", np.array(self.ops, dtype=float),
                             columns=",".join(OP_COLUMNS))
            file.write_trace("bias_current", biases, units="A")
            file.write_trace("resonance_target", self.targets(net), units="Hz")
        self.result = {**self.accuracy, "logistic_baseline": baseline,
                       "operations": len(self.ops), "dataset": ds.describe(),
                       "hardware_time": self.station.hardware_time}
        log.info(self.summary())

    def summary(self) -> str:
        if self.result is None:
            return "no training result"
        r = self.result
        return (f"{r['dataset']}: test accuracy {r['in_silico']:.4f} in silico, "
                f"{r['programmed']:.4f} programmed, {r['in_situ']:.4f} after in-situ "
                f"fine-tuning; logistic regression {r['logistic_baseline']:.4f}; "
                f"{r['operations']} programming operations")
