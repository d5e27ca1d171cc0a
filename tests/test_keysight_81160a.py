"""Keysight 81160A: pymeasure's stock driver against the mock, unchanged; chip limits and safe
shutdown of the labctl subclass; reset (B2912A) → write (81160A, ns pulse) → read (B2912A) on a
simulated MTJ with the switching statistics of the model (binomial, 4 standard deviations)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pymeasure.instruments.keysight import Keysight81160A as StockKeysight81160A

from labctl.station import Station
from mocks.instruments.keysight_81160a import Keysight81160APersonality
from mocks.transports import InProcessAdapter, TransportFaults


@pytest.fixture
def mock():
    return Keysight81160APersonality()


@pytest.fixture
def stock(mock):
    return StockKeysight81160A(InProcessAdapter(mock, TransportFaults()))


@pytest.mark.parametrize("prop, value", [
    ("shape", "PULS"), ("shape", "SQU"), ("frequency", 2e6), ("voltage_high", 1.2),
    ("voltage_low", -0.3), ("pulse_period", 5e-6), ("pulse_width", 3e-9),
    ("pulse_dutycycle", 25.0), ("pulse_hold", "DCYC"), ("pulse_transition", 2e-9),
    ("burst_state", True), ("burst_mode", "GAT"), ("burst_ncycles", 10),
    ("burst_period", 1e-4), ("trigger_mode", "MAN"), ("trigger_count", 7),
    ("limit_state_enabled", True), ("limit_high", 2.0), ("limit_low", -1.0),
    ("output", True), ("output_load", 50),
])
def test_stock_driver_channel_properties_round_trip(stock, prop, value):
    for channel in (stock.ch_1, stock.ch_2):
        setattr(channel, prop, value)
        got = getattr(channel, prop)
        if isinstance(value, float):
            assert got == pytest.approx(value)
        else:
            assert got == value
    assert stock.check_errors() == []


def test_stock_driver_amplitude_offset_and_instrument_level(stock, mock):
    ch = stock.ch_2
    ch.voltage_high, ch.voltage_low = 1.0, 0.0
    assert ch.amplitude == pytest.approx(1.0) and ch.offset == pytest.approx(0.5)
    ch.amplitude = 2.0
    assert (ch.voltage_high, ch.voltage_low) == (pytest.approx(1.5), pytest.approx(-0.5))
    stock.shape = "PULS"  # the default channel (1)
    stock.pulse_period = 1e-5
    assert mock.ch[1].period == pytest.approx(1e-5) and stock.shape == "PULS"
    ch.apply_pulse(1e6, 1.0, 0.0)  # APPLy is not modelled: a clear -113 in the error queue
    assert stock.check_errors()[0][0] == -113


def test_mock_ranges_and_errors(mock):
    for bad, code in ((":VOLT:HIGH 6", "-222"), (":PULS:WIDT1 1e-10", "-222"),
                      (":FUNC2 TRIANGLE", "-224"), (":BOGUS 1", "-113")):
        mock.handle_message(bad)
        assert mock.handle_message(":SYST:ERR?").startswith(code), bad
    assert mock.handle_message("*IDN?").startswith("Agilent Technologies,81160A,")
    assert mock.handle_message(":puls:per2 2e-6;:PULSE:PERIOD2?") == "+2.000000000000E-06"


def test_continuous_and_triggered_pulses_on_virtual_time(mock):
    mock.handle_message(":PULS:PER 1e-6;:OUTP ON")  # ARM:SOUR IMM: free-running
    mock.clock.advance(1e-3)
    mock.handle_message("*OPC?")
    assert mock.pulses_emitted == 1000
    mock.handle_message(":ARM:SOUR MAN;:TRIG:COUN 5")
    before = mock.clock.now
    mock.handle_message("*TRG")
    assert mock.pulses_emitted == 1005 and mock.clock.now - before == pytest.approx(5e-6)
    mock.handle_message(":BURS:STAT ON;:BURS:NCYC 3;*TRG")
    assert mock.pulses_emitted == 1008


@pytest.fixture
def station():
    with Station.load("sim-mtj-pulser", sim=True) as st:
        yield st


def test_chip_limits_narrow_levels_and_set_the_hardware_limits(station):
    pulser = station.instrument("pulser")
    mock = station.bench.instruments["pulser"]
    half = station.limits.voltage / 2  # 50 Ω setting: the open-circuit level is twice the set
    assert mock.ch[1].limit and mock.ch[2].limit
    assert mock.ch[1].limit_high == pytest.approx(half)
    for prop, bad in (("voltage_high", half + 0.1), ("voltage_low", -half - 0.1),
                      ("offset", half + 0.1), ("amplitude", 2 * half + 0.1),
                      ("pulse_width", 0.2)):
        with pytest.raises(ValueError):
            setattr(pulser.ch_2, prop, bad)
    pulser.ch_1.output = True
    pulser.shutdown()
    assert not mock.ch[1].output and not mock.ch[2].output


def test_reset_write_read_with_nanosecond_pulses(station):
    """1.5 ns write pulses (the 81160A's shortest) at 0.135 V set (0.27 V open circuit through
    50 Ω: ≈ 88 µA, just below this junction's I_c0): P_sw matches the model for the current the
    junction sees (a reset and a read by the SMU around each pulse)."""
    pulser, smu = station.instrument("pulser"), station.instrument("smu")
    dev = station.bench.devices["mtj"]
    ch = pulser.ch_1
    ch.shape, ch.pulse_period, ch.pulse_width = "PULS", 1e-6, 1.5e-9
    ch.voltage_low, ch.voltage_high = 0.0, 0.135
    ch.trigger_mode, ch.trigger_count, ch.output = "MAN", 1, True
    n, switched = 400, 0
    for _ in range(n):
        reset = smu.ch_1.pulse_list([-250e-6, 10e-6], 1e-4, source="current", compliance=2.2)
        pulser.trigger()
        smu.ch_1.source_mode, smu.ch_1.source_current = "current", 10e-6
        v, i = smu.ch_1.measure()
        r_reset = reset["VOLT"][1] / reset["CURR"][1]
        switched += (v / i) > 1.5 * r_reset
    p = float(dev.probabilities(0.27, 1.5e-9, "voltage", np.array([0]), series_ohm=50.0)[0][0])
    assert 0.05 < p < 0.95  # the point is in the transition
    assert abs(switched - n * p) <= 4 * math.sqrt(n * p * (1 - p))
    assert station.bench.instruments["pulser"].pulses_emitted == n
