"""ArC ONE (ArC Instruments) memristor-array controller, over its USB serial port.

The board takes text lines and answers with raw little-endian float32 resistances (Ω); this
driver speaks that protocol as the authors' host software does and maps labctl's array interface
(:class:`~labctl.array.ArrayController`) onto it. Sources, read for facts only
(``arc-instruments/arc1_pyqt``):

- ``arc1pyqt/instrument.py``: port settings (921600 baud, 8 data bits, even parity, 1 stop bit);
  ``"00"`` reset, ``"0"`` session configuration (read cycles, words, bits, read mode, session
  mode, sneak-path option, Vread) acknowledged by a line ``1``; ``"01"`` read mode + Vread;
  ``"02"`` select; ``"1"`` read one; ``"3"`` pulse-read one; ``"04"`` pulse the selected device;
  ``"999"`` firmware version (``struct "2H"``); replies read as ``np.float32``; on disconnect the
  software just closes the port.
- ``arc1pyqt/ControlWidgets/manual_ops_widget.py``: read all (``"2"``, type 1 whole array, type 2
  custom list of cells), word/bit numbered from 1, Vread < 0 with TIA4P sent as mode 3, the read
  voltage spin box (±12 V), pulse widths clamped to 90 ns..10 s (also
  ``ProgPanels/Basic/Pulse.py``).
- ``arc1pyqt/ProgPanels/FormFinder.py`` and ``arc1pyqt/VirtualArC/virtualarc.py``: the FormFinder
  job ``14`` (parameter order, (R, V, pw) triplets, first one the initial read, (0, 0, 0) at the
  end, stop at R < threshold); ``ControlWidgets/new_session_dialog.py``: sneak path 0 = V/3,
  1 = V/2, 50 read cycles; floating lines = 256 after PHYSICS.md §1.5.

Transport: pyserial directly, not pymeasure's ``SerialAdapter``. The ArC ONE is not a
message-based instrument: commands are text but replies are raw float32 blocks with no
terminator (4 bytes, 4·words·bits bytes, a stream of 12-byte triplets ending in zeros), so the
driver needs exact-count reads against a deadline, a look at the input buffer for stray bytes,
and writes of many commands at once (pipelining) — pyserial's own primitives, which is also what
arc1_pyqt uses; an adapter layer would add nothing but a second timeout.

Mapping (``_execute``) — as few host commands as the firmware allows:

- read one → ``"1"``; read all → ``"2"`` type 1 (one write, one block of rows·cols float32);
  read row / column / cells → ``"2"`` type 2 (one command, one float per cell); the read voltage
  is set by ``"01"`` only when it changes, written in the same write as the read.
- pulse → ``"3"`` (pulse-read) when a read follows, else ``"02"`` select (only when the device
  changes) + ``"04"``; rows, columns and the whole array are pulsed one device at a time, as the
  board does; trains are the same commands back to back. Commands are pipelined: written in
  chunks, the replies of one chunk read while the next is on its way (at most two chunks of
  replies, ≤ 4 KiB, outstanding, so neither side's buffer fills).
- ramp with a read voltage, evenly spaced voltages of one sign rising in magnitude → one
  FormFinder job (``"14"``: one pulse per voltage, pulse width min = max, no series resistor,
  R threshold = |Vread| / stop current): the board ramps and stops on its own criterion, and
  streams one triplet per step. Any other ramp → pulse-read steps, one at a time, with the stop
  checked after each (with no read voltage the read after each pulse is taken at the step
  voltage). CurveTracer (``"201"``) does not fit: it always sweeps back down and its step is
  ≥ 2 ms.
- bias scheme → the session's sneak-path option (``"0"`` re-sent when it changes; v/3, v/2,
  float). It is a write option (arc1_pyqt: "Write: V/3", "Write: V/2"): pulses put the V/3 or
  V/2 levels on the unselected lines; reads hold them at 0 V under either (so a read changes
  the session only between floating and not), and leave them open under float. There is no
  grounded-lines scheme for pulses.
- compliance: none in hardware (series resistors exist only inside FormFinder).
- safe state / ground all → ``"00"`` (mbed reset: every crosspoint open, outputs at 0 V); the
  next operation waits for the board and configures the session again. There is no command that
  leaves all lines floating.
"""

