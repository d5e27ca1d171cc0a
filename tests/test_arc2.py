"""ArC TWO: the pyarc2 stand-in (mocks/instruments/pyarc2_sim.py) and drivers/arc2.py."""

from __future__ import annotations

import sys
import types
import warnings

import numpy as np
import pytest

from drivers.arc2 import MAPPINGS, ArcTwo, ArcTwoError
from labctl.array import Selection
from labctl.errors import ConfigError, LimitError
from mocks.clock import VirtualClock
from mocks.devices.crossbar import Crossbar
from mocks.devices.rram import RRAMArray, RRAMParams
from mocks.instruments import pyarc2_sim as p

VREAD = 0.2


def make_sim(seed: int = 7, wiring="linear", **options):
    clock = VirtualClock()
    devices = RRAMArray((32, 32), params=RRAMParams(), rng=np.random.default_rng(seed),
                        formed=True)
    xbar = Crossbar(devices, clock=clock)
    return p.SimInstrument(clock=clock, device=xbar, rng=np.random.default_rng(seed + 1),
                           wiring=wiring, **options)


@pytest.fixture
def sim():
    return make_sim()


@pytest.fixture
def arc(sim):
    return ArcTwo(sim)


def resistance(sim) -> np.ndarray:
    return sim.device.devices.resistance.copy()


# ====================================================================== the pyarc2 stand-in
def test_enums_behave_like_pyarc2():
    assert p.BiasOrder.Rows is p.BiasOrder.Rows and p.BiasOrder.Rows is not p.BiasOrder.Cols
    assert p.ReadAt.Arb(0.2).voltage() == pytest.approx(0.2, abs=1e-7)
    assert p.ReadAt.Arb(0.2).voltage() == float(np.float32(0.2))  # stored as f32
    with pytest.raises(Exception, match="No voltage associated"):
        p.ReadAt.Bias.voltage()
    assert str(p.ReadAfter.Pulse) == "pulse" and repr(p.ReadAfter.Block) == "ReadAfter<Block>"
    assert str(p.ReadAfter.from_str("ramp")) == "ramp"
    with pytest.raises(ValueError, match="Unknown ReadAfter"):
        p.ReadAfter.from_str("sometimes")
    assert [m.value for m in p.IdleMode] == [1, 2, 3]
    with pytest.raises(OverflowError):
        p.WaitFor.Nanos(-1)
    assert p.find_ids() == [0]


def test_argument_types_and_ranges_as_the_library(sim):
    with pytest.raises(TypeError, match="nanos"):
        sim.pulse_one(16, 0, 1.0, 1e-6)            # widths are integer ns
    with pytest.raises(OverflowError):
        sim.pulse_one(16, 0, 1.0, -5)
    with pytest.raises(p.ArC2Error, match="channel 64"):
        sim.read_one(64, 0, VREAD)
    with pytest.raises(TypeError, match="iterable"):
        sim.connect_to_gnd(3)
    with pytest.raises(ValueError, match="8 arguments"):
        sim.pulse_slice_fast_open([(0, 1.0, 0.0)], [100] * 7, True)
    with pytest.raises(p.ArC2Error, match="no timing associated on cluster 0"):
        sim.pulse_slice_fast_open([(0, 1.0, 0.0)], [None] * 8, True)
    with pytest.raises(p.ArC2Error, match="polarity"):
        sim.pulse_slice_fast_open([(0, 1.0, 0.0), (1, -1.0, 0.0)], [100] * 8, True)
    with pytest.raises(p.ArC2Error, match="Ramp operation error"):
        sim.generate_ramp(16, 0, 1.0, 0.1, 0.0, 1000, 0, 1, p.ReadAt.Bias, p.ReadAfter.Pulse)
    assert sim.transactions == 0  # refused before reaching the board


def test_dac_clamps_out_of_range_voltages_and_quantises(sim):
    sim.config_channels([(0, 15.0), (1, 0.2)], None).execute()
    levels = sim.line_levels()
    assert levels[0] == pytest.approx(10.0, abs=1e-3)         # ±10 V, clamped not refused
    assert abs(levels[1] - 0.2) <= 3.05179e-4 / 2 + 1e-9       # 16-bit code
    sim.set_channel_range([0], p.OutputRange.EXT)
    sim.config_channels([(0, 15.0)], None).execute()
    assert sim.line_levels()[0] == pytest.approx(15.0, abs=1e-3)


