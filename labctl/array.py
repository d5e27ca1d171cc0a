"""Memristor-array controllers: one interface over every backend (ArC TWO, ArC ONE, SMU + matrix).

Procedures and training speak only this interface. A backend (a driver in ``drivers/``) reports
its :class:`Capabilities` and implements one method, :meth:`ArrayController._execute`, which runs
a list of operations (:class:`Read`, :class:`Pulse`, :class:`Train`, :class:`Ramp`, :class:`Idle`)
in as few transactions as its hardware allows and returns one result per operation.

The base class does everything that must be the same on every backend:

- **checks** — every operation of a call or of a batch is checked against the controller's
  capabilities, the chip limits of the station and what the backend can run (its
  :meth:`ArrayController._refuse`) *before* the first one is sent, so nothing is applied after a
  failed check (:class:`~labctl.errors.LimitError`, one line naming the value);
  :meth:`ArrayController.validate` runs the same checks without sending anything, for procedures
  to check the operations they plan before they start;
- **compliance** — in hardware where the controller has it, otherwise a software fallback that
  warns once and stops ramps at the first read above the compliance current;
- **batching** — ``with ctrl.batch() as b:`` queues operations and executes them in one
  ``_execute`` call (one transaction where the hardware allows); each queued call returns a
  :class:`Pending` whose ``value`` is set when the batch ends;
- **the pulse log** — every pulse applied to every device (time, row, column, amplitude, width,
  read result) goes to :attr:`ArrayController.pulse_log`, whose sink (the run's array file)
  receives it as it happens.

Selections (:class:`Selection`) name the devices: one device, a row, a column, the whole array,
or a list of cells. Read results are currents in A, shaped like the selection (scalar, (cols,),
(rows,), (rows, cols), (n,)); ``conductance = current / vread``.

Bias schemes for the unselected lines: ``"float"`` (left open: sneak paths), ``"v/2"``
(half-bias), ``"v/3"`` (third-bias), ``"ground"``. Pulse-then-read and trains take one scheme for
the pulses (``bias``) and one for the reads after them (``read_bias``, default the same).
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from labctl.errors import LimitError
from labctl.safety import Limits

log = logging.getLogger(__name__)

BIAS_SCHEMES = ("float", "v/2", "v/3", "ground")
READ_KINDS = ("one", "row", "column", "all", "cells")
IDLE_MODES = ("ground", "float")


# ====================================================================== capabilities
@dataclass(frozen=True)
class Capabilities:
    """What an array controller can do; procedures adapt to it or refuse early."""

    shape: tuple[int, int]
    """(rows, columns) of the array the controller is wired to."""
    read_voltage: tuple[float, float]
    """Range of the read voltage, V."""
    pulse_voltage: tuple[float, float]
    """Range of pulse amplitudes, V (the voltage across the selected device)."""
    min_pulse_width: float
    """Shortest pulse, s."""
    max_pulse_width: float
    """Longest pulse, s."""
    time_grid: float
    """Pulse widths are multiples of this, s (rounded to nearest; the log records the real one)."""
    hardware_compliance: bool
    """True if the controller clamps the current in hardware."""
    bias_schemes: tuple[str, ...]
    """Bias schemes for unselected lines that the controller can apply."""
    read_modes: tuple[str, ...] = ("one", "row", "column", "all", "cells")
    """Selections a read accepts (always all of them; listed for users)."""
    whole_array_read: bool = False
    """True if the whole array is read in one instrument operation."""
    batched: bool = False
    """True if a batch of operations runs as one transaction."""
    max_batch: int = 1_000_000
    """Most operations one batch transaction can hold (larger batches are split)."""
    native_counts: bool = False
    """True if the controller runs :meth:`ArrayController.switch_counts` natively (n trials of
    reset → pulse → read per synapse as one instrument operation); otherwise they are expanded
    into one pulse train per synapse, a single transaction on a ``batched`` controller."""

    def describe(self) -> str:
        r, c = self.shape
        return (f"{r}x{c}; read {self.read_voltage[0]:g}..{self.read_voltage[1]:g} V; "
                f"pulse {self.pulse_voltage[0]:g}..{self.pulse_voltage[1]:g} V, "
                f"{self.min_pulse_width:g}..{self.max_pulse_width:g} s "
                f"(grid {self.time_grid:g} s); "
                f"compliance {'hardware' if self.hardware_compliance else 'software'}; "
                f"bias {', '.join(self.bias_schemes)}")


# ====================================================================== selections
@dataclass(frozen=True)
class Selection:
    """Devices of the array an operation acts on.

    Build with :meth:`one`, :meth:`row`, :meth:`column`, :meth:`all` or :meth:`cells`.
    """

    kind: str
    rows: tuple[int, ...] = ()
    cols: tuple[int, ...] = ()

    @classmethod
    def one(cls, row: int, col: int) -> Selection:
        return cls("one", (int(row),), (int(col),))

    @classmethod
    def row(cls, row: int) -> Selection:
        return cls("row", (int(row),), ())

    @classmethod
    def column(cls, col: int) -> Selection:
        return cls("column", (), (int(col),))

    @classmethod
    def all(cls) -> Selection:
        return cls("all")

    @classmethod
    def cells(cls, rows: Sequence[int], cols: Sequence[int]) -> Selection:
        rows_t = tuple(np.asarray(rows).reshape(-1).astype(np.int64).tolist())
        cols_t = tuple(np.asarray(cols).reshape(-1).astype(np.int64).tolist())
        if len(rows_t) != len(cols_t):
            raise ValueError(f"cells: {len(rows_t)} rows but {len(cols_t)} columns")
        return cls("cells", rows_t, cols_t)

    def check(self, shape: tuple[int, int]) -> str | None:
        """A problem line if the selection does not fit an array of ``shape``."""
        if self.kind not in READ_KINDS:
            return f"unknown selection kind {self.kind!r}"
        n_rows, n_cols = shape
        for name, values, n in (("row", self.rows, n_rows), ("column", self.cols, n_cols)):
            index = np.asarray(values, dtype=np.int64)
            bad = index[(index < 0) | (index >= n)]
            if bad.size:
                return f"{name} {bad[0]} outside the {n_rows}x{n_cols} array (0..{n - 1})"
        if self.kind == "cells" and not self.rows:
            return "empty cell selection"
        return None

    def cells_of(self, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Row and column index of every selected device, flat, in result order (C order)."""
        n_rows, n_cols = shape
        if self.kind == "one" or self.kind == "cells":
            return np.array(self.rows, dtype=np.intp), np.array(self.cols, dtype=np.intp)
        if self.kind == "row":
            return np.full(n_cols, self.rows[0], dtype=np.intp), np.arange(n_cols)
        if self.kind == "column":
            return np.arange(n_rows), np.full(n_rows, self.cols[0], dtype=np.intp)
        rr, cc = np.meshgrid(np.arange(n_rows), np.arange(n_cols), indexing="ij")
        return rr.reshape(-1), cc.reshape(-1)

    def result_shape(self, shape: tuple[int, int]) -> tuple[int, ...]:
        return {"one": (), "row": (shape[1],), "column": (shape[0],), "all": tuple(shape),
                "cells": (len(self.rows),)}[self.kind]

    def size(self, shape: tuple[int, int]) -> int:
        return math.prod(self.result_shape(shape))


