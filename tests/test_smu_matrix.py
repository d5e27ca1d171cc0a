"""The Keysight B2200 personality (relays, modes, errors, timing, terminal physics) and the
SMU + switch-matrix array controller (drivers.smu_matrix) against in-process personalities."""

import time
from types import SimpleNamespace

import numpy as np
import pytest

from drivers.keithley2450 import Keithley2450
from drivers.keysight_b2200 import KeysightB2200
from drivers.smu_matrix import SmuMatrixArray
from drivers.smu_port import MIN_SWEEP_DELAY_S
from labctl.array import Pulse, Selection
from labctl.errors import LimitError
from labctl.safety import Limits
from labctl.station import Station
from mocks.clock import VirtualClock
from mocks.devices.crossbar import Crossbar
from mocks.devices.rram import RRAMArray, RRAMParams
from mocks.instruments.keithley2450 import POINT_OVERHEAD_S, Keithley2450Personality
from mocks.instruments.keysight_b2200 import (
    R_SHORT_OHM,
    SWITCH_TIME_S,
    KeysightB2200Personality,
)
from mocks.transports import InProcessAdapter

QUIET = {"c2c_rel_std": 0.0, "read_noise_rel": 0.0}
LIMITS = Limits(4.0, 0.01, 1.0)


def crossbar(shape=(8, 8), seed=1, params=None, clock=None):
    devices = RRAMArray(shape, params=RRAMParams.from_dict(params or {}),
                        rng=np.random.default_rng(seed), formed=True)
    return Crossbar(devices, clock=clock)


def errors(p):
    out = []
    while True:
        code = int(p.handle_message(":SYST:ERR?").split(",")[0])
        if code == 0:
            return out
        out.append(code)


def build(shape=(8, 8), frames=1, seed=1, params=None, limits=LIMITS, supply=None, **kw):
    """An SmuMatrixArray on in-process personalities (the twin crossbar has the same devices);
    ``supply``: the read supply's voltage, cabled to input 9 of the row mainframe."""
    clock = VirtualClock()
    xbar = crossbar(shape, seed, params, clock)
    twin = crossbar(shape, seed, params)
    mats = [KeysightB2200Personality(clock=clock, device=xbar,
                                     input_voltages={9: supply} if supply and k == 0 else None)
            for k in range(frames)]
    if supply is not None:
        kw.update(read_supply_input=9, read_supply_voltage=supply)
    smu = Keithley2450Personality(clock=clock, device=mats[0].terminal("smu"),
                                  rng=np.random.default_rng(seed + 100))
    drivers = [KeysightB2200(InProcessAdapter(m)) for m in mats]
    array = SmuMatrixArray(smu=Keithley2450(InProcessAdapter(smu)), matrix=drivers[0],
                           col_matrix=drivers[1] if frames > 1 else None,
                           **{"rows": shape[0], "cols": shape[1], **kw})
    if limits is not None:
        array.apply_chip_limits(limits)
    return SimpleNamespace(array=array, xbar=xbar, twin=twin, mats=mats, smu=smu, clock=clock)


def counts(b):
    return [m.messages for m in b.mats] + [b.smu.messages]


# ====================================================================== personality
def test_identity_reset_and_query_forms():
    p = KeysightB2200Personality(model="B2200A", firmware="B.02.00")
    assert p.handle_message("*IDN?") == "AGILENT,B2200A,0,B.02.00"
    assert p.handle_message(":rout:func?") == "ACON"
    assert p.handle_message(":CONN:RULE? 0;:CONN:SEQ? 0") == "FREE;BBM"
    assert p.handle_message(":ROUT:BIAS:PORT? 0;:ROUT:AGND:PORT? 0") == "10;12"
    assert p.handle_message(":ROUT:BIAS? 0;:ROUT:AGND? 0;:ROUT:COUP? 0") == "0;0;0"
    p.handle_message(":ROUTE:CLOSE (@00101);:ROUT:CONN:RULE 0,SROU")
    p.handle_message("*RST")
    assert p.handle_message(":ROUT:CLOS:CARD? 0") == "(@)"
    assert p.handle_message(":ROUT:CONN:RULE? 0") == "FREE"
    assert errors(p) == []