def test_read_one_reports_current_into_the_sensing_channel(sim):
    r = resistance(sim)[2, 3]
    low, high = p.ALL_WORDS[3], p.ALL_BITS[2]     # word = column, bit = row
    i = sim.read_one(low, high, VREAD)
    assert isinstance(i, float)
    assert i < 0 and -i == pytest.approx(VREAD / r, rel=0.03)   # curvetracer.py negates it
    assert sim.transactions == 1 and sim.retrievals == 0


def test_read_all_blocks_in_channel_order(sim):
    raw = sim.read_all(VREAD, p.BiasOrder.Rows)   # the word channels biased in turn
    assert raw.shape == (32, 32) and raw.dtype == np.float32
    expected = VREAD / resistance(sim)            # (rows = bits, cols = words)
    np.testing.assert_allclose(-raw, expected.T, rtol=0.03)
    np.testing.assert_allclose(-sim.read_slice(p.ALL_WORDS[5], VREAD), expected[:, 5], rtol=0.03)
    assert sim.transactions == 2


def test_pulses_queue_until_execute_and_float_the_other_lines(sim):
    before = resistance(sim)
    sim.pulse_one(p.ALL_WORDS[1], p.ALL_BITS[1], 1.8, 1000)
    assert sim.transactions == 0 and np.array_equal(resistance(sim), before)
    t0 = sim.clock.now
    sim.execute()
    assert sim.transactions == 1
    assert resistance(sim)[1, 1] < before[1, 1]              # +V on bit over word: SET
    levels = sim.line_levels()
    assert np.isnan(levels[[c for c in range(64) if c not in (1, 17)]]).all()  # left open
    assert levels[[1, 17]] == pytest.approx([0, 0], abs=1e-3)  # high-speed idle level
    assert sim.clock.now - t0 == pytest.approx(p.WRITE_DELAY_S)  # the buffer ran in the sleep


def test_slow_pulse_stays_on_until_the_next_operation(sim):
    sim.pulse_one(p.ALL_WORDS[0], p.ALL_BITS[0], 1.0, 600_000_000).execute()
    levels = sim.line_levels()
    assert levels[p.ALL_BITS[0]] == pytest.approx(0.5, abs=1e-3)
    assert levels[p.ALL_WORDS[0]] == pytest.approx(-0.5, abs=1e-3)
    assert sim.clock.now > 0.6
    sim.finalise_operation(p.IdleMode.SoftGnd)
    assert np.allclose(sim.line_levels(), 0, atol=1e-3)


def test_generate_ramp_get_iter_and_timing(sim):
    low, high = p.ALL_WORDS[4], p.ALL_BITS[4]
    sim.generate_ramp(low, high, 0.5, 0.25, 1.5, 1_000_000, 0, 2, p.ReadAt.Arb(VREAD),
                      p.ReadAfter.Pulse)
    assert sim.transactions == 0
    t0 = sim.clock.now
    sim.execute()
    items = list(sim.get_iter(p.DataMode.Bits))
    assert len(items) == 4 * 2                     # 0.5, 0.75, 1.0, 1.25 (vstop excluded) × 2
    assert all(isinstance(it, list) and len(it) == 1 for it in items)
    assert items[0][0].shape == (32,) and items[0][0].dtype == np.float32
    assert sim.pick_one(p.DataMode.All, p.ReadType.Current) is None
    assert sim.retrievals == 8
    assert sim.clock.now - t0 > 8 * 1e-3           # eight 1 ms pulses on the clock


