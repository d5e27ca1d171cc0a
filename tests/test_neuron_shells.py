"""The neuron and VDSP procedures from the command line (a subprocess, as a user types it),
from the GUI (pytest-qt), and aborted mid-run (safe state)."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
from pymeasure.experiment import Procedure, Results
from test_array_procedures import _run_and_stop  # the GUI-style stop, shared

from labctl import runner, spiking
from labctl.gui import make_window
from labctl.station import Station
from procedures.neuron_response import NeuronResponse

warnings.filterwarnings("ignore", category=FutureWarning)
RUN_TIMEOUT_MS = 60_000


def labctl(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("labctl")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "labctl.cli"]
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_cli_runs_neuron_response_and_neuron_iv(tmp_path):
    done = labctl(tmp_path, "run", "neuron-response", "--sim", "--set", "mode=lif")
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.split("results:")[-1].strip())
    data = pd.read_csv(path, comment="#")
    assert data["Behaviour"].iloc[-1] == spiking.LIF
    assert path.with_suffix(".h5").is_file()
    done = labctl(tmp_path, "run", "neuron-iv", "--sim", "--set", "points=40")
    assert done.returncode == 0, done.stderr


def test_cli_refuses_an_over_limit_stimulus_with_exit_2(tmp_path):
    done = labctl(tmp_path, "run", "neuron-response", "--sim", "--set", "amp_stop=8")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "amp_stop" in done.stderr
    assert not list(tmp_path.rglob("*.csv"))


def test_gui_queue_to_finished(qtbot, tmp_path, queue_to_finished):
    with Station.load("sim-nbox-neuron", sim=True) as station:
        window = make_window(NeuronResponse, station, out=tmp_path)
        qtbot.addWidget(window)
        window.show()
        window.inputs.mode.setValue("burst")
        window.inputs.amp_start.setValue(5.0)
        window.inputs.amp_stop.setValue(5.0)
        window.inputs.points.setValue(1)
        experiment = queue_to_finished(window, timeout_ms=RUN_TIMEOUT_MS)
        data = Results.load(experiment.results.data_filename).data
        assert data["Behaviour"].iloc[-1] == spiking.PHASIC
        assert not station.bench.instruments["awg"].ch[1].output
        window.close()


def test_abort_leaves_the_generator_off(tmp_path):
    with Station.load("sim-nbox-neuron", sim=True) as station:
        proc = runner.build(NeuronResponse, {"mode": "rate", "points": 20,
                                             "amp_start": 2.0, "amp_stop": 2.4})
        rows = _run_and_stop(proc, station, tmp_path / "abort.csv", after_rows=2)
        assert proc.status == Procedure.ABORTED
        assert len(rows) == 2  # honoured before the next stimulus
        assert not station.bench.instruments["awg"].ch[1].output
        assert len(pd.read_csv(tmp_path / "abort.csv", comment="#")) == 2


@pytest.mark.parametrize("bad, message", [("train_images=-1", "train_images"),
                                          ("v_set=9", "v_set")])
def test_train_vdsp_bad_input_is_exit_2(tmp_path, bad, message):
    done = labctl(tmp_path, "run", "train-vdsp", "--sim", "--set", bad)
    assert done.returncode == 2 and message in done.stderr
