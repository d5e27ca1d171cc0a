"""Keysight MXG/EXG analog signal generators (N5183B, N5173B) in their SCPI command set.

Reference: Keysight X-Series Signal Generators SCPI Command Reference (N5180-90056), chapters
"Basic Function Commands" (frequency, power, list/step sweep, trigger), "Analog Commands" (AM,
pulse modulation, LF output) and "System Commands"; the MXG list mode runs ``:FREQ:MODE LIST``
/ ``:POW:MODE LIST`` through ``:LIST:FREQ`` / ``:LIST:POW`` / ``:LIST:DWEL`` when a sweep is
initiated (``:INIT``), each point waiting for its point trigger (``:LIST:TRIG:SOUR``): ``BUS``
(``*TRG`` or ``:TRIG``), or ``IMMediate`` (the point's dwell time, here on the virtual clock).

What is modelled
- CW frequency (9 kHz to the model's maximum) and power (−130 dBm to +20 dBm with the step
  attenuator option), RF output on/off, the modulation master switch; AM (depth, source,
  internal rate and shape), pulse modulation (source, internal waveform, rate), the LF output.
- Step sweep settings (start/stop/centre, points, dwell) as stored values.
- List sweep of up to 3201 points, lists of length 1 broadcast; the sweep trigger
  (``:TRIG:SOUR``: stored; a sweep starts at ``:INIT``) and the point trigger
  (``:LIST:TRIG:SOUR``); ``:INIT:CONT``; ``:ABOR``. Lists of different lengths fail at
  ``:INIT`` with -221 (settings conflict); a list value out of range fails with -222.
  After the last point a single sweep rests on it.
- The wired device (an :class:`~mocks.devices.spintronics.RfCircuit`, input ``device_index``)
  sees the carrier's frequency and power whenever the RF output is on.

Time: every change of the output frequency or power costs ``SWITCH_S`` of virtual time (list
mode switching speed, typical, without the fast-switching option); an IMMediate list dwells
``:LIST:DWEL`` per point and ``*OPC?`` waits for the sweep's end.
"""

from __future__ import annotations

import numpy as np

from mocks.clock import VirtualClock
from mocks.scpi import ScpiError, ScpiPersonality, parse_bool, parse_choice, parse_number

SWITCH_S = 1e-3
MAX_LIST = 3201
MODELS = {  # model -> (maximum frequency Hz, options)
    "N5183B": (20e9, "520,1E1,UNT,UNW"),
    "N5173B": (20e9, "520,1E1,UNW"),
}
F_MIN, P_MIN, P_MAX = 9e3, -130.0, 20.0


def dbm_to_w(dbm):
    return 10.0 ** (np.asarray(dbm, dtype=float) / 10.0) * 1e-3


def _freq(x: float) -> str:
    return f"{x:+.14E}"


def _pow(x: float) -> str:
    return f"{x:+.8E}"


def _flag(x: bool) -> str:
    return "1" if x else "0"


