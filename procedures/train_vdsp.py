"""Unsupervised VDSP training of a one-layer WTA spiking network on binarised digits, with the
weights as crossbar conductances and, beside it, the same network with ideal weights."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
from pymeasure.experiment import BooleanParameter, FloatParameter, IntegerParameter

from labctl import vdsp
from labctl.vdsp_crossbar import CrossbarWeights
from procedures.base import StationProcedure
from procedures.sidecar import SidecarMixin

log = logging.getLogger(__name__)

N_INPUTS = 64  # 8 x 8 digits
TILES = tuple(f"array{k}" for k in range(8))


class TrainVdsp(SidecarMixin, StationProcedure):
    """VDSP (Garg et al. 2022) on digits: crossbar weights vs ideal weights."""

    NAME = "train-vdsp"
    ROLES = TILES
    DEFAULT_SIM_STATION = "sim-vdsp-crossbar"
    X_AXIS = "Images"
    Y_AXIS = "Accuracy"
    DISPLAYS = ("outputs", "train_images", "epochs")

    outputs = IntegerParameter("Output neurons", default=100, minimum=1, maximum=128)
    train_images = IntegerParameter("Training images (0 = all)", default=0, minimum=0,
                                    maximum=10000)
    test_images = IntegerParameter("Test images (0 = all)", default=0, minimum=0, maximum=10000)
    epochs = IntegerParameter("Epochs", default=1, minimum=1, maximum=100)
    seed = IntegerParameter("Seed (split, initial weights, rounding)", default=0, minimum=0,
                            maximum=2**31 - 1)
    learning_rate = FloatParameter("Learning rate", default=0.02, minimum=1e-6, maximum=1.0)
    v_set = FloatParameter("SET pulse", units="V", default=1.2, minimum=0, maximum=20)
    v_reset = FloatParameter("RESET pulse", units="V", default=-1.2, minimum=-20, maximum=0)
    pulse_width = FloatParameter("Pulse width", units="s", default=1e-6, minimum=1e-9,
                                 maximum=1.0)
    v_read = FloatParameter("Read voltage", units="V", default=0.2, minimum=0.01, maximum=1.0)
    compensate = BooleanParameter("Per-device step compensation", default=True)
    per_device_window = BooleanParameter("Per-device conductance window", default=True)

    LIMITED = {"v_set": "voltage", "v_reset": "voltage", "v_read": "voltage",
               "pulse_width": "pulse_width"}
    DATA_COLUMNS = ["Network", "Phase", "Images", "Accuracy", "Updates", "Pulses",
                    "Output spikes per image", "Active neurons"]

    def execute(self) -> None:
        x_train, y_train, x_test, y_test = vdsp.load_binary_digits(seed=self.seed)
        if self.train_images:
            x_train, y_train = x_train[:self.train_images], y_train[:self.train_images]
        if self.test_images:
            x_test, y_test = x_test[:self.test_images], y_test[:self.test_images]
        config = replace(vdsp.VdspConfig(), lr=self.learning_rate)
        crossbar = CrossbarWeights([self.instruments[r] for r in TILES], N_INPUTS, self.outputs,
                                   np.random.default_rng(self.seed + 1), v_set=self.v_set,
                                   v_reset=self.v_reset, width=self.pulse_width,
                                   v_read=self.v_read, compensate=self.compensate,
                                   per_device_window=self.per_device_window)
        crossbar.attach_pulse_log(self.file.append_pulses)
        calibration = crossbar.calibrate()
        log.info("crossbar window and steps: %s", calibration)
        self.file.write_trace("set_curve_w", crossbar.w_set, units="weight after k SET pulses")
        self.file.write_trace("reset_curve_w", crossbar.w_reset,
                              units="weight after k RESET pulses")
        self.file.set_attrs(**{f"calibration_{k}": v for k, v in calibration.items()})
        crossbar.initialise()
        # the same network with ideal weights, starting from the chip's initial weights
        networks = {"ideal": vdsp.IdealWeights(crossbar.matrix()), "crossbar": crossbar}
        passes = self.epochs + 2  # training epochs, labelling pass, test pass
        self._total = len(networks) * (passes - 1) * len(x_train) + len(networks) * len(x_test)
        self._done = 0
        for name, weights in networks.items():
            if not self.run_network(name, weights, config, x_train, y_train, x_test, y_test):
                log.warning("train-vdsp aborted during the %s network", name)
                return
        self.file.write_map("ideal_weights", networks["ideal"].matrix())
        self.file.write_map("crossbar_weights", crossbar.matrix())
        self.file.write_map("crossbar_conductance_s", crossbar.g, units="S")

    def _progress(self, k: int) -> bool:
        self._done += 1
        if k % 20 == 0:
            self.emit("progress", 100.0 * self._done / self._total)
        return not self.should_stop()

    def run_network(self, name, weights, config, x_train, y_train, x_test, y_test) -> bool:
        """Train, label and test one network, emitting a row per phase; False if stopped."""
        net = vdsp.SpikingNetwork(weights, N_INPUTS, self.outputs, config)
        for epoch in range(self.epochs):
            counts = net.responses(x_train, learn=True, progress=self._progress)
            self.emit_row(name, f"train {epoch + 1}", counts, np.nan, weights)
            if len(counts) < len(x_train):
                return False
        train_counts = net.responses(x_train, learn=False, progress=self._progress)
        if len(train_counts) < len(x_train):
            return False
        assigned = vdsp.assign_labels(train_counts, y_train)
        train_acc = float(np.mean(vdsp.predict(train_counts, assigned) == y_train))
        self.emit_row(name, "label", train_counts, train_acc, weights)
        test_counts = net.responses(x_test, learn=False, progress=self._progress)
        if len(test_counts) < len(x_test):
            return False
        correct = vdsp.predict(test_counts, assigned) == y_test
        test_acc = float(np.mean(correct))
        self.file.write_trace(f"{name}_test_correct", correct.astype(np.int8),
                              units="1 if the test image was classified right")
        self.emit_row(name, "test", test_counts, test_acc, weights)
        self.file.set_attrs(**{f"{name}_test_accuracy": test_acc})
        return True

    def emit_row(self, network, phase, counts, accuracy, weights) -> None:
        self.emit("results", {
            "Network": network, "Phase": phase, "Images": len(counts), "Accuracy": accuracy,
            "Updates": weights.updates, "Pulses": getattr(weights, "pulses", 0),
            "Output spikes per image": float(counts.sum(axis=1).mean()),
            "Active neurons": int(np.count_nonzero(counts.sum(axis=0)))})
