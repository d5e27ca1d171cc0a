"""ArC TWO (ArC Instruments) behind its Python API: a stand-in for ``pyarc2.Instrument``.

The ArC TWO is driven through pyarc2 (Python bindings of the Rust libarc2): calls queue FPGA
instructions in a command buffer, :meth:`SimInstrument.execute` writes the buffer to the board,
reads put their results in the board's memory and :meth:`~SimInstrument.pick_one` /
:meth:`~SimInstrument.get_iter` fetch them. This module offers the same names as ``pyarc2``
(``Instrument``-compatible methods with the same argument order and types, the enum types
``BiasOrder``, ``ReadAt``, ``ReadAfter``, ``DataMode``, ``ReadType``, ``IdleMode``,
``ControlMode``, ``WaitFor``, ``AuxDACFn``, ``IODir``, ``LogicLevel``, ``OutputRange``, the
exception ``ArC2Error``, ``find_ids`` and ``LIBARC2_VERSION``), so code written for the real board
runs against it unchanged.

Sources, read for facts only:

- ``pyarc2`` 0.6.0 (PyPI wheel, ``pyarc2/__init__.py``, ``pyarc2/pyarc2.pyi`` and the docstrings
  of the compiled module; ``arc-instruments/pyarc2`` ``src/lib.rs``): method names, argument
  order and types (channels as uint64 iterables, widths as integer nanoseconds, voltages f32),
  return types (``read_one`` → float, slices → 32 f32, ``read_all``/``pulseread_all`` → 32×32
  f32, ``read_slice_open`` → 64 f32, ``pick_one`` → 64 (``DataMode.All``) or 32 f32 or None),
  ``get_iter`` yielding one-element lists, ``finalise_operation`` (Float: clear grounds, DACs to
  0, float; SoftGnd: clear grounds, ``ground_all``; HardGnd: DACs to 0, float, all to GND),
  ``IdleMode`` values 1/2/3, ``ReadAt.Arb`` storing an f32, ``ReadAt.voltage()`` raising
  ``Exception("No voltage associated")``, ``ReadAfter.from_str`` raising ``ValueError("Unknown
  ReadAfter")``, ``pulse_slice_fast_open`` raising ``ValueError`` unless 8 timings are given,
  ``Instrument(id)`` on a missing board raising ``ArC2Error("Invalid ArC2 device id: …")``.
- ``arc-instruments/libarc2`` ``src/instrument.rs``: the channel partition (bit lines
  0–15 + 32–47, word lines 16–31 + 48–63; a low channel among the bits is a row, among the words
  a column); ``read_one`` biases the low channel at −Vread and senses the high one;
  ``read_slice``/``read_all`` (``BiasOrder.Rows`` biases the words one after the other,
  ``Cols`` the bits; one 32-value block per biased line, in ascending channel order); reads set
  every other channel to arbitrary-voltage mode at 0 V; ``pulse_one`` puts +V/2 on the high and
  −V/2 on the low channel and leaves every other channel open (floating), through the
  high-speed drivers below 500 ms and the arbitrary-voltage DACs from 500 ms (left biased until
  the next operation); ``generate_ramp`` (``ceil((vstop − vstart)/vstep)`` steps in f32, ``vstop``
  excluded, ``RampOperationError`` when vstop < vstart with vstep ≥ 0, reads of the low channel
  at −V after each pulse/block/ramp); ``generate_read_train``, ``read_train``; AMP PRP
  (100 µs, before a channel goes back to arbitrary-voltage mode), 30 µs after every DAC update,
  2.5 ms ``WRITEDELAY`` after every buffer write, 1 µs after every current read; the ADC decode
  (18-bit, ranges 830 Ω / 110 kΩ / 15 MΩ at 5.12 V or 10.24 V full scale) and the DAC code
  ``round((V + 10)/305.179 µV)`` clamped to 0..65535 (±20 V, 610.358 µV with
  ``OutputRange.EXT``) — out-of-range voltages are clamped, not refused; a 1 GiB result memory
  of 256-byte chunks. ``src/macros.rs`` (``vidx!``), ``src/memory.rs``, ``src/registers.rs``.
- ``arc-instruments/arc2control``: ``modules/curvetracer/curvetracer.py`` negates the current
  that ``get_iter`` returns to plot an I–V with the ramp voltage on the bit (high) channel, so
  a read reports the current flowing from the array into the sensing channel (negative for a
  positive read bias on the sensed device); ``mappings/standard32.toml``.

What is modelled:

- **Channels.** 64 channels, each open (floating), in arbitrary-voltage mode at its DAC
  voltage, or in high-speed mode (idle level, pulse level), optionally tied to hard or AC
  ground (both 0 V here). Crossbar row r is wired to channel ``wiring["rows"][r]`` and column c
  to ``wiring["cols"][c]`` (default: rows on the bit channels 0–15, 32–47 and columns on the word
  channels 16–31, 48–63, in that order); device (r, c) sees ``V(row channel) − V(column
  channel)``. Every interval during which the channel levels hold is applied to the
  :class:`~mocks.devices.crossbar.Crossbar` for its duration — pulses, read biases, settling
  times, and the levels that a slow pulse leaves on — so read disturb and half-select disturb
  come out of the same physics; floating lines settle by KCL.
- **Reads** sense the current from the array into each sensing channel
  (``Crossbar.line_currents``, read noise included) and decode it through the 18-bit ADC: the
  most sensitive range that holds it, quantised to its LSB, saturating at ±12.3 mA.
- **Time** on the bench's virtual clock: every delay, pulse, settle and conversion the library
  inserts; a 10 µs conversion per current read (320 µs averaged voltage read, PHYSICS.md §1.6);
  the buffer runs while the host sleeps its 2.5 ms ``WRITEDELAY`` (an ``execute`` takes the
  longer of the two); one 256-byte block read per ``pick_one`` (``BLOCK_READ_S``, an estimate).
- **Counting.** :attr:`SimInstrument.transactions`: calls that send commands to the board — each
  ``execute()`` and each call that executes by itself (``read_*``, ``pulseread_*``,
  ``vread_channels``, ``read_train``); queueing (``pulse_*``, ``generate_*``, ``config_*``,
  ``*_deferred`` …) is free until ``execute``. :attr:`SimInstrument.retrievals`: result blocks
  read back from the board memory (``pick_one`` and the ``*_from_address`` reads).
- **Faults.** :meth:`SimInstrument.fail_next` makes calls that reach the board (commands or
  result fetches, optionally after a number of good ones) raise ``ArC2Error`` (a lost USB link),
  without effect. Device faults (short, open, stuck) are the device model's
  (``set_fault``).

Not modelled *(mock)*: the selector circuits, auxiliary DACs, digital I/O and control mode are
recorded but act on nothing; the FPGA runs the buffer at once (``busy()`` is False after
``execute``); a voltage read of a floating line returns 0 V; channel numbers above 63 raise
``ArC2Error`` (the real library panics).
"""

from __future__ import annotations

import enum
import math
import operator
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

import numpy as np

from mocks.clock import VirtualClock

LIBARC2_VERSION = "sim"
"""What ``pyarc2.LIBARC2_VERSION`` says on the real package (the libarc2 version)."""

