"""Keithley 2450 SourceMeter in its native (SCPI2450) command set.

Reference: Keithley Model 2450 Interactive SourceMeter Reference Manual (2450-901-01), Section 6
"SCPI command reference", Section 3 "Sweep operation" / "Trigger model", Appendix B/C.

What is modelled
- Source: VOLT/CURR with level, range (+auto), ILIM / VLIM (+TRIPped?), delay (+auto), readback,
  overvoltage protection (``:SOUR:VOLT:PROT``). Compliance clamps the operating point: sourcing V
  with |I(V)| > ILIM, the device sees ``voltage_at_current(±ILIM)``; sourcing I with |V(I)| >
  VLIM, the device sees ±VLIM. Within a measurement point the device is integrated in 8
  geometric sub-steps, re-clamping after each, so a device that forms/SETs mid-point is caught.
- Sense: CURR/VOLT/RES with range (+auto), NPLC, RSENse, AZERo, averaging filter, COUNt.
- Output on/off with the off-state modes; output off -> the device sees 0 V.
- Readings: ``:READ?``, ``:MEAS:<f>?``, ``:FETC?``, ``:TRAC:TRIG`` into reading buffers
  (defbuffer1/defbuffer2 + ``:TRAC:MAKE``) with the buffer elements READ SOUR REL SEC FRAC STAT
  UNIT SOURUNIT TST DATE TIME; ``:FORM REAL|SREAL`` binary blocks, ``:FORM:BORD``.
- Trigger model: the predefined ``SimpleLoop`` / ``Empty`` and the sweep models built by
  ``:SOUR:SWE:<f>:LIN|LIN:STEP|LOG|LIST``. ``:INIT`` runs the model to completion at once on the
  virtual clock (so ``*OPC?`` / ``*WAI`` return at once and ``:TRIG:STAT?`` reads IDLE after).
  As on the instrument, a sweep model clears its buffer, turns the output ON (block 3), and turns
  it OFF at the end (block 9); with failAbort ON (the default) it stops at the first point whose
  source limit tripped (state ABORTED, output left on).

Time: each point advances the shared virtual clock by source delay + sweep delay +
conversions x NPLC / line frequency + a fixed overhead (``POINT_OVERHEAD_S``). Auto source delay
uses ``AUTO_DELAY_V_S`` / ``AUTO_DELAY_I_S`` (approximations of the manual's table).
"""

from __future__ import annotations

import math
import struct
import time as _time
from collections import deque

import numpy as np

from mocks.clock import VirtualClock
from mocks.instruments import two_terminal
from mocks.scpi import (
    ScpiError,
    ScpiPersonality,
    parse_bool,
    parse_choice,
    parse_number,
    parse_string,
)