def test_read_trains(sim):
    low, high = p.ALL_WORDS[2], p.ALL_BITS[2]
    sim.read_train(low, high, VREAD, 1_000_000, None, p.WaitFor.Iterations(5))
    assert sim.transactions == 1
    reads = [-it[0][high] for it in sim.get_iter(p.DataMode.All)]
    assert len(reads) == 5
    np.testing.assert_allclose(reads, VREAD / resistance(sim)[2, 2], rtol=0.03)
    t0 = sim.clock.now
    sim.read_train(low, high, VREAD, 0, None, p.WaitFor.Millis(20))
    n = len(list(sim.get_iter(p.DataMode.Bits)))
    assert sim.clock.now - t0 >= 0.02 and 2 <= n <= 10       # ≥ 2.5 ms a read (WRITEDELAY)
    sim.generate_read_train([low], [high, p.ALL_BITS[3]], VREAD, 3, 0, True).execute()
    blocks = [it[0] for it in sim.get_iter(p.DataMode.Bits)]
    assert len(blocks) == 3 and np.isfinite(blocks[0][[2, 3]]).all()


def test_result_memory_is_finite(sim):
    small = make_sim(memory_chunks=2)
    small.read_slice_open_deferred([0], True).read_slice_open_deferred([1], True)
    with pytest.raises(p.ArC2Error, match="Out of memory"):
        small.read_slice_open_deferred([2], True)
    small.execute()
    assert small.pick_one(p.DataMode.All, p.ReadType.Current).shape == (64,)
    small.read_slice_open_deferred([2], True)      # a fetched chunk is free again


def test_finalise_operation_idle_modes(sim):
    sim.finalise_operation(p.IdleMode.Float)
    assert np.isnan(sim.line_levels()).all()
    sim.finalise_operation(p.IdleMode.HardGnd)
    assert np.array_equal(sim.line_levels(), np.zeros(64))
    sim.finalise_operation(p.IdleMode.SoftGnd)
    assert np.allclose(sim.line_levels(), 0, atol=1e-3)
    with pytest.raises(p.ArC2Error, match="Invalid idle mode"):
        sim.finalise_operation("ground")


def test_real_pyarc2_api_matches_when_installed():
    pyarc2 = pytest.importorskip("pyarc2")
    real = {n for n in dir(pyarc2.Instrument) if not n.startswith("_")}
    ours = {n for n in dir(p.SimInstrument) if not n.startswith("_")}
    assert real <= ours
    for enum_name in ("BiasOrder", "ControlMode", "DataMode", "ReadType", "ReadAt", "ReadAfter",
                      "AuxDACFn", "IODir", "LogicLevel", "OutputRange"):
        real_v = {n for n in dir(getattr(pyarc2, enum_name)) if n[:1].isupper()}
        ours_v = {n for n in dir(getattr(p, enum_name)) if n[:1].isupper()}
        assert real_v == ours_v, enum_name


# ====================================================================== the driver
def test_check_resource():
    assert ArcTwo.check_resource("ARC2::0") is None
    assert ArcTwo.check_resource("arc2::12") is None
    for bad in ("ARC2::", "ARC2::-1", "ARC2::x", "TCPIP::1.2.3.4::INSTR", ""):
        assert "ARC2::<board id>" in ArcTwo.check_resource(bad)


def test_resource_without_pyarc2_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarc2", None)
    with pytest.raises(ConfigError, match=r"pip install 'labctl\[arc2\]'") as info:
        ArcTwo("ARC2::0", firmware="fw.bin")
    assert "\n" not in str(info.value)


def fake_pyarc2(board_ids, sim):
    module = types.ModuleType("pyarc2")
    for name in ("ArC2Error", "BiasOrder", "ReadAt", "ReadAfter", "DataMode", "ReadType",
                 "IdleMode", "ControlMode", "LIBARC2_VERSION"):
        setattr(module, name, getattr(p, name))
    module.find_ids = lambda: list(board_ids)
    module.Instrument = lambda board, firmware: sim
    return module


