"""VDSP on digits at full size: the ideal network and the crossbar network, seed by seed.

Run ``python benchmarks/bench_vdsp.py [--seeds 5] [--ablation] [--json out.json]``. For each
seed, ``train-vdsp`` on the simulated crossbar bench (1258 training / 539 test binarised
digits, 100 outputs, 1 epoch, the same initial weights for both networks) reports the test
accuracy of the ideal and the crossbar network, their paired gap (ideal − crossbar, points) and
the output neurons that fire at test time. ``--ablation`` runs the crossbar network a second
time with the open-loop programming of the first version (median-curve pulse counts and the
median conductance window only: no per-device step factors, no per-device window), the
baseline measured in the same run. Target (issue 7): mean paired gap ≤ 5 points. About 2 min
per seed on one core; not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, too

import labctl  # noqa: E402

warnings.filterwarnings("ignore", category=FutureWarning)
TARGET_GAP_POINTS = 5.0


def run_seed(seed: int, out: Path, **params) -> dict:
    df = labctl.run("train-vdsp", sim=True, out=out, seed=seed, **params)
    test = df[df["Phase"] == "test"].set_index("Network")
    return {"seed": seed,
            "ideal": 100 * float(test.loc["ideal", "Accuracy"]),
            "crossbar": 100 * float(test.loc["crossbar", "Accuracy"]),
            "ideal_neurons": int(test.loc["ideal", "Active neurons"]),
            "crossbar_neurons": int(test.loc["crossbar", "Active neurons"]),
            "pulses": int(test.loc["crossbar", "Pulses"]),
            "updates": int(test.loc["crossbar", "Updates"])}


def table(rows: list[dict], title: str) -> dict:
    print(f"\n{title}")
    print(f"{'seed':>4} {'ideal %':>8} {'crossbar %':>10} {'gap pt':>7} {'neurons i/c':>12} "
          f"{'pulses':>8}")
    for r in rows:
        r["gap"] = r["ideal"] - r["crossbar"]
        print(f"{r['seed']:>4} {r['ideal']:8.1f} {r['crossbar']:10.1f} {r['gap']:7.1f} "
              f"{r['ideal_neurons']:>5}/{r['crossbar_neurons']:<6} {r['pulses']:>8}")
    summary = {k: (float(np.mean([r[k] for r in rows])), float(np.std([r[k] for r in rows],
                                                                      ddof=1)))
               for k in ("ideal", "crossbar", "gap", "ideal_neurons", "crossbar_neurons")}
    print("mean ± sd: " + ", ".join(f"{k} {m:.1f} ± {s:.1f}" for k, (m, s) in summary.items()))
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--ablation", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        variants = {"compensated": {}}
        if args.ablation:
            variants["open loop (baseline)"] = {"compensate": False, "per_device_window": False}
        for name, params in variants.items():
            rows = [run_seed(s, Path(tmp), **params) for s in range(args.seeds)]
            result[name] = {"rows": rows, "summary": table(rows, name)}
    gap = result["compensated"]["summary"]["gap"][0]
    ok = gap <= TARGET_GAP_POINTS
    print(f"\nmean paired gap {gap:.1f} points (target ≤ {TARGET_GAP_POINTS}): "
          f"{'PASS' if ok else 'FAIL'}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
