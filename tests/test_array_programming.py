"""array-read, write-verify and array-form end to end on the simulated crossbars, every backend."""

from __future__ import annotations

import numpy as np
import pytest

import labctl
from labctl import runner
from labctl.arrayfile import load_maps, load_pulses
from labctl.errors import ConfigError
from labctl.station import Station
from mocks.devices.rram import RRAMParams

BACKENDS = ["sim-crossbar-arc2", "sim-crossbar-arcone", "sim-crossbar-smu-matrix"]


def crossbar(station):
    """The simulated crossbar of a station's bench."""
    from mocks.devices.crossbar import Crossbar

    return next(d for d in station.bench.devices.values() if isinstance(d, Crossbar))


def transactions(station) -> int:
    """Host transactions every mock of the bench has answered so far."""
    return sum(getattr(i, "transactions", getattr(i, "messages", 0))
               for i in station.bench.instruments.values())


@pytest.mark.parametrize("name", BACKENDS)
def test_array_read_matches_the_crossbar_and_costs_few_transactions(name, tmp_path):
    with Station.load(name, sim=True) as station:
        array = station.instrument("array")
        xbar = crossbar(station)
        if array.capabilities.whole_array_read:
            array.read_all(0.2, "v/3" if "arcone" in name else "ground")  # configured once
            before = transactions(station)
            array.read_all(0.2, "v/3" if "arcone" in name else "ground")
            used = transactions(station) - before
            assert used <= 2, f"{name}: whole-array read took {used} transactions"
        frame = labctl.run("array-read", station=station, out=tmp_path)
        g = frame.pivot(index="Row", columns="Column", values="Conductance (S)").to_numpy()
        true = xbar.conductance
        ok = xbar.devices.state == 0
        # read noise is +-1 % uniform; with the other lines grounded no sneak current is sensed
        rel = np.abs(g[ok] / true[ok] - 1)
        assert np.max(rel) < 0.03, f"{name}: worst read error {np.max(rel):.3%}"
        maps = load_maps(frame.attrs["results_file"])
        assert np.allclose(maps["conductance"], g, equal_nan=True)


def check_write_verify(station, frame, rows) -> float:
    """The checks of a write-verify run on ``rows`` of a bench's crossbar: the unformable
    devices named stuck, the results agreeing with the devices, every pulse logged; returns the
    share of the programmable devices within tolerance."""
    xbar = crossbar(station)
    unformed = ~xbar.devices.formed[rows]
    status = frame.pivot(index="Row", columns="Column", values="Status").to_numpy()
    assert unformed.any(), "the bench should have a few unformable devices"
    assert np.array_equal(status == "stuck", unformed), "the unformed devices, named stuck"
    # the final map agrees with the devices themselves (no reporting artefact)
    g_true = xbar.conductance[rows]
    target = frame.pivot(index="Row", columns="Column", values="Target (S)").to_numpy()
    conv = status == "converged"
    assert np.median(np.abs(g_true[conv] / target[conv] - 1)) < 0.05
    pulses = load_pulses(frame.attrs["results_file"])
    assert len(pulses) == frame["Pulses"].sum()
    assert station.instrument("array").pulse_log.sink is None  # detached after the run
    # the share of the programmable devices (a formed device whose target is out of its reach
    # at the largest amplitude and width counts as not programmed)
    return float(np.mean(status[~unformed] == "converged"))


@pytest.mark.parametrize("name", BACKENDS[:2])
def test_write_verify_programs_a_random_map_and_names_stuck_devices(name, tmp_path):
    with Station.load(name, sim=True) as station:
        frame = labctl.run("write-verify", station=station, out=tmp_path, tolerance=5.0,
                           max_pulses=80)
        share = check_write_verify(station, frame, slice(None))
    assert share >= 0.95, f"{name}: only {share:.1%} converged"


