"""Endurance: SET/RESET cycles with a read after every pulse, until each device's window closes.

A cycle is one SET (positive) pulse then one RESET (negative) pulse, each followed by a read:
R_LRS after the SET, R_HRS after the RESET, and the **window** R_HRS/R_LRS. Cycles run in
chunks of ``chunk_cycles``: one controller call per chunk (a pulse train of alternating
amplitudes on every device still cycling; a train step pulses every selected device once, then
reads it). A device stops cycling once its window has stayed below ``min_window`` for
``closed_after`` consecutive cycles (it is left out from the next chunk on; the rest of the
chunk it was in still pulses it), or at ``max_cycles``.

**Cycles to failure** of a failed device = the number of cycles before the first cycle of its
closing run (the cycles it survived with an open window); a device still open at
``max_cycles`` is censored (reported as survived). Across failed devices: median, range and the
log-normal spread σ = sd(ln N_f); the number censored.

Rows: one per cycle (X: cycle, Y: median window of the devices still cycling), with the
median R_LRS, R_HRS and the number of devices cycling; per device, the window, R_LRS and R_HRS
of every cycle (NaN after it stopped) and its cycles to failure go to the array file
(``/traces/window``, ``/traces/r_lrs``, ``/traces/r_hrs``, ``/traces/cycles_to_failure``,
``/maps/cycles_to_failure``).
"""

from __future__ import annotations

import logging

import numpy as np
from pymeasure.experiment import FloatParameter, IntegerParameter

from labctl.array import Selection
from procedures.array_base import ArrayProcedure

log = logging.getLogger(__name__)


