"""Keysight B2900 series precision source/measure units (B2901A, B2902A, B2911A, B2912A).

Reference: Keysight B2900 Series SCPI Command Reference and Programming Guide (B2910-90030 /
B2910-90020): ``:SOURce[c]``, ``:SENSe[c]``, ``:TRIGger[c]``, ``:ARM[c]``, ``:INITiate``,
``:FETCh:ARRay``, ``:TRACe[c]``, ``:FORMat:ELEMents:SENSe``, ``:OUTPut[c]``, ``:MEASure``.

What is modelled, per channel (``c`` = 1, 2 on the two-channel B2902A/B2912A):

- Source: function VOLT/CURR, shape DC/PULSe, immediate (base) and triggered level, mode
  FIXed/LIST, list ``:SOUR:LIST:VOLT|CURR`` (+``:APPend``, ``:POINts?``, at most 2500 points),
  pulse delay and width (50 µs on the B2901A/B2902A, 10 µs on the B2911A/B2912A, to 100000 s).
- Sense: functions, compliance ``:SENS:CURR|VOLT:PROT`` (+``:TRIPped?``), NPLC / aperture,
  auto range (accepted). The source is clamped by the compliance of the other quantity.
- Trigger model: arm count x trigger count points, trigger source AINT or TIMer (period),
  acquisition delay. ``:INIT`` runs the whole model at once on the virtual clock: in LIST mode
  trigger j of each arm cycle sources list[j mod points], in FIXed mode the triggered level;
  with shape PULSe each point is a pulse (width at the point's level) on top of the base level,
  measured at its end.
- Data: the acquisition buffer (100,000 points) read by ``:FETCh:ARRay[:<elem>]?``, the trace
  buffer (``:TRAC:FEED SENS``, ``:TRAC:FEED:CONT NEXT``, ``:TRAC:POIN``, ``:TRAC:DATA?``), the
  elements of ``:FORMat:ELEMents:SENSe`` (VOLT, CURR, RES, TIME, STAT, SOUR; STAT is 8 when the
  point was in compliance, other status bits are not modelled), ASCII format.
- Output on/off (``:OUTP:ON:AUTO``, on by default, switches it on at ``:INIT``), off mode.
  While the output is on, the device is biased at the base level for the virtual time that passes.
- Trigger outputs: ``:ARM[c][:TRANsient]:TOUTput[:STATe]`` (one trigger at the start of each arm
  cycle, when the arm layer hands over to the trigger layer) and ``:TRIGger[c][:TRANsient]:
  TOUTput[:STATe]`` (one at every transient device action, i.e. every point), each on the pin
  chosen by ``...:TOUTput:SIGNal EXT1..EXT14``, emitted only if that digital I/O pin is a
  trigger output (``[:SOURce]:DIGital:EXTernal<n>:FUNCtion TOUT``; DIO after ``*RST``), at the
  start of the point's pulse. A bench ``triggers`` entry wires a pin to another instrument's
  trigger input (:meth:`connect_trigger`); an instrument that drives the same device returns
  its pulses, which are then applied to the device at those instants, between the SMU's own
  steps.

The device wired to ``channel`` (option, default 1) is a two-state stochastic device array
(:mod:`mocks.devices.stochastic`), or a generic two-terminal device (``apply``, ``current``,
``voltage_at_current``, ``measure_current``: e.g. a switch matrix's terminal, bench ``through``)
driven by voltage under the current compliance as in :mod:`mocks.instruments.two_terminal`
(each pulse held for its width, the base level between pulses, the reading at the pulse's end);
current sourcing into such a device, and instruments triggered by this one driving it, are not
modelled and refused (-221). The other channel is open.
"""

from __future__ import annotations

import numpy as np

from mocks.clock import VirtualClock
from mocks.instruments import two_terminal
from mocks.scpi import ScpiError, ScpiPersonality, parse_bool, parse_choice, parse_number

MODELS = {"B2901A": (1, 50e-6), "B2902A": (2, 50e-6), "B2911A": (1, 10e-6),
          "B2912A": (2, 10e-6)}
