"""Spiking dynamics of a threshold-switching neuron: an AWG drives it through R_s, a scope
records it; features are extracted and the behaviour is classified."""

from __future__ import annotations

import logging
import math

import numpy as np
from pymeasure.experiment import FloatParameter, IntegerParameter, ListParameter

from labctl import spiking
from procedures.base import StationProcedure
from procedures.sidecar import SidecarMixin

log = logging.getLogger(__name__)

STEP_MODES = ("rate", "latency", "burst", "isi")
PULSE_MODES = ("lif", "integration")


class NeuronResponse(SidecarMixin, StationProcedure):
    """Neuron response to steps or pulse trains: rate, latency, bursts, ISI, integration."""

    NAME = "neuron-response"
    ROLES = ("awg", "scope")
    DEFAULT_SIM_STATION = "sim-nbox-neuron"
    X_AXIS = "Amplitude (V)"
    Y_AXIS = "Spikes"
    DISPLAYS = ("mode", "amp_start", "amp_stop", "points")

    mode = ListParameter("Mode", choices=list(STEP_MODES + PULSE_MODES), default="rate")
    amp_start = FloatParameter("First step amplitude", units="V", default=1.8, minimum=0,
                               maximum=10)
    amp_stop = FloatParameter("Last step amplitude", units="V", default=2.4, minimum=0,
                              maximum=10)
    points = IntegerParameter("Sweep points", default=4, minimum=1, maximum=200)
    step_duration = FloatParameter("Step duration", units="s", default=3e-3, minimum=1e-6,
                                   maximum=1.0)
    repeats = IntegerParameter("Acquisitions per point", default=1, minimum=1, maximum=1000)
    pulse_amplitude = FloatParameter("Pulse amplitude", units="V", default=5.0, minimum=0,
                                     maximum=10)
    pulse_width = FloatParameter("Pulse width", units="s", default=20e-6, minimum=16e-9,
                                 maximum=1.0)
    n_pulses = IntegerParameter("Pulses per train", default=6, minimum=1, maximum=10000)
    interval_start = FloatParameter("First pulse interval", units="s", default=30e-6,
                                    minimum=32e-9, maximum=1.0)
    interval_stop = FloatParameter("Last pulse interval", units="s", default=300e-6,
                                   minimum=32e-9, maximum=1.0)
    series_resistance = FloatParameter("Series resistor R_s", units="ohm", default=10e3,
                                       minimum=1, maximum=1e9)
    rest_time = FloatParameter("Rest before each stimulus", units="s", default=20e-3,
                               minimum=0, maximum=100)
    record_points = IntegerParameter("Scope points per waveform", default=20000, minimum=100,
                                     maximum=1_000_000)
    fall_min = FloatParameter("Spike node fall at least", units="V", default=0.08,
                              minimum=1e-3, maximum=10)
    fall_window = FloatParameter("Spike fall within", units="s", default=1e-6, minimum=1e-9,
                                 maximum=1e-2)

    DATA_COLUMNS = ["Point", "Repeat", "Amplitude (V)", "Interval (s)", "Spikes", "Rate (Hz)",
                    "First-spike latency (s)", "ISI mean (s)", "ISI CV", "ISI CV2",
                    "Last spike (s)",
                    "Pulses to fire", "Leak time (s)", "Class", "Behaviour"]

    # ------------------------------------------------------------------ stimulus plan
    def stimuli(self) -> list[tuple[float, float]]:
        """(amplitude V, interval s) of every sweep point."""
        if self.mode in STEP_MODES:
            return [(float(a), math.nan) for a in np.linspace(self.amp_start, self.amp_stop,
                                                              self.points)]
        if self.mode == "lif":
            return [(self.pulse_amplitude, self.interval_start)]
        return [(self.pulse_amplitude, float(x)) for x in
                np.geomspace(self.interval_start, self.interval_stop, self.points)]

    def limited_parameters(self) -> dict[str, str]:
        if self.mode in STEP_MODES:
            return {"amp_start": "voltage", "amp_stop": "voltage", "step_duration": "pulse_width"}
        return {"pulse_amplitude": "voltage", "pulse_width": "pulse_width"}

    def preflight(self, limits) -> list[str]:
        problems = super().preflight(limits)
        if self.mode in PULSE_MODES and self.pulse_width >= self.interval_start:
            problems.append(f"pulse_width = {self.pulse_width:g} s must be below the first "
                            f"interval {self.interval_start:g} s")
        return problems

    # ------------------------------------------------------------------ lifecycle
    def startup(self) -> None:
        super().startup()
        self.file.set_attrs(mode=self.mode)
        scope = self.instruments["scope"]
        scope.trigger_source, scope.trigger_sweep = "EXT", "NORM"
        scope.setup_channel(1, 0.25, 1.0)   # the device voltage: 0 .. 2 V
        scope.setup_channel(2, 1.0, 2.0)    # the drop across R_s: -2 .. 6 V

    def arm(self, amplitude: float, interval: float) -> float:
        """The generator's burst and the scope's timebase for one sweep point (the same for
        each of its repeats); the pre-trigger time (s)."""
        awg, scope = self.instruments["awg"], self.instruments["scope"]
        if self.mode in STEP_MODES:
            span = self.step_duration
            awg.configure_pulse_burst(amplitude, 0.0, self.step_duration,
                                      2 * self.step_duration, 1)
        else:
            span = self.n_pulses * interval
            awg.configure_pulse_burst(amplitude, 0.0, self.pulse_width, interval, self.n_pulses)
        window = 1.1 * span
        pre = 0.05 * window
        scope.write(f":TIMebase:RANGe {window:.12g};:TIMebase:REFerence LEFT;"
                    f":TIMebase:POSition {0.1 * window - pre:.12g}")
        return pre

    def acquire(self, pre: float):
        """One stimulus of the armed point, one acquisition: (time s from the trigger, device
        voltage V, current through R_s in A)."""
        awg, scope = self.instruments["awg"], self.instruments["scope"]
        self.station.wait(self.rest_time)  # the neuron recovers from the previous stimulus
        scope.single()
        self.station.wait(1.05 * pre)  # the pre-trigger record fills before the stimulus
        awg.trigger_burst()
        scope.wait_acquired()
        t, node = scope.read_waveform(1, self.record_points)
        _, drop = scope.read_waveform(2, self.record_points)
        return t, node, drop / self.series_resistance

    def execute(self) -> None:
        plan = self.stimuli()
        rows: list[dict] = []
        total, done = len(plan) * self.repeats, 0
        for k, (amplitude, interval) in enumerate(plan):
            pre = self.arm(amplitude, interval)
            for rep in range(self.repeats):
                if self.should_stop():
                    log.warning("neuron-response aborted at point %d", k)
                    return
                t, v, current = self.acquire(pre)
                name = f"p{k:03d}_r{rep:03d}"
                self.file.write_trace(f"{name}_time", t, units="s")
                self.file.write_trace(f"{name}_node", v, units="V", amplitude=amplitude,
                                      interval=interval)
                self.file.write_trace(f"{name}_current", current, units="A")
                times = spiking.spike_times(t, v, self.fall_min, self.fall_window)
                row = self.features(times, t, v, interval)
                rows.append(row)
                behaviour = spiking.classify_sweep(self.mode, rows)
                self.emit("results", {
                    "Point": k, "Repeat": rep, "Amplitude (V)": amplitude,
                    "Interval (s)": interval, "Spikes": row["spikes"], "Rate (Hz)": row["rate"],
                    "First-spike latency (s)": row["latency"], "ISI mean (s)": row["isi_mean"],
                    "ISI CV": row["isi_cv"], "ISI CV2": row["isi_cv2"],
                    "Last spike (s)": row["last_spike"],
                    "Pulses to fire": row["pulses_to_fire"], "Leak time (s)": row["leak"],
                    "Class": row["class"], "Behaviour": behaviour})
                done += 1
                self.emit("progress", 100.0 * done / total)
        self.file.set_attrs(behaviour=spiking.classify_sweep(self.mode, rows))

    def features(self, times, t, v, interval) -> dict:
        if self.mode in STEP_MODES:
            f = spiking.step_features(times, self.step_duration)
            f["class"] = spiking.classify_step(f, self.step_duration)
            f["pulses_to_fire"], f["leak"] = math.nan, math.nan
        else:
            span = self.n_pulses * interval
            f = spiking.step_features(times, span)
            f["pulses_to_fire"] = spiking.pulses_to_fire(times, interval, self.n_pulses)
            f["leak"] = spiking.leak_time(t, v, self.pulse_width, interval)
            f["class"] = spiking.SILENT if not f["spikes"] else "fires"
        f["times"] = times
        return f
