"""Shared fixtures: simulated stations and benches, Qt offscreen."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

from labctl.station import Station  # noqa: E402


@pytest.fixture
def sim_station():
    """The formed-cell simulated station, in-process; closed after the test."""
    station = Station.load("sim-rram-cell-formed", sim=True)
    yield station
    station.close()


@pytest.fixture(params=["inprocess", "tcp"])
def any_transport_station(request):
    station = Station.load("sim-rram-cell-formed", sim=True, transport=request.param)
    yield station
    station.close()


@pytest.fixture(autouse=True)
def calibration_dir(tmp_path, monkeypatch):
    """Every test writes its fitted calibrations to its own folder, never into data/."""
    folder = tmp_path / "calibration"
    monkeypatch.setenv("LABCTL_CALIBRATION", str(folder))
    return folder


@pytest.fixture
def queue_to_finished(qtbot):
    """Queue a ManagedWindow's procedure and wait until it has run to FINISHED; returns the
    experiment."""
    from pymeasure.experiment import Procedure

    def run(window, timeout_ms: int = 60_000):
        window.queue()
        experiment = window.manager.experiments.queue[-1]
        qtbot.waitUntil(lambda: not window.manager.is_running()
                        and experiment.procedure.status == Procedure.FINISHED,
                        timeout=timeout_ms)
        return experiment
    return run
