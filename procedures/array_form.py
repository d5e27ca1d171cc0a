"""Electroform every device of a memristor array: a per-device voltage ramp with reads.

For each selected device that is not formed yet (read resistance above ``r_formed_max``), a
ramp of pulses from ``v_start`` to ``v_stop`` by ``v_step``, each followed by a read at
``v_read``, stops at the first read whose resistance dropped by ``drop_ratio`` from the
device's initial read, or above the current compliance (hardware compliance where the controller
has it, else the controller's software fallback). The device is formed if its resistance after
the ramp is below ``r_formed_max``; devices that would not form are listed in the results and in
the summary. Each device's ramp is one controller operation (the ramp runs on the controller
where it can).
"""

from __future__ import annotations

import logging

import numpy as np
from pymeasure.experiment import FloatParameter

from labctl.array import Ramp
from procedures.array_base import ArrayProcedure

log = logging.getLogger(__name__)


class ArrayForm(ArrayProcedure):
    """Form every selected device (per-device ramp, stop on resistance drop, compliance)."""

    NAME = "array-form"
    DEFAULT_SIM_STATION = "sim-crossbar-virgin"
    DATA_COLUMNS = ["Row", "Column", "Initial resistance (ohm)", "Forming voltage (V)",
                    "Final resistance (ohm)", "Steps", "Formed"]
    X_AXIS = "Forming voltage (V)"
    Y_AXIS = "Final resistance (ohm)"
    DISPLAYS = ("v_stop", "compliance", "drop_ratio", "pulse_bias")
    LIMITED = {"v_read": "voltage", "v_start": "voltage", "v_stop": "voltage",
               "compliance": "current", "width": "pulse_width"}

    v_start = FloatParameter("Ramp start", units="V", default=0.5, minimum=-20, maximum=20)
    v_stop = FloatParameter("Ramp ceiling", units="V", default=4.0, minimum=-20, maximum=20)
    v_step = FloatParameter("Ramp step", units="V", default=0.1, minimum=1e-3, maximum=5)
    width = FloatParameter("Pulse width", units="s", default=100e-6, minimum=1e-9, maximum=1)
    compliance = FloatParameter("Current compliance", units="A", default=1e-3, minimum=1e-9,
                                maximum=1)
    drop_ratio = FloatParameter("Resistance drop that means formed", default=10.0, minimum=1.5,
                                maximum=1e6)
    r_formed_max = FloatParameter("Formed below", units="ohm", default=100e3, minimum=1,
                                  maximum=1e12)

    formed: np.ndarray | None = None
    forming_voltage: np.ndarray | None = None

    def planned_ops(self, array):
        """The read, and a ramp from ``v_start`` to ``v_stop`` (read at ``v_read`` after each
        step) on the first selected device."""
        rows, cols = self.devices(array.shape)
        ramp = Ramp(int(rows[0]), int(cols[0]), np.array([self.v_start, self.v_stop]),
                    self.width, self.pulse_bias_scheme(array), self.v_read)
        return [*super().planned_ops(array),
                (f"v_start = {self.v_start:g} V, v_stop = {self.v_stop:g} V, width = "
                 f"{self.width:g} s, pulse_bias = {ramp.bias}", ramp)]

    def execute(self) -> None:
        array = self.array
        bias, read_bias = self.pulse_bias_scheme(), self.read_bias_scheme()
        rows, cols = self.devices()
        n = rows.size
        array.set_compliance(self.compliance)
        r0 = self._read_resistance(read_bias)
        formed = r0 < self.r_formed_max
        v_form = np.full(n, np.nan)
        steps = np.zeros(n, dtype=np.int64)
        todo = np.flatnonzero(~formed)
        log.info("%d of %d devices already formed (R < %g ohm)", n - todo.size, n,
                 self.r_formed_max)
        for done, k in enumerate(todo):
            if self.should_stop():
                log.warning("array forming stopped after %d of %d devices", done, todo.size)
                break
            stop_current = abs(self.v_read) * self.drop_ratio / r0[k]
            result = array.ramp(rows[k], cols[k], self.v_start, self.v_stop, self.v_step,
                                self.width, bias, vread=self.v_read, stop_current=stop_current)
            steps[k] = result.steps
            if result.stopped:
                v_form[k] = result.voltages[-1]
            self.file.write_trace(f"ramp_r{rows[k]}_c{cols[k]}",
                                  np.vstack([result.voltages, result.currents]),
                                  rows="voltage (V), current at read (A)", vread=self.v_read)
            self.emit("progress", 95.0 * (done + 1) / max(todo.size, 1))
        array.set_compliance(None)
        # verify with one read of everything selected
        r_final = self._read_resistance(read_bias)
        formed = r_final < self.r_formed_max
        self.formed, self.forming_voltage = formed, v_form
        self.file.write_map("formed", self._as_map(rows, cols, formed.astype(np.int8), -1))
        self.file.write_map("forming_voltage", self._as_map(rows, cols, v_form, np.nan),
                            units="V")
        self.file.write_map("resistance", self._as_map(rows, cols, r_final, np.nan), units="ohm",
                            vread=self.v_read)
        for k in range(n):
            self.emit("results", {"Row": int(rows[k]), "Column": int(cols[k]),
                                  "Initial resistance (ohm)": float(r0[k]),
                                  "Forming voltage (V)": float(v_form[k]),
                                  "Final resistance (ohm)": float(r_final[k]),
                                  "Steps": int(steps[k]), "Formed": int(formed[k])})
        failed = [(int(r), int(c)) for r, c, f in zip(rows, cols, formed, strict=True) if not f]
        if failed:
            log.warning("%d devices would not form: %s", len(failed), failed)
        self.emit("progress", 100.0)

    def _read_resistance(self, bias: str) -> np.ndarray:
        """|R| of every selected device at the read voltage (inf where no current flows)."""
        current = np.asarray(self.array.read(self.selection(), self.v_read, bias), float)
        current = current.reshape(-1)
        with np.errstate(divide="ignore"):
            return np.where(current != 0, np.abs(self.v_read / current), np.inf)

    def _as_map(self, rows, cols, values, fill):
        out = np.full(self.shape, fill, dtype=np.asarray(values).dtype)
        out[rows, cols] = values
        return out

    def not_formed(self) -> list[tuple[int, int]]:
        if self.formed is None:
            return []
        rows, cols = self.devices()
        return [(int(r), int(c)) for r, c, f in zip(rows, cols, self.formed, strict=True)
                if not f]

    def summary(self) -> str:
        if self.formed is None:
            return "not run"
        failed = self.not_formed()
        v = self.forming_voltage[np.isfinite(self.forming_voltage)]
        text = f"{int(self.formed.sum())} of {self.formed.size} devices formed"
        if v.size:
            text += f" (median forming voltage {np.median(v):.3g} V)"
        if failed:
            listed = ", ".join(f"({r},{c})" for r, c in failed[:20])
            text += f"; not formed: {listed}" + (" ..." if len(failed) > 20 else "")
        return text