# ====================================================================== operations
@dataclass
class Read:
    """Read the selection at ``vread`` (V) with the unselected lines under ``bias``."""

    sel: Selection
    vread: float
    bias: str = "v/2"


@dataclass
class Pulse:
    """One pulse of ``amplitude`` (V across each selected device) and ``width`` (s).

    ``amplitude`` is one value, or one per device for a ``cells`` selection. With ``vread``
    set, each device is read at ``vread`` after the pulse (pulse-then-read), the unselected
    lines under ``read_bias`` (None: ``bias``, the pulse's scheme).
    """

    sel: Selection
    amplitude: float | np.ndarray
    width: float
    bias: str = "v/2"
    vread: float | None = None
    read_bias: str | None = None


@dataclass
class Train:
    """``len(amplitudes)`` pulses on the selection (unselected lines under ``bias``), each
    followed by a read at ``vread`` if given (unselected lines under ``read_bias``; None:
    ``bias``)."""

    sel: Selection
    amplitudes: np.ndarray
    widths: np.ndarray
    bias: str = "v/2"
    vread: float | None = None
    read_bias: str | None = None


@dataclass
class Ramp:
    """A voltage ramp on one device: a pulse at each of ``voltages``, each followed by a read.

    With ``vread`` None the current is read at the ramp voltage itself (during the pulse).
    The ramp stops after the first step whose |current| exceeds ``stop_current`` (A).
    """

    row: int
    col: int
    voltages: np.ndarray
    width: float
    bias: str = "v/2"
    vread: float | None = None
    stop_current: float | None = None