def test_default_cabling_one_and_two_mainframes():
    small = crossbar((8, 8))
    one = KeysightB2200Personality(device=small)
    assert one.line_of_output[1] == ("row", 0) and one.line_of_output[16] == ("col", 7)
    big = crossbar((32, 32))
    rows = KeysightB2200Personality(device=big)
    cols = KeysightB2200Personality(device=big)
    assert sorted(rows.line_of_output.values()) == [("row", r) for r in range(32)]
    assert cols.line_of_output == {c + 1: ("col", c) for c in range(32)}
    explicit = KeysightB2200Personality(device=crossbar((2, 3)), rows_on=[48, 47],
                                        cols_on=[1, 2, 3])
    assert explicit.line_of_output[48] == ("row", 0) and explicit.line_of_output[3] == ("col", 2)


@pytest.mark.parametrize("kw, match", [
    ({"rows_on": [1, 2]}, "2 outputs for 8 rows"),
    ({"rows_on": list(range(1, 9)), "cols_on": list(range(8, 16))}, "two lines"),
    ({"rows_on": list(range(42, 50))}, "not an output port 1..48"),
    ({"cards": 1, "rows_on": list(range(10, 18))}, "1..12"),
    ({"cards": 5}, "1 to 4 cards"),
    ({"model": "B2202A"}, "model"),
    ({"inputs": {"smu_hi": 1, "smu_lo": 1}}, "two terminals"),
    ({"inputs": {"smu_hi": 15, "smu_lo": 2}}, "input port"),
    ({"grounded_inputs": [2]}, "cabled twice"),
    ({"input_voltages": {12: 0.2}}, "cabled twice"),
    ({"input_voltages": {9: "0.2"}}, "not a voltage"),
])
def test_cabling_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        KeysightB2200Personality(device=crossbar((8, 8)), **kw)


def test_too_many_lines_for_one_mainframe():
    with pytest.raises(ValueError, match="do not fit"):
        KeysightB2200Personality(device=crossbar((50, 1)))


def test_channel_lists_ranges_and_queries():
    p = KeysightB2200Personality()
    p.handle_message(":ROUT:CLOS (@0101:0203)")  # 4-digit form, inputs 1-2 x outputs 1-3
    assert p.closed == {(i, o) for i in (1, 2) for o in (1, 2, 3)}
    assert p.handle_message(":ROUT:CLOS? (@00101,00104,00203)") == "1,0,1"
    assert p.handle_message(":ROUT:OPEN? (@00101,00104)") == "0,1"
    p.handle_message(":ROUT:OPEN (@00102:00203)")
    assert p.closed == {(1, 1), (2, 1)}
    assert p.handle_message(":ROUT:CLOS:CARD? 0") == "(@00101,00201)"
    assert errors(p) == []


@pytest.mark.parametrize("command, code", [
    (":ROUT:CLOS (@00101,01549)", -222),   # input 15: the whole list is refused
    (":ROUT:CLOS (@00101,00149)", -222),   # output 49
    (":ROUT:CLOS (@10101)", -222),         # card 1 in auto configuration mode
    (":ROUT:CLOS (@0x101)", -102),
    (":ROUT:CLOS (@00101,)", -102),
    (":ROUT:CLOS 00101", -104),
    (":ROUT:CLOS", -109),
    (":ROUT:CLOS (@00203:00101)", -222),
    (":ROUT:OPEN:CARD 1", -222),
    (":ROUT:CLOS:CARD? ALL", -224),
    (":ROUT:CLOS:CARD 0", -113),
    (":ROUT:CONN:RULE 0,SINGLE", -224),
    (":ROUT:BIAS:PORT 0,15", -222),
    (":ROUT:COUP:PORT 0,'2'", -222),
    (":ROUT:NOPE 0", -113),
])
def test_errors_leave_relays_alone(command, code):
    p = KeysightB2200Personality()
    p.handle_message(":ROUT:CLOS (@00105)")
    p.handle_message(command)
    assert errors(p) == [code]
    assert p.closed == {(1, 5)}


def test_single_route_rule_releases_previous_connections():
    p = KeysightB2200Personality()
    p.handle_message(":ROUT:CONN:RULE 0,SROU")
    p.handle_message(":ROUT:CLOS (@00105,00206)")
    p.handle_message(":ROUT:CLOS (@00107)")    # input 1 moves from output 5 to 7
    p.handle_message(":ROUT:CLOS (@00306)")    # output 6 moves from input 2 to 3
    assert p.closed == {(1, 7), (3, 6)}
    p.handle_message(":ROUT:CONN:RULE 0,FREE;:ROUT:CLOS (@00108)")
    assert p.closed == {(1, 7), (1, 8), (3, 6)}