class RfGeneratorPersonality(ScpiPersonality):
    """What every analog RF generator mock shares: CW frequency and power, RF output,
    modulation settings, the list-sweep engine, and the wiring to input ``device_index`` of an
    RF circuit. A model subclass registers its own command headers in ``_register``.

    List point advance (``list_trigger``): ``IMM`` on the dwell times (virtual clock), ``BUS``
    one point per ``*TRG``, ``STEP`` the point the instrument is told (an index command)."""

    p_min, p_max = P_MIN, P_MAX

    def __init__(self, clock: VirtualClock | None, device, device_index: int, f_max: float,
                 idn: str):
        super().__init__(clock)
        self.f_max, self.idn = f_max, idn
        self.device, self.device_index = device, device_index
        self.step, self.am, self.pulm, self.lfo = {}, {}, {}, {}  # handlers keep these dicts
        self._register()
        self.reset()

    def _register(self) -> None:
        raise NotImplementedError

    # ================================================================== state
    def reset(self) -> None:
        self.cw_freq, self.cw_power = 1e9, self.p_min
        self.rf_on = False
        self.mod_on = True  # the master modulation switch is ON after preset (no format on)
        self.freq_mode, self.pow_mode = "CW", "FIX"
        self.list_freq, self.list_pow, self.list_dwell = [1e9], [self.p_min], [2e-3]
        self.list_trigger, self.sweep_trigger, self.list_type = "IMM", "IMM", "LIST"
        self.list_direction, self.retrace = "UP", True
        self.continuous = False
        self.sweep: dict | None = None  # running list: start time, points, index, done
        self.step.update({"STAR": 100e6, "STOP": 1e9, "CENT": 550e6, "POIN": 101, "DWEL": 2e-3,
                          "PSTAR": self.p_min, "PSTOP": self.p_min})
        self.am.update({"state": False, "depth": 0.1, "source": "INT", "freq": 400.0,
                        "shape": "SINE"})
        self.pulm.update({"state": False, "source": "INT", "internal": "SQU", "freq": 1e3})
        self.lfo.update({"state": False, "source": "INT", "amplitude": 0.0})
        self._last_output = None
        self._report()

    def wait_complete(self) -> None:
        """An IMMediate list sweep runs to its end on the virtual clock."""
        s = self.sweep
        if s is not None and not s["done"] and self.list_trigger == "IMM":
            end = s["t0"] + sum(s["dwell"])
            if end > self.clock.now:
                self.clock.advance(end - self.clock.now)
            self.catch_up()

    def handle_message(self, message: str) -> str | None:
        with self.lock:
            reply = super().handle_message(message)
            self._report()
            return reply

    # ================================================================== output
    def output(self) -> tuple[float, float]:
        """(frequency Hz, power dBm) at the RF output now."""
        f, p = self.cw_freq, self.cw_power
        s = self.sweep
        if s is not None:
            k = s["index"]
            if self.freq_mode == "LIST":
                f = s["freq"][k]
            if self.pow_mode == "LIST":
                p = s["pow"][k]
        return f, p

    def _report(self) -> None:
        f, p = self.output()
        state = (f, p, self.rf_on)
        if state != self._last_output:
            if self._last_output is not None:
                self.clock.advance(SWITCH_S)
            self._last_output = state
        if self.device is not None:
            self.device.set_rf(self.device_index, f, float(dbm_to_w(p)), self.rf_on)

    # ================================================================== list sweep
    def _list_points(self) -> dict[str, list[float]]:
        lists = {"freq": self.list_freq if self.freq_mode == "LIST" else [self.cw_freq],
                 "pow": self.list_pow if self.pow_mode == "LIST" else [self.cw_power],
                 "dwell": self.list_dwell}
        n = max(len(v) for v in lists.values())
        for name, values in lists.items():
            if len(values) not in (1, n):
                raise ScpiError(-221, f"list {name} has {len(values)} points, others {n}")
            lists[name] = list(values) * n if len(values) == 1 else list(values)
        if self.list_direction == "DOWN":
            lists = {k: v[::-1] for k, v in lists.items()}
        return lists

    def _initiate(self, args, query):
        self._no_query(query)
        if self.freq_mode != "LIST" and self.pow_mode != "LIST":
            return None  # nothing to sweep in CW mode
        self.sweep = {**self._list_points(), "t0": self.clock.now, "index": 0, "done": False}

    def catch_up(self) -> None:
        """An IMMediate list sweep moves on with the virtual time since the last message."""
        s = self.sweep
        if s is None or s["done"] or self.list_trigger != "IMM":
            return
        ends = s["t0"] + np.cumsum(s["dwell"])
        k = int(np.searchsorted(ends, self.clock.now, side="right"))
        self._goto(min(k, len(ends)))

    def _goto(self, k: int) -> None:
        s = self.sweep
        n = len(s["freq"])
        if k < n:
            s["index"] = k
            return
        if self.continuous:
            s.update(index=0, t0=self.clock.now)
        else:
            s.update(index=n - 1, done=True)

    def _trigger(self, args, query):
        s = self.sweep
        if s is None or s["done"] or self.list_trigger != "BUS":
            return None  # a trigger with nothing waiting for it is ignored
        self._goto(s["index"] + 1)

    def _trg(self, args, query):
        self._trigger(args, query)

    def _abort(self, args, query):
        self._no_query(query)
        self.sweep = None

    # ================================================================== handlers
    @staticmethod
    def _no_query(query: bool) -> None:
        if query:
            raise ScpiError(-113, "no query form")

    def _number(self, store: dict, key: str, lo: float, hi: float, fmt=_freq, after=None):
        def handler(args, query):
            if query:
                return fmt(store[key])
            self.need(args, 1)
            value = parse_number(args[0], lo, hi)
            if not lo <= value <= hi:
                raise ScpiError(-222, f"{value:g} outside [{lo:g}, {hi:g}]")
            store[key] = value
            if after is not None:
                after()
        return handler

    def _choice(self, store: dict, key: str, choices: dict[str, str]):
        def handler(args, query):
            if query:
                return store[key]
            self.need(args, 1)
            store[key] = parse_choice(args[0], choices)
        return handler

    def _bool(self, store: dict, key: str):
        def handler(args, query):
            if query:
                return _flag(store[key])
            self.need(args, 1)
            store[key] = parse_bool(args[0])
        return handler

    def _values(self, attr: str, lo: float, hi: float, fmt):
        def handler(args, query):
            if query:
                return ",".join(fmt(v) for v in getattr(self, attr))
            if not args:
                raise ScpiError(-109)
            if len(args) > MAX_LIST:
                raise ScpiError(-222, f"{len(args)} points (at most {MAX_LIST})")
            values = [parse_number(a) for a in args]
            bad = [v for v in values if not lo <= v <= hi]
            if bad:
                raise ScpiError(-222, f"{bad[0]:g} outside [{lo:g}, {hi:g}]")
            setattr(self, attr, values)
        return handler

    def _points(self, attr: str):
        def handler(args, query):
            if not query:
                raise ScpiError(-113, "query only")
            return str(len(getattr(self, attr)))
        return handler

    def _attr_setting(self, attr: str, parse, show):
        def handler(args, query):
            if query:
                return show(getattr(self, attr))
            self.need(args, 1)
            setattr(self, attr, parse(args[0]))
        return handler

