"""Base of the memristor-array procedures: the ``array`` role, device selection, the array file.

Every array procedure works through :class:`labctl.array.ArrayController` (whatever backend the
station names), writes its summary rows to the pymeasure results file and everything else — the
pulse log of every pulse applied to every device, maps, per-device traces — to the HDF5 array
file beside it (:mod:`labctl.arrayfile`).
"""

from __future__ import annotations

import logging
import math

import numpy as np
from pymeasure.experiment import FloatParameter, ListParameter, Metadata, Parameter

from labctl.array import BIAS_SCHEMES, ArrayController, Operation, Pulse, PulseLog, Read, Selection
from labctl.arrayfile import ArrayFile
from labctl.errors import LimitError
from procedures.base import StationProcedure
from procedures.sidecar import SidecarPath, close_array_file

log = logging.getLogger(__name__)

BIAS_CHOICES = ("auto", *BIAS_SCHEMES)
# "auto" takes the first scheme the controller has. Reads: with every other line at 0 V the
# sensed column carries the selected device's current alone (a passive crossbar's exact read);
# under v/2 or v/3 the half-biased lines add their devices' currents. Pulses: v/3 puts the least
# voltage (A/3) on unselected devices, v/2 puts A/2 on half-selected ones, ground the full A on
# the whole selected row.
READ_BIAS_PREFERENCE = ("ground", "v/3", "v/2", "float")
PULSE_BIAS_PREFERENCE = ("v/3", "v/2", "float", "ground")


def parse_indices(text: str, n: int, what: str) -> np.ndarray:
    """Indices from ``"all"``, ``"3"``, ``"0-7"`` or ``"0-3,8,10-11"`` (inclusive ranges)."""
    text = str(text).strip().lower()
    if text in ("", "all", "*"):
        return np.arange(n)
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise ValueError(f"{what} = {text!r}: expected 'all', an index, or ranges like "
                             "'0-7,12'") from None
    bad = [k for k in out if not 0 <= k < n]
    if bad:
        raise ValueError(f"{what} = {text!r}: index {bad[0]} outside 0..{n - 1}")
    return np.array(sorted(set(out)), dtype=np.intp)


