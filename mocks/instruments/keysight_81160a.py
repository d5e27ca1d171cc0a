"""Keysight 81160A pulse function arbitrary noise generator (two channels, 330 MHz pulses).

Reference: Keysight 81150A/81160A User's Guide, "Programming Reference": ``[:SOURce]:FUNCtion[c]``,
``[:SOURce]:FREQuency[c]``, ``[:SOURce]:VOLTage[c][:AMPLitude|:OFFSet|:HIGH|:LOW|:UNIT]``,
``[:SOURce]:VOLTage[c]:LIMit[:STATe|:HIGH|:LOW]``, ``[:SOURce]:PULSe:PERiod[c]``,
``[:SOURce]:PULSe:WIDTh[c]``, ``[:SOURce]:PULSe:DCYCle[c]``, ``[:SOURce]:PULSe:HOLD[c]``,
``[:SOURce]:FUNCtion[c]:PULSe:TRANsition``, ``:OUTPut[c][:STATe]``, ``:OUTPut[c]:LOAD``,
``[:SOURce]:BURSt[c]:STATe|MODE|NCYCles|INTernal:PERiod``, ``:ARM:SOURce[c]``,
``:TRIGger[c]:COUNt``, ``*TRG``. The channel number ``c`` follows the keyword it qualifies
(``:PULS:PER2``, ``:VOLT2:HIGH``). pymeasure's stock ``Keysight81160A`` driver runs against it
unchanged.

Device action: the output drives the device through the generator's 50 Ω source. With
``:OUTP:LOAD 50`` (default) the set levels are those across a 50 Ω load, so the open-circuit
level is twice the set value; with a high-impedance load setting (``INF``/``9.9E37``) the set
level is the open-circuit one. A pulse holds the high level for the width on top of the low
level. ``:ARM:SOUR IMM`` (continuous) with the output on pulses every period for the virtual
time that passes (at most ``MAX_CONTINUOUS`` pulses are simulated per message, a guard against
runaway runs); ``MAN``/``EXT``/``INT2`` emit ``:TRIG:COUN`` pulses (``:BURS:NCYC`` with burst on)
on each ``*TRG``. Only the pulse function acts on the device (other shapes are accepted and
produce no pulses). Hardware output limits (``:VOLT:LIM``) clip the levels when enabled.

External triggering: the rear ``EXT IN`` connector is the trigger input ``ext`` a bench
``triggers`` entry wires to another instrument's trigger output. A channel armed on it
(``:ARM:SOUR EXT``, output on) answers each trigger with its ``:TRIG:COUN`` pulses
(``:BURS:NCYC`` with burst on) starting at the trigger's instant; a trigger that arrives while
the channel is still busy with the previous one (before ``count × period`` has passed) is
ignored, as on the instrument, and counted in ``triggers_missed``. Pulses on the wired device
are handed back to the triggering instrument when it drives the same device (so both sources
act in time order), otherwise applied here.
"""

from __future__ import annotations

import numpy as np

from mocks.clock import VirtualClock
from mocks.scpi import ScpiError, ScpiPersonality, parse_bool, parse_choice, parse_number

SHAPES = {"SINusoid": "SIN", "SQUare": "SQU", "RAMP": "RAMP", "PULSe": "PULS",
          "NOISe": "NOIS", "DC": "DC", "USER": "USER"}
ARM_SOURCES = {"IMMediate": "IMM", "INTernal2": "INT2", "EXTernal": "EXT", "MANual": "MAN"}
HIGH_Z = 9.9e37
SOURCE_OHM = 50.0
MAX_CONTINUOUS = 100_000


def fmt(x: float) -> str:
    return f"{x:+.12E}"