def test_resource_opens_a_board_through_pyarc2(monkeypatch, tmp_path, sim):
    firmware = tmp_path / "efm03.bin"
    firmware.write_bytes(b"\0")
    monkeypatch.setitem(sys.modules, "pyarc2", fake_pyarc2([0, 1], sim))
    with pytest.raises(ConfigError, match="no firmware"):
        ArcTwo("ARC2::1")
    with pytest.raises(ConfigError, match="not found"):
        ArcTwo("ARC2::1", firmware=str(tmp_path / "missing.bin"))
    with pytest.raises(ConfigError, match=r"no ArC TWO board 5 connected \(boards found: 0, 1\)"):
        ArcTwo("ARC2::5", firmware=str(firmware))
    arc = ArcTwo("ARC2::1", firmware=str(firmware), control_mode="internal")
    assert "board 1, firmware efm03.bin" in arc.id and sim.control_mode is p.ControlMode.Internal
    assert arc.read_one(0, 0, VREAD, bias="ground") > 0


def test_options_are_checked(sim):
    with pytest.raises(ValueError, match="mapping"):
        ArcTwo(sim, mapping="sideways")
    with pytest.raises(ValueError, match="bits must be distinct bit channels"):
        ArcTwo(sim, mapping={"words": [16], "bits": [17]})
    with pytest.raises(ValueError, match="ramp_chunk"):
        ArcTwo(sim, ramp_chunk=0)
    with pytest.raises(ConfigError, match="not a pyarc2 Instrument"):
        ArcTwo(object())


def test_capabilities(arc):
    caps = arc.capabilities
    assert caps.shape == (32, 32)
    assert caps.read_voltage == (-10.0, 10.0) and caps.pulse_voltage == (-20.0, 20.0)
    assert caps.min_pulse_width == 40e-9 and caps.time_grid == 1e-9
    assert not caps.hardware_compliance and caps.whole_array_read and caps.batched
    assert set(caps.bias_schemes) == {"v/2", "v/3", "ground", "float"}
    assert "ArC TWO" in arc.id and "linear mapping" in arc.id


@pytest.mark.parametrize("bias", ["ground", "v/2", "v/3", "float"])
def test_reads_match_the_crossbar_definition(sim, arc, bias):
    xbar = sim.device
    np.testing.assert_allclose(arc.read_all(VREAD, bias), xbar.read_all(VREAD, bias, False),
                               rtol=0.03)
    np.testing.assert_allclose(arc.read_row(4, VREAD, bias), xbar.read_row(4, VREAD, bias, False),
                               rtol=0.03)
    assert arc.read_one(4, 9, VREAD, bias) == pytest.approx(
        xbar.read_device(4, 9, VREAD, bias, False), rel=0.03)
    exact = VREAD / resistance(sim)
    if bias in ("ground", "float"):
        np.testing.assert_allclose(arc.read_column(9, VREAD, bias), exact[:, 9], rtol=0.03)
    cells = arc.read(Selection.cells([1, 2, 2], [3, 3, 5]), VREAD, "ground")
    np.testing.assert_allclose(cells, exact[[1, 2, 2], [3, 3, 5]], rtol=0.03)


def test_whole_array_read_transactions(sim, arc):
    arc.read_all(VREAD, bias="ground")
    assert (sim.transactions, sim.retrievals) == (1, 0)      # one read_all call
    arc.read_all(VREAD, bias="v/2")
    assert (sim.transactions, sim.retrievals) == (2, 32)     # one execute, a block per row


def test_pulse_polarity_and_bias_schemes(sim, arc):
    r0 = resistance(sim)
    arc.pulse_one(6, 7, -1.5, 100e-6, bias="float")          # floating lines settle near 0 V:
    r1 = resistance(sim)                                      # half-selected at ≈ 0.75 V
    assert r1[6, 7] > 1.2 * r0[6, 7]                          # negative: RESET
    others = np.ones((32, 32), bool)
    others[6, 7] = False
    assert np.allclose(r1[others], r0[others], rtol=1e-3)    # below the 0.8 V threshold
    current = arc.pulse_one(6, 7, 1.5, 100e-6, bias="v/2", vread=VREAD,
                            read_bias="ground")
    assert resistance(sim)[6, 7] < 0.9 * r1[6, 7]             # positive: SET
    assert current == pytest.approx(VREAD / resistance(sim)[6, 7], rel=0.03)
    assert sim.device.disturb_time[6, 0] > 0 and sim.device.disturb_time[0, 7] > 0
    arc.pulse_row(3, 0.3, 50e-6, bias="v/3")
    arc.pulse(Selection.cells([1, 9], [2, 2]), np.array([0.3, 0.4]), 1e-6, bias="float")
    arc.pulse_all(0.3, 1e-6, bias="float")
    assert sim.transactions == 5


