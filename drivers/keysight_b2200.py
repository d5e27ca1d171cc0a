"""Keysight (Agilent) B2200A femto-leakage / B2201A low-leakage switching matrix mainframes.

Both mainframes have 14 input ports (1-8 triaxial "SMU" inputs, 9-14 BNC "AUX" inputs) and up to
four 12-output cards (B2210A / B2211A), 48 output ports in all. Any input can be connected to any
output by closing the crosspoint relay of the (input, output) channel.

Sources (facts only; the code is this project's own):

- Agilent B2200 User's Guide (B2200-90000), ch. 4 "Switch Control" and ch. 5 "SCPI Command
  Reference": ``[:ROUTe]:CLOSe[:LIST] (@channel_list)``, ``[:ROUTe]:OPEN[:LIST]``,
  ``[:ROUTe]:OPEN:CARD card``, ``[:ROUTe]:CLOSe:CARD? card``, ``[:ROUTe]:BIAS[:STATe]
  card,state`` ("When the Bias Mode is ON, the input Bias Port is connected to all bias-enabled
  output ports that have not been connected to any other input port"; "You cannot set the Bias
  Mode to ON when the Ground Mode is ON"; card_number is 0 or ALL in auto configuration mode,
  1-4 or ALL in normal configuration mode, ALL not for queries), ``*IDN?`` answering
  ``AGILENT,model,0,revision``; ch. 7 "Error Messages" (standard SCPI codes, B2200-specific
  positive codes). Pages consulted through manualsdump.com (agilent_technologies-b2200a-b2201a)
  and azmanual.top (Edition 4, p. 5-39).
- Channel list: one channel is ``cIIOO`` — card digit (0 auto configuration, 1-4 normal), input
  port (2 digits), output port (2 digits), e.g. ``(@00105,00233)``; QCoDeS
  ``qcodes/instrument_drivers/Keysight/keysight_b220x.py`` uses the same form and the command
  headers ``:CONN:RULE card,FREE|SROU``, ``:CONN:SEQ card,NSEQ|BBM|MBBR``,
  ``:BIAS:PORT card,port`` (default 10), ``:BIAS:CHAN:ENAB|DIS (@c01oo)`` and ``:CARD card``,
  ``:AGND card,state``, ``:AGND:PORT card,port`` (default 12), ``:AGND:UNUSED card,'list'``,
  ``:AGND:CHAN:ENAB|DIS``, ``:COUP card,state``, ``:COUP:PORT card,'list'`` (odd inputs 1-13),
  ``:COUP:PORT:DET``. ``:ROUT:FUNC ACON|NCON`` (configuration mode) as used by published B2201A
  control scripts.

Cards are pymeasure channels: ``matrix.card0`` addresses the whole mainframe in auto
configuration mode (outputs 1-48); ``matrix.card1`` .. ``matrix.card4`` address single cards in
normal configuration mode (outputs 1-12 each).

.. code-block:: python

    matrix = KeysightB2200("GPIB0::22::INSTR")
    matrix.config_mode = "auto"
    matrix.card0.connection_rule = "free"
    matrix.card0.route([(1, 5), (2, 40)])   # input 1 -> output 5, input 2 -> output 40
    matrix.card0.closed_channels            # [(1, 5), (2, 40)]
    matrix.shutdown()                       # every relay open
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from pymeasure.instruments import Channel, Instrument, SCPIMixin
from pymeasure.instruments.validators import strict_discrete_set

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

N_INPUTS = 14
OUTPUTS_PER_CARD = 12
MAX_CARDS = 4
COUPLE_PORTS = (1, 3, 5, 7, 9, 11, 13)  # first (odd) input of each pair that can be coupled
BOOL_MAP = {True: 1, False: 0}
_CHANNEL = re.compile(r"(\d?)(\d{2})(\d{2})\Z")


def channel_list(card: int, pairs: Iterable[tuple[int, int]]) -> str:
    """``(@cIIOO,...)`` for (input, output) ``pairs`` on ``card``."""
    return "(@" + ",".join(f"{card}{i:02d}{o:02d}" for i, o in pairs) + ")"


def parse_channel_list(text: str) -> list[tuple[int, int]]:
    """(input, output) pairs of a ``(@cIIOO,...)`` reply (4-digit ``IIOO`` channels too),
    sorted; ``(@)`` or an empty reply give []."""
    body = str(text).strip().strip("'\"").strip()
    if not (body.startswith("(@") and body.endswith(")")):
        raise ValueError(f"not a channel list: {text!r}")
    pairs = []
    for item in body[2:-1].split(","):
        item = item.strip()
        if not item:
            continue
        m = _CHANNEL.match(item)
        if not m:
            raise ValueError(f"bad channel {item!r} in {text!r}")
        pairs.append((int(m.group(2)), int(m.group(3))))
    return sorted(pairs)


def _port_list(value) -> str:
    """Quoted port list argument, e.g. ``'1,3'`` (``''`` for none)."""
    return ",".join(str(int(p)) for p in value)


def _parse_port_list(reply) -> list[int]:
    return [int(x) for x in str(reply).strip().strip("'\"").split(",") if x.strip()]


class B2200Card(Channel):
    """One card number of the mainframe: 0 = every installed card as one (auto configuration
    mode, outputs 1-48), 1-4 = one card (normal configuration mode, outputs 1-12)."""

    connection_rule = Channel.control(
        ":ROUT:CONN:RULE? {ch}", ":ROUT:CONN:RULE {ch},%s",
        """Control the connection rule (str strictly 'free' or 'single'). 'free': an input may
        connect to several outputs and an output to several inputs; 'single' (SROU): one each,
        a new connection releases the port's previous one.""",
        validator=strict_discrete_set,
        values={"free": "FREE", "single": "SROU"},
        map_values=True,
        cast=str,
    )

    connection_sequence = Channel.control(
        ":ROUT:CONN:SEQ? {ch}", ":ROUT:CONN:SEQ {ch},%s",
        """Control the relay sequence of a change (str strictly 'none', 'bbm' or 'mbb'):
        'none' (NSEQ) opens and closes together, 'bbm' breaks before it makes, 'mbb' (MBBR)
        makes before it breaks.""",
        validator=strict_discrete_set,
        values={"none": "NSEQ", "bbm": "BBM", "mbb": "MBBR"},
        map_values=True,
        cast=str,
    )

    bias_enabled = Channel.control(
        ":ROUT:BIAS? {ch}", ":ROUT:BIAS {ch},%d",
        """Control Bias Mode (bool): the bias input port is connected to every bias-enabled
        output that no other input is connected to. Not together with Ground Mode.""",
        validator=strict_discrete_set,
        values=BOOL_MAP,
        map_values=True,
    )

    bias_port = Channel.control(
        ":ROUT:BIAS:PORT? {ch}", ":ROUT:BIAS:PORT {ch},%d",
        """Control the bias input port (int strictly from 1 to 14; 10 after reset).""",
        validator=strict_discrete_set,
        values=range(1, N_INPUTS + 1),
        cast=int,
    )

    ground_enabled = Channel.control(
        ":ROUT:AGND? {ch}", ":ROUT:AGND {ch},%d",
        """Control Ground Mode (bool): the ground input port is connected to every
        ground-enabled output that no other input is connected to (and to the unused inputs
        listed in ``ground_unused_inputs``). Not together with Bias Mode.""",
        validator=strict_discrete_set,
        values=BOOL_MAP,
        map_values=True,
    )

    ground_port = Channel.control(
        ":ROUT:AGND:PORT? {ch}", ":ROUT:AGND:PORT {ch},%d",
        """Control the ground input port (int strictly from 1 to 14; 12 after reset).""",
        validator=strict_discrete_set,
        values=range(1, N_INPUTS + 1),
        cast=int,
    )

    ground_unused_inputs = Channel.control(
        ":ROUT:AGND:UNUSED? {ch}", ":ROUT:AGND:UNUSED {ch},'%s'",
        """Control the input ports tied to the ground port in Ground Mode while they are not
        connected to any output (list of int from 1 to 14; [] for none).""",
        validator=lambda value, _: _check_ports(value, range(1, N_INPUTS + 1), "input"),
        set_process=_port_list,
        get_process=_parse_port_list,
        cast=str,
        maxsplit=0,
    )

    couple_enabled = Channel.control(
        ":ROUT:COUP? {ch}", ":ROUT:COUP {ch},%d",
        """Control Couple Mode (bool): each couple port pair (odd input, next even input) is
        switched together onto adjacent outputs (Kelvin connections).""",
        validator=strict_discrete_set,
        values=BOOL_MAP,
        map_values=True,
    )

    couple_ports = Channel.control(
        ":ROUT:COUP:PORT? {ch}", ":ROUT:COUP:PORT {ch},'%s'",
        """Control the coupled input pairs, named by their odd input (list of int from
        1, 3, 5, 7, 9, 11, 13).""",
        validator=lambda value, _: _check_ports(value, COUPLE_PORTS, "couple port"),
        set_process=_port_list,
        get_process=_parse_port_list,
        cast=str,
        maxsplit=0,
    )

    closed_channels = Channel.measurement(
        ":ROUT:CLOS:CARD? {ch}",
        """Get the closed channels of this card as sorted (input, output) pairs (list of tuple
        of int), Bias/Ground Mode connections included.""",
        get_process=parse_channel_list,
        cast=str,
        maxsplit=0,
    )

    # ------------------------------------------------------------------ ports
    @property
    def n_outputs(self) -> int:
        """Highest output number this card number addresses (48 for card 0, 12 otherwise)."""
        return OUTPUTS_PER_CARD * (MAX_CARDS if self.id == 0 else 1)

    def channels(self, pairs: Iterable[tuple[int, int]]) -> str:
        """The channel list of (input, output) ``pairs`` on this card; checks every port."""
        pairs = [tuple(p) for p in pairs]
        if not pairs:
            raise ValueError(f"{self.parent.name}: empty channel list")
        for pair in pairs:
            if len(pair) != 2:
                raise ValueError(f"{self.parent.name}: channel {pair!r} is not (input, output)")
            self._port(pair[0], N_INPUTS, "input")
            self._port(pair[1], self.n_outputs, "output")
        return channel_list(self.id, pairs)

    def _outputs_list(self, outputs: Iterable[int]) -> str:
        """Channel list naming outputs only (input digits 01, as the bias/ground commands
        take them)."""
        return self.channels((1, o) for o in outputs)

    def _port(self, value, high: int, what: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
            raise ValueError(f"{self.parent.name}: card {self.id} {what} port {value!r} is not "
                             f"an int from 1 to {high}")
        return value

    # ------------------------------------------------------------------ switching
    def close(self, pairs: Iterable[tuple[int, int]]) -> None:
        """Close the channels (input, output) of ``pairs`` (``:ROUT:CLOS``)."""
        self.write(f":ROUT:CLOS {self.channels(pairs)}")

    def open(self, pairs: Iterable[tuple[int, int]]) -> None:
        """Open the channels (input, output) of ``pairs`` (``:ROUT:OPEN``)."""
        self.write(f":ROUT:OPEN {self.channels(pairs)}")

    def open_all(self) -> None:
        """Open every relay of this card (``:ROUT:OPEN:CARD``); in Bias/Ground Mode the outputs
        then go to the bias/ground port."""
        self.write(":ROUT:OPEN:CARD {ch}")

    def route(self, pairs: Iterable[tuple[int, int]], wait: bool = False) -> None:
        """Make ``pairs`` the only closed channels: open the card and close them, chained in
        one program message (one transaction). With ``wait``, ``*OPC?`` ends the message and
        the call returns once the relays have switched (still one transaction)."""
        command = f":ROUT:OPEN:CARD {{ch}};:ROUT:CLOS {self.channels(pairs)}"
        if not wait:
            self.write(command)
        elif self.ask(f"{command};*OPC?").strip() != "1":
            raise ValueError(f"{self.parent.name}: *OPC? after routing did not answer 1")

    def is_closed(self, pairs: Iterable[tuple[int, int]]) -> list[bool]:
        """Whether each channel of ``pairs`` is closed (``:ROUT:CLOS?``), in order."""
        pairs = list(pairs)
        reply = self.values(f":ROUT:CLOS? {self.channels(pairs)}", cast=int)
        if len(reply) != len(pairs):
            raise ValueError(f"{self.parent.name}: {len(reply)} states for {len(pairs)} channels")
        return [bool(x) for x in reply]

    def bias_enable_outputs(self, outputs: Iterable[int]) -> None:
        """Make ``outputs`` bias-enabled (``:ROUT:BIAS:CHAN:ENAB``)."""
        self.write(f":ROUT:BIAS:CHAN:ENAB {self._outputs_list(outputs)}")

    def bias_disable_outputs(self, outputs: Iterable[int]) -> None:
        """Make ``outputs`` bias-disabled (``:ROUT:BIAS:CHAN:DIS``)."""
        self.write(f":ROUT:BIAS:CHAN:DIS {self._outputs_list(outputs)}")

    def bias_enable_all(self) -> None:
        """Make every output of this card bias-enabled."""
        self.write(":ROUT:BIAS:CHAN:ENAB:CARD {ch}")

    def bias_disable_all(self) -> None:
        """Make every output of this card bias-disabled."""
        self.write(":ROUT:BIAS:CHAN:DIS:CARD {ch}")

    def ground_enable_outputs(self, outputs: Iterable[int]) -> None:
        """Make ``outputs`` ground-enabled (``:ROUT:AGND:CHAN:ENAB``)."""
        self.write(f":ROUT:AGND:CHAN:ENAB {self._outputs_list(outputs)}")

    def ground_disable_outputs(self, outputs: Iterable[int]) -> None:
        """Make ``outputs`` ground-disabled (``:ROUT:AGND:CHAN:DIS``)."""
        self.write(f":ROUT:AGND:CHAN:DIS {self._outputs_list(outputs)}")

    def ground_enable_all(self) -> None:
        """Make every output of this card ground-enabled."""
        self.write(":ROUT:AGND:CHAN:ENAB:CARD {ch}")

    def ground_disable_all(self) -> None:
        """Make every output of this card ground-disabled."""
        self.write(":ROUT:AGND:CHAN:DIS:CARD {ch}")


def _check_ports(value, allowed, what: str) -> list[int]:
    ports = list(value)
    for p in ports:
        if isinstance(p, bool) or not isinstance(p, int) or p not in allowed:
            raise ValueError(f"{what} {p!r} not in {list(allowed)}")
    return ports


class KeysightB2200(SCPIMixin, Instrument):
    """Keysight/Agilent B2200A or B2201A switching matrix (14 inputs, up to 48 outputs).

    ``card0`` is the mainframe in auto configuration mode; ``card1`` .. ``card4`` single cards in
    normal configuration mode (see the module docstring). :meth:`shutdown` opens every relay.
    """

    cards = Instrument.MultiChannelCreator(B2200Card, (0, 1, 2, 3, 4), prefix="card")

    def __init__(self, adapter, name="Keysight B2200 switching matrix", **kwargs):
        super().__init__(adapter, name, **kwargs)

    config_mode = Instrument.control(
        ":ROUT:FUNC?", ":ROUT:FUNC %s",
        """Control the channel configuration mode (str strictly 'auto' or 'normal'): 'auto'
        (ACON) treats every installed card as one (card number 0, outputs 1-48), 'normal' (NCON)
        addresses each card (card numbers 1-4, outputs 1-12).""",
        validator=strict_discrete_set,
        values={"auto": "ACON", "normal": "NCON"},
        map_values=True,
        cast=str,
    )

    def open_all(self) -> None:
        """Open every relay of every card (``:ROUT:OPEN:CARD ALL``)."""
        self.write(":ROUT:OPEN:CARD ALL")

    def shutdown(self) -> None:
        """Safe state: every relay open (outputs left floating, or on the bias/ground port where
        Bias/Ground Mode is on)."""
        log.info("Shutting down %s.", self.name)
        self.open_all()
        super().shutdown()