def test_normal_configuration_mode_addresses_single_cards():
    p = KeysightB2200Personality(cards=3)
    p.handle_message(":ROUT:CLOS (@00136)")
    p.handle_message(":ROUT:FUNC NCON")
    assert p.closed == set()                     # a mode change opens every relay
    p.handle_message(":ROUT:CLOS (@20105,31412)")
    assert p.closed == {(1, 17), (14, 36)}
    assert p.handle_message(":ROUT:CLOS:CARD? 2") == "(@20105)"
    assert p.handle_message(":ROUT:CLOS:CARD? 1") == "(@)"
    for bad in (":ROUT:CLOS (@40101)", ":ROUT:CLOS (@10113)", ":ROUT:CLOS (@0101)",
                ":ROUT:OPEN:CARD 0"):
        p.handle_message(bad)
        assert errors(p) == [-222], bad
    p.handle_message(":ROUT:CONN:RULE 1,SROU;:ROUT:OPEN:CARD 2")
    assert p.handle_message(":ROUT:CONN:RULE? 1;:ROUT:CONN:RULE? 3") == "SROU;FREE"
    assert p.closed == {(14, 36)}


def test_ground_and_bias_modes_connect_the_unused_outputs():
    p = KeysightB2200Personality(cards=1)
    p.handle_message(":ROUT:AGND 0,ON")
    assert p.relays() == {(12, o) for o in range(1, 13)}
    p.handle_message(":ROUT:CLOS (@00103)")
    assert (12, 3) not in p.relays() and (1, 3) in p.relays()
    assert "01203" not in p.handle_message(":ROUT:CLOS:CARD? 0")
    p.handle_message(":ROUT:AGND:CHAN:DIS (@00105,00106)")
    assert p.handle_message(":ROUT:AGND:CHAN:ENAB? (@00105,00107)") == "0,1"
    assert (12, 5) not in p.relays()
    for refused in (":ROUT:BIAS 0,ON", ":ROUT:CLOS (@01204)", ":ROUT:AGND:PORT 0,11"):
        p.handle_message(refused)
        assert errors(p) == [-221], refused
    p.handle_message(":ROUT:AGND 0,OFF;:ROUT:BIAS:PORT 0,9;:ROUT:BIAS 0,ON")
    assert (9, 12) in p.relays() and (9, 3) not in p.relays()
    p.handle_message(":ROUT:BIAS:CHAN:DIS:CARD 0")
    assert p.relays() == {(1, 3)}
    p.handle_message(":ROUT:OPEN:CARD ALL;:ROUT:BIAS:CHAN:ENAB:CARD ALL")
    assert p.relays() == {(9, o) for o in range(1, 13)}
    assert errors(p) == []


def test_ground_mode_ties_unused_inputs():
    p = KeysightB2200Personality()
    p.handle_message(":ROUT:AGND:UNUSED 0,'3,4';:ROUT:AGND 0,ON;:ROUT:CLOS (@00301)")
    assert p.handle_message(":ROUT:AGND:UNUSED? 0") == "'3,4'"
    assert p.input_ties() == {4: 12}           # input 3 is in use


def test_couple_mode_switches_input_pairs_together():
    p = KeysightB2200Personality()
    p.handle_message(":ROUT:COUP:PORT 0,'1,5';:ROUT:COUP 0,ON")
    p.handle_message(":ROUT:CLOS (@00104)")     # input 1 to output 4: pair (1,2) -> (3,4)
    assert p.closed == {(1, 3), (2, 4)}
    p.handle_message(":ROUT:CLOS (@00309)")     # input 3 is not coupled
    assert (3, 9) in p.closed and len(p.closed) == 3
    p.handle_message(":ROUT:COUP:PORT:DET")
    assert p.handle_message(":ROUT:COUP:PORT? 0") == "''"