from __future__ import annotations

import logging
import math
import re
import struct
import time
from dataclasses import dataclass, field

import numpy as np
import serial

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
from labctl.errors import LabctlError

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

BAUD = 921600
BYTE_S = 11 / BAUD                 # start + 8 data + parity + stop bits
READ_MODES = {"classic": 0, "tia": 1, "tia4p": 2}
TIA4P_NEG = 3                      # TIA4P with a negative Vread (manual_ops_widget.py)
SNEAK_PATH = {"v/3": 0, "v/2": 1, "float": 256}
MAX_LINES = 32
VOLTAGE_RANGE = (-12.0, 12.0)      # read spin box of arc1_pyqt; pulse amplitude range
PULSE_WIDTH_RANGE = (90e-9, 10.0)  # arc1_pyqt clamps pulse widths to 90 ns..10 s
TIME_GRID_S = 10e-9                # estimate: nanosecond pulsing resolution
FORMFINDER_JOB = "14"
FF_NO_SERIES_RESISTOR = 7
CHUNK_REPLY_BYTES = 2048           # replies per pipelined chunk (two chunks outstanding at most)
CHUNK_COMMAND_BYTES = 8192
POLL_S = 0.05                      # pyserial read granularity; deadlines are enforced around it
_ASRL = re.compile(r"^ASRL(.+)::INSTR$", re.IGNORECASE)
_COM = re.compile(r"^COM\d+$", re.IGNORECASE)


class ArcOneError(LabctlError):
    """The ArC ONE did something unexpected; the message names the port."""


class ArcOneTimeout(ArcOneError, TimeoutError):
    """The ArC ONE did not answer in time."""


def _num(x: float) -> str:
    """A voltage or width as the host writes it: decimal text, exponent when small."""
    return f"{float(x):.9g}"


@dataclass
class _Command:
    data: bytes
    reply_floats: int = 0
    seconds: float = 0.0        # the driver's estimate of the board's time (widens deadlines)


@dataclass
class _Plan:
    """Pipelinable commands and, per operation, where its replies land in the float stream."""

    commands: list[_Command] = field(default_factory=list)
    n_floats: int = 0
    finishers: list = field(default_factory=list)  # (op index, start, count, convert)

    def add(self, data: str, reply_floats: int = 0, seconds: float = 0.0) -> int:
        start = self.n_floats
        self.commands.append(_Command(data.encode("ascii"), reply_floats, seconds))
        self.n_floats += reply_floats
        return start


