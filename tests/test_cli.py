"""The ``labctl`` command line, run as a user types it: a subprocess in a scratch folder."""

from __future__ import annotations

import csv
import math
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from pymeasure.experiment import Results

import labctl
from labctl.registry import STATION_DIR

SIM_STATION = STATION_DIR / "sim-rram-cell.yaml"
IV_COLUMNS = ["Cycle", "Point", "Set voltage (V)", "Voltage (V)", "Current (A)",
              "Resistance (ohm)", "Pulse current (A)", "Time (s)"]
MEASURED = ["Cycle", "Point", "Set voltage (V)", "Voltage (V)", "Current (A)", "Time (s)"]
MOCK_IDN = "KEITHLEY INSTRUMENTS,MODEL 2450,"


def labctl_command() -> list[str]:
    """The venv's ``labctl`` script if it is there, else the same entry point through -m."""
    script = Path(sys.executable).with_name("labctl")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "labctl.cli"]


def labctl_run(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*labctl_command(), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def results_path(stdout: str) -> Path:
    match = re.search(r"^results: (.+)$", stdout, re.MULTILINE)
    assert match, f"no 'results: PATH' line in:\n{stdout}"
    return Path(match.group(1).strip())


def header_value(path: Path, key: str) -> str:
    """The value of ``#\\tkey: value`` in a pymeasure results header."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        name, sep, value = line.lstrip("#").strip().partition(": ")
        if sep and name == key:
            return value
    raise AssertionError(f"{key!r} not in the header of {path}")


def test_list_names_procedures_drivers_and_benches(tmp_path):
    done = labctl_run(tmp_path, "list")
    assert done.returncode == 0, done.stderr
    listed = {line.split()[0] for line in done.stdout.splitlines() if line.startswith("  ")}
    assert {"iv-sweep", "forming", "keithley2450", "rram-cell"} <= listed


@pytest.mark.parametrize("transport", ["inprocess", "tcp"])
def test_run_iv_sweep_writes_a_self_describing_results_file(tmp_path, transport):
    done = labctl_run(tmp_path, "run", "iv-sweep", "--sim", "--set", "cycles=1", "--out", "DIR",
                      "--no-progress", "--transport", transport)
    assert done.returncode == 0, done.stderr
    path = results_path(done.stdout)
    assert path.is_file()
    assert path.parent == tmp_path / "DIR"

    results = Results.load(str(path))
    proc = results.procedure
    assert proc.cycles == 1
    assert proc.v_max == pytest.approx(1.5)
    assert list(results.data.columns) == IV_COLUMNS
    assert len(results.data) == proc.staircase().size
    assert (results.data["Cycle"] == 1).all()

    assert header_value(path, "Cycles") == "1"
    assert header_value(path, "labctl version") == labctl.__version__
    assert header_value(path, "Instruments").startswith(f"smu={MOCK_IDN}")
    station = header_value(path, "Station")
    assert station.startswith("sim-rram-cell-formed ")
    assert f"/{transport})" in station
    assert header_value(path, "Seed") == "20261123"
    assert proc.instrument_identities == header_value(path, "Instruments")


def test_run_forming_reports_the_forming_voltage(tmp_path):
    done = labctl_run(tmp_path, "run", "forming", "--sim", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert re.search(r"^formed at \d+(\.\d+)? V; resistance after forming ", done.stdout,
                     re.MULTILINE), done.stdout
    assert results_path(done.stdout).is_file()


def broken_station(tmp_path: Path, old: str, new: str) -> str:
    """A copy of the simulated station with one thing broken; returns its file name."""
    text = SIM_STATION.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "station.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path.name


BAD_INPUT = {
    # case: (args after "run", station edit or None, words the one stderr line must contain)
    "unknown procedure": (["iv-swep", "--sim"], None, ["procedure", "'iv-swep'"]),
    "unknown parameter": (["iv-sweep", "--sim", "--set", "v_maxx=1"], None,
                          ["parameter v_maxx", "unknown parameter"]),
    "non-numeric value": (["iv-sweep", "--sim", "--set", "v_max=high"], None,
                          ["parameter v_max", "non-float"]),
    "above the chip limit": (["iv-sweep", "--sim", "--set", "v_max=5"], None,
                             ["v_max", "voltage limit 4 V", "sim-rram-cell-formed"]),
    "station file missing": (["iv-sweep", "--sim", "--station", "nowhere.yaml"], None,
                             ["nowhere.yaml", "not found"]),
    "station bad key": (["iv-sweep", "--sim", "--station", "station.yaml"],
                        ("limits:", "limitz:"), ["station.yaml", "limitz", "unknown key"]),
    "bad driver name": (["iv-sweep", "--sim", "--station", "station.yaml"],
                        ("driver: keithley2450", "driver: keithley2540"),
                        ["station.yaml", "instruments.smu.driver", "'keithley2540'"]),
    "bad VISA resource": (["iv-sweep", "--sim", "--station", "station.yaml"],
                          ("resource: TCPIP::127.0.0.1::5025::SOCKET",
                           "resource: TCPIP::127.0.0.1::5025::SOCKIT"),
                          ["station.yaml", "instruments.smu.resource", "SOCKIT"]),
    "malformed YAML": (["iv-sweep", "--sim", "--station", "station.yaml"],
                       ("voltage: 4.0", "voltage: [4.0"), ["station.yaml", "line", "YAML"]),
    "neither --sim nor --station": (["iv-sweep"], None, ["--station", "--sim"]),
}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_is_one_line_exit_2_and_no_results(tmp_path, case):
    args, edit, words = BAD_INPUT[case]
    if edit is not None:
        broken_station(tmp_path, *edit)
    done = labctl_run(tmp_path, "run", *args, "--out", "out", "--no-progress")
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert "results:" not in done.stdout
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.rglob("*.csv"))


def complete_rows(path: Path) -> int:
    """Data rows that end in a newline (a row still being written is not counted)."""
    text = path.read_text(encoding="utf-8")
    data = text.split("#Data:\n", 1)
    if len(data) < 2:
        return 0
    return max(0, data[1].count("\n") - 1)  # less the column line


def test_sigkill_leaves_a_readable_file_with_every_emitted_row(tmp_path):
    proc = subprocess.Popen(
        [*labctl_command(), "run", "iv-sweep", "--sim", "--set", "cycles=5000", "--out", "out",
         "--no-progress"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        seen = 0
        while seen < 50:
            assert proc.poll() is None, f"labctl ended early: {proc.stderr.read()}"
            assert time.monotonic() < deadline, "no rows on disk within 30 s"
            files = list((tmp_path / "out").glob("*.csv"))
            seen = complete_rows(files[0]) if files else 0
            time.sleep(0.02)  # poll interval for the subprocess's output, not a wait on a mock
        seen = complete_rows(files[0])
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    (path,) = (tmp_path / "out").glob("*.csv")

    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n"), f"partial last line: {text.splitlines()[-1]!r}"
    lines = text.split("#Data:\n", 1)[1].splitlines()
    assert lines[0].split(",") == IV_COLUMNS
    for row in csv.reader(lines[1:]):
        assert len(row) == len(IV_COLUMNS), row
        values = dict(zip(IV_COLUMNS, map(float, row), strict=True))  # a cut-off "1e" fails
        assert not any(math.isnan(values[name]) for name in MEASURED), row
    rows = len(lines) - 1
    assert rows >= seen > 0

    results = Results.load(str(path))
    assert len(results.data) == rows
    frame = pd.read_csv(path, comment="#")
    assert list(frame.columns) == IV_COLUMNS
    assert len(frame) == rows
    assert frame[MEASURED].notna().all().all()
