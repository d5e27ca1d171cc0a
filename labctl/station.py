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
    def __init__(self, role: str, driver_name: str, driver_cls, resource: str, options: dict):
        self.role, self.driver_name, self.driver_cls = role, driver_name, driver_cls
        self.resource, self.options = resource, options


class Station:
    """Instruments by role, opened on first use with the chip limits applied."""

    def __init__(self, name: str, source: str, limits: Limits, specs: dict[str, InstrumentSpec],
                 bench_name: str | None, bench=None, transport: str = "inprocess"):
        self.name, self.source, self.limits = name, source, limits
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
        top.allow("name", "description", "bench", "limits", "instruments")
        name = top.get("name", str, path.stem)
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
            spec.allow("driver", "resource", "options")
            driver_name = spec.get("driver", str)
            driver_cls = registry.driver(driver_name, spec.where("driver"))
            resource = spec.get("resource", str)
            try:
                rname.parse_resource_name(resource)
            except rname.InvalidResourceName as exc:
                raise spec.error(f"invalid VISA resource {resource!r} ({exc})".split("\n")[0],
                                 "resource") from None
            specs[str(role)] = InstrumentSpec(str(role), driver_name, driver_cls, resource,
                                              dict(spec.section("options", {}).data))
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
            for role in specs:
                if role not in bench.instruments:
                    raise inst.error(f"bench {bench.name!r} has no instrument for this role "
                                     f"(bench roles: {', '.join(bench.instruments)})", role)
            if transport == "tcp":
                served = bench.serve()
                for role, spec in specs.items():
                    spec.resource = served[role]
        return cls(name, str(path), limits, specs, bench_name, bench, transport)

    # -- instruments -----------------------------------------------------------------------------
    @property
    def sim(self) -> bool:
        return self.bench is not None

    @property
    def seed(self) -> int | None:
        return self.bench.seed if self.bench is not None else None

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
        if self.bench is not None and self.transport == "inprocess":
            target = self.bench.adapter(role)
        else:
            target = spec.resource
            if spec.resource.upper().endswith("::SOCKET"):
                options.setdefault("read_termination", "\n")
                options.setdefault("write_termination", "\n")
            options.setdefault("timeout", 5000)
            if self.bench is not None:
                options.setdefault("visa_library", "@py")
        where = f"{self.source}: instruments.{role}"
        try:
            instrument = spec.driver_cls(target, **options)
        except Exception as exc:  # pyvisa/pymeasure raise many kinds; report one line
            raise ConfigError(where, f"cannot open {spec.resource} ({type(exc).__name__}: {exc})"
                              .split("\n")[0]) from None
        apply_limits(instrument, self.limits)
        try:  # reachable and answering, before any procedure sends it anything
            self._identities[role] = str(instrument.id).strip()
        except Exception as exc:
            try:
                instrument.adapter.close()
            except Exception:
                log.debug("closing %s failed", role, exc_info=True)
            raise ConfigError(where, f"{spec.resource} does not answer *IDN? "
                              f"({type(exc).__name__}: {exc})".split("\n")[0]) from None
        self._open[role] = instrument
        return instrument

    def identity(self, role: str) -> str:
        """The ``*IDN?`` answer read when ``role`` was opened."""
        self.instrument(role)
        return self._identities[role]

    @property
    def hardware_time(self) -> float | None:
        """Simulated instrument time in seconds (None on real hardware)."""
        return self.bench.clock.now if self.bench is not None else None

    def describe(self) -> str:
        kind = f"sim:{self.bench.name}/{self.transport}" if self.bench is not None else "hardware"
        return f"{self.name} ({self.source}, {kind})"

    def shutdown(self) -> None:
        """Put every open instrument in its safe state; never raises."""
        for role, instrument in self._open.items():
            try:
                instrument.shutdown()
            except Exception:
                log.exception("shutdown of %s failed", role)

    def close(self) -> None:
        self.shutdown()
        for instrument in self._open.values():
            try:
                instrument.adapter.close()
            except Exception:
                log.debug("closing adapter failed", exc_info=True)
        self._open.clear()
        if self.bench is not None:
            self.bench.stop()

    def __enter__(self) -> Station:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