def test_relay_switching_time_on_the_virtual_clock():
    p = KeysightB2200Personality()
    p.handle_message(":ROUT:CLOS (@00101)")
    assert p.clock.now == pytest.approx(SWITCH_TIME_S)       # closes only: one phase
    t0 = p.clock.now
    p.handle_message(":ROUT:CLOS? (@00101);:ROUT:CLOS:CARD? 0;:ROUT:CLOS (@00101)")
    assert p.clock.now == t0                                    # nothing moved
    p.handle_message(":ROUT:OPEN:CARD 0;:ROUT:CLOS (@00101)")  # commands run one by one:
    assert p.clock.now - t0 == pytest.approx(2 * SWITCH_TIME_S)  # open, then close again


@pytest.mark.parametrize("sequence, phases", [("BBM", 2), ("MBBR", 2), ("NSEQ", 1)])
def test_connection_sequence_of_one_command(sequence, phases):
    p = KeysightB2200Personality()
    p.handle_message(f":ROUT:CONN:SEQ 0,{sequence};:ROUT:CONN:RULE 0,SROU;:ROUT:CLOS (@00101)")
    t0 = p.clock.now
    p.handle_message(":ROUT:CLOS (@00102)")   # single route: opens (1,1), closes (1,2)
    assert p.closed == {(1, 2)}
    assert p.clock.now - t0 == pytest.approx(phases * SWITCH_TIME_S)


def test_stuck_relay_is_reported_closed_but_conducts_nothing():
    xbar = crossbar((4, 4), params=QUIET)
    p = KeysightB2200Personality(device=xbar)
    terminal = p.terminal("smu")
    p.handle_message(":ROUT:CLOS (@00101,00205)")
    assert terminal.current(0.2)[0] > 0
    p.set_fault((1, 1), "stuck_open")
    assert p.handle_message(":ROUT:CLOS? (@00101)") == "1"
    assert terminal.current(0.2)[0] == 0.0
    p.clear_faults()
    p.set_fault((1, 2), "stuck_closed")   # HI now also on row 1
    i = terminal.current(0.2)[0]
    assert i == pytest.approx(xbar.line_currents([0.2, 0.2, np.nan, np.nan],
                                                 [0.0, np.nan, np.nan, np.nan], noisy=False)[0]
                              [:2].sum())
    with pytest.raises(ValueError):
        p.set_fault((1, 1), "welded")


# ====================================================================== terminal physics
@pytest.fixture
def routed():
    xbar = crossbar((8, 8), params=QUIET)
    p = KeysightB2200Personality(device=xbar)
    return p, p.terminal("smu"), xbar


def test_open_circuit_until_routed(routed):
    p, t, _ = routed
    assert t.current(1.0)[0] == 0.0
    assert t.voltage_at_current(1e-6)[0] == np.inf
    assert t.voltage_at_current(0.0)[0] == 0.0
    p.handle_message(":ROUT:CLOS (@00103)")          # HI on row 2, nothing to return through
    assert t.current(1.0)[0] == 0.0
    with pytest.raises(ValueError, match="pulser_hi"):
        p.terminal("pulser")


def test_float_read_is_the_crossbars_single_device_read(routed):
    p, t, xbar = routed
    p.handle_message(":ROUT:CLOS (@00103,00214)")    # HI row 2, LO column 5
    expected = xbar.read_device(2, 5, 0.2, "float", noisy=False)
    assert t.current(0.2)[0] == pytest.approx(expected, rel=1e-3)
    assert t.current(-0.2)[0] == pytest.approx(-expected, rel=1e-3)


def test_ground_read_measures_the_whole_row(routed):
    p, t, xbar = routed
    p.handle_message(":ROUT:AGND 0,ON;:ROUT:CLOS (@00103,00214)")
    row_v = np.where(np.arange(8) == 2, 0.2, 0.0)
    row_current = xbar.line_currents(row_v, np.zeros(8), noisy=False)[0][2]
    assert t.current(0.2)[0] == pytest.approx(row_current, rel=1e-12)
    device = xbar.read_device(2, 5, 0.2, "ground", noisy=False)
    assert row_current > 5 * device                   # why the backend refuses ground reads


def test_hi_shorted_to_lo_or_ground(routed):
    p, t, _ = routed
    p.handle_message(":ROUT:CLOS (@00103,00203)")    # HI and LO on the same line
    assert t.current(0.5)[0] == pytest.approx(0.5 / R_SHORT_OHM)
    assert t.voltage_at_current(1e-3)[0] == pytest.approx(1e-3 * R_SHORT_OHM)
    p.handle_message(":ROUT:OPEN:CARD 0;:ROUT:AGND:UNUSED 0,'1';:ROUT:AGND 0,ON")
    assert t.current(0.5)[0] == pytest.approx(0.5 / R_SHORT_OHM)   # unused HI input grounded