class KeysightMxgPersonality(RfGeneratorPersonality):
    """An MXG/EXG analog signal generator (N5183B, N5173B) in its SCPI command set."""

    def __init__(self, clock: VirtualClock | None = None, device=None, device_index: int = 0,
                 rng=None, model: str = "N5183B", serial: str = "MY53050123", **options):
        if options:
            raise TypeError(f"unknown MXG options: {', '.join(options)}")
        if model not in MODELS:
            raise ValueError(f"model {model!r} is not one of {', '.join(MODELS)}")
        self.model = model
        f_max, self.options = MODELS[model]
        super().__init__(clock, device, device_index, f_max,
                         f"Keysight Technologies,{model},{serial},B.01.86")

    def _opt(self, args, query):
        return self.options

    def _lfo_amplitude(self, args, query):
        if query:
            return f"{self.lfo['amplitude']:+.8E}"
        self.need(args, 1)
        text = args[0].strip().upper()
        if text.endswith("VP"):  # volts peak
            text = text[:-2]
        value = parse_number(text)
        if not 0 <= value <= 3.5:
            raise ScpiError(-222, f"{value:g} Vp outside [0, 3.5]")
        self.lfo["amplitude"] = value

    def _register(self) -> None:
        c = self.command
        cw = self.__dict__  # cw_freq / cw_power live on the instance
        c("[:SOURce]:FREQuency[:CW]", self._number(cw, "cw_freq", F_MIN, self.f_max))
        c("[:SOURce]:FREQuency:FIXed", self._number(cw, "cw_freq", F_MIN, self.f_max))
        c("[:SOURce]:POWer[:LEVel][:IMMediate][:AMPLitude]",
          self._number(cw, "cw_power", P_MIN, P_MAX, _pow))
        modes = {"CW": "CW", "FIXed": "CW", "LIST": "LIST"}
        c("[:SOURce]:FREQuency:MODE", self._attr_setting(
            "freq_mode", lambda a: parse_choice(a, modes), str))
        c("[:SOURce]:POWer:MODE", self._attr_setting(
            "pow_mode", lambda a: parse_choice(a, {"FIXed": "FIX", "LIST": "LIST"}), str))
        step = self.step
        c("[:SOURce]:FREQuency:STARt", self._number(step, "STAR", F_MIN, self.f_max))
        c("[:SOURce]:FREQuency:STOP", self._number(step, "STOP", F_MIN, self.f_max))
        c("[:SOURce]:FREQuency:CENTer", self._number(step, "CENT", F_MIN, self.f_max))
        c("[:SOURce]:POWer:STARt", self._number(step, "PSTAR", P_MIN, P_MAX, _pow))
        c("[:SOURce]:POWer:STOP", self._number(step, "PSTOP", P_MIN, P_MAX, _pow))
        c("[:SOURce]:SWEep:POINts", self._number(step, "POIN", 2, 65535, lambda x: str(int(x))))
        c("[:SOURce]:SWEep:DWELl[1]", self._number(step, "DWEL", 1e-3, 60.0, _pow))
        c(":OUTPut[:STATe]", self._attr_setting("rf_on", parse_bool, _flag))
        c(":OUTPut:MODulation[:STATe]", self._attr_setting("mod_on", parse_bool, _flag))
        c("[:SOURce]:AM[1][:STATe]", self._bool(self.am, "state"))
        c("[:SOURce]:AM[1]:DEPTh[:LINear]", self._number(self.am, "depth", 0.0, 100.0, _pow))
        c("[:SOURce]:AM[1]:SOURce", self._choice(self.am, "source", {
            "INTernal": "INT", "INTernal1": "INT", "EXTernal": "EXT", "EXTernal1": "EXT"}))
        c("[:SOURce]:AM[1]:INTernal[1]:FREQuency",
          self._number(self.am, "freq", 0.1, 3e6, _pow))
        c("[:SOURce]:AM[1]:INTernal[1]:FUNCtion:SHAPe", self._choice(self.am, "shape", {
            "SINE": "SINE", "TRIangle": "TRI", "SQUare": "SQU", "RAMP": "RAMP",
            "NOISe": "NOIS", "DUAL": "DUAL", "SWEPt": "SWEP"}))
        c("[:SOURce]:PULM:STATe", self._bool(self.pulm, "state"))
        c("[:SOURce]:PULM:SOURce", self._choice(self.pulm, "source", {
            "INTernal": "INT", "EXTernal": "EXT", "SCALar": "SCAL"}))
        c("[:SOURce]:PULM:SOURce:INTernal", self._choice(self.pulm, "internal", {
            "SQUare": "SQU", "FRUN": "FRUN", "TRIGgered": "TRIG", "DOUBlet": "DOUB",
            "GATEd": "GATE"}))
        c("[:SOURce]:PULM:INTernal[1]:FREQuency",
          self._number(self.pulm, "freq", 0.1, 10e6, _pow))
        c("[:SOURce]:LFOutput:STATe", self._bool(self.lfo, "state"))
        c("[:SOURce]:LFOutput:SOURce", self._choice(self.lfo, "source", {
            "INTernal": "INT", "INTernal1": "INT", "FUNCtion": "INT", "FUNCtion1": "INT"}))
        c("[:SOURce]:LFOutput:AMPLitude", self._lfo_amplitude)
        # list sweep
        c("[:SOURce]:LIST:FREQuency", self._values("list_freq", F_MIN, self.f_max, _freq))
        c("[:SOURce]:LIST:FREQuency:POINts", self._points("list_freq"))
        c("[:SOURce]:LIST:POWer", self._values("list_pow", P_MIN, P_MAX, _pow))
        c("[:SOURce]:LIST:POWer:POINts", self._points("list_pow"))
        c("[:SOURce]:LIST:DWELl", self._values("list_dwell", 1e-3 / 1000, 100.0, _pow))
        c("[:SOURce]:LIST:DWELl:POINts", self._points("list_dwell"))
        trig = {"BUS": "BUS", "IMMediate": "IMM", "EXTernal": "EXT", "KEY": "KEY",
                "TIMer": "TIM", "INTernal": "INT", "MANual": "MAN"}
        c("[:SOURce]:LIST:TRIGger:SOURce", self._attr_setting(
            "list_trigger", lambda a: parse_choice(a, trig), str))
        c(":TRIGger[:SEQuence]:SOURce", self._attr_setting(
            "sweep_trigger", lambda a: parse_choice(a, trig), str))
        c("[:SOURce]:LIST:TYPE", self._attr_setting(
            "list_type", lambda a: parse_choice(a, {"LIST": "LIST", "STEP": "STEP"}), str))
        c("[:SOURce]:LIST:DIRection", self._attr_setting(
            "list_direction", lambda a: parse_choice(a, {"UP": "UP", "DOWN": "DOWN"}), str))
        c("[:SOURce]:LIST:RETRace", self._attr_setting("retrace", parse_bool, _flag))
        c(":INITiate[:IMMediate]", self._initiate)
        c(":INITiate:CONTinuous[:ALL]", self._attr_setting("continuous", parse_bool, _flag))
        c(":TRIGger[:SEQuence][:IMMediate]", self._trigger)
        c(":ABORt", self._abort)
        c("[:SOURce]:LIST:INDex", self._list_index)

    def _list_index(self, args, query):
        if not query:
            raise ScpiError(-113, "query only")
        return str(self.sweep["index"] if self.sweep is not None else 0)


