"""ArC TWO (ArC Instruments) memristor-array controller, through its Python library pyarc2.

The ArC TWO is a 64-channel board (32 bit lines + 32 word lines) driven from the host through
``pyarc2`` (Python bindings of the Rust ``libarc2``): calls queue FPGA instructions in a command
buffer, ``execute()`` sends the buffer to the board in one USB write, reads store their results
in the board's memory and ``pick_one``/``get_iter`` fetch them. This driver maps labctl's array
interface (:class:`~labctl.array.ArrayController`) onto that API. Sources, read for facts only:

- ``pyarc2`` 0.6.0 (PyPI; ``pyarc2/__init__.py``, ``pyarc2/pyarc2.pyi``, the compiled module's
  docstrings; ``arc-instruments/pyarc2`` ``src/lib.rs``): ``find_ids()``,
  ``Instrument(id, firmware)`` (``ArC2Error("Invalid ArC2 device id: …")`` for a missing board),
  the method signatures (channels as uint64 lists, widths in integer ns), ``read_all`` → 32×32
  f32, ``pick_one(DataMode.All, ReadType.Current)`` → 64 f32 per stored read,
  ``finalise_operation(IdleMode.SoftGnd)`` (clear hard grounds, ``ground_all``, execute),
  ``LIBARC2_VERSION``.
- ``arc-instruments/libarc2`` ``src/instrument.rs``: bit channels 0–15, 32–47 and word channels
  16–31, 48–63 ("a low channel between 0 and 15 or 32 and 47 is a row"); ``read_one(low, high,
  V)`` biases ``low`` at −V and senses ``high`` with every other channel at 0 V;
  ``read_slice``/``read_all`` (``BiasOrder.Rows`` biases the word channels in turn, one block of
  32 bit currents each, ascending channel order); ``pulse_one(low, high, V)`` and the slice/all
  pulses put +V/2 on the high and −V/2 on the low channels and leave every other channel *open*
  (high-speed drivers below 500 ms, 40 ns minimum; arbitrary-voltage DACs above);
  ``config_channels`` (arbitrary per-channel voltages, unselected channels kept with
  ``base=None``) followed by a 30 µs DAC settling delay; ``pulse_slice_fast_open`` (high-speed
  pulses on any channels, one timing per cluster of 8, one transition direction per cluster,
  a held level counted as falling, the others left open); ``read_slice_open(_deferred)`` (a read
  of channels as configured); ``generate_ramp`` (``ceil((vstop − vstart)/vstep)`` steps,
  ``vstop`` excluded, reads of the high channel with the low one at −V); DAC range ±10 V per
  channel (clamped, not refused) — a differential pulse reaches ±20 V across a device.
- ``arc-instruments/arc2control``: ``mappings/standard32.toml`` (the PLCC 32×32 socket's word
  and bit channels, option ``mapping: standard32``); ``modules/curvetracer/curvetracer.py``
  (ramps as ``generate_ramp`` + one ``execute`` + ``get_iter``; low = word, high = bit; the
  current returned negated to plot I against the bit-over-word voltage);
  ``modules/autoformer/autoformer.py`` (a ramp with a stop criterion done in software, one
  ``pulseread_one`` per step, the resistance checked after each); ``widgets/app.py`` and
  ``widgets/arc2connection_widget.py`` (every operation ends with ``finalise_operation`` in the
  user's idle mode; disconnecting just drops the ``Instrument``).

Geometry and signs: labctl row r is bit line ``bits[r]``, column c is word line ``words[c]``
(``mapping``: ``linear`` = ascending channels, ``standard32`` = arc2control's PLCC 32×32 table, or
``{words: [...], bits: [...]}``). A positive amplitude raises the bit (row) channel above the
word (column) channel — arc2control's convention (low = word, high = bit) — which is the SET
direction of the simulated RRAM. pyarc2 reports the current flowing from the array into the
sensing channel (inferred from curvetracer.py, which negates it for a positive bias; arc2control
otherwise only uses |V/I|: check the sign once with a known resistor); the driver returns the
current through the device in the row → column direction, so a positive read voltage gives a
positive current.

Mapping of the operations (``_execute``), each call one ``execute()`` unless noted:

- **read, bias ground** (every unselected line at 0 V, the library's own read): one device →
  ``read_one``; a row → ``read_slice`` of its bit channel; a column → ``read_slice`` of its word
  channel; the whole array → one ``read_all(vread, BiasOrder.Rows)``. One call each, no
  ``execute``. Cells, and ground reads inside a batch → as below.
- **read, bias v/2, v/3 or float**: per driven line, ``config_channels`` (the driven line at
  ±Vread, the sensed lines at 0 V, the others at the scheme's level) or ``open_channels``
  (float), then ``read_slice_open_deferred``; all queued, one ``execute``, one block per driven
  line fetched with ``pick_one``. A row or single-device read drives the row and senses the
  columns (sneak currents into the sensed column, as the crossbar definition); a column read
  drives the column and senses every row.
- **pulse, bias float**: the library's differential pulses (±V/2 on the selected lines,
  unselected lines open): ``pulse_one``, ``pulse_slice_masked`` (a row, a column, or the cells of
  one column at one amplitude: cells at different amplitudes take one pulse per column and
  amplitude), ``pulse_all(V, ns, BiasOrder.Rows)``; 40 ns to 10 s.
- **pulse, bias v/2, v/3, ground** (unselected lines *held*): ``pulse_slice_fast_open`` on
  every wired channel plus a ``delay`` of the width (as AutoFormer's single-ended pulses), the
  crossbar's levels — v/2: selected row +V/2, column −V/2, the rest 0 V; v/3: selected row V,
  unselected rows V/3, unselected columns 2V/3, selected column 0 V; ground: selected row V,
  the rest 0 V. libarc2 refuses a cluster of 8 channels whose transitions go both ways and
  counts a line held at 0 V as going down, so a held line in a rising cluster is nudged up by
  0.5 mV. 40 ns to 500 ms on the high-speed drivers, from 500 ms ``config_channels`` +
  ``delay`` + ``ground_all_fast``; |V| ≤ 10 V under v/3 and ground (one channel carries it).
- **reads after pulses** (``vread`` of a pulse or train): a read of the selection under the
  operation's ``read_bias``, queued after the pulse, as the reads above.
- **train**: one device, bias float, reads under ground (the library's read) →
  ``generate_ramp`` (one call per run of equal pulses, ``ReadAt.Arb(vread)``,
  ``ReadAfter.Pulse``); anything else → the pulses and reads above, queued back to back. All in
  one ``execute``; one ``pick_one`` per read.
- **ramp**: bias float → ``generate_ramp`` (one call for evenly spaced voltages), reading at
  ``vread`` or at the step voltage (``ReadAt.Bias``); other schemes → held pulses and reads.
  ``stop_current``: ArC TWO has no real-time compliance, so the ramp runs in chunks of
  ``ramp_chunk`` steps (default 1, as AutoFormer), one ``execute`` each, the currents checked
  between chunks; with ``ramp_chunk`` > 1 the steps of the chunk after the trip are applied too,
  and reported.
- **idle**: ground → ``connect_to_gnd([])`` + ``ground_all()`` (= ``IdleMode.SoftGnd``); float →
  ``IdleMode.Float``. Every queued program ends with the SoftGnd sequence, so the lines are at
  0 V in arbitrary-voltage mode after each call, as arc2control's ``finalise_operation``.
- **batches** (``ctrl.batch()``): every operation of the batch in one program, one ``execute``.
- **errors**: ``ArC2Error`` becomes one line (:class:`ArcTwoError`) naming the board and the
  operation; results a failed call left in the board memory are fetched and dropped before the
  next program, so they cannot be taken for its own.

Safe state (``shutdown``): ``finalise_operation(IdleMode.SoftGnd)`` — every channel back to
arbitrary-voltage mode at 0 V, hard grounds released. ``close`` drops the ``Instrument`` (libarc2
closes the USB handle), as arc2control does on disconnect.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable

import numpy as np

from labctl.array import (
    ArrayController,
    Capabilities,
    Idle,
    Pulse,
    Ramp,
    RampResult,
    Read,
    Selection,
    Train,
)
from labctl.errors import ConfigError, LabctlError

WORD_CHANNELS = (*range(16, 32), *range(48, 64))
"""Word-line channels, ascending (libarc2)."""
BIT_CHANNELS = (*range(0, 16), *range(32, 48))
"""Bit-line channels, ascending (libarc2)."""
_WORD_POS = {ch: k for k, ch in enumerate(WORD_CHANNELS)}
_BIT_POS = {ch: k for k, ch in enumerate(BIT_CHANNELS)}

MAPPINGS = {
    "linear": {"words": list(WORD_CHANNELS), "bits": list(BIT_CHANNELS)},
    # arc2control mappings/standard32.toml: PLCC 32x32 (32NNA68 daughterboard socket)
    "standard32": {
        "words": [16, 63, 17, 62, 18, 61, 19, 60, 20, 59, 21, 58, 22, 57, 23, 56,
                  24, 55, 25, 54, 26, 53, 27, 52, 28, 51, 29, 50, 30, 49, 31, 48],
        "bits": [15, 32, 14, 33, 13, 34, 12, 35, 11, 36, 10, 37, 9, 38, 8, 39,
                 7, 40, 6, 41, 5, 42, 4, 43, 3, 44, 2, 45, 1, 46, 0, 47],
    },
}
"""Channel of each word line (labctl column) and bit line (labctl row)."""

CHANNEL_V = 10.0
"""Largest |V| one channel's DAC outputs (standard range)."""
READ_RANGE = (-CHANNEL_V, CHANNEL_V)
PULSE_RANGE = (-2 * CHANNEL_V, 2 * CHANNEL_V)
"""Across a device: ∓V/2 on its two channels."""
MIN_WIDTH_S = 40e-9
"""High-speed drivers: 1–40 ns are stretched to 40 ns."""
MAX_WIDTH_S = 10.0
"""labctl's cap; longer pulses run on the arbitrary-voltage DACs as well."""
TIME_GRID_S = 1e-9
"""Widths are integer nanoseconds."""
DAC_SETTLE_NS = 30_000
"""libarc2 waits 30 µs after every DAC update; under a held bias the lines are at level."""
SLOW_PULSE_NS = 500_000_000
"""From 500 ms pulses run on the arbitrary-voltage DACs (the high-speed timers stop there)."""
HOLD_NUDGE_V = 0.5e-3
"""Offset (two DAC steps of 305 µV) that gives a held line a transition direction."""
SINGLE_ENDED = ("v/3", "ground")
"""Schemes whose selected row carries the whole amplitude (one channel: ±10 V)."""
MAX_BATCH = 10_000

