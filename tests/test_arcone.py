"""ArC ONE: the firmware emulation (bytes in, bytes out), the driver against it over a real
pseudo-terminal, fault injection, and the station wiring."""

from __future__ import annotations

import math
import struct
import time

import numpy as np
import pytest

from drivers.arcone import ArcOne, ArcOneError, ArcOneTimeout
from labctl.array import Idle, Ramp, Selection
from labctl.errors import ConfigError, LimitError
from mocks.clock import VirtualClock
from mocks.devices.crossbar import Crossbar
from mocks.devices.rram import RRAMArray, RRAMParams
from mocks.instruments.arcone import BOOT_S, BYTE_S, ArcOnePersonality
from mocks.serial_pty import PtySerialServer
from mocks.transports import TransportFaults

SEED = 20261124
CONFIG = b"0\n50\n32\n32\n2\n0\n1\n0.500000\n"


def make_board(shape=(32, 32), seed=SEED, formed=True, **params):
    clock = VirtualClock()
    devices = RRAMArray(shape, params=RRAMParams(**params), rng=np.random.default_rng(seed),
                        formed=formed)
    crossbar = Crossbar(devices, clock=clock)
    return ArcOnePersonality(clock=clock, device=crossbar), crossbar, clock


def settle(personality, n_jobs: int) -> None:
    """Wait until the board has carried out ``n_jobs`` commands: commands without a reply
    ("00", "01", "02", "04") may still be on their way when the driver returns."""
    deadline = time.monotonic() + 2
    while len(personality.jobs) < n_jobs and time.monotonic() < deadline:
        time.sleep(0.002)
    assert len(personality.jobs) >= n_jobs, personality.jobs


