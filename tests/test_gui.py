"""The labctl ManagedWindow driven with pytest-qt on the simulated formed-cell station:
queue → finished with data on disk, abort → safe state, an over-limit parameter never queued."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pymeasure.experiment import Procedure, Results

from labctl.gui import make_window
from procedures.iv_sweep import IVSweep

RUN_TIMEOUT_MS = 60_000


@pytest.fixture
def station(sim_station):
    """conftest's formed-cell station (in-process mocks), closed after the window."""
    return sim_station


@pytest.fixture
def window(qtbot, station, tmp_path):
    window = make_window(IVSweep, station, out=tmp_path)
    qtbot.addWidget(window)
    window.show()
    yield window
    if window.manager.is_running():  # never leave a worker behind a failed test
        window.manager.abort()
        qtbot.waitUntil(lambda: not window.manager.is_running(), timeout=RUN_TIMEOUT_MS)
    window.close()


def queue_one(window, **inputs):
    """Set the window's inputs, queue, and return the queued experiment."""
    for name, value in inputs.items():
        getattr(window.inputs, name).setValue(value)
    before = len(window.manager.experiments.queue)
    window.queue()
    assert len(window.manager.experiments.queue) == before + 1, "the procedure was not queued"
    return window.manager.experiments.queue[-1]


def data_rows_on_disk(filename: str) -> int:
    """Complete data rows in a pymeasure results file (header comments and column line excluded)."""
    with open(filename) as f:
        lines = [ln for ln in f.read().split("\n")[:-1] if ln and not ln.startswith("#")]
    return max(0, len(lines) - 1)


def smu_mock(station):
    return station.bench.instruments["smu"]


def cell_max_abs_voltage(station) -> float:
    return float(np.max(station.bench.devices["cell"].max_abs_voltage))


def test_queue_runs_to_finished_with_data(qtbot, window, station, tmp_path):
    experiment = queue_one(window, cycles=1, v_max=1.5, v_min=-1.5, v_step=0.05)
    procedure = experiment.procedure

    qtbot.waitUntil(lambda: not window.manager.is_running()
                    and procedure.status == Procedure.FINISHED, timeout=RUN_TIMEOUT_MS)

    results = Results.load(experiment.results.data_filename)
    data = results.data
    n_steps = procedure.staircase().size
    assert len(data) == procedure.cycles * n_steps == n_steps
    assert results.procedure.cycles == 1
    assert results.procedure.v_max == pytest.approx(1.5)
    header = Path(experiment.results.data_filename).read_text().split("#Data:")[0]
    assert station.name in header and "MODEL 2450" in header  # self-describing file

    v, i = data["Voltage (V)"].to_numpy(), data["Current (A)"].to_numpy()
    biased = np.abs(v) > 0.05
    assert biased.sum() > n_steps // 2
    assert np.all(np.sign(i[biased]) == np.sign(v[biased]))
    r = data["Resistance (ohm)"].to_numpy()[biased & (np.abs(v) < 0.5)]
    assert r.size > 0
    assert np.all((r > 1e3) & (r < 1e6)), f"formed cell out of the kΩ range: {r.min()}..{r.max()}"

    assert smu_mock(station).output_on is False
    assert cell_max_abs_voltage(station) <= station.limits.voltage

    shot = tmp_path / "gui.png"
    assert window.grab().save(str(shot))
    assert shot.stat().st_size > 0


def test_abort_leaves_the_smu_safe(qtbot, window, station):
    experiment = queue_one(window, cycles=200)
    procedure = experiment.procedure
    filename = experiment.results.data_filename
    full_run = procedure.cycles * procedure.staircase().size

    qtbot.waitUntil(lambda: data_rows_on_disk(filename) > 0, timeout=RUN_TIMEOUT_MS)
    window.abort()
    qtbot.waitUntil(lambda: not window.manager.is_running(), timeout=RUN_TIMEOUT_MS)

    assert procedure.status == Procedure.ABORTED
    smu = smu_mock(station)
    assert smu.output_on is False
    assert smu.device_voltage == 0.0
    rows = len(Results.load(filename).data)
    assert 0 < rows < full_run


def test_over_limit_parameter_is_not_queued(qtbot, window, station, tmp_path):
    limit = station.limits.voltage
    window.inputs.v_max.setValue(limit + 1.0)

    window.queue()

    assert len(window.manager.experiments.queue) == 0
    assert not window.manager.is_running()
    message = window.statusBar().currentMessage()
    assert message.startswith("Not queued")
    assert "v_max" in message and "limit" in message
    assert not list(tmp_path.glob("*.csv"))
    assert cell_max_abs_voltage(station) == 0.0  # nothing was applied, let alone > limit
    assert smu_mock(station).output_on is False


def test_array_read_shows_the_conductance_map_as_a_heat_map(qtbot, tmp_path):
    from pymeasure.display.windows import ManagedImageWindow

    from labctl.station import Station
    from procedures.array_read import ArrayRead

    with Station.load("sim-crossbar-arc2", sim=True) as st:
        window = make_window(ArrayRead, st, out=tmp_path)
        qtbot.addWidget(window)
        window.show()
        assert isinstance(window, ManagedImageWindow)
        experiment = queue_one(window)
        qtbot.waitUntil(lambda: not window.manager.is_running()
                        and experiment.procedure.status == Procedure.FINISHED,
                        timeout=RUN_TIMEOUT_MS)
        data = Results.load(experiment.results.data_filename).data
        g = data.pivot(index="Row", columns="Column", values="Conductance (S)").to_numpy()
        assert g.shape == (32, 32)
        ok = st.bench.devices["xbar"].devices.formed  # read noise ±1 %
        np.testing.assert_allclose(g[ok], st.bench.devices["xbar"].conductance[ok], rtol=0.03)
        shot = tmp_path / "array-read.png"
        assert window.grab().save(str(shot)) and shot.stat().st_size > 0
        window.close()