_RESOURCE = re.compile(r"^ARC2::(\d+)$", re.IGNORECASE)
_API_NAMES = ("BiasOrder", "ReadAt", "ReadAfter", "DataMode", "ReadType", "IdleMode", "ArC2Error")
_API_METHODS = ("read_one", "read_slice", "read_all", "pulse_one", "pulse_slice_masked",
                "pulse_all", "pulse_slice_fast_open", "generate_ramp", "config_channels",
                "open_channels", "read_slice_open_deferred", "connect_to_gnd", "ground_all",
                "ground_all_fast", "float_all", "delay", "execute", "wait", "pick_one",
                "finalise_operation")


class ArcTwoError(LabctlError):
    """pyarc2 reported an error (or the board answered short); the message says where."""


def _mapping(mapping) -> tuple[np.ndarray, np.ndarray, str]:
    """(bit channel of each row, word channel of each column, mapping name)."""
    if isinstance(mapping, str):
        if mapping not in MAPPINGS:
            raise ValueError(f"ArcTwo option mapping={mapping!r}: known mappings "
                             f"{', '.join(MAPPINGS)}, or {{words: [...], bits: [...]}}")
        name, table = mapping, MAPPINGS[mapping]
    elif isinstance(mapping, dict) and set(mapping) == {"words", "bits"}:
        name, table = "custom", mapping
    else:
        raise ValueError(f"ArcTwo option mapping={mapping!r}: a mapping name or "
                         "{words: [word channels], bits: [bit channels]}")
    try:
        words = [int(c) for c in table["words"]]
        bits = [int(c) for c in table["bits"]]
    except (TypeError, ValueError):
        raise ValueError("ArcTwo option mapping: channels must be integers") from None
    for what, chans, valid in (("words", words, _WORD_POS), ("bits", bits, _BIT_POS)):
        if not chans or len(set(chans)) != len(chans) or any(c not in valid for c in chans):
            raise ValueError(f"ArcTwo option mapping: {what} must be distinct {what[:-1]} "
                             f"channels ({'16-31, 48-63' if what == 'words' else '0-15, 32-47'})")
    return np.array(bits), np.array(words), name