N_CHANNELS = 64
ALL_WORDS = (*range(16, 32), *range(48, 64))
"""Word-line channels in ascending order (libarc2 ``ALL_WORDS``)."""
ALL_BITS = (*range(0, 16), *range(32, 48))
"""Bit-line channels in ascending order (libarc2 ``ALL_BITS``)."""
_IS_BIT = np.zeros(N_CHANNELS, dtype=bool)
_IS_BIT[list(ALL_BITS)] = True

# ---- timing, s (libarc2 instrument.rs unless marked)
WRITE_DELAY_S = 2.5e-3
"""Host sleep after every write of the command buffer (``WRITEDELAY``)."""
DAC_SETTLE_S = 30e-6
"""Delay after every DAC update (``add_delay(30_000)``)."""
AMP_PREP_S = 100e-6
"""Delay after AMP PRP, before channels return to arbitrary-voltage mode."""
READ_CONVERSION_S = 10e-6
"""One current or voltage conversion (PHYSICS.md §1.6: 10 µs per read)."""
READ_AVERAGED_S = 320e-6
"""An averaged voltage read (``vread_channels(..., True)``)."""
READ_TAIL_S = 1e-6
"""Delay after every current read (``add_delay(1_000)``)."""
BLOCK_READ_S = 50e-6
"""One 256-byte memory block read over USB 2.0 *(estimate; not published)*."""
HS_MIN_NS = 40
"""High-speed pulses of 1–40 ns are stretched to 40 ns."""
SLOW_PULSE_NS = 500_000_000
"""From this width pulses use the arbitrary-voltage DACs instead of the high-speed drivers."""
MEMORY_CHUNKS = 1024 ** 3 // 256
"""Result chunks of 256 bytes in the board's 1 GiB memory."""

# ---- converters (libarc2 macros.rs vidx!, instrument.rs _adc_to_current/_adc_to_voltage)
_DAC_STD = (10.0, 3.05179e-4)
_DAC_EXT = (20.0, 6.10358e-4)
_ADC_FULL_SCALE_A = tuple(sorted(v / r for r in (830.0, 110e3, 15e6) for v in (5.12, 10.24)))
_ADC_FULL_SCALE_V = 10.24
_ADC_STEPS = 2 ** 17
_SKIP_V = 1e-3  # line potentials all within this: no device sees a field worth integrating


class ArC2Error(Exception):
    """Catch-all exception for low-level ArC2 errors (FPGA communication, memory, invalid
    device id, inconsistent ramps, output buffer access)."""


# ====================================================================== enum stand-ins
class _Variant:
    """A value of a pyarc2 enum class: one shared object per variant, compared by identity."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return f"<pyarc2.{type(self).__name__}.{self._name}>"


def _variants(cls, *names: str):
    for name in names:
        setattr(cls, name, cls(name))
    return cls


class BiasOrder(_Variant):
    """Order of biasing in ``read_all``/``pulse_all``/``pulseread_all``: ``Rows`` biases the
    word lines one by one, ``Cols`` the bit lines."""


class ControlMode(_Variant):
    """Daughterboard routing: ``Internal`` (PLCC socket) or ``Header``."""


class DataMode(_Variant):
    """What ``pick_one`` returns: ``Words`` (32 word-line values), ``Bits`` (32 bit-line
    values), ``All`` (64 values); ascending channel order."""


class ReadType(_Variant):
    """Decode memory as ``Current`` or ``Voltage``."""


class AuxDACFn(_Variant):
    """Auxiliary DAC functions (selector levels, arbitrary supplies, current source)."""


class IODir(_Variant):
    """Direction of a GPIO cluster."""


class LogicLevel(_Variant):
    """Digital I/O logic level."""


class OutputRange(_Variant):
    """Analogue channel range: ``STD`` ±10 V, ``EXT`` ±20 V."""


_variants(BiasOrder, "Rows", "Cols")
_variants(ControlMode, "Header", "Internal")
_variants(DataMode, "Words", "Bits", "All")
_variants(ReadType, "Current", "Voltage")
_variants(AuxDACFn, "SELL", "SELH", "ARB1", "ARB2", "ARB3", "ARB4", "CREF", "CSET", "LGC")
_variants(IODir, "IN", "OUT")
_variants(LogicLevel, "LL1V8", "LL3V3", "LL5V")
_variants(OutputRange, "STD", "EXT")


class ReadAt(_Variant):
    """Read-out voltage of a ramp: ``Bias`` (the ramp voltage), ``Arb(v)`` or ``Never``."""

    __slots__ = ("_voltage",)

    def __init__(self, name: str, voltage: float | None = None) -> None:
        super().__init__(name)
        self._voltage = voltage

    @staticmethod
    def Arb(voltage) -> ReadAt:
        """Read-outs at an arbitrary voltage (stored as f32)."""
        return ReadAt("Arb", _f32(voltage, "voltage"))

    def voltage(self) -> float:
        """The voltage of an ``Arb`` directive; any other variant raises."""
        if self._voltage is None:
            raise Exception("No voltage associated")  # what pyarc2 raises
        return self._voltage


class ReadAfter(_Variant):
    """When a ramp reads: after every ``Pulse``, after each ``Block`` of pulses at one voltage,
    once at the end of the ``Ramp``, or ``Never``."""

    def __str__(self) -> str:
        return self._name.lower()

    def __repr__(self) -> str:
        return f"ReadAfter<{self._name}>"

    @staticmethod
    def from_str(r: str) -> ReadAfter:
        """``"pulse"``, ``"ramp"``, ``"block"`` or ``"never"`` (a new object, as pyarc2's)."""
        names = {"pulse": "Pulse", "ramp": "Ramp", "block": "Block", "never": "Never"}
        if r not in names:
            raise ValueError("Unknown ReadAfter")
        return ReadAfter(names[r])


_variants(ReadAt, "Bias", "Never")
_variants(ReadAfter, "Pulse", "Ramp", "Block", "Never")


class WaitFor:
    """End condition of ``read_train``: a time (``Nanos``, ``Millis``) or ``Iterations``."""

    __slots__ = ("_nanos", "_iterations")

    def __init__(self, nanos: int | None = None, iterations: int | None = None) -> None:
        self._nanos, self._iterations = nanos, iterations

    @staticmethod
    def Nanos(nanos) -> WaitFor:
        return WaitFor(nanos=_uint(nanos, "nanos"))

    @staticmethod
    def Millis(millis) -> WaitFor:
        return WaitFor(nanos=_uint(millis, "millis") * 1_000_000)

    @staticmethod
    def Iterations(iters) -> WaitFor:
        return WaitFor(iterations=_uint(iters, "iters"))


class IdleMode(enum.Enum):
    """State to leave the channels in (``finalise_operation``)."""

    Float = 0b01
    SoftGnd = 0b10
    HardGnd = 0b11


@dataclass
class ArC2Config:
    """Idle and control mode, grouped (as pyarc2's)."""

    idleMode: IdleMode
    controlMode: ControlMode


def find_ids() -> list[int]:
    """Ids of the ArC TWO boards found: the simulated board enumerates as 0."""
    return [0]


# ====================================================================== argument extraction
def _uint(x, name: str) -> int:
    """A non-negative int the way pyo3 extracts ``usize``/``u128`` (no floats)."""
    if isinstance(x, (float, np.floating)):
        raise TypeError(f"argument '{name}': 'float' object cannot be interpreted as an integer")
    try:
        value = operator.index(x)
    except TypeError:
        raise TypeError(f"argument '{name}': '{type(x).__name__}' object cannot be interpreted "
                        "as an integer") from None
    if value < 0:
        raise OverflowError(f"argument '{name}': can't convert negative int to unsigned")
    return value


def _f32(x, name: str) -> float:
    """A float rounded to f32, as pyo3 extracts ``f32``."""
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"argument '{name}': must be real number, not {type(x).__name__}")
    try:
        return float(np.float32(float(x)))
    except (TypeError, ValueError):
        raise TypeError(f"argument '{name}': must be real number, not {type(x).__name__}"
                        ) from None


