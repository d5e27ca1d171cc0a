"""Keysight/Agilent B2200A / B2201A switching matrix mainframe, cabled to a simulated crossbar.

Reference: Agilent B2200 User's Guide, ch. 4 "Switch Control", ch. 5 "SCPI Command Reference",
ch. 7 "Error Messages" (see :mod:`drivers.keysight_b2200` for the pages and the other sources).

What is modelled
- 14 input ports and 1-4 cards of 12 output ports (``cards``); auto (``ACON``, card number 0,
  outputs 1-48) and normal (``NCON``, card numbers 1-4, outputs 1-12) configuration modes.
- ``[:ROUTe]:CLOSe[:LIST]``, ``:OPEN[:LIST]`` (and their queries), ``:OPEN:CARD``,
  ``:CLOSe:CARD?``; channel lists ``(@cIIOO,...)`` (4-digit ``IIOO`` in auto mode too) with
  ranges ``a:b`` (every input from a to b times every output from a to b). A list is checked
  whole before any relay moves.
- Connection rule FREE / SROU (single route: a new connection releases the input's and the
  output's previous ones) and sequence NSEQ / BBM / MBBR, per card number.
- Bias Mode (``:BIAS``, ``:BIAS:PORT``, ``:BIAS:CHAN:ENAB|DIS[:LIST]|:CARD``) and Ground Mode
  (``:AGND``, ``:AGND:PORT``, ``:AGND:UNUSED``, ``:AGND:CHAN:ENAB|DIS``): the bias/ground port
  is connected to every enabled output that no other input is connected to; Ground Mode also
  ties the listed unused inputs to the ground port. The two modes exclude each other and the
  port of a mode that is on cannot be switched directly (-221 Settings conflict).
- Couple Mode (``:COUP``, ``:COUP:PORT``, ``:COUP:PORT:DET``): modelled as switching a coupled
  input pair (odd, even) onto the adjacent output pair (odd, even) together.
- ``:ROUT:FUNC ACON|NCON``, ``:SYST:CPON``, the IEEE 488.2 commands and the error queue of
  :class:`~mocks.scpi.ScpiPersonality`. Errors use the standard SCPI codes: -222 for a port or
  card number out of range, -221 for a settings conflict, -102/-104 for a malformed channel list
  (the manual's B2200-specific positive codes were not available to this model).
- Time: a message that moves relays advances the virtual clock by ``switch_time_s`` (one phase
  for NSEQ, two for BBM/MBBR when relays both open and close). The B2200 manual pages available
  give no switching-time figure; 5 ms (reed-relay operate plus settling) is this model's
  assumption, an option.
- Faults: ``stuck_open`` / ``stuck_closed`` relays (sets of (input, output)): the query reports
  the commanded state, as a real mainframe (no relay readback) would; the physics sees the fault.

Cabling (options)
- ``inputs``: instrument terminals on input ports, ``{"<role>_hi": port, "<role>_lo": port}``
  (default ``{"smu_hi": 1, "smu_lo": 2}``); :meth:`KeysightB2200Personality.terminal` (``role``)
  gives what that instrument sees.
- ``grounded_inputs``: input ports tied to circuit ground (default ``[12]``, the default ground
  port; add 10 to ground the bias port too).
- ``input_voltages``: input ports held at a fixed potential by a DC supply, ``{port: volts}``
  (default none), e.g. the read supply that lets one SMU sense a column at virtual ground (see
  :mod:`drivers.smu_matrix`). Other inputs are unconnected.
- ``rows_on`` / ``cols_on``: the output port of each crossbar row / column (lists of the
  crossbar's row / column count; ``[]``: this mainframe carries none of them). Default: the
  lines that no mainframe built earlier on the same crossbar carries, on outputs 1, 2, ... —
  all of them if they fit, otherwise only the rows. One mainframe holds 48 outputs, so a 32x32
  crossbar (64 lines) takes two mainframes: the first carries the rows, the second the columns,
  with no options. Mainframes on the same crossbar share one network: a terminal sees the
  relays of all of them (SMU HI and LO cabled to inputs 1 and 2 of both, through tees).

Physics of a terminal: lines connected to the ``_hi`` input are at the instrument's voltage,
lines on the ``_lo`` input or on a grounded input at 0 V, lines on a supplied input at its
voltage, every other line floats (NaN, solved by :class:`~mocks.devices.crossbar.Crossbar`).
The current is what flows out of the HI input into its lines
(:meth:`~mocks.devices.crossbar.Crossbar.line_currents`): with HI on a row and the other lines
grounded that is the whole row's current, half-selected devices included; with HI on a column at
0 V, a supplied row and the other lines grounded, it is minus the selected device's current.
Lines joined only through an unconnected input are approximated as floating independently. HI
tied to LO, ground or a supply (through a line or an unused-input ground) is a short of
``R_SHORT_OHM``; a supply tied to ground or LO is held at 0 V (the supply current-limits).
Supplied inputs bias the devices only while the SMU's personality accounts time (output on).
"""

