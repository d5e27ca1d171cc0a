"""Array procedures end to end on the simulated ArC TWO benches: conductance update, weak reset,
retention and endurance. Each recovers the physics its bench was built with, within a tolerance
derived from the statistics; leaves the controller's lines grounded after a finish and after an
abort; writes an array file whose pulse log holds every pulse applied; and refuses bad
parameters with one line before anything reaches a device."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import yaml
from pymeasure.experiment import Procedure, Results

import labctl
from labctl import runner
from labctl.arrayfile import load_pulses, load_traces
from labctl.errors import ConfigError
from labctl.registry import BENCH_DIR, STATION_DIR
from labctl.station import Station
from procedures.conductance_update import ConductanceUpdate, fit_update, update_shape
from procedures.endurance import Endurance, closing_cycle
from procedures.retention import fit_drift
from procedures.weak_reset import (
    FIT_COLUMNS,
    fit_weak_reset,
    identified,
    model,
    published_statistics,
    resolved,
)


@pytest.fixture
def station(request):
    st = Station.load(request.param, sim=True)
    yield st
    st.close()


def crossbar(st: Station):
    return st.bench.devices["xbar"]


def assert_safe(st: Station) -> None:
    """Every ArC TWO channel back at 0 V (arbitrary-voltage mode, not floating), and no device
    ever saw more than the chip's voltage limit."""
    levels = st.bench.instruments["array"].line_levels()
    assert np.isfinite(levels).all() and np.allclose(levels, 0.0, atol=1e-3)
    assert crossbar(st).devices.max_abs_voltage.max() <= st.limits.voltage


def devices_of(rows: str, cols: str, shape=(32, 32)):
    proc = ConductanceUpdate()
    proc.rows, proc.cols = rows, cols
    return proc.devices(shape)


# ============================================================================ the fits alone
def test_update_fit_recovers_nu_on_the_model():
    p = np.arange(41)
    nu = np.array([-6.0, 0.0, 0.7, 4.0, 15.0])
    g = 1e-4 + 1.5e-4 * update_shape(nu[:, None], p[None, :] / 40)
    fit = fit_update(p, g, 40)
    np.testing.assert_allclose(fit["nu"], nu, atol=1e-5)
    np.testing.assert_allclose(fit["g_start"], 1e-4, rtol=1e-6)
    np.testing.assert_allclose(fit["g_end"], 2.5e-4, rtol=1e-6)


def test_knee_fit_is_exact_on_the_mean_model():
    t = np.arange(15, 1501, dtype=float)
    knee = np.array([60.0, 400.0, 1200.0])
    m1, m2, a = np.array([7e-4, 3e-4, 1e-3]), np.array([3e-5, 0.0, 1e-4]), np.full(3, 8.8)
    ln_r = model(t, a, m1, knee, m2)
    fit = fit_weak_reset(t, ln_r, 20, 1450)
    np.testing.assert_allclose(fit["knee"], knee)
    np.testing.assert_allclose(fit["m1"], m1, rtol=1e-6)
    np.testing.assert_allclose(fit["m2"], m2, atol=1e-9)
    # one-sided telegraph excursions are trimmed, not fitted
    noisy = ln_r.copy()
    noisy[:, 700:900] += 0.2
    fit = fit_weak_reset(t, noisy + 1e-3 * np.sin(t), 20, 1450)
    np.testing.assert_allclose(fit["knee"], knee, rtol=0.02)
    assert np.all(fit["trimmed"] > 0.1)


def test_drift_fit_and_closing_runs():
    t = np.geomspace(1, 1e4, 15)
    g = 1e-4 * (1 + t[None, :] / np.array([[0.5], [3.0]])) ** -np.array([[0.05], [0.2]])
    fit = fit_drift(t, g)
    np.testing.assert_allclose(fit["nu"], [0.05, 0.2], rtol=1e-4)
    np.testing.assert_allclose(fit["t0"], [0.5, 3.0], rtol=1e-3)
    # (cycles, devices); device 1 carries a run of 1 from the previous chunk
    closed = np.array([[0, 1, 1], [1, 1, 0], [1, 1, 1], [1, 0, 1]], dtype=bool)
    done, run = closing_cycle(closed, np.array([0, 1, 0]), 3)
    assert list(done) == [3, 1, -1] and list(run) == [3, 0, 2]