def describe(values) -> dict[str, float]:
    """Mean, standard deviation, standard error of the mean and median of finite ``values``."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"n": 0, "mean": math.nan, "std": math.nan, "sem": math.nan, "median": math.nan}
    std = float(v.std(ddof=1)) if v.size > 1 else math.nan
    return {"n": int(v.size), "mean": float(v.mean()), "std": std,
            "sem": std / math.sqrt(v.size) if v.size > 1 else math.nan,
            "median": float(np.median(v))}


class ArrayProcedure(SidecarPath, StationProcedure):
    """A procedure on a memristor array through the station's ``array`` controller.

    Subclasses implement ``execute`` using :attr:`array` (the controller), :meth:`devices`
    (the selected cells), :attr:`file` (the array file, opened at startup after the check),
    :meth:`read_bias_scheme` and :meth:`pulse_bias_scheme`.
    """

    ROLES = ("array",)
    DEFAULT_SIM_STATION = "sim-crossbar-arc2"

    rows = Parameter("Rows", default="all")
    cols = Parameter("Columns", default="all")
    v_read = FloatParameter("Read voltage", units="V", default=0.2, minimum=-5, maximum=5)
    read_bias = ListParameter("Unselected lines in reads", choices=BIAS_CHOICES, default="auto")
    pulse_bias = ListParameter("Unselected lines in pulses", choices=BIAS_CHOICES,
                               default="auto")

    array_shape = Metadata("Array shape", fget="_shape_text")
    array_capabilities = Metadata("Array capabilities", fget="_capabilities_text")

    LIMITED = {"v_read": "voltage"}
    PULSES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = ()
    """The run's pulses for the check before it starts: groups of (amplitude parameters, width
    parameters), every amplitude of a group applied with every width of it (an amplitude of 0
    means no pulse)."""
    READS_AFTER_PULSES = False
    """True if the run reads after its pulses within one operation (pulse-then-read, trains
    with reads): the planned pulses then carry the read voltage and the read bias."""

    def _shape_text(self) -> str:
        return "x".join(str(n) for n in self.station.instrument("array").shape)

    def _capabilities_text(self) -> str:
        return self.station.instrument("array").capabilities.describe()

    # ------------------------------------------------------------------ checks
    def check_instruments(self, station) -> list[str]:
        """Problems with this parameter set on the station's controller (empty: fine).

        Called before the run (CLI, GUI, Python), once the controller answers; subclasses
        extend it with :meth:`check_array`."""
        array = station.instrument("array")
        problems = []
        for check in (lambda: self.devices(array.shape), lambda: self.read_bias_scheme(array),
                      lambda: self.pulse_bias_scheme(array)):
            try:
                check()
            except ValueError as exc:
                problems.append(str(exc))
        return problems or self.check_array(array)  # the array checks need a selection

    def check_array(self, array: ArrayController) -> list[str]:
        """Problems with ``array`` for this parameter set: every planned operation
        (:meth:`planned_ops`) checked by the controller itself
        (:meth:`~labctl.array.ArrayController.validate`: its capabilities, the chip limits,
        what the backend can run), each problem named by the parameters behind it."""
        problems = []
        for label, op in self.planned_ops(array):
            try:
                array.validate([op])
            except LimitError as exc:
                problems.append(f"{label}: {exc}")
        return problems

    def reads_after_pulses(self, array: ArrayController) -> bool:
        """Whether the run reads after its pulses within one operation on ``array``
        (:attr:`READS_AFTER_PULSES`)."""
        return self.READS_AFTER_PULSES

    def planned_ops(self, array: ArrayController) -> list[tuple[str, Operation]]:
        """The kinds of operation this run will ask of ``array``, at the extremes of its
        parameters, each with a label naming those parameters: a read of the selection at
        ``v_read`` and the pulses of :attr:`PULSES` (extend for more)."""
        sel = self.selection(array.shape)
        read_bias, bias = self.read_bias_scheme(array), self.pulse_bias_scheme(array)
        ops: list[tuple[str, Operation]] = [
            (f"v_read = {self.v_read:g} V, read_bias = {read_bias}",
             Read(sel, self.v_read, read_bias))]
        vread = self.v_read if self.reads_after_pulses(array) else None
        for amplitudes, widths in self.PULSES:
            for a_name in amplitudes:
                amplitude = getattr(self, a_name)
                if amplitude == 0:
                    continue
                for w_name in widths:
                    width = self.planned_width(array, w_name)
                    label = (f"{a_name} = {amplitude:g} V, {w_name} = {width:g} s, "
                             f"pulse_bias = {bias}"
                             + (f", read_bias = {read_bias}" if vread is not None else ""))
                    ops.append((label, Pulse(sel, amplitude, width, bias, vread,
                                             read_bias if vread is not None else None)))
        return ops

    def planned_width(self, array: ArrayController, name: str) -> float:
        """The width (s) the run uses for width parameter ``name`` on ``array`` (the
        parameter's value; a procedure that fits its widths to the controller overrides it)."""
        return float(getattr(self, name))

    # ------------------------------------------------------------------ selection, bias
    @property
    def array(self) -> ArrayController:
        return self.instruments["array"]

    @property
    def shape(self) -> tuple[int, int]:
        return self.array.shape

    def devices(self, shape: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) of every selected device, flat, row-major."""
        n_rows, n_cols = self.shape if shape is None else shape
        rr = parse_indices(self.rows, n_rows, "rows")
        cc = parse_indices(self.cols, n_cols, "cols")
        grid_r, grid_c = np.meshgrid(rr, cc, indexing="ij")
        return grid_r.reshape(-1), grid_c.reshape(-1)

    def selection(self, shape: tuple[int, int] | None = None) -> Selection:
        """The selected devices as one selection (``all`` when the whole array is selected)."""
        shape = self.shape if shape is None else shape
        rr, cc = self.devices(shape)
        if rr.size == shape[0] * shape[1]:
            return Selection.all()
        return Selection.cells(rr, cc)

    def read_bias_scheme(self, array: ArrayController | None = None) -> str:
        """The bias scheme of unselected lines in reads (``read_bias``, or the best available)."""
        return self._scheme("read_bias", READ_BIAS_PREFERENCE, array)

    def pulse_bias_scheme(self, array: ArrayController | None = None) -> str:
        """The bias scheme of unselected lines in pulses (``pulse_bias``, or the best)."""
        return self._scheme("pulse_bias", PULSE_BIAS_PREFERENCE, array)

    def _scheme(self, name: str, preference: tuple[str, ...], array) -> str:
        available = (self.array if array is None else array).capabilities.bias_schemes
        chosen = getattr(self, name)
        if chosen != "auto":
            if chosen not in available:
                raise ValueError(f"{name} = {chosen!r} not available on this controller "
                                 f"(available: {', '.join(available)})")
            return chosen
        return next(b for b in preference if b in available)

    def conductance_map(self, vread: float | None = None) -> np.ndarray:
        """The whole array's conductance (S) at the read voltage, (rows, cols)."""
        vread = self.v_read if vread is None else vread
        return np.asarray(self.array.read_all(vread, self.read_bias_scheme()), float) / vread

    # ------------------------------------------------------------------ lifecycle
    def startup(self) -> None:
        super().startup()
        problems = self.check_instruments(self.station)  # also when run without the runner
        if problems:
            raise ValueError("; ".join(problems))
        self.file = ArrayFile(self._sidecar(), "w")
        self.file.set_attrs(procedure=getattr(self, "NAME", type(self).__name__),
                            station=self.station.describe(), seed=str(self.station.seed),
                            results_file=str(self.results_path), shape=list(self.shape))
        self.array.pulse_log = PulseLog(sink=self.file.append_pulses)

    def shutdown(self) -> None:
        super().shutdown()
        release_array_file(getattr(self, "instruments", {}), ("array",), self.file)


def pulse_problems(array: ArrayController, pulses) -> list[str]:
    """Problems with single-device pulses on ``array``, each checked by the controller itself
    (:meth:`~labctl.array.ArrayController.validate`: its ranges, the chip limits, the backend).
    ``pulses``: (label naming the parameters, amplitude in V, width in s)."""
    problems = []
    for label, amplitude, width in pulses:
        try:
            array.validate([Pulse(Selection.cells([0], [0]), amplitude, width)])
        except LimitError as exc:
            problems.append(f"{label}: {exc}")
    return problems


def release_array_file(instruments: dict, roles, file: ArrayFile | None) -> None:
    """Detach the pulse logs of the arrays of ``roles`` from the run's array file; close it."""
    for role in roles:
        array = instruments.get(role)
        if array is not None:
            array.pulse_log.sink = None
    close_array_file(file)
