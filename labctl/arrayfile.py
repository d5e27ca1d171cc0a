"""The run's array file: an HDF5 sidecar beside the results file for what does not fit in rows.

``results/write-verify_3.csv`` gets ``results/write-verify_3.h5`` holding

- ``/pulses``: the pulse log, one dataset per column (``labctl.array.PULSE_LOG_COLUMNS``),
  appended and flushed as the pulses are applied — a killed run leaves every pulse applied
  before the kill on disk; LZF-compressed (byte shuffle), about 4x smaller for training logs;
- ``/maps/<name>``: 2-D arrays (conductance maps, targets, masks), with attributes (units, read
  voltage, …);
- ``/traces/<name>``: any other arrays (per-device traces, fits);
- root attributes: procedure, station, seed, labctl version.

Read back with :func:`load_pulses` (pandas), :func:`load_maps`, :func:`load_traces` (numpy), or
:class:`ArrayFile` in read mode. Nothing is pickled: only numbers and strings are stored.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from labctl.array import PULSE_LOG_COLUMNS
from labctl.errors import ConfigError

_CHUNK = 4096


def sidecar_path(results_file: str | Path) -> Path:
    """The array file that belongs to ``results_file`` (same name, ``.h5``)."""
    return Path(results_file).with_suffix(".h5")


class ArrayFile:
    """An HDF5 array file, for writing (``mode="w"``/``"a"``) or reading (``"r"``)."""

    def __init__(self, path: str | Path, mode: str = "r"):
        self.path = Path(path)
        try:
            self._h5 = h5py.File(self.path, mode)
        except OSError as exc:
            raise ConfigError(str(self.path), f"cannot open array file ({exc})".split("\n")[0]
                              ) from None
        self.writable = mode != "r"

    # ------------------------------------------------------------------ writing
    def set_attrs(self, **attrs) -> None:
        for key, value in attrs.items():
            self._h5.attrs[key] = "" if value is None else value
        self._h5.flush()

    def append_pulses(self, block: dict[str, np.ndarray], group: str = "pulses") -> None:
        """Append a block of the pulse log (to ``group``: one per array) and flush it to disk."""
        group = self._h5.require_group(group)
        n = len(block["row"])
        for name in PULSE_LOG_COLUMNS:
            values = np.asarray(block[name])
            if name not in group:
                group.create_dataset(name, shape=(0,), maxshape=(None,), dtype=values.dtype,
                                     chunks=(_CHUNK,), compression="lzf", shuffle=True)
            ds = group[name]
            start = ds.shape[0]
            ds.resize((start + n,))
            ds[start:] = values
        self._h5.flush()

    def write_map(self, name: str, values, **attrs) -> None:
        """Store a 2-D array under ``/maps/name`` (replacing it), with attributes."""
        self._write("maps", name, np.asarray(values), attrs)

    def write_trace(self, name: str, values, **attrs) -> None:
        """Store an array under ``/traces/name`` (replacing it), with attributes."""
        self._write("traces", name, np.asarray(values), attrs)

    def _write(self, group_name: str, name: str, values: np.ndarray, attrs: dict) -> None:
        group = self._h5.require_group(group_name)
        if name in group:
            del group[name]
        if values.dtype.kind in "UO":
            values = values.astype(h5py.string_dtype())
        ds = group.create_dataset(name, data=values)
        for key, value in attrs.items():
            ds.attrs[key] = "" if value is None else value
        self._h5.flush()

    # ------------------------------------------------------------------ reading
    def pulse_arrays(self, group: str = "pulses", start: int = 0,
                     stop: int | None = None) -> dict[str, np.ndarray]:
        """The pulse log (rows ``start`` to ``stop``) as one array per column."""
        group = self._h5.get(group)
        if group is None:
            return {name: np.empty(0) for name in PULSE_LOG_COLUMNS}
        return {name: group[name][start:stop] for name in PULSE_LOG_COLUMNS if name in group}

    def pulse_count(self, group: str = "pulses") -> int:
        """Rows of the pulse log in ``group`` (without reading them)."""
        rows = self._h5.get(f"{group}/row")
        return 0 if rows is None else int(rows.shape[0])

    def pulses(self, group: str = "pulses") -> pd.DataFrame:
        """The pulse log as a DataFrame (one row per pulse per device)."""
        return pd.DataFrame(self.pulse_arrays(group), columns=list(PULSE_LOG_COLUMNS))

    def _read_group(self, group_name: str) -> dict[str, np.ndarray]:
        group = self._h5.get(group_name)
        if group is None:
            return {}
        out = {}
        for name, ds in group.items():
            values = ds[()]
            if ds.dtype.kind == "O":
                values = ds.asstr()[()]
            out[name] = values
        return out

    def maps(self) -> dict[str, np.ndarray]:
        return self._read_group("maps")

    def traces(self) -> dict[str, np.ndarray]:
        return self._read_group("traces")

    def attrs(self, group: str = "", name: str = "") -> dict:
        node = self._h5[f"{group}/{name}"] if group else self._h5
        return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in node.attrs.items()}

    def close(self) -> None:
        if self._h5.id.valid:
            self._h5.close()

    def __enter__(self) -> ArrayFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _resolve(path: str | Path) -> Path:
    path = Path(path)
    return sidecar_path(path) if path.suffix.lower() == ".csv" else path


def load_pulses(path: str | Path, group: str = "pulses") -> pd.DataFrame:
    """The pulse log of a run (its ``.h5`` file, or its results ``.csv``) as a DataFrame
    (``group``: the log of another array of a multi-array run, e.g. ``pulses_array2``)."""
    with ArrayFile(_resolve(path)) as f:
        return f.pulses(group)


def load_maps(path: str | Path) -> dict[str, np.ndarray]:
    """The maps of a run (its ``.h5`` file, or its results ``.csv``) by name."""
    with ArrayFile(_resolve(path)) as f:
        return f.maps()


def load_traces(path: str | Path) -> dict[str, np.ndarray]:
    """The traces of a run (its ``.h5`` file, or its results ``.csv``) by name."""
    with ArrayFile(_resolve(path)) as f:
        return f.traces()