def test_published_statistics_of_the_weak_reset_model():
    p = published_statistics(64)
    assert p["knee"]["median"] == pytest.approx(515.1, abs=0.5)  # 542.5 before truncation
    assert p["m1"]["mean"] == pytest.approx(6.94e-4, rel=1e-3)
    assert p["m1"]["median"] == pytest.approx(3.742e-5 + 6.565e-4 * math.log(2), rel=1e-3)
    # se of a median: sqrt(p(1-p)/n)/f(median); for the (nearly untruncated) exponential
    # f(median) = 1/(2 scale), so se = scale/sqrt(n)
    assert p["m1"]["median_se"] == pytest.approx(6.565e-4 / 8, rel=1e-3)


# ============================================================================ conductance update
def _simulate_update(r_init, dev, params, proc, rng, m):
    """Monte Carlo of the run on the published closed form (PHYSICS.md §1.1) with the model's
    C2C rule and read noise: conductances (m, 2N + 1, devices) as the procedure reads them."""
    b, vr = params.iv_nonlinearity_b, proc.v_read
    r = np.broadcast_to(r_init, (m, r_init.size)).copy()

    def pulse(r, v, width):
        if v > 0:  # SET: toward r_n = a0_n - a1_n |V|, from above
            amp, t, target = np.abs(dev["A_n"]), dev["t_n"], dev["a0_n"] - dev["a1_n"] * abs(v)
            dist = np.minimum(target - r, 0.0)
        else:  # RESET: toward r_p = a0_p + a1_p |V|, from below
            amp, t, target = dev["A_p"], dev["t_p"], dev["a0_p"] + dev["a1_p"] * abs(v)
            dist = np.maximum(target - r, 0.0)
        x = amp * np.expm1(abs(v) / t) * np.abs(dist) * width
        g = np.clip(x / (1 + x) * (1 + params.c2c_rel_std * rng.standard_normal(r.shape)), 0, 1)
        return r + g * dist

    def read(r):
        noise = 1 + rng.uniform(-params.read_noise_rel, params.read_noise_rel, r.shape)
        return np.sinh(b * vr) / (b * r) * noise / vr

    r = pulse(r, proc.prepare_amplitude, proc.prepare_width)
    out = [read(r)]
    for v, w in ((proc.set_amplitude, proc.set_width), (proc.reset_amplitude, proc.reset_width)):
        for _ in range(proc.n_pulses):
            r = pulse(r, v, w)
            out.append(read(r))
    return np.stack(out, axis=1)


@pytest.mark.parametrize("station", ["sim-crossbar-arc2"], indirect=True)
def test_conductance_update_matches_the_device_model(station, tmp_path):
    rows, cols = devices_of("0-1", "0-7")
    xbar = crossbar(station).devices
    r_init = xbar.resistance[rows, cols]
    proc = runner.build(ConductanceUpdate, {"rows": "0-1", "cols": "0-7"})
    results = runner.execute(proc, station, tmp_path)
    assert_safe(station)
    n, devices = proc.n_pulses, rows.size
    df = results.data
    assert len(df) == 2 * n + 1 and list(df["Pulse"]) == list(range(2 * n + 1))
    # the array file: every pulse applied (the preparing one, then 2N per device)
    pulses = load_pulses(results.data_filename)
    assert len(pulses) == devices * (1 + 2 * n)
    assert (pulses.groupby(["row", "col"]).size() == 1 + 2 * n).all()
    traces = load_traces(results.data_filename)
    assert traces["conductance"].shape == (2 * n + 1, devices)
    fit = proc.fit
    switching = fit["switching"].astype(bool)
    assert switching.sum() == xbar.formed[rows, cols].sum()  # unformed devices do not switch
    # the recovered physics: each fitted value against the distribution of the same fit on
    # Monte Carlo runs of the device model from the same start (its own C2C and read noise)
    dev = {k: v[rows, cols] for k, v in xbar.device_parameters().items()}
    sim = _simulate_update(r_init, dev, xbar.params, proc, np.random.default_rng(7), 200)
    p = np.arange(n + 1)
    z = []
    for k in np.flatnonzero(switching):
        pot = fit_update(p, sim[:, : n + 1, k], n)
        dep = fit_update(p, sim[:, n:, k], n)
        z.append([(fit[name][k] - mc.mean()) / mc.std() for name, mc in (
            ("nu_p", pot["nu"]), ("nu_d", dep["nu"]), ("g_max_p", pot["g_end"]),
            ("g_min_d", dep["g_end"]))])
    z = np.array(z)  # (devices, quantities): z-scores against the Monte Carlo spread
    m = z.shape[0]
    # unbiased: the mean z of each quantity over the devices within 3/√m; consistent spread:
    # the rms z within 3 standard errors of 1 (√(1/(2m))); no device beyond 5 sd (a bound
    # for m·4 values of somewhat non-normal, clipped-C2C distributions)
    assert np.all(np.abs(z.mean(axis=0)) < 3 / math.sqrt(m)), z.mean(axis=0)
    assert np.all(np.abs(np.sqrt((z**2).mean(axis=0)) - 1) < 3 / math.sqrt(2 * m)), z
    assert np.abs(z).max() < 5
    assert "did not switch" in proc.summary() or switching.all()