def _rs_number(x: float) -> str:
    return f"{x:.12g}"


class RohdeSchwarzSmbPersonality(RfGeneratorPersonality):
    """A Rohde & Schwarz SMB100A (options B106: 9 kHz to 6 GHz, B31: up to +18 dBm specified)
    in its SCPI command set (R&S SMB100A Operating Manual, "Remote Control Commands":
    SOURce:FREQuency, SOURce:POWer, OUTPut, SOURce:AM, SOURce:PULM, SOURce:LIST).

    List mode: ``:LIST:SEL "name"`` selects (creates) a list, ``:LIST:FREQ`` / ``:LIST:POW``
    fill it, ``:LIST:DWEL`` is the dwell of every point, ``:FREQ:MODE LIST`` starts it at
    index 0 (frequency and level both from the list). ``:LIST:MODE AUTO`` runs it on the dwell
    times, ``STEP`` outputs the point ``:LIST:IND`` selects. ``:LIST:LEAR`` learns the
    hardware settings (10 ms per point here); ``:LIST:RES`` goes back to the first point.
    Queries answer plain numbers (``1000000000``, ``-30``)."""

    p_min, p_max = -145.0, 18.0

    def __init__(self, clock: VirtualClock | None = None, device=None, device_index: int = 0,
                 rng=None, serial: str = "1406.6000k03/102345", **options):
        if options:
            raise TypeError(f"unknown SMB100A options: {', '.join(options)}")
        super().__init__(clock, device, device_index, 6e9,
                         f"Rohde&Schwarz,SMB100A,{serial},3.1.19.15-3.20.390.24")

    def reset(self) -> None:
        super().reset()
        self.list_name = "labctl"
        self.list_trigger = "IMM"

    def _opt(self, args, query):
        return "SMB-B106,SMB-B31"

    def _freq_mode(self, args, query):
        if query:
            return {"CW": "CW", "LIST": "LIST"}[self.freq_mode]
        self.need(args, 1)
        mode = parse_choice(args[0], {"CW": "CW", "FIXed": "CW", "LIST": "LIST"})
        self.freq_mode = mode
        self.pow_mode = "LIST" if mode == "LIST" else "FIX"
        if mode == "LIST":
            self._initiate([], False)
        else:
            self.sweep = None

    def _list_mode(self, args, query):
        if query:
            return "STEP" if self.list_trigger == "STEP" else "AUTO"
        self.need(args, 1)
        self.list_trigger = "STEP" if parse_choice(
            args[0], {"AUTO": "AUTO", "STEP": "STEP"}) == "STEP" else "IMM"

    def _list_index(self, args, query):
        if query:
            return str(self.sweep["index"] if self.sweep is not None else 0)
        self.need(args, 1)
        k = int(parse_number(args[0]))
        if self.sweep is None:
            raise ScpiError(-221, "list mode is not active")
        if not 0 <= k < len(self.sweep["freq"]):
            raise ScpiError(-222, f"index {k} outside 0..{len(self.sweep['freq']) - 1}")
        if self.list_trigger != "STEP":
            raise ScpiError(-221, "LIST:IND needs LIST:MODE STEP")
        self.sweep["index"] = k

    def _list_select(self, args, query):
        if query:
            return f'"{self.list_name}"'
        self.need(args, 1)
        self.list_name = args[0].strip().strip("\"'")

    def _list_learn(self, args, query):
        self._no_query(query)
        self.clock.advance(0.01 * max(len(self.list_freq), len(self.list_pow)))

    def _list_reset(self, args, query):
        self._no_query(query)
        if self.sweep is not None:
            self.sweep.update(index=0, t0=self.clock.now, done=False)

    def _register(self) -> None:
        c = self.command
        cw = self.__dict__
        c("[:SOURce[1]]:FREQuency[:CW]", self._number(cw, "cw_freq", F_MIN, self.f_max,
                                                     _rs_number))
        c("[:SOURce[1]]:FREQuency:FIXed", self._number(cw, "cw_freq", F_MIN, self.f_max,
                                                      _rs_number))
        c("[:SOURce[1]]:FREQuency:MODE", self._freq_mode)
        c("[:SOURce[1]]:POWer[:LEVel][:IMMediate][:AMPLitude]",
          self._number(cw, "cw_power", self.p_min, self.p_max, _rs_number))
        c(":OUTPut[1][:STATe]", self._attr_setting("rf_on", parse_bool, _flag))
        c("[:SOURce[1]]:AM[:DEPTh]", self._number(self.am, "depth", 0.0, 100.0, _rs_number))
        c("[:SOURce[1]]:AM:STATe", self._bool(self.am, "state"))
        c("[:SOURce[1]]:AM:SOURce", self._choice(self.am, "source", {
            "INTernal": "INT", "EXTernal": "EXT"}))
        c("[:SOURce[1]]:PULM:STATe", self._bool(self.pulm, "state"))
        c("[:SOURce[1]]:LIST:SELect", self._list_select)
        c("[:SOURce[1]]:LIST:FREQuency",
          self._values("list_freq", F_MIN, self.f_max, _rs_number))
        c("[:SOURce[1]]:LIST:FREQuency:POINts", self._points("list_freq"))
        c("[:SOURce[1]]:LIST:POWer", self._values("list_pow", self.p_min, self.p_max,
                                                  _rs_number))
        c("[:SOURce[1]]:LIST:POWer:POINts", self._points("list_pow"))
        c("[:SOURce[1]]:LIST:DWELl", self._values("list_dwell", 1e-3, 100.0, _rs_number))
        c("[:SOURce[1]]:LIST:MODE", self._list_mode)
        c("[:SOURce[1]]:LIST:INDex", self._list_index)
        c("[:SOURce[1]]:LIST:LEARn", self._list_learn)
        c("[:SOURce[1]]:LIST:RESet", self._list_reset)
