"""Stations: the instruments of a set-up by role, and the chip's safe operating limits.

A station file (``data/stations/NAME.yaml``)::

    name: rram-probe-station
    bench: rram-cell                 # the simulated bench used with --sim
    limits: {voltage: 3.0, current: 0.01, pulse_width: 0.01}    # V, A, s
    instruments:
      smu:
        driver: keithley2450
        resource: TCPIP::192.168.1.20::5025::SOCKET
        options: {timeout: 5000}

Everything is checked when the file is loaded — keys, types, driver names, resource syntax — so
a mistake fails with one line naming the file and key before any instrument is opened.
With ``sim=True`` the bench named by the file is stood up and every resource is swapped for a
mock one (in-process, or TCP on 127.0.0.1 through pyvisa-py).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from pyvisa import rname

from labctl import registry
from labctl.errors import ConfigError
from labctl.safety import Limits, apply_limits
from labctl.yamlfile import Section, load_mapping, positive

log = logging.getLogger(__name__)

DEFAULT_SIM_STATION = "sim-rram-cell"
TRANSPORTS = ("inprocess", "tcp")


class InstrumentSpec:
    def __init__(self, role: str, driver_name: str, driver_cls, resource: str | None,
                 options: dict, uses: dict[str, str] | None = None):
        self.role, self.driver_name, self.driver_cls = role, driver_name, driver_cls
        self.resource, self.options = resource, options
        self.uses = uses or {}  # composite drivers: constructor argument -> station role

    @property
    def kind(self) -> str:
        """How the driver is reached: ``visa``, ``serial``, ``arc2``, … or ``composite``."""
        return getattr(self.driver_cls, "RESOURCE_KIND", "visa")


def _check_resource(spec: Section, driver_cls, resource: str) -> None:
    """Fail with one line if ``resource`` is not something ``driver_cls`` can open."""
    check = getattr(driver_cls, "check_resource", None)
    if check is not None:
        problem = check(resource)
        if problem:
            raise spec.error(problem, "resource")
        return
    try:
        rname.parse_resource_name(resource)
    except rname.InvalidResourceName as exc:
        raise spec.error(f"invalid VISA resource {resource!r} ({exc})".split("\n")[0],
                         "resource") from None


class Station:
    """Instruments by role, opened on first use with the chip limits applied."""

    def __init__(self, name: str, source: str, limits: Limits, specs: dict[str, InstrumentSpec],
                 bench_name: str | None, bench=None, transport: str = "inprocess",
                 chip: str | None = None, calibration_dir: str | None = None):
        self.name, self.source, self.limits = name, source, limits
        self._chip = chip
        self._calibration_dir = calibration_dir
        self.specs = specs
        self.bench_name = bench_name
        self.bench = bench
        self.transport = transport
        self._open: dict[str, object] = {}
        self._identities: dict[str, str] = {}

    # -- loading -------------------------------------------------------------------------------
    @classmethod
    def load(cls, name_or_path: str | Path = DEFAULT_SIM_STATION, sim: bool = False,
             transport: str = "inprocess", seed: int | None = None) -> Station:
        path = registry.resolve_file(name_or_path, registry.STATION_DIR, "station")
        top = Section(path, "", load_mapping(path))
        top.allow("name", "description", "bench", "limits", "instruments", "chip",
                  "calibration")
        name = top.get("name", str, path.stem)
        chip = top.get("chip", str, None)
        calibration_dir = top.get("calibration", str, None)
        if calibration_dir is not None:
            calibration_dir = str((path.parent / calibration_dir).resolve())
        lim = top.section("limits")
        lim.allow("voltage", "current", "pulse_width")
        limits = Limits(voltage=lim.get("voltage", float, check=positive),
                        current=lim.get("current", float, check=positive),
                        pulse_width=lim.get("pulse_width", float, None, check=positive))
        inst = top.section("instruments")
        if not inst.data:
            raise inst.error("no instruments listed")
        specs = {}
        for role in inst.data:
            spec = inst.section(str(role))
            spec.allow("driver", "resource", "options", "uses")
            driver_name = spec.get("driver", str)
            driver_cls = registry.driver(driver_name, spec.where("driver"))
            uses = None
            if getattr(driver_cls, "RESOURCE_KIND", "visa") == "composite":
                used = spec.section("uses")
                if "resource" in spec.data:
                    raise spec.error(f"driver {driver_name!r} is built from other roles "
                                     "('uses'), not from a resource", "resource")
                uses = {str(k): used.get(str(k), str) for k in used.data}
                for arg, other in uses.items():
                    if other not in inst.data or other == role:
                        raise used.error(f"no other instrument with role {other!r}", arg)
                resource = None
            else:
                resource = spec.get("resource", str)
                _check_resource(spec, driver_cls, resource)
            specs[str(role)] = InstrumentSpec(str(role), driver_name, driver_cls, resource,
                                              dict(spec.section("options", {}).data), uses)
        bench_name = top.get("bench", str, None)
        bench = None
        if transport not in TRANSPORTS:
            raise ConfigError("transport", f"unknown transport {transport!r} "
                              f"(known: {', '.join(TRANSPORTS)})")
        if sim:
            if bench_name is None:
                raise top.error("--sim needs a 'bench' key naming the simulated bench", "bench")
            from mocks.bench import Bench  # the only place the core reaches the bench

            bench = Bench.load(bench_name, seed=seed)
            for role, spec in specs.items():
                if spec.kind != "composite" and role not in bench.instruments:
                    raise inst.error(f"bench {bench.name!r} has no instrument for this role "
                                     f"(bench roles: {', '.join(bench.instruments)})", role)
        return cls(name, str(path), limits, specs, bench_name, bench, transport,
                   chip, calibration_dir)

    # -- instruments -----------------------------------------------------------------------------
    @property
    def sim(self) -> bool:
        return self.bench is not None

    @property
    def seed(self) -> int | None:
        return self.bench.seed if self.bench is not None else None

    @property
    def chip(self) -> str:
        """The chip under test, naming its calibrations: the station's ``chip`` key, or for a
        simulated bench ``sim-<bench>-seed<seed>`` (each seed is another simulated chip)."""
        if self.bench is not None:
            return f"sim-{self.bench.name}-seed{self.bench.seed}"
        return self._chip or self.name

    @property
    def calibration(self):
        """The :class:`~labctl.calibration.CalibrationStore` of this station: its
        ``calibration`` folder (relative to the station file), else the default folder."""
        from labctl.calibration import CalibrationStore

        return CalibrationStore(self._calibration_dir)

    @property
    def roles(self) -> list[str]:
        return list(self.specs)

    def instrument(self, role: str):
        """The driver for ``role``, opened on first use, chip limits applied."""
        if role in self._open:
            return self._open[role]
        if role not in self.specs:
            raise ConfigError(f"{self.source}: instruments",
                              f"no instrument with role {role!r} (roles: {', '.join(self.specs)})")
        spec = self.specs[role]
        options = dict(spec.options)
        where = f"{self.source}: instruments.{role}"
        label = spec.resource or f"{spec.driver_name} over {', '.join(spec.uses.values())}"
        try:
            if spec.kind == "composite":
                parts = {arg: self.instrument(other) for arg, other in spec.uses.items()}
                instrument = spec.driver_cls(**parts, **options)
            else:
                instrument = spec.driver_cls(self._target(spec, options), **options)
        except ConfigError:
            raise
        except Exception as exc:  # pyvisa/pymeasure/pyserial raise many kinds; report one line
            raise ConfigError(where, f"cannot open {label} ({type(exc).__name__}: {exc})"
                              .split("\n")[0]) from None
        if hasattr(instrument, "apply_chip_limits"):
            instrument.apply_chip_limits(self.limits)
        apply_limits(instrument, self.limits)
        try:  # reachable and answering, before any procedure sends it anything
            self._identities[role] = str(instrument.id).strip()
        except Exception as exc:
            _close(instrument)
            raise ConfigError(where, f"{label} does not answer *IDN? "
                              f"({type(exc).__name__}: {exc})".split("\n")[0]) from None
        self._open[role] = instrument
        return instrument

    def _target(self, spec: InstrumentSpec, options: dict):
        """What the driver of ``spec`` is constructed with; fills transport options."""
        if self.bench is not None:
            target = self.bench.connect(spec.role, self.transport)
            if not isinstance(target, str):
                return target  # an in-process adapter, or a simulated instrument object
        else:
            target = spec.resource
        if spec.kind == "visa":
            if target.upper().endswith("::SOCKET"):
                options.setdefault("read_termination", "\n")
                options.setdefault("write_termination", "\n")
            options.setdefault("timeout", 5000)
            if self.bench is not None:
                options.setdefault("visa_library", "@py")
        return target

    def identity(self, role: str) -> str:
        """The ``*IDN?`` answer read when ``role`` was opened."""
        self.instrument(role)
        return self._identities[role]

    @property
    def hardware_time(self) -> float | None:
        """Simulated instrument time in seconds (None on real hardware)."""
        return self.bench.clock.now if self.bench is not None else None

    def wait(self, seconds: float, should_stop=None, poll: float = 0.1) -> bool:
        """Let ``seconds`` pass for the devices: real time on hardware (checking
        ``should_stop()`` every ``poll`` s), virtual time on a simulated bench (no sleep).
        Returns False if stopped early."""
        if seconds <= 0:
            return True
        if self.bench is not None:
            self.bench.clock.advance(seconds)
            return not (should_stop is not None and should_stop())
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if should_stop is not None and should_stop():
                return False
            time.sleep(min(poll, left))
        return True

    def describe(self) -> str:
        kind = f"sim:{self.bench.name}/{self.transport}" if self.bench is not None else "hardware"
        return f"{self.name} ({self.source}, {kind})"

    def shutdown(self) -> None:
        """Put every open instrument in its safe state, last opened first; never raises."""
        for role, instrument in reversed(self._open.items()):
            try:
                instrument.shutdown()
            except Exception:
                log.exception("shutdown of %s failed", role)

    def close(self) -> None:
        self.shutdown()
        for instrument in reversed(self._open.values()):
            _close(instrument)
        self._open.clear()
        if self.bench is not None:
            self.bench.stop()

    def __enter__(self) -> Station:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _close(instrument) -> None:
    """Release an instrument's connection (a pymeasure adapter or the driver's own close)."""
    try:
        adapter = getattr(instrument, "adapter", None)
        if adapter is not None:
            adapter.close()
        elif hasattr(instrument, "close"):
            instrument.close()
    except Exception:
        log.debug("closing %r failed", instrument, exc_info=True)