def floats(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<f4").astype(float)


@pytest.fixture
def board():
    personality, crossbar, clock = make_board()
    assert personality.feed(b"00\n" + CONFIG) == b"1\n"
    return personality, crossbar, clock


@pytest.fixture
def rig():
    """Driver ↔ pty ↔ personality on a 32×32 crossbar; counters zeroed after the open."""
    personality, crossbar, clock = make_board()
    server = PtySerialServer(personality).start()
    arc = ArcOne(server.port, timeout=0.5)
    settle(personality, 4)  # "00", "999", "0", "01"
    personality.transactions, personality.jobs = 0, []
    yield arc, personality, crossbar, clock, server
    arc.close()
    server.stop()


@pytest.fixture
def small_rig():
    personality, crossbar, clock = make_board(shape=(4, 4))
    server = PtySerialServer(personality).start()
    arc = ArcOne(server.port, timeout=0.5, words=4, bits=4)
    settle(personality, 4)
    personality.transactions, personality.jobs = 0, []
    yield arc, personality, crossbar, clock, server
    arc.close()
    server.stop()


# ====================================================================== the firmware emulation
def test_session_configuration_acknowledged_and_firmware_version():
    personality, _, clock = make_board()
    assert personality.feed(b"00\n") == b""
    assert clock.now >= BOOT_S
    assert personality.feed(CONFIG) == b"1\n"
    assert struct.unpack("<2H", personality.feed(b"999\n")) == personality.firmware
    assert personality.jobs == ["00", "0", "999"] and personality.transactions == 3
    assert personality.session.sneak_path == 1 and personality.session.vread == 0.5


def test_read_one_is_float32_little_endian_resistance_of_the_crossbar(board):
    personality, crossbar, _ = board
    data = personality.feed(b"1\n3\n4\n")  # word 3, bit 4: 1-based
    assert len(data) == 4
    # reads hold the unselected lines at 0 V (the sneak-path option is a write option)
    expected = 0.5 / crossbar.read_device(2, 3, 0.5, "ground", noisy=False)
    assert floats(data)[0] == pytest.approx(expected, rel=0.02)  # ±1 % read noise
    # no sneak current: the selected device alone (its I-V is slightly non-linear at 0.5 V)
    assert expected == pytest.approx(0.5 / crossbar.devices.current(0.5)[2, 3], rel=1e-9)


def test_floating_option_adds_sneak_currents_to_reads(board):
    personality, crossbar, _ = board
    personality.feed(CONFIG.replace(b"\n1\n0.5", b"\n256\n0.5"))
    r = floats(personality.feed(b"1\n3\n4\n2\n1\n2\n2\n"))
    expected = 0.5 / crossbar.read_device(2, 3, 0.5, "float", noisy=False)
    assert r[0] == pytest.approx(expected, rel=0.02)
    assert r[0] < 0.5 / crossbar.conductance[2, 3]  # sneak paths in parallel
    assert r[2] == pytest.approx(0.5 / crossbar.read_device(0, 1, 0.5, "float", noisy=False),
                                 rel=0.02)  # r[1:5]: the 2x2 read-all, word-major


def test_lines_split_across_writes_answer_only_when_complete(board):
    personality, _, _ = board
    assert personality.feed(b"1\n") == b""
    assert personality.feed(b"3") == b""
    assert personality.feed(b"\n4\r") == b""
    assert len(personality.feed(b"\n")) == 4  # CR before LF tolerated


def test_read_all_streams_words_times_bits_word_major(board):
    personality, crossbar, clock = board
    t0 = clock.now
    data = personality.feed(b"2\n1\n32\n32\n")
    assert len(data) == 4 * 32 * 32
    expected = 0.5 / crossbar.read_all(0.5, "ground", noisy=False)
    np.testing.assert_allclose(floats(data).reshape(32, 32), expected, rtol=0.02)
    # 1024 reads of 50 cycles (1 ms each, estimate) plus 4 KiB at 921600 baud, 8E1
    assert clock.now - t0 == pytest.approx(1024 * 1e-3 + (4096 + 10) * BYTE_S, rel=1e-6)


def test_read_custom_array_one_float_per_cell(board):
    personality, crossbar, _ = board
    data = personality.feed(b"2\n2\n32\n32\n3\n1\n1\n5\n7\n32\n32\n")
    exact = 0.5 / crossbar.read_all(0.5, "ground", noisy=False)
    expected = [exact[r, c] for r, c in ((0, 0), (4, 6), (31, 31))]
    np.testing.assert_allclose(floats(data), expected, rtol=0.02)
    assert personality.jobs[-1] == "2"


def test_pulse_read_sets_and_accounts_the_pulse_width(board):
    personality, crossbar, clock = board
    before = floats(personality.feed(b"1\n2\n2\n"))[0]
    t0 = clock.now
    after = floats(personality.feed(b"3\n2\n2\n2.5\n0.001\n"))[0]
    assert after < before  # positive amplitude = SET direction
    assert clock.now - t0 > 1e-3
    assert crossbar.stress_time[1, 1] == pytest.approx(1e-3)
    assert crossbar.disturb_time[1, 0] == pytest.approx(1e-3)  # V/2 half-select disturb


def test_select_then_pulse_active_has_no_reply(board):
    personality, crossbar, _ = board
    assert personality.feed(b"04\n2.0\n1e-06\n") == b""
    assert personality.errors[-1] == "pulse with no device selected ignored"
    assert personality.feed(b"02\n5\n6\n04\n2.0\n1e-06\n") == b""
    assert crossbar.stress_time[4, 5] == pytest.approx(1e-6)


def test_update_read_changes_vread_and_negative_vread_reads_positive_resistance(board):
    personality, _, _ = board
    assert personality.feed(b"01\n3\n-0.3\n") == b""
    assert personality.session.vread == -0.3
    assert floats(personality.feed(b"1\n1\n1\n"))[0] > 0


def test_out_of_range_device_answers_nan_and_unknown_job_is_ignored(board):
    personality, _, _ = board
    assert math.isnan(floats(personality.feed(b"1\n33\n1\n"))[0])
    assert personality.feed(b"77\n") == b""
    assert "unknown job '77' ignored" in personality.errors
    assert personality.feed(b"1\nabc\n1\n") and "'abc' is not a number (read as 0)" in \
        personality.errors


def test_reset_restores_power_on_session(board):
    personality, _, _ = board
    personality.feed(b"01\n1\n0.2\n" + CONFIG.replace(b"\n1\n0.5", b"\n0\n0.5"))
    assert personality.session.sneak_path == 0
    personality.feed(b"00\n")
    assert personality.session.sneak_path == 1 and personality.session.vread == 0.5


def test_form_finder_streams_triplets_until_vmax():
    personality, _, _ = make_board(shape=(4, 4))
    personality.feed(b"00\n0\n50\n4\n4\n2\n0\n256\n0.2\n")
    # Vmin 0.1, step 0.1, Vmax 0.35, pw 1e-6 (min = max), 100 %, interpulse 0, Rthr 0, 0 %,
    # no series resistor, 1 pulse per step, 1 device, W=2 B=3
    job = b"14\n0.1\n0.1\n0.35\n1e-06\n100\n1e-06\n0\n0\n0\n7\n1\n1\n2\n3\n"
    t = floats(personality.feed(job)).reshape(-1, 3)
    assert t[0, 1:] == pytest.approx([0.2, 0.0])  # the first triplet: the read before pulsing
    np.testing.assert_allclose(t[1:4, 1], [0.1, 0.2, 0.3], rtol=1e-6)
    np.testing.assert_allclose(t[1:4, 2], 1e-6, rtol=1e-6)
    assert t[-1].tolist() == [0, 0, 0] and len(t) == 5


def test_form_finder_stops_on_its_resistance_threshold():
    personality, _, _ = make_board(shape=(4, 4))
    personality.feed(b"00\n0\n50\n4\n4\n2\n0\n256\n0.2\n")
    job = b"14\n0.1\n0.1\n3\n1e-06\n100\n1e-06\n0\n1e12\n0\n7\n1\n1\n1\n1\n"
    t = floats(personality.feed(job)).reshape(-1, 3)
    assert len(t) == 2 and t[1].tolist() == [0, 0, 0]  # R < Rthr already: no pulse


def test_curve_tracer_sweeps_up_and_back_and_halts_at_cut_off():
    personality, _, _ = make_board(shape=(4, 4))
    personality.feed(b"00\n0\n50\n4\n4\n2\n0\n256\n0.2\n")
    # V+ 0.35: the step count is truncated, int((0.35 - 0.1)/0.1) = 2, as in VirtualArC
    head = b"201\n0.35\n0.35\n0.1\n0.1\n1e-06\n0\n"
    t = floats(personality.feed(head + b"0\n0\n1\n0\n2\n1\n1\n1\n1\n")).reshape(-1, 3)
    np.testing.assert_allclose(t[:-1, 1], [0.1, 0.2, 0.3, 0.2, 0.1], rtol=1e-6)
    assert t[-1].tolist() == [0, 0, 0]
    halted = floats(personality.feed(head + b"1e-09\n0\n1\n0\n2\n1\n1\n1\n1\n")).reshape(-1, 3)
    assert len(halted) == 2 and halted[0, 1] == pytest.approx(0.1)


def test_personality_needs_a_crossbar_that_fits_the_board():
    with pytest.raises(ValueError, match="crossbar device"):
        ArcOnePersonality(clock=VirtualClock(), device=None)
    big = Crossbar(RRAMArray((33, 4), rng=np.random.default_rng(0), formed=True))
    with pytest.raises(ValueError, match="does not fit"):
        ArcOnePersonality(device=big)


# ====================================================================== driver over a pty
def test_open_resets_queries_firmware_and_configures_the_session():
    personality, _, _ = make_board()
    with PtySerialServer(personality) as server:
        arc = ArcOne(server.port, timeout=0.5)
        settle(personality, 4)
        assert personality.jobs == ["00", "999", "0", "01"]
        assert arc.id == (f"ArC Instruments ArC ONE, firmware 1.9, 32x32 array, {server.port}")
        caps = arc.capabilities
        assert caps.shape == (32, 32) and caps.whole_array_read and caps.batched
        assert not caps.hardware_compliance and caps.bias_schemes == ("v/2", "v/3", "float")
        assert (caps.min_pulse_width, caps.max_pulse_width) == (90e-9, 10.0)
        arc.close()


def test_read_all_is_one_command_and_one_block(rig):
    arc, personality, crossbar, _, _ = rig
    currents = arc.read_all(0.5)
    assert personality.transactions == 1 and personality.jobs == ["2"]
    np.testing.assert_allclose(currents, crossbar.read_all(0.5, "ground", noisy=False),
                               rtol=0.02)
    assert np.all(currents > 0)
    arc.read_all(0.3)  # a new read voltage: "01" in the same write
    assert personality.jobs[1:] == ["01", "2"]
    assert personality.session.vread == pytest.approx(0.3)


def test_row_column_and_cell_reads_are_one_custom_array_command(rig):
    arc, personality, crossbar, _, _ = rig
    row = arc.read_row(3, 0.5)
    col = arc.read_column(7, 0.5)
    cells = arc.read(Selection.cells([0, 31, 5], [0, 31, 9]), 0.5)
    one = arc.read_one(5, 9, 0.5)
    assert personality.jobs == ["2", "2", "2", "1"]
    assert row.shape == (32,) and col.shape == (32,) and cells.shape == (3,)
    assert isinstance(one, float)
    exact = crossbar.read_all(0.5, "ground", noisy=False)
    np.testing.assert_allclose(row, exact[3], rtol=0.02)
    np.testing.assert_allclose(col, exact[:, 7], rtol=0.02)
    np.testing.assert_allclose([cells[2], one], exact[5, 9], rtol=0.02)


def test_pulse_without_read_selects_once_then_pulses(rig):
    arc, personality, crossbar, _, _ = rig
    assert arc.pulse_one(2, 3, 2.0, 1e-6) is None
    assert arc.pulse_one(2, 3, 2.0, 1e-6) is None
    settle(personality, 3)
    assert personality.jobs == ["02", "04", "04"]
    assert crossbar.stress_time[2, 3] == pytest.approx(2e-6)
    assert arc.pulse_log.counts((32, 32))[2, 3] == 2


def test_pulse_read_lowers_resistance_and_pulse_row_goes_device_by_device(rig):
    arc, personality, crossbar, _, _ = rig
    before = crossbar.devices.resistance[4, 4]
    current = arc.pulse_one(4, 4, 2.5, 1e-3, vread=0.5)
    assert personality.jobs == ["3"] and current > 0
    assert crossbar.devices.resistance[4, 4] < before
    row = arc.pulse_row(6, 1.0, 1e-6, vread=0.5)
    assert row.shape == (32,) and personality.jobs[1:] == ["3"] * 32
    assert np.all(arc.pulse_log.counts((32, 32))[6] == 1)


def test_train_is_pipelined_pulse_reads_with_virtual_time(rig):
    arc, personality, _, clock, _ = rig
    t0, wall = clock.now, time.perf_counter()
    currents = arc.pulse_train(Selection.one(1, 2), np.full(1000, 1.2), 100e-6, vread=0.2)
    wall = time.perf_counter() - wall
    assert currents.shape == (1000,) and np.all(np.isfinite(currents))
    assert personality.jobs == ["01"] + ["3"] * 1000
    assert clock.now - t0 > 1000 * (100e-6 + 1e-3)  # width + a 50-cycle read each
    assert wall < 5
    assert arc.pulse_log.counts((32, 32))[1, 2] == 1000


def test_pulse_all_with_read_spans_chunks(rig):
    arc, personality, _, _, _ = rig
    currents = arc.pulse_all(0.5, 1e-6, vread=0.5)
    assert currents.shape == (32, 32) and personality.jobs == ["3"] * 1024


def test_batch_runs_as_one_pipeline_with_per_device_amplitudes(rig):
    arc, personality, crossbar, _, _ = rig
    cells = Selection.cells([0, 1, 2], [5, 6, 7])
    with arc.batch():
        before = arc.read(cells, 0.5)
        pulsed = arc.pulse(cells, np.array([1.0, 2.0, 3.0]), 1e-4, vread=0.5)
        whole = arc.read_all(0.5)
    assert personality.jobs == ["2", "3", "3", "3", "2"]
    assert before.value.shape == (3,) and pulsed.value.shape == (3,)
    assert whole.value.shape == (32, 32)
    np.testing.assert_allclose(whole.value[[0, 1, 2], [5, 6, 7]], pulsed.value, rtol=0.03)
    log = arc.pulse_log.arrays()
    np.testing.assert_allclose(log["amplitude_v"], [1.0, 2.0, 3.0])
    assert crossbar.stress_time[2, 7] == pytest.approx(1e-4)


def test_bias_scheme_is_the_session_sneak_path_option(rig):
    arc, personality, _, _, _ = rig
    arc.read_one(0, 0, 0.5, bias="v/3")  # reads ground the unselected lines under either
    assert personality.jobs == ["1"]
    arc.pulse_one(0, 0, 1.0, 1e-6, bias="v/3", vread=0.5)
    assert personality.jobs[1:] == ["0", "01", "3"] and personality.session.bias == "v/3"
    arc.read_one(0, 0, 0.5, bias="float")
    assert personality.session.sneak_path == 256
    before = personality.transactions
    with pytest.raises(LimitError, match="bias scheme 'ground' not available"):
        arc.read_one(0, 0, 0.5, bias="ground")
    with pytest.raises(LimitError, match="outside the controller's range"):
        arc.pulse_one(0, 0, 13.0, 1e-6)
    assert personality.transactions == before


def test_ramp_with_read_is_one_form_finder_job_stopping_on_current(small_rig):
    arc, personality, crossbar, _, _ = small_rig
    i0 = arc.read_one(1, 1, 0.2, bias="float")
    personality.jobs = []
    result = arc.ramp(1, 1, 0.5, 3.0, 0.1, 1e-4, bias="float", vread=0.2,
                      stop_current=1.5 * i0)
    assert personality.jobs == ["14"]
    assert result.stopped and 1 <= result.steps < 26
    assert abs(result.currents[-1]) > 1.5 * i0
    assert np.all(np.abs(result.currents[:-1]) <= 1.5 * i0)
    np.testing.assert_allclose(result.voltages, 0.5 + 0.1 * np.arange(result.steps))
    assert arc.pulse_log.counts((4, 4))[1, 1] == result.steps


def test_ramp_to_the_end_without_stop(small_rig):
    arc, personality, _, _, _ = small_rig
    result = arc.ramp(0, 0, -0.1, -0.5, 0.1, 1e-6, bias="float", vread=0.2)
    # float scheme: "0" (acknowledged) and "01"; then Vread 0.2 and the job in one write
    assert personality.jobs == ["0", "01", "01", "14"] and not result.stopped
    np.testing.assert_allclose(result.voltages, [-0.1, -0.2, -0.3, -0.4, -0.5])


def test_ramp_reading_at_the_step_voltage_is_software_steps(small_rig):
    arc, personality, _, _, _ = small_rig
    result = arc.ramp(2, 2, 0.1, 0.4, 0.1, 1e-6, bias="float")
    assert personality.jobs == ["0", "01"] + ["01", "3"] * 4
    assert result.steps == 4 and np.all(result.currents > 0)
    # currents grow with the step voltage (read at the step voltage itself)
    assert np.all(np.diff(result.currents) > 0)
    personality.jobs = []
    uneven = arc.submit([Ramp(2, 2, np.array([0.1, 0.3, 0.4]), 1e-6, "float", 0.2, None)])[0]
    assert uneven.steps == 3 and personality.jobs == ["01", "3", "3", "3"]


def test_shutdown_resets_the_board_and_the_next_operation_reconfigures(rig):
    arc, personality, _, _, _ = rig
    arc.shutdown()
    settle(personality, 1)
    assert personality.jobs == ["00"]
    arc.read_one(0, 0, 0.5)
    assert personality.jobs == ["00", "999", "0", "01", "1"]
    with pytest.raises(LimitError, match="cannot leave all lines float"):
        arc.submit([Idle("float")])


def test_no_hardware_compliance_warns_once(rig):
    arc = rig[0]
    with pytest.warns(RuntimeWarning, match="no hardware current compliance"):
        arc.set_compliance(1e-4)
    assert arc.compliance == 1e-4


@pytest.mark.parametrize("resource, path", [
    ("/dev/ttyUSB0", "/dev/ttyUSB0"), ("/dev/pts/7", "/dev/pts/7"), ("COM3", "COM3"),
    ("ASRL/dev/ttyUSB0::INSTR", "/dev/ttyUSB0"), ("asrlCOM4::INSTR", "COM4"),
    ("ASRL3::INSTR", "COM3")])
def test_serial_resources_accepted(resource, path):
    assert ArcOne.check_resource(resource) is None
    assert ArcOne.serial_path(resource) == path


@pytest.mark.parametrize("resource", ["TCPIP::10.0.0.2::INSTR", "ttyUSB0", "", "ASRLfoo::INSTR"])
def test_bad_resources_rejected_in_one_line(resource):
    problem = ArcOne.check_resource(resource)
    assert problem and "\n" not in problem


def test_missing_port_is_one_line_error():
    with pytest.raises(ArcOneError, match=r"^ArC ONE on /dev/nonexistent-arc: cannot open") as e:
        ArcOne("/dev/nonexistent-arc")
    assert "\n" not in str(e.value)


# ====================================================================== faults
def test_dropped_reply_is_a_timeout_naming_the_port_not_a_hang(rig):
    arc, _, _, _, server = rig
    server.faults.drop_replies = 1
    t0 = time.monotonic()
    with pytest.raises(ArcOneTimeout) as err:
        arc.read_one(0, 0, 0.5)
    assert time.monotonic() - t0 < 2
    message = str(err.value)
    assert "\n" not in message and server.port in message and "no reply" in message
    personality = rig[1]
    personality.jobs = []
    assert arc.read_one(0, 0, 0.5) > 0  # the next operation resets and re-synchronises
    assert personality.jobs == ["00", "999", "0", "01", "1"]


def test_garbage_reply_is_detected(rig):
    arc, _, _, _, server = rig
    server.faults.garbage_replies = 1
    with pytest.raises(ArcOneError, match="unexpected byte|no reply") as err:
        arc.read_one(0, 0, 0.5)
    assert server.port in str(err.value)
    assert arc.read_all(0.5).shape == (32, 32)


def test_lost_link_is_one_line_error(rig):
    arc, _, _, _, server = rig
    server.faults.disconnected = True
    deadline = time.monotonic() + 2
    while server._master is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(ArcOneError) as err:
        arc.read_one(0, 0, 0.5)
    assert server.port in str(err.value) and "\n" not in str(err.value)


def test_board_that_never_acknowledges_fails_to_open():
    personality, _, _ = make_board()
    faults = TransportFaults(drop_replies=100)
    with PtySerialServer(personality, faults) as server:
        t0 = time.monotonic()
        with pytest.raises(ArcOneTimeout, match="session configuration"):
            ArcOne(server.port, timeout=0.3, reset_wait=0.2)
        assert time.monotonic() - t0 < 2


# ====================================================================== station
def test_station_serves_the_board_on_a_pty():
    from labctl.station import Station

    station = Station.load("sim-crossbar-arcone", sim=True)
    try:
        arc = station.instrument("array")
        assert station.identity("array").startswith("ArC Instruments ArC ONE, firmware")
        assert arc.port.startswith("/dev/pts/")
        board = station.bench.instruments["array"]
        settle(board, 4)
        board.jobs = []
        g = arc.read_all(0.5) / 0.5
        assert board.jobs == ["2"]
        xbar = station.bench.devices["xbar"]
        np.testing.assert_allclose(g, xbar.read_all(0.5, "ground", noisy=False) / 0.5,
                                   rtol=0.02)
        unformed = np.count_nonzero(g < 1e-5)
        assert 1 <= unformed <= 40  # p_unformable = 0.01 of 1024 devices stay virgin
        with pytest.raises(LimitError, match="voltage limit 4"):
            arc.pulse_one(0, 0, 5.0, 1e-6)
        with pytest.raises(LimitError, match="pulse_width limit"):
            arc.pulse_one(0, 0, 1.0, 0.1)
    finally:
        station.close()
    assert board.jobs[-1] == "00"  # the safe state: reset (written before the port closed)


def test_station_rejects_a_non_serial_resource(tmp_path):
    from labctl.station import Station

    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nlimits: {voltage: 1, current: 0.001}\ninstruments:\n"
                    "  array: {driver: arcone, resource: 'TCPIP::10.0.0.2::INSTR'}\n")
    with pytest.raises(ConfigError, match="resource.*not a serial port"):
        Station.load(path)