from __future__ import annotations

import math
import re
import weakref
from dataclasses import dataclass, field

import numpy as np

from mocks.clock import VirtualClock
from mocks.scpi import ScpiError, ScpiPersonality, parse_bool, parse_choice

N_INPUTS = 14
OUTPUTS_PER_CARD = 12
MAX_CARDS = 4
SWITCH_TIME_S = 5e-3
R_SHORT_OHM = 1.0
V_BRACKET = 210.0  # largest |V| the terminal's inverse searches (a 2450's source range)
MODELS = ("B2200A", "B2201A")
COUPLE_PORTS = (1, 3, 5, 7, 9, 11, 13)
DEFAULT_BIAS_PORT, DEFAULT_GROUND_PORT = 10, 12
_CHANNEL = re.compile(r"(\d)?(\d{2})(\d{2})\Z")

# every mainframe cabled to a crossbar, so a terminal sees the relays of all of them
_FRAMES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass
class CardSettings:
    """Settings of one card number (0 in auto configuration mode, 1-4 in normal)."""

    outputs: set[int]
    rule: str = "FREE"
    sequence: str = "BBM"
    bias: bool = False
    bias_port: int = DEFAULT_BIAS_PORT
    bias_outputs: set[int] = field(default_factory=set)
    ground: bool = False
    ground_port: int = DEFAULT_GROUND_PORT
    ground_outputs: set[int] = field(default_factory=set)
    unused: list[int] = field(default_factory=list)
    couple: bool = False
    couple_ports: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.bias_outputs = set(self.outputs)
        self.ground_outputs = set(self.outputs)


