"""Write-verify: program memristor conductances to a target map within a tolerance.

Each iteration gives every device that is out of tolerance one pulse, all pulses of the
iteration in one controller batch, and reads them: with a whole-array read, one read of every
selected device after the pulses; without one (SMU + matrix), each pulsed device is read right
after its pulse within the same operation (pulse-then-read, under ``read_bias``), and every
selected device is read again only when none is left to pulse, to catch the ones that their
neighbours' pulses disturbed:

- **polarity from the target**: SET (positive) if the conductance is below the target, RESET
  (negative) if above;
- **adaptive amplitude and width**: a device starts at ``v_set_start`` / ``v_reset_start`` and
  ``width_start``; the widths are fitted to the controller: ``width_start`` is raised to its
  shortest pulse (``capabilities.min_pulse_width``, e.g. 10 µs on a B2912A, 2.05 ms on a 2450
  behind a matrix), ``width_max`` to at least that and at most its longest pulse; a pulse
  that moved the conductance by less than ``progress_min`` (relative)
  raises the amplitude by ``v_step`` up to ``v_set_max`` / ``v_reset_max``, then doubles the
  width up to ``width_max``; an overshoot (the error changed sign) lowers the amplitude by
  ``v_step`` and halves the width (not below the starting values' floor ``width_min``);
- **stuck devices**: ``stuck_after`` consecutive pulses at full amplitude and width that change
  the conductance by less than ``stuck_change`` (relative) mark the device stuck — or *out of
  reach* if it did switch during the run (by more than ``stuck_change`` from its first read):
  the target lies beyond what the largest amplitude and width reach on it; either is reported
  and skipped. A device whose pulses overshoot ``stuck_after`` times in a row at the smallest
  drive (starting amplitude, shortest width) is *out of reach* too: the smallest pulse of each
  polarity jumps over the tolerance window (a controller whose shortest pulse saturates the
  device, below);
- **a pulse budget**: at most ``max_pulses`` pulses per device; the run always ends — every
  iteration spends one pulse of each device it pulses, and a verify read with no device left to
  pulse ends the run unless it re-activates a device that has budget left.

Pulses long enough to saturate (a Keithley 2450's list-sweep points, ≥ 2.05 ms, on the
simulated VirtualArC device) carry a device to the level r(V) of their amplitude whatever the
width: the amplitude steps then walk the level onto the target where a level exists within
tolerance; conductances between the SET and RESET levels are out of their reach and reported
so after a few pulses. A B2911A/B2912A's 10 µs pulses move a device part of the way and reach
them (see README).

A device already programmed can be pushed out of tolerance by its neighbours' pulses
(half-select disturb); the next verify read sees it and it is programmed again, within its
budget. The results file has one row per device (target, final conductance, error, pulses,
status); the array file holds the maps (target, final, status, pulses) and the pulse log.

The random target map (``target = random``) is uniform in conductance between ``g_min`` and
``g_max``, drawn from ``target_seed``; a file target is a ``.npy`` or ``.csv`` array of target
conductances (S) of the array's shape (NaN: leave the device alone).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from pymeasure.experiment import FloatParameter, IntegerParameter, Parameter

from labctl.array import Selection
from labctl.errors import ConfigError
from procedures.array_base import ArrayProcedure

log = logging.getLogger(__name__)

STATUSES = ("converged", "stuck", "budget", "skipped", "out of reach")
_CONVERGED, _STUCK, _BUDGET, _SKIPPED, _OUT_OF_REACH = range(5)
_ACTIVE = -1


def load_target(text: str, shape: tuple[int, int], g_min: float, g_max: float,
                seed: int) -> np.ndarray:
    """The target conductance map (S) named by ``text``: ``random``, ``uniform:G``, or a file."""
    text = str(text).strip()
    if text == "random":
        rng = np.random.default_rng(seed)
        return rng.uniform(g_min, g_max, size=shape)
    if text.startswith("uniform:"):
        try:
            value = float(text.split(":", 1)[1])
        except ValueError:
            raise ConfigError("target", f"{text!r}: expected uniform:<conductance in S>") from None
        return np.full(shape, value)
    path = Path(text)
    if not path.is_file():
        raise ConfigError("target", f"{text!r} is not 'random', 'uniform:G' or an existing "
                                    ".npy/.csv file")
    try:
        if path.suffix.lower() == ".npy":
            values = np.load(path, allow_pickle=False)
        elif path.suffix.lower() == ".csv":
            values = pd.read_csv(path, header=None).to_numpy(dtype=float)
        else:
            raise ConfigError(str(path), "target file must be .npy or .csv")
    except (OSError, ValueError) as exc:
        raise ConfigError(str(path), f"cannot read target map ({exc})".split("\n")[0]) from None
    values = np.asarray(values, dtype=float)
    if values.shape != tuple(shape):
        raise ConfigError(str(path), f"target map has shape {values.shape}, the array is "
                                     f"{tuple(shape)}")
    if np.any(values[np.isfinite(values)] <= 0):
        raise ConfigError(str(path), "target conductances must be positive (S)")
    return values


class WriteVerify(ArrayProcedure):
    """Program devices to a target conductance map within a tolerance (adaptive write-verify)."""

    NAME = "write-verify"
    DATA_COLUMNS = ["Row", "Column", "Target (S)", "Conductance (S)", "Error (%)", "Pulses",
                    "Status"]
    X_AXIS = "Target (S)"
    Y_AXIS = "Conductance (S)"
    DISPLAYS = ("target", "tolerance", "max_pulses", "pulse_bias")
    LIMITED = {"v_read": "voltage", "v_set_start": "voltage", "v_set_max": "voltage",
               "v_reset_start": "voltage", "v_reset_max": "voltage",
               "width_start": "pulse_width", "width_max": "pulse_width"}
    PULSES = ((("v_set_start", "v_set_max", "v_reset_start", "v_reset_max"),
               ("width_start", "width_max")),)

    target = Parameter("Target map (random | uniform:G | file)", default="random")
    target_seed = IntegerParameter("Target seed", default=1, minimum=0, maximum=2**31 - 1)
    g_min = FloatParameter("Random target minimum", units="S", default=1.15e-4, minimum=1e-9,
                           maximum=1)
    g_max = FloatParameter("Random target maximum", units="S", default=1.9e-4, minimum=1e-9,
                           maximum=1)
    tolerance = FloatParameter("Tolerance", units="%", default=5.0, minimum=0.1, maximum=100)
    max_pulses = IntegerParameter("Pulse budget per device", default=100, minimum=1,
                                  maximum=100_000)
    v_set_start = FloatParameter("SET start amplitude", units="V", default=1.0, minimum=0,
                                 maximum=20)
    v_set_max = FloatParameter("SET maximum amplitude", units="V", default=1.6, minimum=0,
                               maximum=20)
    v_reset_start = FloatParameter("RESET start amplitude", units="V", default=-1.0, minimum=-20,
                                   maximum=0)
    v_reset_max = FloatParameter("RESET maximum amplitude", units="V", default=-1.6, minimum=-20,
                                 maximum=0)
    v_step = FloatParameter("Amplitude step", units="V", default=0.1, minimum=0.001, maximum=5)
    width_start = FloatParameter("Start pulse width", units="s", default=10e-6, minimum=1e-9,
                                 maximum=1)
    width_max = FloatParameter("Maximum pulse width", units="s", default=1e-3, minimum=1e-9,
                               maximum=1)
    progress_min = FloatParameter("Progress that keeps the amplitude", units="%", default=1.0,
                                  minimum=0, maximum=100)
    stuck_after = IntegerParameter("Pulses without change before 'stuck'", default=5, minimum=1,
                                   maximum=1000)
    stuck_change = FloatParameter("Change below which a pulse did nothing", units="%",
                                  default=2.0, minimum=0, maximum=100)

    # after the run
    device_status: np.ndarray | None = None  # per selected device, index into STATUSES
    final: np.ndarray | None = None
    goal: np.ndarray | None = None

    def preflight(self, limits) -> list[str]:
        problems = super().preflight(limits)
        if self.g_min >= self.g_max:
            problems.append(f"g_min = {self.g_min:g} S must be below g_max = {self.g_max:g} S")
        if abs(self.v_set_max) < abs(self.v_set_start):
            problems.append("v_set_max must be at least v_set_start")
        if abs(self.v_reset_max) < abs(self.v_reset_start):
            problems.append("v_reset_max must be at least |v_reset_start|")
        if self.width_max < self.width_start:
            problems.append("width_max must be at least width_start")
        return problems

    def planned_width(self, array, name: str) -> float:
        """``width_start`` raised to the controller's shortest pulse; ``width_max`` at least
        that, at most the controller's longest pulse (both on its time grid)."""
        caps = array.capabilities
        start = array.width_on_grid(max(self.width_start, caps.min_pulse_width))
        if name == "width_start":
            return start
        return array.width_on_grid(min(max(self.width_max, start), caps.max_pulse_width))

    def reads_after_pulses(self, array) -> bool:
        """Without a whole-array read each device is read right after its pulse."""
        return not array.capabilities.whole_array_read

    def check_array(self, array) -> list[str]:
        problems = super().check_array(array)
        try:
            load_target(self.target, array.shape, self.g_min, self.g_max, self.target_seed)
        except ConfigError as exc:
            problems.append(str(exc))
        return problems

    # ------------------------------------------------------------------ the loop
    def execute(self) -> None:
        array = self.array
        rows, cols = self.devices()
        bias, read_bias = self.pulse_bias_scheme(), self.read_bias_scheme()
        target_map = load_target(self.target, self.shape, self.g_min, self.g_max,
                                 self.target_seed)
        goal = target_map[rows, cols]
        n = rows.size
        tol = self.tolerance / 100.0
        sel = self.selection()
        grid_width_min = self.planned_width(array, "width_start")

        status = np.where(np.isfinite(goal), _ACTIVE, _SKIPPED)
        pulses = np.zeros(n, dtype=np.int64)
        amp_set = np.full(n, float(self.v_set_start))
        amp_reset = np.full(n, float(self.v_reset_start))
        width = np.full(n, grid_width_min)
        last_dir = np.zeros(n, dtype=np.int8)  # +1 SET, -1 RESET, 0 none yet
        last_g = np.full(n, np.nan)
        idle = np.zeros(n, dtype=np.int64)  # consecutive do-nothing pulses at full drive
        flips = np.zeros(n, dtype=np.int64)  # consecutive overshoots at the smallest drive

        # With a whole-array read every iteration is pulses then one read of everything; without
        # one, each pulsed device is read right after its pulse (pulse-then-read, one operation)
        # and everything is read again only when no device is left to pulse, to catch the
        # devices their neighbours' pulses disturbed.
        whole = array.capabilities.whole_array_read
        vread = None if whole else self.v_read
        g = self._read(sel, read_bias)
        g_first = g.copy()  # g is updated in place
        verified = True  # g is a read of every device since the last pulse
        iteration = 0
        while True:  # ends: every pulse uses a device's budget, and no budget is endless
            err = (g - goal) / goal
            ok = np.abs(err) <= tol
            pending = status != _SKIPPED
            in_play = pending & (status != _STUCK) & (status != _OUT_OF_REACH)
            # a device is settled when in tolerance; one out of tolerance is re-activated
            # (disturbed by its neighbours) while it has budget left
            status[in_play & ok] = _CONVERGED
            status[in_play & ~ok & (pulses < self.max_pulses)] = _ACTIVE
            status[in_play & ~ok & (pulses >= self.max_pulses)] = _BUDGET
            # progress bookkeeping of the last pulse
            pulsed = (last_dir != 0) & np.isfinite(last_g)
            change = np.where(pulsed, np.abs(g - last_g) / np.maximum(np.abs(last_g), 1e-30), 0)
            active = status == _ACTIVE
            n_done = int(np.count_nonzero(status != _ACTIVE))
            self.emit("progress", 100.0 * n_done / max(n, 1))
            if not active.any():
                if verified:
                    break
                g, verified = self._read(sel, read_bias), True
                last_dir[:] = 0  # the verify read is not a new pulse's result
                continue
            if self.should_stop():
                log.warning("write-verify stopped at iteration %d", iteration)
                break
            direction = np.where(err < 0, 1, -1).astype(np.int8)  # below target: SET
            self._adapt(active, direction, last_dir, change, amp_set, amp_reset, width,
                        grid_width_min, idle, flips)
            done = active & ((idle >= self.stuck_after) | (flips >= self.stuck_after))
            moved = np.abs(g - g_first) > self.stuck_change / 100.0 * np.abs(g_first)
            status[done] = np.where(moved[done], _OUT_OF_REACH, _STUCK)
            active = status == _ACTIVE
            if not active.any():
                continue
            amplitude = np.where(direction > 0, amp_set, amp_reset)
            last_g = np.where(active, g, np.nan)
            after = self._pulse(rows, cols, active, amplitude, width, bias, vread, read_bias)
            pulses[active] += 1
            last_dir = np.where(active, direction, 0).astype(np.int8)
            iteration += 1
            if whole:
                g, verified = self._read(sel, read_bias), True
            else:
                g[active], verified = after, False

        err = (g - goal) / goal
        # by the last verify read; stuck, out of reach and skipped devices keep their status
        judged = (status == _CONVERGED) | (status == _BUDGET) | (status == _ACTIVE)
        status[judged] = np.where(np.abs(err[judged]) <= tol, _CONVERGED, _BUDGET)
        self.device_status, self.final, self.goal = status, g, goal
        self._store(rows, cols, target_map, g, err, pulses, status, read_bias)
        self.emit("progress", 100.0)

    def _adapt(self, active, direction, last_dir, change, amp_set, amp_reset, width,
               width_min, idle, flips) -> None:
        """Adapt amplitude and width of the active devices from their last pulse."""
        step = self.v_step
        width_max = self.planned_width(self.array, "width_max")
        same = active & (last_dir == direction)
        overshoot = active & (last_dir != 0) & (last_dir != direction)
        # the pulse that overshot was the smallest of its polarity: nothing gentler to try
        smallest = (width <= width_min * (1 + 1e-9)) & np.where(
            last_dir > 0, amp_set <= self.v_set_start + 1e-12,
            amp_reset >= self.v_reset_start - 1e-12)
        flips[overshoot & smallest] += 1
        flips[active & ~(overshoot & smallest)] = 0
        weak = same & (change < self.progress_min / 100.0)
        set_dev, reset_dev = direction > 0, direction < 0
        # too little progress: more amplitude, then more width
        at_max_set = amp_set >= self.v_set_max - 1e-12
        at_max_reset = amp_reset <= self.v_reset_max + 1e-12
        at_max = np.where(set_dev, at_max_set, at_max_reset)
        grow_amp = weak & ~at_max
        amp_set[grow_amp & set_dev] = np.minimum(amp_set[grow_amp & set_dev] + step,
                                                 self.v_set_max)
        amp_reset[grow_amp & reset_dev] = np.maximum(amp_reset[grow_amp & reset_dev] - step,
                                                     self.v_reset_max)
        grow_width = weak & at_max & (width < width_max)
        width[grow_width] = np.minimum(width[grow_width] * 2, width_max)
        # overshoot: back off the polarity now needed, and shorten
        amp_set[overshoot & set_dev] = np.maximum(amp_set[overshoot & set_dev] - step,
                                                  self.v_set_start)
        amp_reset[overshoot & reset_dev] = np.minimum(amp_reset[overshoot & reset_dev] + step,
                                                      self.v_reset_start)
        width[overshoot] = np.maximum(width[overshoot] / 2, width_min)
        # stuck: full drive, nothing moves
        full = same & at_max & (width >= width_max) & (change < self.stuck_change / 100.0)
        idle[full] += 1
        idle[active & ~full] = 0

    def _pulse(self, rows, cols, active, amplitude, width, bias, vread, read_bias):
        """One pulse on every active device, one controller batch (one op per width); with
        ``vread``, each device read after its pulse: the conductances (S) of the active devices,
        in their order."""
        idx = np.flatnonzero(active)
        groups = []
        with self.array.batch():
            for w in np.unique(width[idx]):
                k = idx[width[idx] == w]
                groups.append((k, self.array.pulse(Selection.cells(rows[k], cols[k]),
                                                   amplitude[k], float(w), bias, vread,
                                                   read_bias)))
        if vread is None:
            return None
        g = np.empty(rows.size)
        for k, pending in groups:
            g[k] = np.asarray(pending.result(), float).reshape(-1) / vread
        return g[idx]

    def _read(self, sel, bias) -> np.ndarray:
        current = np.asarray(self.array.read(sel, self.v_read, bias), float)
        return current.reshape(-1) / self.v_read  # row-major: the order of devices()

    def _store(self, rows, cols, target_map, g, err, pulses, status, bias) -> None:
        shape = self.shape
        final_map = np.full(shape, np.nan)
        final_map[rows, cols] = g
        status_map = np.full(shape, -1, dtype=np.int8)
        status_map[rows, cols] = status
        pulse_map = np.zeros(shape, dtype=np.int64)
        pulse_map[rows, cols] = pulses
        self.file.write_map("target", target_map, units="S")
        self.file.write_map("final", final_map, units="S", vread=self.v_read, bias=bias)
        self.file.write_map("status", status_map, codes=",".join(STATUSES))
        self.file.write_map("pulses", pulse_map)
        for r, c, gt, gf, e, p, s in zip(rows, cols, target_map[rows, cols], g, err, pulses,
                                         status, strict=True):
            self.emit("results", {"Row": int(r), "Column": int(c), "Target (S)": float(gt),
                                  "Conductance (S)": float(gf), "Error (%)": 100.0 * float(e),
                                  "Pulses": int(p), "Status": STATUSES[s]})
        stuck = [(int(r), int(c)) for r, c, s in zip(rows, cols, status, strict=True)
                 if s == _STUCK]
        if stuck:
            log.warning("stuck devices (row, col): %s", stuck)

    def counts(self) -> dict[str, int]:
        if self.device_status is None:
            return {}
        return {name: int(np.count_nonzero(self.device_status == k))
                for k, name in enumerate(STATUSES)}

    def summary(self) -> str:
        if self.device_status is None:
            return "not run"
        c = self.counts()
        programmable = c["converged"] + c["budget"] + c["out of reach"]
        share = 100.0 * c["converged"] / programmable if programmable else 0.0
        stuck = [(int(r), int(cc)) for (r, cc), s in zip(zip(*self.devices(), strict=True),
                                                           self.device_status, strict=True)
                 if s == _STUCK]
        named = ", ".join(f"({r},{cc})" for r, cc in stuck[:20]) + (" ..." if len(stuck) > 20
                                                                     else "")
        return (f"{c['converged']} of {programmable} programmable devices within "
                f"{self.tolerance:g} % ({share:.1f} %); {c['stuck']} stuck"
                + (f": {named}" if stuck else "") + f"; {c['budget']} out of budget; "
                f"{c['out of reach']} with the target out of reach")
