"""Array controller for an array of isolated stochastic synapses on the simulated tester
(:mod:`mocks.instruments.synapse_array`): every :mod:`labctl.array` operation, and
:meth:`~labctl.array.ArrayController.switch_counts` natively — the n trials of reset → pulse →
read of every synapse of the active inputs in ONE transaction, as in-situ training (Ellis et al.,
arXiv 2303.01886: ``Y_i = Σ_j k_ij / n``) needs it.

The tester exists only as a simulation (resource ``SIM::SYNAPSES``, reached with ``--sim``); on
hardware the same :meth:`switch_counts` call runs on any batched controller (ArC TWO) as one
pulse train per synapse in one batch.

.. code-block:: python

    with Station.load("sim-dw-synapse-array", sim=True) as st:
        array = st.instrument("array")
        array.set_drives(np.full(array.shape, 4.63))           # x_ij in V
        k = array.switch_counts(inputs, 64, reset=-1.5, vread=0.1, width=1e-6)
        y = k.sum(axis=1) / 64                                 # one value per output line
"""

from __future__ import annotations

import numpy as np

from labctl.array import (
    ArrayController,
    Capabilities,
    Counts,
    Idle,
    Pulse,
    Ramp,
    RampResult,
    Read,
    Train,
)
from labctl.errors import ConfigError

RESOURCE = "SIM::SYNAPSES"
PULSE_RANGE = (-10.0, 10.0)
READ_RANGE = (-1.0, 1.0)


class SynapseArray(ArrayController):
    """An isolated-cell stochastic synapse array on the simulated tester."""

    RESOURCE_KIND = "synapse-sim"

    def __init__(self, target):
        super().__init__()
        if isinstance(target, str):
            raise ConfigError(f"resource {target}", "the synapse array tester exists only as a "
                              "simulation: run with --sim")
        self.sim = target

    @classmethod
    def check_resource(cls, resource: str) -> str | None:
        if str(resource).strip().upper() != RESOURCE:
            return f"{resource!r} is not the simulated synapse tester ({RESOURCE})"
        return None

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(shape=self.sim.shape, read_voltage=READ_RANGE,
                            pulse_voltage=PULSE_RANGE, min_pulse_width=1e-9,
                            max_pulse_width=1.0, time_grid=1e-9, hardware_compliance=False,
                            bias_schemes=("v/2", "v/3", "ground", "float"),
                            whole_array_read=True, batched=True, native_counts=True)

    @property
    def id(self) -> str:
        return self.sim.idn

    def _execute(self, ops: list) -> list:
        shape = self.shape
        program = []
        for op in ops:
            if isinstance(op, Idle):
                program.append(("idle",))
                continue
            if isinstance(op, Ramp):
                program.append(("ramp", op.row, op.col, op.voltages, op.width, op.vread,
                                op.stop_current))
                continue
            rows, cols = op.sel.cells_of(shape)
            if isinstance(op, Read):
                program.append(("read", rows, cols, op.vread))
            elif isinstance(op, Pulse):
                program.append(("pulse", rows, cols, op.amplitude, op.width, op.vread))
            elif isinstance(op, Train):
                program.append(("train", rows, cols, op.amplitudes, op.widths, op.vread))
            elif isinstance(op, Counts):
                program.append(("counts", rows, cols, op.drives, op.n, op.reset, op.width,
                                op.vread, op.contrast))
        results = self.sim.execute(program)
        return [self._shape_result(op, r) for op, r in zip(ops, results, strict=True)]

    def _shape_result(self, op, result):
        if result is None or isinstance(op, Counts):
            return result
        if isinstance(op, Ramp):
            steps = len(result)
            stopped = op.stop_current is not None and abs(result[-1]) > op.stop_current
            return RampResult(op.voltages[:steps], np.asarray(result, dtype=float), stopped)
        result = np.asarray(result, dtype=float)
        sel_shape = op.sel.result_shape(self.shape)
        if isinstance(op, Train):
            return result.reshape(len(op.amplitudes), *sel_shape)
        return result.reshape(sel_shape)
