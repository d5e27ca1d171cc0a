"""Strict loading of YAML configuration files (station and bench files).

Every problem is reported as ``ConfigError("<file>: <key path>", "<problem>")``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from labctl.errors import ConfigError


def load_mapping(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read file ({exc.strerror})") from None
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", exc)
        raise ConfigError(f"{path}{line}", f"not valid YAML ({problem})") from None
    if not isinstance(data, dict):
        raise ConfigError(str(path), "expected a mapping of keys at the top level")
    return data


class Section:
    """A mapping inside a config file that knows its location for error messages."""

    def __init__(self, path: Path, keys: str, data: Any):
        self.path, self.keys = path, keys
        if not isinstance(data, dict):
            raise self.error(f"expected a mapping, got {type(data).__name__}")
        self.data = data

    def where(self, key: str | None = None) -> str:
        keys = ".".join(k for k in (self.keys, key) if k)
        return f"{self.path}: {keys}" if keys else str(self.path)

    def error(self, problem: str, key: str | None = None) -> ConfigError:
        return ConfigError(self.where(key), problem)

    def allow(self, *allowed: str) -> None:
        for key in self.data:
            if key not in allowed:
                raise self.error(f"unknown key (allowed: {', '.join(allowed)})", str(key))

    def get(self, key: str, kind: type | tuple, default: Any = ..., check=None) -> Any:
        if key not in self.data:
            if default is ...:
                raise self.error("missing required key", key)
            return default
        value = self.data[key]
        if kind in (float, (int, float)) and not isinstance(value, bool):
            if isinstance(value, int):
                value = float(value)
            elif isinstance(value, str):  # YAML 1.1 reads 5e-3 (no dot) as a string
                try:
                    value = float(value)
                except ValueError:
                    pass
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            name = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise self.error(f"expected {name}, got {value!r}", key)
        if check is not None:
            problem = check(value)
            if problem:
                raise self.error(problem, key)
        return value

    def section(self, key: str, default: Any = ...) -> Section:
        if key not in self.data and default is not ...:
            return Section(self.path, ".".join(k for k in (self.keys, key) if k), default)
        return Section(self.path, ".".join(k for k in (self.keys, key) if k), self.get(key, dict))


def positive(value: float) -> str | None:
    return None if value > 0 else f"must be > 0, got {value}"
