"""Keysight X-Series signal analyzers (N9010B EXA, N9030B PXA) in Spectrum Analyzer mode.

Reference: Keysight X-Series Signal Analyzers, Spectrum Analyzer Mode User's & Programmer's
Reference: ``[:SENSe]:FREQuency:CENTer|SPAN|STARt|STOP``, ``[:SENSe]:BANDwidth|BWIDth
[:RESolution][:AUTO]``, ``:VIDeo[:AUTO]``, ``[:SENSe]:SWEep:POINts|TIME[:AUTO]``,
``[:SENSe]:AVERage:COUNt|[:STATe]|TYPE``, ``:INITiate:CONTinuous``, ``:INITiate[:IMMediate]``,
``:FORMat[:TRACe][:DATA] ASCii|REAL,32|REAL,64``, ``:FORMat:BORDer NORMal|SWAPped``,
``:TRACe[:DATA]? TRACE1``, ``:CALCulate:MARKer[n]:MAXimum``, ``:CALC:MARK[n]:X?|Y?``.

What is modelled
- A swept measurement of the wired device's emission (:meth:`RfCircuit.emission_lines`) seen
  through a Gaussian RBW filter (:func:`~mocks.devices.spintronics.analyzer_trace`) plus the
  displayed average noise level (``danl_dbm_hz`` + 10·log10(noise bandwidth)). Each sweep's
  point is a power with exponential (χ², 2 d.o.f.) fluctuations, as for a noise-like signal in
  one RBW cell; trace averaging over N sweeps of power (``:AVER:TYPE RMS``) gives Gamma(N, 1/N)
  factors, so each displayed point's relative standard deviation is 1/√N; log-power averaging
  (``LOG``, the X-Series default) averages the N sweeps in dB, which reads a noise-like signal
  low by up to 2.51 dB (the mean of 10·log10 of an exponential variable).
- ``*RST`` leaves single-sweep mode (``:INIT:CONT OFF``), 1001 points, auto RBW/VBW/sweep time.
  In continuous mode a trace query takes a fresh sweep; in single mode it returns the last
  one (``:INIT`` takes N sweeps when averaging is on).
- Traces in ASCII or as IEEE 488.2 definite-length blocks of 32/64-bit floats, byte order
  NORMal (big endian) or SWAPped, in dBm.

Time: a sweep takes the sweep time (auto: 2·span/RBW², at least 1 ms per 1001 points) on the
virtual clock.
"""

from __future__ import annotations

import math
import struct

import numpy as np

from mocks.clock import VirtualClock
from mocks.devices.spintronics import FWHM_PER_SIGMA, analyzer_trace
from mocks.scpi import ScpiError, ScpiPersonality, parse_bool, parse_choice, parse_number

MODELS = {"N9010B": 26.5e9, "N9030B": 26.5e9}
F_MIN = 10.0
RBW_MIN, RBW_MAX = 1.0, 8e6


def _num(x: float) -> str:
    return f"{x:.10E}"


