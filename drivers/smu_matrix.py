"""A memristor-array controller built from one SMU (a Keithley 2450, or a Keysight B2900-series
channel) and a Keysight B2200A/B2201A switching matrix (one mainframe, or two: rows on one,
columns on the other), optionally with a fixed DC read supply on a matrix input.

For labs without a dedicated array controller. Cabling: SMU HI and LO on matrix inputs
(``smu_hi_input``, ``smu_lo_input``), circuit ground on the Ground Mode port
(``ground_input``), and — for reads under ``"ground"`` — a DC supply at the read voltage on
``read_supply_input``. A 32x32 crossbar has 64 lines, more than the 48 outputs of one
mainframe, so the bench and station of this backend use two mainframes (``matrix`` carries the
rows, ``col_matrix`` the columns; SMU HI and LO teed to inputs 1 and 2 of both); a crossbar of up
to 48 lines fits one (rows on outputs 1..rows, columns after them).

Routes:

- *drive*: SMU HI on the selected row, LO on the selected column. Pulses, ramps, and reads
  without a read supply.
- *sense*: the read supply on the selected row, SMU HI on the selected column sourcing 0 V, so
  the SMU is an ammeter at virtual ground on the column (the reading is negated: current flows
  into HI). Reads when a read supply is cabled.

Bias schemes (what one SMU can do):

- ``"float"``: only the routed lines are connected; the others float (sneak paths). A read is the
  selected device plus the sneak current, the crossbar's ``read_device(..., "float")``: on the
  drive route the SMU measures the row current, which equals the column current when every
  other line floats.
- ``"ground"``: the matrix's Ground Mode ties every other output to ``ground_input``. Pulses put
  the full amplitude on the selected row's devices and 0 V on the others (the crossbar's
  ``pulse(..., "ground")``). A read isolates the device only on the *sense* route (the column
  current, with every other row at the column's 0 V); on the drive route the SMU would measure
  the whole selected row (every device on it at vread, returning through the grounded
  columns), so without a read supply reads, ramps and pulse-then-read under ``"ground"`` are
  refused before anything is sent. V/2 and V/3 need more sources than one SMU.

The SMU is used through an adapter of its family (:mod:`drivers.smu_port`): list sweeps of
pulses, spot reads, compliance, and its pulse-width limits and time grid, which the capabilities
report. For analog programming use a B2911A/B2912A: 10 µs pulses (B2901A/B2902A: 50 µs) move a
device part of the way to its amplitude's saturation level, where the 2450's ≥ 2.05 ms points
saturate it (see README).

Operations and their transactions (one mainframe; with two, a mainframe is written only when
its part of the route changes):

- Read: per device one matrix query (``:ROUT:OPEN:CARD 0;:ROUT:CLOS (@0AARR,0BBCC);*OPC?``,
  one program message that returns once the relays have switched) and one SMU query (2450:
  :meth:`~drivers.keithley2450.Keithley2450.step_and_measure`, level, ``:READ?`` and the
  compliance flag in one message, plus one write, level 0 V and output on, if a sweep left the
  output off; B2900: level, output on and ``:MEAS:CURR?`` in one message, after a pulsed list
  with the return to a fixed DC source in it). A whole-array read is rows x cols device reads
  (``whole_array_read`` False). With a read supply the read voltage is the supply's.
- Pulse: per device one matrix query and one SMU list sweep (configuring write, ``*OPC?``,
  data query: the 2450's ``sweep_voltage_list``, the B2900's pulsed ``pulse_list``). A
  pulse-then-read with pulse and read both under ``"float"`` is the one sweep
  ``[amplitude, vread]``; with the read under another scheme (``read_bias``) every
  selected device is pulsed first, then every one read (a ``"ground"`` read on the sense route:
  a matrix write and a query per device), so the matrix leaves and enters Ground Mode once per
  operation, not per device.
  On the 2450 a pulse is a sweep point held ``width`` (its minimum: t_int + 50 µs), on the
  B2900 a pulse of ``width`` from 10 µs; a read inside the sweep lasts as long (the device sits
  at vread).
- Train: per device, pulses and reads under ``"float"``: one sweep per run of equal widths
  ``[a1, vread, a2, vread, ...]``; otherwise, with reads, pulse and read one by one.
  Devices are done one after the other (all pulses of a device, then the next device).
- Ramp: under ``"float"`` one matrix write and ONE sweep of the ramp voltages (each followed by
  vread if given); the stop criterion is applied in software after the sweep — the sweep is not
  cut short, the device receives every step with its current clamped by the SMU's hardware
  compliance — and the result is truncated after the first step above ``stop_current``. Under
  ``"ground"`` (needs vread and a read supply) the ramp goes step by step, pulse then sensed
  read, and stops at the first step above ``stop_current``: nothing is applied after it.
- Idle: every mainframe ``:ROUT:OPEN:CARD 0`` (Ground Mode on for ``"ground"``, off for
  ``"float"``) and the SMU source at 0 V.

Compliance is the SMU's (hardware): ``set_compliance`` sets its current limit (ILIM); with none
set, the chip's current limit. :meth:`SmuMatrixArray.shutdown`: the SMU's safe state (abort,
ramp to 0 V, output off), then every line grounded and every relay open.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from drivers.smu_port import smu_port
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

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

VOLTAGE_RANGE_V = 200.0       # matrix path rating assumed (the 2450 sources up to 210 V)
N_INPUTS, N_OUTPUTS = 14, 48  # one B2200A/B2201A mainframe in auto configuration mode
CARD = 0                      # auto configuration mode: every card as card number 0
PRECISION_S = 1e-9


class SmuMatrixArray(ArrayController):
    """An SMU + Keysight B2200A/B2201A matrix as an :class:`~labctl.array.ArrayController`.

    :param smu: an opened :class:`~drivers.keithley2450.Keithley2450` or
        :class:`~drivers.keysight_b2900.KeysightB2900` (channel 1).
    :param matrix: an opened :class:`~drivers.keysight_b2200.KeysightB2200` carrying the rows
        (and the columns, unless ``col_matrix`` is given).
    :param rows, cols: crossbar size.
    :param row_outputs: matrix output (1-48) of each row; default 1..rows.
    :param col_outputs: output of each column; default rows+1..rows+cols on ``matrix``, or
        1..cols on ``col_matrix``.
    :param col_matrix: a second mainframe carrying the columns (None: ``matrix`` carries both).
    :param smu_hi_input: input (1-14) cabled to SMU HI (on every mainframe); default 1.
    :param smu_lo_input: input cabled to SMU LO (on the column mainframe); default 2.
    :param ground_input: input cabled to circuit ground, the Ground Mode port; default 12.
    :param read_supply_input: input of the row mainframe cabled to a DC supply at
        ``read_supply_voltage`` (V); None (default): no read supply.
    :param read_nplc: SMU integration time of every reading, power-line cycles (0.01-10); it
        also sets the 2450's shortest pulse (see :mod:`drivers.smu_port`).
    """

    RESOURCE_KIND = "composite"
    SAFE_IDLE = "ground"

    def __init__(self, smu, matrix, rows: int = 32, cols: int = 32, row_outputs=None,
                 col_outputs=None, col_matrix=None, smu_hi_input: int = 1,
                 smu_lo_input: int = 2, ground_input: int = 12, read_supply_input=None,
                 read_supply_voltage=None, read_nplc: float = 0.1):
        super().__init__()
        rows, cols = _count(rows, "rows"), _count(cols, "cols")
        self.smu, self.matrix = smu, matrix
        self.port = smu_port(smu)
        self.col_matrix = matrix if col_matrix is None else col_matrix
        self._frames = [matrix] if self.col_matrix is matrix else [matrix, self.col_matrix]
        ports = {"smu_hi_input": smu_hi_input, "smu_lo_input": smu_lo_input,
                 "ground_input": ground_input}
        if (read_supply_input is None) != (read_supply_voltage is None):
            raise ValueError("read_supply_input and read_supply_voltage go together")
        if read_supply_input is not None:
            ports["read_supply_input"] = read_supply_input
            if isinstance(read_supply_voltage, bool) or \
                    not isinstance(read_supply_voltage, (int, float)) or \
                    not 0 < abs(read_supply_voltage) <= VOLTAGE_RANGE_V:
                raise ValueError(f"read_supply_voltage = {read_supply_voltage!r} is not a "
                                 f"non-zero voltage within ±{VOLTAGE_RANGE_V:g} V")
        for name, port in ports.items():
            _port(port, N_INPUTS, name)
        if len(set(ports.values())) != len(ports):
            raise ValueError(f"{', '.join(ports)} must be different inputs")
        self.hi_input, self.lo_input, self.ground_input = smu_hi_input, smu_lo_input, ground_input
        self.supply_input = read_supply_input
        self.supply_voltage = None if read_supply_voltage is None else float(read_supply_voltage)
        if row_outputs is None:
            row_outputs = range(1, rows + 1)
        if col_outputs is None:
            first = rows + 1 if len(self._frames) == 1 else 1
            col_outputs = range(first, first + cols)
        self.row_outputs = _outputs(row_outputs, rows, "row_outputs")
        self.col_outputs = _outputs(col_outputs, cols, "col_outputs")
        if len(self._frames) == 1 and set(self.row_outputs) & set(self.col_outputs):
            raise ValueError("row_outputs and col_outputs share an output on one mainframe")
        if not (isinstance(read_nplc, (int, float)) and 0.01 <= read_nplc <= 10):
            raise ValueError(f"read_nplc = {read_nplc!r} is not from 0.01 to 10")
        self.read_nplc = float(read_nplc)
        self._routed: dict[int, tuple | None] = {id(f): None for f in self._frames}
        self._grounded: dict[int, bool | None] = {id(f): None for f in self._frames}
        self._prepare()
        port = self.port
        vs = self.supply_voltage
        self._caps = Capabilities(
            shape=(rows, cols),
            read_voltage=(vs, vs) if vs is not None else (-VOLTAGE_RANGE_V, VOLTAGE_RANGE_V),
            pulse_voltage=(-VOLTAGE_RANGE_V, VOLTAGE_RANGE_V),
            min_pulse_width=port.min_pulse_width,
            max_pulse_width=port.max_pulse_width,
            time_grid=port.time_grid,
            hardware_compliance=True,
            bias_schemes=("float", "ground"),
            whole_array_read=False,
            batched=False,
        )

    # ---------------------------------------------------------------- setup
    def _prepare(self) -> None:
        """Known state: auto configuration, free rule, break-before-make, Bias Mode off, Ground
        Mode off with every output ground-enabled on ``ground_input``, every relay open; SMU
        sourcing V at 0 V, measuring I at ``read_nplc``."""
        for frame in self._frames:
            card = frame.cards[CARD]
            frame.config_mode = "auto"
            card.connection_rule = "free"
            card.connection_sequence = "bbm"
            card.bias_enabled = False
            card.ground_enabled = False
            card.ground_port = self.ground_input
            card.ground_enable_all()
            card.open_all()
            self._grounded[id(frame)], self._routed[id(frame)] = False, ()
            errors = frame.check_errors()
            if errors:
                raise RuntimeError(f"{frame.name}: setup refused: {errors[0]}")
        self.port.prepare(self.read_nplc)

    # ---------------------------------------------------------------- interface
    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    @property
    def id(self) -> str:
        return " + ".join([self.port.id, *(str(f.id).strip() for f in self._frames)])

    def apply_chip_limits(self, limits) -> None:
        """The station's limits; with no compliance set, the SMU's current limit becomes the
        chip's current limit."""
        super().apply_chip_limits(limits)
        if self.compliance is None and limits.current is not None:
            self.port.set_compliance(float(limits.current))

    def _set_compliance(self, current: float | None) -> None:
        if current is None:
            if self.limits is None or self.limits.current is None:
                return
            current = float(self.limits.current)
        self.port.set_compliance(current)

    def shutdown(self) -> None:
        """SMU safe state (abort, ramp to 0 V, output off), then every line grounded and every
        relay open (Idle ground); if the matrix refuses that, every relay opened."""
        try:
            self.port.shutdown()
        finally:
            try:
                super().shutdown()
            except Exception:
                log.exception("%s: idle to ground failed; opening every relay.",
                              type(self).__name__)
                for frame in self._frames:
                    frame.shutdown()

    # ---------------------------------------------------------------- execution
    def _execute(self, ops: list) -> list:
        out = []
        for op in ops:
            if isinstance(op, Read):
                out.append(self._read(op))
            elif isinstance(op, Pulse):
                out.append(self._pulse(op))
            elif isinstance(op, Train):
                out.append(self._train(op))
            elif isinstance(op, Ramp):
                out.append(self._ramp(op))
            elif isinstance(op, Idle):
                self._idle(op.mode)
                out.append(None)
            else:
                raise TypeError(f"{type(self).__name__}: unknown operation {op!r}")
        return out

    def _refuse(self, op) -> str | None:
        """Reads under ``"ground"`` need the read supply (and a ramp under it a read voltage):
        on the drive route the SMU would measure the whole selected row."""
        if isinstance(op, Idle):
            return None
        if isinstance(op, Ramp) and op.bias == "ground" and op.vread is None:
            return ("a ramp under 'ground' needs vread: the current during the pulse is the "
                    "whole selected row's")
        read_bias = op.bias if isinstance(op, (Read, Ramp)) else op.read_bias
        if read_bias == "ground" and op.vread is not None and self.supply_input is None:
            return ("a read under 'ground' would measure the whole selected row: one SMU senses "
                    "a column alone only with a read supply (read_supply_input); read with "
                    "bias 'float'")
        return None

    def _cells(self, sel: Selection) -> list[tuple[int, int]]:
        rows, cols = sel.cells_of(self.shape)
        return list(zip(rows.tolist(), cols.tolist(), strict=True))

    def _read(self, op: Read):
        cells = self._cells(op.sel)
        out = np.empty(len(cells))
        for k, (r, c) in enumerate(cells):
            out[k] = self._read_device(r, c, op.vread, op.bias)
        return self._shaped(out, op.sel)

    def _read_device(self, r: int, c: int, vread: float, bias: str) -> float:
        """One reading: sensed on the column if there is a read supply, else driven on the
        row (float only)."""
        self.port.output_ready()
        if self.supply_input is not None:
            self._route(r, c, bias, sense=True)
            return -self.port.read(0.0)
        self._route(r, c, bias)
        return self.port.read(vread)

    def _pulse(self, op: Pulse):
        cells = self._cells(op.sel)
        amps = np.broadcast_to(np.asarray(op.amplitude, dtype=float), (len(cells),))
        if op.vread is not None and op.read_bias != op.bias:
            # every pulse, then every read: the matrix changes mode twice, not per device
            for k, (r, c) in enumerate(cells):
                self._pulse_device(r, c, amps[k:k + 1], op.width, op.bias, None, None)
            out = np.array([self._read_device(r, c, op.vread, op.read_bias) for r, c in cells])
            return self._shaped(out, op.sel)
        out = np.empty(len(cells))
        for k, (r, c) in enumerate(cells):
            out[k] = self._pulse_device(r, c, amps[k:k + 1], op.width, op.bias, op.vread,
                                        op.read_bias)[-1]
        return None if op.vread is None else self._shaped(out, op.sel)

    def _pulse_device(self, r, c, amps, width, bias, vread, read_bias) -> np.ndarray:
        """Pulses ``amps`` on device (r, c) under ``bias``, each followed by a read under
        ``read_bias`` if ``vread``; the currents read (or measured during the pulses if no
        vread). Float pulses and float reads share one sweep; otherwise each pulse is a sweep
        and each read a measurement on its own route."""
        self._route(r, c, bias)
        if vread is None or (bias == "float" and read_bias == "float"):
            currents = self.port.pulses(amps, width, vread)
            return currents[1::2] if vread is not None else currents
        out = np.empty(len(amps))
        for k, a in enumerate(amps):
            self._route(r, c, bias)
            self.port.pulses([a], width, None)
            out[k] = self._read_device(r, c, vread, read_bias)
        return out

    def _train(self, op: Train):
        cells = self._cells(op.sel)
        amps, widths = np.asarray(op.amplitudes, float), np.asarray(op.widths, float)
        runs = []  # (start, stop) of pulses sharing a width: one sweep each
        start = 0
        for k in range(1, amps.size + 1):
            if k == amps.size or not math.isclose(widths[k], widths[start],
                                                  rel_tol=0, abs_tol=PRECISION_S):
                runs.append((start, k))
                start = k
        out = np.empty((amps.size, len(cells)))
        for j, (r, c) in enumerate(cells):
            for a, b in runs:
                out[a:b, j] = self._pulse_device(r, c, amps[a:b], widths[a], op.bias, op.vread,
                                                 op.read_bias)
        if op.vread is None:
            return None
        return out.reshape((amps.size, *op.sel.result_shape(self.shape)))

    def _ramp(self, op: Ramp) -> RampResult:
        volts = np.asarray(op.voltages, dtype=float)
        stop = op.stop_current
        if op.bias == "ground":  # step by step: nothing is applied after the stop
            currents = []
            for v in volts:
                currents.append(self._pulse_device(op.row, op.col, [v], op.width, op.bias,
                                                   op.vread, op.bias)[0])
                if stop is not None and abs(currents[-1]) > stop:
                    break
            n = len(currents)
            return RampResult(volts[:n].copy(), np.array(currents),
                              stop is not None and abs(currents[-1]) > stop)
        currents = self._pulse_device(op.row, op.col, volts, op.width, op.bias, op.vread,
                                      op.bias)
        stopped = False
        if stop is not None:
            above = np.flatnonzero(np.abs(currents) > stop)
            if above.size:
                stopped = True
                volts, currents = volts[:above[0] + 1], currents[:above[0] + 1]
        return RampResult(volts.copy(), np.asarray(currents, dtype=float).copy(), stopped)

    def _idle(self, mode: str) -> None:
        for frame in self._frames:
            self._set_ground(frame, mode == "ground")
            frame.cards[CARD].open_all()
            self._routed[id(frame)] = ()
        self.port.zero()

    # ---------------------------------------------------------------- helpers
    def _shaped(self, values: np.ndarray, sel: Selection):
        shape = sel.result_shape(self.shape)
        return float(values[0]) if shape == () else values.reshape(shape)

    def _set_ground(self, frame, ground: bool) -> None:
        if self._grounded[id(frame)] != ground:
            frame.cards[CARD].ground_enabled = ground
            self._grounded[id(frame)] = ground
            self._routed[id(frame)] = None  # a mode change moves relays: route again

    def _route(self, r: int, c: int, bias: str, sense: bool = False) -> None:
        """Connect row ``r`` and column ``c`` and nothing else (the other lines floating, or
        grounded under ``"ground"``): drive route SMU HI -> row, LO -> column; sense route
        read supply -> row, SMU HI -> column. Writes only the mainframes whose routing
        changes."""
        ground = bias == "ground"
        row = ((self.supply_input if sense else self.hi_input), self.row_outputs[r])
        col = ((self.hi_input if sense else self.lo_input), self.col_outputs[c])
        wanted = {id(self.matrix): (row, col)} if len(self._frames) == 1 else \
            {id(self.matrix): (row,), id(self.col_matrix): (col,)}
        for frame in self._frames:
            self._set_ground(frame, ground)
            pairs = wanted[id(frame)]
            if self._routed[id(frame)] != pairs:
                # the SMU is another connection: wait (*OPC? in the same message) until the
                # relays have switched before it sources or measures (without this, over TCP
                # the SMU can measure first)
                frame.cards[CARD].route(pairs, wait=True)
                self._routed[id(frame)] = pairs


def _count(n, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{what} = {n!r} is not a positive int")
    return n


def _port(port, high: int, what: str) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= high:
        raise ValueError(f"{what} = {port!r} is not a port from 1 to {high}")
    return port


def _outputs(ports, n: int, what: str) -> tuple[int, ...]:
    ports = tuple(ports)
    if len(ports) != n:
        raise ValueError(f"{what}: {len(ports)} outputs for {n} lines")
    for k, p in enumerate(ports):
        _port(p, N_OUTPUTS, f"{what}[{k}]")
    if len(set(ports)) != n:
        raise ValueError(f"{what}: an output appears twice")
    return ports

