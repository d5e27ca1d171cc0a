"""Neuron bench benchmarks, each against a baseline measured in the same run.

Run ``python benchmarks/bench_neuron.py [--json out.json] [--quick]``. (1) A 100 000-point
waveform from the simulated DSOX3024T: the binary WORD transfer of
``InfiniiVision.read_waveform`` (target: the data in one transaction) against the stock
pymeasure ``KeysightDSOX1102G.waveform_data`` (ASCII), in-process and over TCP: time per
waveform and bytes on the wire. (2) The NbOx simulator on an array of 64 neurons in one call
against 64 single-neuron calls (the same total physics), target ≥ 3× faster (the step is
shared, so the gain shrinks as the neurons desynchronise and one of them is always firing).
Not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, too

from pymeasure.instruments.keysight.keysightDSOX1102G import KeysightDSOX1102G  # noqa: E402

from labctl.station import Station  # noqa: E402
from mocks.devices.nbox import NbOxNeurons, NbOxParams  # noqa: E402

warnings.filterwarnings("ignore", category=FutureWarning)
POINTS = 100_000
TARGET_DATA_TRANSACTIONS = 1
TARGET_ARRAY_SPEEDUP = 3.0  # the step is shared: the gain shrinks as neurons desynchronise


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def acquire(st: Station) -> None:
    awg, scope = st.instrument("awg"), st.instrument("scope")
    scope.write(":TIMebase:RANGe 2e-3;:TIMebase:REFerence LEFT;:TIMebase:POSition 0")
    scope.trigger_source, scope.trigger_sweep = "EXT", "NORM"
    awg.configure_pulse_burst(2.2, 0.0, 1.5e-3, 3e-3, 1)
    scope.single()
    st.wait(2.1e-4)
    awg.trigger_burst()
    scope.wait_acquired()


def bench_waveform(transport: str, repeats: int) -> dict:
    with Station.load("sim-nbox-neuron", sim=True, transport=transport) as st:
        acquire(st)
        scope, mock = st.instrument("scope"), st.bench.instruments["scope"]
        best_binary, data_transactions = float("inf"), 0
        for _ in range(repeats):
            t0 = time.perf_counter()
            _, v = scope.read_waveform(1, POINTS)
            best_binary = min(best_binary, time.perf_counter() - t0)
        scope.write(":WAVeform:POINts:MODE RAW;:WAVeform:POINts 100000")
        scope.ask("*OPC?")  # over TCP a write returns before the mock has counted it
        before = mock.messages
        scope.write(":WAVeform:DATA?")
        binary_bytes = len(scope.read_block())
        data_transactions = mock.messages - before
        stock = KeysightDSOX1102G(scope.adapter)
        best_ascii = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            ascii_values = stock.waveform_data
            best_ascii = min(best_ascii, time.perf_counter() - t0)
        ascii_bytes = len(",".join(f"{x:+.6E}" for x in ascii_values)) + 10
    return {"transport": transport, "points": int(v.size), "binary_ms": 1e3 * best_binary,
            "ascii_ms": 1e3 * best_ascii, "speedup": best_ascii / best_binary,
            "binary_bytes": binary_bytes, "ascii_bytes": ascii_bytes,
            "data_transactions": data_transactions,
            "pass": data_transactions == TARGET_DATA_TRANSACTIONS and v.size == POINTS}


def bench_array(n: int, span_s: float) -> dict:
    p = NbOxParams(ea_d2d_rel=0.02)
    t = np.arange(0, span_s, 1e-7)

    def source(t0, t1):
        return np.array([t0]), np.array([2.0]), 0.0

    many = NbOxNeurons(n, p, rng=np.random.default_rng(1))
    many.set_source(source)
    t0 = time.perf_counter()
    many.record(t)
    array_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for k in range(n):
        one = NbOxNeurons(1, p)
        one.ea, one.r0 = many.ea[k:k + 1], many.r0[k:k + 1]
        one.set_source(source)
        one.record(t)
    loop_s = time.perf_counter() - t0
    return {"neurons": n, "span_s": span_s, "array_s": array_s, "loop_s": loop_s,
            "speedup": loop_s / array_s, "pass": loop_s / array_s >= TARGET_ARRAY_SPEEDUP}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeats = 2 if args.quick else 5
    results = {"platform": platform.platform(), "python": platform.python_version(),
               "waveform": [bench_waveform(tr, repeats) for tr in ("inprocess", "tcp")],
               "array": bench_array(16 if args.quick else 64, 2e-4 if args.quick else 1e-3)}
    print(f"{'benchmark':34} {'measured':>22} {'baseline':>22} {'ratio':>8}  target")
    for w in results["waveform"]:
        print(f"{'1 100k-pt waveform, ' + w['transport']:34} "
              f"{'WORD ' + format(w['binary_ms'], '.1f') + ' ms':>22} "
              f"{'ASCII ' + format(w['ascii_ms'], '.1f') + ' ms':>22} {w['speedup']:7.1f}x  "
              f"{w['data_transactions']} data transaction(s), {w['binary_bytes']} vs "
              f"{w['ascii_bytes']} bytes  {verdict(w['pass'])}")
    a = results["array"]
    print(f"{'2 NbOx ' + str(a['neurons']) + ' neurons':34} "
          f"{'array ' + format(a['array_s'], '.2f') + ' s':>22} "
          f"{'loop ' + format(a['loop_s'], '.2f') + ' s':>22} {a['speedup']:7.1f}x  "
          f">= {TARGET_ARRAY_SPEEDUP}x  {verdict(a['pass'])}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    ok = all(w["pass"] for w in results["waveform"]) and a["pass"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