class KeysightXSeriesPersonality(ScpiPersonality):
    """An X-Series signal analyzer whose RF input sees the wired device's emission."""

    AVERAGE_TYPES = {"LOG": "LOG", "RMS": "RMS"}  # (SCALar, voltage averaging: not modelled)

    def __init__(self, clock: VirtualClock | None = None, device=None, device_index: int = 0,
                 rng: np.random.Generator | None = None, model: str = "N9010B",
                 serial: str = "MY56470123", danl_dbm_hz: float = -150.0, **options):
        if options:
            raise TypeError(f"unknown X-Series options: {', '.join(options)}")
        if model not in MODELS:
            raise ValueError(f"model {model!r} is not one of {', '.join(MODELS)}")
        super().__init__(clock)
        self.f_max = MODELS[model]
        self.idn = f"Keysight Technologies,{model},{serial},A.33.03"
        self.device = device
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.danl_w_hz = 10 ** (danl_dbm_hz / 10) * 1e-3
        self.s: dict = {}
        self._register()
        self.reset()

    def reset(self) -> None:
        self.s.update(center=13.255e9, span=26.49e9, rbw=3e6, rbw_auto=True, vbw=3e6,
                      vbw_auto=True, points=1001, sweep_time=0.0, sweep_time_auto=True,
                      avg_count=100, avg_on=False, avg_type="LOG", continuous=False,
                      format="ASC", border="NORM", marker_x={}, trace_type="WRIT")
        self.trace: np.ndarray | None = None
        self.sweeps_taken = 0

    # ================================================================== measurement
    @property
    def start(self) -> float:
        return self.s["center"] - self.s["span"] / 2

    @property
    def stop(self) -> float:
        return self.s["center"] + self.s["span"] / 2

    def frequencies(self) -> np.ndarray:
        return np.linspace(self.start, self.stop, self.s["points"])

    def rbw(self) -> float:
        if self.s["rbw_auto"]:  # about span/106, on a 1-3-10 sequence
            target = max(self.s["span"] / 106.0, RBW_MIN)
            steps = [m * 10 ** e for e in range(0, 7) for m in (1, 3)]
            return min([s for s in steps if s >= target] or [RBW_MAX])
        return self.s["rbw"]

    def sweep_time(self) -> float:
        if not self.s["sweep_time_auto"]:
            return self.s["sweep_time"]
        return max(2.0 * self.s["span"] / self.rbw() ** 2, 1e-3 * self.s["points"] / 1001)

    def averages(self) -> int:
        """Sweeps in one measurement."""
        return self.s["avg_count"] if self.s["avg_on"] else 1

    def _sweep(self) -> np.ndarray:
        """One (averaged) measurement: the trace in W."""
        n = self.averages()
        self.clock.advance(n * self.sweep_time())
        f, rbw = self.frequencies(), self.rbw()
        enbw = rbw / FWHM_PER_SIGMA * math.sqrt(2 * math.pi)
        lines = self.device.emission_lines() if self.device is not None else []
        mean = analyzer_trace(f, rbw, lines) + self.danl_w_hz * enbw
        self.sweeps_taken += n
        if self.s["avg_type"] == "LOG" and n > 1:  # the mean of the sweeps in dB
            return mean * np.exp(np.log(self.rng.exponential(1.0, (n, f.size))).mean(axis=0))
        return mean * self.rng.gamma(n, 1.0 / n, f.size)

    def _initiate(self, args, query):
        if query:
            raise ScpiError(-113, "no query form")
        self.trace = self._sweep()

    def _current_trace(self) -> np.ndarray:
        if self.s["continuous"] or self.trace is None:
            self.trace = self._sweep()
        return self.trace

    def _trace_data(self, args, query):
        if not query:
            raise ScpiError(-113, "trace upload not supported")
        name = args[0].strip().upper() if args else "TRACE1"
        if name not in ("TRACE1", "TRAC1"):
            raise ScpiError(-224, f"{name}: only TRACE1 is measured")
        dbm = 10 * np.log10(self._current_trace() / 1e-3)
        fmt = self.s["format"]
        if fmt == "ASC":
            return ",".join(_num(x) for x in dbm)
        code = ">" if self.s["border"] == "NORM" else "<"
        code += "f" if fmt == "REAL,32" else "d"
        payload = struct.pack(f"{code[0]}{dbm.size}{code[1]}", *dbm)
        size = str(len(payload))
        return f"#{len(size)}{size}" + payload.decode("latin-1")

    # ================================================================== markers
    def _marker_max(self, args, query):
        if query:
            raise ScpiError(-113, "no query form")
        trace = self._current_trace()
        self.s["marker_x"][1] = float(self.frequencies()[int(np.argmax(trace))])

    def _marker_x(self, args, query):
        if query:
            if 1 not in self.s["marker_x"]:
                raise ScpiError(-221, "marker 1 is off")
            return _num(self.s["marker_x"][1])
        self.need(args, 1)
        self.s["marker_x"][1] = parse_number(args[0])

    def _marker_y(self, args, query):
        if not query:
            raise ScpiError(-113, "query only")
        if 1 not in self.s["marker_x"]:
            raise ScpiError(-221, "marker 1 is off")
        f = self.frequencies()
        k = int(np.argmin(abs(f - self.s["marker_x"][1])))
        return _num(10 * math.log10(self._current_trace()[k] / 1e-3))

    # ================================================================== settings
    def _number(self, key: str, lo: float, hi: float, auto_key: str | None = None,
                cast=float):
        def handler(args, query):
            if query:
                value = self.s[key]
                if key == "rbw":
                    value = self.rbw()
                elif key == "sweep_time":
                    value = self.sweep_time()
                elif key == "vbw" and self.s["vbw_auto"]:
                    value = self.rbw()
                return str(int(value)) if cast is int else _num(value)
            self.need(args, 1)
            value = parse_number(args[0], lo, hi)
            self.s[key] = cast(min(max(value, lo), hi))  # the X-Series clips to its range
            if auto_key:
                self.s[auto_key] = False
        return handler

    def _edge(self, which: str):
        def handler(args, query):
            if query:
                return _num(self.start if which == "start" else self.stop)
            self.need(args, 1)
            value = parse_number(args[0])
            start, stop = (value, self.stop) if which == "start" else (self.start, value)
            if not F_MIN <= start < stop <= self.f_max:
                raise ScpiError(-222, f"start {start:g} / stop {stop:g} Hz")
            self.s["center"], self.s["span"] = (start + stop) / 2, stop - start
        return handler

    def _flag(self, key: str):
        def handler(args, query):
            if query:
                return "1" if self.s[key] else "0"
            self.need(args, 1)
            self.s[key] = parse_bool(args[0])
        return handler

    def _format(self, args, query):
        if query:
            return {"ASC": "ASC,8", "REAL,32": "REAL,32", "REAL,64": "REAL,64"}[self.s["format"]]
        self.need(args, 1, 2)
        kind = parse_choice(args[0], {"ASCii": "ASC", "REAL": "REAL"})
        if kind == "REAL":
            bits = args[1].strip() if len(args) > 1 else "32"
            if bits not in ("32", "64"):
                raise ScpiError(-224, f"REAL,{bits}")
            self.s["format"] = f"REAL,{bits}"
        else:
            self.s["format"] = "ASC"

    def _choice(self, key: str, choices: dict[str, str]):
        def handler(args, query):
            if query:
                return self.s[key]
            self.need(args, 1)
            self.s[key] = parse_choice(args[0], choices)
        return handler

    def _register(self) -> None:
        c = self.command
        c("[:SENSe]:FREQuency:CENTer", self._number("center", F_MIN, 26.5e9))
        c("[:SENSe]:FREQuency:SPAN", self._number("span", 10.0, 26.5e9))
        c("[:SENSe]:FREQuency:STARt", self._edge("start"))
        c("[:SENSe]:FREQuency:STOP", self._edge("stop"))
        for bw in ("BANDwidth", "BWIDth"):
            c(f"[:SENSe]:{bw}[:RESolution]", self._number("rbw", RBW_MIN, RBW_MAX, "rbw_auto"))
            c(f"[:SENSe]:{bw}[:RESolution]:AUTO", self._flag("rbw_auto"))
            c(f"[:SENSe]:{bw}:VIDeo", self._number("vbw", 1.0, 50e6, "vbw_auto"))
            c(f"[:SENSe]:{bw}:VIDeo:AUTO", self._flag("vbw_auto"))
        c("[:SENSe]:SWEep:POINts", self._number("points", 1, 40001, cast=int))
        c("[:SENSe]:SWEep:TIME", self._number("sweep_time", 1e-6, 4000.0, "sweep_time_auto"))
        c("[:SENSe]:SWEep:TIME:AUTO", self._flag("sweep_time_auto"))
        c("[:SENSe]:AVERage:COUNt", self._number("avg_count", 1, 10000, cast=int))
        c("[:SENSe]:AVERage[:STATe]", self._flag("avg_on"))
        c("[:SENSe]:AVERage:TYPE", self._choice("avg_type", self.AVERAGE_TYPES))
        c(":INITiate:CONTinuous", self._flag("continuous"))
        c(":INITiate[:IMMediate]", self._initiate)
        c(":FORMat[:TRACe][:DATA]", self._format)
        c(":FORMat:BORDer", self._choice("border", {"NORMal": "NORM", "SWAPped": "SWAP"}))
        c(":TRACe[1][:DATA]", self._trace_data)
        c(":CALCulate[1]:MARKer[1]:MAXimum[:PEAK]", self._marker_max)
        c(":CALCulate[1]:MARKer[1]:X", self._marker_x)
        c(":CALCulate[1]:MARKer[1]:Y", self._marker_y)