def test_voltage_at_current_inverts_the_routed_network(routed):
    p, t, _ = routed
    p.handle_message(":ROUT:CLOS (@00103,00214)")
    for i in (2e-5, -7e-5, 3e-4):
        v = t.voltage_at_current(i)[0]
        assert t.current(v)[0] == pytest.approx(i, rel=1e-6)


def test_apply_biases_the_routed_lines(routed):
    p, t, xbar = routed
    twin = crossbar((8, 8), params=QUIET)
    p.handle_message(":ROUT:AGND 0,ON;:ROUT:CLOS (@00103,00214)")
    t.apply(2.0, 1e-3)
    twin.pulse(2, 5, 2.0, 1e-3, "ground")
    np.testing.assert_allclose(xbar.devices.resistance, twin.devices.resistance, rtol=1e-12)
    assert not np.allclose(xbar.devices.resistance, crossbar((8, 8)).devices.resistance)


def test_2450_reads_through_the_matrix():
    clock = VirtualClock()
    xbar = crossbar((8, 8), params=QUIET, clock=clock)
    p = KeysightB2200Personality(clock=clock, device=xbar)
    smu = Keithley2450Personality(clock=clock, device=p.terminal("smu"), noise_rel=0,
                                  noise_i_abs=0)
    p.handle_message(":ROUT:CLOS (@00101,00210)")
    reply = smu.handle_message(':SOUR:VOLT:ILIM 0.01;:SOUR:VOLT 0.2;:OUTP ON;'
                               ':READ? "defbuffer1", READ')
    assert float(reply) == pytest.approx(xbar.read_device(0, 1, 0.2, "float", noisy=False),
                                         rel=1e-3)


# ====================================================================== the array controller
def test_capabilities_and_identity():
    b = build()
    caps = b.array.capabilities
    t_int = 0.1 / 50.0
    assert caps.shape == (8, 8)
    assert caps.min_pulse_width == pytest.approx(t_int + MIN_SWEEP_DELAY_S)
    assert caps.hardware_compliance and caps.bias_schemes == ("float", "ground")
    assert not caps.whole_array_read
    assert b.array.id.count("AGILENT,B2201A") == 1 and "MODEL 2450" in b.array.id
    assert b.mats[0].line_of_output[9] == ("col", 0)  # driver and bench defaults agree


def test_read_one_and_transactions_per_device():
    b = build(params={"c2c_rel_std": 0.0})
    before = counts(b)
    i = b.array.read_one(3, 6, 0.2, bias="float")
    assert i == pytest.approx(b.xbar.read_device(3, 6, 0.2, "float", noisy=False), rel=0.02)
    assert np.subtract(counts(b), before).tolist() == [1, 2]   # route;*OPC?; output on + query
    before = counts(b)
    g = b.array.read_all(0.2, bias="float")
    assert np.subtract(counts(b), before).tolist() == [64, 64]  # route;*OPC?, one query each
    expected = np.array([[b.xbar.read_device(r, c, 0.2, "float", noisy=False)
                          for c in range(8)] for r in range(8)])
    np.testing.assert_allclose(g, expected, rtol=0.02)
    row = b.array.read_row(5, 0.2, bias="float")
    np.testing.assert_allclose(row, expected[5], rtol=0.02)
    cells = b.array.read(Selection.cells([0, 7], [7, 0]), 0.2, "float")
    np.testing.assert_allclose(cells, [expected[0, 7], expected[7, 0]], rtol=0.02)


def test_two_mainframes_write_the_row_frame_only_when_the_row_changes():
    b = build(shape=(32, 32), frames=2, params={"c2c_rel_std": 0.0})
    before = counts(b)
    row = b.array.read_row(4, 0.2, bias="float")
    assert np.subtract(counts(b), before).tolist() == [1, 32, 33]
    expected = [b.xbar.read_device(4, c, 0.2, "float", noisy=False) for c in range(32)]
    np.testing.assert_allclose(row, expected, rtol=0.02)


