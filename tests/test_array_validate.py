"""Checking operations before the first byte (ArrayController.validate), and reads after pulses
under their own bias scheme (read_bias), on each backend's simulated bench."""

from __future__ import annotations

import numpy as np
import pytest

import labctl
from labctl.array import Idle, Pulse, Ramp, Read, Selection, Train
from labctl.errors import ConfigError, LimitError
from labctl.station import Station

VREAD = 0.2


def transactions(station, sync: bool = False) -> int:
    """Host transactions every mock of the bench has answered so far; with ``sync``, after
    one read (the ArC ONE's mock answers on its own thread: a read's reply means it has done
    everything sent before)."""
    if sync:
        array = station.instrument("array")
        array.read_one(0, 0, VREAD, array.capabilities.bias_schemes[0])
    return sum(getattr(i, "transactions", getattr(i, "messages", 0))
               for i in station.bench.instruments.values())


@pytest.fixture(scope="module", params=["sim-crossbar-arc2", "sim-crossbar-arcone",
                                        "sim-crossbar-smu-matrix"])
def station(request):
    with Station.load(request.param, sim=True) as st:
        yield st


def xbar_of(station):
    return station.bench.devices["xbar"]


# ====================================================================== validate
def test_validate_returns_the_operations_as_they_would_run(station):
    array = station.instrument("array")
    caps = array.capabilities
    before = transactions(station, sync=True)
    width = caps.min_pulse_width * 1.3 + 0.4 * caps.time_grid
    bias = "float"
    read_bias = "v/3" if "arcone" in station.name else "ground"
    pulse, train = array.validate([
        Pulse(Selection.one(1, 2), 1.0, width, bias, VREAD, read_bias if "arcone" not in
              station.name else None),
        Train(Selection.row(3), np.array([1.0, -1.0]), np.full(2, width), bias, VREAD)])
    assert pulse.width == pytest.approx(array.width_on_grid(width), rel=1e-12)
    # the read bias defaults to the pulses' own scheme; none without reads
    assert pulse.read_bias == (bias if "arcone" in station.name else read_bias)
    assert train.read_bias == bias
    assert array.validate([Pulse(Selection.one(0, 0), 1.0, width, bias)])[0].read_bias is None
    assert transactions(station) == before


@pytest.mark.parametrize("make, match", [
    (lambda caps: Pulse(Selection.one(0, 0), 1.0, caps.min_pulse_width, "float", VREAD,
                        "sideways"), "read bias scheme 'sideways' not available"),
    (lambda caps: Pulse(Selection.one(0, 40), 1.0, caps.min_pulse_width, "float"),
     "column 40 outside the 32x32 array"),
    (lambda caps: Train(Selection.all(), np.array([1.0, 4.5]), np.full(2, caps.min_pulse_width),
                        "float"), "exceeds the chip's voltage limit"),
    (lambda caps: Pulse(Selection.one(0, 0), 1.0, caps.min_pulse_width / 3, "float"),
     "outside the controller's range"),
])
def test_a_bad_operation_in_a_batch_raises_before_anything_is_sent(station, make, match):
    array = station.instrument("array")
    r_before = xbar_of(station).devices.resistance
    before, logged = transactions(station, sync=True), len(array.pulse_log)
    good = Pulse(Selection.one(0, 0), 1.0, array.capabilities.min_pulse_width, "float")
    with pytest.raises(LimitError, match=match):
        array.validate([good, make(array.capabilities)])
    with pytest.raises(LimitError, match=match):
        array.submit([Read(Selection.all(), VREAD, "float"), good, make(array.capabilities)])
    assert transactions(station) == before and len(array.pulse_log) == logged
    assert np.array_equal(xbar_of(station).devices.resistance, r_before)


@pytest.mark.parametrize("name, op, match", [
    ("sim-crossbar-arcone", Idle("float"), "cannot leave all lines float"),
    ("sim-crossbar-arcone", Pulse(Selection.one(0, 0), 1.0, 1e-4, "float", VREAD, "v/3"),
     "needs the same floating or held lines"),
    ("sim-crossbar-smu-matrix", Ramp(0, 0, np.array([0.5, 1.0]), 0.005, "ground"),
     "a ramp under 'ground' needs vread"),
])
def test_backend_refusals_are_part_of_validate(name, op, match):
    with Station.load(name, sim=True) as st:
        before = transactions(st, sync=True)
        with pytest.raises(LimitError, match=match):
            st.instrument("array").validate([op])
        assert transactions(st) == before


def test_a_procedure_refused_by_the_backend_applies_nothing(tmp_path):
    """conductance-update reads after its pulses: on ArC ONE a float pulse cannot be followed
    by a read with the lines held (v/3) in one pulse-read, and the run stops at its check."""
    with Station.load("sim-crossbar-arcone", sim=True) as st:
        r_before = xbar_of(st).devices.resistance
        before = transactions(st, sync=True)
        with pytest.raises(ConfigError, match=r"set_amplitude = 1 V, set_width = 1e-06 s, "
                                              r"pulse_bias = float, read_bias = v/3: array "
                                              r"pulse: ArC ONE reads after a pulse"):
            labctl.run("conductance-update", station=st, out=tmp_path, pulse_bias="float",
                       read_bias="v/3", rows="0")
        assert transactions(st) == before
        assert np.array_equal(xbar_of(st).devices.resistance, r_before)
        assert len(st.instrument("array").pulse_log) == 0


# ====================================================================== read bias
def expected_read(xbar, r, c, bias):
    return xbar.read_device(r, c, VREAD, bias, noisy=False)


@pytest.mark.parametrize("name, bias, read_biases", [
    ("sim-crossbar-arc2", "v/2", ("ground", "v/2", "float")),
    ("sim-crossbar-arc2", "float", ("ground", "v/3")),
    ("sim-crossbar-arcone", "v/3", ("v/2", "v/3")),
    ("sim-crossbar-smu-matrix", "float", ("ground", "float")),
])
def test_reads_after_pulses_use_their_own_bias(name, bias, read_biases):
    """Sub-threshold pulses (no switching), then reads under each scheme: each matches the
    crossbar's read of that device under that scheme (read noise ±1 %; ArC ONE's held
    schemes read with the unselected lines at 0 V, the crossbar's ground read)."""
    with Station.load(name, sim=True) as st:
        array, xbar = st.instrument("array"), xbar_of(st)
        width = max(array.capabilities.min_pulse_width, 1e-4)
        for read_bias in read_biases:
            crossbar_bias = "ground" if "arcone" in name and read_bias != "float" else read_bias
            i = array.pulse_one(2, 3, 0.5, width, bias, VREAD, read_bias)
            assert i == pytest.approx(expected_read(xbar, 2, 3, crossbar_bias), rel=0.03)
            trace = array.pulse_train(Selection.one(4, 5), [0.5, 0.5], width, bias, VREAD,
                                      read_bias)
            np.testing.assert_allclose(trace, expected_read(xbar, 4, 5, crossbar_bias),
                                       rtol=0.03)
        # the schemes are told apart: sneak currents under float, v/2, v/3, none under ground
        if "ground" in read_biases:
            exact = VREAD / xbar.devices.resistance[2, 3]
            assert array.pulse_one(2, 3, 0.5, width, bias, VREAD, "ground") == \
                pytest.approx(exact, rel=0.03)
            other = next(b for b in read_biases if b != "ground")
            assert array.pulse_one(2, 3, 0.5, width, bias, VREAD, other) > 1.1 * exact