# ============================================================================ weak reset
def _fit_table(results_file) -> dict[str, np.ndarray]:
    traces = load_traces(results_file)
    return dict(zip(FIT_COLUMNS, traces["fit"].T, strict=True))


def _mean_model_station(tmp_path) -> Station:
    """The shipped HfOx bench with the telegraph and 1/f noise switched off (device-to-device
    spread and read noise kept), as a station file beside the test."""
    bench = yaml.safe_load((BENCH_DIR / "crossbar-hfox-arc2.yaml").read_text())
    bench["name"] = "crossbar-hfox-d2d"
    bench["devices"]["xbar"]["params"].update(rtn=False, flicker=False)
    (tmp_path / "bench.yaml").write_text(yaml.safe_dump(bench))
    station = yaml.safe_load((STATION_DIR / "sim-crossbar-hfox.yaml").read_text())
    station["bench"] = str(tmp_path / "bench.yaml")
    (tmp_path / "station.yaml").write_text(yaml.safe_dump(station))
    return Station.load(tmp_path / "station.yaml", sim=True)


def test_weak_reset_recovers_the_published_statistics(tmp_path):
    with _mean_model_station(tmp_path) as st:
        df = labctl.run("weak-reset", station=st, out=tmp_path / "out", rows="0-1")
        assert_safe(st)
    fit = _fit_table(df.attrs["results_file"])
    n = fit["knee"].size
    pub = published_statistics(n)
    # The fitted values of n = 64 devices are a sample of the published distributions; their
    # median (mean, sd of ln t*) differs from the published one by its sampling standard error
    # (published_statistics: √(p(1 − p)/n)/f(median) for a median); the fit's own error is two
    # orders of magnitude smaller without the telegraph and 1/f noise. 3 standard errors.
    assert abs(np.median(fit["knee"]) - pub["knee"]["median"]) < 3 * pub["knee"]["median_se"]
    assert abs(np.std(np.log(fit["knee"]), ddof=1) - pub["knee"]["sigma_ln"]) \
        < 3 * pub["knee"]["sigma_ln_se"]
    assert abs(np.median(fit["m1"]) - pub["m1"]["median"]) < 3 * pub["m1"]["median_se"]
    assert abs(np.mean(fit["m1"]) - pub["m1"]["mean"]) < 3 * pub["m1"]["mean_se"]
    assert abs(np.median(fit["m2"]) - pub["m2"]["median"]) < 3 * pub["m2"]["median_se"]


