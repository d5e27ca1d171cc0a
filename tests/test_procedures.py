"""End to end on the simulated bench: the recovered physics, the safe state, abort and errors."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
from pymeasure.experiment import Procedure, Results

import labctl
from labctl import runner
from labctl.errors import ConfigError
from labctl.station import Station
from procedures.forming import Forming
from procedures.iv_sweep import IVSweep, bipolar_staircase


def assert_safe(station: Station) -> None:
    smu = station.bench.instruments["smu"]
    assert not smu.output_on
    assert smu.device_voltage == 0.0
    device = station.bench.devices["cell"]
    assert device.max_abs_voltage.max() <= station.limits.voltage


def test_staircase_is_bipolar_without_repeats():
    s = bipolar_staircase(1.0, -0.5, 0.25)
    np.testing.assert_allclose(s, [0, .25, .5, .75, 1, .75, .5, .25, 0, -.25, -.5, -.25, 0])


def test_iv_sweep_hysteresis_on_both_transports(any_transport_station, tmp_path):
    station = any_transport_station
    df = labctl.run("iv-sweep", station=station, out=tmp_path, cycles=2, v_max=1.5, v_min=-1.5)
    steps = bipolar_staircase(1.5, -1.5, 0.05)
    assert len(df) == 2 * steps.size
    assert (df["Cycle"].unique() == [1, 2]).all()
    on = df[df["Set voltage (V)"].abs() > 0.05]
    # current follows the sign of the voltage; the cell is a few kilo-ohm device
    assert (np.sign(on["Current (A)"]) == np.sign(on["Set voltage (V)"])).all()
    r_read = on[on["Set voltage (V)"].abs() < 0.5]["Resistance (ohm)"]
    assert r_read.between(3e3, 2e4).all()
    # hysteresis: at the same small positive read voltage, R differs between the up and the down
    # branch of the loop (positive SET lowered R on the way up; the device remembers)
    cyc = df[df["Cycle"] == 2].reset_index(drop=True)
    up = cyc.iloc[: steps.argmax() + 1]
    down = cyc.iloc[steps.argmax():]
    v = 0.3
    r_up = up.loc[np.isclose(up["Set voltage (V)"], v), "Resistance (ohm)"].iloc[0]
    r_down = down.loc[np.isclose(down["Set voltage (V)"], v), "Resistance (ohm)"].iloc[0]
    assert r_down < 0.9 * r_up
    assert_safe(station)
    # the file on disk is the same data, loadable by pymeasure and pandas
    results = Results.load(df.attrs["results_file"])
    assert len(results.data) == len(df)
    assert "labctl version" in open(df.attrs["results_file"]).read()


def test_pulsed_mode_reads_at_read_voltage(sim_station, tmp_path):
    df = labctl.run(IVSweep, station=sim_station, out=tmp_path, cycles=1, mode="pulsed",
                    v_read=0.1, pulse_width=1e-3, v_step=0.25)
    np.testing.assert_allclose(df["Voltage (V)"], 0.1, atol=1e-3)
    assert df["Pulse current (A)"].notna().all()
    assert_safe(sim_station)


def test_compliance_clamps_current(sim_station, tmp_path):
    df = labctl.run(IVSweep, station=sim_station, out=tmp_path, cycles=1, compliance=1e-5,
                    v_step=0.1)
    assert df["Current (A)"].abs().max() <= 1e-5 * 1.01
    # in compliance the device sees less than the set voltage
    clamped = df[df["Set voltage (V)"].abs() > 0.5]
    assert (clamped["Voltage (V)"].abs() < clamped["Set voltage (V)"].abs()).all()
    assert_safe(sim_station)


def test_forming_detects_drop_and_reports_voltage(tmp_path):
    with Station.load("sim-rram-cell", sim=True) as station:
        device = station.bench.devices["cell"]
        v_form = device.device_parameters()["v_form"][0]
        assert device.resistance[0] >= 1e6
        proc = runner.build(Forming, {"v_step": 0.05, "compliance": 1e-4})
        runner.execute(proc, station, tmp_path)
        assert proc.status == Procedure.FINISHED
        assert proc.forming_voltage == pytest.approx(v_form, abs=0.05 + 1e-9)
        assert 4.25e3 <= proc.formed_resistance <= 1e4
        assert device.formed[0] and device.state[0] == 0  # formed and not broken down
        assert_safe(station)


def test_forming_without_enough_voltage_reports_not_formed(tmp_path):
    with Station.load("sim-rram-cell", sim=True) as station:
        proc = runner.build(Forming, {"v_stop": 1.0})
        runner.execute(proc, station, tmp_path)
        assert proc.forming_voltage is None
        assert "not formed" in proc.summary()
        assert not station.bench.devices["cell"].formed[0]
        assert_safe(station)


def test_parameter_beyond_limit_fails_before_anything_is_applied(sim_station, tmp_path):
    with pytest.raises(ConfigError, match="v_max = 5 V exceeds the chip's voltage limit 4 V"):
        labctl.run(IVSweep, station=sim_station, out=tmp_path, v_max=5.0)
    assert sim_station.bench.clock.now == 0.0  # no instrument time: nothing was sent
    assert sim_station.bench.devices["cell"].max_abs_voltage.max() == 0.0
    assert not list(tmp_path.iterdir())


def test_driver_limits_hold_even_when_procedure_checks_are_bypassed(sim_station):
    smu = sim_station.instrument("smu")
    with pytest.raises(ValueError):
        smu.source_voltage = 4.5
    with pytest.raises(ValueError):
        smu.sweep_voltage_list([0, 1, 4.1], delay=0)
    with pytest.raises(ValueError):
        smu.compliance_current = 0.01
    assert sim_station.bench.devices["cell"].max_abs_voltage.max() == 0.0


class _Boom(IVSweep):
    """An iv-sweep that fails in the middle of the run."""

    def execute(self):
        smu = self.instruments["smu"]
        smu.source_voltage = 1.0
        smu.output_enabled = True
        raise RuntimeError("simulated failure mid-run")


def test_error_mid_run_leaves_safe_state(sim_station, tmp_path):
    with pytest.raises(runner.RunError, match="simulated failure mid-run"):
        labctl.run(_Boom, station=sim_station, out=tmp_path)
    assert_safe(sim_station)


def test_abort_within_one_point(sim_station, tmp_path):
    proc = runner.build(IVSweep, {"cycles": 50})
    # abort through the worker as the GUI does: stop after the first rows
    proc.station = sim_station
    results = Results(proc, str(tmp_path / "abort.csv"))
    worker = runner._Worker(results)
    real_emit = worker.emit
    rows = []

    def emit(topic, record):
        real_emit(topic, record)
        if topic == "results":
            rows.append(record)
            if len(rows) == 5:
                worker.stop()

    worker.emit = emit
    worker.start()
    threading.Thread.join(worker, 30)  # pymeasure's Worker.join would stop it at once
    assert proc.status == Procedure.ABORTED
    assert len(rows) == 5  # honoured at the next point
    assert len(pd.read_csv(tmp_path / "abort.csv", comment="#")) == 5
    assert_safe(sim_station)


def test_python_api_returns_dataframe_with_hardware_time(tmp_path):
    df = labctl.run("iv-sweep", sim=True, out=tmp_path, cycles=1, v_step=0.1)
    assert isinstance(df, pd.DataFrame)
    assert df.attrs["hardware_time_s"] > 0
    assert df.attrs["results_file"].endswith(".csv")


def test_seed_defines_the_simulated_chip(tmp_path):
    a = labctl.run("iv-sweep", sim=True, out=tmp_path, cycles=1, seed=3)
    b = labctl.run("iv-sweep", sim=True, out=tmp_path, cycles=1, seed=3)
    c = labctl.run("iv-sweep", sim=True, out=tmp_path, cycles=1, seed=4)
    np.testing.assert_array_equal(a["Current (A)"], b["Current (A)"])
    assert not np.array_equal(a["Current (A)"], c["Current (A)"])


def test_pulse_on_time_counts_the_measurement(sim_station, tmp_path):
    # 10 ms pulses plus 0.1 NPLC of measurement exceed the station's 10 ms pulse limit
    with pytest.raises(ConfigError, match="pulse_on_time = 0.012 s exceeds"):
        labctl.run(IVSweep, station=sim_station, out=tmp_path, mode="pulsed", pulse_width=0.01)


@pytest.mark.parametrize("name", ["v_step", "v_max", "compliance"])
def test_non_finite_parameters_are_rejected(name):
    with pytest.raises(ConfigError, match=f"parameter {name}: 'nan' is not a finite number"):
        runner.build(IVSweep, {name: "nan"})


def test_unwritable_out_fails_before_the_run(sim_station):
    with pytest.raises(ConfigError, match="--out /proc/labctl: cannot write results"):
        labctl.run(IVSweep, station=sim_station, out="/proc/labctl")
    assert not sim_station.bench.instruments["smu"].output_on


def test_long_dwell_abort_costs_at_most_one_chunk_of_instrument_time(sim_station, tmp_path):
    # 0.5 s per point: a cycle of 13 points would take 6.5 s; the stop requested after the
    # instrument's first chunk (1 s at most) must end the run at the next chunk boundary
    proc = runner.build(IVSweep, {"cycles": 1, "delay": 0.5, "v_step": 0.25, "v_max": 1.0,
                                  "v_min": -0.5})
    proc.station = sim_station
    results = Results(proc, str(tmp_path / "slow.csv"))
    worker = runner._Worker(results)
    smu = sim_station.instrument("smu")
    real_sweep = smu.sweep_voltage_list

    def sweep_then_stop(*args, **kwargs):
        out = real_sweep(*args, **kwargs)
        worker.stop()
        return out

    smu.sweep_voltage_list = sweep_then_stop
    worker.start()
    threading.Thread.join(worker, 30)
    del smu.sweep_voltage_list
    assert proc.status == Procedure.ABORTED
    assert sim_station.hardware_time < 2 * IVSweep.MAX_CHUNK_S
    assert_safe(sim_station)