def _flag(x, name: str) -> bool:
    if not isinstance(x, (bool, np.bool_)):
        raise TypeError(f"argument '{name}': '{type(x).__name__}' object cannot be converted to "
                        "'PyBool'")
    return bool(x)


def _chan(x, name: str) -> int:
    ch = _uint(x, name)
    if ch >= N_CHANNELS:
        raise ArC2Error(f"Invalid channel {ch} (channels are 0..{N_CHANNELS - 1})")
    return ch


def _chans(x, name: str) -> np.ndarray:
    """A 1-D channel list: pyarc2's ``_ndarray_check`` (uint64) plus the range check."""
    if isinstance(x, (str, bytes)) or not isinstance(x, Iterable):
        raise TypeError("Invalid argument type, must be an iterable")
    arr = np.array(list(x) if not isinstance(x, np.ndarray) else x, dtype=np.uint64)
    if arr.ndim != 1:
        raise TypeError(f"Invalid argument dimensions, must be: 1, found {arr.ndim} instead")
    if arr.size and int(arr.max()) >= N_CHANNELS:
        raise ArC2Error(f"Invalid channel {int(arr.max())} in {name} (channels are "
                        f"0..{N_CHANNELS - 1})")
    return arr.astype(np.intp)


def _triples(chans) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``[(channel, pulse V, normal V), ...]`` as arrays: channels checked like ``_chan``,
    voltages rounded to f32."""
    items = [tuple(item) for item in chans]
    if any(len(item) != 3 for item in items):
        raise TypeError("argument 'chans': expected (channel, pulse voltage, normal voltage)")
    if not items:
        return np.empty(0, np.intp), np.empty(0), np.empty(0)
    chs, acts, norms = zip(*items, strict=True)
    if all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in chs):
        ch = np.array(chs, dtype=np.int64)
        if ch.min() < 0:
            raise OverflowError("argument 'chans': can't convert negative int to unsigned")
        if ch.max() >= N_CHANNELS:
            raise ArC2Error(f"Invalid channel {int(ch.max())} in chans (channels are "
                            f"0..{N_CHANNELS - 1})")
    else:
        ch = np.array([_chan(c, "chans") for c in chs], dtype=np.int64)
    try:
        volts = np.array([acts, norms], dtype=np.float32).astype(float)
    except (TypeError, ValueError):
        raise TypeError("argument 'chans': voltages must be real numbers") from None
    return ch.astype(np.intp), volts[0], volts[1]


def _variant(x, cls, name: str):
    if not isinstance(x, cls):
        raise TypeError(f"argument '{name}': '{type(x).__name__}' object cannot be converted to "
                        f"'{cls.__name__}'")
    return x


def _dac(v, ext) -> np.ndarray:
    """The voltage a DAC really outputs for ``v`` (V; arrays broadcast with ``ext``, the
    channels in the extended range): 16-bit code, clamped (libarc2 ``vidx!``)."""
    offset = np.where(ext, _DAC_EXT[0], _DAC_STD[0])
    lsb = np.where(ext, _DAC_EXT[1], _DAC_STD[1])
    code = np.clip(np.round((np.asarray(v, dtype=float) + offset) / lsb), 0, 0xFFFF)
    return code * lsb - offset


def adc_current(i: np.ndarray) -> np.ndarray:
    """Currents (A) as the ArC TWO ADC reports them: the most sensitive of its six ranges that
    holds the value, 18-bit (2¹⁷ steps a sign), saturating at the largest range."""
    i = np.asarray(i, dtype=float)
    out = np.empty_like(i)
    fs = np.array(_ADC_FULL_SCALE_A)
    k = np.minimum(np.searchsorted(fs, np.abs(i), side="left"), fs.size - 1)
    lsb = fs[k] / _ADC_STEPS
    out[:] = np.clip(np.round(i / lsb), -_ADC_STEPS, _ADC_STEPS - 1) * lsb
    return out


# ====================================================================== the instrument
_OPEN, _ARB, _HS = 0, 1, 2


@dataclass
class _Chunk:
    """A 256-byte result area in the board's memory."""

    addr: int
    kind: str = ""  # "current" / "voltage" once written
    data: np.ndarray | None = None
    valid: bool = True