def closing_cycle(closed: np.ndarray, run: np.ndarray, closed_after: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Scan a chunk of per-cycle ``closed`` flags (cycles, devices) for runs of ``closed_after``
    consecutive closed cycles, continuing the running count ``run`` (devices,) from the previous
    chunk. Returns (index in the chunk of the cycle that completes the run, or −1; the running
    count at the end of the chunk)."""
    n_cycles, n_dev = closed.shape
    done = np.full(n_dev, -1)
    run = run.copy()
    for k in range(n_cycles):
        run = np.where(closed[k], run + 1, 0)
        hit = (run >= closed_after) & (done < 0)
        done[hit] = k
    return done, run


class Endurance(ArrayProcedure):
    """SET/RESET cycling with reads; per-device cycles to failure (window below a minimum)."""

    NAME = "endurance"
    DEFAULT_SIM_STATION = "sim-crossbar-endurance"
    DATA_COLUMNS = ["Cycle", "Median window", "Median R_LRS (ohm)", "Median R_HRS (ohm)",
                    "Devices cycling", "Devices failed"]
    X_AXIS = "Cycle"
    Y_AXIS = "Median window"
    DISPLAYS = ("max_cycles", "min_window", "closed_after", "rows", "cols")
    LIMITED = {"v_read": "voltage", "set_amplitude": "voltage", "reset_amplitude": "voltage",
               "set_width": "pulse_width", "reset_width": "pulse_width"}
    PULSES = ((("set_amplitude",), ("set_width",)), (("reset_amplitude",), ("reset_width",)))
    READS_AFTER_PULSES = True

    set_amplitude = FloatParameter("SET amplitude", units="V", default=1.5, minimum=0,
                                   maximum=20)
    set_width = FloatParameter("SET pulse width", units="s", default=1e-4, minimum=1e-9,
                               maximum=1)
    reset_amplitude = FloatParameter("RESET amplitude", units="V", default=-1.5, minimum=-20,
                                     maximum=0)
    reset_width = FloatParameter("RESET pulse width", units="s", default=1e-4, minimum=1e-9,
                                 maximum=1)
    max_cycles = IntegerParameter("Maximum cycles", default=1000, minimum=1, maximum=10**9)
    chunk_cycles = IntegerParameter("Cycles per controller call", default=50, minimum=1,
                                    maximum=100_000)
    min_window = FloatParameter("Smallest open window R_HRS/R_LRS", default=1.2, minimum=1.0,
                                maximum=1e6)
    closed_after = IntegerParameter("Closed cycles in a row that mean failure", default=5,
                                    minimum=1, maximum=10_000)

    # after the run
    cycles_to_failure: np.ndarray | None = None  # per device; −1: survived (censored)
    cycles_run: int = 0
    stats: dict[str, float] | None = None

    def preflight(self, limits) -> list[str]:
        problems = super().preflight(limits)
        if self.set_amplitude <= 0:
            problems.append("set_amplitude must be positive (the SET polarity)")
        if self.reset_amplitude >= 0:
            problems.append("reset_amplitude must be negative (the RESET polarity)")
        return problems

    # ------------------------------------------------------------------ run
    def execute(self) -> None:
        array = self.array
        rows, cols = self.devices()
        bias = self.pulse_bias_scheme()
        v = self.v_read
        n = rows.size
        whole = n == self.shape[0] * self.shape[1]
        max_cycles, closed_after = int(self.max_cycles), int(self.closed_after)
        chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (window, LRS, HRS)
        failed_at = np.full(n, -1, dtype=np.int64)  # cycles to failure; −1: still cycling
        run = np.zeros(n, dtype=np.int64)
        cycle = 0
        while cycle < max_cycles:
            active = np.flatnonzero(failed_at < 0)
            if active.size == 0:
                break
            if self.should_stop():
                log.warning("endurance stopped after %d cycles", cycle)
                break
            k = min(int(self.chunk_cycles), max_cycles - cycle)
            sel = (Selection.all() if whole and active.size == n
                   else Selection.cells(rows[active], cols[active]))
            amplitudes = np.tile([self.set_amplitude, self.reset_amplitude], k)
            widths = np.tile([self.set_width, self.reset_width], k)
            currents = np.asarray(array.pulse_train(sel, amplitudes, widths, bias, vread=v,
                                                    read_bias=self.read_bias_scheme()),
                                  float).reshape(2 * k, active.size)
            with np.errstate(divide="ignore", invalid="ignore"):
                resistance = np.abs(v / currents)
                lrs, hrs = resistance[0::2], resistance[1::2]
                win = hrs / lrs
            done, run[active] = closing_cycle(~(win >= self.min_window), run[active],
                                              closed_after)
            hit = done >= 0
            # survived cycles = those before the first closed cycle of the run
            failed_at[active[hit]] = cycle + done[hit] + 1 - closed_after
            # a device's data end with the cycle that completed its closing run
            after = hit[None, :] & (np.arange(k)[:, None] > done[None, :])
            chunk = []
            for values in (win, lrs, hrs):
                full = np.full((k, n), np.nan)
                full[:, active] = np.where(after, np.nan, values)
                chunk.append(full)
            chunks.append(tuple(chunk))
            stopped = not self._emit_rows(cycle, *chunk, failed_at)
            cycle += k
            if stopped:
                break
            self.emit("progress", 100.0 * max(cycle / max_cycles,
                                              np.count_nonzero(failed_at >= 0) / n))
        self.cycles_run = cycle
        self.cycles_to_failure = failed_at
        window, r_lrs, r_hrs = (np.vstack([c[j] for c in chunks]) if chunks
                                else np.empty((0, n)) for j in range(3))
        self._store(rows, cols, window, r_lrs, r_hrs, failed_at, bias)
        self.emit("progress", 100.0)

    def _emit_rows(self, first: int, window, r_lrs, r_hrs, failed_at) -> bool:
        """Rows of the cycles ``first`` + 0..k−1 from a chunk's (k, devices) arrays."""
        for j in range(window.shape[0]):
            if self.should_stop():
                log.warning("endurance stopped while writing rows")
                return False
            live = np.isfinite(window[j])
            if not live.any():
                continue
            cycle = first + j
            self.emit("results", {
                "Cycle": cycle + 1, "Median window": float(np.median(window[j, live])),
                "Median R_LRS (ohm)": float(np.median(r_lrs[j, live])),
                "Median R_HRS (ohm)": float(np.median(r_hrs[j, live])),
                "Devices cycling": int(np.count_nonzero(live)),
                "Devices failed": int(np.count_nonzero((failed_at >= 0)
                                                       & (failed_at <= cycle)))})
        return True

    def _store(self, rows, cols, window, r_lrs, r_hrs, failed_at, bias) -> None:
        for name, values in (("window", window), ("r_lrs", r_lrs), ("r_hrs", r_hrs)):
            self.file.write_trace(name, values, axes="cycle, device", vread=self.v_read,
                                  pulse_bias=bias, units="" if name == "window" else "ohm")
        self.file.write_trace("devices", np.column_stack([rows, cols]), columns="row,col")
        self.file.write_trace("cycles_to_failure", failed_at, censored=-1,
                              min_window=self.min_window, closed_after=self.closed_after,
                              cycles_run=self.cycles_run)
        values = np.full(self.shape, np.nan)
        values[rows, cols] = np.where(failed_at >= 0, failed_at, np.nan)
        self.file.write_map("cycles_to_failure", values)
        failed = failed_at[failed_at >= 0]
        self.stats = {"devices": int(failed_at.size), "failed": int(failed.size),
                      "survived": int(failed_at.size - failed.size)}
        if failed.size:
            positive = failed[failed > 0]
            self.stats.update(median=float(np.median(failed)), min=int(failed.min()),
                              max=int(failed.max()),
                              sigma_ln=float(np.std(np.log(positive), ddof=1))
                              if positive.size > 1 else float("nan"))

    def summary(self) -> str:
        if self.stats is None:
            return "endurance not run"
        s = self.stats
        text = f"{s['failed']} of {s['devices']} devices failed"
        if s["failed"]:
            text += (f": cycles to failure median {s['median']:g} (range {s['min']}..{s['max']},"
                     f" sigma_ln {s['sigma_ln']:.2g})")
        return text + (f"; {s['survived']} survived {self.cycles_run} cycles"
                       if s["survived"] else "")
