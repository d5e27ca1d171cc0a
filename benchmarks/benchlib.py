"""What every benchmark script shares: its command line, the environment it reports, its table
and its ending (JSON if asked, exit status from its targets)."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np


def parser(doc: str, quick: str | None = "fewer repetitions (a smoke run)"
           ) -> argparse.ArgumentParser:
    """``--json FILE`` and, unless ``quick`` is None, ``--quick`` (with that help)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--json", type=Path, help="write the results to this JSON file")
    if quick is not None:
        ap.add_argument("--quick", action="store_true", help=quick)
    return ap


def environment() -> dict:
    """Python, platform and numpy, for the JSON beside the figures."""
    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "numpy": np.__version__}


def print_rows(head: tuple | list, rows: list, rule: bool = True) -> None:
    """``rows`` as left-aligned columns under ``head`` (a dashed rule between if ``rule``)."""
    widths = [max(len(str(row[i])) for row in [head, *rows]) for i in range(len(head))]
    lines = [head, tuple("-" * w for w in widths), *rows] if rule else [head, *rows]
    for row in lines:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def finish(results: dict, path: Path | None, ok: bool) -> int:
    """Write ``results`` to ``path`` (if given) and return the exit status: 0 if ``ok``."""
    if path:
        path.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {path}")
    return 0 if ok else 1
