"""Kepco BOP bipolar power supply (BOP 36-12 with the BIT 4886 digital interface) driving a coil.

Reference: Kepco BIT 4886 operator manual, SCPI command set: ``OUTPut[:STATe]``,
``[SOURce:]FUNCtion:MODE VOLTage|CURRent`` (query answers 0/1), ``[SOURce:]CURRent[:LEVel]
[:IMMediate][:AMPLitude]``, ``[SOURce:]VOLTage...`` (in current mode: the voltage limit),
``MEASure[:SCALar]:CURRent|VOLTage[:DC]?``, ``DIAGnostic:TST?``, ``SYSTem:BEEP`` and the LIST
subsystem (``LIST:CLEar``, ``LIST:CURRent``, ``LIST:DWELl``, ``LIST:COUNt``, ``CURRent:MODE
LIST`` runs the list; up to 1002 points, dwell 0.5 ms to 10 s per point).

The load is a coil of resistance ``coil_ohm`` and inductance ``coil_henry`` whose field on the
wired device is ``coil_mt_per_a`` × current (the true constant: a station's calibrated value may
differ). Every change of the output current is recorded in :attr:`steps` (|ΔI| in A), so a test
can tell a ramp from a step. A list runs to completion at once on the virtual clock (its dwells
summed); afterwards the output holds the last point in FIXed mode.
"""

from __future__ import annotations

from mocks.clock import VirtualClock
from mocks.scpi import ScpiError, ScpiPersonality, parse_bool, parse_choice, parse_number

I_MAX, V_MAX = 12.0, 36.0
LIST_MAX = 1002


