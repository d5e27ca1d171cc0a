"""Calibration store: fitted device parameters per chip and device, with uncertainty and provenance.

One human-readable YAML file per chip and device under a calibration folder::

    <root>/<chip>/<device>.yaml

    chip: sim-dw-synapse-seed7
    device: "syn-0-3"
    entries:                       # oldest first; every fit is kept (history)
      - model: dw-sigmoid          # which model the parameters belong to
        date: 2026-11-28T15:40:12+00:00
        run: results/switching-probability-2026-11-28T15-40-02.csv
        procedure: switching-probability
        station: sim-dw-synapse
        parameters:
          x0: {value: 4.6317, stderr: 0.012, unit: V}
          dx: {value: 2.727, stderr: 0.05, unit: 1/V}
        notes: ""

Procedures that fit a model append an entry (:meth:`CalibrationStore.save`); training and
programming read the newest entry of a model (:meth:`CalibrationStore.latest`). Files are written
atomically (a temporary file renamed over the old one), read with ``yaml.safe_load`` only, and a
malformed file fails with one line naming the file and key.

The folder is, in order: the ``root`` given (a station's ``calibration`` key), the environment
variable ``LABCTL_CALIBRATION``, or the user's data folder ``$XDG_DATA_HOME/labctl/calibration``
(``~/.local/share/labctl/calibration``) — never inside the installation, so a checkout stays clean
and an upgrade keeps the lab's calibrations.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from labctl.errors import ConfigError
from labctl.yamlfile import Section, load_mapping

ENV_VAR = "LABCTL_CALIBRATION"


def default_dir() -> Path:
    """The user's calibration folder when neither a station nor the environment names one."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "labctl" / "calibration"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def _check_name(kind: str, name: str) -> str:
    """Chip and device names become file names: letters, digits and ``_.+-`` only."""
    name = str(name)
    if not _NAME.match(name) or name in (".", ".."):
        raise ConfigError(f"calibration {kind}",
                          f"{name!r} is not a valid name (letters, digits, '_', '.', '+', '-')")
    return name


@dataclass(frozen=True)
class Parameter:
    """One fitted value with its standard error (NaN if unknown) and unit."""

    value: float
    stderr: float = math.nan
    unit: str = ""

    def interval(self, z: float = 1.959964) -> tuple[float, float]:
        """The symmetric normal interval value ± z·stderr (95 % by default)."""
        return self.value - z * self.stderr, self.value + z * self.stderr


@dataclass(frozen=True)
class Calibration:
    """One fit of ``model`` for one device: its parameters and where they came from."""

    chip: str
    device: str
    model: str
    parameters: dict[str, Parameter]
    date: str
    run: str = ""
    procedure: str = ""
    station: str = ""
    notes: str = ""
    extra: dict = field(default_factory=dict)

    def values(self) -> dict[str, float]:
        """The fitted values by name."""
        return {name: p.value for name, p in self.parameters.items()}

    def __getitem__(self, name: str) -> float:
        return self.parameters[name].value

    def as_dict(self) -> dict:
        entry = {"model": self.model, "date": self.date, "run": self.run,
                 "procedure": self.procedure, "station": self.station,
                 "parameters": {name: {"value": float(p.value),
                                       "stderr": None if math.isnan(p.stderr) else float(p.stderr),
                                       "unit": p.unit}
                                for name, p in self.parameters.items()},
                 "notes": self.notes}
        if self.extra:
            entry["extra"] = self.extra
        return entry


def _parameter(sec: Section, name: str) -> Parameter:
    spec = sec.section(name)
    spec.allow("value", "stderr", "unit")
    value = spec.get("value", float)
    stderr = spec.get("stderr", (float, type(None)), None)
    return Parameter(value, math.nan if stderr is None else stderr, spec.get("unit", str, ""))


class CalibrationStore:
    """The calibration folder: read and append fits per chip and device."""

    def __init__(self, root: str | Path | None = None):
        if root is None:
            root = os.environ.get(ENV_VAR) or default_dir()
        self.root = Path(root)

    def path(self, chip: str, device: str) -> Path:
        return self.root / _check_name("chip", chip) / f"{_check_name('device', device)}.yaml"

    # -- reading ---------------------------------------------------------------------------------
    def history(self, chip: str, device: str, model: str | None = None) -> list[Calibration]:
        """Every stored fit of ``device`` on ``chip`` (of ``model`` if given), oldest first."""
        path = self.path(chip, device)
        if not path.is_file():
            return []
        top = Section(path, "", load_mapping(path))
        top.allow("chip", "device", "entries")
        entries = top.get("entries", list, [])
        found = []
        for k, raw in enumerate(entries):
            sec = Section(path, f"entries[{k}]", raw)
            sec.allow("model", "date", "run", "procedure", "station", "parameters", "notes",
                      "extra")
            params = sec.section("parameters")
            entry = Calibration(
                chip=chip, device=device, model=sec.get("model", str),
                parameters={str(n): _parameter(params, str(n)) for n in params.data},
                date=str(sec.get("date", (str, _dt.datetime))), run=sec.get("run", str, ""),
                procedure=sec.get("procedure", str, ""), station=sec.get("station", str, ""),
                notes=sec.get("notes", (str, type(None)), "") or "",
                extra=dict(sec.section("extra", {}).data))
            if model is None or entry.model == model:
                found.append(entry)
        return found

    def latest(self, chip: str, device: str, model: str) -> Calibration:
        """The newest fit of ``model`` for ``device``; a clear error if there is none."""
        entries = self.history(chip, device, model)
        if not entries:
            raise ConfigError(str(self.path(chip, device)),
                              f"no {model!r} calibration for device {device!r} of chip {chip!r} "
                              "(run the procedure that fits it first)")
        return entries[-1]

    def chips(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir()) \
            if self.root.is_dir() else []

    def devices(self, chip: str) -> list[str]:
        folder = self.root / _check_name("chip", chip)
        return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []

    # -- writing ---------------------------------------------------------------------------------
    def save(self, chip: str, device: str, model: str, parameters: dict, *, run: str = "",
             procedure: str = "", station: str = "", notes: str = "",
             extra: dict | None = None, date: str | None = None) -> Calibration:
        """Append a fit. ``parameters``: name -> :class:`Parameter`, ``(value, stderr[, unit])``
        or a bare value. Returns the stored :class:`Calibration`."""
        params = {}
        for name, spec in parameters.items():
            if isinstance(spec, Parameter):
                p = spec
            elif isinstance(spec, tuple | list):
                p = Parameter(float(spec[0]), float(spec[1]),
                              str(spec[2]) if len(spec) > 2 else "")
            else:
                p = Parameter(float(spec))
            if not math.isfinite(p.value):
                raise ValueError(f"calibration {chip}/{device} {model}: parameter {name} "
                                 f"is not finite ({p.value})")
            params[str(name)] = p
        entry = Calibration(chip=chip, device=device, model=model, parameters=params,
                            date=date or _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                            run=str(run), procedure=procedure, station=station, notes=notes,
                            extra=dict(extra or {}))
        path = self.path(chip, device)
        previous = [e.as_dict() for e in self.history(chip, device)]
        document = {"chip": chip, "device": device, "entries": previous + [entry.as_dict()]}
        _write_atomic(path, yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
        return entry


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