@pytest.mark.parametrize("station", ["sim-crossbar-hfox"], indirect=True)
def test_weak_reset_on_the_full_noise_model(station, tmp_path):
    proc = runner.build("weak-reset", {"rows": "0-1"})
    results = runner.execute(proc, station, tmp_path)
    df = results.data
    df.attrs["results_file"] = results.data_filename
    assert_safe(station)
    n_pulses, (rows, cols) = 2500, devices_of("0-1", "all")
    n = rows.size
    assert len(df) == n_pulses + 1 and (df["Pulse"] == np.arange(n_pulses + 1)).all()
    assert len(load_pulses(df.attrs["results_file"])) == n * (1 + n_pulses)
    assert load_traces(df.attrs["results_file"])["resistance"].shape == (n_pulses + 1, n)
    fit = _fit_table(df.attrs["results_file"])
    true = {k: v[rows, cols] for k, v in crossbar(station).devices.device_parameters().items()}
    # telegraph episodes are trimmed (at most the time spent in the high state, 0.29) and
    # resolved knees are where they were drawn: per device within a few % (the knee moves by
    # about noise/(m1 − m2), a few pulses)
    assert 0.02 < fit["trimmed"].mean() < 0.29
    ok = resolved(fit)
    assert ok.sum() >= n / 3
    err = np.log(fit["knee"][ok] / true["t_star"][ok])
    assert np.median(np.abs(err)) < 0.05 and np.mean(np.abs(err) > 0.2) < 0.1
    assert np.median(np.abs(fit["m1"] / true["m1"] - 1)[ok]) < 0.05
    # the published statistics with every noise term on, each within 3 standard errors of a
    # sample of that many devices (published_statistics): the slopes over all devices, the
    # knee over the devices with an identifiable one (m1 >= knee_m1_min: a selection on m1,
    # which the model draws independently of t*), R0·e^c1 with the mean of the 1/f term
    # (+0.054 in ln R) taken off
    pub = published_statistics(n)
    assert abs(np.median(fit["m1"]) - pub["m1"]["median"]) < 3 * pub["m1"]["median_se"]
    assert abs(np.mean(fit["m1"]) - pub["m1"]["mean"]) < 3 * pub["m1"]["mean_se"]
    assert abs(np.median(fit["m2"]) - pub["m2"]["median"]) < 3 * pub["m2"]["median_se"]
    stats = proc.stats
    knee = fit["knee"][identified(fit, 2e-4)]
    assert stats["n_knee"] == knee.size >= n / 2
    pub_knee = published_statistics(knee.size)["knee"]
    assert abs(stats["knee_median"] - pub_knee["median"]) < 3 * pub_knee["median_se"]
    assert abs(stats["knee_sigma_ln"] - pub_knee["sigma_ln"]) < 3 * pub_knee["sigma_ln_se"]
    assert abs(stats["r_start_median"] - pub["r_start"]["median"]) \
        < 3 * pub["r_start"]["median_se"]
    # the same devices' own knees: the selection keeps the median of the drawn t*
    assert abs(np.median(knee) / np.median(true["t_star"]) - 1) < pub_knee["median_se"] \
        / pub_knee["median"]


# ============================================================================ retention
@pytest.mark.parametrize("station", ["sim-crossbar-drift"], indirect=True)
def test_retention_recovers_the_drift_exponent(station, tmp_path):
    params = crossbar(station).devices.params
    proc = runner.build("retention", {"rows": "0-3", "t_first": 1.0, "t_last": 1e4,
                                      "n_points": 16})
    results = runner.execute(proc, station, tmp_path)
    assert_safe(station)
    assert len(results.data) == 16
    # the reads happen at the scheduled (virtual) times, stamped at their middle
    np.testing.assert_allclose(proc.times, proc.schedule(), rtol=1e-6, atol=5e-3)  # read: ms
    assert station.hardware_time > 1e4
    fit = proc.fit
    z = (fit["nu"] - params.retention_nu) / fit["nu_se"]
    # no bias: the mean exponent within 4 standard errors of the mean of the true one
    assert abs(proc.stats["mean"] - params.retention_nu) < 4 * proc.stats["sem"]
    # each device's error is what its own standard error says (±1 % uniform read noise): 16
    # points, 3 parameters, so z follows Student's t with 13 degrees of freedom (sd 1.087); the
    # sd of 128 of them is within 3 of its standard errors sd/√(2·127), and the largest |z| of
    # 128 within the two-sided 1 % Bonferroni bound t_13(1 − 0.005/128) ≈ 5.8
    t_sd = math.sqrt(13 / 11)
    assert abs(z.std(ddof=1) - t_sd) < 3 * t_sd / math.sqrt(2 * (z.size - 1))
    assert np.abs(z).max() < 5.8
    assert proc.stats["t0_median"] == pytest.approx(params.retention_t0_s, rel=0.5)
    assert len(load_pulses(results.data_filename)) == 128  # the programming pulse


# ============================================================================ endurance
@pytest.mark.parametrize("station", ["sim-crossbar-endurance"], indirect=True)
def test_endurance_detects_each_devices_drawn_endurance(station, tmp_path):
    rows, cols = devices_of("0-1", "0-7")
    endurance = crossbar(station).devices.device_parameters()["endurance"][rows, cols]
    proc = runner.build(Endurance, {"rows": "0-1", "cols": "0-7", "max_cycles": 600,
                                    "chunk_cycles": 50})
    results = runner.execute(proc, station, tmp_path)
    assert_safe(station)
    ctf = proc.cycles_to_failure
    window = load_traces(results.data_filename)["window"]
    closed_after, min_window = proc.closed_after, proc.min_window
    failing = endurance + closed_after <= proc.max_cycles
    assert np.array_equal(ctf >= 0, failing)
    # A device's window closes at its cycle E + 1 (the E-th SET that follows a RESET wears it
    # out). Cycles to failure = E, unless open cycles just before it happened to read closed
    # (the model's C2C spread: a few % of cycles read below min_window): then the closed run
    # starts earlier, and every cycle in between must indeed read closed.
    for k in np.flatnonzero(failing):
        e, c = int(endurance[k]), int(ctf[k])
        assert c <= e
        assert np.all(window[c:e, k] < min_window)
        assert c == 0 or window[c - 1, k] >= min_window
    assert np.mean(ctf[failing] == endurance[failing]) >= 0.8
    # a device stops at the end of the chunk in which its failure was seen: the pulse log
    pulses = load_pulses(results.data_filename).groupby(["row", "col"]).size()
    detected = np.where(ctf >= 0, ctf + closed_after, proc.cycles_run)
    chunks = np.minimum(np.ceil(detected / 50) * 50, proc.max_cycles)
    np.testing.assert_array_equal(pulses.loc[list(zip(rows, cols))].to_numpy(), 2 * chunks)