def test_ground_reads_are_refused_before_any_byte():
    b = build()
    before = counts(b)
    for call in (lambda a: a.read_one(0, 0, 0.2, bias="ground"),
                 lambda a: a.pulse_one(0, 0, 1.0, 0.005, bias="ground", vread=0.2),
                 lambda a: a.ramp(0, 0, 0.0, 1.0, 0.5, 0.005, bias="ground")):
        with pytest.raises(LimitError, match="whole selected row"):
            call(b.array)
    with pytest.raises(LimitError, match="v/2"):
        b.array.read_one(0, 0, 0.2, bias="v/2")
    with pytest.raises(LimitError):
        with b.array.batch() as batch:
            batch.pulse_one(0, 0, 1.0, 0.005, bias="float")
            batch.read_one(0, 0, 0.2, bias="ground")
    assert counts(b) == before
    assert len(b.array.pulse_log) == 0


def test_ground_pulse_is_the_crossbars_ground_pulse():
    b = build(params=QUIET)
    width = 0.005
    b.array.pulse_one(2, 5, 2.0, width, bias="ground")
    b.twin.pulse(2, 5, 2.0, width + POINT_OVERHEAD_S, "ground")
    np.testing.assert_allclose(b.xbar.devices.resistance, b.twin.devices.resistance, rtol=1e-9)
    changed = ~np.isclose(b.xbar.devices.resistance, crossbar((8, 8), params=QUIET)
                          .devices.resistance)
    assert changed[2].all() and not changed[np.arange(8) != 2].any()
    assert len(b.array.pulse_log) == 1


def test_float_pulse_sets_the_selected_device_most_and_reads_after():
    b = build(params=QUIET)
    r0 = b.xbar.devices.resistance
    before = counts(b)
    i = b.array.pulse_one(2, 5, 2.5, 0.005, bias="float", vread=0.2)
    assert np.subtract(counts(b), before).tolist() == [1, 3]   # route;*OPC?; one sweep
    drop = r0 - b.xbar.devices.resistance
    assert drop[2, 5] > 0 and drop[2, 5] == drop.max()
    assert i == pytest.approx(b.xbar.read_device(2, 5, 0.2, "float", noisy=False), rel=0.01)
    assert b.array.pulse_log.arrays()["current_a"][0] == pytest.approx(i)


def test_pulse_width_grid_and_virtual_time():
    b = build(params=QUIET)
    caps = b.array.capabilities
    with pytest.raises(LimitError, match="pulse width"):
        b.array.pulse_one(0, 0, 1.0, caps.min_pulse_width * 0.9, bias="float")
    t0 = b.clock.now
    b.array.pulse_one(0, 0, 1.0, caps.min_pulse_width, bias="float")
    routing = SWITCH_TIME_S  # first route: closes only
    assert b.clock.now - t0 == pytest.approx(routing + caps.min_pulse_width + POINT_OVERHEAD_S)


def test_pulse_on_cells_with_per_device_amplitudes():
    b = build(params=QUIET)
    r0 = b.xbar.devices.resistance
    out = b.array.pulse(Selection.cells([1, 6], [2, 3]), np.array([2.5, -2.5]), 0.005,
                        bias="float", vread=0.2)
    r1 = b.xbar.devices.resistance
    assert out.shape == (2,)
    assert r1[1, 2] < r0[1, 2] and r1[6, 3] > r0[6, 3]


def test_train_one_sweep_per_width_run():
    b = build(params=QUIET)
    before = counts(b)
    out = b.array.pulse_train(Selection.one(4, 4), [1.5, 2.0, 2.5, -2.5], [0.005, 0.005, 0.01,
                                                                           0.01], "float",
                              vread=0.2)
    assert out.shape == (4,)
    assert np.subtract(counts(b), before).tolist() == [1, 6]   # route;*OPC?; two sweeps
    assert out[2] > out[0] and out[3] < out[2]                  # SET raises, RESET lowers I
    row = b.array.pulse_train(Selection.row(1), [2.0], [0.005], "ground")
    assert row is None
    assert len(b.array.pulse_log) == 4 + 8


def test_ramp_stops_in_software_after_the_sweep():
    b = build(params=QUIET)
    before = counts(b)
    result = b.array.ramp(3, 3, 0.1, 1.0, 0.1, 0.003, bias="float", stop_current=1e-4)
    assert np.subtract(counts(b), before).tolist() == [1, 3]
    assert result.stopped and result.steps < 10
    assert abs(result.currents[-1]) > 1e-4 and np.all(np.abs(result.currents[:-1]) <= 1e-4)
    full = b.array.ramp(3, 4, 0.1, 0.3, 0.1, 0.003, bias="float", vread=0.05)
    assert not full.stopped and full.steps == 3 and np.all(full.currents > 0)


