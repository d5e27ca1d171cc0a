"""A simulated tester for an array of isolated stochastic synapses (1T1R / three-terminal
domain-wall MTJ cells: each cell has its own access device, so there are no sneak paths and no
half-selected cells, unlike the passive crossbar of :mod:`mocks.devices.crossbar`).

No commercial instrument of this kind exists; it stands for the FPGA-driven array testers such
synapses are measured with. Its interface is a program of operations run in one call (one
transaction, counted in :attr:`SynapseArraySim.transactions`), reached in-process like the pyarc2
stand-in (``LINK = "object"``):

- ``("read", rows, cols, vread)`` → currents (A) of the cells (read noise);
- ``("pulse", rows, cols, amplitudes, width, vread | None)`` → currents after, or None;
- ``("train", rows, cols, amplitudes (k,), widths (k,), vread | None)`` → (k, cells) or None;
- ``("counts", rows, cols, drives, n, reset, width, vread, contrast)`` → switch counts per cell:
  n trials of reset → pulse at the cell's drive → read. When the reset is certain and the read
  cannot move the state (a domain wall below its read threshold), the trials are iid and the
  counts are drawn as Binomial(n, P(drive)) at once; otherwise every pulse is stepped and the
  counts come from the reads, as on the instrument;
- ``("ramp", row, col, voltages, width, vread | None, stop | None)`` → currents read after
  each step, stopping after the first above ``stop``;
- ``("idle",)`` → None (every line grounded).

Virtual time: every pulse takes its width plus ``read_time_s`` for a read, cells one after another.
"""

from __future__ import annotations

import numpy as np

from mocks.clock import VirtualClock


class SynapseArraySim:
    """The simulated tester, wired to a 2-D two-state device array (mocks.devices.stochastic)."""

    LINK = "object"

    def __init__(self, clock: VirtualClock | None = None, device=None, device_index: int = 0,
                 rng: np.random.Generator | None = None, read_time_s: float = 1e-6,
                 serial: str = "0001"):
        if device is None or len(getattr(device, "shape", ())) != 2:
            raise ValueError("synapse array: wire it to a device array of shape [rows, cols]")
        self.clock = clock if clock is not None else VirtualClock()
        self.device = device
        self.read_time_s = float(read_time_s)
        self.idn = f"labctl,simulated synapse array tester {device.shape[0]}x{device.shape[1]}," \
                   f"{serial},1.0"
        self.transactions = 0

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.device.shape)

    def execute(self, program: list[tuple]) -> list:
        """Run every operation of ``program`` in order; one result per operation."""
        self.transactions += 1
        return [getattr(self, f"_{op[0]}")(*op[1:]) for op in program]

    # ------------------------------------------------------------------ operations
    def _read(self, rows, cols, vread):
        self.clock.advance(self.read_time_s * len(rows))
        return self.device.measure_current(vread, (np.asarray(rows), np.asarray(cols)))

    def _pulse(self, rows, cols, amplitudes, width, vread):
        index = (np.asarray(rows), np.asarray(cols))
        self.device.apply(amplitudes, width, index)
        self.clock.advance(width * len(rows))
        return None if vread is None else self._read(rows, cols, vread)

    def _train(self, rows, cols, amplitudes, widths, vread):
        out = [self._pulse(rows, cols, a, w, vread) for a, w in zip(amplitudes, widths,
                                                                    strict=True)]
        return None if vread is None else np.stack(out)

    def _ramp(self, row, col, voltages, width, vread, stop):
        """Pulses at ``voltages`` on one cell, each read (at ``vread``, or during the pulse
        at its voltage if None), stopping after the first |current| above ``stop``."""
        currents = []
        for v in voltages:
            read = self._pulse([row], [col], v, width, v if vread is None else vread)
            currents.append(float(read[0]))
            if stop is not None and abs(currents[-1]) > stop:
                break
        return np.asarray(currents)

    def _counts(self, rows, cols, drives, n, reset, width, vread, contrast):
        dev = self.device
        index = (np.asarray(rows), np.asarray(cols))
        drives = np.asarray(drives, dtype=float)
        up_reset, down_reset = dev.probabilities(reset, width, "voltage", index)
        up_read, down_read = dev.probabilities(vread, self.read_time_s, "voltage", index)
        iid = (np.all(np.asarray(down_reset) == 1.0) and np.all(np.asarray(up_reset) == 0.0)
               and np.all(np.asarray(up_read) == 0.0) and np.all(np.asarray(down_read) == 0.0))
        if iid:
            k = dev.switch_counts(drives, width, n, source="voltage", index=index)
            self.clock.advance(len(rows) * n * 2 * (width + self.read_time_s))
            return k
        amps = np.empty((2 * n, drives.size))
        amps[0::2], amps[1::2] = reset, drives
        currents = np.abs(self._train(rows, cols, amps, np.full(2 * n, width), vread))
        return np.sum(currents[1::2] * (1.0 + contrast) < currents[0::2], axis=0)

    def _idle(self):
        return None