class KeysightB2200Personality(ScpiPersonality):
    """A B2200A/B2201A mainframe whose output ports are cabled to the lines of a crossbar."""

    LINK = "scpi"

    def __init__(self, clock: VirtualClock | None = None, device=None, device_index: int = 0,
                 rng: np.random.Generator | None = None, model: str = "B2201A", cards: int = 4,
                 inputs: dict | None = None, grounded_inputs=(DEFAULT_GROUND_PORT,),
                 input_voltages: dict | None = None, rows_on=None, cols_on=None,
                 switch_time_s: float = SWITCH_TIME_S, firmware: str = "A.01.00"):
        super().__init__(clock)
        if model not in MODELS:
            raise ValueError(f"model {model!r} is not one of {', '.join(MODELS)}")
        if isinstance(cards, bool) or not isinstance(cards, int) or not 1 <= cards <= MAX_CARDS:
            raise ValueError(f"cards = {cards!r}: a mainframe holds 1 to {MAX_CARDS} cards")
        if not (isinstance(switch_time_s, (int, float)) and switch_time_s >= 0):
            raise ValueError(f"switch_time_s = {switch_time_s!r} must be a time >= 0 s")
        self.idn = f"AGILENT,{model},0,{firmware}"
        self.model, self.cards, self.switch_time_s = model, cards, float(switch_time_s)
        self.n_outputs = OUTPUTS_PER_CARD * cards
        self.device, self.device_index = device, device_index
        self.inputs = self._check_inputs(inputs)
        self.grounded_inputs = self._check_ports(grounded_inputs, "grounded_inputs")
        self.input_voltages = self._check_supplies(input_voltages)
        self.fixed = {**{p: 0.0 for p in self.grounded_inputs}, **self.input_voltages}
        cabled = [set(self.inputs.values()), set(self.grounded_inputs),
                  set(self.input_voltages)]
        for a in range(3):
            for b in range(a + 1, 3):
                both = cabled[a] & cabled[b]
                if both:
                    raise ValueError(f"input {min(both)} is cabled twice (inputs, "
                                     "grounded_inputs, input_voltages)")
        self.stuck_open: set[tuple[int, int]] = set()
        self.stuck_closed: set[tuple[int, int]] = set()
        self.version = 0  # bumped whenever the physical connections may have changed
        self.line_of_output = self._wire(rows_on, cols_on)
        if device is not None:
            _FRAMES.setdefault(device, weakref.WeakSet()).add(self)
        self._register()
        self.mode = "ACON"
        self.reset()

    # ================================================================== cabling
    @staticmethod
    def _check_inputs(inputs) -> dict[str, int]:
        inputs = {"smu_hi": 1, "smu_lo": 2} if inputs is None else dict(inputs)
        for name, port in inputs.items():
            if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= N_INPUTS:
                raise ValueError(f"inputs.{name} = {port!r} is not an input port 1..{N_INPUTS}")
        if len(set(inputs.values())) != len(inputs):
            raise ValueError(f"inputs {inputs}: two terminals on one input port")
        return inputs

    @staticmethod
    def _check_ports(ports, what: str) -> list[int]:
        ports = list(ports or [])
        for p in ports:
            if isinstance(p, bool) or not isinstance(p, int) or not 1 <= p <= N_INPUTS:
                raise ValueError(f"{what}: {p!r} is not an input port 1..{N_INPUTS}")
        return ports

    @staticmethod
    def _check_supplies(supplies) -> dict[int, float]:
        out = {}
        for port, volts in dict(supplies or {}).items():
            if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= N_INPUTS:
                raise ValueError(f"input_voltages: {port!r} is not an input port 1..{N_INPUTS}")
            if isinstance(volts, bool) or not isinstance(volts, (int, float)) or \
                    not math.isfinite(volts) or abs(volts) > V_BRACKET:
                raise ValueError(f"input_voltages.{port} = {volts!r} is not a voltage within "
                                 f"±{V_BRACKET:g} V")
            out[port] = float(volts)
        return out

    def _wire(self, rows_on, cols_on) -> dict[int, tuple[str, int]]:
        """Output port -> ("row" | "col", line index), from the options or the default."""
        dev = self.device
        if dev is None:
            if rows_on or cols_on:
                raise ValueError("rows_on/cols_on need a crossbar device")
            return {}
        n_rows, n_cols = dev.shape
        if rows_on is None and cols_on is None:
            taken = set()
            for other in _FRAMES.get(dev, ()):
                taken.update(other.line_of_output.values())
            rows = [("row", r) for r in range(n_rows) if ("row", r) not in taken]
            cols = [("col", c) for c in range(n_cols) if ("col", c) not in taken]
            lines = rows + cols if len(rows) + len(cols) <= self.n_outputs else rows or cols
            if len(lines) > self.n_outputs:
                raise ValueError(f"{len(lines)} crossbar lines do not fit the {self.n_outputs} "
                                 "outputs of this mainframe: give rows_on/cols_on")
            return {k + 1: line for k, line in enumerate(lines)}
        wiring: dict[int, tuple[str, int]] = {}
        for kind, ports, n in (("row", rows_on, n_rows), ("col", cols_on, n_cols)):
            ports = list(ports or [])
            if ports and len(ports) != n:
                raise ValueError(f"{kind}s_on: {len(ports)} outputs for {n} {kind}s")
            for k, port in enumerate(ports):
                if isinstance(port, bool) or not isinstance(port, int) or \
                        not 1 <= port <= self.n_outputs:
                    raise ValueError(f"{kind}s_on[{k}] = {port!r} is not an output port "
                                     f"1..{self.n_outputs}")
                if port in wiring:
                    raise ValueError(f"output {port} is cabled to two lines")
                wiring[port] = (kind, k)
        return wiring

    def terminal(self, role: str) -> MatrixTerminal:
        """What the instrument cabled to inputs ``<role>_hi`` / ``<role>_lo`` sees: a device with
        the API the SMU personalities use."""
        for end in ("hi", "lo"):
            if f"{role}_{end}" not in self.inputs:
                raise ValueError(f"no input port cabled to {role}_{end} (inputs: "
                                 f"{', '.join(self.inputs) or 'none'})")
        return MatrixTerminal(self, role)

    # ================================================================== state
    def reset(self) -> None:
        """*RST: every relay open, every mode off, default ports, rule FREE, sequence BBM."""
        before = self._physical() if hasattr(self, "closed") else set()
        self.closed: set[tuple[int, int]] = set()
        self.settings = {0: CardSettings(set(range(1, self.n_outputs + 1)))}
        for card in range(1, self.cards + 1):
            first = (card - 1) * OUTPUTS_PER_CARD + 1
            self.settings[card] = CardSettings(set(range(first, first + OUTPUTS_PER_CARD)))
        self._moved(before, "BBM")

    def _card_numbers(self) -> list[int]:
        return [0] if self.mode == "ACON" else list(range(1, self.cards + 1))

    def _settings_of(self, output: int) -> CardSettings:
        if self.mode == "ACON":
            return self.settings[0]
        return self.settings[(output - 1) // OUTPUTS_PER_CARD + 1]

    def relays(self) -> set[tuple[int, int]]:
        """Closed (input, output) relays as the firmware set them: commanded plus the
        Bias/Ground Mode connections."""
        used = {o for _, o in self.closed}
        out = set(self.closed)
        for o in range(1, self.n_outputs + 1):
            if o in used:
                continue
            s = self._settings_of(o)
            if s.ground and o in s.ground_outputs:
                out.add((s.ground_port, o))
            elif s.bias and o in s.bias_outputs:
                out.add((s.bias_port, o))
        return out

    def _physical(self) -> set[tuple[int, int]]:
        return (self.relays() - self.stuck_open) | self.stuck_closed

    def input_ties(self) -> dict[int, int]:
        """Unused inputs tied to the ground port in Ground Mode: input -> ground port."""
        ties = {}
        used = {i for i, _ in self.closed}
        for card in self._card_numbers():
            s = self.settings[card]
            if s.ground:
                for i in s.unused:
                    if i not in used and i != s.ground_port:
                        ties[i] = s.ground_port
        return ties

    def _moved(self, before: set, sequence: str) -> None:
        """Account the relay switching time of a change from ``before`` to now."""
        after = self._physical()
        opened, made = before - after, after - before
        self.version += 1
        if not (opened or made):
            return
        phases = 2 if (opened and made and sequence != "NSEQ") else 1
        self.clock.advance(phases * self.switch_time_s)

    def set_fault(self, channel: tuple[int, int], kind: str) -> None:
        """Fault injection: relay (input, output) ``"stuck_open"`` or ``"stuck_closed"``."""
        channel = (int(channel[0]), int(channel[1]))
        if kind not in ("stuck_open", "stuck_closed"):
            raise ValueError(f"relay fault {kind!r} is not 'stuck_open' or 'stuck_closed'")
        with self.lock:
            getattr(self, kind).add(channel)
            self.version += 1

    def clear_faults(self) -> None:
        with self.lock:
            self.stuck_open.clear()
            self.stuck_closed.clear()
            self.version += 1

    # ================================================================== parsing
    def _card_arg(self, text: str, allow_all: bool = True) -> list[int]:
        """Card numbers named by a card_number parameter (0|ALL in ACON, 1-4|ALL in NCON)."""
        word = text.strip().upper()
        if word == "ALL":
            if not allow_all:
                raise ScpiError(-224, "ALL is not allowed in a query")
            return self._card_numbers()
        try:
            card = int(word)
        except ValueError:
            raise ScpiError(-104, f"card number expected, got {text.strip()!r}") from None
        if card not in self._card_numbers():
            mode = "auto" if self.mode == "ACON" else "normal"
            valid = "0" if self.mode == "ACON" else f"1..{self.cards}"
            raise ScpiError(-222, f"card {card} in {mode} configuration mode (valid: {valid} "
                                  "or ALL)")
        return [card]

    def _channel(self, item: str) -> tuple[int, int, int]:
        """(card number, input, global output) of one channel ``[c]IIOO``."""
        m = _CHANNEL.match(item.strip())
        if not m:
            raise ScpiError(-102, f"bad channel {item.strip()!r} (cIIOO)")
        card = int(m.group(1)) if m.group(1) is not None else None
        inp, out = int(m.group(2)), int(m.group(3))
        if self.mode == "ACON":
            if card not in (None, 0):
                raise ScpiError(-222, f"channel {item.strip()}: card {card} in auto "
                                      "configuration mode (use 0)")
            card, high, offset = 0, self.n_outputs, 0
        else:
            if card is None or not 1 <= card <= self.cards:
                raise ScpiError(-222, f"channel {item.strip()}: card {card} not installed "
                                      f"(1..{self.cards})")
            high, offset = OUTPUTS_PER_CARD, (card - 1) * OUTPUTS_PER_CARD
        if not 1 <= inp <= N_INPUTS:
            raise ScpiError(-222, f"channel {item.strip()}: input {inp} (1..{N_INPUTS})")
        if not 1 <= out <= high:
            raise ScpiError(-222, f"channel {item.strip()}: output {out} (1..{high})")
        return card, inp, out + offset

    def _channel_list(self, args: list[str]) -> list[tuple[int, int]]:
        """(input, global output) pairs of a ``(@...)`` argument, in order."""
        text = ",".join(args).strip()
        if not text:
            raise ScpiError(-109, "channel list")
        if not (text.startswith("(@") and text.endswith(")")):
            raise ScpiError(-104, f"channel list (@...) expected, got {text[:30]!r}")
        pairs = []
        for item in text[2:-1].split(","):
            if not item.strip():
                raise ScpiError(-102, f"empty channel in {text[:30]!r}")
            first, sep, last = item.partition(":")
            c1, i1, o1 = self._channel(first)
            if not sep:
                pairs.append((i1, o1))
                continue
            c2, i2, o2 = self._channel(last)
            if c1 != c2 or i1 > i2 or o1 > o2:
                raise ScpiError(-222, f"channel range {item.strip()} (same card, low:high)")
            pairs.extend((i, o) for i in range(i1, i2 + 1) for o in range(o1, o2 + 1))
        return pairs

    def _format_channels(self, pairs) -> str:
        items = []
        for i, o in sorted(pairs):
            if self.mode == "ACON":
                items.append(f"0{i:02d}{o:02d}")
            else:
                card = (o - 1) // OUTPUTS_PER_CARD + 1
                items.append(f"{card}{i:02d}{o - (card - 1) * OUTPUTS_PER_CARD:02d}")
        return "(@" + ",".join(items) + ")"

    # ================================================================== registration
    def _register(self) -> None:
        c = self.command
        c("[:ROUTe]:CLOSe:CARD", self._close_card)
        c("[:ROUTe]:CLOSe[:LIST]", self._close)
        c("[:ROUTe]:OPEN:CARD", self._open_card)
        c("[:ROUTe]:OPEN[:LIST]", self._open)
        c("[:ROUTe]:FUNCtion", self._function)
        c("[:ROUTe]:CONNection:RULE", self._setting("rule", {"FREE": "FREE", "SROUte": "SROU"}))
        c("[:ROUTe]:CONNection:SEQuence",
          self._setting("sequence", {"NSEQ": "NSEQ", "BBM": "BBM", "MBBReak": "MBBR"}))
        c("[:ROUTe]:BIAS[:STATe]", self._mode_state("bias", "ground"))
        c("[:ROUTe]:BIAS:PORT", self._port_setting("bias_port"))
        c("[:ROUTe]:BIAS:CHANnel:ENABle:CARD", self._enable_card("bias_outputs", True))
        c("[:ROUTe]:BIAS:CHANnel:DISable:CARD", self._enable_card("bias_outputs", False))
        c("[:ROUTe]:BIAS:CHANnel:ENABle[:LIST]", self._enable_list("bias_outputs", True))
        c("[:ROUTe]:BIAS:CHANnel:DISable[:LIST]", self._enable_list("bias_outputs", False))
        c("[:ROUTe]:AGND[:STATe]", self._mode_state("ground", "bias"))
        c("[:ROUTe]:AGND:PORT", self._port_setting("ground_port"))
        c("[:ROUTe]:AGND:UNUSED", self._port_list("unused", range(1, N_INPUTS + 1)))
        c("[:ROUTe]:AGND:CHANnel:ENABle:CARD", self._enable_card("ground_outputs", True))
        c("[:ROUTe]:AGND:CHANnel:DISable:CARD", self._enable_card("ground_outputs", False))
        c("[:ROUTe]:AGND:CHANnel:ENABle[:LIST]", self._enable_list("ground_outputs", True))
        c("[:ROUTe]:AGND:CHANnel:DISable[:LIST]", self._enable_list("ground_outputs", False))
        c("[:ROUTe]:COUPle[:STATe]", self._couple_state)
        c("[:ROUTe]:COUPle:PORT:DETect", self._couple_detect)
        c("[:ROUTe]:COUPle:PORT", self._port_list("couple_ports", COUPLE_PORTS))
        c(":SYSTem:CPON", self._cpon)

    @staticmethod
    def _no_query(query: bool) -> None:
        if query:
            raise ScpiError(-113, "command only")

    # ================================================================== switching
    def _special_ports(self, pairs) -> None:
        """The port of a mode that is on cannot be switched directly."""
        for i, o in pairs:
            s = self._settings_of(o)
            if s.bias and i == s.bias_port:
                raise ScpiError(-221, f"input {i} is the bias port and Bias Mode is on")
            if s.ground and i == s.ground_port:
                raise ScpiError(-221, f"input {i} is the ground port and Ground Mode is on")

    def _coupled(self, pairs) -> list[tuple[int, int]]:
        """Add the partner channel of every channel on a coupled input pair."""
        out = []
        for i, o in pairs:
            out.append((i, o))
            s = self._settings_of(o)
            if not s.couple:
                continue
            first = i if i % 2 else i - 1
            if first not in s.couple_ports:
                continue
            o_first = o if o % 2 else o - 1
            if o_first + 1 > self.n_outputs or \
                    self._settings_of(o_first + 1) is not s:
                raise ScpiError(-221, f"output {o} has no partner for coupled inputs "
                                      f"{first},{first + 1}")
            out = [p for p in out if p != (i, o)]
            out += [(first, o_first), (first + 1, o_first + 1)]
        return list(dict.fromkeys(out))

    def _close(self, args, query):
        pairs = self._channel_list(args)
        if query:
            return ",".join("1" if p in self.closed else "0" for p in pairs)
        pairs = self._coupled(pairs)
        self._special_ports(pairs)
        before = self._physical()
        sequence = self._settings_of(pairs[0][1]).sequence
        for i, o in pairs:
            if self._settings_of(o).rule == "SROU":
                self.closed = {(a, b) for a, b in self.closed if a != i and b != o}
            self.closed.add((i, o))
        self._moved(before, sequence)
        return None

    def _open(self, args, query):
        pairs = self._channel_list(args)
        if query:
            return ",".join("0" if p in self.closed else "1" for p in pairs)
        pairs = self._coupled(pairs)
        self._special_ports(pairs)
        before = self._physical()
        self.closed -= set(pairs)
        self._moved(before, self._settings_of(pairs[0][1]).sequence)
        return None

    def _open_card(self, args, query):
        self._no_query(query)
        self.need(args, 1)
        cards = self._card_arg(args[0])
        before = self._physical()
        outputs = set().union(*(self.settings[k].outputs for k in cards))
        self.closed = {(i, o) for i, o in self.closed if o not in outputs}
        self._moved(before, self.settings[cards[0]].sequence)
        return None

    def _close_card(self, args, query):
        if not query:
            raise ScpiError(-113, "CLOSe:CARD is a query")
        self.need(args, 1)
        card = self._card_arg(args[0], allow_all=False)[0]
        outputs = self.settings[card].outputs
        return self._format_channels(p for p in self.relays() if p[1] in outputs)

    def _function(self, args, query):
        if query:
            return self.mode
        self.need(args, 1)
        mode = parse_choice(args[0], {"ACONfig": "ACON", "NCONfig": "NCON"})
        if mode != self.mode:
            before = self._physical()
            self.mode = mode
            self.closed = set()  # changing the configuration mode opens every relay
            self._moved(before, "BBM")
        return None

    def _cpon(self, args, query):
        self._no_query(query)
        self.need(args, 1)
        before = self._physical()
        for card in self._card_arg(args[0]):
            s = self.settings[card]
            self.settings[card] = CardSettings(s.outputs)
            self.closed = {(i, o) for i, o in self.closed if o not in s.outputs}
        self._moved(before, "BBM")
        return None

    # ================================================================== settings
    def _card_setting(self, args, query, n_values: int):
        """Split ``card_number[,value]`` arguments; return (cards, value or None)."""
        if query:
            self.need(args, 1)
            return self._card_arg(args[0], allow_all=False), None
        self.need(args, 1 + n_values)
        return self._card_arg(args[0]), args[1] if n_values else None

    def _setting(self, key: str, choices: dict[str, str]):
        def handler(args, query):
            cards, value = self._card_setting(args, query, 1)
            if query:
                return getattr(self.settings[cards[0]], key)
            value = parse_choice(value, choices)
            for card in cards:
                setattr(self.settings[card], key, value)
            return None
        return handler

    def _mode_state(self, key: str, other: str):
        def handler(args, query):
            cards, value = self._card_setting(args, query, 1)
            if query:
                return "1" if getattr(self.settings[cards[0]], key) else "0"
            state = parse_bool(value)
            if state and any(getattr(self.settings[k], other) for k in cards):
                raise ScpiError(-221, f"{key} mode cannot be ON while {other} mode is ON")
            before = self._physical()
            for card in cards:
                setattr(self.settings[card], key, state)
            self._moved(before, "BBM")
            return None
        return handler

    def _port_setting(self, key: str):
        mode = "bias" if key == "bias_port" else "ground"

        def handler(args, query):
            cards, value = self._card_setting(args, query, 1)
            if query:
                return str(getattr(self.settings[cards[0]], key))
            try:
                port = int(value)
            except ValueError:
                raise ScpiError(-104, f"input port expected, got {value!r}") from None
            if not 1 <= port <= N_INPUTS:
                raise ScpiError(-222, f"input port {port} (1..{N_INPUTS})")
            if any(getattr(self.settings[k], mode) for k in cards):
                raise ScpiError(-221, f"{key} cannot change while {mode} mode is ON")
            for card in cards:
                setattr(self.settings[card], key, port)
            return None
        return handler

    def _port_list(self, key: str, allowed):
        def handler(args, query):
            if query:
                self.need(args, 1)
                card = self._card_arg(args[0], allow_all=False)[0]
                return "'" + ",".join(str(p) for p in getattr(self.settings[card], key)) + "'"
            if len(args) < 2:
                raise ScpiError(-109, "card number and port list")
            cards = self._card_arg(args[0])
            text = ",".join(args[1:]).strip().strip("'\"")
            try:
                ports = [int(x) for x in text.split(",") if x.strip()]
            except ValueError:
                raise ScpiError(-104, f"port list expected, got {text!r}") from None
            bad = [p for p in ports if p not in allowed]
            if bad:
                raise ScpiError(-222, f"port {bad[0]} not in {list(allowed)}")
            before = self._physical()
            for card in cards:
                setattr(self.settings[card], key, sorted(set(ports)))
            self._moved(before, "BBM")
            return None
        return handler

    def _enable_card(self, key: str, enable: bool):
        def handler(args, query):
            self._no_query(query)
            self.need(args, 1)
            before = self._physical()
            for card in self._card_arg(args[0]):
                s = self.settings[card]
                setattr(s, key, set(s.outputs) if enable else set())
            self._moved(before, "BBM")
            return None
        return handler

    def _enable_list(self, key: str, enable: bool):
        def handler(args, query):
            outputs = [o for _, o in self._channel_list(args)]
            if query:
                return ",".join("1" if (o in getattr(self._settings_of(o), key)) == enable
                                else "0" for o in outputs)
            before = self._physical()
            for o in outputs:
                target = getattr(self._settings_of(o), key)
                if enable:
                    target.add(o)
                else:
                    target.discard(o)
            self._moved(before, "BBM")
            return None
        return handler

    def _couple_state(self, args, query):
        cards, value = self._card_setting(args, query, 1)
        if query:
            return "1" if self.settings[cards[0]].couple else "0"
        for card in cards:
            self.settings[card].couple = parse_bool(value)
        return None

    def _couple_detect(self, args, query):
        """Kelvin detection: the simulated cabling has no Kelvin pairs, so none is found."""
        self._no_query(query)
        for card in self._card_numbers():
            self.settings[card].couple_ports = []
        return None


# ====================================================================== terminal physics
@dataclass
class _Network:
    """Line potentials of the cabled crossbar for one relay state."""

    row_v: np.ndarray      # fixed potential (LO, ground, supply); NaN for floating and HI lines
    col_v: np.ndarray
    hi_rows: np.ndarray    # indices of the lines on the HI input
    hi_cols: np.ndarray
    short: bool            # HI joined to LO, ground or a supply
    has_return: bool       # some line is held at a fixed potential
    supplied: bool         # some line is held at a non-zero fixed potential

    @property
    def open(self) -> bool:
        """Nothing to drive: HI reaches no line, or no other line is held at a potential."""
        return not self.short and (not (self.hi_rows.size or self.hi_cols.size)
                                   or not self.has_return)


class MatrixTerminal:
    """An instrument's HI/LO pair cabled to matrix inputs, seen as a two-terminal device.

    The API of a device array that :class:`~mocks.instruments.keithley2450.Keithley2450Personality`
    drives (``current``, ``measure_current``, ``voltage_at_current``, ``apply``; the index is
    ignored): the network is the crossbar with the lines the closed relays connect.
    """

    def __init__(self, frame: KeysightB2200Personality, role: str):
        self.frame, self.role = frame, role
        self.crossbar = frame.device
        self._cache: tuple | None = None

    @property
    def frames(self) -> list[KeysightB2200Personality]:
        if self.crossbar is None:
            return [self.frame]
        return sorted(_FRAMES.get(self.crossbar, ()), key=id)

    def network(self) -> _Network:
        frames = self.frames
        key = tuple((id(f), f.version) for f in frames)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        net = self._build(frames)
        self._cache = (key, net)
        return net

    def _build(self, frames) -> _Network:
        xbar = self.crossbar
        n_rows, n_cols = xbar.shape if xbar is not None else (0, 0)
        nodes = {"row": [set() for _ in range(n_rows)], "col": [set() for _ in range(n_cols)]}
        short = False
        for f in frames:
            # node of each input: "hi", "lo", a fixed potential (float) or None (unconnected)
            label: dict[int, object] = {port: None for port in range(1, N_INPUTS + 1)}
            label.update(f.fixed)
            for name, port in f.inputs.items():
                if name == f"{self.role}_hi":
                    label[port] = "hi"
                elif name == f"{self.role}_lo":
                    label[port] = "lo"
            for port, gport in f.input_ties().items():
                joined = {label[port], label[gport]} - {None}
                short |= "hi" in joined and len(joined) > 1
                node = label[gport] if label[gport] is not None else label[port]
                label[port] = label[gport] = node
            for i, o in f._physical():
                line = f.line_of_output.get(o)
                if line is not None and label[i] is not None:
                    nodes[line[0]][line[1]].add(label[i])
        lines = {}
        for kind in ("row", "col"):
            v = np.full(len(nodes[kind]), np.nan)
            hi = []
            for k, found in enumerate(nodes[kind]):
                if "hi" in found:
                    hi.append(k)
                    short |= len(found) > 1
                elif found:
                    # LO and ground win over a supply (which current-limits)
                    v[k] = 0.0 if "lo" in found or 0.0 in found or len(found) > 1 \
                        else float(next(iter(found)))
            lines[kind] = (v, np.array(hi, dtype=np.intp))
        row_v, hi_rows = lines["row"]
        col_v, hi_cols = lines["col"]
        has_return = bool(np.isfinite(row_v).any() or np.isfinite(col_v).any())
        fixed = np.concatenate([row_v[np.isfinite(row_v)], col_v[np.isfinite(col_v)]])
        return _Network(row_v, col_v, hi_rows, hi_cols, short, has_return,
                        bool(np.any(fixed != 0.0)))

    def _potentials(self, net: _Network, v: float) -> tuple[np.ndarray, np.ndarray]:
        row_v, col_v = net.row_v.copy(), net.col_v.copy()
        row_v[net.hi_rows] = v
        col_v[net.hi_cols] = v
        return row_v, col_v

    def _current(self, v: float, noisy: bool) -> float:
        net = self.network()
        if net.short:
            return v / R_SHORT_OHM
        if net.open or (v == 0.0 and not net.supplied):
            return 0.0
        row_in, col_out = self.crossbar.line_currents(*self._potentials(net, v), noisy=noisy)
        return float(row_in[net.hi_rows].sum() - col_out[net.hi_cols].sum())

    # -- device API -----------------------------------------------------------------------------
    def current(self, v, index=0) -> np.ndarray:
        """Current in A out of the HI input at HI−LO voltage ``v`` (V), noiseless."""
        return np.array([self._current(float(np.asarray(v).reshape(-1)[0]), False)])

    def measure_current(self, v, index=0) -> np.ndarray:
        """As :meth:`current`, with the devices' read noise."""
        return np.array([self._current(float(np.asarray(v).reshape(-1)[0]), True)])

    def voltage_at_current(self, i, index=0) -> np.ndarray:
        """The voltage (V) at which the network draws current ``i`` (A) out of HI: bisection on
        :meth:`current`, which rises monotonically with the voltage; ±inf if it does not reach
        ``i`` within ±210 V (an open circuit never does)."""
        i = float(np.asarray(i).reshape(-1)[0])
        net = self.network()
        if net.short:
            return np.array([i * R_SHORT_OHM])
        if net.open:
            return np.array([0.0 if i == 0.0 else math.copysign(math.inf, i)])
        low, high = -1e-3, 1e-3
        while self._current(low, False) > i:
            high, low = low, 2 * low
            if low < -2 * V_BRACKET:
                return np.array([-math.inf])
        while self._current(high, False) < i:
            low, high = high, 2 * high
            if high > 2 * V_BRACKET:
                return np.array([math.inf])
        for _ in range(60):
            mid = 0.5 * (low + high)
            if self._current(mid, False) < i:
                low = mid
            else:
                high = mid
        return np.array([0.5 * (low + high)])

    def apply(self, v, dt, index=0) -> None:
        """Hold HI−LO voltage ``v`` (V) for ``dt`` (s) on the routed network."""
        v = float(np.asarray(v).reshape(-1)[0])
        net = self.network()
        if net.short or dt <= 0:
            return
        if net.open or (v == 0.0 and not net.supplied):
            if net.supplied:  # no HI: the supplied lines still bias their devices
                self.crossbar.apply(net.row_v, net.col_v, dt)
            return
        self.crossbar.apply(*self._potentials(net, v), dt)