class RohdeSchwarzFsvPersonality(KeysightXSeriesPersonality):
    """A Rohde & Schwarz FSV (FSV7: 10 Hz to 7 GHz) in Spectrum mode: the same measurement,
    with the FSV's own defaults and commands (R&S FSV Operating Manual, remote commands):
    691 trace points after ``*RST``, trace averaging by ``DISPlay:TRACe:MODE AVERage`` over
    ``[SENSe:]SWEep:COUNt`` sweeps, REAL,32 traces in little-endian byte order, ``INPut:ATT``,
    ``INIT:CONM``, marker state/trace/peak excursion (``CALC:MARK:STAT|TRAC|PEXC``); average
    types VIDeo (in dB, the default) and POWer (LINear, voltage averaging: not modelled)."""

    AVERAGE_TYPES = {"VIDeo": "LOG", "POWer": "RMS"}

    def __init__(self, clock: VirtualClock | None = None, device=None, device_index: int = 0,
                 rng: np.random.Generator | None = None, serial: str = "1307.9002K07/101234",
                 danl_dbm_hz: float = -150.0, **options):
        if options:
            raise TypeError(f"unknown FSV options: {', '.join(options)}")
        super().__init__(clock, device, device_index, rng, "N9010B", serial, danl_dbm_hz)
        self.f_max = 7e9
        self.idn = f"Rohde&Schwarz,FSV-7,{serial},3.40"

    def reset(self) -> None:
        super().reset()
        self.s.update(center=3.5e9, span=7e9, points=691, border="SWAP", avg_count=0,
                      attenuation=10.0, marker_on=False, marker_trace=1, excursion=6.0)

    def _trace_mode(self, args, query):
        if query:
            return self.s["trace_type"]
        self.need(args, 1)
        mode = parse_choice(args[0], {"WRITe": "WRIT", "AVERage": "AVER", "MAXHold": "MAXH",
                                      "MINHold": "MINH", "VIEW": "VIEW"})
        if mode in ("MAXH", "MINH", "VIEW"):
            raise ScpiError(-221, f"trace mode {mode} is not modelled")
        self.s["trace_type"] = mode
        self.s["avg_on"] = mode == "AVER"

    def _register(self) -> None:
        super()._register()
        c = self.command
        c("[:SENSe]:SWEep:COUNt", self._number("avg_count", 0, 32767, cast=int))
        c(":DISPlay[:WINDow[1]]:TRACe[1]:MODE", self._trace_mode)
        c(":INPut:ATTenuation", self._number("attenuation", 0.0, 70.0))
        c(":INITiate:CONMeasure", self._initiate)
        c(":CALCulate[1]:MARKer[1][:STATe]", self._flag("marker_on"))
        c(":CALCulate[1]:MARKer[1]:TRACe", self._number("marker_trace", 1, 6, cast=int))
        c(":CALCulate[1]:MARKer[1]:PEXCursion", self._number("excursion", 0.0, 80.0))

    def averages(self) -> int:
        """``SWE:COUN`` sweeps in AVERage trace mode (0 means the FSV's default, 10)."""
        if not self.s["avg_on"]:
            return 1
        return self.s["avg_count"] or 10
