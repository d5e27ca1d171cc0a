"""Switching probability of a stochastic synapse (domain wall or MTJ) versus pulse amplitude
and width, with adaptive sampling, a model fit and the fit stored in the calibration store.

Each trial is reset → write pulse → read. For one pulse width, every amplitude's trials run in
ONE pulse list on the SMU: the list ``[reset, a1, read, reset, a2, read, …]`` repeated ``trials``
times by the arm count, read back from the buffer in one query (three transactions per list
whatever the number of trials, up to the instrument's 100,000-point buffer and ~10 s of
instrument time per list, which bounds the abort latency). A trial switched if
the resistance read after the write exceeds the one measured during its own reset pulse by the
``contrast``; a trial whose reset left the device off the reset state (above the run's median
reset resistance by the contrast) is not counted.

With ``write_source = pulser`` the write pulse comes from a pulse generator (role ``pulser``,
a Keysight 81160A: 1.5 ns and up) through a bias tee, fired by the SMU over a hardware trigger
line (the bench's ``triggers``): the SMU list is ``[write slot at 0, read, reset]`` repeated
``trials`` times, its digital I/O pin ``trigger_pin`` emitting a trigger at the start of every
repetition, so the generator's pulse (armed on its external input, one pulse per trigger) lands
in the write slot. The generator is programmed once per amplitude (its high level), the SMU runs
one list per amplitude: transactions grow with the amplitudes, not with the trials. The
amplitudes are then the generator's open-circuit pulse voltage (V; it is set as across 50 Ω, so
its set level is half); a trial's reference is the reset that ended the trial before (the first
one of a run: the previous run's last reset, or one reset pulse at the start). The fit uses the
current each amplitude drives, V/(R_reset + 50 Ω) with R_reset the run's median reset
resistance.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np
from pymeasure.experiment import (
    FloatParameter,
    IntegerParameter,
    ListParameter,
    Parameter,
)

from labctl import switching
from labctl.safety import Limits
from procedures.base import StationProcedure
from procedures.sidecar import SidecarMixin

log = logging.getLogger(__name__)

BUFFER_POINTS = 100_000
MAX_RUN_S = 10.0  # instrument time of one pulse list: bounds the abort latency
POINT_OVERHEAD_S = 20e-6  # per pulse, beyond its width (trigger and acquisition)
SOURCE_LIMIT = {"voltage": ("voltage", "current"), "current": ("current", "voltage")}
"""Source kind -> (quantity of the levels, quantity of the compliance)."""
PULSER_OHM = 50.0  # the pulse generator's source impedance
PULSER_MIN_WIDTH = 1.5e-9  # Keysight 81160A shortest pulse, s
PULSER_MIN_AMPLITUDE = 0.1  # V open circuit: the 81160A's 50 mV minimum amplitude into 50 Ω
PULSER_PERIOD = 2.0  # pulse period / width: the generator is busy for one period per trigger


def parse_widths(text: str) -> list[float]:
    """``"1e-5, 1e-4"`` -> [1e-05, 0.0001]; a clear error naming the bad item."""
    out = []
    for item in str(text).replace(";", ",").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            value = float(item)
        except ValueError:
            raise ValueError(f"widths: {item!r} is not a number (s)") from None
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"widths: {item!r} must be a positive number of seconds")
        out.append(value)
    if not out:
        raise ValueError("widths: give at least one pulse width (s), e.g. 1e-4 or 1e-5,1e-4")
    return sorted(set(out))


class SwitchingProbability(SidecarMixin, StationProcedure):
    """P(switch) versus amplitude at one or more pulse widths; fits and calibrates the model."""

    NAME = "switching-probability"
    ROLES = ("smu",)
    DEFAULT_SIM_STATION = "sim-dw-synapse"
    X_AXIS = "Amplitude"
    Y_AXIS = "P switch"
    DISPLAYS = ("model", "widths", "trials", "device", "write_source")

    model = ListParameter("Model", choices=list(switching.MODELS), default="dw-sigmoid")
    device = Parameter("Device (calibration name)", default="dut")
    amplitude_start = FloatParameter("First amplitude", units="V or A", default=1.0,
                                     minimum=-210, maximum=210)
    amplitude_stop = FloatParameter("Last amplitude", units="V or A", default=7.5,
                                    minimum=-210, maximum=210)
    points = IntegerParameter("Amplitudes", default=14, minimum=3, maximum=800)
    widths = Parameter("Pulse widths (s, comma-separated)", default="1e-4")
    trials = IntegerParameter("Trials per amplitude", default=300, minimum=1, maximum=100_000)
    adaptive_trials = IntegerParameter("Extra trials where 0.1 < P < 0.9", default=300,
                                       minimum=0, maximum=100_000)
    refine = IntegerParameter("Extra amplitudes in the transition", default=4, minimum=0,
                              maximum=100)
    reset_amplitude = FloatParameter("Reset pulse", units="V or A", default=-1.5, minimum=-210,
                                     maximum=210)
    read_amplitude = FloatParameter("Read level", units="V or A", default=0.1, minimum=-210,
                                    maximum=210)
    compliance = FloatParameter("Compliance", units="A or V", default=0.01, minimum=1e-9,
                                maximum=210)
    contrast = FloatParameter("Resistance change that counts as switched", default=0.2,
                              minimum=0.01, maximum=100)
    tau0 = FloatParameter("Attempt time tau0 (1/nu0)", units="s", default=1e-9, minimum=1e-15,
                          maximum=1e-3)
    beta = IntegerParameter("Barrier exponent beta", default=1, minimum=1, maximum=2)
    write_source = ListParameter("Write pulse source", choices=["smu", "pulser"],
                                 default="smu")
    trigger_pin = IntegerParameter("SMU trigger output pin (EXT n) to the pulser", default=1,
                                   minimum=1, maximum=14)

    DATA_COLUMNS = ["Width (s)", "Amplitude", "Trials", "Switched", "P switch", "P low",
                    "P high", "Reset failures", "Stage"]

    fit: switching.Fit | None = None
    calibration = None

    # ------------------------------------------------------------------ parameters
    @property
    def source(self) -> str:
        return switching.model(self.model).source

    @property
    def pulsed(self) -> bool:
        """Whether the write pulses come from the pulse generator."""
        return self.write_source == "pulser"

    def width_list(self) -> list[float]:
        return parse_widths(self.widths)

    def amplitudes(self) -> np.ndarray:
        return np.linspace(self.amplitude_start, self.amplitude_stop, self.points)

    def preflight(self, limits: Limits) -> list[str]:
        level_q, comp_q = SOURCE_LIMIT[self.source]
        write_q = "voltage" if self.pulsed else level_q
        checks = [limits.check(write_q, getattr(self, name), name)
                  for name in ("amplitude_start", "amplitude_stop")]
        checks += [limits.check(level_q, getattr(self, name), name)
                   for name in ("reset_amplitude", "read_amplitude")]
        checks.append(limits.check(comp_q, self.compliance, "compliance"))
        try:
            widths = self.width_list()
            checks.append(limits.check("pulse_width", max(widths), "widths"))
            if self.pulsed and min(widths) < PULSER_MIN_WIDTH:
                checks.append(f"widths = {min(widths):g} s is shorter than the pulse "
                              f"generator's shortest pulse {PULSER_MIN_WIDTH:g} s")
        except ValueError as exc:
            checks.append(str(exc))
        if self.pulsed and min(self.amplitude_start, self.amplitude_stop) < PULSER_MIN_AMPLITUDE:
            checks.append(f"amplitudes from the pulser must be at least {PULSER_MIN_AMPLITUDE:g} "
                          "V (open circuit; its smallest amplitude is 50 mV into 50 ohm)")
        if 3 * (self.points + self.refine) > 2500:
            checks.append(f"points + refine = {self.points + self.refine}: one pulse list holds "
                          "at most 833 amplitudes (3 pulses each, 2500 points)")
        if self.reset_amplitude * self.amplitude_stop >= 0:
            checks.append("reset_amplitude must have the polarity opposite to the write pulses")
        return [c for c in checks if c]

    def check_instruments(self, station) -> list[str]:
        """The widths against the SMU model's shortest pulse (50 µs on the B2901A/B2902A,
        10 µs on the B2911A/B2912A), once the SMU answers."""
        if self.pulsed:
            return []  # the SMU only resets and reads; preflight checked the pulser widths
        smu = station.instrument("smu")
        shortest = smu.min_pulse_width(station.identity("smu"))
        try:
            too_short = [w for w in self.width_list() if w < shortest]
        except ValueError:
            return []  # reported by preflight
        if too_short:
            return [f"widths = {too_short[0]:g} s is shorter than this SMU's shortest pulse "
                    f"{shortest:g} s"]
        return []

    # ------------------------------------------------------------------ the trials
    def _pulse_lists(self, levels: np.ndarray, width: float, n: int):
        """Run the SMU pulse list ``levels`` ``n`` times in as few lists as the buffer and
        :data:`MAX_RUN_S` allow (stopping between lists when asked); yield each list's
        resistances, shape (repetitions, len(levels))."""
        channel = self.instruments["smu"].ch_1
        per_run = max(1, min(BUFFER_POINTS // levels.size,
                             int(MAX_RUN_S / (levels.size * (width + POINT_OVERHEAD_S)))))
        done = 0
        while done < n:
            if done and self.should_stop():
                return
            count = min(per_run, n - done)
            data = channel.pulse_list(levels, width, count=count, source=self.source,
                                      compliance=self.compliance)
            with np.errstate(divide="ignore", invalid="ignore"):
                yield (data["VOLT"] / data["CURR"]).reshape(count, levels.size)
            done += count

    def counter(self, width: float):
        """``counter(amplitudes, n)`` for :func:`labctl.switching.measure_curve`: n trials at
        each amplitude in as few pulse lists as the buffer allows (usually one)."""

        def run(amplitudes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
            a = amplitudes.size
            levels = np.empty(3 * a)
            levels[0::3], levels[1::3], levels[2::3] = (self.reset_amplitude, amplitudes,
                                                        self.read_amplitude)
            r = np.concatenate(list(self._pulse_lists(levels, width, n))).reshape(-1, a, 3)
            return self._count(width, amplitudes, r[:, :, 0], r[:, :, 2])

        return run

    def pulser_counter(self, width: float):
        """``counter(amplitudes, n)`` with the pulse generator writing: per amplitude, its high
        level, then one SMU list ``[write slot, read, reset] × n`` whose every repetition
        triggers the generator."""
        pulser = self.instruments["pulser"].ch_1
        pulser.pulse_width = width
        pulser.pulse_period = PULSER_PERIOD * width
        levels = np.array([0.0, self.read_amplitude, self.reset_amplitude])

        def run(amplitudes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
            r_reset = np.full((n, amplitudes.size), np.nan)  # trials not run stay invalid
            r_read = np.full((n, amplitudes.size), np.nan)
            for k, amplitude in enumerate(amplitudes):
                if self.should_stop():
                    break
                pulser.voltage_high = amplitude / 2  # set as across 50 Ω: half open circuit
                done = 0
                for r in self._pulse_lists(levels, self._smu_width, n):
                    count = r.shape[0]
                    # each trial's reference: the reset that ended the trial before
                    r_reset[done:done + count, k] = np.append(self._last_reset, r[:-1, 2])
                    r_read[done:done + count, k] = r[:, 1]
                    self._last_reset = r[-1, 2]
                    done += count
            return self._count(width, amplitudes, r_reset, r_read)

        return run

    def _count(self, width, amplitudes, r_reset, r_read) -> tuple[np.ndarray, np.ndarray]:
        """Store the resistances; (switched, valid) per amplitude (see the module docstring)."""
        self._store(width, amplitudes, r_reset, r_read)
        reference = np.nanmedian(r_reset)
        self._r_reference = reference
        valid = r_reset < reference * (1.0 + self.contrast)
        switched = (r_read > r_reset * (1.0 + self.contrast)) & valid
        self._reset_failures = (~valid).sum(axis=0)
        return switched.sum(axis=0), valid.sum(axis=0)

    def _store(self, width, amplitudes, r_reset, r_read) -> None:
        self._lists += 1
        name = f"list{self._lists:03d}"
        self.file.write_trace(f"{name}_r_reset", r_reset, width_s=width, unit="ohm",
                              amplitudes=np.asarray(amplitudes, float))
        self.file.write_trace(f"{name}_r_read", r_read, width_s=width, unit="ohm",
                              amplitudes=np.asarray(amplitudes, float))

    def _emit_stage(self, stage: int, curve: switching.Curve, touched: np.ndarray) -> None:
        if not touched.any():
            return  # a stage that sampled nothing (no amplitude left in the transition)
        lo, hi = switching.wilson(curve.switched, curve.trials)
        failures = np.zeros(curve.amplitude.size, dtype=np.int64)
        failures[touched] = self._reset_failures
        for j in np.flatnonzero(touched):
            self.emit("results", {
                "Width (s)": curve.width, "Amplitude": curve.amplitude[j],
                "Trials": int(curve.trials[j]), "Switched": int(curve.switched[j]),
                "P switch": curve.switched[j] / curve.trials[j] if curve.trials[j] else math.nan,
                "P low": lo[j], "P high": hi[j], "Reset failures": int(failures[j]),
                "Stage": stage})

    # ------------------------------------------------------------------ lifecycle
    def startup(self) -> None:
        if self.pulsed:
            self.ROLES = ("smu", "pulser")
        super().startup()  # and the array file (SidecarMixin)
        self._lists = 0
        self._reset_failures = 0
        self._r_reference = math.nan
        if self.pulsed:
            self._start_pulser()

    def _start_pulser(self) -> None:
        """Arm the generator on its external input (one pulse per trigger, low level 0 V,
        output on), make the SMU trigger it once per list repetition, and reset the device
        once (the first trial's reference)."""
        pulser = self.instruments["pulser"]
        pulser.apply_chip_limits(self.station.limits)
        ch = pulser.ch_1
        ch.shape = "PULS"
        ch.voltage_low = 0.0
        ch.voltage_high = PULSER_MIN_AMPLITUDE / 2
        ch.trigger_mode = "EXT"
        ch.trigger_count = 1
        ch.output = True
        smu = self.instruments["smu"]
        self._smu_width = smu.min_pulse_width(self.station.identity("smu"))
        smu.ch_1.trigger_each_arm(None)
        data = smu.ch_1.pulse_list([self.reset_amplitude], self._smu_width,
                                   source=self.source, compliance=self.compliance)
        self._last_reset = float(data["VOLT"][0] / data["CURR"][0])
        smu.ch_1.trigger_each_arm(int(self.trigger_pin))

    def execute(self) -> None:
        widths = self.width_list()
        curves = []
        for w_index, width in enumerate(widths):
            if self.should_stop():
                log.warning("switching-probability aborted before width %g s", width)
                return
            counter = self.pulser_counter(width) if self.pulsed else self.counter(width)
            curve = switching.measure_curve(
                counter, width, self.amplitudes(), self.trials,
                self.adaptive_trials, self.refine, on_stage=self._emit_stage,
                should_stop=self.should_stop)
            if curve is None:
                log.warning("switching-probability aborted at width %g s", width)
                return
            if self.pulsed:  # fit in the current each open-circuit voltage drives
                curve = dataclasses.replace(
                    curve, amplitude=curve.amplitude / (self._r_reference + PULSER_OHM))
            curves.append(curve)
            self.emit("progress", 100.0 * (w_index + 1) / len(widths))
        self.fit = switching.fit_curves(switching.model(self.model, self.tau0, self.beta),
                                        curves)
        self.file.write_trace("fit_values", self.fit.values,
                              parameters=list(self.fit.model.parameters))
        self.file.write_trace("fit_covariance", self.fit.covariance)
        self.calibration = self.station.calibration.save(
            self.station.chip, str(self.device), self.model, self.fit.parameters(),
            run=str(self.results_path), procedure=self.NAME, station=self.station.name,
            extra={"widths_s": widths, "tau0_s": self.tau0, "beta": int(self.beta),
                   "write_source": str(self.write_source),
                   "r_reset_ohm": float(self._r_reference),
                   "deviance": self.fit.deviance,
                   "trials": int(sum(int(c.trials.sum()) for c in curves))})
        log.info("%s fit: %s", self.model, ", ".join(
            f"{n} = {v:.6g} ± {s:.2g} {u}" for n, (v, s, u) in self.fit.parameters().items()))

    def shutdown(self) -> None:
        if self.pulsed and "smu" in getattr(self, "instruments", {}):
            try:  # the SMU no longer fires the generator (its output goes off next as well)
                self.instruments["smu"].ch_1.trigger_each_arm(None)
            except Exception:
                log.exception("could not stop the SMU's trigger output")
        super().shutdown()  # and the array file is closed (SidecarMixin)