class KepcoBopPersonality(ScpiPersonality):
    """A Kepco BOP 36-12 in current mode on a field coil over the wired device."""

    def __init__(self, clock: VirtualClock | None = None, device=None, device_index: int = 0,
                 rng=None, coil_mt_per_a: float = 5.0, coil_ohm: float = 1.5,
                 coil_henry: float = 0.05, serial: str = "E1234", **options):
        if options:
            raise TypeError(f"unknown Kepco BOP options: {', '.join(options)}")
        super().__init__(clock)
        self.idn = f"KEPCO,BIT 4886 36-12  08-10-2010,{serial},3.01-3.01"
        self.device = device
        self.coil_mt_per_a, self.coil_ohm, self.coil_henry = coil_mt_per_a, coil_ohm, coil_henry
        self.steps: list[float] = []
        self._register()
        self.reset()

    def reset(self) -> None:
        self._set_output_current_to(0.0, record=False)
        self.on = False
        self.mode = "VOLT"
        self.curr, self.volt = 0.0, 0.0
        self.list_curr: list[float] = []
        self.list_dwell: list[float] = []
        self.list_count = 1
        self._apply()

    # ================================================================== physics
    def output_current(self) -> float:
        """Current through the coil now (A)."""
        if not self.on:
            return 0.0
        if self.mode == "CURR":
            return self.curr if abs(self.curr) * self.coil_ohm <= abs(self.volt) else \
                abs(self.volt) / self.coil_ohm * (1 if self.curr >= 0 else -1)
        return self.volt / self.coil_ohm

    def _set_output_current_to(self, i: float, record: bool = True) -> None:
        before = getattr(self, "_i_out", 0.0)
        if record and i != before:
            self.steps.append(abs(i - before))
        self._i_out = i

    def _apply(self) -> None:
        self._set_output_current_to(self.output_current())
        if self.device is not None:
            self.device.field_mt = self.coil_mt_per_a * self._i_out

    def handle_message(self, message: str) -> str | None:
        with self.lock:
            reply = super().handle_message(message)
            self._apply()
            return reply

    # ================================================================== handlers
    def _level(self, attr: str, limit: float):
        def handler(args, query):
            if query:
                return f"{getattr(self, attr):.5E}"
            self.need(args, 1)
            value = parse_number(args[0], -limit, limit)
            if abs(value) > limit:
                raise ScpiError(-222, f"{value:g} outside ±{limit:g}")
            setattr(self, attr, value)
            self._apply()
        return handler

    def _output(self, args, query):
        if query:
            return "1" if self.on else "0"
        self.need(args, 1)
        self.on = parse_bool(args[0])

    def _function(self, args, query):
        if query:
            return "1" if self.mode == "CURR" else "0"
        self.need(args, 1)
        self.mode = parse_choice(args[0], {"VOLTage": "VOLT", "CURRent": "CURR"})

    def _measure(self, what: str):
        def handler(args, query):
            if not query:
                raise ScpiError(-113, "query only")
            i = self.output_current()
            return f"{(i if what == 'CURR' else i * self.coil_ohm):.5E}"
        return handler

    def _list_values(self, attr: str, lo: float, hi: float):
        def handler(args, query):
            if query:
                return ",".join(f"{x:.5E}" for x in getattr(self, attr))
            if not args:
                raise ScpiError(-109)
            values = [parse_number(a) for a in args]
            if any(not lo <= abs(v) <= hi for v in values):
                raise ScpiError(-222, f"list value outside [{lo:g}, {hi:g}]")
            stored = getattr(self, attr)
            if len(stored) + len(values) > LIST_MAX:
                raise ScpiError(-223, f"list longer than {LIST_MAX} points")
            stored.extend(values)  # the BIT 4886 appends until LIST:CLEar
        return handler

    def _list_points(self, attr: str):
        def handler(args, query):
            if not query:
                raise ScpiError(-113, "query only")
            return str(len(getattr(self, attr)))
        return handler

    def _list_clear(self, args, query):
        self.list_curr, self.list_dwell = [], []

    def _list_count(self, args, query):
        if query:
            return str(self.list_count)
        self.need(args, 1)
        self.list_count = int(parse_number(args[0], 0, 255))

    def _curr_mode(self, args, query):
        if query:
            return "FIX"
        self.need(args, 1)
        if parse_choice(args[0], {"FIXed": "FIX", "LIST": "LIST"}) == "FIX":
            return None
        if not self.list_curr or len(self.list_dwell) not in (1, len(self.list_curr)):
            raise ScpiError(-221, "LIST:CURR and LIST:DWEL do not match")
        if self.list_count == 0:
            raise ScpiError(-221, "LIST:COUN 0 (repeat indefinitely) is not modelled")
        dwell = self.list_dwell * len(self.list_curr) if len(self.list_dwell) == 1 \
            else self.list_dwell
        self.mode = "CURR"
        for _ in range(self.list_count):
            for level, d in zip(self.list_curr, dwell, strict=True):
                self.curr = level
                self._apply()
                self.clock.advance(d)

    def _beep(self, args, query):
        return None

    def _diag(self, args, query):
        return "0"

    def _register(self) -> None:
        c = self.command
        c(":OUTPut[:STATe]", self._output)
        c("[:SOURce]:FUNCtion:MODE", self._function)
        c("[:SOURce]:CURRent[:LEVel][:IMMediate][:AMPLitude]", self._level("curr", I_MAX))
        c("[:SOURce]:VOLTage[:LEVel][:IMMediate][:AMPLitude]", self._level("volt", V_MAX))
        c(":MEASure[:SCALar]:CURRent[:DC]", self._measure("CURR"))
        c(":MEASure[:SCALar]:VOLTage[:DC]", self._measure("VOLT"))
        c("[:SOURce]:LIST:CLEar", self._list_clear)
        c("[:SOURce]:LIST:CURRent", self._list_values("list_curr", 0.0, I_MAX))
        c("[:SOURce]:LIST:DWELl", self._list_values("list_dwell", 5e-4, 10.0))
        c("[:SOURce]:LIST:COUNt", self._list_count)
        c("[:SOURce]:LIST:CURRent:POINts", self._list_points("list_curr"))
        c("[:SOURce]:LIST:DWELl:POINts", self._list_points("list_dwell"))
        c("[:SOURce]:CURRent:MODE", self._curr_mode)
        c(":SYSTem:BEEP", self._beep)
        c(":DIAGnostic:TST", self._diag)
