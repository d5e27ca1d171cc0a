"""The pulse generator inside switching-probability: the bench trigger line (SMU digital I/O
pin -> 81160A EXT IN), both mocks honouring it in virtual time, the B2900 driver's trigger
output, and the procedure's ``write_source = pulser`` path on the ``mtj-pulser`` bench (ns
widths, transactions independent of the trials over TCP, safe state, abort)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pymeasure.test import expected_protocol
from test_switching_procedure import assert_recovered, run_on, sim_station

from drivers.keysight_b2900 import KeysightB2900
from labctl.errors import ConfigError
from labctl.registry import BENCH_DIR
from labctl.runner import build, execute
from labctl.station import Station
from mocks.bench import Bench
from mocks.devices.stochastic import ic50
from procedures.switching_probability import SwitchingProbability

PULSED = dict(model="mtj-neel-brown", write_source="pulser", amplitude_start=0.15,
              amplitude_stop=0.45, points=10, widths="1.5e-9,3e-9,1e-8,1e-7", trials=100,
              adaptive_trials=300, refine=3, reset_amplitude=-250e-6, read_amplitude=10e-6,
              compliance=2.2)


@pytest.fixture
def pulser_station(tmp_path, monkeypatch):
    yield from sim_station("sim-mtj-pulser", tmp_path, monkeypatch)


def send(mock, *messages):
    for message in messages:
        mock.handle_message(message)
    assert mock.handle_message(":SYST:ERR?").startswith("0,")


def arm_pulser(pulser, high: float, period: float, width: float = 1e-8) -> None:
    send(pulser, f":PULS:PER1 {period}", f":PULS:WIDT1 {width}", ":VOLT1:LOW 0",
         f":VOLT1:HIGH {high}", ":ARM:SOUR1 EXT", ":TRIG1:COUN 1", ":OUTP1 ON")


def smu_trials(smu, trials: int, pin_function: str = "TOUT") -> np.ndarray:
    """[write slot, read, reset] x trials with a trigger per arm cycle; resistances."""
    send(smu, ":SOUR:FUNC:MODE CURR", ":SOUR:FUNC:SHAP PULS", ":SOUR:CURR:MODE LIST",
         ":SOUR:LIST:CURR 0,1e-5,-2.5e-4", ":SOUR:PULS:WIDT 1e-5", ":SENS:VOLT:PROT 2",
         ":TRIG:COUN 3", f":ARM:COUN {trials}", f":DIG:EXT1:FUNC {pin_function}",
         ":ARM:TRAN:TOUT:SIGN EXT1", ":ARM:TRAN:TOUT ON", ":INIT")
    v = np.array(smu.handle_message(":FETC:ARR:VOLT?").split(","), float)
    i = np.array(smu.handle_message(":FETC:ARR:CURR?").split(","), float)
    with np.errstate(invalid="ignore"):
        return (v / i).reshape(trials, 3)


def test_smu_fires_the_pulser_once_per_trial_in_the_write_slot():
    bench = Bench.load("mtj-pulser")
    smu, pulser = bench.instruments["smu"], bench.instruments["pulser"]
    arm_pulser(pulser, high=1.0, period=1e-6)  # 2 V open circuit: ~0.65 mA >> I_c0
    r = smu_trials(smu, 200)
    assert pulser.triggers_received == pulser.pulses_emitted == 200
    assert pulser.triggers_missed == 0
    r_p = bench.devices["mtj"].resistance_of(0, 0)
    assert np.all(r[:, 2] < 1.1 * r_p)  # every reset resets
    assert np.all(r[:, 1] > 2.0 * r_p)  # every pulse switched: the read after it sees R_AP


def test_no_pulse_without_trigger_output_pin_or_arming():
    bench = Bench.load("mtj-pulser")
    smu, pulser = bench.instruments["smu"], bench.instruments["pulser"]
    arm_pulser(pulser, high=1.0, period=1e-6)
    r = smu_trials(smu, 50, pin_function="DIO")  # the pin is not a trigger output
    assert pulser.triggers_received == 0
    assert np.all(r[:, 1] < 1.1 * bench.devices["mtj"].resistance_of(0, 0))
    send(pulser, ":ARM:SOUR1 IMM", ":OUTP1 OFF")  # received, but not armed on EXT IN
    smu_trials(smu, 50)
    assert pulser.triggers_received == 50 and pulser.pulses_emitted == 0


def test_triggers_while_busy_are_ignored_and_counted():
    """Arm cycles are 3 x (10 us pulse + 20 us overhead) = 90 us apart; a 1 ms period keeps the
    generator busy for 1 ms after each answered trigger, so it answers every 12th."""
    bench = Bench.load("mtj-pulser")
    smu, pulser = bench.instruments["smu"], bench.instruments["pulser"]
    arm_pulser(pulser, high=1.0, period=1e-3)
    smu_trials(smu, 200)
    answered = int(np.ceil(200 / 12))
    assert pulser.pulses_emitted == answered
    assert pulser.triggers_missed == 200 - answered


@pytest.mark.parametrize("line, message", [
    ("{from: smu, output: ext1, to: scope, input: ext}", "to: no instrument 'scope'"),
    ("{from: smu, output: ext15, to: pulser, input: ext}", "smu has no trigger output 'ext15'"),
    ("{from: pulser, output: ext1, to: smu, input: ext}", "pulser has no trigger output"),
    ("{from: smu, output: ext1, to: pulser, input: trig9}", "pulser has no trigger input"),
    ("{from: smu, to: pulser}", "each trigger line is {from: ROLE"),
])
def test_bad_trigger_lines_fail_with_one_clear_line(tmp_path, line, message):
    text = (Path(BENCH_DIR) / "mtj-pulser.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.split("triggers:")[0] + f"triggers:\n  - {line}\n")
    with pytest.raises(ConfigError, match=f"triggers\\[0\\].*{message}"):
        Bench.load(bad)


def test_driver_trigger_output_protocol():
    with expected_protocol(KeysightB2900, [
            (":SOUR:DIG:EXT3:FUNC TOUT;:ARM1:TRAN:TOUT:SIGN EXT3;:ARM1:TRAN:TOUT 1", None),
            (":ARM2:TRAN:TOUT 0", None)]) as smu:
        smu.ch_1.trigger_each_arm(3)
        smu.ch_2.trigger_each_arm(None)
    with expected_protocol(KeysightB2900, []) as smu, pytest.raises(ValueError):
        smu.ch_1.trigger_each_arm(15)


def test_ns_switching_current_follows_the_model(pulser_station):
    """I_c50 at 1.5, 3, 10 and 100 ns from the 81160A's pulses. With this model (τ0 = 1 ns,
    thermal and precessional channels independent) the thermal channel sets I_c50 at every
    width above τ0·ln 2: I_c0[1 − ln(t/(τ0 ln 2))/Δ] (the precessional I_c0(1 + τ*/t) lies
    above I_c0). Tolerance 3 %: around P = 0.5 a point has ≥ 300 trials, σ_P ≤ 0.029, and the
    slope dP/dI = (ln 2/2)·Δ/I_c0 ≈ 14/I_c0 makes that σ_I ≈ 0.2 % of I_c0 per point; the
    linear interpolation over the ~6 %-of-I_c0 amplitude grid of a curve this steep is the
    larger error (up to ~2 %)."""
    proc, results = run_on(pulser_station, device="mtj0", **PULSED)
    truth = pulser_station.bench.devices["mtj"].hidden(0)
    assert_recovered(proc.fit, {"delta": float(truth["delta"]), "ic0": float(truth["ic0"])})
    to_current = 1.0 / (proc._r_reference + 50.0)
    for width, group in results.data.groupby("Width (s)"):
        last = group.drop_duplicates("Amplitude", keep="last").sort_values("Amplitude")
        p = last["P switch"].to_numpy()
        measured = np.interp(0.5, np.maximum.accumulate(p) + 1e-9 * np.arange(p.size),
                             last["Amplitude"].to_numpy()) * to_current
        expected = float(ic50(width, truth["delta"], truth["ic0"], 1e-9))
        assert measured == pytest.approx(expected, rel=0.03), width
    pulser = pulser_station.bench.instruments["pulser"]
    assert pulser.triggers_missed == 0
    assert pulser.pulses_emitted == int(results.data.groupby(
        ["Width (s)", "Amplitude"])["Trials"].max().sum())
    assert pulser.ch[1].output is False and pulser.ch[2].output is False  # safe state
    smu = pulser_station.bench.instruments["smu"]
    assert smu.ch[1].output is False and smu.ch[1].tout["arm"] is False


def test_pulser_transactions_do_not_depend_on_the_number_of_trials(tmp_path, monkeypatch):
    """Over TCP: 10x the trials, exactly as many messages to each instrument."""
    monkeypatch.chdir(tmp_path)
    params = dict(PULSED, widths="1e-8", points=5, refine=2)
    with Station.load("sim-mtj-pulser", sim=True, transport="tcp") as station:
        mocks = [station.bench.instruments[r] for r in ("smu", "pulser")]
        drivers = [station.instrument(r) for r in ("smu", "pulser")]
        counts = []
        for trials in (40, 400):
            before = [m.messages for m in mocks]
            run_on(station, **dict(params, trials=trials, adaptive_trials=trials))
            for d in drivers:
                d.ask("*OPC?")
            counts.append([m.messages - b for m, b in zip(mocks, before, strict=True)])
    assert counts[0] == counts[1]
    # per amplitude: one pulser level + one SMU list (configure, *OPC?, fetch)
    assert counts[0][0] < 3 * 2 * (5 + 2) + 20


def test_abort_leaves_both_instruments_safe(pulser_station, tmp_path):
    proc = build(SwitchingProbability, dict(PULSED, widths="1e-8,1e-7"))
    proc.station, proc.results_path = pulser_station, str(tmp_path / "aborted.csv")
    asked = []
    proc.should_stop = lambda: asked.append(1) or len(asked) > 3
    proc.emit = lambda topic, record: None
    proc.startup()
    try:
        proc.execute()
    finally:
        proc.shutdown()
    assert proc.fit is None
    pulser = pulser_station.bench.instruments["pulser"]
    assert 0 < pulser.pulses_emitted and pulser.ch[1].output is False
    assert pulser_station.bench.instruments["smu"].ch[1].output is False


@pytest.mark.parametrize("params, message", [
    ({"widths": "1e-9"}, "shorter than the pulse generator's shortest pulse 1.5e-09 s"),
    ({"amplitude_stop": 3.0}, "amplitude_stop = 3 V exceeds the chip's voltage limit"),
    ({"amplitude_start": 0.05}, "at least 0.1 V"),
])
def test_bad_pulser_parameters_fail_before_anything_is_applied(pulser_station, params,
                                                               message):
    proc = build(SwitchingProbability, dict(PULSED, **params))
    with pytest.raises(ConfigError, match=message):
        execute(proc, pulser_station, out="never")
    assert pulser_station.bench.instruments["pulser"].pulses_emitted == 0


def precessional_ic50(width, delta, ic0, tau0, tau_d):
    """The model's 50 % current below τ0·ln 2, where the thermal channel alone (rate 1/τ0 once
    the barrier is gone) cannot reach P = 0.5: 1 − e^{−t/τ0}·(1 − P_prec) = 0.5 with Sun's
    P_prec = exp(−(π²Δ/4)·exp(−2(I/I_c0 − 1)t/τ_D)) gives
    I_c0[1 + (τ_D/2t)·ln((π²Δ/4)/(−ln(1 − e^{t/τ0}/2)))], which tends to the precessional
    I_c0(1 + τ*/t) with τ* = (τ_D/2)·ln(π²Δ/(4 ln 2)) as t/τ0 → 0."""
    inner = -np.log(1.0 - 0.5 * np.exp(width / tau0))
    return ic0 * (1.0 + tau_d / (2.0 * width) * np.log(np.pi ** 2 * delta / 4.0 / inner))


@pytest.mark.parametrize("width", [0.05e-9, 0.2e-9, 0.5e-9, 1.5e-9, 3e-9, 10e-9, 100e-9])
def test_mtj_model_crossover_thermal_to_precessional(width):
    """The MTJ model's I_c50 follows the thermal closed form above τ0·ln 2 (0.69 ns) and the
    precessional one below. 40,000 trials at the predicted I_c50 give P = 0.5 within 4 binomial
    standard errors (4 × 0.5/√40000 = 0.01); 3 % (thermal: steep) or 10 % (precessional, where
    I_c50 is several I_c0) either side of it P is at least 0.05 from 0.5 (the current is
    resolved: not a flat probability that happens to be near 0.5)."""
    bench = Bench.load("mtj-pulser")
    mtj = bench.devices["mtj"]
    delta, ic0 = (float(v) for v in mtj.hidden(0).values())
    tau0, tau_d = mtj.params.tau0_s, mtj.params.tau_d_s
    thermal = width > tau0 * np.log(2.0)
    expected = float(ic50(width, delta, ic0, tau0) if thermal else
                     precessional_ic50(width, delta, ic0, tau0, tau_d))
    assert (expected < ic0) == thermal  # the regimes lie on either side of I_c0
    n = 40_000
    k = mtj.switch_counts(np.array(expected), width, n, index=0)
    assert abs(k / n - 0.5) < 4 * 0.5 / np.sqrt(n)
    step = 0.03 if thermal else 0.1
    p_low, p_high = mtj.switch_probability(np.array([1 - step, 1 + step]) * expected, width,
                                           index=0)
    assert p_low < 0.45 and p_high > 0.55


def test_pulser_triggered_from_elsewhere_drives_its_own_device():
    """A trigger from an instrument not on the pulser's device: the pulser applies its pulses
    itself (the wired junction switches), answering the two well-separated triggers."""
    bench = Bench.load("mtj-pulser")
    pulser, mtj = bench.instruments["pulser"], bench.devices["mtj"]
    arm_pulser(pulser, high=1.0, period=1e-6)
    mtj.switched[0] = 0
    assert pulser.external_trigger([0.0, 1e-3]) is None
    assert pulser.pulses_emitted == 2 and mtj.switched[0] == 1
