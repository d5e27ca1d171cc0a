"""A passive (0T1R) crossbar of two-terminal devices: line potentials in, device voltages, sneak
currents and half-select disturb out.

Device (r, c) sits between row line r and column line c and sees ``V = v_row[r] − v_col[c]``; its
current ``I(r, c)`` flows from the row into the column for V > 0. A driven line carries the
potential its driver sets; a floating line (NaN) settles where Kirchhoff's current law holds on
it. The float solve uses the network of small-signal device conductances G = 1/R (the slope of
``I = sinh(b·V)/(b·R)`` at V = 0), so it is exact for ohmic devices (b = 0) and an approximation
for non-linear ones; device currents are then evaluated with the device model's own I–V at the
solved potentials *(standard model)*.

Bias schemes (PHYSICS.md §1.7; ArC ONE's sneak-path bias: V/3, V/2, float), for a read at
``vread`` with the selected row at vread and the selected column sensed at virtual ground (0 V):

=========  ==========================  =========================
bias       unselected rows             unselected columns
=========  ==========================  =========================
float      floating                    floating
v/2        vread/2                     vread/2
v/3        vread/3                     2·vread/3
ground     0                           0
=========  ==========================  =========================

and for a pulse of ``amplitude`` A on the selected devices:

=========  ===================  ====================  ================  =================
bias       selected rows        selected columns      unselected rows   unselected cols
=========  ===================  ====================  ================  =================
v/2        +A/2                 −A/2                  0                 0
v/3        +A                   0                     A/3               2A/3
ground     +A                   0                     0                 0
float      +A                   0                     floating          floating
=========  ===================  ====================  ================  =================

so a half-selected device sees A/2 under v/2 and A/3 under v/3 (unselected ones −A/3); under
ground every device on a selected row sees the full A. The device model integrates every
disturb exactly like a deliberate pulse (cumulative disturb, VirtualArC-style).

Reads compute currents only: they change no device state (a read does not call the device's
``apply``; a real read below the switching threshold would not switch it either). Virtual time
is the instrument personality's business; the crossbar only reads ``clock.now`` to let the
devices age (retention drift) by the time passed since it last looked.
"""

from __future__ import annotations

import math
import operator

import numpy as np

BIASES = ("float", "v/2", "v/3", "ground")
"""Bias schemes for the unselected lines, by name."""

_DEVICE_API = ("shape", "apply", "current", "measure_current", "resistance", "state", "age")