def test_hardware_compliance_clamps_reads_and_ramps():
    b = build(params=QUIET)
    b.array.set_compliance(2e-5)
    assert b.smu.src["VOLT"]["limit"] == pytest.approx(2e-5)
    i = b.array.read_one(0, 0, 1.0, bias="float")
    assert abs(i) == pytest.approx(2e-5, rel=1e-3)
    result = b.array.ramp(1, 1, 0.2, 1.2, 0.2, 0.003, bias="float")
    assert np.all(np.abs(result.currents) <= 2e-5 * (1 + 1e-3))
    b.array.set_compliance(None)
    assert b.smu.src["VOLT"]["limit"] == pytest.approx(0.01)   # the chip's current limit
    with pytest.raises(LimitError):
        b.array.set_compliance(0.02)


def test_idle_and_shutdown_leave_every_line_safe():
    b = build()
    b.array.read_one(0, 0, 0.2, bias="float")
    b.array.ground_all()
    assert b.mats[0].relays() == {(12, o) for o in range(1, 49)}
    assert b.smu.src["VOLT"]["level"] == 0.0
    b.array.float_all()
    assert b.mats[0].relays() == set()
    b.array.read_one(0, 0, 0.2, bias="float")
    b.array.shutdown()
    assert not b.smu.output_on and b.smu.src["VOLT"]["level"] == 0.0
    assert b.mats[0].closed == set()
    assert b.mats[0].relays() == {(12, o) for o in range(1, 49)}   # grounded through GND port
    assert errors(b.mats[0]) == [] and errors(b.smu) == []


def test_batch_runs_in_order():
    b = build(params=QUIET)
    with b.array.batch() as batch:
        first = batch.read_one(2, 2, 0.2, "float")
        batch.pulse_one(2, 2, 2.5, 0.005, "float")
        second = batch.read_one(2, 2, 0.2, "float")
    assert second.value > first.value


@pytest.mark.parametrize("kw, match", [
    ({"row_outputs": [1] * 8}, "twice"),
    ({"row_outputs": list(range(1, 9)), "col_outputs": list(range(8, 16))}, "share"),
    ({"col_outputs": list(range(42, 50))}, "from 1 to 48"),
    ({"smu_hi_input": 15}, "smu_hi_input"),
    ({"ground_input": 1}, "must be different inputs"),
    ({"read_supply_input": 9}, "go together"),
    ({"read_supply_input": 9, "read_supply_voltage": 0.0}, "non-zero"),
    ({"read_nplc": 20}, "read_nplc"),
    ({"rows": 0}, "rows"),
])
def test_constructor_checks(kw, match):
    with pytest.raises(ValueError, match=match):
        build(**kw)


def test_a_read_does_not_turn_the_output_on_at_the_last_pulse_level():
    b = build(params=QUIET)
    b.array.pulse_one(2, 5, 2.5, 0.005, bias="float")    # the 2450 level stays at 2.5 V
    r0 = b.xbar.devices.resistance
    b.array.read_one(3, 6, 0.2, bias="float")            # new route while the output comes on
    np.testing.assert_array_equal(b.xbar.devices.resistance, r0)


# ====================================================================== with a read supply
@pytest.mark.parametrize("bias", ["ground", "float"])
def test_sensed_reads_are_the_crossbars_column_reads(bias):
    b = build(params={"c2c_rel_std": 0.0}, supply=0.2)
    assert b.array.capabilities.read_voltage == (0.2, 0.2)
    before = counts(b)
    g = b.array.read_all(0.2, bias=bias)
    assert np.subtract(counts(b), before).tolist() == [64 + (bias == "ground"), 65]
    expected = np.array([[b.xbar.read_device(r, c, 0.2, bias, noisy=False)
                          for c in range(8)] for r in range(8)])
    np.testing.assert_allclose(g, expected, rtol=0.02)
    if bias == "ground":
        np.testing.assert_allclose(g, 0.2 * b.xbar.conductance * np.sinh(0.2) / 0.2, rtol=0.02)
    with pytest.raises(LimitError, match="read voltage"):
        b.array.read_one(0, 0, 0.3, bias=bias)