@dataclass
class Counts:
    """``n`` trials of reset → pulse → read on each cell of ``sel`` (a ``cells`` selection):
    a pulse of ``reset`` V, a pulse of the cell's ``drives`` V, each ``width`` s and each read
    at ``vread``; a trial counts as switched if the current read after the pulse is below the
    one after the reset by the factor 1 + ``contrast`` (the resistance rose). Result: the
    switch counts, one per cell (int)."""

    sel: Selection
    drives: np.ndarray
    n: int
    reset: float
    width: float
    vread: float
    contrast: float = 0.2
    bias: str = "v/2"
    per_synapse: bool = False
    """Log one row per distinct synapse (its trials and switches summed) instead of one per
    cell of the selection (a cell may repeat: one per sample of a batch)."""


@dataclass
class Idle:
    """Put every line in ``mode``: ``"ground"`` or ``"float"``."""

    mode: str


@dataclass
class RampResult:
    """What a ramp did: the voltages applied (up to where it stopped) and the currents read."""

    voltages: np.ndarray
    currents: np.ndarray
    stopped: bool

    @property
    def steps(self) -> int:
        return len(self.voltages)


Operation = Read | Pulse | Train | Ramp | Idle | Counts


@dataclass
class Pending:
    """The result of an operation queued in a batch; ``value`` is set when the batch ends."""

    op: Operation
    value: object = None
    done: bool = False

    def result(self):
        if not self.done:
            raise RuntimeError("the batch this operation belongs to has not been executed yet")
        return self.value


# ====================================================================== pulse log
PULSE_LOG_COLUMNS = ("t_s", "op", "row", "col", "amplitude_v", "width_s", "vread_v", "current_a",
                     "pulses", "switched")
"""Columns of the pulse log: wall time (s since the epoch), operation number, device, pulse,
read voltage (NaN: no read), the current read after the pulse (NaN: no read), the device pulses
the row stands for (1 for a pulse; 2n for n reset → pulse trials of a :class:`Counts` row) and
the trials counted as switched (−1: not a counting row)."""


class PulseLog:
    """Every pulse applied to every device, in order, as columns of numpy arrays.

    ``sink``: called with each new block (a dict of equal-length arrays) as soon as the pulses
    are applied — the run's array file appends and flushes it, so nothing is lost on a kill.
    """

    def __init__(self, sink: Callable[[dict[str, np.ndarray]], None] | None = None,
                 first_op: int = 0, keep: bool = True):
        self.sink = sink
        self.keep = keep or sink is None  # False: the sink alone holds the rows (long runs)
        self._blocks: list[dict[str, np.ndarray]] = []
        self._count = 0
        self._ops = int(first_op)  # a resumed run numbers on after the logged operations

    def __len__(self) -> int:
        return self._count

    def next_op(self) -> int:
        self._ops += 1
        return self._ops - 1

    def append(self, op: int, rows, cols, amplitude, width, vread, current,
               t: float | None = None, pulses=1, switched=-1) -> None:
        rows = np.asarray(rows, dtype=np.int32).reshape(-1)
        n = rows.size
        if n == 0:
            return
        block = {
            "t_s": np.full(n, time.time() if t is None else t),
            "op": np.full(n, op, dtype=np.int64),
            "row": rows,
            "col": np.broadcast_to(np.asarray(cols, dtype=np.int32).reshape(-1), (n,)).copy(),
            "amplitude_v": np.broadcast_to(np.asarray(amplitude, float).reshape(-1), (n,)).copy(),
            "width_s": np.broadcast_to(np.asarray(width, float).reshape(-1), (n,)).copy(),
            "vread_v": np.full(n, np.nan if vread is None else float(vread)),
            "current_a": (np.full(n, np.nan) if current is None
                          else np.broadcast_to(np.asarray(current, float).reshape(-1),
                                               (n,)).copy()),
            "pulses": np.broadcast_to(np.asarray(pulses, np.int64).reshape(-1), (n,)).copy(),
            "switched": np.broadcast_to(np.asarray(switched, np.int64).reshape(-1), (n,)).copy(),
        }
        if self.keep:
            self._blocks.append(block)
        self._count += n
        if self.sink is not None:
            self.sink(block)

    def arrays(self) -> dict[str, np.ndarray]:
        """The whole log as one array per column."""
        if not self._blocks:
            return {name: np.empty(0) for name in PULSE_LOG_COLUMNS}
        if len(self._blocks) > 1:
            self._blocks = [{k: np.concatenate([b[k] for b in self._blocks])
                             for k in PULSE_LOG_COLUMNS}]
        return dict(self._blocks[0])

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(self.arrays(), columns=list(PULSE_LOG_COLUMNS))

    def counts(self, shape: tuple[int, int]) -> np.ndarray:
        """Number of pulses applied to each device, (rows, cols)."""
        a = self.arrays()
        out = np.zeros(shape, dtype=np.int64)
        np.add.at(out, (a["row"].astype(np.intp), a["col"].astype(np.intp)),
                  a["pulses"].astype(np.int64) if len(a["row"]) else 1)
        return out


