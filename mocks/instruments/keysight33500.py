"""Keysight/Agilent 33500B-series waveform generator (33522B: two channels), SCPI.

Reference: Keysight 33500B Series Trueform Waveform Generators, Operating and Service Guide
(33500-90911), "SCPI Programming Reference": SOURce:FUNCtion, FREQuency, VOLTage (+HIGH, LOW,
OFFSet, UNIT), FUNCtion:PULSe (PERiod, WIDTh, DCYCle, HOLD, TRANsition), FUNCtion:SQUare:DCYCle,
FUNCtion:RAMP:SYMMetry, FUNCtion:ARBitrary (SRATe, FILTer, ADVance), DATA:ARBitrary[:DAC],
DATA:VOLatile:CLEar, BURSt (STATe, MODE, NCYCles, INTernal:PERiod), TRIGger:SOURce, OUTPut
(+LOAD, TRIGger), PHASe, DISPlay:TEXT, SYSTem:BEEPer.

What is modelled
- Channel 1 drives the wired circuit (``device``: an :class:`~mocks.devices.nbox.NbOxNeurons`)
  through its 50 Ω output: the EMF is twice the programmed voltage with ``OUTP:LOAD 50`` (the
  default, as on the instrument: settings are "into 50 Ω") and equal to it with ``OUTP:LOAD INF``.
  Output off opens the output relay (the circuit sees an open source).
- Waveforms: DC, PULSe (rectangular; edge times are not modelled), SQUare, SINusoid, TRIangle,
  RAMP (sampled at 64 points per period) and ARB (the uploaded samples at SRATe, held between
  samples: the STEP filter; NORMal is approximated by it). NOISe and PRBS are not modelled
  (-221).
- Continuous output (phase 0 when the output is switched on or the waveform is changed) and
  triggered bursts of NCYCles periods, idling at the pulse low level (PULS) or the start value,
  triggered by ``*TRG`` (TRIG:SOUR BUS), immediately at the internal burst period (IMM), or by
  nothing on this bench (EXT). The sync output is wired to the circuit's ``sync`` (the
  oscilloscope's external trigger input): it marks every burst start.
- Limits: amplitude 1 mVpp to 10 Vpp and |offset| + Vpp/2 ≤ 5 V into 50 Ω (doubled into high
  impedance), frequency 1 µHz to 30 MHz, pulse width ≥ 16 ns and < period; a value outside
  raises -222 and leaves the setting unchanged.

Settings do not advance the clock; the circuit is integrated up to the present virtual time
before any setting changes, so each stretch of time sees the settings that were in force.
"""

from __future__ import annotations

import math

import numpy as np

from mocks.clock import VirtualClock
from mocks.scpi import (
    ScpiError,
    ScpiPersonality,
    parse_bool,
    parse_choice,
    parse_number,
)

OUTPUT_OHM = 50.0
FUNCTIONS = {"SINusoid": "SIN", "SQUare": "SQU", "TRIangle": "TRI", "RAMP": "RAMP",
             "PULSe": "PULS", "PRBS": "PRBS", "NOISe": "NOIS", "ARBitrary": "ARB", "DC": "DC"}
SAMPLED = 64  # points per period for SIN/TRI/RAMP
FREQ_RANGE = (1e-6, 30e6)
MIN_PULSE_WIDTH = 16e-9
MAX_ARB_POINTS = 1_000_000


def fmt(x: float) -> str:
    return f"{x:+.15E}"


class _Channel:
    def __init__(self):
        self.function = "SIN"
        self.frequency = 1e3
        self.amplitude = 0.1  # Vpp into the load setting
        self.offset = 0.0
        self.unit = "VPP"
        self.phase = 0.0
        self.square_dcyc = 50.0
        self.ramp_symm = 100.0
        self.pulse_width = 100e-6
        self.pulse_hold = "WIDT"
        self.pulse_transition = 8.4e-9
        self.output = False
        self.load = OUTPUT_OHM
        self.burst = False
        self.burst_mode = "TRIG"
        self.burst_ncycles = 1
        self.burst_period = 10e-3
        self.arb_name = "EXP_RISE"
        self.arb_srate = 40e3
        self.arb_filter = "NORM"
        self.arb_advance = "SRAT"
        self.t_ref = 0.0  # phase-0 time of continuous output, s
        self.triggers: list[float] = []  # burst start times, s