class Crossbar:
    """A rows×cols crossbar of the devices of ``devices`` (any device array of shape
    ``(rows, cols)`` with the device API of :class:`~mocks.devices.rram.RRAMArray`:
    ``RRAMArray`` or ``WeakResetArray``).

    ``clock``: a :class:`~mocks.clock.VirtualClock` (or None): before each operation the devices
    age by the virtual time passed since the last one, so retention drift happens in virtual
    time. ``rng``: accepted for the bench's uniform constructor signature and kept as
    :attr:`rng`; every draw (read noise, C2C) is the device model's, from its own generator.

    Line potentials are in V, currents in A, times in s. Arrays of the wrong shape or length, or
    non-finite values where a number is needed, raise ``ValueError`` naming the argument.
    """

    def __init__(self, devices, clock=None, rng: np.random.Generator | None = None) -> None:
        missing = [name for name in _DEVICE_API if not hasattr(devices, name)]
        if missing:
            raise ValueError(f"Crossbar devices: expected a device array, {type(devices).__name__}"
                             f" lacks {', '.join(missing)}")
        shape = tuple(devices.shape)
        if len(shape) != 2:
            raise ValueError(f"Crossbar devices: expected shape (rows, cols), got {shape!r}")
        if clock is not None and not hasattr(clock, "now"):
            raise ValueError(f"Crossbar clock: expected a VirtualClock or None, got {clock!r}")
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise ValueError(f"Crossbar rng: expected numpy.random.Generator or None, got {rng!r}")
        self.devices = devices
        self.clock = clock
        self.rng = rng if rng is not None else getattr(devices, "rng", None)
        self._shape = (int(shape[0]), int(shape[1]))
        self._aged_at = float(clock.now) if clock is not None else 0.0
        self._disturb = np.zeros(self._shape)
        self._stress = np.zeros(self._shape)
        self._stress_all = 0.0  # stress time common to every device (uniform biases), s

    # ------------------------------------------------------------------ views
    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols)."""
        return self._shape

    @property
    def rows(self) -> int:
        """Number of row (word) lines."""
        return self._shape[0]

    @property
    def cols(self) -> int:
        """Number of column (bit) lines."""
        return self._shape[1]

    @property
    def conductance(self) -> np.ndarray:
        """Noiseless device conductance 1/R in S, shape (rows, cols)."""
        return 1.0 / self.devices.resistance

    @property
    def state(self) -> np.ndarray:
        """The devices' state codes (normal / short / open / stuck), shape (rows, cols)."""
        return self.devices.state

    @property
    def stress_time(self) -> np.ndarray:
        """Time in s each device has spent under a non-zero bias in :meth:`apply` (copy)."""
        return self._stress + self._stress_all

    @property
    def disturb_time(self) -> np.ndarray:
        """Time in s each device has spent at 0 < |V| < the largest |V| of the same
        :meth:`apply` (half- or third-selected, or on a sneak path), a part of
        :attr:`stress_time` (copy)."""
        return self._disturb.copy()

    # ------------------------------------------------------------------ bias and pulse
    def apply(self, row_v, col_v, dt) -> None:
        """Hold line potentials ``row_v`` (rows,) and ``col_v`` (cols,) in V (NaN = floating)
        for ``dt`` s: every device integrates its voltage, floating lines solved by KCL first.
        Equal potentials on all rows and all columns make one scalar device update."""
        row_v, col_v = self._lines(row_v, col_v)
        self._drive(row_v, col_v, self._duration(dt, "dt"))

    def _drive(self, row_v: np.ndarray, col_v: np.ndarray, dt: float) -> None:
        """:meth:`apply` on checked line potentials (arrays the crossbar may overwrite)."""
        self._age()
        if np.isnan(row_v).any() or np.isnan(col_v).any():
            row_v, col_v = self._solve(row_v, col_v)
        if row_v.min() == row_v.max() and col_v.min() == col_v.max():
            v = float(row_v[0] - col_v[0])
            self.devices.apply(v, dt)
            if v != 0:
                self._stress_all += dt
            return
        v = np.subtract.outer(row_v, col_v)
        self.devices.apply(v, dt)
        if dt > 0:
            u = np.abs(v, out=v)
            biased = u > 0
            np.add(self._stress, dt, out=self._stress, where=biased)
            biased &= u < u.max()
            np.add(self._disturb, dt, out=self._disturb, where=biased)

    def pulse(self, rows, cols, amplitude, width, bias: str = "v/2") -> None:
        """Pulse the devices of ``rows`` × ``cols`` (each an int, slice, int array or bool mask)
        with ``amplitude`` V for ``width`` s, the other lines biased per ``bias`` (module
        docstring table)."""
        sel_r = self._mask(rows, self.rows, "rows")
        sel_c = self._mask(cols, self.cols, "cols")
        a = self._finite(amplitude, "amplitude")
        width = self._duration(width, "width")
        bias = self._bias(bias)
        if sel_r.all() and sel_c.all():  # every device selected: one uniform update
            self._age()
            self.devices.apply(a, width)
            if a != 0:
                self._stress_all += width
            return
        if bias == "v/2":
            row_v, col_v = np.where(sel_r, a / 2, 0.0), np.where(sel_c, -a / 2, 0.0)
        elif bias == "v/3":
            row_v, col_v = np.where(sel_r, a, a / 3), np.where(sel_c, 0.0, 2 * a / 3)
        elif bias == "ground":
            row_v, col_v = np.where(sel_r, a, 0.0), np.zeros(self.cols)
        else:
            row_v, col_v = np.where(sel_r, a, np.nan), np.where(sel_c, 0.0, np.nan)
        self._drive(row_v, col_v, width)

    # ------------------------------------------------------------------ currents
    def currents(self, row_v, col_v, noisy: bool = True) -> np.ndarray:
        """Device currents in A, shape (rows, cols), for the line potentials (floating lines
        solved by KCL); with the device read noise when ``noisy``. No state change."""
        row_v, col_v = self._lines(row_v, col_v)
        self._age()
        if np.isnan(row_v).any() or np.isnan(col_v).any():
            row_v, col_v = self._solve(row_v, col_v)
        return self._iv(np.subtract.outer(row_v, col_v), noisy)

    def line_currents(self, row_v, col_v, noisy: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Currents in A flowing into each row line from its driver (rows,) and out of each
        column line into its driver (cols,): what a TIA on the line measures, sneak currents
        included. Floating lines carry 0."""
        row_v, col_v = self._lines(row_v, col_v)
        i = self.currents(row_v, col_v, noisy)
        row_in, col_out = i.sum(axis=1), i.sum(axis=0)
        row_in[np.isnan(row_v)] = 0.0
        col_out[np.isnan(col_v)] = 0.0
        return row_in, col_out

    def read_device(self, r: int, c: int, vread: float, bias: str = "v/2",
                    noisy: bool = True) -> float:
        """Current in A measured on column ``c`` with row ``r`` at ``vread``, column ``c`` at 0 and
        the other lines per ``bias``: the selected device's current plus the sneak currents of
        the other devices on column ``c``."""
        r = self._line(r, self.rows, "r")
        c = self._line(c, self.cols, "c")
        vread = self._finite(vread, "vread")
        bias = self._bias(bias)
        self._age()
        if bias == "float":
            row_v = np.full(self.rows, np.nan)
            col_v = np.full(self.cols, np.nan)
            row_v[r], col_v[c] = vread, 0.0
            row_v, _ = self._solve(row_v, col_v)
        else:
            row_v = np.full(self.rows, self._unselected_row(vread, bias))
            row_v[r] = vread
        return float(self._iv(row_v, noisy, (slice(None), c)).sum())

    def read_row(self, r: int, vread: float, bias: str = "v/2", noisy: bool = True) -> np.ndarray:
        """Currents in A measured on every column (cols,), with row ``r`` at ``vread``, every
        column sensed at 0 and the other rows per ``bias`` (float and ground: the other rows sit
        at 0, so there is no sneak current; v/2, v/3: at vread/2, vread/3). ArC TWO's
        ``read_slice``."""
        r = self._line(r, self.rows, "r")
        vread = self._finite(vread, "vread")
        bias = self._bias(bias)
        self._age()
        selected = self._iv(vread, noisy, (r, slice(None)))
        u = self._unselected_row(vread, bias)
        if u == 0:
            return selected
        others = np.delete(np.arange(self.rows), r)
        return selected + self._iv(u, noisy, (others, slice(None))).sum(axis=0)

    def read_all(self, vread: float, bias: str = "v/2", noisy: bool = True) -> np.ndarray:
        """Every device read once, (rows, cols) in A, vectorised.

        v/2, v/3, ground: entry (r, c) is :meth:`read_device` (r, c) (unselected columns do not
        change the current of the sensed column): ``I_rc(vread) + Σ_{r'≠r} I_r'c(u)`` with u the
        unselected-row potential. float: a whole-array read is row by row, row r at vread,
        *every* column sensed at 0 and the other rows floating (ArC TWO ``read_all`` /
        ``read_slice``); the floating rows then settle at 0 V, so entry (r, c) is exactly
        ``I_rc(vread)`` — no sneak current, unlike a single-device float read.
        Noise: each device current carries its own read-noise draw; the sneak terms of one
        column share their draws across the reads of that column (independent draws for every
        read would cost rows×cols×rows).
        """
        vread = self._finite(vread, "vread")
        bias = self._bias(bias)
        self._age()
        out = self._iv(vread, noisy)
        u = self._unselected_row(vread, bias)
        if u != 0:
            sneak = self._iv(u, noisy)
            out += sneak.sum(axis=0)
            out -= sneak
        return out

    # ------------------------------------------------------------------ internals
    def _iv(self, v, noisy: bool, index=Ellipsis) -> np.ndarray:
        d = self.devices
        return d.measure_current(v, index) if noisy else d.current(v, index)

    def _age(self) -> None:
        """Let the devices age by the virtual time passed since the last look at the clock."""
        if self.clock is None:
            return
        now = float(self.clock.now)
        if now > self._aged_at:
            self.devices.age(now - self._aged_at)
            self._aged_at = now

    def _solve(self, row_v: np.ndarray, col_v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Line potentials with the floating (NaN) ones replaced by the KCL solution on G = 1/R.

        The smaller floating set is kept as unknowns; the other is eliminated (its block of the
        nodal matrix is diagonal: a line touches only lines of the other kind). If every line
        floats nothing is driven and every potential is 0.
        """
        fr, fc = np.isnan(row_v), np.isnan(col_v)
        if fr.all() and fc.all():
            return np.zeros(self.rows), np.zeros(self.cols)
        g = 1.0 / self.devices.resistance
        if np.count_nonzero(fr) <= np.count_nonzero(fc):
            row_v, col_v = _kcl(g, row_v, fr, col_v, fc)
        else:
            col_v, row_v = _kcl(g.T, col_v, fc, row_v, fr)
        return row_v, col_v

    def _lines(self, row_v, col_v) -> tuple[np.ndarray, np.ndarray]:
        out = []
        for name, v, n in (("row_v", row_v, self.rows), ("col_v", col_v, self.cols)):
            v = np.array(v, dtype=float)  # a copy: the caller's array is never changed
            if v.shape != (n,):
                raise ValueError(f"Crossbar {name}: expected shape ({n},), got {v.shape}")
            if np.isinf(v).any():
                raise ValueError(f"Crossbar {name}: potentials must be finite or NaN (floating)")
            out.append(v)
        return out[0], out[1]

    @staticmethod
    def _mask(sel, n: int, name: str) -> np.ndarray:
        mask = np.zeros(n, dtype=bool)
        try:
            mask[sel] = True
        except (IndexError, TypeError, ValueError) as exc:
            raise ValueError(f"Crossbar {name}: {sel!r} does not select lines of {n}: {exc}"
                             ) from None
        return mask

    @staticmethod
    def _line(k, n: int, name: str) -> int:
        try:
            k = operator.index(k)
        except TypeError:
            raise ValueError(f"Crossbar {name}: expected an int line number, got {k!r}") from None
        if not 0 <= k < n:
            raise ValueError(f"Crossbar {name}: line {k} out of range 0..{n - 1}")
        return k

    @classmethod
    def _duration(cls, t, name: str) -> float:
        t = cls._finite(t, name)
        if t < 0:
            raise ValueError(f"Crossbar {name}: expected a time >= 0 s, got {t!r}")
        return t

    @staticmethod
    def _finite(x, name: str) -> float:
        try:
            x = float(x)
        except (TypeError, ValueError):
            raise ValueError(f"Crossbar {name}: expected a number, got {x!r}") from None
        if not math.isfinite(x):
            raise ValueError(f"Crossbar {name}: expected a finite number, got {x!r}")
        return x

    @staticmethod
    def _bias(bias: str) -> str:
        if bias not in BIASES:
            raise ValueError(f"Crossbar bias: {bias!r} unknown; valid: {', '.join(BIASES)}")
        return bias

    @staticmethod
    def _unselected_row(vread: float, bias: str) -> float:
        """Potential of the unselected rows in a read (float: they settle at 0 when every
        column is driven at 0)."""
        return {"v/2": vread / 2, "v/3": vread / 3}.get(bias, 0.0)


def _kcl(g: np.ndarray, va: np.ndarray, fa: np.ndarray, vb: np.ndarray, fb: np.ndarray
         ) -> tuple[np.ndarray, np.ndarray]:
    """Solve KCL for the floating lines of a bipartite network: ``g[i, j]`` connects a-line i to
    b-line j; ``fa``, ``fb`` mark floating lines (NaN in ``va``, ``vb``, filled in place).

    Floating a-line i: Σ_j g_ij (v_i − v_j) = 0; floating b-line j likewise. The b unknowns are
    eliminated: v_b = (c_b + g_abᵀ v_a)/d_b (d: total conductance on the line, c: current from
    the driven lines), leaving (diag(d_a) − g_ab diag(1/d_b) g_abᵀ) v_a = c_a + g_ab (c_b/d_b).
    """
    ia, ib = np.flatnonzero(fa), np.flatnonzero(fb)
    ka, kb = np.flatnonzero(~fa), np.flatnonzero(~fb)
    d_a = g[ia].sum(axis=1)
    d_b = g[:, ib].sum(axis=0)
    c_a = g[np.ix_(ia, kb)] @ vb[kb]
    c_b = va[ka] @ g[np.ix_(ka, ib)]
    if ia.size:
        g_ab = g[np.ix_(ia, ib)]
        w = g_ab / d_b
        m = w @ g_ab.T
        m *= -1.0
        m[np.diag_indices_from(m)] += d_a
        v_a = np.linalg.solve(m, c_a + w @ c_b)
        va[ia] = v_a
        vb[ib] = (c_b + v_a @ g_ab) / d_b
    else:
        vb[ib] = c_b / d_b
    return va, vb
