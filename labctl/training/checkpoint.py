"""Training checkpoints, written atomically, with a write-ahead record of the pending update.

A step of in-situ training is: measure, compute the update, **write the pending checkpoint** (the
software state after the step and the exact device operations planned), apply the operations
(each pulse lands in the pulse log as it is applied), **commit** (the pending file atomically
becomes the checkpoint). A kill anywhere leaves either the previous checkpoint alone, or it and a
pending record whose operations are partly or wholly in the pulse log — the log says which, so a
resume applies exactly the rest (:mod:`labctl.training.engine`).

Files (``.npz``, numbers and strings only, read with ``allow_pickle=False``): ``<stem>.ckpt.npz``
and ``<stem>.pending.npz``; each write goes to a temporary file in the same folder, is fsynced and
renamed over the old one (atomic on POSIX), then the folder is fsynced.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from labctl.array import Pulse, Selection
from labctl.errors import ConfigError

META = "__meta__"


def checkpoint_path(results_file: str | Path) -> Path:
    """The checkpoint of the run whose results file is ``results_file``."""
    return Path(results_file).with_suffix(".ckpt.npz")


def _write_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        meta = json.loads(str(arrays.pop(META)))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise ConfigError(str(path), f"not a readable checkpoint ({exc})".split("\n")[0]) from None
    return meta, arrays


def encode_plan(plan: dict[str, list[Pulse]], shapes: dict[str, tuple[int, int]]
                ) -> tuple[dict, dict[str, np.ndarray]]:
    """A plan of pulses per array role as (JSON-able description, arrays)."""
    desc, arrays = {}, {}
    for role, ops in plan.items():
        desc[role] = [op.bias for op in ops]
        cells = [op.sel.cells_of(shapes[role]) for op in ops]
        arrays[f"plan/{role}/sizes"] = np.array([r.size for r, _ in cells], dtype=np.int64)
        arrays[f"plan/{role}/rows"] = np.concatenate([r for r, _ in cells] or [np.empty(0, int)])
        arrays[f"plan/{role}/cols"] = np.concatenate([c for _, c in cells] or [np.empty(0, int)])
        arrays[f"plan/{role}/amplitude"] = np.array([float(op.amplitude) for op in ops])
        arrays[f"plan/{role}/width"] = np.array([float(op.width) for op in ops])
    return desc, arrays


def decode_plan(desc: dict, arrays: dict[str, np.ndarray]) -> dict[str, list[Pulse]]:
    plan = {}
    for role, biases in desc.items():
        ends = np.cumsum(arrays[f"plan/{role}/sizes"])
        starts = ends - arrays[f"plan/{role}/sizes"]
        rows, cols = arrays[f"plan/{role}/rows"], arrays[f"plan/{role}/cols"]
        plan[role] = [Pulse(Selection.cells(rows[a:b], cols[a:b]), float(amp), float(w), bias)
                      for a, b, amp, w, bias in zip(starts, ends, arrays[f"plan/{role}/amplitude"],
                                                    arrays[f"plan/{role}/width"], biases,
                                                    strict=True)]
    return plan


class Checkpoints:
    """The checkpoint and pending files of one run (module docstring)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.pending_path = self.path.with_name(self.path.name.replace(".ckpt.npz", "") +
                                                ".pending.npz")

    def write(self, meta: dict, state: dict[str, np.ndarray]) -> None:
        """Write the checkpoint directly (no device operation pending)."""
        _write_atomic(self.path, {**state, META: np.array(json.dumps(meta))})

    def write_pending(self, meta: dict, state: dict[str, np.ndarray],
                      plan: dict[str, list[Pulse]], shapes: dict[str, tuple[int, int]]) -> None:
        """Record the state after the step and the operations about to be applied."""
        desc, arrays = encode_plan(plan, shapes)
        meta = {**meta, "plan": desc}
        _write_atomic(self.pending_path, {**state, **arrays, META: np.array(json.dumps(meta))})

    def commit(self) -> None:
        """The pending record becomes the checkpoint (its operations are all applied)."""
        os.replace(self.pending_path, self.path)

    def load(self) -> tuple[dict, dict[str, np.ndarray]]:
        if not self.path.is_file():
            raise ConfigError(str(self.path), "no checkpoint to resume from")
        return _read(self.path)

    def latest_meta(self) -> dict:
        """The description of the newest record, pending or committed."""
        pending = self.load_pending()
        return pending[0] if pending is not None else self.load()[0]

    def load_pending(self) -> tuple[dict, dict[str, np.ndarray], dict[str, list[Pulse]]] | None:
        if not self.pending_path.is_file():
            return None
        meta, arrays = _read(self.pending_path)
        plan = decode_plan(meta.get("plan", {}), arrays)
        state = {k: v for k, v in arrays.items() if not k.startswith("plan/")}
        return meta, state, plan
