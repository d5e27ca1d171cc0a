"""Binary weights on differential pairs of RRAM crossbars (Majumdar et al., arXiv 2107.06064).

Each synapse is a pair of devices on one row: BL at column ``col0 + 2j`` and BLb at
``col0 + 2j + 1`` for output j, input i on row ``row0 + i`` (a 2T2R synapse; PHYSICS.md §1.2,
§5.2). The weight is W_b = sign(R_BL − R_BLb), *read from the array*; the hidden weight is
W_h = ln R_BL − ln R_BLb (ln R rises by ≈ m1 ≈ 7e-4 per weak-RESET pulse up to the knee t*, so
W_h counts pulses in units of the device's own slope). An update of n pulses (|n| ≤ 14) is n
weak-RESET pulses on BL (n > 0: W_h rises) or on BLb (n < 0): only RESET-direction pulses are
ever applied after the initial SET, as in the paper.

:class:`CrossbarPairs` places the layers of a network on the station's arrays (tiles of at most
an array's rows and half its columns, packed in shelves), and batches the instrument work:

- **measure**: one whole-array read per array (``read_all``), whatever the number of synapses;
- **update**: every pulse for every layer on an array in one ``submit`` — round k of the update
  pulses every device that needs at least k pulses (one :class:`~labctl.array.Pulse` on a cell
  selection), so an update is at most ``max_pulses`` operations per array, one transaction on a
  batching controller (ArC TWO).

Transactions per training step therefore grow with the number of arrays the network occupies
(two per array: a read and an update), not with the number of synapses on them.

**Offset trim** (``PairSettings.trim``, on by default): a SET returns every device to its own
R0·exp(c1), so right after the SET each pair holds a fixed, device-to-device offset
o = ln R_BL − ln R_BLb (standard deviation 0.108 ln R with the published D2D spread of c1 and R0,
PHYSICS.md §1.2) — the worth of ≈ 220 weak-RESET pulses at the median slope, as many as a device
receives in a whole digits run (≈ 260, partly cancelled by its partner's), so without a trim many
weights keep the random sign the SET gave them (eight seeds: gap to software 4.4 points without,
2.1 with the trim; README). :meth:`CrossbarPairs.calibrate` stores o from the first whole-array read
after the SET (the devices are then clean: telegraph state low, 1/f register empty) and the
weight becomes W_b = sign(ln R_BL − ln R_BLb − o): a per-pair digital offset trim of the
differential read, as a sense amplifier's offset is trimmed. No device operation is added; the
offsets are part of the checkpointed state (:meth:`CrossbarPairs.state`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labctl.array import ArrayController, Pulse, Selection
from labctl.errors import ConfigError
from labctl.training.layers import HardwareLayer

_G_FLOOR = 1e-15  # S: a read at or below zero (open device, noise) counts as this


@dataclass(frozen=True)
class PairSettings:
    """Read and pulse settings of the pairs (units: V, s)."""

    v_read: float = 0.2
    read_bias: str = "ground"
    reset_amplitude: float = -1.2
    reset_width: float = 100e-6
    set_amplitude: float = 1.5
    set_width: float = 100e-6
    pulse_bias: str = "v/2"
    max_pulses: int = 14
    trim: bool = True
    """Trim each pair's offset after the SET (module docstring)."""