def test_held_schemes_on_the_high_speed_drivers(sim, arc):
    r0 = resistance(sim)
    arc.pulse_one(10, 11, 2.1, 10e-6, bias="v/3")             # others see ±0.7 V < 0.8 V
    r1 = resistance(sim)
    changed = np.argwhere(~np.isclose(r1, r0, rtol=1e-3)).tolist()
    assert changed == [[10, 11]]
    arc.pulse_one(12, 3, -1.5, 10e-6, bias="ground")          # the whole row sees −1.5 V
    r2 = resistance(sim)
    changed_rows = {r for r, _ in np.argwhere(~np.isclose(r2, r1, rtol=1e-3)).tolist()}
    assert changed_rows == {12} and np.all(r2[12] > r1[12])
    for bias in ("v/2", "v/3", "ground"):                     # one transition way per cluster
        for a in (0.3, -0.3):
            arc.pulse(Selection.cells([1, 2, 2], [3, 3, 5]), a, 40e-9, bias=bias)
            arc.pulse_row(4, a, 1e-6, bias=bias)
            arc.pulse_all(a, 1e-6, bias=bias)
    assert sim.transactions == 2 + 3 * 2 * 3
    t0 = sim.clock.now
    arc.pulse_one(0, 0, 0.3, 0.6, bias="v/2")                 # from 500 ms: the DACs
    assert sim.clock.now - t0 > 0.6


def test_single_ended_schemes_stop_at_10v(sim, arc):
    for bias in ("ground", "v/3"):
        with pytest.raises(LimitError, match=f"bias '{bias}'.*10 V"):
            arc.pulse_one(0, 0, 12.0, 1e-4, bias=bias)
    with pytest.raises(LimitError, match="step voltage"):
        arc.ramp(0, 0, 0.0, 12.0, 1.0, 1e-6, bias="float")
    with pytest.raises(LimitError):                           # the base class's own checks
        arc.pulse_one(0, 0, 25.0, 1e-6, bias="float")
    assert sim.transactions == 0


def test_train_with_reads_is_one_program(sim, arc):
    t0 = sim.clock.now
    currents = arc.pulse_train(Selection.one(5, 6), [-1.5] * 100, 100e-9, bias="float",
                               vread=VREAD, read_bias="ground")
    assert currents.shape == (100,)
    assert (sim.transactions, sim.retrievals) == (1, 100)
    assert currents[-1] == pytest.approx(VREAD / resistance(sim)[5, 6], rel=0.03)
    assert currents[-1] < currents[0]                         # RESET pulses
    assert 0.01 < sim.clock.now - t0 < 0.05                   # ≈ 200 µs per pulse + read
    row = arc.pulse_train(Selection.row(2), [0.5, 0.6, 0.7], 50e-6, bias="v/2", vread=VREAD,
                          read_bias="ground")
    assert row.shape == (3, 32) and (sim.transactions, sim.retrievals) == (2, 103)
    assert arc.pulse_train(Selection.one(1, 1), [1.0, 1.1], 1e-6, bias="float") is None
    log = arc.pulse_log.arrays()
    assert len(log["row"]) == 100 + 3 * 32 + 2


def test_batch_runs_in_one_execute(sim, arc):
    with arc.batch() as b:
        first = b.read_one(0, 0, VREAD, bias="ground")
        b.pulse_one(0, 0, 1.5, 1e-6, bias="float")
        second = b.read_one(0, 0, VREAD, bias="ground")
        whole = b.read_all(VREAD, bias="ground")
    assert sim.transactions == 1 and sim.retrievals == 2 + 32
    assert second.result() > first.result()
    assert whole.result()[0, 0] == pytest.approx(second.result(), rel=0.03)