"""Model -> (channels, minimum pulse width in s)."""
V_MAX, I_MAX = 210.0, 3.03
MAX_LIST = 2500
MAX_POINTS = 100_000
POINT_OVERHEAD_S = 20e-6
ELEMENTS = {"VOLTage": "VOLT", "CURRent": "CURR", "RESistance": "RES", "TIME": "TIME",
            "STATus": "STAT", "SOURce": "SOUR"}
STAT_COMPLIANCE = 8
OPEN_OHM = 1e15
TRIGGER_PINS = tuple(f"EXT{n}" for n in range(1, 15))
PIN_FUNCTIONS = {"DIO": "DIO", "DINPut": "DINP", "HVOLtage": "HVOL", "TINPut": "TINP",
                 "TOUTput": "TOUT"}


def fmt(x: float) -> str:
    """The B2900's ASCII number format."""
    return f"{x:+.6E}"


def _in(x: float, lo: float, hi: float) -> float:
    if not lo <= x <= hi:
        raise ScpiError(-222, f"{x:g} not in [{lo:g}, {hi:g}]")
    return x


def _joined(pulses: list[dict]) -> dict:
    """The one pulse train that instruments triggered by the SMU return for its device."""
    if len(pulses) == 1:
        return pulses[0]
    raise ScpiError(-221, "two trigger outputs drive instruments on the same device at once")