class _Channel:
    def __init__(self):
        self.shape = "PULS"
        self.frequency = 1e6
        self.high, self.low = 0.5, -0.5  # V across a 50 Ω load (the default)
        self.unit = "VPP"
        self.period = 1e-6
        self.width = 1e-7
        self.dcycle = 10.0  # %
        self.hold = "WIDT"
        self.transition = 2.5e-9
        self.output = False
        self.load = 50.0
        self.burst = False
        self.burst_mode = "TRIG"
        self.burst_ncycles = 2
        self.burst_period = 1e-5
        self.arm = "IMM"
        self.trigger_count = 1
        self.limit = False
        self.limit_high, self.limit_low = 5.0, -5.0
        self.square_dcyc, self.ramp_symm = 50.0, 100.0


class Keysight81160APersonality(ScpiPersonality):
    """A Keysight 81160A; channel ``channel`` drives the wired device (the other is open)."""

    def __init__(self, clock: VirtualClock | None = None, device=None, device_index: int = 0,
                 rng: np.random.Generator | None = None, serial: str = "MY53400123",
                 channel: int = 1, **options):
        if options:
            raise TypeError(f"unknown Keysight 81160A options: {', '.join(options)}")
        if device is not None and not hasattr(device, "run_sequence"):
            raise ValueError(f"the Keysight 81160A mock drives two-state stochastic devices "
                             f"(mocks.devices.stochastic), not {type(device).__name__}")
        super().__init__(clock)
        self.idn = f"Agilent Technologies,81160A,{serial},3.0.1.0-3.9"
        self.device, self.device_index, self.wired = device, int(device_index), int(channel)
        self.pulses_emitted = 0
        self.triggers_received = 0
        self.triggers_missed = 0
        self._busy_until = {1: -np.inf, 2: -np.inf}
        self._t_bias = self.clock.now
        self.ch = {}
        self.reset()
        for c in (1, 2):
            self._register(c)

    def reset(self) -> None:
        self.catch_up()
        self.ch = {1: _Channel(), 2: _Channel()}

    # ================================================================ the output on the device
    def _levels(self, chan: _Channel) -> tuple[float, float]:
        """(low, high) open-circuit levels in V, after the hardware limits."""
        low, high = chan.low, chan.high
        if chan.limit:
            low, high = (min(max(x, chan.limit_low), chan.limit_high) for x in (low, high))
        scale = 1.0 if chan.load >= HIGH_Z else (chan.load + SOURCE_OHM) / chan.load
        return low * scale, high * scale

    def _train(self, chan: _Channel, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Levels (open-circuit V) and durations of ``count`` pulses (width at high, the rest
        of the period at low; the low steps left out when the low level is 0 V)."""
        low, high = self._levels(chan)
        width = min(chan.width if chan.hold == "WIDT" else chan.period * chan.dcycle / 100,
                    chan.period)
        if low == 0.0:
            return np.full(count, high), np.full(count, width)
        return np.tile([high, low], count), np.tile([width, chan.period - width], count)

    def _emit(self, chan: _Channel, count: int) -> None:
        """``count`` pulses on the device."""
        self.pulses_emitted += count
        if self.device is None or count <= 0 or chan.shape != "PULS":
            return
        levels, widths = self._train(chan, count)
        self.device.run_sequence(levels, widths, "voltage", self.device_index,
                                 series_ohm=SOURCE_OHM)

    TRIGGER_INPUTS = ("ext",)

    def external_trigger(self, times, device=None, index: int = 0) -> dict | None:
        """Trigger edges on ``EXT IN`` at virtual ``times`` (s, increasing) from an instrument
        driving ``device`` (element ``index``). Returns the wired channel's pulses for that
        device as :meth:`~mocks.devices.stochastic.TwoStateArray.run_interleaved` keywords plus
        ``trigger`` (the trigger each step answers), or None when it has none for it."""
        times = np.asarray(times, dtype=float)
        with self.lock:
            self.triggers_received += times.size
            out = None
            for c, chan in self.ch.items():
                if not chan.output or chan.arm != "EXT" or not times.size:
                    continue
                count = chan.burst_ncycles if chan.burst else chan.trigger_count
                accepted = self._accepted(c, times, count * chan.period)
                self.triggers_missed += times.size - accepted.size
                if c != self.wired or self.device is None:
                    self.pulses_emitted += count * accepted.size
                elif self.device is device and self.device_index == index and \
                        chan.shape == "PULS":
                    self.pulses_emitted += count * accepted.size
                    levels, widths = self._train(chan, count)
                    steps = levels.size
                    out = {"levels": np.tile(levels, accepted.size),
                           "widths": np.tile(widths, accepted.size), "source": "voltage",
                           "series_ohm": SOURCE_OHM, "trigger": np.repeat(accepted, steps)}
                else:
                    self._emit(chan, count * accepted.size)
            return out

    def _accepted(self, c: int, times: np.ndarray, busy: float) -> np.ndarray:
        """Indices of the triggers channel ``c`` answers: those arriving once the previous
        answered one's ``busy`` time has passed."""
        if times[0] >= self._busy_until[c] and (times.size == 1 or np.diff(times).min() >= busy):
            keep = np.arange(times.size)  # evenly spaced enough: all answered (the usual case)
        else:
            keep, free = [], self._busy_until[c]
            for k, t in enumerate(times.tolist()):
                if t >= free:
                    keep.append(k)
                    free = t + busy
            keep = np.array(keep, dtype=np.int64)
        self._busy_until[c] = times[keep[-1]] + busy if keep.size else self._busy_until[c]
        return keep

    def catch_up(self) -> None:
        """Continuous pulsing for the virtual time since the last message."""
        now = self.clock.now
        dt, self._t_bias = now - getattr(self, "_t_bias", now), now
        chan = getattr(self, "ch", {}).get(self.wired)
        if chan is None or dt <= 0 or not chan.output or chan.arm != "IMM":
            return
        self._emit(chan, min(int(dt / chan.period), MAX_CONTINUOUS))

    def _trg(self, args, query):
        for c, chan in self.ch.items():
            if not chan.output or chan.arm == "IMM":
                continue
            count = chan.burst_ncycles if chan.burst else chan.trigger_count
            duration = count * chan.period
            if c == self.wired:
                self._emit(chan, count)
            else:
                self.pulses_emitted += count
            self.clock.advance(duration)
            self._t_bias = self.clock.now
        return None

    # ================================================================ registration
    def _register(self, c: int) -> None:
        n = "[1]" if c == 1 else "2"
        cmd = self.command

        def state():
            return self.ch[c]

        def number(attr, lo, hi, after=None):
            def handler(args, query):
                s = state()
                if query:
                    return fmt(getattr(s, attr))
                self.need(args, 1)
                x = parse_number(args[0], lo, hi)
                if not lo <= x <= hi:
                    raise ScpiError(-222, f"{x:g} not in [{lo:g}, {hi:g}]")
                setattr(s, attr, x)
                if after is not None:
                    after(s)
                return None
            return handler

        def choice(attr, choices):
            def handler(args, query):
                if query:
                    return getattr(state(), attr)
                self.need(args, 1)
                setattr(state(), attr, parse_choice(args[0], choices))
                return None
            return handler

        def flag(attr):
            def handler(args, query):
                if query:
                    return "1" if getattr(state(), attr) else "0"
                self.need(args, 1)
                setattr(state(), attr, parse_bool(args[0]))
                return None
            return handler

        def amplitude(args, query):
            s = state()
            if query:
                return fmt(s.high - s.low)
            self.need(args, 1)
            a = parse_number(args[0], 0.05, 10.0)
            if not 0.05 <= a <= 10.0:
                raise ScpiError(-222, f"amplitude {a:g} not in [0.05, 10]")
            centre = (s.high + s.low) / 2
            s.high, s.low = centre + a / 2, centre - a / 2
            return None

        def offset(args, query):
            s = state()
            if query:
                return fmt((s.high + s.low) / 2)
            self.need(args, 1)
            o = parse_number(args[0], -4.995, 4.995)
            if not -4.995 <= o <= 4.995:
                raise ScpiError(-222, f"offset {o:g} not in [-4.995, 4.995]")
            half = (s.high - s.low) / 2
            s.high, s.low = o + half, o - half
            return None

        def load(args, query):
            s = state()
            if query:
                return fmt(s.load)
            self.need(args, 1)
            word = args[0].strip().upper()
            s.load = HIGH_Z if word in ("INF", "INFINITY") else parse_number(args[0], 0.3, 1e6)
            if s.load < 0.3:
                raise ScpiError(-222, "load below 0.3 ohm")
            return None

        cmd(f"[:SOURce]:FUNCtion{n}[:SHAPe]", choice("shape", SHAPES))
        cmd(f"[:SOURce]:FREQuency{n}[:CW]", number("frequency", 1e-6, 500e6,
                                                   after=lambda s: setattr(s, "period",
                                                                           1 / s.frequency)))
        cmd(f"[:SOURce]:VOLTage{n}[:LEVel][:IMMediate][:AMPLitude]", amplitude)
        cmd(f"[:SOURce]:VOLTage{n}[:LEVel][:IMMediate]:OFFSet", offset)
        cmd(f"[:SOURce]:VOLTage{n}[:LEVel][:IMMediate]:HIGH", number("high", -4.95, 5.0))
        cmd(f"[:SOURce]:VOLTage{n}[:LEVel][:IMMediate]:LOW", number("low", -5.0, 4.95))
        cmd(f"[:SOURce]:VOLTage{n}:UNIT", choice("unit", {"VPP": "VPP", "VRMS": "VRMS",
                                                          "DBM": "DBM"}))
        cmd(f"[:SOURce]:VOLTage{n}:LIMit[:STATe]", flag("limit"))
        cmd(f"[:SOURce]:VOLTage{n}:LIMit:HIGH", number("limit_high", -9.99, 10.0))
        cmd(f"[:SOURce]:VOLTage{n}:LIMit:LOW", number("limit_low", -10.0, 9.99))
        cmd(f"[:SOURce]:FUNCtion{n}:SQUare:DCYCle", number("square_dcyc", 1.5e-4, 99.9998))
        cmd(f"[:SOURce]:FUNCtion{n}:RAMP:SYMMetry", number("ramp_symm", 0.0, 100.0))
        cmd(f"[:SOURce]:PULSe:PERiod{n}", number(
            "period", 2e-9, 1e6, after=lambda s: setattr(s, "frequency", 1 / s.period)))
        cmd(f"[:SOURce]:PULSe:WIDTh{n}", number("width", 1.5e-9, 1e6))
        cmd(f"[:SOURce]:PULSe:DCYCle{n}", number("dcycle", 0.15, 99.99))
        cmd(f"[:SOURce]:PULSe:HOLD{n}", choice("hold", {"WIDTh": "WIDT", "DCYCle": "DCYC"}))
        cmd(f"[:SOURce]:FUNCtion{n}:PULSe:TRANsition[:LEADing]",
            number("transition", 1e-9, 1e3))
        cmd(f":OUTPut{n}[:STATe]", flag("output"))
        cmd(f":OUTPut{n}:LOAD", load)
        cmd(f"[:SOURce]:BURSt{n}:STATe", flag("burst"))
        cmd(f"[:SOURce]:BURSt{n}:MODE", choice("burst_mode", {"TRIGgered": "TRIG",
                                                              "GATed": "GAT"}))
        cmd(f"[:SOURce]:BURSt{n}:NCYCles", number("burst_ncycles", 2, 2.147483647e9,
                                                   after=lambda s: setattr(
                                                       s, "burst_ncycles",
                                                       int(s.burst_ncycles))))
        cmd(f"[:SOURce]:BURSt{n}:INTernal:PERiod", number("burst_period", 3.03e-9, 1e6))
        cmd(f":ARM:SOURce{n}", choice("arm", ARM_SOURCES))
        cmd(f":TRIGger{n}:COUNt", number("trigger_count", 1, 2.147483647e9,
                                         after=lambda s: setattr(s, "trigger_count",
                                                                 int(s.trigger_count))))

