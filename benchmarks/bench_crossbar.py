"""Crossbar benchmarks: whole-array pulses, partial (half-select) pulses and sneak-path reads, each
against a baseline measured in the same run.

Run ``python benchmarks/bench_crossbar.py [--json out.json] [--quick]``. Device updates per second
of ``Crossbar.pulse`` on every device and of the bare ``RRAMArray.apply`` are compared with a plain
per-device Python loop of the same closed-form update (``bench_foundation.per_device_loop``) on a
small array, and with each other (what the crossbar layer costs). Not collected by pytest.

The targets are per core, so the rates are timed with this thread's CPU time
(``time.thread_time_ns``), baseline and measurement alike: other processes on a shared machine
do not count (numpy's element-wise work runs on the calling thread). The reads are wall time.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, too
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_foundation  # noqa: E402
from bench_foundation import (  # noqa: E402
    PULSE_S,
    RESET_V,
    SET_V,
    best_rate,
    per_device_loop,
    verdict,
)
from benchlib import environment, finish, parser, print_rows  # noqa: E402

from mocks.devices.crossbar import Crossbar  # noqa: E402
from mocks.devices.rram import RRAMArray  # noqa: E402

TARGET_UPDATES_PER_S = 3e7        # whole-array pulse, one core
TARGET_LAYER_RATIO = 0.8          # Crossbar.pulse rate / RRAMArray.apply rate, whole array
TARGET_FLOAT_READ_US = 1000.0     # one read_device under float on 32x32 (a KCL solve)
SEED = 20261123


def new_crossbar(side: int) -> Crossbar:
    return Crossbar(RRAMArray((side, side), rng=np.random.default_rng(SEED), formed=True))


# -- 1. whole-array pulses: crossbar, bare device model, per-device Python loop --------------------
def bench_whole_array(side: int, pulses: int, repeats: int, loop_sample: int) -> dict:
    xbar = new_crossbar(side)
    bare = RRAMArray((side, side), rng=np.random.default_rng(SEED), formed=True)
    everything = slice(None)

    def crossbar_pulses():
        for k in range(pulses):
            xbar.pulse(everything, everything, SET_V if k % 2 == 0 else RESET_V, PULSE_S, "v/2")
        return xbar.devices.size * pulses

    def bare_pulses():
        for k in range(pulses):
            bare.apply(SET_V if k % 2 == 0 else RESET_V, PULSE_S)
        return bare.size * pulses

    crossbar_pulses(), bare_pulses()  # warm up
    rate = {"crossbar": 0.0, "apply": 0.0, "loop": 0.0}
    for _ in range(repeats):  # alternate so drift of the machine hits all three alike
        rate["crossbar"] = max(rate["crossbar"], best_rate(crossbar_pulses, 1))
        rate["apply"] = max(rate["apply"], best_rate(bare_pulses, 1))
        rate["loop"] = max(rate["loop"], per_device_loop(bare, loop_sample, 4))
    ratio = rate["crossbar"] / rate["apply"]
    return {"shape": [side, side], "pulses": pulses, "crossbar_updates_per_s": rate["crossbar"],
            "apply_updates_per_s": rate["apply"], "loop_updates_per_s": rate["loop"],
            "loop_sample": loop_sample, "speedup_vs_loop": rate["crossbar"] / rate["loop"],
            "crossbar_over_apply": ratio,
            "target_updates_per_s_min": TARGET_UPDATES_PER_S,
            "target_ratio_min": TARGET_LAYER_RATIO,
            "pass": rate["crossbar"] >= TARGET_UPDATES_PER_S and ratio >= TARGET_LAYER_RATIO}


# -- 2. half-select pulses: half the rows selected under V/2 (per-device voltages) ----------------
def bench_half_select(side: int, pulses: int, repeats: int) -> dict:
    xbar = new_crossbar(side)
    half = slice(0, side // 2)

    def pulses_half():
        for k in range(pulses):
            xbar.pulse(half, slice(None), 2.0 if k % 2 == 0 else -2.0, PULSE_S, "v/2")
        return xbar.devices.size * pulses

    pulses_half()
    rate = max(best_rate(pulses_half, 1) for _ in range(repeats))
    return {"shape": [side, side], "pulses": pulses, "updates_per_s": rate}


# -- 3. sneak-path reads --------------------------------------------------------------------------
def bench_reads(side: int, n: int) -> dict:
    xbar = new_crossbar(side)
    out = {"shape": [side, side], "n": n}
    for bias in ("float", "v/2"):
        xbar.read_device(1, 2, 0.5, bias)
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for k in range(n):
                xbar.read_device(k % side, (3 * k) % side, 0.5, bias)
            best = min(best, (time.perf_counter() - t0) / n * 1e6)
        out[f"read_device_{bias.replace('/', '')}_us"] = best
    t0 = time.perf_counter()
    for _ in range(20):
        xbar.read_all(0.5, "v/2")
    out["read_all_v2_us"] = (time.perf_counter() - t0) / 20 * 1e6
    out["target_float_us_max"] = TARGET_FLOAT_READ_US
    out["pass"] = out["read_device_float_us"] <= TARGET_FLOAT_READ_US
    return out


# -- report ---------------------------------------------------------------------------------------
def print_table(results: dict) -> None:
    rows = []
    for r in results["whole_array"]:
        name = f"{r['shape'][0]}x{r['shape'][1]}"
        rows.append((f"1 pulse all {name}", f"{r['crossbar_updates_per_s']:.3g} upd/s",
                     f"py loop {r['loop_updates_per_s']:.3g}", f"{r['speedup_vs_loop']:.0f}x",
                     f">= {TARGET_UPDATES_PER_S:.0e}", verdict(r["pass"])))
        rows.append((f"  RRAMArray.apply {name}", f"{r['apply_updates_per_s']:.3g} upd/s", "",
                     f"xbar/apply {r['crossbar_over_apply']:.2f}",
                     f">= {TARGET_LAYER_RATIO}", ""))
    for r in results["half_select"]:
        rows.append((f"2 pulse half rows v/2 {r['shape'][0]}x{r['shape'][1]}",
                     f"{r['updates_per_s']:.3g} upd/s", "", "", "", ""))
    r = results["reads"]
    rows.append((f"3 read_device float {r['shape'][0]}x{r['shape'][1]}",
                 f"{r['read_device_float_us']:.1f} µs", f"v/2 {r['read_device_v2_us']:.1f} µs",
                 "", f"<= {TARGET_FLOAT_READ_US:g} µs", verdict(r["pass"])))
    rows.append((f"  read_all v/2 {r['shape'][0]}x{r['shape'][1]}",
                 f"{r['read_all_v2_us']:.1f} µs", "", "", "", ""))
    head = ("benchmark", "measured", "baseline", "ratio", "target", "")
    print_rows(head, rows)


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__).parse_args(argv)
    q = args.quick
    bench_foundation.now = time.thread_time_ns  # per core: CPU time (see the docstring)
    sizes = ((128, 20 if q else 200), (512, 4 if q else 20))
    results = {
        **environment(), "clock": "thread CPU time (rates), wall time (reads)",
        "whole_array": [bench_whole_array(side, pulses, 1 if q else 3, 1000 if q else 4000)
                        for side, pulses in sizes],
        "half_select": [bench_half_select(side, pulses, 1 if q else 3) for side, pulses in sizes],
        "reads": bench_reads(32, 200 if q else 2000),
    }
    checks = [*(r["pass"] for r in results["whole_array"]), results["reads"]["pass"]]
    results["all_pass"] = all(checks)
    print_table(results)
    print(f"\n{sum(checks)}/{len(checks)} targets met")
    return finish(results, args.json, results["all_pass"])


if __name__ == "__main__":
    sys.exit(main())
