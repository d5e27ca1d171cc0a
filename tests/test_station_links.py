"""Station wiring beyond VISA: composite instruments, driver-checked resources, waiting."""

from __future__ import annotations

import time

import pytest

from labctl import registry
from labctl.errors import ConfigError
from labctl.station import Station


class Pair:
    """A composite driver built from two other roles."""

    RESOURCE_KIND = "composite"

    def __init__(self, smu, other, gain=1.0):
        self.smu, self.other, self.gain = smu, other, gain
        self.limits = None
        self.shut = False

    @property
    def id(self):
        return f"pair of {self.smu.id.split(',')[1]}"

    def apply_chip_limits(self, limits):
        self.limits = limits

    def shutdown(self):
        self.shut = True


class Board:
    """A driver with its own resource syntax."""

    RESOURCE_KIND = "board"

    @classmethod
    def check_resource(cls, resource):
        return None if resource.startswith("BOARD::") else f"expected BOARD::<n>, got {resource!r}"


@pytest.fixture
def fake_drivers(monkeypatch):
    real = registry.driver

    def driver(name, where="labctl"):
        return {"pair": Pair, "board": Board}.get(name) or real(name, where)

    monkeypatch.setattr(registry, "driver", driver)


def write(tmp_path, body):
    path = tmp_path / "station.yaml"
    path.write_text("name: t\nbench: rram-cell-formed\nlimits: {voltage: 2, current: 0.001}\n"
                    + body)
    return path


COMPOSITE = """instruments:
  smu: {driver: keithley2450, resource: "TCPIP::127.0.0.1::5025::SOCKET"}
  pair: {driver: pair, uses: {smu: smu, other: smu}, options: {gain: 2.0}}
"""


def test_composite_instrument_is_built_from_its_roles(tmp_path, fake_drivers):
    with Station.load(write(tmp_path, COMPOSITE), sim=True) as station:
        pair = station.instrument("pair")
        assert pair.smu is station.instrument("smu") and pair.gain == 2.0
        assert pair.limits.voltage == 2 and station.identity("pair") == "pair of MODEL 2450"
        station.shutdown()
        assert pair.shut


@pytest.mark.parametrize("body, where", [
    ("instruments:\n  pair: {driver: pair, uses: {smu: nosuch}}\n",
     "instruments.pair.uses.smu: no other instrument with role 'nosuch'"),
    ("instruments:\n  smu: {driver: keithley2450, resource: 'TCPIP::1.2.3.4::5025::SOCKET'}\n"
     "  pair: {driver: pair, resource: x, uses: {smu: smu}}\n",
     "instruments.pair.resource: driver 'pair' is built from other roles"),
    ("instruments:\n  b: {driver: board, resource: 'USB::3'}\n",
     "instruments.b.resource: expected BOARD::<n>, got 'USB::3'"),
])
def test_wiring_mistakes_fail_in_one_line(tmp_path, fake_drivers, body, where):
    with pytest.raises(ConfigError, match=where.replace("(", r"\(").replace(")", r"\)")):
        Station.load(write(tmp_path, body))


def test_wait_is_virtual_on_a_bench_and_real_on_hardware(tmp_path):
    path = write(tmp_path, "instruments:\n  smu: {driver: keithley2450, "
                           "resource: 'TCPIP::127.0.0.1::5025::SOCKET'}\n")
    with Station.load(path, sim=True) as sim:
        t0 = time.monotonic()
        assert sim.wait(3600.0)
        assert sim.hardware_time == pytest.approx(3600.0)
        assert time.monotonic() - t0 < 1.0
    hw = Station.load(path)
    t0 = time.monotonic()
    assert hw.wait(0.05, poll=0.01)
    assert time.monotonic() - t0 >= 0.05
    assert hw.wait(10.0, should_stop=lambda: True) is False  # stopped at once
