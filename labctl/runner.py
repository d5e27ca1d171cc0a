"""Run a procedure headless: build it from typed parameters, check it, run it in a pymeasure
Worker, stream rows to the results file, and hand back the results.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from pymeasure.experiment import Procedure, Results, Worker, unique_filename

from labctl import registry
from labctl.errors import ConfigError, LabctlError
from labctl.station import Station

log = logging.getLogger(__name__)

DEFAULT_OUT = Path("results")


class RunError(LabctlError):
    """The procedure failed while running; instruments were put in their safe state."""


def procedure_class(procedure) -> type:
    if isinstance(procedure, type) and issubclass(procedure, Procedure):
        return procedure
    return registry.procedure(str(procedure), "procedure")


def build(procedure, params: dict | None = None) -> Procedure:
    """A procedure instance with ``params`` (name -> value or text) validated by its Parameters."""
    cls = procedure_class(procedure)
    proc = cls()
    known = proc.parameter_objects()
    for name, value in (params or {}).items():
        if name not in known:
            raise ConfigError(f"parameter {name}",
                              f"unknown parameter (known: {', '.join(sorted(known))})")
        try:
            known[name].value = value
            if isinstance(known[name].value, float) and not math.isfinite(known[name].value):
                raise ValueError(f"{value!r} is not a finite number")
            setattr(proc, name, known[name].value)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"parameter {name}", str(exc).split("\n")[0]) from None
    try:
        proc.check_parameters()
    except (ValueError, NameError) as exc:
        raise ConfigError(cls.__name__, str(exc)) from None
    proc.refresh_parameters()
    return proc


def parse_assignments(items: list[str]) -> dict[str, str]:
    params = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--set {item}", "expected NAME=VALUE")
        params[name.strip()] = value.strip()
    return params


def preflight(proc: Procedure, station: Station) -> None:
    """Refuse a run before anything is applied: parameters against the chip limits, then every
    instrument reachable and answering, then the procedure's own check of what they can do."""
    where = f"{type(proc).__name__} on station {station.name}"
    problems = proc.preflight(station.limits)
    if problems:
        raise ConfigError(where, "; ".join(problems))
    for role in getattr(proc, "ROLES", ()):
        station.instrument(role)
    check = getattr(proc, "check_instruments", None)
    problems = check(station) if check is not None else []
    if problems:
        raise ConfigError(where, "; ".join(problems))


def open_station(station=None, sim: bool = False, procedure_cls=None, transport="inprocess",
                 seed: int | None = None) -> Station:
    if isinstance(station, Station):
        return station
    if station is None:
        if not sim:
            raise ConfigError("station", "choose a station file (--station FILE) or --sim")
        station = getattr(procedure_cls, "DEFAULT_SIM_STATION", "sim-rram-cell")
    return Station.load(station, sim=sim, transport=transport, seed=seed)


class _Worker(Worker):
    """pymeasure's Worker, keeping the traceback of a failure for the caller."""

    error_text: str | None = None

    def handle_error(self):
        self.error_text = traceback.format_exc()
        super().handle_error()


def _wait(worker: Worker) -> None:
    """Wait for the worker thread to end (pymeasure's ``Worker.join`` stops it instead)."""
    threading.Thread.join(worker)


def execute(proc: Procedure, station: Station, out: str | Path = DEFAULT_OUT,
            progress: Callable[[float], None] | None = None) -> Results:
    """Run ``proc`` on ``station``; rows are on disk as they are emitted. Returns the Results."""
    preflight(proc, station)  # reachable, answering and able before the run starts
    proc.station = station
    out = Path(out)
    name = getattr(type(proc), "NAME", type(proc).__name__)
    try:
        out.mkdir(parents=True, exist_ok=True)
        filename = unique_filename(str(out), prefix=f"{name}_", ext="csv")
        proc.results_path = filename  # procedures that write an array file put it beside
        results = Results(proc, filename)
    except OSError as exc:
        raise ConfigError(f"--out {out}", f"cannot write results there ({exc.strerror})") from None
    worker = _Worker(results, log_level=logging.getLogger().getEffectiveLevel())
    worker.start()
    try:
        while True:
            item = worker.monitor_queue.get()
            if item is None:
                break
            topic, value = item
            if topic == "progress" and progress is not None:
                progress(float(value))
        _wait(worker)
    except KeyboardInterrupt:
        worker.stop()  # the procedure sees should_stop() at its next point, then shuts down safely
        _wait(worker)
        raise
    if proc.status == Procedure.FAILED:
        last = (worker.error_text or "unknown error").strip().splitlines()[-1]
        raise RunError(f"{name} failed: {last} (instruments put in safe state; "
                       f"partial results in {filename})")
    return results


def run(procedure, station=None, sim: bool = False, out: str | Path = DEFAULT_OUT,
        transport: str = "inprocess", seed: int | None = None, progress=None,
        **params) -> pd.DataFrame:
    """Run ``procedure`` (a registered name or class) and return its rows as a DataFrame.

    ``station`` is a Station, a station file/name, or None with ``sim=True`` for the procedure's
    default simulated station. Keyword arguments are the procedure's parameters. The results file
    path is in ``df.attrs["results_file"]``.
    """
    cls = procedure_class(procedure)
    proc = build(cls, params)
    owned = not isinstance(station, Station)
    st = open_station(station, sim, cls, transport, seed)
    try:
        results = execute(proc, st, out, progress)
    finally:
        if owned:
            st.close()
    frame = results.data.copy()
    frame.attrs["results_file"] = results.data_filename
    frame.attrs["hardware_time_s"] = st.hardware_time
    return frame


def text_progress(stream=sys.stderr, width: int = 40) -> Callable[[float], None]:
    """A progress bar on a terminal line."""

    last = [-1]
    step = 1 if stream.isatty() else 10  # a log file gets a line per 10 %, a terminal a bar

    def show(percent: float) -> None:
        if int(percent) // step == last[0]:
            return
        last[0] = int(percent) // step
        filled = int(width * min(max(percent, 0.0), 100.0) / 100.0)
        end = "" if stream.isatty() and percent < 100.0 else "\n"
        start = "\r" if stream.isatty() else ""
        stream.write(f"{start}[{'#' * filled}{'.' * (width - filled)}] {percent:5.1f} %{end}")
        stream.flush()

    return show