def test_ground_pulse_then_read_and_two_mainframes():
    b = build(shape=(32, 32), frames=2, params=QUIET, supply=0.2)
    r0 = b.xbar.devices.resistance
    before = counts(b)
    i = b.array.pulse_one(4, 20, 2.5, 0.005, bias="ground", vread=0.2)
    # ground mode on both (1 each), drive route;*OPC? (1 each), sweep (3), sense route;*OPC?
    # (1 each), output on at 0 V (1), query (1)
    assert np.subtract(counts(b), before).tolist() == [3, 3, 5]
    assert b.xbar.devices.resistance[4, 20] < r0[4, 20]
    assert i == pytest.approx(b.xbar.read_device(4, 20, 0.2, "ground", noisy=False), rel=1e-3)


def test_ground_ramp_stops_at_the_step_above_the_stop_current():
    b = build(params=QUIET, supply=0.2)
    stop = 1.2 * b.array.read_one(1, 1, 0.2, "ground")
    result = b.array.ramp(1, 1, 0.5, 2.5, 0.1, 0.003, bias="ground", vread=0.2,
                          stop_current=stop)
    assert result.stopped and 2 < result.steps < 21
    assert result.currents[-1] > stop and np.all(result.currents[:-1] <= stop)
    r_stop = b.xbar.devices.resistance[1, 1]
    assert b.array.pulse_log.arrays()["amplitude_v"][-1] == pytest.approx(result.voltages[-1])
    # the device read after the ramp is the one the last step left: nothing came after it
    assert b.array.read_one(1, 1, 0.2, "ground") == pytest.approx(result.currents[-1], rel=1e-3)
    assert b.xbar.devices.resistance[1, 1] == r_stop
    with pytest.raises(LimitError, match="needs vread"):
        b.array.ramp(1, 1, 0.5, 1.0, 0.1, 0.003, bias="ground")


def test_smu_matrix_refuses_ground_reads_without_a_read_supply():
    b = build()  # no read supply cabled
    before = counts(b)
    with pytest.raises(LimitError, match="read supply"):
        b.array.validate([Pulse(Selection.one(0, 0), 1.0, 0.005, "float", 0.2, "ground")])
    assert b.array.validate([Pulse(Selection.one(0, 0), 1.0, 0.005, "ground", 0.2,
                                   "float")])
    assert counts(b) == before


# ====================================================================== through the station
def test_station_32x32_read_write_and_safe_state():
    with Station.load("sim-crossbar-smu-matrix", sim=True) as station:
        array = station.instrument("array")
        assert array.shape == (32, 32)
        assert station.identity("array").count("AGILENT,B2201A") == 2
        bench = station.bench
        before = station.hardware_time
        t0 = time.perf_counter()
        g = array.read_all(0.2, bias="float")
        wall = time.perf_counter() - t0
        assert g.shape == (32, 32) and np.all(g > 0)
        print(f"32x32 read in-process: {wall:.2f} s wall, {station.hardware_time - before:.1f} s "
              "virtual")
        xbar = bench.devices["xbar"]
        expected = xbar.read_device(7, 9, 0.2, "float", noisy=False)
        assert g[7, 9] == pytest.approx(expected, rel=0.03)
        i_after = array.pulse_one(7, 9, 2.5, 0.005, bias="float", vread=0.2)
        assert i_after > g[7, 9]
        with pytest.raises(LimitError, match="pulse width"):
            array.pulse_one(7, 9, 2.5, 0.02, bias="float")        # station limit 0.01 s
        smu, rows, cols = (bench.instruments[k] for k in ("smu", "matrix", "matrix_cols"))
    assert not smu.output_on
    assert rows.closed == set() and cols.closed == set()


def test_station_over_tcp():
    with Station.load("sim-crossbar-smu-matrix", sim=True, transport="tcp") as station:
        array = station.instrument("array")
        xbar = station.bench.devices["xbar"]
        row = array.read_row(3, 0.2, bias="ground")
        expected = [xbar.read_device(3, c, 0.2, "ground", noisy=False) for c in range(32)]
        np.testing.assert_allclose(row, expected, rtol=0.03)
        assert array.pulse_one(3, 3, 1.6, 0.005, bias="float", vread=0.2) > 0