def _api_of(instrument):
    """The pyarc2 module (or stand-in) an Instrument object comes from."""
    module = sys.modules.get(type(instrument).__module__)
    missing = [n for n in _API_NAMES if not hasattr(module, n)]
    missing += [m for m in _API_METHODS if not callable(getattr(instrument, m, None))]
    if missing:
        raise ConfigError(f"{type(instrument).__name__} object",
                          f"not a pyarc2 Instrument (lacks {', '.join(missing)})")
    return module


class ArcTwo(ArrayController):
    """ArC TWO memristor-array controller (pyarc2).

    .. code-block:: python

        arc = ArcTwo("ARC2::0", firmware="/path/efm03_20220905.bin", mapping="standard32")
        g = arc.read_all(0.2, bias="ground") / 0.2     # one read_all call
        arc.pulse_train(Selection.one(3, 4), [1.5] * 100, 100e-9, bias="float", vread=0.2)
        arc.shutdown()

    ``target``: ``ARC2::<board id>`` (pyarc2 is imported then: ``pip install 'labctl[arc2]'``),
    or an object with the ``pyarc2.Instrument`` API (the simulated board); ``firmware``: the FPGA
    bitstream ``Instrument`` loads (needed with a resource); ``mapping``: see the module
    docstring; ``control_mode``: ``"internal"`` (PLCC socket) or ``"header"`` (probe card) to set
    the daughterboard routing at connect, None to leave it; ``ramp_chunk``: steps run between
    two checks of a ramp's stop current.
    """

    RESOURCE_KIND = "arc2"
    SAFE_IDLE = "ground"

    def __init__(self, target, firmware: str | None = None, mapping="linear",
                 control_mode: str | None = None, ramp_chunk: int = 1):
        super().__init__()
        self._rows, self._cols, self.mapping_name = _mapping(mapping)
        if not (isinstance(ramp_chunk, int) and ramp_chunk >= 1):
            raise ValueError(f"ArcTwo option ramp_chunk={ramp_chunk!r}: an integer >= 1")
        if control_mode not in (None, "internal", "header"):
            raise ValueError(f"ArcTwo option control_mode={control_mode!r}: 'internal', "
                             "'header' or None")
        self.ramp_chunk = ramp_chunk
        self._stale = False  # results of a failed call may be waiting in the board memory
        self._caps = Capabilities(
            shape=(len(self._rows), len(self._cols)), read_voltage=READ_RANGE,
            pulse_voltage=PULSE_RANGE, min_pulse_width=MIN_WIDTH_S, max_pulse_width=MAX_WIDTH_S,
            time_grid=TIME_GRID_S, hardware_compliance=False,
            bias_schemes=("v/2", "v/3", "ground", "float"), whole_array_read=True, batched=True,
            max_batch=MAX_BATCH)
        if isinstance(target, str):
            self._instrument, self._api, self.where = self._open(target, firmware)
        else:
            self._api = _api_of(target)
            self._instrument = target
            self.where = f"{type(target).__module__}.{type(target).__qualname__} object"
        self._error = self._api.ArC2Error
        if control_mode is not None:
            mode = getattr(self._api.ControlMode, control_mode.capitalize())
            self._call("set control mode", lambda: self._instrument.set_control_mode(mode)
                       .execute())

    # ---------------------------------------------------------------- resources
    @classmethod
    def check_resource(cls, resource: str) -> str | None:
        """A problem line if ``resource`` is not ``ARC2::<board id>``."""
        if isinstance(resource, str) and _RESOURCE.match(resource.strip()):
            return None
        return (f"{resource!r} is not an ArC TWO resource (expected ARC2::<board id>, the id an "
                "integer >= 0 as pyarc2.find_ids() lists the boards, e.g. ARC2::0)")

    @classmethod
    def _open(cls, resource: str, firmware: str | None):
        problem = cls.check_resource(resource)
        if problem:
            raise ConfigError(str(resource), problem)
        board = int(_RESOURCE.match(resource.strip()).group(1))
        try:
            pyarc2 = importlib.import_module("pyarc2")
        except ImportError:
            raise ConfigError(resource, "the ArC TWO needs pyarc2, which is not installed: "
                              "pip install 'labctl[arc2]'") from None
        if firmware is None:
            raise ConfigError(resource, "no firmware: set the option 'firmware' to the ArC TWO "
                              "FPGA bitstream (.bin) that pyarc2 loads at connect")
        if not os.path.isfile(firmware):
            raise ConfigError(resource, f"firmware file {firmware!r} not found")
        try:
            ids = list(pyarc2.find_ids())
        except pyarc2.ArC2Error as exc:
            raise ConfigError(resource, f"cannot list ArC TWO boards ({exc})") from None
        if board not in ids:
            raise ConfigError(resource, f"no ArC TWO board {board} connected (boards found: "
                              f"{', '.join(map(str, ids)) or 'none'})")
        try:
            instrument = pyarc2.Instrument(board, firmware)
        except pyarc2.ArC2Error as exc:
            raise ConfigError(resource, f"cannot open board {board} with firmware {firmware!r} "
                              f"({exc})") from None
        return instrument, pyarc2, f"board {board}, firmware {os.path.basename(firmware)}"

    # ---------------------------------------------------------------- interface
    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    @property
    def id(self) -> str:
        version = getattr(self._api, "LIBARC2_VERSION", None) or "unknown"
        rows, cols = self.capabilities.shape
        return (f"ArC Instruments ArC TWO, {self.where}, libarc2 {version}, {rows}x{cols} array "
                f"({self.mapping_name} mapping)")

    def _close(self) -> None:
        self._instrument = None

    @property
    def instrument(self):
        """The pyarc2 ``Instrument`` (or stand-in) in use."""
        if self._instrument is None:
            raise ArcTwoError(f"ArC TWO ({self.where}) is closed")
        return self._instrument

    def _call(self, what: str, fn: Callable):
        try:
            return fn()
        except self._error as exc:
            text = str(exc).strip().splitlines()
            raise ArcTwoError(f"ArC TWO ({self.where}): {what} failed: "
                              f"{text[0] if text else type(exc).__name__}") from None

    # ---------------------------------------------------------------- running operations
    def _execute(self, ops: list) -> list:
        inst = self.instrument
        if len(ops) == 1:
            op = ops[0]
            if isinstance(op, Read) and op.bias == "ground" and op.sel.kind != "cells":
                return [self._call("read", lambda: self._native_read(op))]
            if isinstance(op, Idle):
                mode = self._api.IdleMode.SoftGnd if op.mode == "ground" else \
                    self._api.IdleMode.Float
                self._call(f"idle ({op.mode})", lambda: inst.finalise_operation(mode))
                return [None]
        return self._call(f"{len(ops)} operation(s)", lambda: self._programs(ops))

    def _programs(self, ops: list) -> list:
        results: list = [None] * len(ops)
        program = _Program(self)
        for index, op in enumerate(ops):
            if isinstance(op, Ramp) and op.stop_current is not None:
                program.run(results)
                program = _Program(self)
                results[index] = self._ramp_with_stop(op)
            else:
                program.add(index, op)
        program.run(results)
        return results

    def _refuse(self, op) -> str | None:
        """Limits that depend on how ArC TWO runs an operation (checked before the first call)."""
        if isinstance(op, (Read, Idle)):
            return None
        if isinstance(op, Pulse):
            amps = np.asarray(op.amplitude, float)
        elif isinstance(op, Train):
            amps = np.asarray(op.amplitudes, float)
        else:
            amps = np.asarray(op.voltages, float)
        worst = float(np.max(np.abs(amps)))
        if op.bias in SINGLE_ENDED and worst > CHANNEL_V:
            return (f"bias {op.bias!r} puts the whole amplitude on the selected row, so "
                    f"|amplitude| <= {CHANNEL_V:g} V on ArC TWO (got {worst:g} V); 'v/2' and "
                    f"'float' split it ±V/2, up to {2 * CHANNEL_V:g} V")
        if isinstance(op, Ramp) and op.vread is None and worst > CHANNEL_V:
            return (f"reading at the step voltage needs |V| <= {CHANNEL_V:g} V on ArC TWO (got "
                    f"{worst:g} V); give a read voltage")
        return None

    # ---------------------------------------------------------------- native reads
    def _native_read(self, op: Read):
        inst, sel, v = self.instrument, op.sel, op.vread
        if sel.kind == "one":
            r, c = sel.rows[0], sel.cols[0]
            return -float(inst.read_one(int(self._cols[c]), int(self._rows[r]), v))
        if sel.kind == "row":
            data = np.asarray(inst.read_slice(int(self._rows[sel.rows[0]]), -v), float)
            return data[[_WORD_POS[ch] for ch in self._cols]]
        if sel.kind == "column":
            data = np.asarray(inst.read_slice(int(self._cols[sel.cols[0]]), v), float)
            return -data[[_BIT_POS[ch] for ch in self._rows]]
        raw = np.asarray(inst.read_all(v, self._api.BiasOrder.Rows), float)
        return -raw[np.ix_([_WORD_POS[ch] for ch in self._cols],
                           [_BIT_POS[ch] for ch in self._rows])].T

    # ---------------------------------------------------------------- ramps with a stop
    def _ramp_with_stop(self, op: Ramp) -> RampResult:
        volts, currents = [], []
        n, k = len(op.voltages), self.ramp_chunk
        for start in range(0, n, k):
            part = Ramp(op.row, op.col, op.voltages[start:start + k], op.width, op.bias,
                        op.vread, None)
            out: list = [None]
            program = _Program(self)
            program.add(0, part)
            program.run(out)
            volts.append(part.voltages)
            currents.append(out[0].currents)
            if np.any(np.abs(out[0].currents) > op.stop_current):
                return RampResult(np.concatenate(volts), np.concatenate(currents), True)
        return RampResult(np.concatenate(volts), np.concatenate(currents), False)