def _channel_list(args: list[str], channels: int) -> list[int]:
    """``(@1)`` / ``(@1,2)`` / ``(@1:2)`` -> channel numbers (default channel 1)."""
    if not args:
        return [1]
    text = ",".join(args).strip()
    if not (text.startswith("(@") and text.endswith(")")):
        raise ScpiError(-104, f"channel list expected, got {text!r}")
    out = []
    for part in text[2:-1].split(","):
        lo, _, hi = part.strip().partition(":")
        try:
            out.extend(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            raise ScpiError(-104, f"bad channel list {text!r}") from None
    if not out or any(not 1 <= c <= channels for c in out):
        raise ScpiError(-222, f"channel list {text!r} outside 1..{channels}")
    return out


class _Channel:
    """State of one SMU channel."""

    def __init__(self):
        self.output = False
        self.auto_on = True
        self.off_mode = "ZERO"
        self.function = "VOLT"
        self.shape = "DC"
        self.level = {"VOLT": 0.0, "CURR": 0.0}
        self.triggered = {"VOLT": 0.0, "CURR": 0.0}
        self.mode = {"VOLT": "FIX", "CURR": "FIX"}
        self.lists = {"VOLT": [0.0], "CURR": [0.0]}
        self.pulse_delay = 0.0
        self.pulse_width = 1e-4
        self.sense = ["VOLT", "CURR"]
        self.protection = {"CURR": 1e-4, "VOLT": 2.0}  # compliance of the other quantity
        self.tripped = False
        self.nplc = {"CURR": 1.0, "VOLT": 1.0}
        self.auto_range = {"CURR": True, "VOLT": True}
        self.counts = {"trig": 1, "arm": 1}
        self.trig_source = "AINT"
        self.trig_timer = 1e-4
        self.tout = {"arm": False, "trig": False}  # trigger output states
        self.tout_signal = {"arm": "EXT1", "trig": "EXT1"}
        self.acq_delay = 0.0
        self.data = np.empty((0, 6))  # rows: VOLT CURR RES TIME STAT SOUR
        self.trace = np.empty((0, 6))
        self.trace_points = MAX_POINTS
        self.trace_feed = "SENS"
        self.trace_control = "NEV"


class KeysightB2900Personality(ScpiPersonality):
    """A Keysight B2900-series SMU; ``channel`` is the channel the device is wired to."""

    def __init__(self, clock: VirtualClock | None = None, device=None, device_index: int = 0,
                 rng: np.random.Generator | None = None, model: str = "B2912A",
                 serial: str = "MY51140012", channel: int = 1, line_frequency: float = 50.0,
                 **options):
        if options:
            raise TypeError(f"unknown Keysight B2900 options: {', '.join(options)}")
        if model not in MODELS:
            raise ValueError(f"unknown B2900 model {model!r} (known: {', '.join(MODELS)})")
        self.two_terminal = device is not None and not hasattr(device, "run_sequence")
        if self.two_terminal and not all(hasattr(device, a) for a in (
                "apply", "current", "voltage_at_current", "measure_current")):
            raise ValueError(f"the Keysight B2900 mock drives two-state stochastic devices "
                             f"(mocks.devices.stochastic) or two-terminal devices, not "
                             f"{type(device).__name__}")
        super().__init__(clock)
        self.model = model
        self.n_channels, self.min_width = MODELS[model]
        if not 1 <= int(channel) <= self.n_channels:
            raise ValueError(f"channel {channel} not on a {model}")
        self.idn = f"Keysight Technologies,{model},{serial},3.4.2011.5100"
        self.device, self.device_index, self.wired = device, int(device_index), int(channel)
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.line_frequency = float(line_frequency)
        self.elements = ["VOLT", "CURR", "RES", "TIME", "STAT", "SOUR"]
        self.trigger_lines: dict[str, object] = {}  # pin -> receiver(times, device, index)
        self.pin_function = dict.fromkeys(TRIGGER_PINS, "DIO")
        self._t_bias = self.clock.now
        self.ch: dict[int, _Channel] = {}
        self.reset()
        for c in range(1, self.n_channels + 1):
            self._register(c)
        self.command(":INITiate[:IMMediate][:ALL]", self._init)
        self.command(":INITiate[:IMMediate]:TRANsient", self._init)
        self.command(":INITiate[:IMMediate]:ACQuire", self._init)
        self.command(":ABORt[:ALL]", self._abort)
        self.command(":FETCh:ARRay", self._fetch_array(None))
        for word, elem in ELEMENTS.items():
            self.command(f":FETCh:ARRay:{word}", self._fetch_array(elem))
            self.command(f":MEASure:{word}[:DC]", self._measure(elem))
        self.command(":MEASure", self._measure(None))
        self.command(":FORMat:ELEMents:SENSe[1]", self._format_elements)
        self.command(":FORMat[:DATA]", self._format_data)
        for n in range(1, 15):
            self.command(f"[:SOURce]:DIGital:EXTernal{n}:FUNCtion", self._pin_function(n))

    TRIGGER_OUTPUTS = tuple(pin.lower() for pin in TRIGGER_PINS)

    def connect_trigger(self, output: str, receiver) -> None:
        """Wire the digital I/O pin ``output`` (``ext1`` … ``ext14``) to ``receiver(times,
        device, index)``, another instrument's trigger input (see the module docstring)."""
        self.trigger_lines[output.upper()] = receiver

    def _pin_function(self, n: int):
        def handler(args, query):
            if query:
                return self.pin_function[f"EXT{n}"]
            self.need(args, 1)
            self.pin_function[f"EXT{n}"] = parse_choice(args[0], PIN_FUNCTIONS)
            return None
        return handler

    def _trigger_points(self, chan: _Channel, points: int) -> tuple[np.ndarray, list]:
        """Points whose start emits a trigger on a wired trigger-output pin, and the receivers
        of each such trigger."""
        fired = np.zeros(points, dtype=bool)
        receivers = []
        for layer, every in (("arm", chan.counts["trig"]), ("trig", 1)):
            pin = chan.tout_signal[layer]
            if chan.tout[layer] and self.pin_function[pin] == "TOUT" and \
                    pin in self.trigger_lines:
                fired[::every] = True
                if self.trigger_lines[pin] not in receivers:
                    receivers.append(self.trigger_lines[pin])
        return np.flatnonzero(fired), receivers

    # ================================================================ state
    def reset(self) -> None:
        self.catch_up()
        self.ch = {c: _Channel() for c in range(1, self.n_channels + 1)}
        self.elements = ["VOLT", "CURR", "RES", "TIME", "STAT", "SOUR"]
        self.pin_function = dict.fromkeys(TRIGGER_PINS, "DIO")

    def catch_up(self) -> None:
        """Bias the device at the base level for the virtual time since the last message."""
        now = self.clock.now
        dt, self._t_bias = now - getattr(self, "_t_bias", now), now
        if dt <= 0 or self.device is None or not getattr(self, "ch", None):
            return
        chan = self.ch[self.wired]
        level = chan.level[chan.function]
        if chan.output and level != 0.0:
            if self.two_terminal:
                self._hold(chan, level, dt)
            else:
                self._run_device(chan, np.array([level]), np.array([dt]))

    # ================================================================ physics
    def _source_kind(self, chan: _Channel) -> str:
        return "voltage" if chan.function == "VOLT" else "current"

    def _limit(self, chan: _Channel) -> float:
        return chan.protection["CURR" if chan.function == "VOLT" else "VOLT"]

    def _run_device(self, chan: _Channel, levels: np.ndarray, widths: np.ndarray) -> np.ndarray:
        """Apply ``levels`` for ``widths`` to the wired device; its state after each."""
        return self.device.run_sequence(levels, widths, self._source_kind(chan),
                                        self.device_index, limit=self._limit(chan))

    def _hold(self, chan: _Channel, level: float, seconds: float) -> tuple[float, float, bool]:
        """Hold voltage ``level`` on the wired two-terminal device (see the module docstring)."""
        if chan.function != "VOLT":
            raise ScpiError(-221, "current sourcing into this two-terminal device is not modelled")
        return two_terminal.hold(self.device, self.device_index, level, seconds, self._limit(chan))

    def _two_terminal_rows(self, chan: _Channel, levels: np.ndarray, base: float,
                           base_time: float, on_time: float) -> np.ndarray:
        """Each level held for ``on_time`` after ``base`` for ``base_time``; readings at the
        end of each level."""
        n = levels.size
        v, i, comp = np.empty(n), np.empty(n), np.zeros(n, dtype=bool)
        for k, level in enumerate(levels.tolist()):
            if base_time > 0:
                self._hold(chan, base, base_time)
            v[k], i_k, comp[k] = self._hold(chan, level, on_time)
            i[k] = two_terminal.measured(self.device, self.device_index, v[k], i_k, comp[k])
        return self._rows(chan, levels, v, i, comp)

    def _rows(self, chan: _Channel, levels, v, i, comp) -> np.ndarray:
        """Readings V, I, R, (time), status, source; records the compliance flag."""
        with np.errstate(divide="ignore", invalid="ignore"):
            res = np.where(i != 0, v / i, 9.91e37)
        out = np.empty((levels.size, 6))
        out[:, 0], out[:, 1], out[:, 2] = v, i, res
        out[:, 4] = np.where(comp, STAT_COMPLIANCE, 0)
        out[:, 5] = levels
        chan.tripped = bool(comp.any())
        return out

    def _readings(self, chan: _Channel, c: int, levels: np.ndarray,
                  states: np.ndarray | None) -> np.ndarray:
        """Measured V, I, R, status, source for each point (device in ``states``)."""
        n = levels.size
        if states is None or c != self.wired or self.device is None:
            r = np.full(n, OPEN_OHM)
        else:
            r0 = float(self.device.resistance_of(0, self.device_index))
            r1 = float(self.device.resistance_of(1, self.device_index))
            r = np.where(states == 1, r1, r0)
            r = r * (1.0 + self.device.params.read_noise_rel * self.rng.standard_normal(n))
        limit = self._limit(chan)
        if chan.function == "VOLT":
            i = levels / r
            comp = np.abs(i) > limit
            i = np.where(comp, np.copysign(limit, levels), i)
            v = i * r
        else:
            v = levels * r
            comp = np.abs(v) > limit
            v = np.where(comp, np.copysign(limit, levels), v)
            i = v / r
        return self._rows(chan, levels, v, i, comp)

    def _aperture(self, chan: _Channel) -> float:
        sense = "CURR" if chan.function == "VOLT" else "VOLT"
        return chan.nplc[sense] / self.line_frequency

    # ================================================================ trigger model
    def _init(self, args, query):
        if query:
            raise ScpiError(-113, "INITiate is a command")
        for c in _channel_list(args, self.n_channels):
            self._run_model(c)
        return None

    def _run_model(self, c: int) -> None:
        chan = self.ch[c]
        f = chan.function
        points = chan.counts["trig"] * chan.counts["arm"]
        if points > MAX_POINTS:
            raise ScpiError(-221, f"arm count x trigger count {points} exceeds {MAX_POINTS}")
        if chan.mode[f] == "LIST":
            values = np.asarray(chan.lists[f], dtype=float)
            # each arm cycle runs the trigger layer from the first list point again
            levels = values[(np.arange(points) % chan.counts["trig"]) % values.size]
        else:
            levels = np.full(points, chan.triggered[f])
        if chan.auto_on:
            chan.output = True
        if not chan.output:
            raise ScpiError(-221, "output is off (:OUTP ON or :OUTP:ON:AUTO ON)")
        pulsed = chan.shape == "PULS"
        on_time = chan.pulse_width if pulsed else chan.pulse_delay + self._aperture(chan)
        step = chan.pulse_delay + on_time + POINT_OVERHEAD_S if pulsed else \
            on_time + POINT_OVERHEAD_S
        if chan.trig_source == "TIM":
            step = max(step, chan.trig_timer)
        base = chan.level[f]
        states = None
        start = self.clock.now
        fired, receivers = self._trigger_points(chan, points)
        wired = c == self.wired and self.device is not None
        # each trigger leaves at the start of its point's pulse (the point's start when DC)
        times = start + step * fired + (step - on_time if pulsed else 0.0)
        if wired and self.two_terminal and receivers:
            raise ScpiError(-221, "triggered instruments on a two-terminal device are not "
                                  "modelled")
        extra = [receiver(times, self.device if wired else None, self.device_index)
                 for receiver in receivers]
        rows = None
        if wired and self.two_terminal:
            rows = self._two_terminal_rows(chan, levels, base, step - on_time if pulsed else 0.0,
                                           on_time if pulsed else step)
        elif wired:
            with_base = pulsed and base != 0.0  # base level between pulses, then the pulse
            if with_base:
                seq = np.empty(2 * points)
                seq[0::2], seq[1::2] = base, levels
                widths = np.empty(2 * points)
                widths[0::2], widths[1::2] = step - on_time, on_time
            else:
                # a pulse holds its level for the width; a DC point for the whole point
                seq, widths = levels, np.full(points, on_time if pulsed else step)
            own = {"levels": seq, "widths": widths, "source": self._source_kind(chan),
                   "limit": self._limit(chan)}
            pulses = [p for p in extra if p is not None]
            if pulses:
                pulse = _joined(pulses)
                before = (2 * fired + 1 if with_base else fired)[pulse["trigger"]]
                states = self.device.run_interleaved(own, pulse, before, self.device_index)
            else:
                states = self.device.run_sequence(seq, widths, own["source"], self.device_index,
                                                  limit=own["limit"])
            states = states[1::2] if with_base else states
        if rows is None:
            rows = self._readings(chan, c, levels, states)
        rows[:, 3] = start + step * np.arange(1, points + 1) - (step - on_time) \
            if pulsed else start + step * np.arange(1, points + 1)
        self.clock.advance(step * points)
        self._t_bias = self.clock.now
        chan.data = rows
        if chan.trace_control == "NEXT":
            room = chan.trace_points - len(chan.trace)
            chan.trace = np.vstack([chan.trace, rows[:max(room, 0)]])
            if room <= len(rows):
                chan.trace_control = "NEV"  # buffer full: NEXT stops feeding

    def _abort(self, args, query):
        if query:
            raise ScpiError(-113, "ABORt is a command")
        _channel_list(args, self.n_channels)  # the model always runs to completion at :INIT
        return None

    # ================================================================ data
    def _format(self, rows: np.ndarray, elems: list[str]) -> str:
        cols = [["VOLT", "CURR", "RES", "TIME", "STAT", "SOUR"].index(e) for e in elems]
        block = rows[:, cols].reshape(-1)
        return ",".join(fmt(x) for x in block.tolist())

    def _fetch_array(self, elem):
        def handler(args, query):
            if not query:
                raise ScpiError(-113, "FETCh is a query")
            (c,) = _channel_list(args, self.n_channels)[:1]
            rows = self.ch[c].data
            if not len(rows):
                raise ScpiError(-230, "no data")
            return self._format(rows, [elem] if elem else self.elements)
        return handler

    def _measure(self, elem):
        def handler(args, query):
            if not query:
                raise ScpiError(-113, "MEASure is a query")
            (c,) = _channel_list(args, self.n_channels)[:1]
            chan = self.ch[c]
            if chan.auto_on:
                chan.output = True
            level = np.array([chan.level[chan.function] if chan.output else 0.0])
            states = None
            if c == self.wired and self.two_terminal:
                aperture = self._aperture(chan)
                rows = self._two_terminal_rows(chan, level, 0.0, 0.0, aperture)
                self.clock.advance(aperture + POINT_OVERHEAD_S)
                self._t_bias = self.clock.now
                rows[:, 3] = self.clock.now
                return self._format(rows, [elem] if elem else self.elements)
            if c == self.wired and self.device is not None:
                aperture = self._aperture(chan)
                states = self._run_device(chan, level, np.array([aperture]))
                self.clock.advance(aperture + POINT_OVERHEAD_S)
                self._t_bias = self.clock.now
            rows = self._readings(chan, c, level, states)
            rows[:, 3] = self.clock.now
            return self._format(rows, [elem] if elem else self.elements)
        return handler

    def _format_elements(self, args, query):
        if query:
            return ",".join(self.elements)
        if not args:
            raise ScpiError(-109)
        self.elements = [parse_choice(a, ELEMENTS) for a in args]
        return None

    def _format_data(self, args, query):
        if query:
            return "ASC"
        self.need(args, 1, 2)
        if parse_choice(args[0], {"ASCii": "ASC", "REAL": "REAL"}) != "ASC":
            raise ScpiError(-221, "only ASCii data format is modelled")
        return None

    # ================================================================ registration
    def _register(self, c: int) -> None:
        src = "[:SOURce[1]]" if c == 1 else ":SOURce2"
        sens, outp, trig, arm, trac = ((f":{w}[1]" if c == 1 else f":{w}2")
                                       for w in ("SENSe", "OUTPut", "TRIGger", "ARM", "TRACe"))
        cmd = self.command

        def state():
            return self.ch[c]

        def setting(get, put):
            def handler(args, query):
                if query:
                    return get(state())
                self.need(args, 1)
                put(state(), args[0])
                return None
            return handler

        def number(attr_get, attr_put, lo, hi, show=fmt):
            return setting(lambda s: show(attr_get(s)),
                           lambda s, a: attr_put(s, _in(parse_number(a, lo, hi), lo, hi)))

        cmd(f"{src}:FUNCtion:MODE", setting(
            lambda s: s.function,
            lambda s, a: setattr(s, "function", parse_choice(a, {"VOLTage": "VOLT",
                                                                  "CURRent": "CURR"}))))
        cmd(f"{src}:FUNCtion[:SHAPe]", setting(
            lambda s: s.shape,
            lambda s, a: setattr(s, "shape", parse_choice(a, {"PULSe": "PULS", "DC": "DC"}))))
        for f, word, top in (("VOLT", "VOLTage", V_MAX), ("CURR", "CURRent", I_MAX)):
            cmd(f"{src}:{word}[:LEVel][:IMMediate][:AMPLitude]", number(
                lambda s, f=f: s.level[f], lambda s, x, f=f: s.level.__setitem__(f, x),
                -top, top))
            cmd(f"{src}:{word}[:LEVel]:TRIGgered[:AMPLitude]", number(
                lambda s, f=f: s.triggered[f], lambda s, x, f=f: s.triggered.__setitem__(f, x),
                -top, top))
            cmd(f"{src}:{word}:MODE", setting(
                lambda s, f=f: s.mode[f],
                lambda s, a, f=f: s.mode.__setitem__(f, parse_choice(a, {"FIXed": "FIX",
                                                                          "LIST": "LIST"}))))
            cmd(f"{src}:LIST:{word}", self._list(c, f, top, append=False))
            cmd(f"{src}:LIST:{word}:APPend", self._list(c, f, top, append=True))
            cmd(f"{src}:LIST:{word}:POINts", self._list_points(c, f))
            other = "CURR" if f == "VOLT" else "VOLT"
            # :SENS:CURR:PROT is the compliance of the voltage source, and vice versa
            cmd(f"{sens}:{word}[:DC]:PROTection[:LEVel][:BOTH]", number(
                lambda s, f=f: s.protection[f], lambda s, x, f=f: s.protection.__setitem__(f, x),
                1e-9 if f == "CURR" else 0.02, I_MAX if f == "CURR" else V_MAX))
            cmd(f"{sens}:{word}[:DC]:PROTection:TRIPped", self._tripped(c, other))
            cmd(f"{sens}:{word}[:DC]:NPLCycles", number(
                lambda s, f=f: s.nplc[f], lambda s, x, f=f: s.nplc.__setitem__(f, x),
                4e-4, 100.0))
            cmd(f"{sens}:{word}[:DC]:APERture", number(
                lambda s, f=f: s.nplc[f] / self.line_frequency,
                lambda s, x, f=f: s.nplc.__setitem__(f, x * self.line_frequency), 8e-6, 2.0))
            cmd(f"{sens}:{word}[:DC]:RANGe:AUTO", setting(
                lambda s, f=f: "1" if s.auto_range[f] else "0",
                lambda s, a, f=f: s.auto_range.__setitem__(f, parse_bool(a))))
        cmd(f"{src}:PULSe:DELay", number(lambda s: s.pulse_delay,
                                         lambda s, x: setattr(s, "pulse_delay", x), 0.0, 99999.9))
        cmd(f"{src}:PULSe:WIDTh", number(lambda s: s.pulse_width,
                                         lambda s, x: setattr(s, "pulse_width", x),
                                         self.min_width, 100000.0))
        cmd(f"{sens}:FUNCtion[:ON]", self._sense_functions(c))
        for layer, key in ((trig, "trig"), (arm, "arm")):
            for node in ("", ":ALL", ":TRANsient", ":ACQuire"):
                opt = f"[{node}]" if node == ":ALL" else node
                cmd(f"{layer}{opt}:COUNt", number(
                    lambda s, key=key: s.counts[key],
                    lambda s, x, key=key: s.counts.__setitem__(key, int(x)), 1, MAX_POINTS,
                    show=lambda x: str(int(x))))
        for layer, key in ((trig, "trig"), (arm, "arm")):
            cmd(f"{layer}[:TRANsient]:TOUTput[:STATe]", setting(
                lambda s, key=key: "1" if s.tout[key] else "0",
                lambda s, a, key=key: s.tout.__setitem__(key, parse_bool(a))))
            cmd(f"{layer}[:TRANsient]:TOUTput:SIGNal", setting(
                lambda s, key=key: s.tout_signal[key],
                lambda s, a, key=key: s.tout_signal.__setitem__(
                    key, parse_choice(a, {p: p for p in TRIGGER_PINS}))))
        for node in ("[:ALL]", ":TRANsient", ":ACQuire"):
            cmd(f"{trig}{node}:SOURce", setting(
                lambda s: s.trig_source,
                lambda s, a: setattr(s, "trig_source", parse_choice(
                    a, {"AINT": "AINT", "TIMer": "TIM", "BUS": "BUS"}))))
            cmd(f"{trig}{node}:TIMer", number(lambda s: s.trig_timer,
                                              lambda s, x: setattr(s, "trig_timer", x),
                                              1e-5, 1e5))
        cmd(f"{trig}:ACQuire:DELay", number(lambda s: s.acq_delay,
                                            lambda s, x: setattr(s, "acq_delay", x), 0.0, 100.0))
        cmd(f"{outp}[:STATe]", setting(lambda s: "1" if s.output else "0",
                                       lambda s, a: setattr(s, "output", parse_bool(a))))
        cmd(f"{outp}:ON:AUTO", setting(lambda s: "1" if s.auto_on else "0",
                                       lambda s, a: setattr(s, "auto_on", parse_bool(a))))
        cmd(f"{outp}:OFF:MODE", setting(lambda s: s.off_mode, lambda s, a: setattr(
            s, "off_mode", parse_choice(a, {"ZERO": "ZERO", "HIZ": "HIZ", "NORMal": "NORM"}))))
        cmd(f"{trac}:FEED", setting(lambda s: s.trace_feed, lambda s, a: setattr(
            s, "trace_feed", parse_choice(a, {"SENSe": "SENS", "MATH": "MATH",
                                              "LIMit": "LIM"}))))
        cmd(f"{trac}:FEED:CONTrol", setting(lambda s: s.trace_control, lambda s, a: setattr(
            s, "trace_control", parse_choice(a, {"NEXT": "NEXT", "NEVer": "NEV"}))))
        cmd(f"{trac}:POINts", number(lambda s: s.trace_points,
                                     lambda s, x: setattr(s, "trace_points", int(x)), 1,
                                     MAX_POINTS, show=lambda x: str(int(x))))
        cmd(f"{trac}:POINts:ACTual", lambda a, q: str(len(state().trace)) if q
            else self._raise(-113))
        cmd(f"{trac}:CLEar", lambda a, q: self._raise(-113) if q
            else setattr(state(), "trace", np.empty((0, 6))))
        cmd(f"{trac}:DATA", self._trace_data(c))

    @staticmethod
    def _raise(code: int):
        raise ScpiError(code)

    def _list(self, c, f, top, append):
        def handler(args, query):
            chan = self.ch[c]
            if query:
                if append:
                    raise ScpiError(-113, "APPend is a command")
                return ",".join(fmt(x) for x in chan.lists[f])
            if not args:
                raise ScpiError(-109)
            values = [_in(parse_number(a), -top, top) for a in args]
            new = (chan.lists[f] if append else []) + values
            if len(new) > MAX_LIST:
                raise ScpiError(-222, f"list longer than {MAX_LIST} points")
            chan.lists[f] = new
            return None
        return handler

    def _list_points(self, c, f):
        def handler(args, query):
            if not query:
                raise ScpiError(-113, "POINts is a query")
            return str(len(self.ch[c].lists[f]))
        return handler

    def _tripped(self, c, source_function):
        def handler(args, query):
            if not query:
                raise ScpiError(-113, "TRIPped is a query")
            chan = self.ch[c]
            return "1" if chan.tripped and chan.function == source_function else "0"
        return handler

    def _sense_functions(self, c):
        def handler(args, query):
            chan = self.ch[c]
            if query:
                return ",".join(f'"{f}"' for f in chan.sense)
            if not args:
                raise ScpiError(-109)
            chan.sense = [parse_choice(a, {"VOLTage": "VOLT", "CURRent": "CURR",
                                           "RESistance": "RES"}) for a in args]
            return None
        return handler

    def _trace_data(self, c):
        def handler(args, query):
            if not query:
                raise ScpiError(-113, "TRACe:DATA is a query")
            rows = self.ch[c].trace
            self.need(args, 0, 2)
            offset = int(parse_number(args[0])) if args else 0
            size = int(parse_number(args[1])) if len(args) > 1 else len(rows) - offset
            if not (0 <= offset and size >= 0 and offset + size <= len(rows)) or not len(rows):
                raise ScpiError(-222, f"offset {offset}, size {size} outside {len(rows)} points")
            return self._format(rows[offset:offset + size], self.elements)
        return handler