def test_ramp_in_one_program_and_read_at_bias(sim, arc):
    result = arc.ramp(8, 8, 0.1, 0.5, 0.1, 1e-6, bias="float")
    assert result.steps == 5 and not result.stopped
    np.testing.assert_allclose(result.voltages, [0.1, 0.2, 0.3, 0.4, 0.5])
    np.testing.assert_allclose(result.currents, result.voltages / resistance(sim)[8, 8],
                               rtol=0.05)
    assert sim.transactions == 1 and sim.retrievals == 5
    held = arc.ramp(8, 9, 0.1, 0.3, 0.1, 40e-6, bias="v/2", vread=VREAD)
    assert held.steps == 3 and sim.transactions == 2


def test_ramp_stop_current_is_checked_in_software(sim, arc):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        arc.set_compliance(4e-5)
    result = arc.ramp(9, 9, 0.0, 2.0, 0.1, 100e-6, bias="float", vread=VREAD)
    assert result.stopped and 5 < result.steps < 21 and np.abs(result.currents[-1]) > 4e-5
    assert np.all(np.abs(result.currents[:-1]) <= 4e-5)
    assert sim.transactions == result.steps                   # one execute per step
    chunky = ArcTwo(make_sim(seed=7), ramp_chunk=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        chunky.set_compliance(4e-5)
    overshoot = chunky.ramp(9, 9, 0.0, 2.0, 0.1, 100e-6, bias="float", vread=VREAD)
    assert overshoot.stopped and overshoot.steps % 8 == 0     # whole chunks, all reported
    assert overshoot.steps >= result.steps
    assert chunky.instrument.transactions == overshoot.steps // 8


def test_instrument_errors_are_one_line(sim, arc):
    sim.fail_next(message="FPGA Error: Could not write block")
    with pytest.raises(ArcTwoError) as info:
        arc.read_all(VREAD, bias="ground")
    assert str(info.value) == ("ArC TWO (mocks.instruments.pyarc2_sim.SimInstrument object): "
                               "read failed: FPGA Error: Could not write block")
    arc.read_all(VREAD, bias="ground")                        # the link is back
    first = arc.read_row(3, VREAD, bias="v/2")
    sim.fail_next(after=5)                                    # lost while fetching results
    with pytest.raises(ArcTwoError, match="USB transfer failed"):
        arc.read_all(VREAD, bias="v/2")                       # 27 blocks left on the board
    again = arc.read_row(3, VREAD, bias="v/2")                # drained before the next call
    np.testing.assert_allclose(again, first, rtol=0.03)


def test_shutdown_and_idle(sim, arc):
    arc.pulse_one(0, 0, 1.0, 1e-6, bias="float")
    arc.float_all()
    assert np.isnan(sim.line_levels()).all()
    arc.shutdown()
    assert np.allclose(sim.line_levels(), 0, atol=1e-3)
    arc.close()
    with pytest.raises(ArcTwoError, match="closed"):
        arc.read_one(0, 0, VREAD)


def test_standard32_mapping_addresses_the_right_device():
    table = MAPPINGS["standard32"]
    sim = make_sim(wiring={"rows": table["bits"], "cols": table["words"]})
    arc = ArcTwo(sim, mapping="standard32")
    before = resistance(sim)
    arc.pulse_one(3, 29, 1.5, 10e-6, bias="float")
    changed = np.argwhere(~np.isclose(resistance(sim), before, rtol=1e-3))
    assert changed.tolist() == [[3, 29]]
    np.testing.assert_allclose(arc.read_all(VREAD, "ground"), VREAD / resistance(sim), rtol=0.03)


def test_station_gives_the_simulated_board():
    from labctl.station import Station

    station = Station.load("sim-crossbar-arc2", sim=True)
    try:
        array = station.instrument("array")
        assert isinstance(array, ArcTwo)
        currents = array.read_all(VREAD, bias="ground")
        assert currents.shape == (32, 32) and np.isfinite(currents).all()
        with pytest.raises(LimitError, match="chip's voltage limit"):
            array.pulse_one(0, 0, 4.5, 1e-6, bias="float")
    finally:
        station.close()
    board = station.bench.instruments["array"]
    assert np.allclose(board.line_levels(), 0, atol=1e-3)    # safe state after close
