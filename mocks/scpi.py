"""SCPI personality engine: the parser and the IEEE 488.2 machinery every SCPI mock shares.

A personality subclasses :class:`ScpiPersonality`, registers its command headers with
:meth:`ScpiPersonality.command` (SCPI notation: upper case is the short form, ``[...]`` optional,
``[1]`` an optional numeric suffix), and implements handlers ``handler(args, query) -> str | None``.
The engine supplies what every instrument has: long and short forms in any case, ``;``-chained
program messages with the SCPI path rule, quoted strings, IEEE 488.2 common commands
(``*IDN? *RST *CLS *OPC *OPC? *WAI *ESR? *ESE *STB? *SRE *TST? *TRG *OPT?``), the error queue with
standard codes and the event status register bits they set.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Callable

from mocks.clock import VirtualClock

# Standard SCPI error codes (SCPI-99 vol. 2, ch. 21) -> message
ERRORS = {
    0: "No error",
    -100: "Command error",
    -102: "Syntax error",
    -104: "Data type error",
    -108: "Parameter not allowed",
    -109: "Missing parameter",
    -113: "Undefined header",
    -200: "Execution error",
    -221: "Settings conflict",
    -222: "Data out of range",
    -224: "Illegal parameter value",
    -350: "Queue overflow",
    -363: "Input buffer overrun",
    -410: "Query INTERRUPTED",
    -420: "Query UNTERMINATED",
}

# Event status register bits (IEEE 488.2 11.5.1)
ESR_OPC, ESR_QYE, ESR_DDE, ESR_EXE, ESR_CME = 1, 4, 8, 16, 32


class ScpiError(Exception):
    """Raised by a handler to push a standard error onto the queue (code, optional detail)."""

    def __init__(self, code: int, detail: str = ""):
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


def _keyword_regex(keyword: str) -> str:
    """``VOLTage`` -> regex for ``VOLT`` or ``VOLTAGE``; ``[n]``: optional suffix; ``n``: a
    required suffix (``SOURce2``)."""
    suffix = ""
    m = re.fullmatch(r"([A-Za-z*]+)(?:\[(\d)\]|(\d))?", keyword)
    if not m:
        raise ValueError(f"bad SCPI keyword {keyword!r}")
    word, num, fixed = m.groups()
    if num is not None:
        suffix = f"(?:{num})?"
    elif fixed is not None:
        suffix = fixed
    short = "".join(c for c in word if c.isupper() or c == "*")
    long_ = word.upper()
    alternatives = long_ if short == long_ else f"{long_}|{short}"
    return f"(?:{alternatives}){suffix}"


def compile_header(pattern: str) -> re.Pattern:
    """Compile a SCPI header pattern such as ``[:SOURce[1]]:VOLTage[:LEVel][:IMMediate]``."""
    out, i, depth_stack = [], 0, []
    token = re.compile(r"\[|\]|:[A-Za-z*]+(?:\[\d\]|\d)?")
    while i < len(pattern):
        m = token.match(pattern, i)
        if not m:
            raise ValueError(f"bad SCPI header pattern {pattern!r} at {i}")
        t = m.group()
        if t == "[":
            # an optional numeric suffix is handled by the keyword; here it opens an optional node
            out.append("(?:")
            depth_stack.append(len(out))
        elif t == "]":
            out.append(")?")
            depth_stack.pop()
        else:
            out.append(":" + _keyword_regex(t[1:]))
        i = m.end()
    return re.compile("".join(out) + r"\Z", re.IGNORECASE)


def split_outside_quotes(text: str, sep: str) -> list[str]:
    """Split on ``sep`` except inside single or double quotes."""
    if '"' not in text and "'" not in text:
        return text.split(sep)
    parts, buf, quote = [], [], None
    for c in text:
        if quote:
            buf.append(c)
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
            buf.append(c)
        elif c == sep:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(c)
    if quote:
        raise ScpiError(-102, "unterminated string")
    parts.append("".join(buf))
    return parts


_SI = {"P": 1e-12, "N": 1e-9, "U": 1e-6, "M": 1e-3, "K": 1e3, "MA": 1e6, "G": 1e9}
_NUMBER = re.compile(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z]*)\s*\Z")


def parse_number(text: str, minimum: float | None = None, maximum: float | None = None,
                 default: float | None = None) -> float:
    """Decimal numeric program data with MINimum/MAXimum/DEFault and SI-prefixed units."""
    word = text.strip().upper()
    for names, value in ((("MIN", "MINIMUM"), minimum), (("MAX", "MAXIMUM"), maximum),
                         (("DEF", "DEFAULT"), default)):
        if word in names:
            if value is None:
                raise ScpiError(-224, f"{word} not allowed here")
            return value
    m = _NUMBER.match(text)
    if not m:
        raise ScpiError(-104, f"not a number: {text.strip()!r}")
    number, unit = float(m.group(1)), m.group(2).upper()
    if unit:
        # an SI prefix followed by a unit (mV, uA, kOHM) or a bare unit (V, A, S, HZ)
        for prefix in ("MA", "P", "N", "U", "M", "K", "G"):
            if unit.startswith(prefix) and len(unit) > len(prefix):
                rest = unit[len(prefix):]
                if prefix == "M" and rest in ("HZ",):
                    break
                if rest in ("V", "A", "S", "HZ", "OHM", "W", "DBM"):
                    return number * _SI[prefix]
        if unit not in ("V", "A", "S", "HZ", "OHM", "W", "DBM", "MHZ"):
            raise ScpiError(-104, f"unknown unit {unit!r}")
        if unit == "MHZ":
            return number * 1e6
    return number


def parse_bool(text: str) -> bool:
    word = text.strip().upper()
    if word in ("1", "ON"):
        return True
    if word in ("0", "OFF"):
        return False
    raise ScpiError(-224, f"not a boolean: {text.strip()!r}")


def parse_string(text: str) -> str:
    t = text.strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "\"'":
        return t[1:-1]
    raise ScpiError(-104, f"string data expected, got {t!r}")


def parse_choice(text: str, choices: dict[str, str]) -> str:
    """Character data: ``choices`` maps SCPI keywords (``NORMal``) to canonical values."""
    word = text.strip().upper().strip("\"'")
    for keyword, value in choices.items():
        short = "".join(c for c in keyword if not c.islower())
        if word in (short.upper(), keyword.upper()):
            return value
    raise ScpiError(-224, f"{text.strip()!r} is not one of {', '.join(choices)}")


Handler = Callable[[list[str], bool], "str | None"]


class ScpiPersonality:
    """Base of every SCPI instrument mock. Thread-safe: one lock serialises program messages."""

    idn = "labctl,Generic SCPI,0,1.0"
    error_queue_size = 10

    def __init__(self, clock: VirtualClock | None = None):
        self.clock = clock or VirtualClock()
        self.lock = threading.RLock()
        self._commands: list[tuple[re.Pattern, Handler]] = []
        self._cache: dict[str, Handler | None] = {}
        self.errors: deque[tuple[int, str]] = deque()
        self.esr = 0
        self.ese = 0
        self.sre = 0
        self.fault_error: tuple[int, str] | None = None  # injected: pushed on the next message
        self.messages = 0  # program messages received: the mock's count of transactions
        common = {
            "*IDN": self._idn, "*RST": self._rst, "*CLS": self._cls, "*OPC": self._opc,
            "*WAI": self._wai, "*ESR": self._esr, "*ESE": self._ese, "*STB": self._stb,
            "*SRE": self._sre, "*TST": self._tst, "*TRG": self._trg, "*OPT": self._opt,
        }
        self._common = common
        self.command(":SYSTem:ERRor[:NEXT]", self._syst_err)
        self.command(":SYSTem:ERRor:COUNt", self._syst_err_count)
        self.command(":SYSTem:ERRor:CLEar", self._syst_err_clear)
        self.command(":SYSTem:CLEar", self._syst_err_clear)

    # -- registration ------------------------------------------------------------------------
    def command(self, pattern: str, handler: Handler) -> None:
        """Register a header pattern (SCPI notation) with its handler."""
        self._commands.append((compile_header(pattern), handler))
        self._cache.clear()

    def _lookup(self, header: str) -> Handler | None:
        key = header.upper()
        try:
            return self._cache[key]
        except KeyError:
            pass
        found = None
        for regex, handler in self._commands:
            if regex.match(key):
                found = handler
                break
        self._cache[key] = found
        return found

    # -- errors --------------------------------------------------------------------------------
    def push_error(self, code: int, detail: str = "") -> None:
        message = ERRORS.get(code, "Device-specific error")
        if detail:
            message = f"{message}; {detail}"
        if code <= -100 and code > -200:
            self.esr |= ESR_CME
        elif code <= -200 and code > -300:
            self.esr |= ESR_EXE
        elif code <= -400 and code > -500:
            self.esr |= ESR_QYE
        else:
            self.esr |= ESR_DDE
        if len(self.errors) >= self.error_queue_size:
            self.errors.pop()
            self.errors.append((-350, ERRORS[-350]))
        else:
            self.errors.append((code, message))

    # -- message processing ---------------------------------------------------------------------
    def handle_message(self, message: str) -> str | None:
        """Execute one program message; return the response message (without terminator) or None."""
        with self.lock:
            self.messages += 1
            if self.fault_error is not None:
                self.push_error(*self.fault_error)
                self.fault_error = None
            responses = []
            prefix = ""
            try:
                units = split_outside_quotes(message.strip(), ";")
            except ScpiError as exc:
                self.push_error(exc.code, exc.detail)
                return None
            for unit in units:
                unit = unit.strip()
                if not unit:
                    continue
                try:
                    response, prefix = self._execute(unit, prefix)
                except ScpiError as exc:
                    self.push_error(exc.code, exc.detail)
                    continue
                if response is not None:
                    responses.append(response)
            return ";".join(responses) if responses else None

    def _execute(self, unit: str, prefix: str) -> tuple[str | None, str]:
        m = re.match(r"(:?[*A-Za-z][\w:*]*)(\?)?(?:\s+(.*))?\Z", unit, re.S)
        if not m:
            raise ScpiError(-102, unit[:40])
        header, query, arg_text = m.group(1), bool(m.group(2)), m.group(3)
        args = [a.strip() for a in split_outside_quotes(arg_text, ",")] if arg_text else []
        bare = header.lstrip(":")
        if bare.startswith("*"):
            handler = self._common.get(bare.upper())
            if handler is None:
                raise ScpiError(-113, header)
            return handler(args, query), prefix
        if header.startswith(":"):
            candidates = [header]
        else:
            # SCPI path rule: a command after ';' continues at the level of the previous one;
            # fall back to the root for clients that assume it.
            candidates = [prefix + ":" + header, ":" + header] if prefix else [":" + header]
        for full in candidates:
            handler = self._lookup(full)
            if handler is not None:
                new_prefix = full.rsplit(":", 1)[0]
                return handler(args, query), new_prefix
        raise ScpiError(-113, header)

    # -- helpers for handlers --------------------------------------------------------------------
    @staticmethod
    def need(args: list[str], n_min: int, n_max: int | None = None) -> None:
        if len(args) < n_min:
            raise ScpiError(-109)
        if len(args) > (n_min if n_max is None else n_max):
            raise ScpiError(-108)

    def value(self, args: list[str], query: bool, get: Callable[[], str],
              set_: Callable[[str], None]) -> str | None:
        """A plain settable/queryable value: query -> get(), command with one arg -> set_(arg)."""
        if query:
            return get()
        self.need(args, 1)
        set_(args[0])
        return None

    # -- common commands --------------------------------------------------------------------------
    def reset(self) -> None:
        """*RST: return to the documented power-on defaults. Personalities extend this."""

    def _idn(self, args, query):
        return self.idn if query else _raise(-100)

    def _rst(self, args, query):
        self.reset()

    def _cls(self, args, query):
        self.errors.clear()
        self.esr = 0

    def _opc(self, args, query):
        self.wait_complete()
        if query:
            return "1"
        self.esr |= ESR_OPC
        return None

    def _wai(self, args, query):
        self.wait_complete()

    def wait_complete(self) -> None:
        """Finish pending overlapped operations (on the virtual clock); personalities extend it."""

    def _esr(self, args, query):
        if not query:
            raise ScpiError(-113, "*ESR")
        value, self.esr = self.esr, 0
        return str(value)

    def _ese(self, args, query):
        return self.value(args, query, lambda: str(self.ese),
                          lambda a: setattr(self, "ese", int(parse_number(a)) & 255))

    def _sre(self, args, query):
        return self.value(args, query, lambda: str(self.sre),
                          lambda a: setattr(self, "sre", int(parse_number(a)) & 255))

    def status_byte(self) -> int:
        stb = 0
        if self.errors:
            stb |= 4
        if self.esr & self.ese:
            stb |= 32
        if stb & self.sre:
            stb |= 64
        return stb

    def _stb(self, args, query):
        return str(self.status_byte())

    def _tst(self, args, query):
        return "0"

    def _trg(self, args, query):
        return None

    def _opt(self, args, query):
        return "0"

    def _syst_err(self, args, query):
        if not query:
            raise ScpiError(-113, "SYST:ERR")
        if not self.errors:
            return '0,"No error"'
        code, message = self.errors.popleft()
        return f'{code},"{message}"'

    def _syst_err_count(self, args, query):
        return str(len(self.errors))

    def _syst_err_clear(self, args, query):
        self.errors.clear()


def _raise(code: int):
    raise ScpiError(code)
