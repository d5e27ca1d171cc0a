"""Benches: which simulated instruments are wired to which simulated devices, from a YAML file.

A bench file (``data/benches/NAME.yaml``)::

    name: rram-cell
    description: One Keithley 2450 wired to one simulated RRAM cell
    seed: 20261123
    devices:
      cell: {model: rram, shape: 1, formed: false, params: {}}
    instruments:
      smu: {personality: keithley2450, device: cell, index: 0, options: {}}
    triggers:                  # optional: hardware trigger lines between instruments
      - {from: smu, output: ext1, to: pulser, input: ext}

Instruments are keyed by the role a station gives them. Every random draw comes from generators
spawned from the bench seed, so a bench and seed define the simulated chip exactly. One
:class:`~mocks.clock.VirtualClock` is shared by all instruments of a bench.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

import numpy as np

from labctl.errors import ConfigError
from labctl.registry import BENCH_DIR, resolve_file
from labctl.yamlfile import Section, load_mapping
from mocks.clock import VirtualClock
from mocks.instruments import PERSONALITIES
from mocks.transports import InProcessAdapter, TcpInstrumentServer, TransportFaults

DEVICE_MODELS = {
    # model name -> (array class, parameter dataclass)
    "rram": ("mocks.devices.rram:RRAMArray", "mocks.devices.rram:RRAMParams"),
    "hfox": ("mocks.devices.hfox:WeakResetArray", "mocks.devices.hfox:WeakResetParams"),
    "rf-circuit": ("mocks.devices.spintronics:RfCircuit",
                   "mocks.devices.spintronics:RfCircuitParams"),
    "dw-synapse": ("mocks.devices.stochastic:DWSynapseArray",
                   "mocks.devices.stochastic:DWSynapseParams"),
    "dw-depinning": ("mocks.devices.stochastic:DepinningArray",
                     "mocks.devices.stochastic:DepinningParams"),
    "mtj": ("mocks.devices.stochastic:MTJArray", "mocks.devices.stochastic:MTJParams"),
    "rf-network": ("mocks.devices.rf_network:RfNetwork",
                   "mocks.devices.rf_network:RfNetworkParams"),
    "nbox": ("mocks.devices.nbox:NbOxNeurons", "mocks.devices.nbox:NbOxParams"),
}
CROSSBAR = "mocks.devices.crossbar:Crossbar"


def _import(path: str):
    module, _, name = path.partition(":")
    return getattr(import_module(module), name)


def _wire_triggers(top: Section, instruments: dict) -> None:
    """Connect the bench's ``triggers`` lines: each ``{from: ROLE, output: NAME, to: ROLE,
    input: NAME}`` wires a trigger output (``TRIGGER_OUTPUTS`` of the source personality) to
    a trigger input (``TRIGGER_INPUTS`` of the receiving one)."""
    lines = top.get("triggers", list, [])
    for k, line in enumerate(lines):
        where = f"triggers[{k}]"
        if not isinstance(line, dict) or set(line) != {"from", "output", "to", "input"}:
            raise top.error("each trigger line is {from: ROLE, output: NAME, to: ROLE, "
                            "input: NAME}", where)
        ends = []
        for role_key, port_key, kind in (("from", "output", "TRIGGER_OUTPUTS"),
                                         ("to", "input", "TRIGGER_INPUTS")):
            role, port = str(line[role_key]), str(line[port_key]).lower()
            if role not in instruments:
                raise top.error(f"{role_key}: no instrument {role!r} on this bench (roles: "
                                f"{', '.join(instruments)})", where)
            ports = getattr(instruments[role], kind, ())
            if port not in ports:
                raise top.error(f"{port_key}: {role} has no trigger {port_key} {port!r} "
                                f"({', '.join(ports) or 'none'})", where)
            ends.append((instruments[role], port))
        (source, output), (receiver, _) = ends
        source.connect_trigger(output, receiver.external_trigger)


class Bench:
    """A live simulated bench: devices, personalities, a clock, transports on demand."""

    def __init__(self, name: str, description: str, seed: int, devices: dict,
                 instruments: dict, clock: VirtualClock, source: str):
        self.name, self.description, self.seed, self.source = name, description, seed, source
        self.devices = devices
        self.instruments = instruments
        self.clock = clock
        self.faults = {role: TransportFaults() for role in instruments}
        self.servers: dict[str, TcpInstrumentServer] = {}
        self.ptys: dict = {}

    @classmethod
    def load(cls, name_or_path: str | Path, seed: int | None = None) -> Bench:
        path = resolve_file(name_or_path, BENCH_DIR, "bench")
        top = Section(path, "", load_mapping(path))
        top.allow("name", "description", "seed", "devices", "instruments", "triggers")
        name = top.get("name", str, path.stem)
        description = top.get("description", str, "")
        bench_seed = top.get("seed", int, 0)
        if seed is not None:
            bench_seed = int(seed)
        root = np.random.SeedSequence(bench_seed)
        clock = VirtualClock()

        devices_sec = top.section("devices")
        dev_rngs = root.spawn(len(devices_sec.data) + 1)
        devices = {}
        for k, dev_name in enumerate(sorted(devices_sec.data)):
            spec = devices_sec.section(dev_name)
            spec.allow("model", "shape", "formed", "params", "crossbar")
            model = spec.get("model", str)
            if model not in DEVICE_MODELS:
                raise spec.error(f"unknown device model {model!r} (known: "
                                 f"{', '.join(DEVICE_MODELS)})", "model")
            shape = spec.get("shape", (int, list), 1)
            array_cls, params_cls = (_import(p) for p in DEVICE_MODELS[model])
            try:
                params = params_cls.from_dict(spec.section("params", {}).data)
            except ValueError as exc:
                raise spec.error(str(exc), "params") from None
            shape = tuple(shape) if isinstance(shape, list) else shape
            if spec.get("crossbar", bool, False) and (not isinstance(shape, tuple)
                                                      or len(shape) != 2):
                raise spec.error("a crossbar needs a [rows, columns] shape", "shape")
            try:
                array = array_cls(shape, params=params, rng=np.random.default_rng(dev_rngs[k]),
                                  formed=spec.get("formed", bool, False))
            except (TypeError, ValueError) as exc:
                raise spec.error(str(exc), "shape") from None
            if spec.get("crossbar", bool, False):
                array = _import(CROSSBAR)(array, clock=clock)
            devices[dev_name] = array

        inst_sec = top.section("instruments")
        inst_rngs = dev_rngs[-1].spawn(max(len(inst_sec.data), 1))
        instruments = {}
        # an instrument wired through another (an SMU behind a switch matrix) is built after it
        order = sorted(inst_sec.data, key=lambda r: ("through" in inst_sec.data[r], r))
        rngs = dict(zip(sorted(inst_sec.data), inst_rngs, strict=False))
        for role in order:
            spec = inst_sec.section(role)
            spec.allow("personality", "device", "index", "options", "through")
            kind = spec.get("personality", str)
            if kind not in PERSONALITIES:
                raise spec.error(f"unknown personality {kind!r} (known: "
                                 f"{', '.join(PERSONALITIES)})", "personality")
            device = None
            if "device" in spec.data:
                dev_name = spec.get("device", str)
                if dev_name not in devices:
                    raise spec.error(f"no device {dev_name!r} on this bench (devices: "
                                     f"{', '.join(devices) or 'none'})", "device")
                device = devices[dev_name]
            if "through" in spec.data:
                via = spec.get("through", str)
                if via not in instruments or not hasattr(instruments[via], "terminal"):
                    raise spec.error(f"no switching instrument {via!r} on this bench to wire "
                                     "through", "through")
                device = instruments[via].terminal(role)
            options = dict(spec.section("options", {}).data)
            try:
                instruments[role] = _import(PERSONALITIES[kind])(
                    clock=clock, device=device, device_index=spec.get("index", int, 0),
                    rng=np.random.default_rng(rngs[role]), **options)
            except (TypeError, ValueError) as exc:
                raise spec.error(f"bad options: {exc}", "options") from None
        _wire_triggers(top, instruments)
        return cls(name, description, bench_seed, devices, instruments, clock, str(path))

    def role(self, role: str):
        if role not in self.instruments:
            raise ConfigError(f"bench {self.name}", f"has no instrument for role {role!r} "
                              f"(roles: {', '.join(self.instruments)})")
        return self.instruments[role]

    def adapter(self, role: str) -> InProcessAdapter:
        return InProcessAdapter(self.role(role), self.faults[role])

    def link(self, role: str) -> str:
        """How a driver reaches the instrument of ``role``: ``"scpi"`` (a VISA adapter or TCP),
        ``"serial"`` (a pseudo-terminal) or ``"object"`` (the simulated instrument itself)."""
        return getattr(self.role(role), "LINK", "scpi")

    def connect(self, role: str, transport: str = "inprocess"):
        """What the driver of ``role`` is constructed with: an in-process adapter or a TCP
        resource (SCPI), the path of a pseudo-terminal (serial, whatever the transport), or the
        simulated instrument object."""
        link = self.link(role)
        if link == "serial":
            return self.serial_port(role)
        if link == "object":
            return self.role(role)
        if transport == "tcp":
            return self.serve()[role]
        return self.adapter(role)

    def serial_port(self, role: str) -> str:
        """Serve the instrument of ``role`` on a real pseudo-terminal; return its path."""
        if role not in self.ptys:
            from mocks.serial_pty import PtySerialServer

            self.ptys[role] = PtySerialServer(self.role(role), self.faults[role]).start()
        return self.ptys[role].port

    def serve(self, port: int = 0, host: str = "127.0.0.1") -> dict[str, str]:
        """Serve every instrument over TCP (consecutive ports from ``port``; 0 = any free)."""
        resources = {}
        for k, role in enumerate(sorted(self.instruments)):
            if self.link(role) != "scpi":
                continue
            if role not in self.servers:
                server = TcpInstrumentServer(self.instruments[role], port + k if port else 0, host,
                                             self.faults[role])
                self.servers[role] = server.start()
            resources[role] = self.servers[role].resource
        return resources

    def stop(self) -> None:
        for server in [*self.servers.values(), *self.ptys.values()]:
            server.stop()
        self.servers.clear()
        self.ptys.clear()
