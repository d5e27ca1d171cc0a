"""Read the conductance map of a memristor array (the whole array in one controller read)."""

from __future__ import annotations

import logging

import numpy as np
from pymeasure.experiment import IntegerParameter

from labctl.array import Selection
from procedures.array_base import ArrayProcedure

log = logging.getLogger(__name__)


class ArrayRead(ArrayProcedure):
    """Conductance map of the selected devices at the read voltage, shown as a heat map."""

    NAME = "array-read"
    DATA_COLUMNS = ["Row", "Column", "Current (A)", "Conductance (S)", "Resistance (ohm)"]
    X_AXIS = "Column"
    Y_AXIS = "Row"
    IMAGE = ("Column", "Row", "Conductance (S)")  # the GUI shows a heat map
    DISPLAYS = ("rows", "cols", "v_read", "read_bias", "averages")

    averages = IntegerParameter("Reads averaged", default=1, minimum=1, maximum=1000)

    conductance: np.ndarray | None = None  # (rows, cols) map after the run; NaN: not selected

    # the heat map's axes (pymeasure's image window reads <column>_start/_end/_step)
    def _span(self, axis: int) -> tuple[int, int]:
        shape = (32, 32)
        if self.station is not None:
            shape = self.station.instrument("array").shape
        idx = self.devices(shape)[axis]
        return int(idx.min()), int(idx.max())

    Row_start = property(lambda self: self._span(0)[0])
    Row_end = property(lambda self: self._span(0)[1])
    Row_step = 1
    Column_start = property(lambda self: self._span(1)[0])
    Column_end = property(lambda self: self._span(1)[1])
    Column_step = 1

    def execute(self) -> None:
        rows, cols = self.devices()
        bias = self.read_bias_scheme()
        whole = rows.size == self.shape[0] * self.shape[1]
        sel = Selection.all() if whole else Selection.cells(rows, cols)
        total = np.zeros(rows.size)
        for k in range(self.averages):
            if self.should_stop():
                log.warning("array read stopped after %d of %d reads", k, self.averages)
                if k == 0:
                    return
                total *= self.averages / k
                break
            total += np.asarray(self.array.read(sel, self.v_read, bias), float).reshape(-1)
            self.emit("progress", 90.0 * (k + 1) / self.averages)
        current = total / self.averages
        g = current / self.v_read
        self.conductance = np.full(self.shape, np.nan)
        self.conductance[rows, cols] = g
        self.file.write_map("conductance", self.conductance, units="S", vread=self.v_read,
                            bias=bias, averages=self.averages)
        current_map = np.full(self.shape, np.nan)
        current_map[rows, cols] = current
        self.file.write_map("current", current_map, units="A", vread=self.v_read, bias=bias)
        with np.errstate(divide="ignore"):
            resistance = np.where(current != 0, self.v_read / current, np.inf)
        for r, c, i, gg, res in zip(rows, cols, current, g, resistance, strict=True):
            self.emit("results", {"Row": int(r), "Column": int(c), "Current (A)": float(i),
                                  "Conductance (S)": float(gg), "Resistance (ohm)": float(res)})
        self.emit("progress", 100.0)

    def summary(self) -> str:
        if self.conductance is None:
            return "no map read"
        g = self.conductance[np.isfinite(self.conductance)]
        return (f"{g.size} devices: median conductance {np.median(g):.4g} S "
                f"(min {g.min():.4g} S, max {g.max():.4g} S)")