class Keysight33500Personality(ScpiPersonality):
    """A Keysight 33522B whose channel 1 drives the wired neuron circuit."""

    def __init__(self, clock: VirtualClock | None = None, device=None, device_index=0,
                 rng: np.random.Generator | None = None, serial: str = "MY52345678",
                 channels: int = 2, **options):
        if options:
            raise TypeError(f"unknown Keysight33500 options: {', '.join(options)}")
        if channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, got {channels!r}")
        super().__init__(clock)
        self.idn = f"Agilent Technologies,3352{channels}B,{serial},4.00-1.19-2.00-58-00"
        self.device = device
        self.n_channels = channels
        self.trigger_source = "IMM"
        self.trigger_out = False
        self.border = "NORM"
        self.display_text = ""
        self.beeps = 0
        self.arbs: dict[str, np.ndarray] = {}
        self._register()
        self.reset()
        if device is not None:
            device.set_source(self.source)
            device.sync = self.next_sync

    # ================================================================== state
    def reset(self) -> None:
        self.catch_up()
        self.ch = {n: _Channel() for n in range(1, self.n_channels + 1)}
        self.trigger_source = "IMM"
        self.trigger_out = False
        self.display_text = ""
        self.arbs = {}

    def catch_up(self) -> None:
        if self.device is not None:
            self.device.advance_to(self.clock.now)

    def _changed(self, c: _Channel) -> None:
        """A waveform setting changed: continuous output restarts at phase 0 now."""
        c.t_ref = self.clock.now

    # ================================================================== the output
    def _peak_emf(self, c: _Channel) -> float:
        return 2.0 if math.isfinite(c.load) else 1.0

    def _pattern(self, c: _Channel) -> tuple[np.ndarray, np.ndarray, float]:
        """One period of the EMF: (offsets within the period, levels, period)."""
        scale = self._peak_emf(c)
        hi, lo = (c.offset + c.amplitude / 2) * scale, (c.offset - c.amplitude / 2) * scale
        mid, half = c.offset * scale, c.amplitude / 2 * scale
        f = c.function
        if f == "DC":
            return np.zeros(1), np.array([mid]), math.inf
        if f == "ARB":
            samples = self.arbs.get(c.arb_name)
            if samples is None:
                raise ScpiError(-221, f"arb {c.arb_name!r} not loaded")
            return np.arange(samples.size) / c.arb_srate, mid + half * samples, \
                samples.size / c.arb_srate
        period = 1.0 / c.frequency
        if f == "PULS":
            return np.array([0.0, c.pulse_width]), np.array([hi, lo]), period
        if f == "SQU":
            return np.array([0.0, period * c.square_dcyc / 100]), np.array([hi, lo]), period
        x = (np.arange(SAMPLED) + 0.5) / SAMPLED  # phase of each held sample
        if f == "SIN":
            shape = np.sin(2 * np.pi * x)
        else:
            symm = 0.5 if f == "TRI" else c.ramp_symm / 100
            shape = np.where(x < symm, x / max(symm, 1e-12),
                             (1 - x) / max(1 - symm, 1e-12)) * 2 - 1
        return np.arange(SAMPLED) / SAMPLED * period, mid + half * shape, period

    def _idle(self, c: _Channel, levels: np.ndarray) -> float:
        return float(levels[-1] if c.function == "PULS" else levels[0])

    def source(self, t0: float, t1: float):
        """The EMF of channel 1 over [t0, t1] (see :data:`mocks.devices.nbox.Source`)."""
        c = self.ch[1]
        if not c.output:
            return np.array([t0]), np.zeros(1), math.inf
        offsets, levels, period = self._pattern(c)
        if not math.isfinite(period):
            return np.array([t0]), levels, OUTPUT_OHM
        if not c.burst:
            starts = c.t_ref + period * np.arange(max(0, math.floor((t0 - c.t_ref) / period)),
                                                  math.floor((t1 - c.t_ref) / period) + 1)
            before = levels[-1]
        else:  # each burst: NCYCles periods of the pattern, then back to the idle level
            starts = self._burst_starts(c, t0 - c.burst_ncycles * period, t1)
            before = self._idle(c, levels)
            offsets = np.append((offsets[None, :] + period * np.arange(c.burst_ncycles)[:, None])
                                .ravel(), c.burst_ncycles * period)
            levels = np.append(np.tile(levels, c.burst_ncycles), before)
        edges = np.concatenate([[-math.inf], *(s + offsets for s in starts)])
        lv = np.concatenate([[before], *(levels for _ in starts)])
        first = max(0, int(np.searchsorted(edges, t0, side="right")) - 1)
        edges, lv = edges[first:].copy(), lv[first:]
        edges[0] = t0
        return edges, lv, OUTPUT_OHM

    def _burst_starts(self, c: _Channel, t0: float, t1: float) -> list[float]:
        if self.trigger_source == "IMM":
            k0 = max(0, math.floor((t0 - c.t_ref) / c.burst_period))
            k1 = math.floor((t1 - c.t_ref) / c.burst_period)
            return [c.t_ref + k * c.burst_period for k in range(k0, k1 + 1)]
        return [t for t in c.triggers if t0 <= t <= t1]

    def next_sync(self, t: float) -> float | None:
        """First sync edge (burst start, or period start of continuous output) at or after
        ``t``; None if none will come without a further trigger."""
        c = self.ch[1]
        if not c.output:
            return None
        try:
            period = self._pattern(c)[2]
        except ScpiError:
            return None
        if c.burst and self.trigger_source != "IMM":
            later = [s for s in c.triggers if s >= t]
            return min(later) if later else None
        step = c.burst_period if c.burst else period
        if not math.isfinite(step):
            return None
        return c.t_ref + step * max(0, math.ceil((t - c.t_ref) / step - 1e-12))

    # ================================================================== commands
    def _register(self) -> None:
        for n in range(1, self.n_channels + 1):
            src = "[:SOURce[1]]" if n == 1 else ":SOURce2"
            out = ":OUTPut[1]" if n == 1 else ":OUTPut2"
            reg = self.command
            reg(f"{src}:FUNCtion[:SHAPe]", self._function(n))
            reg(f"{src}:FREQuency[:CW]", self._num(n, "frequency", *FREQ_RANGE, check=self._freq))
            reg(f"{src}:VOLTage[:LEVel][:IMMediate][:AMPLitude]", self._amplitude(n))
            reg(f"{src}:VOLTage[:LEVel][:IMMediate]:OFFSet", self._offset(n))
            reg(f"{src}:VOLTage[:LEVel][:IMMediate]:HIGH", self._high_low(n, high=True))
            reg(f"{src}:VOLTage[:LEVel][:IMMediate]:LOW", self._high_low(n, high=False))
            reg(f"{src}:VOLTage:UNIT", self._choice(n, "unit", {"VPP": "VPP", "VRMS": "VRMS",
                                                                "DBM": "DBM"}))
            reg(f"{src}:PHASe[:ADJust]", self._num(n, "phase", -360, 360))
            reg(f"{src}:FUNCtion:SQUare:DCYCle", self._num(n, "square_dcyc", 0.01, 99.99))
            reg(f"{src}:FUNCtion:RAMP:SYMMetry", self._num(n, "ramp_symm", 0, 100))
            reg(f"{src}:FUNCtion:PULSe:PERiod", self._period(n))
            reg(f"{src}:FUNCtion:PULSe:WIDTh", self._num(n, "pulse_width", MIN_PULSE_WIDTH,
                                                         1e6, check=self._width))
            reg(f"{src}:FUNCtion:PULSe:DCYCle", self._pulse_dcyc(n))
            reg(f"{src}:FUNCtion:PULSe:HOLD", self._choice(n, "pulse_hold", {
                "WIDTh": "WIDT", "DCYCle": "DCYC"}))
            reg(f"{src}:FUNCtion:PULSe:TRANsition[:BOTH]", self._num(n, "pulse_transition",
                                                                     8.4e-9, 1e-6))
            reg(f"{src}:FUNCtion:ARBitrary", self._arb_select(n))
            reg(f"{src}:FUNCtion:ARBitrary:SRATe", self._num(n, "arb_srate", 1e-6, 250e6))
            reg(f"{src}:FUNCtion:ARBitrary:FILTer", self._choice(n, "arb_filter", {
                "NORMal": "NORM", "STEP": "STEP", "OFF": "OFF"}))
            reg(f"{src}:FUNCtion:ARBitrary:ADVance", self._choice(n, "arb_advance", {
                "TRIGger": "TRIG", "SRATe": "SRAT"}))
            reg(f"{src}:DATA:ARBitrary", self._data_arb(dac=False))
            reg(f"{src}:DATA:ARBitrary:DAC", self._data_arb(dac=True))
            reg(f"{src}:DATA:VOLatile:CLEar", self._volatile_clear)
            reg(f"{src}:BURSt:STATe", self._flag(n, "burst"))
            reg(f"{src}:BURSt:MODE", self._choice(n, "burst_mode", {
                "TRIGgered": "TRIG", "GATed": "GAT"}))
            reg(f"{src}:BURSt:NCYCles", self._ncycles(n))
            reg(f"{src}:BURSt:INTernal:PERiod", self._num(n, "burst_period", 1e-6, 8000))
            reg(out, self._output(n))
            reg(f"{out}:LOAD", self._load(n))
        self.command(":TRIGger[1]:SOURce", self._trigger_source)
        self.command(":OUTPut:TRIGger[:STATe]", self._trigger_out)
        self.command(":FORMat:BORDer", self._border)
        self.command(":DISPlay:TEXT[:DATA]", self._display)
        self.command(":DISPlay:TEXT:CLEar", self._display_clear)
        self.command(":SYSTem:BEEPer[:IMMediate]", self._beep)
        self.command(":PHASe:SYNChronize", self._phase_sync)
        self.command(":TRIGger[1][:IMMediate]", self._trg)

    # ---- channel settings: one handler factory, a reply and an apply per setting
    def _setting(self, n, show, apply, restart: bool = True):
        """Handler for a setting of channel ``n``: the query answers ``show(c)``; the command
        runs ``apply(c, text)`` (which validates, raising ScpiError, then sets) and, if
        ``restart``, restarts continuous output at phase 0."""
        def handler(args, query):
            c = self.ch[n]
            if query:
                return show(c)
            self.need(args, 1)
            apply(c, args[0])
            if restart:
                self._changed(c)
        return handler

    def _num(self, n, attr, lo, hi, check=None):
        def apply(c, text):
            value = parse_number(text, lo, hi, getattr(_Channel(), attr))
            if not lo <= value <= hi:
                raise ScpiError(-222, f"{value:g} outside [{lo:g}, {hi:g}]")
            if check is not None:
                check(c, value)
            setattr(c, attr, value)
        return self._setting(n, lambda c: fmt(getattr(c, attr)), apply)

    def _choice(self, n, attr, choices):
        return self._setting(n, lambda c: getattr(c, attr),
                             lambda c, text: setattr(c, attr, parse_choice(text, choices)),
                             restart=False)

    def _flag(self, n, attr):
        return self._setting(n, lambda c: "1" if getattr(c, attr) else "0",
                             lambda c, text: setattr(c, attr, parse_bool(text)))

    # ---- specific settings
    def _function(self, n):
        def apply(c, text):
            f = parse_choice(text, FUNCTIONS)
            if f in ("NOIS", "PRBS"):
                raise ScpiError(-221, f"{f} is not modelled on this bench")
            c.function = f
        return self._setting(n, lambda c: c.function, apply)

    @staticmethod
    def _levels(c: _Channel, amplitude: float, offset: float) -> None:
        """Set amplitude (Vpp) and offset (V) if the output can make them, else -222/-221."""
        k = 1.0 if c.load == OUTPUT_OHM else 2.0
        if not 1e-3 * k <= amplitude <= 10.0 * k + 1e-12:
            raise ScpiError(-222, f"amplitude {amplitude:g} Vpp")
        if abs(offset) + amplitude / 2 > 5.0 * k + 1e-12:
            raise ScpiError(-221, f"offset {offset:g} V with {amplitude:g} Vpp exceeds "
                                  f"±{5 * k:g} V")
        c.amplitude, c.offset = amplitude, offset

    def _amplitude(self, n):
        return self._setting(n, lambda c: fmt(c.amplitude), lambda c, text: self._levels(
            c, parse_number(text, 1e-3, 10.0, 0.1), c.offset))

    def _offset(self, n):
        return self._setting(n, lambda c: fmt(c.offset), lambda c, text: self._levels(
            c, c.amplitude, parse_number(text, -5.0, 5.0, 0.0)))

    def _high_low(self, n, high: bool):
        def bounds(c):
            return c.offset + c.amplitude / 2, c.offset - c.amplitude / 2

        def apply(c, text):
            hi, lo = bounds(c)
            v = parse_number(text, -5.0, 5.0)
            hi, lo = (v, lo) if high else (hi, v)
            if hi <= lo:
                raise ScpiError(-221, "high level must exceed low level")
            self._levels(c, hi - lo, (hi + lo) / 2)
        return self._setting(n, lambda c: fmt(bounds(c)[0 if high else 1]), apply)

    @staticmethod
    def _freq(c: _Channel, f: float) -> None:
        if c.function == "PULS" and c.pulse_width >= 1 / f:
            raise ScpiError(-221, "pulse width must be shorter than the period")

    @staticmethod
    def _width(c: _Channel, w: float) -> None:
        if w >= 1 / c.frequency:
            raise ScpiError(-221, f"pulse width {w:g} s not shorter than the period")

    def _period(self, n):
        def apply(c, text):
            p = parse_number(text, 1 / FREQ_RANGE[1], 1 / FREQ_RANGE[0])
            if not 1 / FREQ_RANGE[1] <= p <= 1 / FREQ_RANGE[0]:
                raise ScpiError(-222, f"period {p:g} s")
            if c.pulse_width >= p:
                raise ScpiError(-221, f"period {p:g} s not longer than the pulse width")
            c.frequency = 1 / p
        return self._setting(n, lambda c: fmt(1 / c.frequency), apply)

    def _pulse_dcyc(self, n):
        def apply(c, text):
            d = parse_number(text, 0.0, 100.0)
            if not 0 < d < 100:
                raise ScpiError(-222, f"duty cycle {d:g} %")
            c.pulse_width = d / 100 / c.frequency
        return self._setting(n, lambda c: fmt(100 * c.pulse_width * c.frequency), apply)

    def _ncycles(self, n):
        def apply(c, text):
            k = parse_number(text, 1, 1e8)
            if k != int(k) or not 1 <= k <= 1e8:
                raise ScpiError(-222, f"burst count {k:g}")
            c.burst_ncycles = int(k)
        return self._setting(n, lambda c: str(c.burst_ncycles), apply)

    def _arb_select(self, n):
        def apply(c, text):
            name = text.strip().strip("\"'")
            if name not in self.arbs:
                raise ScpiError(-224, f"no arb named {name!r} in volatile memory")
            c.arb_name = name
        return self._setting(n, lambda c: f'"{c.arb_name}"', apply)

    def _data_arb(self, dac: bool):
        def handler(args, query):
            if query:
                raise ScpiError(-113, "DATA:ARB?")
            if len(args) < 9:
                raise ScpiError(-109, "an arb needs a name and at least 8 points")
            name = args[0].strip().strip("\"'")
            try:
                values = np.array([float(a) for a in args[1:]])
            except ValueError:
                raise ScpiError(-104, "arb points must be numbers") from None
            scale = 32767.0 if dac else 1.0
            if values.size > MAX_ARB_POINTS or np.abs(values).max() > scale:
                raise ScpiError(-222, f"arb points must lie in ±{scale:g}")
            self.arbs[name] = values / scale
        return handler

    def _volatile_clear(self, args, query):
        self.arbs.clear()

    def _output(self, n):
        def apply(c, text):
            on = parse_bool(text)
            if on and not c.output:
                c.t_ref = self.clock.now
            c.output = on
        return self._setting(n, lambda c: "1" if c.output else "0", apply, restart=False)

    def _load(self, n):
        def apply(c, text):
            if text.strip().upper() in ("INF", "INFINITY"):
                c.load = math.inf
                return
            value = parse_number(text, 1.0, 10e3, OUTPUT_OHM)
            if not 1.0 <= value <= 10e3:
                raise ScpiError(-222, f"load {value:g} ohm")
            c.load = value
        return self._setting(n, lambda c: fmt(c.load if math.isfinite(c.load) else 9.9e37),
                             apply)

    def _trigger_source(self, args, query):
        if query:
            return self.trigger_source
        self.need(args, 1)
        self.trigger_source = parse_choice(args[0], {"IMMediate": "IMM", "EXTernal": "EXT",
                                                     "BUS": "BUS", "TIMer": "TIM"})

    def _trigger_out(self, args, query):
        if query:
            return "1" if self.trigger_out else "0"
        self.need(args, 1)
        self.trigger_out = parse_bool(args[0])

    def _border(self, args, query):
        if query:
            return self.border
        self.need(args, 1)
        self.border = parse_choice(args[0], {"NORMal": "NORM", "SWAPped": "SWAP"})

    def _display(self, args, query):
        if query:
            return f'"{self.display_text}"'
        self.need(args, 1)
        self.display_text = args[0].strip().strip("\"'")

    def _display_clear(self, args, query):
        self.display_text = ""

    def _beep(self, args, query):
        self.beeps += 1

    def _phase_sync(self, args, query):
        for c in self.ch.values():
            c.t_ref = self.clock.now

    def _trg(self, args, query):
        """*TRG / TRIG: start a burst now on every channel in triggered burst mode, BUS source."""
        if self.trigger_source != "BUS":
            return None
        for c in self.ch.values():
            if c.burst and c.output:
                c.triggers = [t for t in c.triggers if t >= self.clock.now - 1.0]
                c.triggers.append(self.clock.now)
        return None