@dataclass(frozen=True)
class Tile:
    """Inputs ``[in_start, in_stop)`` × outputs ``[out_start, out_stop)`` of a layer, placed on
    array ``role`` from row ``row0`` and column ``col0`` (two columns per output)."""

    role: str
    in_start: int
    in_stop: int
    out_start: int
    out_stop: int
    row0: int
    col0: int

    def cells(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Device rows, columns and pulse numbers (> 0) of ``counts`` (the layer's signed
        pulses) on this tile: BL for positive counts, BLb for negative."""
        part = counts[self.in_start:self.in_stop, self.out_start:self.out_stop]
        i, j = np.nonzero(part)
        n = part[i, j]
        return self.row0 + i, self.col0 + 2 * j + (n < 0), np.abs(n)


def place(shapes: list[tuple[int, int]], arrays: dict[str, tuple[int, int]]) -> list[list[Tile]]:
    """Tiles of every layer (n_in, n_out) on the arrays (role → (rows, cols)), shelf-packed in
    the order given; :class:`ConfigError` if the network does not fit."""
    if not arrays:
        raise ConfigError("training", "no array to place the network on")
    max_rows = max(r for r, _ in arrays.values())
    max_pairs = max(c // 2 for _, c in arrays.values())
    shelves: dict[str, list[list[int]]] = {role: [] for role in arrays}  # [row0, height, next]
    placed = []
    for n_in, n_out in shapes:
        tiles = []
        for i0 in range(0, n_in, max_rows):
            for j0 in range(0, n_out, max_pairs):
                h, w = min(max_rows, n_in - i0), 2 * min(max_pairs, n_out - j0)
                spot = _fit(shelves, arrays, h, w)
                if spot is None:
                    need = sum(2 * a * b for a, b in shapes)
                    have = ", ".join(f"{role} {r}x{c}" for role, (r, c) in arrays.items())
                    raise ConfigError("training", f"the network {_describe(shapes)} needs "
                                      f"{need} devices in pairs and does not fit the arrays "
                                      f"({have}); add an array or shrink the network")
                role, r0, c0 = spot
                tiles.append(Tile(role, i0, i0 + h, j0, j0 + w // 2, r0, c0))
        placed.append(tiles)
    return placed


def _fit(shelves, arrays, h: int, w: int):
    for role, (rows, cols) in arrays.items():
        for shelf in shelves[role]:
            if shelf[1] >= h and shelf[2] + w <= cols:
                shelf[2] += w
                return role, shelf[0], shelf[2] - w
        top = sum(s[1] for s in shelves[role])
        if top + h <= rows and w <= cols:
            shelves[role].append([top, h, w])
            return role, top, 0
    return None


def _describe(shapes) -> str:
    return "-".join(str(n) for n in [shapes[0][0], *(o for _, o in shapes)])


class CrossbarPairs:
    """The layers of a binary network on differential pairs of the station's arrays.

    ``arrays``: role → :class:`~labctl.array.ArrayController`; ``shapes``: (n_in, n_out) per
    layer. :attr:`layers` are the :class:`PairLayer` views a training loop uses.
    """

    def __init__(self, arrays: dict[str, ArrayController], shapes: list[tuple[int, int]],
                 settings: PairSettings | None = None):
        self.arrays = dict(arrays)
        self.settings = settings or PairSettings()
        self.shapes = [(int(a), int(b)) for a, b in shapes]
        self.tiles = place(self.shapes, {role: a.shape for role, a in self.arrays.items()})
        self.layers = [PairLayer(self, k) for k in range(len(self.shapes))]
        self._g: dict[str, np.ndarray] | None = None  # last whole-array conductances per role
        self.offsets: list[np.ndarray] | None = None  # per layer, ln R_BL − ln R_BLb after SET
        self.transactions = 0

    @classmethod
    def on_station(cls, station, shapes, roles=("array",), settings=None) -> CrossbarPairs:
        """Pairs on the arrays of ``station`` with the given roles."""
        return cls({role: station.instrument(role) for role in roles}, shapes, settings)

    @property
    def roles(self) -> list[str]:
        """The roles of the arrays the network occupies, in placement order."""
        used = {t.role for tiles in self.tiles for t in tiles}
        return [role for role in self.arrays if role in used]

    # ------------------------------------------------------------------ measurement
    def measure(self) -> None:
        """Read every occupied array once (whole-array read)."""
        s = self.settings
        self._g = {role: np.asarray(self.arrays[role].read_all(s.v_read, s.read_bias), float)
                   / s.v_read for role in self.roles}
        self.transactions += len(self._g)

    def invalidate(self) -> None:
        """Forget the last measurement (the next use reads the arrays again)."""
        self._g = None

    def conductances(self, layer: int) -> tuple[np.ndarray, np.ndarray]:
        """(G_BL, G_BLb) of ``layer`` as last measured (measuring if stale), S."""
        if self._g is None:
            self.measure()
        n_in, n_out = self.shapes[layer]
        gp, gn = np.empty((n_in, n_out)), np.empty((n_in, n_out))
        for t in self.tiles[layer]:
            g = self._g[t.role]
            block = g[t.row0:t.row0 + t.in_stop - t.in_start,
                      t.col0:t.col0 + 2 * (t.out_stop - t.out_start)]
            gp[t.in_start:t.in_stop, t.out_start:t.out_stop] = block[:, 0::2]
            gn[t.in_start:t.in_stop, t.out_start:t.out_stop] = block[:, 1::2]
        return gp, gn

    def raw_hidden(self, layer: int) -> np.ndarray:
        """ln R_BL − ln R_BLb = ln G_BLb − ln G_BL of ``layer``, as last measured."""
        gp, gn = self.conductances(layer)
        return np.log(np.maximum(gn, _G_FLOOR)) - np.log(np.maximum(gp, _G_FLOOR))

    def hidden(self, layer: int) -> np.ndarray:
        """W_h of ``layer``: :meth:`raw_hidden` less the pair's offset once calibrated."""
        raw = self.raw_hidden(layer)
        return raw if self.offsets is None else raw - self.offsets[layer]

    def calibrate(self) -> None:
        """Store every pair's offset from the current measurement (call right after the SET;
        module docstring)."""
        self.offsets = [self.raw_hidden(k) for k in range(len(self.shapes))]

    def state(self) -> dict[str, np.ndarray]:
        """The offsets as named arrays (empty before :meth:`calibrate`)."""
        return {} if self.offsets is None else {f"offset{k}": o.copy()
                                                for k, o in enumerate(self.offsets)}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        n = len(self.shapes)
        self.offsets = ([np.array(state[f"offset{k}"], float) for k in range(n)]
                        if f"offset{n - 1}" in state else None)

    # ------------------------------------------------------------------ device operations
    def counts(self, update: np.ndarray) -> np.ndarray:
        """Signed whole pulses of an update in pulses: round, then clip to ±max_pulses."""
        m = self.settings.max_pulses
        return np.clip(np.rint(np.asarray(update, float)), -m, m).astype(np.int64)

    def plan(self, counts: dict[int, np.ndarray]) -> dict[str, list[Pulse]]:
        """The pulses of signed whole-pulse ``counts`` per layer, per array role: round k pulses
        every device that needs at least k (cells in row-major order)."""
        s = self.settings
        cells: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
        for k, c in counts.items():
            c = np.asarray(c, dtype=np.int64)
            if c.shape != self.shapes[k]:
                raise ValueError(f"layer {k}: update of shape {c.shape}, expected "
                                 f"{self.shapes[k]}")
            for t in self.tiles[k]:
                cells.setdefault(t.role, []).append(t.cells(c))
        out = {}
        for role, parts in cells.items():
            rows, cols, n = (np.concatenate(x) for x in zip(*parts, strict=True))
            order = np.lexsort((cols, rows))
            rows, cols, n = rows[order], cols[order], n[order]
            out[role] = [Pulse(Selection.cells(rows[n >= k], cols[n >= k]), s.reset_amplitude,
                               s.reset_width, s.pulse_bias)
                         for k in range(1, int(n.max(initial=0)) + 1)]
        return out

    def set_plan(self) -> dict[str, list[Pulse]]:
        """One SET pulse on every device of every layer (the start of the paper's protocol)."""
        s = self.settings
        out: dict[str, list[Pulse]] = {}
        for k, tiles in enumerate(self.tiles):
            for t in tiles:
                both = np.ones((t.in_stop - t.in_start, t.out_stop - t.out_start), np.int64)
                for sign in (1, -1):
                    counts = np.zeros(self.shapes[k], np.int64)
                    counts[t.in_start:t.in_stop, t.out_start:t.out_stop] = sign * both
                    rows, cols, _ = t.cells(counts)
                    out.setdefault(t.role, []).append(
                        Pulse(Selection.cells(rows, cols), s.set_amplitude, s.set_width,
                              s.pulse_bias))
        return out

    def apply(self, plan: dict[str, list[Pulse]], skip: dict[str, int] | None = None
              ) -> dict[str, int]:
        """Run ``plan`` (one submit per array), leaving out the first ``skip[role]`` device
        pulses of each array (already applied: the pulse log says so). Returns the device pulses
        applied per role."""
        applied = {}
        for role, ops in plan.items():
            todo = remaining(ops, (skip or {}).get(role, 0), self.arrays[role].shape, role)
            if todo:
                self.arrays[role].submit(todo)
                self.transactions += 1
            applied[role] = sum(op.sel.size(self.arrays[role].shape) for op in todo)
        if any(applied.values()):
            self._g = None
        return applied

    def energy(self, plan: dict[str, list[Pulse]]) -> float:
        """Estimated energy of ``plan``, J: V²·G·width per device pulse, G as last measured."""
        total = 0.0
        for role, ops in plan.items():
            g = self._g[role] if self._g is not None else None
            for op in ops:
                rows, cols = op.sel.cells_of(self.arrays[role].shape)
                conductance = g[rows, cols].sum() if g is not None else 0.0
                total += float(op.amplitude) ** 2 * op.width * float(conductance)
        return total


def remaining(ops: list[Pulse], done: int, shape, role: str) -> list[Pulse]:
    """The operations of ``ops`` after the first ``done`` device pulses (whole operations)."""
    if done <= 0:
        return list(ops)
    ends = np.nonzero(np.cumsum([op.sel.size(shape) for op in ops]) == done)[0]
    if ends.size == 0:
        raise ConfigError(f"pulse log of {role}", f"{done} pulses logged after the last "
                          "checkpoint do not end on an operation of the pending update")
    return list(ops[int(ends[0]) + 1:])


def plan_rows(ops: list[Pulse], shape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Device rows, columns and amplitudes of ``ops`` in the order the pulse log records them."""
    if not ops:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    rows, cols, amps = [], [], []
    for op in ops:
        r, c = op.sel.cells_of(shape)
        rows.append(r)
        cols.append(c)
        amps.append(np.full(r.size, float(op.amplitude)))
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(amps)


class PairLayer(HardwareLayer):
    """One layer of :class:`CrossbarPairs`: W_b measured from the pairs, updates as pulses."""

    def __init__(self, pairs: CrossbarPairs, index: int):
        self.pairs, self.index = pairs, index
        self.n_in, self.n_out = pairs.shapes[index]
        self._ops = np.zeros((self.n_in, self.n_out), dtype=np.int64)

    def weights(self) -> np.ndarray:
        """sign(R_BL − R_BLb) as read (ties: +1)."""
        return np.where(self.hidden() >= 0, 1.0, -1.0)

    def hidden(self) -> np.ndarray:
        return self.pairs.hidden(self.index)

    def apply_update(self, update: np.ndarray) -> int:
        """``update`` in pulses: rounded, clipped to ±max_pulses, applied to BL (> 0) or BLb."""
        counts = self.pairs.counts(update)
        applied = self.pairs.apply(self.pairs.plan({self.index: counts}))
        self._ops += np.abs(counts)
        return sum(applied.values())

    def record(self, counts: np.ndarray) -> None:
        """Count pulses applied to this layer through :meth:`CrossbarPairs.apply`."""
        self._ops += np.abs(np.asarray(counts, np.int64))

    def operation_counts(self) -> np.ndarray:
        return self._ops.copy()