class _Program:
    """pyarc2 calls queued for one ``execute()``, and where each stored read's block goes."""

    def __init__(self, ctrl: ArcTwo):
        self.ctrl = ctrl
        self.inst = ctrl.instrument
        self.api = ctrl._api
        self.rows, self.cols = ctrl._rows, ctrl._cols
        self.fills: list[Callable[[np.ndarray], None]] = []
        self.finishers: list[tuple[int, Callable[[], object]]] = []
        self.queued = False
        self.ends_idle = False
        if ctrl._stale:  # results left behind by a call that failed half-way
            while self.inst.pick_one(self.api.DataMode.All, self.api.ReadType.Current) \
                    is not None:
                pass
            ctrl._stale = False

    # ---- running
    def run(self, results: list) -> None:
        if not self.queued:
            return
        inst, api, ctrl = self.inst, self.api, self.ctrl
        if not self.ends_idle:
            inst.connect_to_gnd([]).ground_all()
        ctrl._stale = bool(self.fills)
        inst.execute()
        inst.wait()
        for k, fill in enumerate(self.fills):
            data = inst.pick_one(api.DataMode.All, api.ReadType.Current)
            if data is None:
                raise ArcTwoError(f"ArC TWO ({ctrl.where}): {len(self.fills)} reads queued, "
                                  f"only {k} results stored")
            fill(np.asarray(data, dtype=float))
        ctrl._stale = False
        for index, finish in self.finishers:
            results[index] = finish()

    # ---- operations
    def add(self, index: int, op) -> None:
        self.queued = True
        self.ends_idle = isinstance(op, Idle)
        shape = self.ctrl.capabilities.shape
        if isinstance(op, Idle):
            self.inst.connect_to_gnd([])
            if op.mode == "ground":
                self.inst.ground_all()
            else:
                self.inst.ground_all_fast().float_all()
            self.finishers.append((index, lambda: None))
        elif isinstance(op, Read):
            out = np.full(op.sel.result_shape(shape), np.nan)
            self.read(op.sel, op.vread, op.bias, out, ())
            self.finishers.append((index, _value(out)))
        elif isinstance(op, Pulse):
            self.pulse(op.sel, op.amplitude, op.width, op.bias)
            if op.vread is None:
                self.finishers.append((index, lambda: None))
            else:
                out = np.full(op.sel.result_shape(shape), np.nan)
                self.read(op.sel, op.vread, op.read_bias, out, ())
                self.finishers.append((index, _value(out)))
        elif isinstance(op, Train):
            self.train(index, op, shape)
        elif isinstance(op, Ramp):
            self.ramp(index, op)
        else:
            raise ArcTwoError(f"ArC TWO: unknown operation {op!r}")

    def train(self, index: int, op: Train, shape) -> None:
        n = op.amplitudes.size
        out = None if op.vread is None else np.full((n, *op.sel.result_shape(shape)), np.nan)
        if op.sel.kind == "one" and op.bias == "float" and op.read_bias in (None, "ground"):
            r, c = op.sel.rows[0], op.sel.cols[0]
            start = 0
            while start < n:  # one generate_ramp per run of equal pulses
                a, w = op.amplitudes[start], op.widths[start]
                stop = start + 1
                while stop < n and op.amplitudes[stop] == a and op.widths[stop] == w:
                    stop += 1
                self.ramp_call(r, c, float(a), 1.0, float(a) + 0.5, w, stop - start, op.vread,
                               out, range(start, stop))
                start = stop
        else:
            for k in range(n):
                self.pulse(op.sel, op.amplitudes[k], op.widths[k], op.bias)
                if out is not None:
                    self.read(op.sel, op.vread, op.read_bias, out, (k,))
        self.finishers.append((index, lambda: out))

    def ramp(self, index: int, op: Ramp) -> None:
        volts = np.asarray(op.voltages, float)
        n = volts.size
        out = np.full(n, np.nan)
        if op.bias == "float":
            steps = np.diff(volts)
            if n == 1 or np.allclose(steps, steps[0], rtol=0, atol=1e-6) and steps[0] != 0:
                step = float(steps[0]) if n > 1 else 1.0
                self.ramp_call(op.row, op.col, float(volts[0]), step,
                               float(volts[0]) + step * (n - 0.5), op.width, 1, op.vread, out,
                               range(n), at_bias=op.vread is None)
            else:
                for k, v in enumerate(volts):
                    self.ramp_call(op.row, op.col, float(v), 1.0, float(v) + 0.5, op.width, 1,
                                   op.vread, out, range(k, k + 1), at_bias=op.vread is None)
        else:
            sel = Selection.one(op.row, op.col)
            for k, v in enumerate(volts):
                self.pulse(sel, float(v), op.width, op.bias)
                self.read(sel, float(v) if op.vread is None else op.vread, "ground", out, (k,))
        self.finishers.append((index, lambda: RampResult(volts, out, False)))

    # ---- primitives
    def ramp_call(self, r: int, c: int, vstart: float, vstep: float, vstop: float, width: float,
                  pulses: int, vread: float | None, out, slots: range,
                  at_bias: bool = False) -> None:
        """One ``generate_ramp`` on device (r, c) (low = word, high = bit); each read's block
        fills ``out[k]`` for k in ``slots``."""
        api = self.api
        if at_bias:
            read_at, read_after = api.ReadAt.Bias, api.ReadAfter.Pulse
        elif vread is None:
            read_at, read_after = api.ReadAt.Never, api.ReadAfter.Never
        else:
            read_at, read_after = api.ReadAt.Arb(vread), api.ReadAfter.Pulse
        bit = int(self.rows[r])
        self.inst.generate_ramp(int(self.cols[c]), bit, vstart, vstep, vstop, _ns(width), 0,
                                pulses, read_at, read_after)
        if out is not None and (at_bias or vread is not None):
            for k in slots:
                self.fills.append(_fill(out, (k,), [bit], -1.0))

    def pulse(self, sel: Selection, amplitude, width: float, bias: str) -> None:
        ns = _ns(width)
        if bias == "float":
            self.pulse_float(sel, amplitude, ns)
            return
        for rows, cols, a in self.groups(sel, amplitude):
            levels = self.held_levels(rows, cols, a, bias)
            if ns < SLOW_PULSE_NS:  # high-speed drivers on every wired line
                self.inst.pulse_slice_fast_open(_one_way(levels), [ns] * 8, True)
                self.inst.delay(ns)
            else:  # the arbitrary-voltage DACs, as libarc2's own slow pulses
                self.inst.config_channels(levels, None)
                self.inst.delay(ns - DAC_SETTLE_NS)
                self.inst.ground_all_fast()

    def pulse_float(self, sel: Selection, amplitude, ns: int) -> None:
        inst, rows, cols = self.inst, self.rows, self.cols
        bits, words = rows.tolist(), cols.tolist()
        if sel.kind == "one":
            inst.pulse_one(int(cols[sel.cols[0]]), int(rows[sel.rows[0]]), float(amplitude), ns)
        elif sel.kind == "row":
            inst.pulse_slice_masked(int(rows[sel.rows[0]]), -float(amplitude), ns, words)
        elif sel.kind == "column":
            inst.pulse_slice_masked(int(cols[sel.cols[0]]), float(amplitude), ns, bits)
        elif sel.kind == "all" and len(bits) == len(words) == 32:
            inst.pulse_all(float(amplitude), ns, self.api.BiasOrder.Rows)
        else:  # one slice pulse per column (or per row, if fewer) of each block
            for rs, cs, a in self.groups(sel, amplitude):
                if len(cs) <= len(rs):
                    for c in cs:
                        inst.pulse_slice_masked(words[c], a, ns, [bits[r] for r in rs])
                else:
                    for r in rs:
                        inst.pulse_slice_masked(bits[r], -a, ns, [words[c] for c in cs])

    def groups(self, sel: Selection, amplitude) -> list[tuple[list[int], list[int], float]]:
        """The selection as (rows, cols, amplitude) blocks that one pulse can hit together: a
        cells selection by column (or by row, if fewer) and amplitude."""
        n_rows, n_cols = len(self.rows), len(self.cols)
        if sel.kind != "cells":
            rows = list(sel.rows) if sel.kind in ("one", "row") else list(range(n_rows))
            cols = list(sel.cols) if sel.kind in ("one", "column") else list(range(n_cols))
            return [(rows, cols, float(amplitude))]
        amps = np.broadcast_to(np.asarray(amplitude, float), (len(sel.rows),))
        by_col: dict[tuple[int, float], list[int]] = {}
        by_row: dict[tuple[int, float], list[int]] = {}
        for r, c, a in zip(sel.rows, sel.cols, amps, strict=True):
            by_col.setdefault((c, float(a)), []).append(r)
            by_row.setdefault((r, float(a)), []).append(c)
        if len(by_col) <= len(by_row):
            return [(sorted(set(rs)), [c], a) for (c, a), rs in by_col.items()]
        return [([r], sorted(set(cs)), a) for (r, a), cs in by_row.items()]

    def held_levels(self, rows: list[int], cols: list[int], a: float, bias: str
                    ) -> list[tuple[int, float]]:
        """Every wired channel's level for a held-bias pulse of ``a`` on rows × cols (the
        crossbar's v/3 and ground tables; v/2 split ±A/2 with the other lines at 0 V)."""
        if bias == "ground":
            sel_r, sel_c, un_r, un_c = a, 0.0, 0.0, 0.0
        elif bias == "v/2":
            sel_r, sel_c, un_r, un_c = a / 2, -a / 2, 0.0, 0.0
        else:
            sel_r, sel_c, un_r, un_c = a, 0.0, a / 3, 2 * a / 3
        rset, cset = set(rows), set(cols)
        levels = [(int(ch), sel_r if r in rset else un_r) for r, ch in enumerate(self.rows)]
        levels += [(int(ch), sel_c if c in cset else un_c) for c, ch in enumerate(self.cols)]
        return levels

    def read(self, sel: Selection, vread: float, bias: str, out: np.ndarray, prefix) -> None:
        """Queue reads of ``sel`` (stored results) filling ``out[prefix + …]``."""
        n_rows = len(self.rows)
        if sel.kind == "column":
            self.read_lines("col", sel.cols[0], list(range(n_rows)), vread, bias,
                            _fill(out, (*prefix, slice(None)), self.rows, -1.0))
        elif sel.kind == "one":
            self.read_lines("row", sel.rows[0], [sel.cols[0]], vread, bias,
                            _fill(out, prefix, [self.cols[sel.cols[0]]], 1.0))
        elif sel.kind in ("row", "all"):
            rows = sel.rows if sel.kind == "row" else range(n_rows)
            for r in rows:
                at = (*prefix, slice(None)) if sel.kind == "row" else (*prefix, r, slice(None))
                self.read_lines("row", r, list(range(len(self.cols))), vread, bias,
                                _fill(out, at, self.cols, 1.0))
        else:
            by_row: dict[int, list[int]] = {}
            for k, r in enumerate(sel.rows):
                by_row.setdefault(r, []).append(k)
            for r, ks in by_row.items():
                cols = [sel.cols[k] for k in ks]
                self.read_lines("row", r, cols, vread, bias,
                                _fill(out, (*prefix, ks), self.cols[cols], 1.0))
        self.inst.ground_all_fast()

    def read_lines(self, drive: str, line: int, sensed: list[int], vread: float, bias: str,
                   fill) -> None:
        """Drive row (or column) ``line`` at +vread (−vread), sense the lines ``sensed`` of
        the other kind at 0 V, the rest per ``bias``; one stored read."""
        half = {"v/2": 0.5, "v/3": 1 / 3, "ground": 0.0, "float": None}[bias]
        sense = set(sensed)
        levels: list[tuple[int, float | None]] = []
        if drive == "row":
            un_c = None if half is None else (2 / 3 if bias == "v/3" else half) * vread
            levels += [(int(ch), vread if r == line else (None if half is None else half * vread))
                       for r, ch in enumerate(self.rows)]
            levels += [(int(ch), 0.0 if c in sense else un_c) for c, ch in enumerate(self.cols)]
            sense_ch = [int(self.cols[c]) for c in sensed]
        else:
            levels += [(int(ch), 0.0 if r in sense else None) for r, ch in enumerate(self.rows)]
            levels += [(int(ch), -vread if c == line else
                        (None if half is None else -half * vread))
                       for c, ch in enumerate(self.cols)]
            sense_ch = [int(self.rows[r]) for r in sensed]
        floating = [ch for ch, v in levels if v is None]
        if floating:
            self.inst.open_channels(floating)
        self.inst.config_channels([(ch, v) for ch, v in levels if v is not None], None)
        self.inst.read_slice_open_deferred(sense_ch, True)
        self.fills.append(fill)


