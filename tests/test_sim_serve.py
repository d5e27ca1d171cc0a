"""``labctl sim serve``: a simulated bench on TCP, driven by an independent client (plain pyvisa
with pyvisa-py, none of labctl's drivers), as a lab's own script would drive the real 2450.
"""

from __future__ import annotations

import queue
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import pyvisa

RESOURCE_LINE = re.compile(r"^smu (TCPIP::127\.0\.0\.1::(\d+)::SOCKET)$")


def labctl_command() -> list[str]:
    script = Path(sys.executable).with_name("labctl")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "labctl.cli"]


def stdout_lines(proc: subprocess.Popen) -> queue.Queue:
    """Lines of ``proc``'s stdout as they come (None at end of file)."""
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


@pytest.fixture(scope="module")
def served_bench(tmp_path_factory):
    """``labctl sim serve rram-cell-formed --port 0``: yields (resource, port); SIGTERM after."""
    proc = subprocess.Popen([*labctl_command(), "sim", "serve", "rram-cell-formed", "--port", "0"],
                            cwd=tmp_path_factory.mktemp("serve"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        lines = stdout_lines(proc)
        deadline = time.monotonic() + 20
        seen = []
        match = None
        while match is None:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no smu resource line within 20 s; got {seen}"
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            assert line is not None, f"server ended: {seen} {proc.stderr.read()}"
            seen.append(line)
            match = RESOURCE_LINE.match(line)
        assert seen[0].startswith("# bench rram-cell-formed (seed ")
        yield match.group(1), int(match.group(2))
    finally:
        proc.terminate()
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        stderr = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
    assert code == 0, stderr
    assert "Traceback" not in stderr, stderr


@pytest.fixture
def smu(served_bench):
    """A fresh pyvisa session on the served SMU, reset and with an empty error queue."""
    resource, _ = served_bench
    rm = pyvisa.ResourceManager("@py")
    inst = rm.open_resource(resource, read_termination="\n", write_termination="\n",
                            timeout=5000)
    try:
        inst.write("*RST;*CLS")
        yield inst
    finally:
        inst.close()
        rm.close()


def read_source_and_current(smu) -> tuple[float, float]:
    v, i = (float(x) for x in smu.query(':READ? "defbuffer1", SOUR, READ').split(","))
    return v, i


def test_identity_and_reset(smu):
    idn = smu.query("*IDN?").split(",")
    assert idn[:2] == ["KEITHLEY INSTRUMENTS", "MODEL 2450"]
    assert len(idn) == 4
    smu.write(":SOUR:VOLT 0.5;:OUTP ON")
    assert float(smu.query(":SOUR:VOLT?")) == pytest.approx(0.5)
    smu.write("*RST")
    assert smu.query("*OPC?").strip() == "1"
    assert float(smu.query(":SOUR:VOLT?")) == 0.0
    assert int(smu.query(":OUTP?")) == 0
    assert smu.query(":SYST:ERR?").startswith("0,")


def test_formed_cell_reads_as_a_few_kohm(smu):
    smu.write(":SOUR:VOLT 0.1;:OUTP ON")
    v, i = read_source_and_current(smu)
    assert v == pytest.approx(0.1, abs=1e-3)
    assert 4e3 < v / i < 10e3
    assert smu.query(":SYST:ERR?").startswith("0,")


def test_unknown_header_queues_error_113(smu):
    smu.write(":SOUR:BOGUS 1")
    code, _, message = smu.query(":SYST:ERR?").partition(",")
    assert int(code) == -113
    assert "Undefined header" in message
    assert smu.query(":SYST:ERR?").startswith("0,")


def test_current_compliance_clamps_and_trips(smu):
    smu.write(":SOUR:VOLT:ILIM 1e-5")
    smu.write(":SOUR:VOLT 1;:OUTP ON")
    _, i = read_source_and_current(smu)
    assert i == pytest.approx(1e-5, rel=0.01)
    assert int(smu.query(":SOUR:VOLT:ILIM:TRIP?")) == 1
    smu.write(":OUTP OFF")


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="needs all of 127.0.0.0/8 on loopback to probe another address")
def test_port_0_binds_loopback_only(served_bench):
    _, port = served_bench
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    # served on 0.0.0.0 this would connect; bound to 127.0.0.1 only it is refused
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", port), timeout=5).close()