class SimInstrument:
    """A simulated ArC TWO with the ``pyarc2.Instrument`` API, wired to a crossbar.

    Built by the bench as ``SimInstrument(clock=, device=<Crossbar>, device_index=, rng=,
    **options)`` (see the module docstring for what is modelled). Options: ``wiring`` —
    ``"linear"`` (default) or ``{"rows": [channel per crossbar row], "cols": [channel per
    column]}``; ``memory_chunks`` — size of the result memory in 256-byte chunks.
    """

    LINK = "object"

    def __init__(self, clock: VirtualClock | None = None, device=None, device_index: int = 0,
                 rng: np.random.Generator | None = None, wiring="linear",
                 memory_chunks: int = MEMORY_CHUNKS) -> None:
        if device is not None and not hasattr(device, "line_currents"):
            raise ValueError(f"pyarc2 sim: the device must be a crossbar (bench device with "
                             f"'crossbar: true'), got {type(device).__name__}")
        self.clock = clock if clock is not None else VirtualClock()
        self.device = device
        self.device_index = int(device_index)
        self.rng = rng
        self._rows_ch, self._cols_ch = self._wiring(wiring, device)
        memory_chunks = int(memory_chunks)
        if memory_chunks < 1:
            raise ValueError(f"pyarc2 sim: memory_chunks must be >= 1, got {memory_chunks}")
        self.transactions = 0
        self.retrievals = 0
        self.control_mode: ControlMode | None = None
        self.selectors: tuple[int, ...] = ()
        self.aux: dict[str, float] = {}
        self.logic: dict[str, object] = {}
        self._fail: list[str | None] = []
        # board state
        self._mode = np.full(N_CHANNELS, _OPEN, dtype=np.int8)
        self._dac_v = np.zeros(N_CHANNELS)
        self._hs_idle = np.zeros(N_CHANNELS)
        self._hs_active = np.zeros(N_CHANNELS)
        self._gnd = np.zeros(N_CHANNELS, dtype=bool)
        self._ac_gnd = np.zeros(N_CHANNELS, dtype=bool)
        self._ext = np.zeros(N_CHANNELS, dtype=bool)
        self._hs_credit = 0.0
        self._held: np.ndarray | None = None
        self._held_for = 0.0
        # host-side state (libarc2 Instrument fields)
        self._tia = np.ones(N_CHANNELS, dtype=bool)  # channels that need AMP PRP
        self._buffer: list = []
        self._output: deque[_Chunk] = deque()
        self._chunks: dict[int, _Chunk] = {}
        self._free = memory_chunks
        self._top = 0
        self._reclaimed: deque[int] = deque()
        # what Instrument(id, fw) does after loading the firmware
        self._amp_prep(None)
        self._q(self._set_all_dacs_zero)
        self._delay_s(DAC_SETTLE_S)
        self._run_buffer()

    # ------------------------------------------------------------------ wiring
    @staticmethod
    def _wiring(wiring, device) -> tuple[np.ndarray, np.ndarray]:
        rows, cols = device.shape if device is not None else (32, 32)
        if wiring == "linear":
            if rows > len(ALL_BITS) or cols > len(ALL_WORDS):
                raise ValueError(f"pyarc2 sim: a {rows}x{cols} crossbar does not fit the 32 bit "
                                 "and 32 word channels")
            return np.array(ALL_BITS[:rows]), np.array(ALL_WORDS[:cols])
        if not isinstance(wiring, dict) or set(wiring) != {"rows", "cols"}:
            raise ValueError("pyarc2 sim wiring: 'linear' or {rows: [channels], cols: "
                             f"[channels]}}, got {wiring!r}")
        r = np.array(wiring["rows"], dtype=int).reshape(-1)
        c = np.array(wiring["cols"], dtype=int).reshape(-1)
        if (r.size, c.size) != (rows, cols):
            raise ValueError(f"pyarc2 sim wiring: {r.size} rows and {c.size} cols for a "
                             f"{rows}x{cols} crossbar")
        both = np.concatenate([r, c])
        if both.min() < 0 or both.max() >= N_CHANNELS or np.unique(both).size != both.size:
            raise ValueError("pyarc2 sim wiring: channels must be distinct, 0..63")
        return r, c

    # ------------------------------------------------------------------ faults, counting
    def fail_next(self, count: int = 1, message: str = "FPGA Error: USB transfer failed",
                  after: int = 0) -> None:
        """Make ``count`` calls that reach the board, after the next ``after`` ones, raise
        ``ArC2Error(message)`` without doing anything (a dropped USB link)."""
        self._fail.extend([None] * int(after) + [message] * int(count))

    def _reach(self, retrieval: bool = False) -> None:
        if self._fail:
            message = self._fail.pop(0)
            if message is not None:
                raise ArC2Error(message)
        if retrieval:
            self.retrievals += 1
        else:
            self.transactions += 1

    # ------------------------------------------------------------------ the FPGA side
    def _q(self, fn, *args) -> None:
        self._buffer.append(partial(fn, *args))

    def _run_buffer(self) -> None:
        """Write the buffer: the FPGA runs it while the host sleeps WRITEDELAY."""
        buffer, self._buffer = self._buffer, []
        start = self.clock.now
        for step in buffer:
            step()
        rest = WRITE_DELAY_S - (self.clock.now - start)
        if rest > 0:
            self._hold(rest)
        self._release()

    def _levels(self, pulsing: np.ndarray | None = None) -> np.ndarray:
        """Line potential of every channel (NaN: floating)."""
        v = np.full(N_CHANNELS, np.nan)
        arb = self._mode == _ARB
        v[arb] = self._dac_v[arb]
        hs = self._mode == _HS
        v[hs] = self._hs_idle[hs]
        if pulsing is not None:
            v[pulsing] = self._hs_active[pulsing]
        v[self._gnd | self._ac_gnd] = 0.0
        return v

    def _hold(self, seconds: float, levels: np.ndarray | None = None) -> None:
        """Let ``seconds`` pass with the channels at ``levels`` (default: as they are)."""
        if seconds <= 0:
            return
        if self._hs_credit > 0 and levels is None:  # a high-speed pulse already spent this time
            spent = min(self._hs_credit, seconds)
            self._hs_credit -= spent
            seconds -= spent
            if seconds <= 0:
                return
        v = self._levels() if levels is None else levels
        if self._held is not None and np.array_equal(v, self._held, equal_nan=True):
            self._held_for += seconds
        else:
            self._release()
            self._held, self._held_for = v, seconds
        self.clock.advance(seconds)

    def _release(self) -> None:
        """Apply the levels held so far to the crossbar for the time they were held."""
        v, dt = self._held, self._held_for
        self._held, self._held_for = None, 0.0
        if v is None or self.device is None or dt <= 0:
            return
        rows, cols = v[self._rows_ch], v[self._cols_ch]
        driven = np.concatenate([rows, cols])
        driven = driven[~np.isnan(driven)]
        if driven.size == 0 or float(driven.max() - driven.min()) < _SKIP_V:
            return
        self.device.apply(rows, cols, dt)

    def _change(self, fn) -> None:
        """A state change: what was held until now is applied first."""
        self._release()
        self._hs_credit = 0.0
        fn()

    def _sense(self) -> np.ndarray:
        """Current (A) flowing from the array into every channel at the present levels."""
        self._release()
        cur = np.zeros(N_CHANNELS)
        if self.device is None:
            return cur
        v = self._levels()
        row_in, col_out = self.device.line_currents(v[self._rows_ch], v[self._cols_ch])
        cur[self._rows_ch] = -row_in
        cur[self._cols_ch] = col_out
        return cur

    # -- FPGA instructions (run by _run_buffer)
    def _delay_s(self, seconds: float) -> None:
        self._q(self._hold, seconds)

    def _set_all_dacs_zero(self) -> None:
        def go():
            self._dac_v[:] = self._q0()
            self._hs_idle[:] = self._hs_active[:] = self._q0()
        self._change(go)

    def _q0(self) -> np.ndarray:
        return _dac(0.0, self._ext)

    def _set_dacs(self, chans: np.ndarray, v: float) -> None:
        def go():
            self._dac_v[chans] = _dac(v, self._ext[chans])
            self._hs_idle[chans] = self._hs_active[chans] = self._dac_v[chans]
        self._change(go)

    def _set_ground(self, mask: np.ndarray, ac: bool = False) -> None:
        def go():
            (self._ac_gnd if ac else self._gnd)[:] = mask
        self._change(go)

    def _set_mode(self, chans, mode: int) -> None:
        def go():
            self._mode[chans] = mode
        self._change(go)

    def _configure(self, levels: dict[int, float], base: float | None, mode: int,
                   others: int | None) -> None:
        """SetDAC + UP CH: ``levels`` (channel → V) in ``mode``; the other channels at ``base``
        (if given) in ``others`` (None: unchanged)."""
        def go():
            chans = np.fromiter(levels, dtype=np.intp, count=len(levels))
            rest = np.setdiff1d(np.arange(N_CHANNELS), chans)
            if base is not None:
                self._dac_v[rest] = _dac(base, self._ext[rest])
            if others is not None:
                self._mode[rest] = others
            volts = np.fromiter(levels.values(), dtype=float, count=len(levels))
            self._dac_v[chans] = _dac(volts, self._ext[chans])
            self._mode[chans] = mode
        self._change(go)

    def _configure_hs(self, chans: np.ndarray, idle, active) -> None:
        """High-speed drivers on ``chans`` with their idle and pulse levels (V), every other
        channel open."""
        def go():
            self._mode[:] = _OPEN
            self._mode[chans] = _HS
            self._hs_idle[chans] = _dac(idle, self._ext[chans])
            self._hs_active[chans] = _dac(active, self._ext[chans])
        self._change(go)

    def _hs_pulse(self, chans: np.ndarray, durations: np.ndarray) -> None:
        """Fire the high-speed drivers of ``chans`` for ``durations`` (s) each."""
        self._release()
        self._hs_credit = 0.0
        elapsed = 0.0
        for end in np.unique(durations[durations > 0]):
            self._hold(float(end) - elapsed, self._levels(chans[durations >= end]))
            elapsed = float(end)
        self._release()
        self._hs_credit = elapsed

    def _current_read(self, highs: np.ndarray, chunk: _Chunk) -> None:
        cur = self._sense()
        data = np.full(N_CHANNELS, np.nan)
        data[highs] = adc_current(cur[highs])
        chunk.kind, chunk.data = "current", data
        self._hold(READ_CONVERSION_S)

    def _voltage_read(self, chans: np.ndarray, averaging: bool, chunk: _Chunk) -> None:
        self._release()
        v = np.nan_to_num(self._levels()[chans], nan=0.0)  # a floating line reads 0 V (mock)
        step = 2 * _ADC_FULL_SCALE_V / (2 * _ADC_STEPS)
        data = np.full(N_CHANNELS, np.nan)
        data[chans] = np.clip(np.round(v / step), -_ADC_STEPS, _ADC_STEPS - 1) * step
        chunk.kind, chunk.data = "voltage", data
        self._hold(READ_AVERAGED_S if averaging else READ_CONVERSION_S)

    # ------------------------------------------------------------------ libarc2 routines
    def _amp_prep(self, chans: Iterable[int] | None) -> None:
        mask = np.ones(N_CHANNELS, dtype=bool)
        if chans is not None:
            mask[:] = False
            mask[np.asarray(list(chans), dtype=np.intp)] = True
        common = self._tia & mask
        if not common.any():
            return
        self._tia &= ~common
        chans_c = np.flatnonzero(common)
        self._q(self._set_dacs, chans_c, 0.0)
        self._delay_s(DAC_SETTLE_S)
        self._q(self._set_ground, common.copy())
        self._delay_s(AMP_PREP_S)
        self._q(self._set_ground, np.zeros(N_CHANNELS, dtype=bool))

    def _ground_all_fast(self) -> None:
        self._q(self._set_all_dacs_zero)
        self._delay_s(DAC_SETTLE_S)

    def _ground_slice_fast(self, chans: np.ndarray) -> None:
        self._q(self._set_dacs, chans, 0.0)
        self._delay_s(DAC_SETTLE_S)

    def _ground_all(self) -> None:
        self._ground_all_fast()
        self._amp_prep(None)
        self._q(self._set_mode, slice(None), _ARB)

    def _config_channels(self, pairs: list[tuple[int, float]], base: float | None) -> None:
        self._amp_prep([ch for ch, _ in pairs] if base is None else None)
        self._q(self._configure, dict(pairs), base, _ARB, _ARB if base is not None else None)
        self._delay_s(DAC_SETTLE_S)

    def _reset_dacs(self) -> None:
        self._ground_all_fast()
        self._run_buffer()

    def _read_slice_inner(self, low: int, highs: np.ndarray, v_low: float) -> _Chunk:
        self._amp_prep(None)
        self._q(self._configure, {low: v_low}, 0.0, _ARB, None)
        self._delay_s(DAC_SETTLE_S)
        self._q(self._set_mode, slice(None), _ARB)
        chunk = self._make_chunk()
        self._q(self._current_read, np.asarray(highs, dtype=np.intp), chunk)
        self._delay_s(READ_TAIL_S)
        return chunk

    def _read_open(self, highs: np.ndarray, ground_after: bool) -> _Chunk:
        self._amp_prep(highs)
        self._q(self._set_mode, highs, _ARB)
        chunk = self._make_chunk()
        self._q(self._current_read, highs, chunk)
        self._delay_s(READ_TAIL_S)
        if ground_after:
            self._ground_slice_fast(highs)
        return chunk

    def _pulse_pairs(self, pairs: list[tuple[int, int]], voltage: float, nanos: int,
                     one: bool = False) -> None:
        """Differential pulses: +V/2 on each high, −V/2 on each low channel, others open
        (``one``: a single crosspoint, as ``pulse_one``)."""
        chans = sorted({ch for pair in pairs for ch in pair})
        levels = {}
        for low, high in pairs:
            levels[high] = voltage / 2
            levels[low] = -voltage / 2
        if nanos < SLOW_PULSE_NS:
            self._tia[chans] = True
            hs = np.fromiter(levels, dtype=np.intp, count=len(levels))
            active = np.fromiter(levels.values(), dtype=float, count=len(levels))
            self._q(self._configure_hs, hs, 0.0, active)
            self._delay_s(DAC_SETTLE_S)
            width = 0 if nanos == 0 else max(nanos, HS_MIN_NS)
            self._q(self._hs_pulse, hs, np.full(hs.size, width * 1e-9))
            self._delay_s(nanos * 1e-9)
        else:
            self._amp_prep(chans if one else None)
            self._q(self._configure, levels, 0.0, _ARB, _OPEN)
            self._delay_s(nanos * 1e-9 + DAC_SETTLE_S)

    def _slice_highs(self, chan: int, mask: np.ndarray | None) -> np.ndarray:
        if mask is not None:
            return mask
        return np.array(ALL_WORDS if _IS_BIT[chan] else ALL_BITS)

    def _make_chunk(self) -> _Chunk:
        if self._free == 0:
            raise ArC2Error("Memory error: Out of memory")
        if self._reclaimed:
            addr = self._reclaimed.popleft()
        else:
            addr, self._top = self._top, self._top + 256
        self._free -= 1
        chunk = _Chunk(addr)
        self._chunks[addr] = chunk
        return chunk

    def _read_chunk(self, chunk: _Chunk, mode, rtype, free: bool = True) -> np.ndarray:
        _variant(mode, DataMode, "mode")
        _variant(rtype, ReadType, "rtype")
        want = "current" if rtype is ReadType.Current else "voltage"
        data = chunk.data if chunk.kind == want else None
        if data is None:  # not written yet, or the other kind: the raw word decodes as NaN
            data = np.full(N_CHANNELS, np.nan)
        self.clock.advance(BLOCK_READ_S)
        if free:
            if not chunk.valid:
                raise ArC2Error("Memory error: Double free")
            chunk.valid = False
            self._reclaimed.append(chunk.addr)
            self._free += 1
        if mode is DataMode.Words:
            data = data[list(ALL_WORDS)]
        elif mode is DataMode.Bits:
            data = data[list(ALL_BITS)]
        return data.astype(np.float32)

    # ================================================================== pyarc2 API
    # ---- buffer
    def execute(self) -> SimInstrument:
        """Write everything in the command buffer to the instrument."""
        self._reach()
        self._run_buffer()
        return self

    def busy(self) -> bool:
        """True while the command buffer has not been consumed (never, here)."""
        return False

    def wait(self) -> None:
        """Block until the instrument has executed its command buffer."""

    def delay(self, nanos) -> SimInstrument:
        """Insert a delay of ``nanos`` ns in the command buffer."""
        self._delay_s(_uint(nanos, "nanos") * 1e-9)
        return self

    # ---- channel configuration
    def config_channels(self, input, base=None) -> SimInstrument:
        """Set channels ``[(channel, voltage), ...]``; the others at ``base`` (None: as they
        are)."""
        pairs = [(_chan(ch, "input"), _f32(v, "input")) for ch, v in input]
        self._config_channels(pairs, None if base is None else _f32(base, "base"))
        return self

    def config_aux_channels(self, voltages) -> SimInstrument:
        """Set auxiliary DACs ``[(AuxDACFn, voltage), ...]`` (recorded only)."""
        for fn, v in voltages:
            self.aux[_variant(fn, AuxDACFn, "voltages")._name] = _f32(v, "voltages")
        self._delay_s(DAC_SETTLE_S)
        return self

    def config_selectors(self, selectors) -> SimInstrument:
        """Toggle the listed selector channels (0..31) high, the rest low (recorded only)."""
        sel = tuple(_uint(s, "selectors") for s in selectors)
        if any(s > 31 for s in sel):
            raise ArC2Error(f"Invalid selector channel {max(sel)} (selectors are 0..31)")
        self.selectors = sel
        return self

    def connect_to_gnd(self, chans) -> SimInstrument:
        """Tie ``chans`` to hard ground, releasing every other (empty: release all)."""
        mask = np.zeros(N_CHANNELS, dtype=bool)
        mask[_chans(chans, "chans")] = True
        self._q(self._set_ground, mask)
        return self

    def gnd_add(self, chans) -> SimInstrument:
        chans = _chans(chans, "chans")
        self._q(self._edit_ground, chans, True, False)
        return self

    def gnd_remove(self, chans) -> SimInstrument:
        chans = _chans(chans, "chans")
        self._q(self._edit_ground, chans, False, False)
        return self

    def connect_to_ac_gnd(self, chans) -> SimInstrument:
        mask = np.zeros(N_CHANNELS, dtype=bool)
        mask[_chans(chans, "chans")] = True
        self._q(self._set_ground, mask, True)
        return self

    def gnd_ac_add(self, chans) -> SimInstrument:
        self._q(self._edit_ground, _chans(chans, "chans"), True, True)
        return self

    def gnd_ac_remove(self, chans) -> SimInstrument:
        self._q(self._edit_ground, _chans(chans, "chans"), False, True)
        return self

    def _edit_ground(self, chans: np.ndarray, on: bool, ac: bool) -> None:
        def go():
            (self._ac_gnd if ac else self._gnd)[chans] = on
        self._change(go)

    def open_channels(self, channels) -> SimInstrument:
        """Disconnect ``channels`` from their DACs (they float unless grounded)."""
        chans = _chans(channels, "channels")
        self._tia[chans] = True
        self._q(self._set_mode, chans, _OPEN)
        return self

    def float_all(self) -> SimInstrument:
        """Disconnect all channels."""
        self.connect_to_gnd([])
        self._tia[:] = True
        self._q(self._set_mode, slice(None), _OPEN)
        return self

    def ground_all(self) -> SimInstrument:
        """Ground all channels and revert them to arbitrary-voltage operation."""
        self._ground_all()
        return self

    def ground_all_fast(self) -> SimInstrument:
        """Ground all channels keeping their operating mode."""
        self._ground_all_fast()
        return self

    def set_channel_range(self, chans, rng) -> SimInstrument:
        """Output range of ``chans``: ``OutputRange.STD`` (±10 V) or ``EXT`` (±20 V)."""
        chans = _chans(chans, "chans")
        ext = _variant(rng, OutputRange, "rng") is OutputRange.EXT

        def go():
            self._ext[chans] = ext
        self._q(self._change, go)
        return self

    def set_control_mode(self, mode) -> SimInstrument:
        """Daughterboard routing (recorded only)."""
        self.control_mode = _variant(mode, ControlMode, "mode")
        return self

    def set_logic(self, mask, cl0=None, cl1=None, cl2=None, cl3=None) -> SimInstrument:
        """Digital outputs (recorded only)."""
        self.logic["mask"] = _uint(mask, "mask")
        self.logic["dirs"] = (cl0, cl1, cl2, cl3)
        return self

    def set_logic_level(self, level) -> SimInstrument:
        self.logic["level"] = _variant(level, LogicLevel, "level")
        return self

    # ---- immediate reads
    def read_one(self, low, high, vread) -> float:
        """Current between ``low`` (biased at −vread) and ``high`` (sensed)."""
        low, high = _chan(low, "low"), _chan(high, "high")
        vread = _f32(vread, "vread")
        self._reach()
        self._reset_dacs()
        chunk = self._read_slice_inner(low, np.array([high]), -vread)
        self._ground_all_fast()
        self._run_buffer()
        return float(self._read_chunk(chunk, DataMode.All, ReadType.Current)[high])

    def read_slice(self, chan, vread) -> np.ndarray:
        """Currents of every crosspoint with ``chan`` as the low channel: a bit channel reads
        its row (32 word values), a word channel its column (32 bit values)."""
        chan = _chan(chan, "chan")
        vread = _f32(vread, "vread")
        self._reach()
        return self._slice(chan, vread)

    def _slice(self, chan: int, vread: float) -> np.ndarray:
        self._reset_dacs()
        chunk = self._read_slice_inner(chan, self._slice_highs(chan, None), -vread)
        self._ground_all_fast()
        self._run_buffer()
        mode = DataMode.Words if _IS_BIT[chan] else DataMode.Bits
        return self._read_chunk(chunk, mode, ReadType.Current)

    def read_slice_masked(self, chan, mask, vread) -> np.ndarray:
        """As :meth:`read_slice`, reading only the ``mask`` channels (the others NaN)."""
        chan = _chan(chan, "chan")
        mask = _chans(mask, "mask")
        vread = _f32(vread, "vread")
        self._reach()
        self._reset_dacs()
        chunk = self._read_slice_inner(chan, mask, -vread)
        self._ground_all_fast()
        self._run_buffer()
        mode = DataMode.Words if _IS_BIT[chan] else DataMode.Bits
        return self._read_chunk(chunk, mode, ReadType.Current)

    def read_all(self, vread, order) -> np.ndarray:
        """Every crosspoint, (32, 32) f32: one slice per biased line (``Rows``: the word
        channels, ``Cols``: the bit channels), in ascending channel order."""
        vread = _f32(vread, "vread")
        order = _variant(order, BiasOrder, "order")
        self._reach()
        lines = ALL_WORDS if order is BiasOrder.Rows else ALL_BITS
        return np.stack([self._slice(ch, vread) for ch in lines])

    def read_slice_open(self, highs, ground_after=None) -> np.ndarray:
        """Currents into ``highs`` with the channels as configured (64 f32, others NaN)."""
        highs = _chans(highs, "highs")
        ground = True if ground_after is None else _flag(ground_after, "ground_after")
        self._reach()
        chunk = self._read_open(highs, ground)
        self._run_buffer()
        return self._read_chunk(chunk, DataMode.All, ReadType.Current)

    def read_slice_open_deferred(self, highs, ground_after=None) -> SimInstrument:
        """As :meth:`read_slice_open`, queued; the result comes back through ``pick_one``."""
        highs = _chans(highs, "highs")
        ground = True if ground_after is None else _flag(ground_after, "ground_after")
        self._output.append(self._read_open(highs, ground))
        return self

    def vread_channels(self, chans, averaging) -> list[float]:
        """Voltages of ``chans`` in ascending channel order."""
        chans = np.sort(_chans(chans, "chans"))
        averaging = _flag(averaging, "averaging")
        self._reach()
        chunk = self._make_chunk()
        self._q(self._voltage_read, chans, averaging, chunk)
        self._run_buffer()
        data = self._read_chunk(chunk, DataMode.All, ReadType.Voltage)
        return [float(data[c]) for c in chans]

    def vread_channels_deferred(self, chans, averaging) -> SimInstrument:
        chans = np.sort(_chans(chans, "chans"))
        chunk = self._make_chunk()
        self._q(self._voltage_read, chans, _flag(averaging, "averaging"), chunk)
        self._output.append(chunk)
        return self

    # ---- pulses (queued)
    def pulse_one(self, low, high, voltage, nanos) -> SimInstrument:
        """Pulse one crosspoint: +voltage/2 on ``high``, −voltage/2 on ``low``."""
        low, high = _chan(low, "low"), _chan(high, "high")
        self._pulse_pairs([(low, high)], _f32(voltage, "voltage"), _uint(nanos, "nanos"), True)
        return self

    def pulse_slice(self, chan, voltage, nanos) -> SimInstrument:
        """Pulse every crosspoint with ``chan`` as the low channel."""
        chan = _chan(chan, "chan")
        highs = self._slice_highs(chan, None)
        self._pulse_pairs([(chan, int(h)) for h in highs], _f32(voltage, "voltage"),
                          _uint(nanos, "nanos"))
        return self

    def pulse_slice_masked(self, chan, voltage, nanos, mask) -> SimInstrument:
        """Pulse the ``mask`` high channels against ``chan``."""
        chan = _chan(chan, "chan")
        highs = _chans(mask, "mask")
        self._pulse_pairs([(chan, int(h)) for h in highs], _f32(voltage, "voltage"),
                          _uint(nanos, "nanos"))
        return self

    def pulse_all(self, voltage, nanos, order) -> SimInstrument:
        """Pulse every crosspoint, one biased line after the other (``Rows``: word lines)."""
        voltage = _f32(voltage, "voltage")
        nanos = _uint(nanos, "nanos")
        order = _variant(order, BiasOrder, "order")
        for chan in ALL_WORDS if order is BiasOrder.Rows else ALL_BITS:
            highs = self._slice_highs(chan, None)
            self._pulse_pairs([(chan, int(h)) for h in highs], voltage, nanos)
        return self

    def pulse_slice_fast_open(self, chans, cl_nanos, preset_state) -> SimInstrument:
        """High-speed pulses on ``[(channel, pulse V, normal V), ...]`` with one timing per
        cluster of 8 channels (``cl_nanos``, 8 entries, None = not pulsed); others open."""
        cl_nanos = list(cl_nanos)
        if len(cl_nanos) != 8:
            raise ValueError("Need 8 arguments for cluster timings")
        timings = [None if t is None else _uint(t, "cl_nanos") for t in cl_nanos]
        _flag(preset_state, "preset_state")
        ch, active, normal = _triples(chans)
        cluster_ns = np.array([-1 if t is None else t for t in timings], dtype=np.int64)
        t = cluster_ns[ch // 8]
        if (t < 0).any():
            c = int(ch[t < 0][0])
            raise ArC2Error(f"HS Channel {c} has no timing associated on cluster {c // 8}")
        if (t > SLOW_PULSE_NS).any():
            raise ArC2Error(f"HS Channel pulse width {int(ch[t > SLOW_PULSE_NS][0])} too long")
        down = _dac(active, False) <= _dac(normal, False)
        by_cluster = np.zeros((8, 2), dtype=bool)
        by_cluster[ch // 8, down.astype(int)] = True
        if by_cluster.all(axis=1).any():
            raise ArC2Error("Attempting to toggle a previously set HS polarity bit")
        self._tia[ch] = True
        self._q(self._configure_hs, ch, normal, active)
        self._delay_s(DAC_SETTLE_S)
        durations = np.where(t == 0, 0.0, np.maximum(t, HS_MIN_NS) * 1e-9)
        self._q(self._hs_pulse, ch, durations)
        return self

    # ---- pulse then read (immediate)
    def pulseread_one(self, low, high, vpulse, nanos, vread) -> float:
        """Pulse one crosspoint, then read it at ``vread``."""
        low, high = _chan(low, "low"), _chan(high, "high")
        vpulse, nanos, vread = _f32(vpulse, "vpulse"), _uint(nanos, "nanos"), _f32(vread, "vread")
        self._reach()
        self._pulse_pairs([(low, high)], vpulse, nanos, True)
        if nanos < SLOW_PULSE_NS:
            self._ground_all_fast()
        else:
            self._ground_all()
        chunk = self._read_slice_inner(low, np.array([high]), -vread)
        self._ground_all_fast()
        self._run_buffer()
        return float(self._read_chunk(chunk, DataMode.All, ReadType.Current)[high])

    def pulseread_slice(self, chan, vpulse, nanos, vread) -> np.ndarray:
        """Pulse a slice, then read it (32 f32)."""
        chan = _chan(chan, "chan")
        self._reach()
        return self._pulseread(chan, None, _f32(vpulse, "vpulse"), _uint(nanos, "nanos"),
                               _f32(vread, "vread"))

    def pulseread_slice_masked(self, chan, mask, vpulse, nanos, vread) -> np.ndarray:
        """Pulse the ``mask`` crosspoints of a slice, then read them (others NaN)."""
        chan = _chan(chan, "chan")
        mask = _chans(mask, "mask")
        self._reach()
        return self._pulseread(chan, mask, _f32(vpulse, "vpulse"), _uint(nanos, "nanos"),
                               _f32(vread, "vread"))

    def _pulseread(self, chan: int, mask, vpulse: float, nanos: int, vread: float, run=True):
        highs = self._slice_highs(chan, mask)
        self._pulse_pairs([(chan, int(h)) for h in highs], vpulse, nanos)
        self._ground_all_fast()
        chunk = self._read_slice_inner(chan, highs, -vread)
        self._ground_all_fast()
        self._run_buffer()
        if not run:
            return chunk
        mode = DataMode.Words if _IS_BIT[chan] else DataMode.Bits
        return self._read_chunk(chunk, mode, ReadType.Current)

    def pulseread_all(self, vpulse, nanos, vread, order) -> np.ndarray:
        """Pulse and read every crosspoint, one biased line after the other, (32, 32) f32."""
        vpulse, nanos, vread = _f32(vpulse, "vpulse"), _uint(nanos, "nanos"), _f32(vread, "vread")
        order = _variant(order, BiasOrder, "order")
        self._reach()
        lines = ALL_WORDS if order is BiasOrder.Rows else ALL_BITS
        mode = DataMode.Bits if order is BiasOrder.Rows else DataMode.Words
        chunks = [self._pulseread(ch, None, vpulse, nanos, vread, run=False) for ch in lines]
        return np.stack([self._read_chunk(c, mode, ReadType.Current) for c in chunks])

    # ---- programs (queued)
    def generate_ramp(self, low, high, vstart, vstep, vstop, pw_nanos, inter_nanos,
                      num_pulses, read_at, read_after) -> SimInstrument:
        """Queue a ramp on one crosspoint: ``num_pulses`` pulses of ``pw_nanos`` at each of
        ``vstart, vstart + vstep, …`` (``vstop`` excluded), reads per ``read_at``/``read_after``
        (results through ``get_iter``/``pick_one``)."""
        low, high = _chan(low, "low"), _chan(high, "high")
        vstart, vstep, vstop = _f32(vstart, "vstart"), _f32(vstep, "vstep"), _f32(vstop, "vstop")
        pw, inter = _uint(pw_nanos, "pw_nanos"), _uint(inter_nanos, "inter_nanos")
        n = _uint(num_pulses, "num_pulses")
        read_at = _variant(read_at, ReadAt, "read_at")
        read_after = _variant(read_after, ReadAfter, "read_after")
        if (vstop < vstart and vstep >= 0) or (vstep == 0 and vstop != vstart):
            # the second case makes libarc2 loop forever; refused here *(mock)*
            raise ArC2Error(f"Ramp operation error: Vstart {vstart}, Vstop {vstop}, "
                            f"Vstep {vstep}")
        ratio = np.float32(vstop - vstart) / np.float32(vstep) if vstep else np.float32(0)
        steps = max(int(math.ceil(float(ratio))), 0)
        never = read_at._name == "Never" or read_after._name == "Never"

        def read(v: float) -> None:
            at = v if read_at._name == "Bias" else read_at.voltage()
            self._output.append(self._read_slice_inner(low, np.array([high]), -at))

        v = vstart
        for idx in range(steps):
            v = float(np.float32(vstart) + np.float32(vstep) * np.float32(idx))
            if n == 0:
                if read_after._name == "Pulse" and not never:
                    read(v)
                continue
            for p in range(n):
                self._pulse_pairs([(low, high)], v, pw, True)
                if inter > 0:
                    self._config_channels([(low, 0.0), (high, 0.0)], None)
                if never or read_after._name == "Ramp" or \
                        (read_after._name == "Block" and p < n - 1):
                    self._delay_s(inter * 1e-9)
                    continue
                read(v)
                self._delay_s(inter * 1e-9)
        if read_after._name == "Ramp" and not never and steps:
            read(v)
        return self

    def generate_read_train(self, lows, highs, vread, nreads, inter_nanos, ground
                            ) -> SimInstrument:
        """Queue ``nreads`` reads of ``highs`` with ``lows`` at −vread (``None``: open reads)."""
        lows = None if lows is None else _chans(lows, "lows")
        highs = _chans(highs, "highs")
        vread = _f32(vread, "vread")
        nreads, inter = _uint(nreads, "nreads"), _uint(inter_nanos, "inter_nanos")
        ground = _flag(ground, "ground")
        lowconf = [(int(c), -vread) for c in lows] if lows is not None and lows.size else None
        self._amp_prep(highs)
        self._q(self._set_mode, highs, _ARB)
        for _ in range(nreads):
            if lowconf:
                self._config_channels(lowconf, None)
            chunk = self._make_chunk()
            self._q(self._current_read, highs, chunk)
            if ground:
                self._ground_slice_fast(highs)
                if lowconf:
                    self._ground_slice_fast(lows)
            if inter > 0:
                self._delay_s((inter + 1_000) * 1e-9)
            self._output.append(chunk)
        return self

    def generate_vread_train(self, uchans, averaging, npulses, inter_nanos) -> SimInstrument:
        """Queue ``npulses`` voltage reads of ``uchans``."""
        chans = np.sort(_chans(uchans, "uchans"))
        averaging = _flag(averaging, "averaging")
        n, inter = _uint(npulses, "npulses"), _uint(inter_nanos, "inter_nanos")
        for _ in range(n):
            chunk = self._make_chunk()
            self._q(self._voltage_read, chans, averaging, chunk)
            self._delay_s(inter * 1e-9)
            self._output.append(chunk)
        return self

    def read_train(self, low, high, vread, interpulse, preload, condition) -> None:
        """Read one crosspoint repeatedly, ``interpulse`` ns apart, until ``condition``
        (results through ``get_iter``); with ``preload`` the low channel stays biased at
        −preload between reads."""
        low, high = _chan(low, "low"), _chan(high, "high")
        vread, interpulse = _f32(vread, "vread"), _uint(interpulse, "interpulse")
        preload = None if preload is None else _f32(preload, "preload")
        condition = _variant(condition, WaitFor, "condition")
        self._reach()
        self._reset_dacs()
        start, count = self.clock.now, 0
        if preload is not None:
            self._config_channels([(low, -preload)], None)
        while True:
            chunk = self._read_slice_inner(low, np.array([high]), -vread)
            if preload is not None:
                if vread == preload or abs(vread - preload) > 5e-3:
                    self._config_channels([(low, -preload)], None)
                    self._run_buffer()
            else:
                self._ground_all_fast()
            self._delay_s(interpulse * 1e-9)
            self._run_buffer()
            self._output.append(chunk)
            count += 1
            if condition._iterations is not None:
                done = count >= condition._iterations
            else:
                done = (self.clock.now - start) * 1e9 >= condition._nanos
            if done:
                if preload is None:
                    self._ground_all_fast()
                return

    # ---- results
    def pick_one(self, mode, rtype) -> np.ndarray | None:
        """The oldest result not yet fetched (64 or 32 f32), or None; frees its memory."""
        _variant(mode, DataMode, "mode")
        _variant(rtype, ReadType, "rtype")
        if not self._output:
            return None
        self._reach(retrieval=True)
        return self._read_chunk(self._output.popleft(), mode, rtype)

    def _array_iter_inner(self, mode, rtype):
        data = self.pick_one(mode, rtype)
        return None if data is None else [data]

    def get_iter(self, mode, rtype=None):
        """Iterate over the results in the order they were stored; each item is a one-element
        list holding the array (as pyarc2 yields them)."""
        return iter(partial(self._array_iter_inner, mode,
                            ReadType.Current if rtype is None else rtype), None)

    def _at(self, addr) -> _Chunk:
        addr = _uint(addr, "addr")
        if addr % 256:
            raise ArC2Error(f"Invalid base address {addr} (must be a multiple of 256)")
        self._reach(retrieval=True)
        return self._chunks.get(addr, _Chunk(addr))

    def currents_from_address(self, addr, chans) -> np.ndarray:
        chans = _chans(chans, "chans")
        data = self._read_chunk(self._at(addr), DataMode.All, ReadType.Current, free=False)
        out = np.full(N_CHANNELS, np.nan, dtype=np.float32)
        out[chans] = data[chans]
        return out

    def word_currents_from_address(self, addr) -> np.ndarray:
        return self._read_chunk(self._at(addr), DataMode.Words, ReadType.Current, free=False)

    def bit_currents_from_address(self, addr) -> np.ndarray:
        return self._read_chunk(self._at(addr), DataMode.Bits, ReadType.Current, free=False)

    def finalise_operation(self, mode=None, control=None) -> None:
        """Leave the channels in ``mode`` (an :class:`IdleMode`) and set the control mode."""
        if mode == IdleMode.Float:
            self.connect_to_gnd([]).ground_all_fast().float_all().execute()
        elif mode == IdleMode.SoftGnd:
            self.connect_to_gnd([]).ground_all().execute()
        elif mode == IdleMode.HardGnd:
            self.ground_all_fast().float_all().connect_to_gnd(range(N_CHANNELS)).execute()
        elif mode is not None:
            raise ArC2Error("Invalid idle mode")
        if control is ControlMode.Header or control is ControlMode.Internal:
            self.set_control_mode(control)
        elif control is not None:
            raise ArC2Error("Invalid control mode")

    # ---- for tests and benches
    def line_levels(self) -> np.ndarray:
        """Present potential of the 64 channels in V (NaN: floating)."""
        return self._levels()


Instrument = SimInstrument
"""The pyarc2 name, so ``module.Instrument`` exists as in pyarc2."""
