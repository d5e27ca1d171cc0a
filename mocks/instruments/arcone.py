"""ArC ONE (ArC Instruments) memristor characterisation board: its serial firmware protocol.

The board is an mbed microcontroller behind a USB serial port (921600 baud, 8 data bits, even
parity, 1 stop bit) driving 32 word lines and 32 bit lines. The host writes text lines; the board
answers with raw little-endian float32 values (one per read, triplets for module jobs), a text line
``1`` to acknowledge a session configuration, and two uint16 for the firmware version.

Sources (the authors' host software, ``arc-instruments/arc1_pyqt``; read for facts only):

- ``arc1pyqt/instrument.py`` — serial settings; ``"00"`` reset; ``"0"`` session configuration
  (read cycles, words, bits, read mode, session mode, sneak-path option, Vread; the board answers
  a line ``1``); ``"01"`` read mode + Vread; ``"02"`` select (close one crosspoint);
  ``"1"`` read_one; ``"3"`` pulseread_one; ``"04"`` pulse_active (the selected device, no
  reply); ``"999"`` firmware version as ``struct "2H"``; replies read as ``np.float32``. Word and
  bit lines are sent as ``"%d\\n"``, voltages and widths as decimal text (``%f`` there, Python's
  ``str(float)`` in the modules, so exponents such as ``9e-08`` occur; the firmware takes both).
- ``arc1pyqt/ControlWidgets/manual_ops_widget.py`` — read all: ``"2"``, read type ``1`` (whole
  array, then words and bits; the board streams words·bits floats, word-major, word and bit
  numbered from 1) or ``2`` (custom array: words, bits, the number of cells, then a word/bit pair
  per cell, one float answered per pair); the negative-Vread rule (TIA4P with Vread < 0 is sent
  as mode 3); pulse widths clamped to 90 ns..10 s by the GUI.
- ``arc1pyqt/VirtualArC/virtualarc.py`` — the authors' own emulation of the board: how many
  parameter lines each job reads, the 1-based word/bit indexing, the FormFinder (``14``),
  CurveTracer (``201``) and Endurance (``191``) sequences, (R, V, pw) triplets ending with
  (0, 0, 0), V/2 half-select during pulses, ±1 % read noise.
- ``arc1pyqt/ProgPanels/FormFinder.py`` (jobs ``14`` and ``141``: parameter order, the series
  resistor codes 7 = none, 1..4 = 1 kΩ..1 MΩ, the first triplet being the initial read),
  ``arc1pyqt/ProgPanels/CurveTracer.py`` (parameter order: V+ max, V− max, start, step, step
  width − 2 ms, interpulse, current cut-offs in A, cycles, staircase/pulsed, span option,
  halt-and-return), ``arc1pyqt/ControlWidgets/new_session_dialog.py`` (sneak path 0 = V/3,
  1 = V/2; 50 read cycles); the floating option 256 after PHYSICS.md §1.5.

What the firmware does that the host software does not show (the firmware is not public) is
modelled and marked *(mock)*: the CurveTracer current cut-off (the step whose |I| reaches it ends
the rising branch; with halt-and-return the cycle ends there, otherwise it turns back down), the
series resistor as a divider on the pulse, out-of-range word/bit lines answered with NaN,
unknown job codes ignored (and listed in :attr:`ArcOnePersonality.errors`), lenient number
parsing like C's ``atof``/``atoi``.

Read modes (classic, TIA, TIA4P, TIA4P with negative Vread) are kept as the session sets them;
they differ in the board's front end, not in what the mock reports (the same R for all).

Physics: every read is a real read of the :class:`~mocks.devices.crossbar.Crossbar` — the
selected word line at Vread, the selected bit line sensed at 0 V — and the board reports
``R = Vread / I``, so read noise and any sneak current show up in R. The sneak-path option is a
*write* option (arc1_pyqt labels it "Write: V/3" / "Write: V/2"): pulses go through
``Crossbar.pulse`` with the unselected lines at the V/3 or V/2 levels (half-select disturb
included), while reads hold the unselected lines at 0 V *(mock: the TIA's virtual ground on the
sensed bit line, ground elsewhere — no sneak current)*; the floating option (256) leaves the
unselected lines open in reads as in pulses, and then sneak paths add to every read (each read
of a read-all solves its own floating network). Positive amplitudes are the SET direction of the
simulated RRAM.

Virtual time *(estimates, documented here because the board's timing is not published)*: every
byte on the wire costs 11 bit times at 921600 baud; a read ``READ_SETTLE_S`` plus
``read cycles × ADC_SAMPLE_S`` (50 cycles: 1 ms; a 32×32 read-all ≈ 1.07 s with the transfer);
a pulse its width plus ``PULSE_OVERHEAD_S``; a CurveTracer step its width plus the 2 ms that
CurveTracer.py subtracts from the step width for the measurement; a reset ``BOOT_S`` (the 1 s
arc1_pyqt waits after ``"00"``).
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np

from mocks.clock import VirtualClock

FIRMWARE_VERSION = (1, 9)   # the mock's own; reported as two little-endian uint16
MAX_LINES = 32              # word and bit channels of the board
BYTE_S = 11 / 921600        # start + 8 data + parity + stop bits per byte
READ_SETTLE_S = 500e-6      # crosspoint and amplifier settling per read (estimate)
ADC_SAMPLE_S = 10e-6        # per read cycle (estimate)
PULSE_OVERHEAD_S = 20e-6    # DAC set-up and switching per pulse (estimate)
SELECT_S = 20e-6            # closing a crosspoint (estimate)
BOOT_S = 1.0                # mbed reset (arc1_pyqt waits 1 s after "00")
CT_MEASURE_S = 2e-3         # CurveTracer measurement per step (CurveTracer.py: width − 2 ms)
MIN_PULSE_S, MAX_PULSE_S = 90e-9, 10.0
MAX_VOLTAGE = 12.0
MAX_LINE_BYTES = 256        # longer lines overflow the firmware's line buffer
HISTORY = 100_000           # most entries kept in ``jobs`` and ``errors`` (oldest half dropped)

SNEAK_PATH = {0: "v/3", 1: "v/2", 256: "float"}
FLOATING = 256
READ_MODES = {0: "classic", 1: "tia", 2: "tia4p", 3: "tia4p-neg"}
SERIES_RESISTOR_OHM = {7: 0.0, 1: 1e3, 2: 1e4, 3: 1e5, 4: 1e6}

_FLOAT = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INT = re.compile(r"\s*[+-]?\d+")

Lines = Generator[None, str, None]


@dataclass
class Session:
    """The session configuration the ``"0"`` command sets (power-on values as HWConfig)."""

    cycles: int = 50
    words: int = 32
    bits: int = 32
    read_mode: int = 2
    session_mode: int = 0
    sneak_path: int = 1
    vread: float = 0.5

    @property
    def bias(self) -> str:
        """Unselected lines during a pulse: the sneak-path option."""
        return SNEAK_PATH[self.sneak_path]

    @property
    def read_bias(self) -> str:
        """Unselected lines during a read: grounded, or open with the floating option."""
        return "float" if self.sneak_path == FLOATING else "ground"

    @property
    def read_time(self) -> float:
        return READ_SETTLE_S + self.cycles * ADC_SAMPLE_S


class ArcOnePersonality:
    """The ArC ONE firmware acting on a simulated crossbar (``device``).

    Bytes in through :meth:`feed`, bytes out as its return value. ``transactions`` counts the
    host commands the board has carried out (one per job code, whatever its parameters);
    ``jobs`` lists their codes; ``errors`` what the firmware ignored or could not do.
    """

    LINK = "serial"

    def __init__(self, clock: VirtualClock | None = None, device=None, device_index: int = 0,
                 rng: np.random.Generator | None = None,
                 firmware: tuple[int, int] | list[int] = FIRMWARE_VERSION):
        if device is None or not hasattr(device, "read_device"):
            raise ValueError("the ArC ONE needs a crossbar device (a device with crossbar: true)")
        rows, cols = device.shape
        if rows > MAX_LINES or cols > MAX_LINES:
            raise ValueError(f"a {rows}x{cols} crossbar does not fit the ArC ONE's "
                             f"{MAX_LINES} word and {MAX_LINES} bit lines")
        self.device = device
        self.rows, self.cols = rows, cols
        self.clock = clock if clock is not None else getattr(device, "clock", None) or \
            VirtualClock()
        self.rng = rng if rng is not None else np.random.default_rng(0)
        major, minor = (int(x) for x in firmware)
        self.firmware = (major, minor)
        self.transactions = 0
        self.jobs: list[str] = []
        self.errors: list[str] = []
        self.session = Session(words=rows, bits=cols)
        self.selected: tuple[int, int] | None = None
        self._handlers = {
            "00": self._reset, "0": self._configure, "01": self._update_read,
            "02": self._select, "04": self._pulse_active, "1": self._read_one,
            "2": self._read_all, "3": self._pulse_read, "999": self._firmware_version,
            "14": self._form_finder, "141": self._form_finder_modal,
            "201": self._curve_tracer, "191": self._endurance,
        }
        self.reset_link()

    # ------------------------------------------------------------------ link
    def reset_link(self) -> None:
        """Forget any partly received command and pending output (a new host connection)."""
        self._inbox = bytearray()
        self._out = bytearray()
        self._parser = self._firmware_loop()
        next(self._parser)

    def feed(self, data: bytes) -> bytes:
        """Consume what the host wrote; return what the board sends back (may be empty)."""
        self.clock.advance(len(data) * BYTE_S)
        self._inbox += data
        while True:
            end = self._inbox.find(b"\n")
            if end < 0:
                if len(self._inbox) > MAX_LINE_BYTES:
                    self.errors.append(f"line longer than {MAX_LINE_BYTES} bytes dropped")
                    self._inbox.clear()
                break
            line = self._inbox[:end].decode("latin-1").rstrip("\r")
            del self._inbox[:end + 1]
            self._parser.send(line)
        out = bytes(self._out)
        self._out.clear()
        self.clock.advance(len(out) * BYTE_S)
        return out

    def _firmware_loop(self) -> Lines:
        while True:
            code = (yield).strip()
            handler = self._handlers.get(code)
            if handler is None:
                if code:
                    self.errors.append(f"unknown job {code!r} ignored")
                continue
            try:
                yield from handler()
            except ValueError as exc:  # e.g. the crossbar refusing a value: the job is dropped
                self.errors.append(f"job {code!r} failed: {exc}")
                continue
            self.transactions += 1
            self.jobs.append(code)
            for record in (self.jobs, self.errors):
                if len(record) > HISTORY:
                    del record[:HISTORY // 2]

    # ------------------------------------------------------------------ parsing helpers
    def _number(self, text: str, pattern: re.Pattern, kind) -> float | int:
        match = pattern.match(text)
        if match is None:
            self.errors.append(f"{text!r} is not a number (read as 0)")
            return kind(0)
        return kind(float(match.group())) if kind is int else float(match.group())

    def _float(self, text: str) -> float:
        return self._number(text, _FLOAT, float)

    def _int(self, text: str) -> int:
        return self._number(text, _INT, int)

    def _floats(self, n: int) -> Generator[None, str, list[float]]:
        values = []
        for _ in range(n):
            values.append(self._float((yield)))
        return values

    def _ints(self, n: int) -> Generator[None, str, list[int]]:
        values = []
        for _ in range(n):
            values.append(self._int((yield)))
        return values

    def _cell(self) -> Generator[None, str, tuple[int, int] | None]:
        """Read a word and a bit line (1-based); None if outside the session's array."""
        word = self._int((yield))
        bit = self._int((yield))
        if not (1 <= word <= min(self.session.words, self.rows)
                and 1 <= bit <= min(self.session.bits, self.cols)):
            self.errors.append(f"device W={word} B={bit} outside the "
                               f"{self.session.words}x{self.session.bits} session")
            return None
        return word - 1, bit - 1

    def _send_floats(self, *values: float) -> None:
        self._out += struct.pack(f"<{len(values)}f", *values)

    # ------------------------------------------------------------------ physics
    def _resistance(self, row: int, col: int, voltage: float | None = None) -> float:
        """One read of device (row, col) (0-based) at ``voltage`` (default Vread): R in Ω."""
        v = self.session.vread if voltage is None else voltage
        self.clock.advance(self.session.read_time)
        current = float(self.device.read_device(row, col, v, self.session.read_bias))
        if current == 0.0 or not math.isfinite(current):
            return math.inf
        return v / current

    def _apply_pulse(self, row: int, col: int, amplitude: float, width: float,
                     series_ohm: float = 0.0) -> None:
        if not MIN_PULSE_S <= width <= MAX_PULSE_S:
            self.errors.append(f"pulse width {width:g} s clamped to "
                               f"{MIN_PULSE_S:g}..{MAX_PULSE_S:g} s")
            width = min(max(width, MIN_PULSE_S), MAX_PULSE_S)
        if abs(amplitude) > MAX_VOLTAGE:
            self.errors.append(f"pulse amplitude {amplitude:g} V clamped to ±{MAX_VOLTAGE:g} V")
            amplitude = math.copysign(MAX_VOLTAGE, amplitude)
        if series_ohm > 0:  # (mock) divider with the device's resistance before the pulse
            r_dev = abs(self._device_resistance(row, col))
            amplitude = amplitude * r_dev / (r_dev + series_ohm)
        self.clock.advance(PULSE_OVERHEAD_S)
        t0 = self.clock.now
        self.device.pulse([row], [col], amplitude, width, self.session.bias)
        if self.clock.now - t0 < width * (1 - 1e-9):  # the crossbar did not account the width
            self.clock.advance(width)

    def _device_resistance(self, row: int, col: int) -> float:
        devices = self.device.devices
        resistance = np.asarray(devices.resistance).reshape(self.rows, self.cols)
        return float(resistance[row, col])

    # ------------------------------------------------------------------ basic jobs
    def _reset(self) -> Lines:
        """``00``: mbed reset — session back to power-on values, crosspoints open."""
        self.clock.advance(BOOT_S)
        self.session = Session(words=self.rows, bits=self.cols)
        self.selected = None
        return
        yield

    def _configure(self) -> Lines:
        """``0``: cycles, words, bits, read mode, session mode, sneak path, Vread → ``1``."""
        cycles, words, bits, mode, smode, sneak = yield from self._ints(6)
        vread = self._float((yield))
        s = Session(self.session.cycles, self.session.words, self.session.bits,
                    self.session.read_mode, self.session.session_mode, self.session.sneak_path,
                    vread)
        if cycles >= 1:
            s.cycles = cycles
        else:
            self.errors.append(f"read cycles {cycles} ignored")
        if 1 <= words <= self.rows and 1 <= bits <= self.cols:
            s.words, s.bits = words, bits
        else:
            self.errors.append(f"array {words}x{bits} does not fit the {self.rows}x{self.cols} "
                               "crossbar; kept")
        if mode in READ_MODES:
            s.read_mode = mode
        else:
            self.errors.append(f"read mode {mode} unknown; kept")
        s.session_mode = smode
        if sneak in SNEAK_PATH:
            s.sneak_path = sneak
        else:
            self.errors.append(f"sneak-path option {sneak} unknown; kept")
        self.session = s
        self._out += b"1\n"

    def _update_read(self) -> Lines:
        """``01``: read mode and Vread."""
        mode = self._int((yield))
        vread = self._float((yield))
        if mode in READ_MODES:
            self.session.read_mode = mode
        else:
            self.errors.append(f"read mode {mode} unknown; kept")
        self.session.vread = vread

    def _select(self) -> Lines:
        """``02``: close the crosspoint of one device (the target of ``04``)."""
        cell = yield from self._cell()
        self.clock.advance(SELECT_S)
        self.selected = cell

    def _pulse_active(self) -> Lines:
        """``04``: pulse the selected device (amplitude V, width s); no reply."""
        amplitude, width = yield from self._floats(2)
        if self.selected is None:
            self.errors.append("pulse with no device selected ignored")
            return
        self._apply_pulse(*self.selected, amplitude, width)

    def _read_one(self) -> Lines:
        """``1``: word, bit → R."""
        cell = yield from self._cell()
        self._send_floats(math.nan if cell is None else self._resistance(*cell))

    def _pulse_read(self) -> Lines:
        """``3``: word, bit, amplitude, width → pulse, then R at Vread."""
        cell = yield from self._cell()
        amplitude, width = yield from self._floats(2)
        if cell is None:
            self._send_floats(math.nan)
            return
        self._apply_pulse(*cell, amplitude, width)
        self._send_floats(self._resistance(*cell))

    def _read_all(self) -> Lines:
        """``2``: type 1 (words, bits → words·bits R, word-major) or type 2 (custom array)."""
        kind = self._int((yield))
        words = self._int((yield))
        bits = self._int((yield))
        if kind == 1:
            self._read_block(words, bits)
        elif kind == 2:
            count = self._int((yield))
            for _ in range(max(count, 0)):
                cell = yield from self._cell()
                self._send_floats(math.nan if cell is None else self._resistance(*cell))
        else:
            self.errors.append(f"read-all type {kind} unknown; ignored")

    def _read_block(self, words: int, bits: int) -> None:
        words, bits = max(words, 0), max(bits, 0)
        out = np.full((words, bits), np.nan, dtype="<f4")
        w, b = min(words, self.rows), min(bits, self.cols)
        if (w, b) != (words, bits):
            self.errors.append(f"read-all of {words}x{bits} beyond the {self.rows}x{self.cols} "
                               "crossbar: NaN there")
        if w and b:
            vread = self.session.vread
            self.clock.advance(w * b * self.session.read_time)
            if self.session.read_bias == "ground":  # device by device, vectorised
                currents = np.asarray(self.device.read_all(vread, "ground"))[:w, :b]
            else:  # each read with the other lines open: its own sneak network
                currents = np.array([[self.device.read_device(r, c, vread, "float")
                                      for c in range(b)] for r in range(w)])
            with np.errstate(divide="ignore", invalid="ignore"):
                r = np.where(currents != 0, vread / currents, np.inf)
            out[:w, :b] = r
        self._out += out.tobytes()

    def _firmware_version(self) -> Lines:
        """``999``: two little-endian uint16, (major, minor)."""
        self._out += struct.pack("<2H", *self.firmware)
        return
        yield

    # ------------------------------------------------------------------ module jobs
    def _devices(self) -> Generator[None, str, int]:
        """The device count line; the devices themselves come one pair at a time."""
        return self._int((yield))

    def _form_finder(self, modal: bool = False) -> Lines:
        """``14`` (``141``): Vmin, Vstep, Vmax, pw min, pw step (% or s), pw max, interpulse,
        R threshold, R threshold %, [pw mode,] series R code, pulses per step, device count,
        then per device word, bit → (R, V, pw) triplets, (0, 0, 0) at the end."""
        vmin, vstep, vmax, pwmin, pwstep, pwmax, interpulse, r_thr = yield from self._floats(8)
        r_thr_pc = self._int((yield))
        pw_mode = self._int((yield)) if modal else 0
        series = self._int((yield))
        n_pulses = self._int((yield))
        count = yield from self._devices()
        if series not in SERIES_RESISTOR_OHM:
            self.errors.append(f"series resistor code {series} unknown: none used")
        series_ohm = SERIES_RESISTOR_OHM.get(series, 0.0)
        for _ in range(max(count, 0)):
            cell = yield from self._cell()
            if cell is None:
                self._send_floats(0.0, 0.0, 0.0)
                continue
            r_start = self._resistance(*cell)
            self._send_floats(r_start, self.session.vread, 0.0)
            done = r_thr_pc == 0 and r_start < r_thr
            v, pw = vmin, pwmin
            while not done:
                for _ in range(max(n_pulses, 1)):
                    self._apply_pulse(*cell, v, pw, series_ohm)
                    r_now = self._resistance(*cell)
                    self._send_floats(r_now, v, pw)
                    self.clock.advance(max(interpulse, 0.0))
                    if r_thr_pc == 0:
                        done = r_now < r_thr
                    else:
                        done = abs(r_now - r_start) / r_start > r_thr_pc / 100.0
                    if done:
                        break
                if done:
                    break
                next_pw = pw + pwstep if pw_mode == 1 else pw * (1 + pwstep / 100.0)
                if next_pw > pwmax or next_pw <= pw:
                    if abs(v + vstep) > abs(vmax) or vstep == 0:
                        break
                    v, pw = v + vstep, pwmin
                else:
                    pw = next_pw
            self._send_floats(0.0, 0.0, 0.0)

    def _form_finder_modal(self) -> Lines:
        yield from self._form_finder(modal=True)

    def _curve_tracer(self) -> Lines:
        """``201``: V+ max, V− max, V start, V step, step width, interpulse, cut-off+ (A),
        cut-off− (A, negative), cycles, type, span option (0 V+ first, 1 V− first, 2 only V+,
        3 only V−), halt-and-return, device count, then per device word, bit → one (R, V, pw)
        triplet per step (R = V/I during the step), (0, 0, 0) closing each cycle."""
        vpos, vneg, vstart, vstep, pw, interpulse, cs_pos, cs_neg = yield from self._floats(8)
        cycles, _kind, option, halt = yield from self._ints(4)
        count = yield from self._devices()
        vstep = abs(vstep)
        top_pos = int(abs(vpos - vstart) / vstep) if vstep else 0
        top_neg = int(abs(abs(vneg) - vstart) / vstep) if vstep else 0
        branches = {0: ((1, top_pos), (-1, top_neg)), 1: ((-1, top_neg), (1, top_pos)),
                    2: ((1, top_pos),), 3: ((-1, top_neg),)}.get(option)
        if branches is None:
            self.errors.append(f"CurveTracer option {option} unknown; ignored")
            branches = ()
        for _ in range(max(count, 0)):
            cell = yield from self._cell()
            for _cycle in range(max(cycles, 1)):
                if cell is not None:
                    for polarity, top in branches:
                        cut = abs(cs_pos if polarity > 0 else cs_neg)
                        if self._trace_branch(cell, polarity, top, vstart, vstep, pw, interpulse,
                                              cut, halt):
                            break
                self._send_floats(0.0, 0.0, 0.0)

    def _trace_branch(self, cell, polarity, top, vstart, vstep, pw, interpulse, cut,
                      halt) -> bool:
        """One rising and falling branch; True if the cut-off halted the cycle."""
        steps = []
        for i in range(top + 1):
            v = polarity * (i * vstep + vstart)
            current = self._trace_step(cell, v, pw, interpulse)
            steps.append(v)
            if cut > 0 and abs(current) >= cut:
                if halt:
                    return True
                break
        for v in reversed(steps[:-1]):
            self._trace_step(cell, v, pw, interpulse)
        return False

    def _trace_step(self, cell, v: float, pw: float, interpulse: float) -> float:
        if pw > 0:
            self._apply_pulse(*cell, v, max(pw, MIN_PULSE_S))
        self.clock.advance(CT_MEASURE_S + max(interpulse, 0.0))
        current = float(self.device.read_device(*cell, v, self.session.read_bias)) if v \
            else 0.0
        r = v / current if current else math.inf
        self._send_floats(r, v, pw)
        return current

    def _endurance(self) -> Lines:
        """``191``: +V, +pw, +cut-off, −V, −pw, −cut-off, interpulse, + pulses, − pulses,
        cycles, device count, then per device word, bit → (R, V, pw) per pulse, (0, 0, 0)."""
        v_pos, pw_pos, _cut_pos, v_neg, pw_neg, _cut_neg, interpulse = \
            yield from self._floats(7)
        n_pos, n_neg, cycles = yield from self._ints(3)
        count = yield from self._devices()
        for _ in range(max(count, 0)):
            cell = yield from self._cell()
            if cell is not None:
                for _cycle in range(max(cycles, 0)):
                    for v, pw, n in ((v_pos, pw_pos, n_pos), (v_neg, pw_neg, n_neg)):
                        for _ in range(max(n, 0)):
                            self._apply_pulse(*cell, v, pw)
                            self._send_floats(self._resistance(*cell), v, pw)
                            self.clock.advance(max(interpulse, 0.0))
            self._send_floats(0.0, 0.0, 0.0)