def test_write_verify_through_the_smu_and_matrix(tmp_path):
    """An SMU pulse is a 2450 list-sweep point: 2.05 ms at least. On the VirtualArC device a
    pulse that long at or above the 0.8 V threshold covers x/(1 + x) of the way to its level
    r(V), x = s(V)·|r − R|·Δt ≥ 6.7 Ω⁻¹s⁻¹ · 660 Ω · 2.05 ms ≈ 9 for every conductance of the
    default random map (1.15e-4..1.9e-4 S, between the SET floor r_n ≤ 4.6 kΩ and the RESET
    ceiling r_p ≥ 9.4 kΩ): those levels need pulses of ~20 µs. What ms pulses program are the
    levels themselves, r(V) = a0 + a1·|V|, through the amplitude; under float the half-selected
    devices see about V/2, so |V| < 1.6 V (the threshold twice). The target map here: per
    device at random the SET floor or the RESET ceiling of a random amplitude of 0.9..1.4 V
    (published a0, a1; each device's own a0, a1 differ by 3 %, which the verify loop finds)."""
    p = RRAMParams()
    rng = np.random.default_rng(7)
    amplitude = rng.uniform(0.9, 1.4, (32, 32))
    level = np.where(rng.random((32, 32)) < 0.5, p.a0_n - p.a1_n * amplitude,
                     p.a0_p + p.a1_p * amplitude)
    np.save(tmp_path / "target.npy", 1 / level)
    rows = slice(6, 8)  # two of the bench's unformable devices are on them
    with Station.load("sim-crossbar-smu-matrix", sim=True) as station:
        frame = labctl.run("write-verify", station=station, out=tmp_path, rows="6-7",
                           target=str(tmp_path / "target.npy"), tolerance=5.0, max_pulses=80,
                           pulse_bias="float", read_bias="ground", width_start=2.1e-3,
                           width_max=2.1e-3, v_set_start=0.8, v_set_max=1.5,
                           v_reset_start=-0.8, v_reset_max=-1.5, v_step=0.05)
        share = check_write_verify(station, frame, rows)
        smu = station.bench.instruments["smu"]
        assert not smu.output_on
    assert share >= 0.95, f"smu-matrix: only {share:.1%} converged"


def test_write_verify_refuses_bad_input_before_anything_is_applied(tmp_path):
    with Station.load("sim-crossbar-arc2", sim=True) as station:
        r_before = crossbar(station).devices.resistance
        for params, match in [
            ({"v_set_max": 5.0}, "v_set_max = 5 V exceeds the chip's voltage limit"),
            ({"rows": "0-40"}, "rows = '0-40': index 32 outside 0..31"),
            ({"target": str(tmp_path / "missing.npy")}, "missing.npy"),
            ({"g_min": 2e-4, "g_max": 1e-4}, "g_min"),
        ]:
            with pytest.raises(ConfigError, match=match):
                labctl.run("write-verify", station=station, out=tmp_path, **params)
        assert np.array_equal(crossbar(station).devices.resistance, r_before)
        assert len(station.instrument("array").pulse_log) == 0


def test_write_verify_reads_a_target_file(tmp_path):
    target = np.full((32, 32), np.nan)
    target[0, :4] = [1.2e-4, 1.4e-4, 1.6e-4, 1.8e-4]
    np.save(tmp_path / "target.npy", target)
    frame = labctl.run("write-verify", sim=True, out=tmp_path, rows="0", cols="0-3",
                       target=str(tmp_path / "target.npy"))
    assert list(frame["Status"]) == ["converged"] * 4
    assert np.allclose(frame["Conductance (S)"], target[0, :4], rtol=0.05)


def test_array_form_forms_virgin_devices_and_lists_the_rest(tmp_path):
    with Station.load("sim-crossbar-virgin", sim=True) as station:
        xbar = crossbar(station)
        formable = xbar.devices.device_parameters().get("formable")
        frame = labctl.run("array-form", station=station, out=tmp_path, rows="0-3",
                           compliance=1e-3, pulse_bias="v/3")
        formed = frame["Formed"].to_numpy().astype(bool)
        rows, cols = frame["Row"].to_numpy(), frame["Column"].to_numpy()
        assert np.array_equal(formed, xbar.devices.formed[rows, cols])
        if formable is not None:
            assert np.array_equal(formed, np.asarray(formable).reshape(32, 32)[rows, cols])
        assert formed.mean() > 0.9
        v = frame.loc[formed, "Forming voltage (V)"]
        p = xbar.devices.params
        assert abs(v.median() - p.v_form_mean) < 3 * p.v_form_std
        assert (xbar.devices.state[rows, cols] == 0).all(), "no device broke down"


def test_write_verify_tells_a_target_out_of_reach_from_a_stuck_device(tmp_path):
    """5e-4 S (2 kΩ) lies beyond the SET floor at the largest amplitude (a0_n − a1_n·1.6 V
    ≈ 4.2 kΩ): the device switches toward it, then stops moving at full drive."""
    target = np.full((32, 32), np.nan)
    target[0, :3] = [1.2e-4, 5e-4, 1.6e-4]
    np.save(tmp_path / "target.npy", target)
    with Station.load("sim-crossbar-arc2", sim=True) as station:
        proc = runner.build("write-verify", {"rows": "0", "cols": "0-2",
                                             "target": str(tmp_path / "target.npy")})
        results = runner.execute(proc, station, tmp_path)
    assert list(results.data["Status"]) == ["converged", "out of reach", "converged"]
    assert "1 with the target out of reach" in proc.summary()
    assert proc.counts()["stuck"] == 0