V_RANGES = (0.02, 0.2, 2.0, 20.0, 200.0)
I_RANGES = (1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
R_RANGES = (2.0, 20.0, 200.0, 2e3, 2e4, 2e5, 2e6, 2e7, 2e8)
OVERFLOW = 9.9e37
NAN_REPLY = 9.91e37
EPOCH_S = 1_704_067_200.0  # 2024-01-01 00:00:00 UTC: the instrument clock at virtual time 0
POINT_OVERHEAD_S = 300e-6
AUTO_DELAY_V_S = 50e-6
AUTO_DELAY_I_S = {1e-8: 50e-3, 1e-7: 20e-3, 1e-6: 3e-3, 1e-5: 2e-3, 1e-4: 1e-3}
AUTO_DELAY_I_OTHER_S = 1e-3
PROTECTION = {"PROT2": 2, "PROT5": 5, "PROT10": 10, "PROT20": 20, "PROT40": 40, "PROT60": 60,
              "PROT80": 80, "PROT100": 100, "PROT120": 120, "PROT140": 140, "PROT160": 160,
              "PROT180": 180, "NONE": math.inf}
SUBSTEPS = 8
ELEMENTS = {"READING": "READ", "READ": "READ", "SOURCE": "SOUR", "SOUR": "SOUR",
            "RELATIVE": "REL", "REL": "REL", "SECONDS": "SEC", "SEC": "SEC",
            "FRACTIONAL": "FRAC", "FRAC": "FRAC", "STATUS": "STAT", "STAT": "STAT",
            "UNIT": "UNIT", "SOURUNIT": "SOURUNIT", "SOURCEUNIT": "SOURUNIT",
            "TSTAMP": "TST", "TST": "TST", "DATE": "DATE", "TIME": "TIME"}
NUMERIC_ELEMENTS = ("READ", "SOUR", "REL", "SEC", "FRAC", "STAT")
UNITS = {"CURR": "Amp DC", "VOLT": "Volt DC", "RES": "Ohm"}
STAT_QUESTIONABLE, STAT_FRONT = 1, 8
F = ("VOLT", "VOLTage"), ("CURR", "CURRent")
SENSE = ("CURR", "CURRent[:DC]"), ("VOLT", "VOLTage[:DC]"), ("RES", "RESistance")


def fmt(x: float) -> str:
    """The 2450's ASCII number format (FORM:ASC:PREC AUTO)."""
    if not math.isfinite(x):
        x = NAN_REPLY
    return f"{x:.6E}"


def _pick_range(value: float, ranges: tuple[float, ...]) -> float:
    """Smallest range that holds ``|value|`` (the instrument's range selection)."""
    for r in ranges:
        if abs(value) <= r * 1.000001:
            return r
    return ranges[-1]


def _in(x: float, lo: float, hi: float) -> float:
    if not (lo <= x <= hi):
        raise ScpiError(-222, f"{x:g} not in [{lo:g}, {hi:g}]")
    return x


class Buffer:
    """A reading buffer: parallel records, oldest dropped when full in CONTinuous fill mode."""

    def __init__(self, name: str, size: int, style: str = "STAN"):
        self.name, self.style, self.fill = name, style, "CONT"
        self.resize(size)

    def resize(self, size: int) -> None:
        self.size = size
        self.rows: deque[tuple] = deque(maxlen=size)

    def clear(self) -> None:
        self.rows.clear()

    def append(self, row: tuple) -> None:
        if self.fill == "ONCE" and len(self.rows) >= self.size:
            return
        self.rows.append(row)


class Keithley2450Personality(ScpiPersonality):
    """A Keithley 2450 (native SCPI) wired to a two-terminal device between HI and LO."""

    def __init__(self, clock: VirtualClock | None = None, device=None, device_index=0,
                 serial: str = "04512345", line_frequency: float = 50.0,
                 rng: np.random.Generator | None = None, noise_rel: float = 50e-6,
                 noise_i_abs: float = 10e-12, noise_v_abs: float = 10e-6, **options):
        if options:
            raise TypeError(f"unknown Keithley2450 options: {', '.join(options)}")
        super().__init__(clock)
        self.idn = f"KEITHLEY INSTRUMENTS,MODEL 2450,{serial},1.7.7b"
        self.device, self.device_index = device, device_index
        self.line_frequency = float(line_frequency)
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.noise_rel, self.noise_i_abs, self.noise_v_abs = noise_rel, noise_i_abs, noise_v_abs
        self._t_bias = self.clock.now
        self.buffers: dict[str, Buffer] = {}
        self.source_lists = {"VOLT": [], "CURR": []}
        self._register()
        self.reset()

    # ================================================================== state
    def reset(self) -> None:
        self.catch_up()
        self.output_on = False
        self.source_function = "VOLT"
        self.src = {
            "VOLT": dict(level=0.0, range=0.2, auto=True, limit=1.05e-4, tripped=False,
                         delay=0.0, delay_auto=True, readback=True, smode="NORM"),
            "CURR": dict(level=0.0, range=1e-4, auto=True, limit=21.0, tripped=False,
                         delay=0.0, delay_auto=True, readback=True, smode="NORM"),
        }
        self.protection = "NONE"
        self.protection_tripped = False
        self.sense_function = "CURR"
        self.sens = {
            f: dict(range=r, auto=True, nplc=1.0, rsense=False, azero=True, avg=False,
                    avg_count=10, avg_tcon="REP", ocom=False, unit=UNITS[f])
            for f, r in (("CURR", 1e-4), ("VOLT", 0.02), ("RES", 2e5))
        }
        self.sense_count = 1
        self.terminals = "FRON"
        self.format, self.border, self.asc_prec = "ASC", "SWAP", 0
        self.display = {"light": "ON50", "screen": "HOME", "digits": {}, "user": {},
                        "active": "defbuffer1"}
        self.trigger_model: dict | None = None
        self.trigger_state = ("IDLE", 0)
        self.buffers = {"defbuffer1": Buffer("defbuffer1", 100_000),
                        "defbuffer2": Buffer("defbuffer2", 100_000)}
        self.source_lists = {"VOLT": [], "CURR": []}
        self.beeps: list[tuple[float, float]] = []

    @property
    def source_level(self) -> float:
        return self.src[self.source_function]["level"]

    @property
    def device_voltage(self) -> float:
        """What the device presently sees (0 with the output off)."""
        return self._operating_point()[0]

    def wait_complete(self) -> None:
        """The trigger model runs to completion inside :INIT: nothing is ever pending."""

    def handle_message(self, message: str) -> str | None:
        with self.lock:
            reply = super().handle_message(message)
            report = getattr(self.device, "set_operating_point", None)
            if report is not None:  # devices whose state follows the bias held (RF circuits)
                v, i, _ = self._operating_point()
                report(v, i, self.device_index)
            return reply

    # ================================================================== physics
    def catch_up(self) -> None:
        """Bias the device for virtual time that passed since it was last accounted for."""
        now = self.clock.now
        dt = now - getattr(self, "_t_bias", now)
        self._t_bias = now
        if dt > 0 and self.device is not None and getattr(self, "output_on", False):
            v, _i, _t = self._operating_point()
            if v != 0.0:
                self.device.apply(v, dt, self.device_index)

    def _dev_i(self, v: float) -> float:
        return float(np.asarray(self.device.current(v, self.device_index)).reshape(-1)[0])

    def _dev_v(self, i: float) -> float:
        return float(np.asarray(self.device.voltage_at_current(i, self.device_index))
                     .reshape(-1)[0])

    def _operating_point(self, level: float | None = None) -> tuple[float, float, bool]:
        """(device voltage, device current, source limit tripped) for the present settings."""
        if not self.output_on:
            return 0.0, 0.0, False
        s = self.src[self.source_function]
        level = s["level"] if level is None else level
        vprot = PROTECTION[self.protection]
        if self.source_function == "VOLT":
            v = max(-vprot, min(vprot, level))
            ilim = s["limit"]
            if self.device is None:
                return v, 0.0, False
            return two_terminal.operating_point(self.device, self.device_index, v, ilim)
        # current source
        vlim = min(s["limit"], vprot)
        i = level
        if self.device is None:
            if i == 0.0:
                return 0.0, 0.0, False
            return math.copysign(vlim, i), 0.0, True
        v = self._dev_v(i)
        if not math.isfinite(v) or abs(v) > vlim:
            v = math.copysign(vlim, i if math.isnan(v) else v)
            i = self._dev_i(v)
            return v, i, True
        return v, i, False

    def _auto_delay(self) -> float:
        s = self.src[self.source_function]
        if self.source_function == "VOLT":
            return AUTO_DELAY_V_S
        return AUTO_DELAY_I_S.get(_pick_range(s["level"], I_RANGES) if s["auto"] else s["range"],
                                  AUTO_DELAY_I_OTHER_S)

    def _dwell(self, seconds: float) -> bool:
        """Hold the present source for ``seconds`` in geometric sub-steps; return tripped."""
        tripped = False
        if seconds <= 0:
            return self._operating_point()[2] if self.output_on else False
        if not self.output_on or self.device is None:
            self.clock.advance(seconds)
            self._t_bias = self.clock.now
            return self._operating_point()[2]
        ratio = 2.0
        weights = [ratio ** k for k in range(SUBSTEPS)]
        total = sum(weights)
        for w in weights:
            dt = seconds * w / total
            v, _i, t = self._operating_point()
            tripped |= t
            self.device.apply(v, dt, self.device_index)
            self.clock.advance(dt)
        self._t_bias = self.clock.now
        return tripped | self._operating_point()[2]

    def _conversion_time(self, func: str) -> float:
        sn = self.sens[func]
        n = sn["avg_count"] if sn["avg"] and sn["avg_tcon"] == "REP" else 1
        return n * sn["nplc"] / self.line_frequency

    def _measure_point(self, func: str, extra_delay: float = 0.0) -> tuple[float, float, int]:
        """Source-delay-measure one point; return (reading, source value, status)."""
        s = self.src[self.source_function]
        delay = extra_delay
        if self.output_on:
            delay += self._auto_delay() if s["delay_auto"] else s["delay"]
        tripped = self._dwell(delay + self._conversion_time(func) + POINT_OVERHEAD_S)
        v, i, t = self._operating_point()
        tripped = tripped or t
        s["tripped"] = tripped and self.output_on
        self.protection_tripped = (self.output_on and self.source_function == "VOLT"
                                   and abs(s["level"]) > PROTECTION[self.protection])
        # measured values: device read noise on the current, instrument noise on both
        g = self.rng.standard_normal(2)
        if self.output_on and self.device is not None and not t and i != 0.0:
            i_noisy = float(np.asarray(self.device.measure_current(v, self.device_index))
                            .reshape(-1)[0])
            ratio = i_noisy / i if math.isfinite(i_noisy) else 1.0
        else:
            ratio = 1.0
        if self.source_function == "VOLT":
            i_m = i * ratio
            v_m = v
        else:
            i_m = i
            v_m = v / ratio if ratio else v
        i_m = i_m * (1 + self.noise_rel * g[0]) + self.noise_i_abs * g[1]
        v_m = v_m * (1 + self.noise_rel * g[1]) + self.noise_v_abs * g[0]
        status = STAT_FRONT if self.terminals == "FRON" else 0
        if func == "CURR":
            reading = i_m
        elif func == "VOLT":
            reading = v_m
        else:
            reading = v_m / i_m if i_m != 0 else OVERFLOW
        sn = self.sens[func]
        if sn["auto"] and func != "RES":
            sn["range"] = _pick_range(reading, I_RANGES if func == "CURR" else V_RANGES)
        elif sn["auto"]:
            sn["range"] = _pick_range(reading, R_RANGES)
        elif abs(reading) > 1.05 * sn["range"]:
            reading = OVERFLOW
        if s["tripped"] or reading == OVERFLOW:
            status |= STAT_QUESTIONABLE
        if s["readback"] and self.output_on:
            source = v_m if self.source_function == "VOLT" else i_m
        else:
            source = s["level"] if self.output_on else 0.0
        return reading, source, status

    def _take_readings(self, buf: Buffer, func: str, count: int, extra_delay: float = 0.0
                       ) -> tuple:
        row = None
        for _ in range(count):
            reading, source, status = self._measure_point(func, extra_delay)
            row = (reading, source, self.clock.now, status, func, self.source_function)
            buf.append(row)
        return row

    # ================================================================== helpers
    def _buffer(self, args: list[str], pos: int) -> Buffer:
        name = parse_string(args[pos]) if len(args) > pos else "defbuffer1"
        try:
            return self.buffers[name]
        except KeyError:
            raise ScpiError(-224, f"no reading buffer {name!r}") from None

    def _elements(self, args: list[str]) -> list[str]:
        out = []
        for a in args:
            word = a.strip().upper()
            if word not in ELEMENTS:
                raise ScpiError(-224, f"unknown buffer element {a.strip()!r}")
            out.append(ELEMENTS[word])
        return out or ["READ"]

    def _format_rows(self, buf: Buffer, rows: list[tuple], elements: list[str]) -> str:
        first_t = buf.rows[0][2] if buf.rows else 0.0
        if self.format != "ASC":
            if any(e not in NUMERIC_ELEMENTS for e in elements):
                raise ScpiError(-221, "string elements need :FORM ASC")
            values = [self._element(r, e, first_t) for r in rows for e in elements]
            code = "d" if self.format == "REAL" else "f"
            order = ">" if self.border == "NORM" else "<"
            data = struct.pack(f"{order}{len(values)}{code}", *values)
            length = str(len(data))
            return f"#{len(length)}{length}" + data.decode("latin-1")
        out = []
        for r in rows:
            for e in elements:
                value = self._element(r, e, first_t)
                if isinstance(value, str):
                    out.append(value)
                elif e == "READ" or e == "SOUR":
                    out.append(self._fmt_reading(value))
                elif e in ("SEC", "STAT"):
                    out.append(str(int(value)))
                else:
                    out.append(f"{value:.9f}")
        return ",".join(out)

    def _fmt_reading(self, x: float) -> str:
        if self.asc_prec:
            if not math.isfinite(x):
                x = NAN_REPLY
            return f"{x:.{self.asc_prec - 1}E}"
        return fmt(x)

    @staticmethod
    def _element(row: tuple, e: str, first_t: float):
        reading, source, t, status, func, sfunc = row
        if e == "READ":
            return reading
        if e == "SOUR":
            return source
        if e == "REL":
            return t - first_t
        absolute = EPOCH_S + t
        if e == "SEC":
            return float(math.floor(absolute))
        if e == "FRAC":
            return absolute - math.floor(absolute)
        if e == "STAT":
            return float(status)
        if e == "UNIT":
            return UNITS[func]
        if e == "SOURUNIT":
            return UNITS[sfunc]
        tm = _time.gmtime(absolute)
        frac = absolute - math.floor(absolute)
        if e == "DATE":
            return _time.strftime("%m/%d/%Y", tm)
        if e == "TIME":
            return _time.strftime("%H:%M:%S", tm) + f"{frac:.3f}"[1:]
        return _time.strftime("%m/%d/%Y %H:%M:%S", tm) + f"{frac:.9f}"[1:]  # TST

    def _setting(self, store: dict, key: str, parse, show, after=None):
        def handler(args, query):
            if query:
                return show(store[key])
            self.need(args, 1)
            store[key] = parse(args[0])
            if after is not None:
                after()
            return None
        return handler

    def _number(self, store: dict, key: str, lo: float, hi: float, default=None, after=None,
                snap=None):
        def parse(text):
            x = _in(parse_number(text, lo, hi, default), lo, hi)
            return snap(x) if snap else x
        return self._setting(store, key, parse, fmt, after)

    def _flag(self, store: dict, key: str, after=None):
        return self._setting(store, key, parse_bool, lambda b: "1" if b else "0", after)

    # ================================================================== registration
    def _register(self) -> None:
        c = self.command
        c(":SOURce[1]:FUNCtion[:MODE]", self._source_function)
        for f, kw in F:
            lvl_max, ranges = (210.0, V_RANGES) if f == "VOLT" else (1.05, I_RANGES)
            c(f":SOURce[1]:{kw}[:LEVel][:IMMediate][:AMPLitude]", self._level(f, lvl_max))
            c(f":SOURce[1]:{kw}:RANGe:AUTO", self._src_flag(f, "auto"))
            c(f":SOURce[1]:{kw}:RANGe", self._src_range(f, ranges))
            lim, lo, hi = (("ILIMit", 1e-9, 1.05) if f == "VOLT" else ("VLIMit", 0.02, 210.0))
            c(f":SOURce[1]:{kw}:{lim}[:LEVel]", self._src_number(f, "limit", lo, hi))
            c(f":SOURce[1]:{kw}:{lim}[:LEVel]:TRIPped", self._tripped(f))
            c(f":SOURce[1]:{kw}:DELay:AUTO", self._src_flag(f, "delay_auto"))
            c(f":SOURce[1]:{kw}:DELay", self._src_number(f, "delay", 0.0, 10_000.0,
                                                           after=self._delay_set(f)))
            c(f":SOURce[1]:{kw}:READ:BACK", self._src_flag(f, "readback"))
            c(f":OUTPut[1]:{kw}:SMODe", self._smode(f))
            c(f":SOURce[1]:SWEep:{kw}:LINear:STEP", self._sweep(f, "STEP"))
            c(f":SOURce[1]:SWEep:{kw}:LINear", self._sweep(f, "LIN"))
            c(f":SOURce[1]:SWEep:{kw}:LOG", self._sweep(f, "LOG"))
            c(f":SOURce[1]:SWEep:{kw}:LIST", self._sweep_list(f))
            c(f":SOURce[1]:LIST:{kw}:APPend", self._list(f, append=True))
            c(f":SOURce[1]:LIST:{kw}:POINts", self._list_points(f))
            c(f":SOURce[1]:LIST:{kw}", self._list(f, append=False))
        c(":SOURce[1]:VOLTage:PROTection[:LEVel]", self._protection)
        c(":SOURce[1]:VOLTage:PROTection[:LEVel]:TRIPped", self._protection_tripped)
        c("[:SENSe[1]]:FUNCtion[:ON]", self._sense_function)
        c("[:SENSe[1]]:COUNt", self._sense_count)
        c("[:SENSe[1]]:AZERo:ONCE", self._azero_once)
        for f, kw in SENSE:
            ranges = {"CURR": I_RANGES, "VOLT": V_RANGES, "RES": R_RANGES}[f]
            c(f"[:SENSe[1]]:{kw}:RANGe:AUTO", self._sens_flag(f, "auto"))
            c(f"[:SENSe[1]]:{kw}:RANGe[:UPPer]", self._sens_range(f, ranges))
            c(f"[:SENSe[1]]:{kw}:NPLCycles", self._sens_number(f, "nplc", 0.01, 10.0, 1.0))
            c(f"[:SENSe[1]]:{kw}:RSENse", self._sens_flag(f, "rsense"))
            c(f"[:SENSe[1]]:{kw}:AZERo[:STATe]", self._sens_flag(f, "azero"))
            c(f"[:SENSe[1]]:{kw}:AVERage:COUNt", self._sens_number(f, "avg_count", 1, 100, 10,
                                                                   snap=int, fmt_=str))
            c(f"[:SENSe[1]]:{kw}:AVERage:TCONtrol", self._sens_tcon(f))
            c(f"[:SENSe[1]]:{kw}:AVERage[:STATe]", self._sens_flag(f, "avg"))
            if f == "RES":
                c("[:SENSe[1]]:RESistance:OCOMpensated", self._sens_flag(f, "ocom"))
            c(f":MEASure:{kw}", self._measure(f))
        c(":OUTPut[1][:STATe]", self._output)
        c(":MEASure", self._measure(None))
        c(":READ", self._read)
        c(":FETCh", self._fetch)
        c(":INITiate[:IMMediate]", self._init)
        c(":ABORt", self._abort)
        c(":TRIGger:LOAD", self._trig_load)
        c(":TRIGger:STATe", self._trig_state)
        c(":TRACe:MAKE", self._trace_make)
        c(":TRACe:DELete", self._trace_delete)
        c(":TRACe:POINts", self._trace_points)
        c(":TRACe:CLEar", self._trace_clear)
        c(":TRACe:ACTual", self._trace_actual)
        c(":TRACe:ACTual:STARt", self._trace_start)
        c(":TRACe:ACTual:END", self._trace_end)
        c(":TRACe:DATA", self._trace_data)
        c(":TRACe:TRIGger", self._trace_trigger)
        c(":TRACe:FILL:MODE", self._trace_fill)
        for stat, fn in (("AVERage", np.mean), ("MINimum", np.min), ("MAXimum", np.max),
                         ("STDDev", lambda a: np.std(a, ddof=1) if len(a) > 1 else 0.0)):
            c(f":TRACe:STATistics:{stat}", self._trace_stat(fn))
        c(":TRACe:STATistics:CLEar", self._trace_clear)
        c(":FORMat[:DATA]", self._format_data)
        c(":FORMat:BORDer", self._format_border)
        c(":FORMat:ASCii:PRECision", self._format_prec)
        c(":SYSTem:LFRequency", self._lfr)
        c(":SYSTem:BEEPer[:IMMediate]", self._beep)
        c(":ROUTe:TERMinals", self._terminals)
        c(":STATus:PRESet", lambda a, q: self._no_query(q) or self._stat_preset())
        c(":DISPlay:LIGHt:STATe", self._display_light)
        c(":DISPlay:SCReen", self._display_screen)
        c(":DISPlay:CLEar", lambda a, q: self._no_query(q) or self.display["user"].clear())
        c(":DISPlay:USER[1]:TEXT[:DATA]", self._display_text(1))
        c(":DISPlay:USER[2]:TEXT[:DATA]", self._display_text(2))
        c(":DISPlay:BUFFer:ACTive", self._display_buffer)
        for f, kw in SENSE:
            c(f":DISPlay:{kw}:DIGits", self._display_digits(f))

    @staticmethod
    def _no_query(query: bool) -> None:
        if query:
            raise ScpiError(-113, "command only")

    # ================================================================== source handlers
    def _source_function(self, args, query):
        if query:
            return self.source_function
        self.need(args, 1)
        new = parse_choice(args[0], {"VOLTage": "VOLT", "CURRent": "CURR"})
        if new != self.source_function:
            # changing the source function turns the output off (manual: output-off on change)
            self.output_on = False
            self.source_function = new
        return None

    def _level(self, f, lvl_max):
        def handler(args, query):
            s = self.src[f]
            if query:
                return fmt(s["level"])
            self.need(args, 1)
            x = _in(parse_number(args[0], -lvl_max, lvl_max, 0.0), -lvl_max, lvl_max)
            s["level"] = x
            if s["auto"]:
                s["range"] = _pick_range(x, V_RANGES if f == "VOLT" else I_RANGES)
            return None
        return handler

    def _src_flag(self, f, key):
        def handler(args, query):
            return self._flag(self.src[f], key)(args, query)
        return handler

    def _src_number(self, f, key, lo, hi, after=None):
        def handler(args, query):
            return self._number(self.src[f], key, lo, hi, after=after)(args, query)
        return handler

    def _delay_set(self, f):
        def after():
            self.src[f]["delay_auto"] = False
        return after

    def _src_range(self, f, ranges):
        def handler(args, query):
            s = self.src[f]
            if query:
                return fmt(s["range"])
            self.need(args, 1)
            x = _in(parse_number(args[0], ranges[0], ranges[-1], ranges[-1]),
                    -ranges[-1] * 1.05, ranges[-1] * 1.05)
            s["range"] = _pick_range(x, ranges)
            s["auto"] = False
            return None
        return handler

    def _tripped(self, f):
        def handler(args, query):
            if not query:
                raise ScpiError(-113, "TRIPped is a query")
            s = self.src[f]
            tripped = s["tripped"] or (self.output_on and self.source_function == f
                                       and self._operating_point()[2])
            return "1" if tripped else "0"
        return handler

    def _smode(self, f):
        choices = {"NORMal": "NORM", "HIMPedance": "HIMP", "ZERO": "ZERO", "GUARd": "GUAR"}

        def handler(args, query):
            return self._setting(self.src[f], "smode", lambda t: parse_choice(t, choices),
                                 str)(args, query)
        return handler

    def _protection(self, args, query):
        if query:
            return self.protection
        self.need(args, 1)
        word = args[0].strip().upper()
        if word not in PROTECTION:
            raise ScpiError(-224, f"protection level {args[0]!r}")
        self.protection = word
        return None

    def _protection_tripped(self, args, query):
        return "1" if self.protection_tripped else "0"

    def _output(self, args, query):
        if query:
            return "1" if self.output_on else "0"
        self.need(args, 1)
        self.output_on = parse_bool(args[0])
        if not self.output_on:
            for s in self.src.values():
                s["tripped"] = False
        return None

    # ================================================================== sense handlers
    def _sense_function(self, args, query):
        if query:
            return f'"{self.sense_function}:DC"' if self.sense_function != "RES" else '"RES"'
        self.need(args, 1)
        name = parse_string(args[0]).upper()
        table = {"CURR": "CURR", "CURRENT": "CURR", "CURR:DC": "CURR", "CURRENT:DC": "CURR",
                 "VOLT": "VOLT", "VOLTAGE": "VOLT", "VOLT:DC": "VOLT", "VOLTAGE:DC": "VOLT",
                 "RES": "RES", "RESISTANCE": "RES"}
        if name not in table:
            raise ScpiError(-224, f"measure function {name!r}")
        self.sense_function = table[name]
        return None

    def _sense_count(self, args, query):
        if query:
            return str(self.sense_count)
        self.need(args, 1)
        self.sense_count = int(_in(parse_number(args[0], 1, 300_000, 1), 1, 300_000))
        return None

    def _azero_once(self, args, query):
        self._no_query(query)
        self.clock.advance(self.sens[self.sense_function]["nplc"] / self.line_frequency)
        return None

    def _sens_flag(self, f, key):
        def handler(args, query):
            return self._flag(self.sens[f], key)(args, query)
        return handler

    def _sens_number(self, f, key, lo, hi, default, snap=None, fmt_=None):
        def handler(args, query):
            if query and fmt_ is not None:
                return fmt_(self.sens[f][key])
            return self._number(self.sens[f], key, lo, hi, default, snap=snap)(args, query)
        return handler

    def _sens_range(self, f, ranges):
        def handler(args, query):
            sn = self.sens[f]
            if query:
                return fmt(sn["range"])
            self.need(args, 1)
            top = ranges[-1] * 1.05
            x = _in(parse_number(args[0], ranges[0], ranges[-1], ranges[-1]), -top, top)
            sn["range"] = _pick_range(x, ranges)
            sn["auto"] = False
            return None
        return handler

    def _sens_tcon(self, f):
        def handler(args, query):
            return self._setting(self.sens[f], "avg_tcon",
                                 lambda t: parse_choice(t, {"REPeat": "REP", "MOVing": "MOV"}),
                                 str)(args, query)
        return handler

    # ================================================================== measurement
    def _measure(self, func):
        def handler(args, query):
            if not query:
                raise ScpiError(-113, "MEASure is a query")
            if func is not None:
                self.sense_function = func
            buf = self._buffer(args, 0)
            elements = self._elements(args[1:])
            row = self._take_readings(buf, self.sense_function, self.sense_count)
            return self._format_rows(buf, [row], elements)
        return handler

    def _read(self, args, query):
        if not query:
            raise ScpiError(-113, "READ is a query")
        buf = self._buffer(args, 0)
        elements = self._elements(args[1:])
        row = self._take_readings(buf, self.sense_function, self.sense_count)
        return self._format_rows(buf, [row], elements)

    def _fetch(self, args, query):
        if not query:
            raise ScpiError(-113, "FETCh is a query")
        buf = self._buffer(args, 0)
        elements = self._elements(args[1:])
        if not buf.rows:
            raise ScpiError(-230, "no readings in buffer")
        return self._format_rows(buf, [buf.rows[-1]], elements)

    def _trace_trigger(self, args, query):
        self._no_query(query)
        buf = self._buffer(args, 0)
        self._take_readings(buf, self.sense_function, self.sense_count)
        return None

    # ================================================================== trigger model
    def _trig_load(self, args, query):
        self._no_query(query)
        self.need(args, 1, 10)
        name = parse_string(args[0]).upper()
        if name == "EMPTY":
            self.need(args, 1)
            self.trigger_model = None
        elif name == "SIMPLELOOP":
            self.need(args, 2, 4)
            count = int(_in(parse_number(args[1]), 1, 268_435_455))
            delay = _in(parse_number(args[2]), 0.0, 10_000.0) if len(args) > 2 else 0.0
            buf = self._buffer(args, 3)
            self.trigger_model = dict(kind="loop", count=count, delay=delay, buffer=buf.name)
        else:
            raise ScpiError(-224, f"trigger model template {name!r} not modelled")
        self.trigger_state = ("IDLE", 0)
        return None

    def _trig_state(self, args, query):
        state, block = self.trigger_state
        return f"{state};{state};{block}"

    def _abort(self, args, query):
        self._no_query(query)
        return None

    def _trg(self, args, query):
        return None  # the modelled trigger models have no wait-for-command blocks

    def _init(self, args, query):
        self._no_query(query)
        model = self.trigger_model
        if model is None:
            return None
        buf = self.buffers.get(model["buffer"])
        if buf is None:
            raise ScpiError(-221, f"buffer {model['buffer']!r} was deleted")
        if model["kind"] == "loop":
            buf.clear()
            self._take_readings(buf, self.sense_function, model["count"], model["delay"])
            self.trigger_state = ("IDLE", 4)
            return None
        # sweep: 1 BUFFER_CLEAR, 2 CONFIG_RECALL, 3 SOURCE_OUTPUT ON, 4 DELAY, 5 MEASURE,
        # 6 CONFIG_NEXT, 7 BRANCH_COUNTER (points), 8 BRANCH_COUNTER (count), 9 SOURCE_OUTPUT OFF
        f = model["function"]
        if f != self.source_function:
            self.source_function = f
        s = self.src[f]
        buf.clear()
        self.output_on = True
        for _ in range(model["count"]):
            for level in model["levels"]:
                s["level"] = level
                if s["auto"]:
                    s["range"] = _pick_range(level, V_RANGES if f == "VOLT" else I_RANGES)
                self._take_readings(buf, self.sense_function, 1, model["delay"])
                if model["fail_abort"] and s["tripped"]:
                    self.trigger_state = ("ABORTED", 5)
                    return None
        self.output_on = False
        self.trigger_state = ("IDLE", 9)
        return None

    def _sweep(self, f, kind):
        lvl_max = 210.0 if f == "VOLT" else 1.05

        def handler(args, query):
            self._no_query(query)
            n_extra = 1 if kind == "LOG" else 0
            self.need(args, 3, 9 + n_extra)
            start = _in(parse_number(args[0]), -lvl_max, lvl_max)
            stop = _in(parse_number(args[1]), -lvl_max, lvl_max)
            if kind == "STEP":
                step = parse_number(args[2])
                if step <= 0 or step > abs(stop - start) and stop != start:
                    raise ScpiError(-221, "step size does not fit start/stop")
                n = int(math.floor(abs(stop - start) / step + 1e-9)) + 1 if step else 1
                direction = 1.0 if stop >= start else -1.0
                levels = [start + direction * k * step for k in range(n)]
            else:
                n = int(_in(parse_number(args[2]), 2, 1_000_000))
                if kind == "LIN":
                    levels = list(np.linspace(start, stop, n))
                else:
                    asym = parse_number(args[9]) if len(args) > 9 else 0.0
                    a, b = start - asym, stop - asym
                    if a == 0 or b == 0 or (a > 0) != (b > 0):
                        raise ScpiError(-221, "log sweep start/stop must share a sign")
                    levels = list(asym + np.geomspace(a, b, n))
            self._load_sweep(f, [float(x) for x in levels], args[3:9])
            return None
        return handler

    def _load_sweep(self, f, levels, rest):
        """rest = [delay, count, rangeType, failAbort, dual, "buffer"] (any prefix)."""
        delay = parse_number(rest[0]) if len(rest) > 0 else -1.0
        if delay != -1.0:
            _in(delay, 0.0, 10_000.0)
        count = int(_in(parse_number(rest[1]), 1, 268_435_455)) if len(rest) > 1 else 1
        if len(rest) > 2:
            parse_choice(rest[2], {"AUTO": "AUTO", "BEST": "BEST", "FIXed": "FIX"})
        fail_abort = parse_bool(rest[3]) if len(rest) > 3 else True
        dual = parse_bool(rest[4]) if len(rest) > 4 else False
        buf = self._buffer(rest, 5)
        if dual:
            levels = levels + levels[::-1]
        self.trigger_model = dict(kind="sweep", function=f, levels=levels,
                                  delay=0.0 if delay == -1.0 else delay, count=count,
                                  fail_abort=fail_abort, buffer=buf.name)
        self.trigger_state = ("IDLE", 0)

    def _sweep_list(self, f):
        def handler(args, query):
            self._no_query(query)
            self.need(args, 1, 5)
            values = self.source_lists[f]
            start = int(parse_number(args[0]))
            if not values:
                raise ScpiError(-221, "source configuration list is empty")
            _in(start, 1, len(values))
            rest = [args[1] if len(args) > 1 else "-1", args[2] if len(args) > 2 else "1",
                    "BEST", args[3] if len(args) > 3 else "ON", "OFF"]
            if len(args) > 4:
                rest.append(args[4])
            self._load_sweep(f, list(values[start - 1:]), rest)
            return None
        return handler

    def _list(self, f, append):
        lvl_max = 210.0 if f == "VOLT" else 1.05

        def handler(args, query):
            if query:
                if append:
                    raise ScpiError(-113, "APPend is a command")
                return ",".join(fmt(x) for x in self.source_lists[f])
            self.need(args, 1, 100_000)
            values = [_in(parse_number(a), -lvl_max, lvl_max) for a in args]
            if append:
                self.source_lists[f].extend(values)
            else:
                self.source_lists[f] = values
            return None
        return handler

    def _list_points(self, f):
        def handler(args, query):
            if not query:
                raise ScpiError(-113, "POINts is a query")
            return str(len(self.source_lists[f]))
        return handler

    # ================================================================== buffers
    def _trace_make(self, args, query):
        self._no_query(query)
        self.need(args, 2, 3)
        name = parse_string(args[0])
        if name in self.buffers or not name or len(name) > 31:
            raise ScpiError(-221, f"buffer name {name!r} in use or invalid")
        size = int(_in(parse_number(args[1]), 10, 7_000_000))
        style = "STAN"
        if len(args) > 2:
            style = parse_choice(args[2], {"STANdard": "STAN", "COMPact": "COMP", "FULL": "FULL",
                                           "WRITable": "WRIT", "FULLWRITable": "FULLWRIT"})
        self.buffers[name] = Buffer(name, size, style)
        return None

    def _trace_delete(self, args, query):
        self._no_query(query)
        self.need(args, 1)
        name = parse_string(args[0])
        if name in ("defbuffer1", "defbuffer2"):
            raise ScpiError(-221, "default buffers cannot be deleted")
        if self.buffers.pop(name, None) is None:
            raise ScpiError(-224, f"no reading buffer {name!r}")
        return None

    def _trace_points(self, args, query):
        if query:
            return str(self._buffer(args, 0).size)
        self.need(args, 1, 2)
        buf = self._buffer(args, 1)
        buf.resize(int(_in(parse_number(args[0]), 1, 7_000_000)))
        return None

    def _trace_clear(self, args, query):
        self._no_query(query)
        self.need(args, 0, 1)
        self._buffer(args, 0).clear()
        return None

    def _trace_actual(self, args, query):
        return str(len(self._buffer(args, 0).rows))

    def _trace_start(self, args, query):
        return "1" if self._buffer(args, 0).rows else "0"

    def _trace_end(self, args, query):
        return str(len(self._buffer(args, 0).rows))

    def _trace_data(self, args, query):
        if not query:
            raise ScpiError(-113, "TRACe:DATA is a query on the 2450 (WRITable buffers aside)")
        buf = self._buffer(args, 2)
        n = len(buf.rows)
        if len(args) < 2:
            if len(args) == 1:
                raise ScpiError(-109, "start and end indices")
            start, end = 1, n
        else:
            start, end = int(parse_number(args[0])), int(parse_number(args[1]))
        if n == 0 or not (1 <= start <= end <= n):
            raise ScpiError(-222, f"indices {start}..{end} outside 1..{n}")
        rows = [buf.rows[k] for k in range(start - 1, end)]
        return self._format_rows(buf, rows, self._elements(args[3:]))

    def _trace_fill(self, args, query):
        if query:
            return self._buffer(args, 0).fill
        self.need(args, 1, 2)
        self._buffer(args, 1).fill = parse_choice(args[0], {"CONTinuous": "CONT", "ONCE": "ONCE"})
        return None

    def _trace_stat(self, fn):
        def handler(args, query):
            buf = self._buffer(args, 0)
            if not buf.rows:
                return fmt(NAN_REPLY)
            return fmt(float(fn(np.array([r[0] for r in buf.rows]))))
        return handler

    # ================================================================== format, system, display
    def _format_data(self, args, query):
        if query:
            return {"ASC": "ASC", "REAL": "REAL", "SRE": "SRE"}[self.format]
        self.need(args, 1)
        self.format = parse_choice(args[0], {"ASCii": "ASC", "REAL": "REAL", "SREal": "SRE"})
        return None

    def _format_border(self, args, query):
        if query:
            return self.border
        self.need(args, 1)
        self.border = parse_choice(args[0], {"NORMal": "NORM", "SWAPped": "SWAP"})
        return None

    def _format_prec(self, args, query):
        if query:
            return str(self.asc_prec) if self.asc_prec else "0"
        self.need(args, 1)
        word = args[0].strip().upper()
        self.asc_prec = 0 if word in ("AUTO", "0") else int(_in(parse_number(word), 1, 16))
        return None

    def _lfr(self, args, query):
        if not query:
            raise ScpiError(-113, "LFRequency is a query (the 2450 detects it)")
        return f"{self.line_frequency:g}"

    def _beep(self, args, query):
        self._no_query(query)
        self.need(args, 2)
        freq = _in(parse_number(args[0]), 20.0, 8000.0)
        dur = _in(parse_number(args[1]), 0.001, 100.0)
        self.beeps.append((freq, dur))
        return None

    def _terminals(self, args, query):
        if query:
            return self.terminals
        self.need(args, 1)
        new = parse_choice(args[0], {"FRONt": "FRON", "REAR": "REAR"})
        if new != self.terminals:
            self.output_on = False  # switching terminals turns the output off
            self.terminals = new
        return None

    def _stat_preset(self) -> None:
        self.ese = 0
        self.sre = 0

    def _display_light(self, args, query):
        choices = {"ON100": "ON100", "ON75": "ON75", "ON50": "ON50", "ON25": "ON25",
                   "OFF": "OFF", "BLACkout": "BLACkout"}
        return self._setting(self.display, "light", lambda t: parse_choice(t, choices),
                             str)(args, query)

    def _display_screen(self, args, query):
        self._no_query(query)
        self.need(args, 1)
        self.display["screen"] = parse_choice(args[0], {
            "HOME": "HOME", "HOMELargereading": "HOME_LARGE", "READingtable": "READING_TABLE",
            "GRAPh": "GRAPH", "HISTogram": "HISTOGRAM", "SWIPEGraph": "SWIPE_GRAPH",
            "SWIPESettings": "SWIPE_SETTINGS", "SWIPEStatistics": "SWIPE_STATISTICS",
            "SWIPEUser": "SWIPE_USER", "USER": "SWIPE_USER"})
        return None

    def _display_text(self, line):
        def handler(args, query):
            self._no_query(query)
            self.need(args, 1)
            text = parse_string(args[0])
            self.display["user"][line] = text[: 20 if line == 1 else 32]
            return None
        return handler

    def _display_buffer(self, args, query):
        if query:
            return self.display["active"]
        self.need(args, 1)
        self.display["active"] = self._buffer(args, 0).name
        return None

    def _display_digits(self, f):
        def handler(args, query):
            digits = self.display["digits"]
            if query:
                return str(digits.get(f, 6))
            self.need(args, 1)
            digits[f] = int(_in(parse_number(args[0], 3, 6, 6), 3, 6))
            return None
        return handler