# ====================================================================== the controller
@dataclass
class _BatchQueue:
    pending: list[Pending] = field(default_factory=list)


class ArrayController:
    """Base of every memristor-array controller driver (see the module docstring).

    Subclasses set ``RESOURCE_KIND`` (how the station reaches them: ``"visa"``, ``"serial"``,
    ``"arc2"`` or ``"composite"``), implement :attr:`capabilities`, :attr:`id` and
    :meth:`_execute`, and may implement :meth:`_set_compliance` (hardware compliance) and
    :meth:`_close`.
    """

    RESOURCE_KIND = "visa"
    SAFE_IDLE = "ground"

    def __init__(self) -> None:
        self.pulse_log = PulseLog()
        self.limits: Limits | None = None
        self._compliance: float | None = None
        self._warned_software_compliance = False
        self._batch: _BatchQueue | None = None

    # ---------------------------------------------------------------- backend interface
    @property
    def capabilities(self) -> Capabilities:
        raise NotImplementedError

    @property
    def id(self) -> str:
        """Identification of the controller (``*IDN?``-like, one line)."""
        raise NotImplementedError

    def _execute(self, ops: list[Operation]) -> list:
        """Run ``ops`` in order; one result per operation (see each operation's docstring):
        Read → currents shaped like the selection; Pulse → currents (if ``vread``) or None;
        Train → (n_pulses, *selection shape) currents or None; Ramp → :class:`RampResult`;
        Idle → None. Widths arrive already on the time grid."""
        raise NotImplementedError

    def _set_compliance(self, current: float | None) -> None:
        """Set the hardware current compliance (only called if ``hardware_compliance``)."""

    def _close(self) -> None:
        """Release the connection."""

    # ---------------------------------------------------------------- limits, compliance
    def apply_chip_limits(self, limits: Limits) -> None:
        """The station's chip limits; every operation is checked against them."""
        self.limits = limits

    @property
    def shape(self) -> tuple[int, int]:
        return self.capabilities.shape

    @property
    def compliance(self) -> float | None:
        """Current compliance in A (None: none set)."""
        return self._compliance

    def set_compliance(self, current: float | None) -> None:
        """Limit the device current to ``current`` A (None removes it).

        In hardware where the controller has it; otherwise a software fallback (warned once):
        ramps stop at the first read above it, but a pulse itself is not clamped.
        """
        if current is not None:
            current = float(current)
            if not (math.isfinite(current) and current > 0):
                raise LimitError(f"compliance = {current!r} A: must be a positive number")
            if self.limits is not None:
                problem = self.limits.check("current", current, "compliance")
                if problem:
                    raise LimitError(problem)
        caps = self.capabilities
        if caps.hardware_compliance:
            self._set_compliance(current)
        elif current is not None and not self._warned_software_compliance:
            self._warned_software_compliance = True
            message = (f"{type(self).__name__} has no hardware current compliance: software "
                       "fallback (ramps stop at the first read above the compliance; a pulse "
                       "itself is not clamped)")
            log.warning(message)
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        self._compliance = current

    def width_on_grid(self, width: float) -> float:
        """``width`` rounded to the controller's time grid."""
        grid = self.capabilities.time_grid
        return max(round(width / grid), 1) * grid if grid > 0 else float(width)

    def _check(self, op: Operation) -> Operation:
        """Check ``op`` against capabilities and chip limits; return it with widths on grid."""
        caps = self.capabilities
        name = type(op).__name__.lower()

        def fail(problem: str):
            raise LimitError(f"array {name}: {problem}")

        def check_voltage(value, what, rng):
            arr = np.asarray(value, dtype=float)
            if not np.all(np.isfinite(arr)):
                fail(f"{what} must be finite numbers")
            worst = float(np.max(np.abs(arr))) if arr.size else 0.0
            lo, hi = rng
            if arr.size and (float(arr.min()) < lo or float(arr.max()) > hi):
                fail(f"{what} = {worst:g} V outside the controller's range {lo:g}..{hi:g} V")
            if self.limits is not None:
                problem = self.limits.check("voltage", worst, what)
                if problem:
                    fail(problem)

        def check_width(value, what):
            arr = np.asarray(value, dtype=float)
            if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
                fail(f"{what} must be positive finite numbers (s)")
            short, long = float(arr.min()), float(arr.max())
            if short < caps.min_pulse_width * (1 - 1e-9) or \
                    long > caps.max_pulse_width * (1 + 1e-9):
                worst = short if short < caps.min_pulse_width else long
                fail(f"{what} = {worst:g} s outside the controller's range "
                     f"{caps.min_pulse_width:g}..{caps.max_pulse_width:g} s")
            if self.limits is not None:
                problem = self.limits.check("pulse_width", float(arr.max()), what)
                if problem:
                    fail(problem)
            grid = caps.time_grid
            if grid > 0:
                return np.maximum(np.round(arr / grid), 1) * grid
            return arr

        if isinstance(op, Idle):
            if op.mode not in IDLE_MODES:
                fail(f"idle mode {op.mode!r} unknown (known: {', '.join(IDLE_MODES)})")
            return op
        read_bias = getattr(op, "read_bias", None)
        for what, scheme in (("bias scheme", op.bias), ("read bias scheme", read_bias)):
            if scheme is not None and scheme not in caps.bias_schemes:
                fail(f"{what} {scheme!r} not available on {type(self).__name__} "
                     f"(available: {', '.join(caps.bias_schemes)})")
        if isinstance(op, Ramp):
            problem = Selection.one(op.row, op.col).check(caps.shape)
        else:
            problem = op.sel.check(caps.shape)
        if problem:
            fail(problem)
        vread = op.vread
        if vread is not None:
            check_voltage(vread, "read voltage", caps.read_voltage)
        if isinstance(op, Read):
            return op
        if isinstance(op, Pulse):
            amp = np.asarray(op.amplitude, dtype=float)
            if amp.ndim and amp.shape != (op.sel.size(caps.shape),):
                fail(f"{amp.size} amplitudes for {op.sel.size(caps.shape)} devices")
            if amp.ndim and op.sel.kind != "cells":
                fail("per-device amplitudes need a 'cells' selection")
            check_voltage(amp, "pulse amplitude", caps.pulse_voltage)
            width = float(check_width(op.width, "pulse width"))
            return Pulse(op.sel, op.amplitude if amp.ndim else float(amp), width, op.bias,
                         op.vread, _read_bias(op))
        if isinstance(op, Train):
            amps = np.asarray(op.amplitudes, dtype=float).reshape(-1)
            widths = np.broadcast_to(np.asarray(op.widths, dtype=float), amps.shape)
            if amps.size == 0:
                fail("a train needs at least one pulse")
            check_voltage(amps, "pulse amplitude", caps.pulse_voltage)
            return Train(op.sel, amps, check_width(widths, "pulse width"), op.bias, op.vread,
                         _read_bias(op))
        if isinstance(op, Counts):
            drives = np.asarray(op.drives, dtype=float).reshape(-1)
            if op.sel.kind != "cells" or drives.shape != (len(op.sel.rows),):
                fail("counts need a 'cells' selection and one drive per cell")
            if not (isinstance(op.n, int | np.integer) and op.n >= 1):
                fail(f"n = {op.n!r} trials: must be a positive integer")
            if not (math.isfinite(op.contrast) and op.contrast > 0):
                fail(f"contrast = {op.contrast!r}: must be a positive number")
            check_voltage(np.append(drives, op.reset), "pulse amplitude", caps.pulse_voltage)
            width = float(check_width(op.width, "pulse width"))
            return Counts(op.sel, drives, int(op.n), float(op.reset), width, float(op.vread),
                          float(op.contrast), op.bias, bool(op.per_synapse))
        if isinstance(op, Ramp):
            volts = np.asarray(op.voltages, dtype=float).reshape(-1)
            if volts.size == 0:
                fail("a ramp needs at least one step")
            check_voltage(volts, "ramp voltage", caps.pulse_voltage)
            width = float(check_width(op.width, "pulse width"))
            stop = op.stop_current
            if self._compliance is not None:
                stop = self._compliance if stop is None else min(stop, self._compliance)
            return Ramp(op.row, op.col, volts, width, op.bias, op.vread, stop)
        fail(f"unknown operation {op!r}")

    def _refuse(self, op: Operation) -> str | None:
        """A problem line if this backend cannot run ``op`` (already checked against the
        capabilities and the chip limits), else None. Backends extend it with what only they
        know; it must not talk to the instrument."""
        return None

    def validate(self, ops: Sequence[Operation]) -> list[Operation]:
        """Check every operation against the controller's capabilities, the chip limits and
        what this backend can run, without sending anything; return them as they would run
        (widths on the time grid, read bias resolved). The first problem raises
        :class:`~labctl.errors.LimitError` (one line naming the operation and the value).

        Procedures call it with the operations they plan before their first pulse, so a
        parameter set the backend cannot run is refused before anything reaches a device."""
        checked = [self._check(op) for op in ops]
        for op in checked:
            problem = self._refuse(op)
            if problem:
                raise LimitError(f"array {type(op).__name__.lower()}: {problem}")
        return checked

    # ---------------------------------------------------------------- running operations
    def submit(self, ops: Sequence[Operation]) -> list:
        """Check every operation, then run them (one ``_execute`` call per ``max_batch``),
        log the pulses and return one result per operation."""
        checked = self.validate(ops)  # all before the first byte
        results: list = []
        step = max(self.capabilities.max_batch, 1)
        for start in range(0, len(checked), step):
            chunk = checked[start:start + step]
            out = self._execute(chunk)
            if len(out) != len(chunk):
                raise RuntimeError(f"{type(self).__name__}._execute returned {len(out)} results "
                                   f"for {len(chunk)} operations")
            self._log(chunk, out)
            results.extend(out)
        return results

    def _run(self, op: Operation):
        if self._batch is not None:
            pending = Pending(self.validate([op])[0])
            self._batch.pending.append(pending)
            return pending
        return self.submit([op])[0]

    @contextmanager
    def batch(self) -> Iterator[ArrayController]:
        """Queue operations inside the block and run them together when it ends.

        Calls inside the block return :class:`Pending` objects; their ``value`` is set at the
        end. If the block raises, nothing queued is executed.
        """
        if self._batch is not None:
            raise RuntimeError("batches do not nest")
        self._batch = queue = _BatchQueue()
        try:
            yield self
        except BaseException:
            self._batch = None
            raise
        self._batch = None
        if queue.pending:
            results = self.submit([p.op for p in queue.pending])
            for pending, value in zip(queue.pending, results, strict=True):
                pending.value, pending.done = value, True

    def _log(self, ops: list[Operation], results: list) -> None:
        shape = self.capabilities.shape
        logbook = self.pulse_log
        for op, result in zip(ops, results, strict=True):
            if isinstance(op, Pulse):
                rows, cols = op.sel.cells_of(shape)
                logbook.append(logbook.next_op(), rows, cols, op.amplitude, op.width, op.vread,
                               None if result is None else np.asarray(result).reshape(-1))
            elif isinstance(op, Train):
                rows, cols = op.sel.cells_of(shape)
                n = rows.size
                k = op.amplitudes.size
                currents = (None if result is None
                            else np.asarray(result, dtype=float).reshape(k * n))
                logbook.append(logbook.next_op(), np.tile(rows, k), np.tile(cols, k),
                               np.repeat(op.amplitudes, n), np.repeat(op.widths, n), op.vread,
                               currents)
            elif isinstance(op, Counts):  # one row per cell: its 2n pulses and switches
                rows, cols = op.sel.cells_of(shape)
                drives, k = op.drives, np.asarray(result, dtype=np.int64).reshape(-1)
                pulses = np.full(rows.size, 2 * op.n, dtype=np.int64)
                if op.per_synapse:
                    flat, first, inverse = np.unique(rows * shape[1] + cols, return_index=True,
                                                     return_inverse=True)
                    rows, cols, drives = flat // shape[1], flat % shape[1], drives[first]
                    pulses = np.bincount(inverse, pulses, flat.size).astype(np.int64)
                    k = np.bincount(inverse, k, flat.size).astype(np.int64)
                logbook.append(logbook.next_op(), rows, cols, drives, op.width, op.vread, None,
                               pulses=pulses, switched=k)
            elif isinstance(op, Ramp):
                steps = result.steps
                logbook.append(logbook.next_op(), np.full(steps, op.row), np.full(steps, op.col),
                               result.voltages, op.width,
                               op.vread if op.vread is not None else np.nan, result.currents)

    # ---------------------------------------------------------------- public operations
    def read(self, sel: Selection, vread: float, bias: str = "v/2"):
        """Currents (A) of the selected devices at ``vread`` (V), shaped like the selection."""
        return self._run(Read(sel, float(vread), bias))

    def read_one(self, row: int, col: int, vread: float, bias: str = "v/2"):
        return self.read(Selection.one(row, col), vread, bias)

    def read_row(self, row: int, vread: float, bias: str = "v/2"):
        return self.read(Selection.row(row), vread, bias)

    def read_column(self, col: int, vread: float, bias: str = "v/2"):
        return self.read(Selection.column(col), vread, bias)

    def read_all(self, vread: float, bias: str = "v/2"):
        """The whole array's currents, (rows, cols)."""
        return self.read(Selection.all(), vread, bias)

    def pulse(self, sel: Selection, amplitude, width: float, bias: str = "v/2",
              vread: float | None = None, read_bias: str | None = None):
        """Pulse the selection with the unselected lines under ``bias``; with ``vread``, read
        each device after it (its currents) under ``read_bias`` (None: ``bias``)."""
        return self._run(Pulse(sel, amplitude, float(width), bias,
                               None if vread is None else float(vread), read_bias))

    def pulse_one(self, row: int, col: int, amplitude: float, width: float, bias: str = "v/2",
                  vread: float | None = None, read_bias: str | None = None):
        return self.pulse(Selection.one(row, col), amplitude, width, bias, vread, read_bias)

    def pulse_row(self, row: int, amplitude: float, width: float, bias: str = "v/2",
                  vread: float | None = None, read_bias: str | None = None):
        return self.pulse(Selection.row(row), amplitude, width, bias, vread, read_bias)

    def pulse_all(self, amplitude: float, width: float, bias: str = "v/2",
                  vread: float | None = None, read_bias: str | None = None):
        return self.pulse(Selection.all(), amplitude, width, bias, vread, read_bias)

    def pulse_read(self, sel: Selection, amplitude, width: float, vread: float,
                   bias: str = "v/2", read_bias: str | None = None):
        """Pulse then read: the currents at ``vread`` after the pulse."""
        return self.pulse(sel, amplitude, width, bias, vread, read_bias)

    def pulse_train(self, sel: Selection, amplitudes, widths, bias: str = "v/2",
                    vread: float | None = None, read_bias: str | None = None):
        """A train of pulses (``widths``: one per pulse or one for all) with the unselected
        lines under ``bias``; with ``vread``, the currents read after each pulse under
        ``read_bias`` (None: ``bias``), shape (n_pulses, *selection shape)."""
        amps = np.asarray(amplitudes, dtype=float).reshape(-1)
        return self._run(Train(sel, amps, np.broadcast_to(np.asarray(widths, float), amps.shape),
                               bias, None if vread is None else float(vread), read_bias))

    def ramp(self, row: int, col: int, vstart: float, vstop: float, vstep: float, width: float,
             bias: str = "v/2", vread: float | None = None,
             stop_current: float | None = None) -> RampResult:
        """Pulses from ``vstart`` to ``vstop`` (inclusive) by ``vstep`` on one device, each
        followed by a read (at ``vread``, or during the pulse if None); stops after the first
        read above ``stop_current`` or the compliance."""
        if not all(math.isfinite(x) for x in (vstart, vstop, vstep)) or vstep == 0:
            raise LimitError("array ramp: vstart, vstop and a non-zero vstep must be finite")
        n = int(math.floor(abs(vstop - vstart) / abs(vstep) + 1e-9)) + 1
        volts = vstart + math.copysign(abs(vstep), vstop - vstart) * np.arange(n)
        return self._run(Ramp(int(row), int(col), volts, float(width), bias,
                              None if vread is None else float(vread), stop_current))

    # ---------------------------------------------------------------- stochastic synapses
    def set_drives(self, drives) -> None:
        """Per-synapse drive amplitudes x_ij in V, shape (rows, cols): row i an output line,
        column j an input line (the Ellis et al. weights). Checked against the controller's
        pulse range and the chip limits now; used by :meth:`switch_counts`."""
        drives = np.asarray(drives, dtype=float)
        if drives.shape != self.shape:
            raise LimitError(f"array drives: shape {drives.shape} is not the array's "
                             f"{self.shape}")
        rr, cc = np.meshgrid(np.arange(self.shape[0]), np.arange(self.shape[1]), indexing="ij")
        self._check(Counts(Selection.cells(rr, cc), drives.reshape(-1), 1, 0.0,
                           self.capabilities.min_pulse_width, 0.0))
        self._drives = drives.copy()

    def switch_counts(self, inputs, n: int, *, reset: float, vread: float, width: float,
                      contrast: float = 0.2, bias: str = "v/2") -> np.ndarray:
        """Apply the binary input vector ``inputs`` (cols,) ``n`` times: every synapse (i, j)
        of an active input j runs n trials of reset (``reset`` V) → pulse at its drive x_ij
        (:meth:`set_drives`) → read (``vread`` V), pulses ``width`` s. Returns the switch counts
        k_ij, (rows, cols) int, 0 where the input is inactive; an output line's
        ``Y_i = k[i].sum() / n``. ONE transaction on a controller with ``native_counts`` or
        ``batched`` capability (one pulse train per synapse in one batch otherwise)."""
        drives = getattr(self, "_drives", None)
        if drives is None:
            raise LimitError("array switch_counts: set the drives first (set_drives)")
        active = np.flatnonzero(np.asarray(inputs).reshape(-1) != 0)
        if np.asarray(inputs).size != self.shape[1]:
            raise LimitError(f"array switch_counts: {np.asarray(inputs).size} inputs for "
                             f"{self.shape[1]} columns")
        counts = np.zeros(self.shape, dtype=np.int64)
        if active.size == 0:
            return counts
        rr, cc = np.meshgrid(np.arange(self.shape[0]), active, indexing="ij")
        rr, cc = rr.reshape(-1), cc.reshape(-1)
        counts[rr, cc] = self.cell_switch_counts(rr, cc, drives[rr, cc], n, reset=reset,
                                                 vread=vread, width=width, contrast=contrast,
                                                 bias=bias)
        return counts

    def cell_switch_counts(self, rows, cols, drives, n: int, *, reset: float, vread: float,
                           width: float, contrast: float = 0.2, bias: str = "v/2",
                           per_synapse: bool = False) -> np.ndarray:
        """:meth:`switch_counts` on exactly the cells (``rows``, ``cols``; a cell may repeat,
        each repeat its own n trials) with their own ``drives`` (V): the counts, one per cell,
        in one transaction as there. The pulse log gets one row per cell with its 2n pulses and
        its count (``per_synapse``: one row per distinct synapse, summed)."""
        op = Counts(Selection.cells(rows, cols), np.asarray(drives, dtype=float).reshape(-1),
                    n, reset, width, vread, contrast, bias, per_synapse)
        if self.capabilities.native_counts:
            return np.asarray(self.submit([op])[0], dtype=np.int64)
        return self._counts_by_trains(self._check(op))

    def _counts_by_trains(self, op: Counts) -> np.ndarray:
        """:class:`Counts` as one pulse train per synapse, all in one batch."""
        with self.batch():
            pending = [self.pulse_train(Selection.one(r, c), np.tile([op.reset, x], op.n),
                                        op.width, op.bias, op.vread)
                       for r, c, x in zip(op.sel.rows, op.sel.cols, op.drives, strict=True)]
        out = []
        for p in pending:
            currents = np.abs(np.asarray(p.result(), dtype=float).reshape(op.n, 2))
            out.append(int(np.sum(currents[:, 1] * (1.0 + op.contrast) < currents[:, 0])))
        return np.array(out)

    def ground_all(self):
        """Ground every line."""
        return self._run(Idle("ground"))

    def float_all(self):
        """Leave every line floating (disconnected)."""
        return self._run(Idle("float"))

    def shutdown(self) -> None:
        """Safe state: every line at 0 V (``SAFE_IDLE``), no pulse pending."""
        self._batch = None
        self.submit([Idle(self.SAFE_IDLE)])

    def close(self) -> None:
        self._close()


def _read_bias(op: Pulse | Train) -> str | None:
    """The bias scheme of the reads after ``op``'s pulses: None without reads, else
    ``read_bias`` or, when that is None, the pulses' own scheme."""
    if op.vread is None:
        return None
    return op.bias if op.read_bias is None else op.read_bias


def conductance(currents, vread: float) -> np.ndarray:
    """Conductance (S) from read currents (A) at ``vread`` (V)."""
    return np.asarray(currents, dtype=float) / float(vread)
