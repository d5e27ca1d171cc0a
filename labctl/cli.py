"""The ``labctl`` command line: list, run, gui, sim serve.

Bad input (parameter, station or bench file, resource) prints one line and exits with code 2
before anything is applied to a device.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from labctl import registry
from labctl.errors import LabctlError

EXIT_BAD_INPUT = 2
EXIT_RUN_FAILED = 1


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative (seeds are >= 0)")
    return value


def _add_station_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sim", action="store_true",
                   help="stand up the simulated bench named by the station (default station: the "
                        "procedure's simulated one)")
    p.add_argument("--station", metavar="FILE", help="station file (or name in data/stations)")
    p.add_argument("--transport", choices=("inprocess", "tcp"), default="inprocess",
                   help="with --sim: talk to the mocks in-process or over TCP via pyvisa-py")
    p.add_argument("--seed", type=_seed, help="with --sim: override the bench seed")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labctl", description="Neuromorphic-device lab control.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="procedures, drivers and benches")

    run = sub.add_parser("run", help="run a procedure headless")
    run.add_argument("procedure")
    _add_station_args(run)
    run.add_argument("--set", metavar="NAME=VALUE", action="append", default=[],
                     help="set a procedure parameter (repeatable)")
    run.add_argument("--out", metavar="DIR", default="results", help="results folder")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")

    gui = sub.add_parser("gui", help="open the pymeasure window for a procedure")
    gui.add_argument("procedure")
    _add_station_args(gui)
    gui.add_argument("--out", metavar="DIR", default="results", help="results folder")

    sim = sub.add_parser("sim", help="simulated bench")
    sim_sub = sim.add_subparsers(dest="sim_command", required=True)
    serve = sim_sub.add_parser("serve", help="serve a bench over TCP on 127.0.0.1")
    serve.add_argument("bench", nargs="?", default="rram-cell")
    serve.add_argument("--port", type=int, default=5025,
                       help="first port (one per instrument, consecutive; 0 = any free)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--seed", type=_seed, help="override the bench seed")
    return parser


def cmd_list(args) -> int:
    from labctl.yamlfile import load_mapping

    sections = {
        "procedures": [(name, registry.first_doc_line(registry.procedure(name)))
                       for name in registry.names(registry.PROCEDURE_GROUP)],
        "drivers": [(name, registry.first_doc_line(registry.driver(name)))
                    for name in registry.names(registry.DRIVER_GROUP)],
        "benches": [(name, load_mapping(registry.BENCH_DIR / f"{name}.yaml").get("description", ""))
                    for name in registry.bench_names()],
    }
    width = max(len(name) for rows in sections.values() for name, _ in rows)
    for title, rows in sections.items():
        print(f"{title}:")
        for name, text in rows:
            print(f"  {name:{width}s} {text}")
    return 0


def _station(args, cls):
    from labctl.runner import open_station

    return open_station(args.station, args.sim, cls, args.transport, args.seed)


def cmd_run(args) -> int:
    from labctl import runner

    cls = runner.procedure_class(args.procedure)
    proc = runner.build(cls, runner.parse_assignments(args.set))
    station = _station(args, cls)
    try:
        runner.preflight(proc, station)
        progress = None if args.no_progress else runner.text_progress()
        results = runner.execute(proc, station, args.out, progress)
        if hasattr(proc, "summary"):
            print(proc.summary())
        if station.hardware_time is not None:
            print(f"simulated hardware time: {station.hardware_time:.6g} s")
        print(f"results: {results.data_filename}")
    finally:
        station.close()
    return 0


def cmd_gui(args) -> int:
    from labctl import runner
    from labctl.gui import run_gui

    cls = runner.procedure_class(args.procedure)
    station = _station(args, cls)
    try:
        return run_gui(cls, station, args.out)
    finally:
        station.close()


def cmd_sim_serve(args) -> int:
    from mocks.bench import Bench

    bench = Bench.load(args.bench, seed=args.seed)
    try:
        resources = bench.serve(port=args.port, host=args.host)
    except OSError as exc:
        raise LabctlError(f"--port {args.port}: cannot listen on {args.host} "
                          f"({exc.strerror})") from None
    print(f"# bench {bench.name} (seed {bench.seed}): {bench.description}", flush=True)
    for role in bench.instruments:
        link = bench.link(role)
        if link == "serial":
            resources[role] = bench.serial_port(role)  # a pseudo-terminal: ASRL<path>::INSTR
        elif link == "object":
            print(f"# {role}: in-process only (a simulated {type(bench.instruments[role]).__name__}"
                  "; use --sim)", flush=True)
    for role, resource in sorted(resources.items()):
        print(f"{role} {resource}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        bench.stop()
    return 0


COMMANDS = {"list": cmd_list, "run": cmd_run, "gui": cmd_gui}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("pymeasure.experiment.listeners", "pymeasure.experiment.workers",
                  "pymeasure.display.listeners", "pymeasure.display.windows.managed_window",
                  "pymeasure.experiment.experiment"):
        # a failed run is reported in one line below; its traceback only with --verbose
        logging.getLogger(noisy).setLevel(logging.CRITICAL if not args.verbose else logging.INFO)
    handler = cmd_sim_serve if args.command == "sim" else COMMANDS[args.command]
    from labctl.runner import RunError

    try:
        return handler(args)
    except RunError as exc:
        print(f"labctl: run failed: {exc}", file=sys.stderr)
        return EXIT_RUN_FAILED
    except LabctlError as exc:
        print(f"labctl: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("labctl: interrupted; instruments put in their safe state", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
