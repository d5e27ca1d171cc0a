"""Registry of procedures and drivers (entry points) and of benches and stations (data files).

Plugins register through the entry-point groups ``labctl.procedures`` and ``labctl.drivers``, so
the core never imports a concrete driver or procedure by name.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from pathlib import Path

from labctl.errors import ConfigError

PROCEDURE_GROUP = "labctl.procedures"
DRIVER_GROUP = "labctl.drivers"

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
BENCH_DIR = DATA_DIR / "benches"
STATION_DIR = DATA_DIR / "stations"


@cache
def _entry_points(group: str) -> dict:
    return {ep.name: ep for ep in entry_points(group=group)}


def names(group: str) -> list[str]:
    return sorted(_entry_points(group))


def load(group: str, name: str, where: str = "labctl"):
    eps = _entry_points(group)
    kind = group.split(".")[-1][:-1]
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none registered (is labctl installed?)"
        raise ConfigError(where, f"unknown {kind} {name!r} (known: {known})")
    return eps[name].load()


def procedure(name: str, where: str = "labctl"):
    return load(PROCEDURE_GROUP, name, where)


def driver(name: str, where: str = "labctl"):
    return load(DRIVER_GROUP, name, where)


def first_doc_line(obj) -> str:
    doc = (obj.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def bench_names() -> list[str]:
    return sorted(p.stem for p in BENCH_DIR.glob("*.yaml"))


def resolve_file(name_or_path: str | Path, folder: Path, what: str) -> Path:
    """A bench/station given by name (a file in ``folder``) or by path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(str(path), f"{what} file not found")
        return path
    candidate = folder / f"{name_or_path}.yaml"
    if not candidate.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.yaml")))
        raise ConfigError(str(name_or_path), f"no such {what} (known: {known})")
    return candidate