# ============================================================================ abort
def _run_and_stop(proc, st, path, after_rows: int):
    """Run ``proc`` in a pymeasure worker and stop it after ``after_rows`` rows (as the GUI)."""
    proc.station = st
    proc.results_path = str(path)
    results = Results(proc, str(path))
    worker = runner._Worker(results)
    real_emit = worker.emit
    rows = []

    def emit(topic, record):
        real_emit(topic, record)
        if topic == "results":
            rows.append(record)
            if len(rows) == after_rows:
                worker.stop()

    worker.emit = emit
    worker.start()
    threading.Thread.join(worker, 60)
    return rows


@pytest.mark.parametrize("station", ["sim-crossbar-endurance"], indirect=True)
def test_endurance_abort_leaves_lines_grounded_and_the_pulse_log_complete(station, tmp_path):
    proc = runner.build(Endurance, {"rows": "0", "cols": "0-3", "max_cycles": 100_000,
                                    "chunk_cycles": 10})
    runner.preflight(proc, station)
    rows = _run_and_stop(proc, station, tmp_path / "endurance.csv", 3)
    assert proc.status == Procedure.ABORTED
    assert len(rows) == 3  # honoured at the next row
    assert_safe(station)
    # the device model counts its own SET/RESET cycles: the log holds exactly those pulses
    cycles = crossbar(station).devices.cycles[0, :4]
    pulses = load_pulses(tmp_path / "endurance.h5")
    assert len(pulses) == int(2 * (cycles + 1).sum()) == 2 * 10 * 4


@pytest.mark.parametrize("station", ["sim-crossbar-drift"], indirect=True)
def test_retention_abort_while_waiting(station, tmp_path):
    proc = runner.build("retention", {"rows": "0", "t_last": 1e6})
    runner.preflight(proc, station)
    rows = _run_and_stop(proc, station, tmp_path / "retention.csv", 2)
    assert proc.status == Procedure.ABORTED
    assert len(rows) == 2
    assert station.hardware_time < 10.0  # the long waits after the stop never happened
    assert_safe(station)


# ============================================================================ bad parameters
@pytest.mark.parametrize("station", ["sim-crossbar-arc2"], indirect=True)
@pytest.mark.parametrize("name, params, message", [
    ("conductance-update", {"set_amplitude": 5.0},
     "set_amplitude = 5 V exceeds the chip's voltage limit 4 V"),
    ("conductance-update", {"set_width": 1e-8},
     "set_width = 1e-08 s, pulse_bias = float, read_bias = ground: array pulse: pulse width "
     "= 1e-08 s outside the controller's range"),
    ("conductance-update", {"reset_amplitude": -0.0}, "reset_amplitude must be negative"),
    ("endurance", {"reset_width": 0.05}, "reset_width = 0.05 s exceeds the chip's pulse_width"),
    ("endurance", {"rows": "40"}, "rows = '40': index 40 outside 0..31"),
    ("retention", {"t_first": 100.0, "t_last": 10.0}, "t_last = 10 s must be after"),
    ("retention", {"program_amplitude": -4.5}, "program_amplitude = -4.5 V exceeds"),
    ("weak-reset", {"n_pulses": 40}, "leaves no knee to search"),
    ("weak-reset", {"reset_amplitude": -4.5}, "reset_amplitude = -4.5 V exceeds"),
])
def test_bad_parameters_fail_before_anything_is_applied(station, tmp_path, name, params,
                                                        message):
    with pytest.raises(ConfigError) as info:
        labctl.run(name, station=station, out=tmp_path, **params)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert crossbar(station).devices.max_abs_voltage.max() == 0.0
    assert not list(tmp_path.iterdir())