class ArcOne(ArrayController):
    """ArC ONE memristor-array controller on a serial port.

    .. code-block:: python

        arc = ArcOne("/dev/ttyACM0")            # or "COM3", or "ASRL/dev/ttyACM0::INSTR"
        g = arc.read_all(0.5) / 0.5             # conductances of the 32x32 array, S
        arc.pulse_one(3, 4, 1.5, 100e-6, vread=0.5)
        arc.shutdown()

    ``port``: device path, ``COMn`` or VISA ``ASRL<path>::INSTR``; ``timeout``: s without an
    answer beyond the board's own working time before giving up; ``read_cycles``: ADC cycles
    averaged per read (arc1_pyqt default 50); ``bias``: the session's initial sneak-path scheme
    (``"v/2"``, ``"v/3"`` or ``"float"``); ``read_mode``: ``"classic"``, ``"tia"`` or
    ``"tia4p"``; ``words``, ``bits``: size of the array wired to the board (≤ 32 each);
    ``vread``: initial read voltage, V; ``session_mode``: 0 local, 1 external BNC, 2 BNC to
    local; ``interpulse``: s between FormFinder pulses; ``reset_wait``: longest wait for the
    board after a reset, s (arc1_pyqt waits 1 s; the driver polls the firmware version and goes
    on as soon as the board answers).
    """

    RESOURCE_KIND = "serial"
    SAFE_IDLE = "ground"

    def __init__(self, port: str, timeout: float = 5.0, read_cycles: int = 50,
                 bias: str = "v/2", read_mode: str = "tia4p", words: int = 32, bits: int = 32,
                 vread: float = 0.5, session_mode: int = 0, interpulse: float = 0.0,
                 reset_wait: float = 1.0):
        super().__init__()
        problem = self.check_resource(port)
        if problem:
            raise ArcOneError(problem)
        self.port = self.serial_path(port)
        for name, value, ok in (
                ("timeout", timeout, math.isfinite(timeout) and timeout > 0),
                ("read_cycles", read_cycles, int(read_cycles) == read_cycles >= 1),
                ("bias", bias, bias in SNEAK_PATH),
                ("read_mode", read_mode, read_mode in READ_MODES),
                ("words", words, int(words) == words and 1 <= words <= MAX_LINES),
                ("bits", bits, int(bits) == bits and 1 <= bits <= MAX_LINES),
                ("vread", vread, VOLTAGE_RANGE[0] <= vread <= VOLTAGE_RANGE[1]),
                ("session_mode", session_mode, session_mode in (0, 1, 2)),
                ("interpulse", interpulse, math.isfinite(interpulse) and interpulse >= 0),
                ("reset_wait", reset_wait, math.isfinite(reset_wait) and reset_wait >= 0)):
            if not ok:
                raise ValueError(f"ArcOne option {name}={value!r} is not valid")
        self.timeout = float(timeout)
        self.read_cycles = int(read_cycles)
        self.read_mode = read_mode
        self.words, self.bits = int(words), int(bits)
        self.session_mode = int(session_mode)
        self.interpulse = float(interpulse)
        self.reset_wait = float(reset_wait)
        self.firmware: tuple[int, int] | None = None
        self._bias = bias               # the board's sneak-path option
        self._vread = float(vread)      # the board's Vread
        self._selected: tuple[int, int] | None = None
        self._configured = False
        self._needs_reset = False
        self._read_s = 1e-3 + self.read_cycles * 20e-6  # generous estimate per read
        try:
            self._ser = serial.Serial(self.port, baudrate=BAUD, bytesize=serial.EIGHTBITS,
                                      parity=serial.PARITY_EVEN, stopbits=serial.STOPBITS_ONE,
                                      timeout=POLL_S, write_timeout=self.timeout)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise ArcOneError(f"ArC ONE on {self.port}: cannot open the port "
                              f"({str(exc).splitlines()[0]})") from None
        try:
            self._write(b"00\n", "reset")
            self._start_session()
        except Exception:
            self._ser.close()
            raise

    # ---------------------------------------------------------------- resource names
    @classmethod
    def check_resource(cls, resource: str) -> str | None:
        """A problem line if ``resource`` is not a serial port the driver can open."""
        if not isinstance(resource, str) or not resource.strip():
            return f"{resource!r} is not a serial port"
        text = resource.strip()
        match = _ASRL.match(text)
        if match:
            inner = match.group(1)
            if inner.isdigit() or inner.startswith("/") or _COM.match(inner):
                return None
            return f"{resource!r}: ASRL resource must name a device (ASRL/dev/ttyUSB0::INSTR)"
        if text.startswith("/") or _COM.match(text):
            return None
        return (f"{resource!r} is not a serial port (expected a device path such as "
                "/dev/ttyUSB0, COM3, or ASRL/dev/ttyUSB0::INSTR)")

    @staticmethod
    def serial_path(resource: str) -> str:
        """The path pyserial opens for ``resource`` (VISA ``ASRL3::INSTR`` → ``COM3``)."""
        text = resource.strip()
        match = _ASRL.match(text)
        if match:
            inner = match.group(1)
            return f"COM{inner}" if inner.isdigit() else inner
        return text

    # ---------------------------------------------------------------- interface
    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            shape=(self.words, self.bits), read_voltage=VOLTAGE_RANGE,
            pulse_voltage=VOLTAGE_RANGE, min_pulse_width=PULSE_WIDTH_RANGE[0],
            max_pulse_width=PULSE_WIDTH_RANGE[1], time_grid=TIME_GRID_S,
            hardware_compliance=False, bias_schemes=("v/2", "v/3", "float"),
            whole_array_read=True, batched=True)

    @property
    def id(self) -> str:
        fw = "unknown" if self.firmware is None else "{}.{}".format(*self.firmware)
        return (f"ArC Instruments ArC ONE, firmware {fw}, {self.words}x{self.bits} array, "
                f"{self.port}")

    def _close(self) -> None:
        if self._ser.is_open:
            self._ser.close()

    def _refuse(self, op) -> str | None:
        """What the board cannot do: leave every line floating, or read after a pulse under
        another sneak-path option than the pulse's (the board's pulse-read runs in one
        session, whose reads hold the unselected lines at 0 V under v/2 and v/3, and leave them
        open under float)."""
        if isinstance(op, Idle) and op.mode != "ground":
            return (f"ArC ONE cannot leave all lines {op.mode}; it only resets them to ground "
                    "(ground_all)")
        read_bias = getattr(op, "read_bias", None)
        if read_bias is not None and (read_bias == "float") != (op.bias == "float"):
            return (f"ArC ONE reads after a pulse in the pulse's session: read bias "
                    f"{read_bias!r} with pulse bias {op.bias!r} needs the same floating or "
                    "held lines (float with float; v/2 or v/3 with v/2 or v/3)")
        return None

    def _execute(self, ops: list) -> list:
        results: list = [None] * len(ops)
        plan = _Plan()
        try:
            for index, op in enumerate(ops):
                if isinstance(op, Idle):
                    self._run_plan(plan, results)
                    plan = _Plan()
                    self._write(b"00\n", "reset")
                    self._configured, self._selected = False, None
                    continue
                if not self._configured:
                    self._run_plan(plan, results)
                    plan = _Plan()
                    self._start_session()
                if self._needs_session(op):
                    self._run_plan(plan, results)
                    plan = _Plan()
                    self._configure(op.bias)
                if isinstance(op, Read):
                    self._plan_read(plan, index, op)
                elif isinstance(op, (Pulse, Train)):
                    self._plan_pulses(plan, index, op)
                elif isinstance(op, Ramp):
                    self._run_plan(plan, results)
                    plan = _Plan()
                    results[index] = self._ramp(op)
                else:
                    raise ArcOneError(f"ArC ONE: unknown operation {op!r}")
            self._run_plan(plan, results)
        except ArcOneError:
            # the board's state is unknown (a module job may still be running): reset it and
            # configure again before the next operation
            self._configured, self._needs_reset = False, True
            raise
        return results

    # ---------------------------------------------------------------- session
    def _start_session(self) -> None:
        """Wait for the board after ``"00"`` (sent first after an error), then configure the
        session."""
        if self._needs_reset:
            self._write(b"00\n", "reset")
            self._needs_reset = False
        self.firmware = self._await_boot() or self.firmware
        self._configure(self._bias)

    def _await_boot(self) -> tuple[int, int] | None:
        """Poll ``"999"`` until the board answers (at most ``reset_wait``); its version."""
        deadline = time.monotonic() + self.reset_wait
        while True:
            self._ser.reset_input_buffer()
            self._write(b"999\n", "firmware version query")
            data = bytearray()
            until = min(time.monotonic() + 0.2, max(deadline, time.monotonic() + POLL_S))
            while len(data) < 4 and time.monotonic() < until:
                data += self._serial_read(4 - len(data))
            if len(data) == 4:
                return struct.unpack("<2H", bytes(data))
            if time.monotonic() >= deadline:
                time.sleep(POLL_S)  # a late answer must not land in the configuration ack
                self._ser.reset_input_buffer()
                return None

    def _configure(self, bias: str) -> None:
        """``"0"`` session configuration and ``"01"`` (as arc1_pyqt follows it) in one write;
        the board acknowledges the configuration with a line ``1``."""
        mode = self._mode_code(self._vread)
        vread = _num(self._vread)
        self._write((f"0\n{self.read_cycles}\n{self.words}\n{self.bits}\n{mode}\n"
                     f"{self.session_mode}\n{SNEAK_PATH[bias]}\n{vread}\n"
                     f"01\n{mode}\n{vread}\n").encode("ascii"), "session configuration")
        line = self._read_line("session configuration")
        if line.strip() != b"1":
            raise ArcOneError(f"ArC ONE on {self.port}: session configuration not acknowledged "
                              f"(got {bytes(line)!r})")
        self._bias = bias
        self._configured = True
        self._selected = None

    def _needs_session(self, op) -> bool:
        """Whether ``op`` needs another sneak-path option. The option is a write option: reads
        hold the unselected lines at 0 V under v/2 and v/3 alike, so a read changes the session
        only between floating and not."""
        if isinstance(op, Read):
            return (op.bias == "float") != (self._bias == "float")
        return op.bias != self._bias

    def _mode_code(self, vread: float) -> int:
        code = READ_MODES[self.read_mode]
        return TIA4P_NEG if vread < 0 and code == READ_MODES["tia4p"] else code

    def _set_vread(self, plan: _Plan, vread: float) -> None:
        if vread != self._vread:
            plan.add(f"01\n{self._mode_code(vread)}\n{_num(vread)}\n")
            self._vread = float(vread)

    # ---------------------------------------------------------------- planning
    def _plan_read(self, plan: _Plan, index: int, op: Read) -> None:
        self._set_vread(plan, op.vread)
        shape = (self.words, self.bits)
        out_shape = op.sel.result_shape(shape)
        if op.sel.kind == "one":
            w, b = op.sel.rows[0] + 1, op.sel.cols[0] + 1
            start = plan.add(f"1\n{w}\n{b}\n", 1, self._read_s)
        elif op.sel.kind == "all":
            n = self.words * self.bits
            start = plan.add(f"2\n1\n{self.words}\n{self.bits}\n", n, n * self._read_s)
        else:
            rows, cols = op.sel.cells_of(shape)
            pairs = "".join(f"{r + 1}\n{c + 1}\n" for r, c in zip(rows, cols))
            start = plan.add(f"2\n2\n{self.words}\n{self.bits}\n{rows.size}\n{pairs}",
                             rows.size, rows.size * self._read_s)
        self._selected = None  # which crosspoint a read leaves closed is not documented
        count = math.prod(out_shape)
        plan.finishers.append((index, start, count,
                               self._currents(op.vread, out_shape, op.sel)))

    def _plan_pulses(self, plan: _Plan, index: int, op: Pulse | Train) -> None:
        shape = (self.words, self.bits)
        rows, cols = op.sel.cells_of(shape)
        if isinstance(op, Pulse):
            amps = np.broadcast_to(np.asarray(op.amplitude, dtype=float), rows.shape)[None, :]
            widths = np.full(1, op.width)
        else:
            amps = np.repeat(np.asarray(op.amplitudes, float)[:, None], rows.size, axis=1)
            widths = np.asarray(op.widths, dtype=float)
        if op.vread is not None:
            self._set_vread(plan, op.vread)
        start = plan.n_floats
        for k in range(amps.shape[0]):
            width = _num(widths[k])
            for j in range(rows.size):
                w, b = int(rows[j]) + 1, int(cols[j]) + 1
                volts = _num(amps[k, j])
                seconds = float(widths[k]) + 1e-3
                if op.vread is not None:
                    plan.add(f"3\n{w}\n{b}\n{volts}\n{width}\n", 1, seconds + self._read_s)
                    self._selected = None
                else:
                    if self._selected != (w, b):
                        plan.add(f"02\n{w}\n{b}\n")
                        self._selected = (w, b)
                    plan.add(f"04\n{volts}\n{width}\n", 0, seconds)
        if op.vread is not None:
            sel_shape = op.sel.result_shape(shape)
            out_shape = sel_shape if isinstance(op, Pulse) else (amps.shape[0], *sel_shape)
            plan.finishers.append((index, start, amps.size,
                                   self._currents(op.vread, out_shape, op.sel)))

    def _currents(self, vread: float, shape: tuple[int, ...], sel: Selection):
        """Resistances (Ω) → currents (A) at ``vread``, shaped like the result."""
        def convert(r: np.ndarray):
            if np.any(np.isnan(r)):
                raise ArcOneError(f"ArC ONE on {self.port}: the board answered NaN to a read "
                                  f"({sel.kind} selection outside its session array?)")
            with np.errstate(divide="ignore"):
                currents = vread / r.astype(float)
            return currents.reshape(shape) if shape else float(currents[0])
        return convert

    # ---------------------------------------------------------------- pipelined execution
    def _run_plan(self, plan: _Plan, results: list) -> None:
        """Write the plan's commands in chunks and read their replies (pipelined)."""
        if not plan.commands:
            return
        chunks: list[list[_Command]] = [[]]
        reply, size = 0, 0
        for command in plan.commands:
            nbytes = 4 * command.reply_floats
            if chunks[-1] and (reply + nbytes > CHUNK_REPLY_BYTES
                               or size + len(command.data) > CHUNK_COMMAND_BYTES):
                chunks.append([])
                reply, size = 0, 0
            chunks[-1].append(command)
            reply += nbytes
            size += len(command.data)
        what = f"{len(plan.commands)} command(s)"
        received = bytearray()
        previous: list[_Command] | None = None
        for chunk in chunks:
            if previous is not None and 4 * sum(c.reply_floats for c in previous) \
                    > CHUNK_REPLY_BYTES:  # a big block (read all) is read before more is sent
                received += self._read_reply(previous, [], what)
                previous = None
            self._write(b"".join(c.data for c in chunk), what)
            if previous is not None:
                received += self._read_reply(previous, chunk, what)
            previous = chunk
        if previous is not None:
            received += self._read_reply(previous, [], what)
        self._check_quiet(what)
        floats = np.frombuffer(bytes(received), dtype="<f4")
        for index, start, count, convert in plan.finishers:
            results[index] = convert(floats[start:start + count])

    def _read_reply(self, chunk: list[_Command], following: list[_Command], what: str) -> bytes:
        n = 4 * sum(c.reply_floats for c in chunk)
        if n == 0:
            return b""
        seconds = sum(c.seconds + len(c.data) * BYTE_S for c in (*chunk, *following))
        return self._read_exact(n, seconds + n * BYTE_S, what)

    # ---------------------------------------------------------------- ramps
    def _ramp(self, op: Ramp) -> RampResult:
        volts = np.asarray(op.voltages, dtype=float)
        if op.vread is not None and self._fits_form_finder(volts):
            return self._form_finder(op, volts)
        return self._ramp_steps(op, volts)

    @staticmethod
    def _fits_form_finder(volts: np.ndarray) -> bool:
        if volts.size == 0 or np.any(volts == 0) or np.any(np.sign(volts) != np.sign(volts[0])):
            return False
        if volts.size == 1:
            return True
        steps = np.diff(volts)
        same = np.allclose(steps, steps[0], rtol=1e-9, atol=1e-12)
        return same and np.sign(steps[0]) == np.sign(volts[0])

    def _form_finder(self, op: Ramp, volts: np.ndarray) -> RampResult:
        """One FormFinder job: the board ramps and stops at R < |Vread| / stop current."""
        step = float(volts[1] - volts[0]) if volts.size > 1 else float(volts[0])
        v_max = float(volts[-1]) + step / 2  # between the last step and the next one
        r_thr = abs(op.vread) / op.stop_current if op.stop_current else 0.0
        plan = _Plan()
        self._set_vread(plan, op.vread)
        w, b = op.row + 1, op.col + 1
        plan.add(f"{FORMFINDER_JOB}\n{_num(volts[0])}\n{_num(step)}\n{_num(v_max)}\n"
                 f"{_num(op.width)}\n100\n{_num(op.width)}\n{_num(self.interpulse)}\n"
                 f"{_num(r_thr)}\n0\n{FF_NO_SERIES_RESISTOR}\n1\n1\n{w}\n{b}\n")
        what = f"FormFinder on W={w} B={b}"
        self._write(b"".join(c.data for c in plan.commands), what)
        per_step = op.width + self.interpulse + self._read_s + 12 * BYTE_S
        triplets = []
        for _ in range(volts.size + 2):
            r, v, pw = struct.unpack("<3f", self._read_exact(12, per_step, what))
            if r == 0.0 and v == 0.0 and pw == 0.0:
                break
            triplets.append((r, v, pw))
        else:
            raise ArcOneError(f"ArC ONE on {self.port}: {what} sent more than "
                              f"{volts.size + 1} results without its end marker")
        self._check_quiet(what)
        if not triplets:
            raise ArcOneError(f"ArC ONE on {self.port}: {what} ended without a first read")
        steps = triplets[1:]  # the first triplet is the read before any pulse
        if len(steps) > volts.size:
            raise ArcOneError(f"ArC ONE on {self.port}: {what} applied {len(steps)} steps for "
                              f"{volts.size} voltages")
        r_all = np.array([t[0] for t in triplets])
        if np.any(np.isnan(r_all)):
            raise ArcOneError(f"ArC ONE on {self.port}: {what} answered NaN")
        with np.errstate(divide="ignore"):
            currents = op.vread / r_all
        applied = volts[:len(steps)]
        stopped = op.stop_current is not None and abs(currents[-1]) > op.stop_current
        return RampResult(applied, currents[1:], bool(stopped))

    def _ramp_steps(self, op: Ramp, volts: np.ndarray) -> RampResult:
        """Pulse-read steps one at a time, the stop checked after each."""
        w, b = op.row + 1, op.col + 1
        currents: list[float] = []
        results: list = [None]
        stopped = False
        for v in volts:
            read_at = float(v) if op.vread is None else op.vread
            plan = _Plan()
            self._set_vread(plan, read_at)
            start = plan.add(f"3\n{w}\n{b}\n{_num(v)}\n{_num(op.width)}\n", 1,
                             op.width + self._read_s)
            plan.finishers.append((0, start, 1,
                                   self._currents(read_at, (), Selection.one(op.row, op.col))))
            self._run_plan(plan, results)
            currents.append(float(results[0]))
            if op.stop_current is not None and abs(currents[-1]) > op.stop_current:
                stopped = True
                break
        return RampResult(volts[:len(currents)], np.array(currents), stopped)

    # ---------------------------------------------------------------- bytes
    def _write(self, data: bytes, what: str) -> None:
        try:
            self._ser.write(data)
        except serial.SerialTimeoutException:
            raise ArcOneTimeout(f"ArC ONE on {self.port}: could not send {what} within "
                                f"{self.timeout:g} s") from None
        except (serial.SerialException, OSError) as exc:
            raise ArcOneError(f"ArC ONE on {self.port}: link lost while sending {what} "
                              f"({str(exc).splitlines()[0]})") from None

    def _serial_read(self, n: int) -> bytes:
        try:
            return self._ser.read(n)
        except (serial.SerialException, OSError) as exc:
            raise ArcOneError(f"ArC ONE on {self.port}: link lost "
                              f"({str(exc).splitlines()[0]})") from None

    def _read_exact(self, n: int, seconds: float, what: str) -> bytes:
        """``n`` bytes within ``timeout`` + ``seconds`` (the board's expected working time)."""
        limit = self.timeout + seconds
        deadline = time.monotonic() + limit
        data = bytearray()
        while len(data) < n:
            if time.monotonic() >= deadline:
                self._configured = False
                raise ArcOneTimeout(f"ArC ONE on {self.port}: no reply to {what} within "
                                    f"{limit:.3g} s (got {len(data)} of {n} bytes)")
            data += self._serial_read(n - len(data))
        return bytes(data)

    def _read_line(self, what: str) -> bytes:
        deadline = time.monotonic() + self.timeout
        data = bytearray()
        while not data.endswith(b"\n"):
            if time.monotonic() >= deadline:
                raise ArcOneTimeout(f"ArC ONE on {self.port}: no reply to {what} within "
                                    f"{self.timeout:g} s (got {bytes(data)!r})")
            data += self._serial_read(1)
        return bytes(data)

    def _check_quiet(self, what: str) -> None:
        """Nothing may follow a complete reply; stray bytes mean the stream is out of step."""
        try:
            extra = self._ser.in_waiting
        except (serial.SerialException, OSError):
            return
        if extra:
            junk = self._serial_read(extra)
            raise ArcOneError(f"ArC ONE on {self.port}: {len(junk)} unexpected byte(s) after "
                              f"the reply to {what} ({junk[:16]!r}); garbage on the line?")
