"""The DC output of a chain of spin-diode junctions vs the powers and frequencies of several RF
inputs (the weighted sum V = Σ_i P_i·W_i of Ross et al., arXiv 2211.03659), and the emission of
the oscillator that output drives.

All sources sit at their frequencies and powers; one of them (``sweep_source``) sweeps its power
or its frequency in list mode while the SMU on the chain's DC port reads the output (0 A
sourced, voltage sensed) and, if the station has an ``analyzer``, a peak search follows the
oscillator. Junction biases programmed by ``program-resonance`` are set first (newest
``programmed-resonance`` calibration of each ``mtj<k>``).
"""

from __future__ import annotations

import logging
import math

import numpy as np
from pymeasure.experiment import BooleanParameter, FloatParameter, IntegerParameter, ListParameter
from pymeasure.experiment import Parameter as TextParameter

from labctl.errors import ConfigError
from procedures.program_resonance import bias_roles
from procedures.rf_base import RfProcedure, design_frequencies, numbered_roles, parse_floats

log = logging.getLogger(__name__)


class ChainResponse(RfProcedure):
    """Chain DC output (and oscillator emission) vs one input's power or frequency."""

    NAME = "chain-response"
    ROLES = ("smu",)
    DEFAULT_SIM_STATION = "sim-rf-chain"
    LIMITED = {"compliance_voltage": "voltage"}
    X_AXIS = "Swept value"
    Y_AXIS = "Chain output (V)"
    DISPLAYS = ("sweep", "sweep_source", "start", "stop")

    frequencies = TextParameter("Source frequencies (Hz, comma list, or empty)", default="")
    f_min = FloatParameter("Lowest input frequency", units="Hz", default=40e6, minimum=9e3,
                           maximum=20e9)
    f_max = FloatParameter("Highest input frequency", units="Hz", default=120e6, minimum=9e3,
                           maximum=20e9)
    power = FloatParameter("Power of the fixed sources", units="dBm", default=-30,
                           minimum=-130, maximum=20)
    sweep = ListParameter("Swept quantity", choices=["power", "frequency"], default="power")
    sweep_source = IntegerParameter("Swept source (0 = rf_source)", default=0, minimum=0,
                                    maximum=15)
    start = FloatParameter("Sweep start (dBm or Hz)", default=-45.0, minimum=-130, maximum=20e9)
    stop = FloatParameter("Sweep stop (dBm or Hz)", default=-20.0, minimum=-130, maximum=20e9)
    steps = IntegerParameter("Sweep points", default=26, minimum=2, maximum=3201)
    apply_programmed = BooleanParameter("Set programmed junction biases", default=True)
    osc_center = FloatParameter("Analyzer centre (oscillator)", units="Hz", default=262e6,
                                minimum=10, maximum=26.5e9)
    osc_span = FloatParameter("Analyzer span (oscillator)", units="Hz", default=40e6,
                              minimum=10, maximum=26.5e9)

    DATA_COLUMNS = ["Point", "Swept value", "Chain output (V)", "Oscillator frequency (Hz)",
                    "Oscillator peak (dBm)"]

    def sources(self, station) -> list[str]:
        return numbered_roles(station, "rf_source")

    def source_frequencies(self, n_sources: int, n_junctions: int) -> list[float]:
        if str(self.frequencies).strip():
            f = parse_floats(self.frequencies, "frequencies")
            if len(f) != n_sources:
                raise ValueError(f"frequencies: {len(f)} values for {n_sources} sources")
            return f
        return list(design_frequencies(self.f_min, self.f_max, n_junctions)[:n_sources])

    def check_instruments(self, station) -> list[str]:
        try:
            roles = self.sources(station)
            if not roles:
                raise ValueError("the station has no rf_source")
            if self.sweep_source >= len(roles):
                raise ValueError(f"sweep_source {self.sweep_source}: the station has "
                                 f"{len(roles)} sources")
            for role in roles + (bias_roles(station) if self.apply_programmed else []):
                station.instrument(role)
            self.source_frequencies(len(roles), len(bias_roles(station)))
        except (ConfigError, ValueError) as exc:
            return [str(exc)]
        return []

    def startup(self) -> None:
        super().startup()
        extra = self.sources(self.station) + (bias_roles(self.station)
                                              if self.apply_programmed else [])
        if "analyzer" in self.station.roles:
            extra.append("analyzer")
        for role in extra:
            self.instruments[role] = self.station.instrument(role)

    def set_programmed_biases(self) -> None:
        for k, role in enumerate(bias_roles(self.station)):
            if role == "smu":
                continue  # a single junction's SMU is the output reader here
            try:
                cal = self.station.calibration.latest(self.station.chip, f"mtj{k}",
                                                      "programmed-resonance")
                current = cal["bias_current"]
            except ConfigError:
                current = 0.0
            self.bias(self.instruments[role], current)

    def execute(self) -> None:
        roles = self.sources(self.station)
        gens = [self.instruments[r] for r in roles]
        freqs = self.source_frequencies(len(gens), len(bias_roles(self.station)))
        if self.apply_programmed:
            self.set_programmed_biases()
        smu = self.instruments["smu"]
        self.bias(smu, 0.0)
        for k, gen in enumerate(gens):
            if k != self.sweep_source:
                gen.frequency, gen.power = freqs[k], self.power
                gen.enable()
        swept = np.linspace(self.start, self.stop, self.steps)
        if self.sweep == "power":
            list_f, list_p = freqs[self.sweep_source], swept
        else:
            list_f, list_p = swept, self.power
        sa = self.instruments.get("analyzer")
        osc = np.full((swept.size, 2), math.nan)
        if sa is not None:
            sa.configure(center=self.osc_center, span=self.osc_span, rbw=100e3, points=1001)

        def follow_oscillator(k: int) -> None:
            sa.single_sweep()
            osc[k] = sa.peak()

        volts = self.rf_points(gens[self.sweep_source], smu, list_f, list_p,
                               progress=lambda k: self.emit("progress", 100 * k / swept.size),
                               on_point=follow_oscillator if sa is not None else None)
        if volts is None:
            log.warning("chain-response aborted")
            return
        for k, x in enumerate(swept):
            self.emit("results", {"Point": k, "Swept value": x, "Chain output (V)": volts[k],
                                  "Oscillator frequency (Hz)": osc[k, 0],
                                  "Oscillator peak (dBm)": osc[k, 1]})
        self.write_arrays(traces={
            "swept": (swept, {"units": "dBm" if self.sweep == "power" else "Hz"}),
            "chain_output": (volts, {"units": "V"}),
            "source_frequencies": (np.asarray(freqs), {"units": "Hz"})})
