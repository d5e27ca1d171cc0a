"""VDSP weights held as the conductances of memristor crossbars, updated by pulses.

An (inputs × outputs) weight matrix is tiled over crossbars reached through the
:class:`~labctl.array.ArrayController` interface (a 64 × 100 matrix on eight 32 × 32 ArC TWO
crossbars: inputs on rows, outputs on columns). Weight w = (G − g_lo)/(g_hi − g_lo) clipped to
[0, 1], with the conductance window g_lo/g_hi measured on the chip (:meth:`CrossbarWeights.
calibrate`: medians after fully RESET and fully SET, or each device's own: see below).

The VDSP rule (:mod:`labctl.vdsp`) becomes pulse counts through the chip's measured programming
curves (median weight after k SET pulses from fully RESET, and after k RESET pulses from fully
SET: :meth:`CrossbarWeights.calibrate`): a device at weight w whose rule target is w' gets
n = ⌊(k(w') − k(w))/γ⌉ pulses of the right polarity, ⌊·⌉ being stochastic rounding (unbiased:
E[n] = x) from the network's seeded generator, capped at ``max_pulses``. Two per-device
compensations, both measured on the chip (a device engineer's calibration tables):

- *window*: each device's weight is read against its own conductance window (its G after a full
  RESET and after a full SET, measured once in :meth:`CrossbarWeights.calibrate`), so a device
  with a narrower or shifted window still spans [0, 1];
- *step factor* γ (one for SET, one for RESET, per device): after each update, the pulse
  equivalents the device really moved along the median curve, divided by the pulses it got,
  smoothed over ``gain_memory`` updates (one read carries the ±1 % read noise and one pulse the
  cycle-to-cycle spread), bounded to ``GAIN_RANGE``.

Cycle-to-cycle variability, the nonlinear, saturating response and unformable devices still act
on the result, since the network reads the conductances back. All pulses of one update on one
crossbar go out as rounds of one ``cells`` pulse each (per-device polarity), every pulse logged;
the updated column is then read back (one column read per crossbar, unselected lines grounded),
so the network always computes with the conductances the chip really has. With
``compensate=False, per_device_window=False`` this is the open-loop mapping of the first version.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from labctl.array import ArrayController, PulseLog, Selection, conductance
from labctl.vdsp import vdsp_update


class CrossbarWeights:
    """A weight store on crossbar tiles (row-major: tile ``a·n_col_tiles + b`` holds inputs
    ``a·rows ...`` and outputs ``b·cols ...``)."""

    GAIN_RANGE = (0.2, 5.0)  # per-device step factor bounds (stuck or runaway devices)

    def __init__(self, tiles: Sequence[ArrayController], n_in: int, n_out: int,
                 rng: np.random.Generator, v_set: float = 1.2, v_reset: float = -1.2,
                 width: float = 1e-6, v_read: float = 0.2, max_pulses: int = 8,
                 calibration_pulses: int = 40, read_bias: str = "ground",
                 pulse_bias: str = "v/2", compensate: bool = True,
                 per_device_window: bool = True, gain_memory: float = 4.0):
        self.tiles = list(tiles)
        self.rows, self.cols = self.tiles[0].shape
        self.n_in, self.n_out = n_in, n_out
        self.grid = (math.ceil(n_in / self.rows), math.ceil(n_out / self.cols))
        needed = self.grid[0] * self.grid[1]
        if len(self.tiles) < needed:
            raise ValueError(f"a {n_in}x{n_out} weight matrix needs {needed} crossbars of "
                             f"{self.rows}x{self.cols}, got {len(self.tiles)}")
        if any(t.shape != (self.rows, self.cols) for t in self.tiles):
            raise ValueError("every crossbar tile must have the same shape")
        self.rng = rng
        self.v_set, self.v_reset, self.width, self.v_read = v_set, v_reset, width, v_read
        self.read_bias, self.pulse_bias = read_bias, pulse_bias
        self.max_pulses, self.calibration_pulses = int(max_pulses), int(calibration_pulses)
        self.g = np.zeros((n_in, n_out))
        self.g_lo = self.g_hi = math.nan
        self.delta_set = self.delta_reset = math.nan
        self.updates = 0
        self.pulses = 0
        self.compensate, self.gain_memory = compensate, float(gain_memory)
        self.per_device_window = per_device_window
        self.lo, self.span = math.nan, math.nan
        self.gain_set = np.ones((n_in, n_out))
        self.gain_reset = np.ones((n_in, n_out))
        self._sink = None
        self._pending: list[dict[str, np.ndarray]] = []

    # ------------------------------------------------------------------ layout
    def _tile(self, a: int, b: int) -> ArrayController:
        return self.tiles[a * self.grid[1] + b]

    def _blocks(self):
        """(tile, input slice, output slice, tile rows used, tile cols used) of every tile."""
        for a in range(self.grid[0]):
            for b in range(self.grid[1]):
                ins = slice(a * self.rows, min((a + 1) * self.rows, self.n_in))
                outs = slice(b * self.cols, min((b + 1) * self.cols, self.n_out))
                yield self._tile(a, b), ins, outs, ins.stop - ins.start, outs.stop - outs.start

    def attach_pulse_log(self, sink) -> None:
        """Send every tile's pulses to ``sink`` in weight coordinates (row = input, col =
        output), one block per weight update (and per calibration/initialisation step)."""
        self._sink = sink
        for tile, ins, outs, _, _ in self._blocks():
            def shifted(block, r0=ins.start, c0=outs.start):
                self._pending.append({**block, "row": block["row"] + r0,
                                      "col": block["col"] + c0})
            tile.pulse_log = PulseLog(sink=shifted)

    def _flush_log(self) -> None:
        if self._sink is not None and self._pending:
            self._sink({k: np.concatenate([b[k] for b in self._pending])
                        for k in self._pending[0]})
        self._pending = []

    # ------------------------------------------------------------------ reading
    def read_all(self) -> np.ndarray:
        """Every weight's conductance (S), (inputs, outputs), one array read per tile."""
        for tile, ins, outs, nr, nc in self._blocks():
            self.g[ins, outs] = conductance(tile.read_all(self.v_read, self.read_bias),
                                                  self.v_read)[:nr, :nc]
        return self.g

    def _read_column(self, j: int) -> None:
        b, c = divmod(j, self.cols)
        for a in range(self.grid[0]):
            ins = slice(a * self.rows, min((a + 1) * self.rows, self.n_in))
            currents = self._tile(a, b).read_column(c, self.v_read, self.read_bias)
            self.g[ins, j] = conductance(currents, self.v_read)[:ins.stop - ins.start]

    def matrix(self) -> np.ndarray:
        return np.clip((self.g - self.lo) / self.span, 0.0, 1.0)

    # ------------------------------------------------------------------ programming
    def _pulse_all(self, amplitude: float, count: int) -> None:
        for tile, *_ in self._blocks():
            tile.pulse_train(Selection.all(), np.full(count, amplitude), self.width,
                             self.pulse_bias)

    def _median_trace(self, tile: ArrayController, amplitude: float) -> np.ndarray:
        """Median conductance of ``tile`` after each of ``calibration_pulses`` pulses of
        ``amplitude`` on the whole tile (index 0: before the first)."""
        trace = [np.median(conductance(tile.read_all(self.v_read, self.read_bias), self.v_read))]
        for _ in range(self.calibration_pulses):
            tile.pulse(Selection.all(), amplitude, self.width, self.pulse_bias)
            trace.append(np.median(conductance(tile.read_all(self.v_read, self.read_bias),
                                               self.v_read)))
        return np.asarray(trace)

    def calibrate(self) -> dict[str, float]:
        """Measure the programming curves on the first tile: the median conductance after each
        SET pulse from fully RESET, and after each RESET pulse from fully SET. Their ends are the
        window (g_lo, g_hi); as weights they map a weight to the pulse count that reaches it
        (:meth:`pulses_between`). Returns the window and the first steps δ."""
        tile = self.tiles[0]
        self._pulse_all(self.v_reset, self.calibration_pulses)
        g_lo = self.read_all().copy()
        set_curve = self._median_trace(tile, self.v_set)
        self._pulse_all(self.v_set, self.calibration_pulses)
        g_hi = self.read_all().copy()
        reset_curve = self._median_trace(tile, self.v_reset)
        self.g_lo, self.g_hi = float(set_curve[0]), float(set_curve[-1])
        span = self.g_hi - self.g_lo
        if not span > 0:
            raise RuntimeError(f"crossbar window not open: g_lo {self.g_lo:g} S, g_hi "
                               f"{self.g_hi:g} S")
        # monotone programming curves in weight units (medians of ~1000 devices: tiny ripples)
        self.w_set = np.maximum.accumulate((set_curve - self.g_lo) / span)
        self.w_reset = np.minimum.accumulate((reset_curve - self.g_lo) / span)
        self._flush_log()
        if self.per_device_window:
            # each device's own window; devices whose window is under a tenth of the median
            # (unformed or stuck) keep the median one
            own = g_hi - g_lo > 0.1 * span
            self.lo = np.where(own, g_lo, self.g_lo)
            self.span = np.where(own, g_hi - g_lo, span)
        else:
            self.lo, self.span = self.g_lo, span
        self.delta_set = float(self.w_set[1] - self.w_set[0])
        self.delta_reset = float(self.w_reset[0] - self.w_reset[1])
        return {"g_lo_s": self.g_lo, "g_hi_s": self.g_hi, "delta_set": self.delta_set,
                "delta_reset": self.delta_reset}

    def pulses_along(self, w_from: np.ndarray, w_to: np.ndarray,
                     potentiate: np.ndarray) -> np.ndarray:
        """Signed pulse counts (fractional) from ``w_from`` to ``w_to`` along the measured SET
        curve (where ``potentiate``) or RESET curve: negative if the weight went the other way."""
        k = np.arange(self.w_set.size, dtype=float)
        up = np.interp(w_to, self.w_set, k) - np.interp(w_from, self.w_set, k)
        down = np.interp(-w_to, -self.w_reset, k) - np.interp(-w_from, -self.w_reset, k)
        return np.where(potentiate, up, down)

    def pulses_between(self, w_from: np.ndarray, w_to: np.ndarray) -> np.ndarray:
        """Pulse counts (fractional) that move weights from ``w_from`` to ``w_to`` along the
        measured SET curve (w_to > w_from) or RESET curve (w_to < w_from)."""
        return np.maximum(self.pulses_along(w_from, w_to, w_to >= w_from), 0.0)

    def initialise(self) -> None:
        """Spread the weights over [0, 1] (the ideal network's random start): full RESET, then
        per device the SET pulse count that takes the median device to a uniform random
        target; the devices' own spread adds to it. Reads all weights."""
        self._pulse_all(self.v_reset, self.calibration_pulses)
        target = self.rng.uniform(0.0, 1.0, (self.n_in, self.n_out))
        counts = self._stochastic_round(self.pulses_between(np.zeros_like(target), target),
                                        cap=self.calibration_pulses).astype(int)
        for tile, ins, outs, nr, nc in self._blocks():
            block = np.zeros((self.rows, self.cols), dtype=int)
            block[:nr, :nc] = counts[ins, outs]
            self._rounds(tile, block, np.full((self.rows, self.cols), self.v_set))
        self._flush_log()
        self.read_all()

    def _rounds(self, tile: ArrayController, counts: np.ndarray, amplitudes: np.ndarray) -> None:
        """Round k pulses every device of ``counts`` (a block in tile coordinates) that needs
        more than k pulses, at its own amplitude."""
        for k in range(int(counts.max(initial=0))):
            rr, cc = np.nonzero(counts > k)
            tile.pulse(Selection.cells(rr, cc), amplitudes[rr, cc], self.width, self.pulse_bias)
            self.pulses += rr.size

    def _stochastic_round(self, x: np.ndarray, cap: int | None = None) -> np.ndarray:
        base = np.floor(x)
        return np.minimum(base + (self.rng.random(x.shape) < x - base),
                          self.max_pulses if cap is None else cap)

    def _pulse_column(self, j: int, w: np.ndarray, target: np.ndarray) -> tuple:
        """Move column ``j`` from ``w`` towards ``target`` by pulses: the pulse count along the
        measured curve, divided by each device's learnt step factor, stochastically rounded;
        then read the column back. Returns (counts, potentiate)."""
        potentiate = target >= w
        gain = np.where(potentiate, self.gain_set[:, j], self.gain_reset[:, j])
        counts = self._stochastic_round(self.pulses_between(w, target) / gain).astype(int)
        amps = np.where(potentiate, self.v_set, self.v_reset)
        b, c = divmod(j, self.cols)
        for a in range(self.grid[0]):
            ins = slice(a * self.rows, min((a + 1) * self.rows, self.n_in))
            block_n = np.zeros((self.rows, self.cols), dtype=int)
            block_amp = np.zeros((self.rows, self.cols))
            block_n[:ins.stop - ins.start, c] = counts[ins]
            block_amp[:ins.stop - ins.start, c] = amps[ins]
            self._rounds(self._tile(a, b), block_n, block_amp)
        self._read_column(j)
        return counts, potentiate

    def _learn_gain(self, j: int, w: np.ndarray, counts: np.ndarray,
                    potentiate: np.ndarray) -> None:
        """Per-device compensation: each pulsed device's step factor (pulse-equivalents of the
        median curve moved per pulse applied) follows its measured response, smoothed over
        updates (``gain_memory``) since one read carries the ±1 % read noise."""
        moved = self.pulses_along(w, self.matrix()[:, j], potentiate)
        hit = counts > 0
        ratio = np.clip(moved[hit] / counts[hit], *self.GAIN_RANGE)
        for gains, sel in ((self.gain_set, potentiate[hit]), (self.gain_reset, ~potentiate[hit])):
            rows = np.flatnonzero(hit)[sel]
            gains[rows, j] += (ratio[sel] - gains[rows, j]) / self.gain_memory

    def update_column(self, j: int, v_pre: np.ndarray, lr: float) -> None:
        """Apply the VDSP update of output ``j`` as SET/RESET pulses, then read it back."""
        w = self.matrix()[:, j].copy()
        target = np.clip(w + vdsp_update(w, v_pre, lr), 0.0, 1.0)
        counts, potentiate = self._pulse_column(j, w, target)
        if self.compensate:
            self._learn_gain(j, w, counts, potentiate)
        self._flush_log()
        self.updates += 1