def _one_way(levels: list[tuple[int, float]]) -> list[tuple[int, float, float]]:
    """``(channel, pulse level, 0 V)`` for ``pulse_slice_fast_open``. libarc2 refuses a cluster
    of 8 channels whose transitions go both ways, and counts a line held at 0 V as going down:
    in a cluster that goes up, a held line is nudged up by ``HOLD_NUDGE_V``."""
    up = {ch // 8 for ch, v in levels if v > 0}
    return [(ch, HOLD_NUDGE_V if v == 0 and ch // 8 in up else v, 0.0) for ch, v in levels]


def _ns(width: float) -> int:
    return max(int(round(width * 1e9)), 0)


def _value(out: np.ndarray) -> Callable[[], object]:
    return lambda: float(out) if out.ndim == 0 else out


def _fill(out: np.ndarray, at, channels, sign: float) -> Callable[[np.ndarray], None]:
    """Put ``sign × block[channels]`` into ``out[at]`` (a 64-value block from ``pick_one``)."""
    chans = np.asarray(channels, dtype=np.intp)

    def fill(block: np.ndarray) -> None:
        values = sign * block[chans]
        if out.ndim == 0:
            out[()] = values[0]
        else:
            out[at] = values if np.ndim(out[at]) else values[0]
    return fill


