"""RF benchmarks: list-mode spectra, whole-trace reads and the vectorised chain model, each
against a baseline measured in the same run.

Run ``python benchmarks/bench_rf.py [--json out.json]`` (about half a minute). Not collected by
pytest. Exits non-zero if a target is missed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, too
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import finish, parser  # noqa: E402

from labctl.rfmodel import K_SD_ROSS, chain_voltage  # noqa: E402
from labctl.station import Station  # noqa: E402

POINTS = 201
TARGET_LIST_TRANSACTIONS_PER_POINT = 2.05   # list mode: *TRG + reading (+ a few to load)
TARGET_TRACE_TRANSACTIONS = 1               # a 1,001-point trace
TARGET_CHAIN_EVALS_PER_S = 1e7             # junction x input terms per second, one core


def transactions(station, roles) -> int:
    return sum(station.bench.instruments[r].messages for r in roles)


def spectrum_list_vs_cw(transport: str) -> dict:
    """One 201-point spin-diode spectrum: the generator's list mode against CW steps
    (frequency, power, reading per point)."""
    out = {}
    with Station.load("sim-spin-diode", sim=True, transport=transport) as st:
        gen, smu = st.instrument("rf_source"), st.instrument("smu")
        smu.apply_current(compliance_voltage=0.5)
        smu.measure_voltage(nplc=0.01)
        smu.enable_source()
        freqs = np.linspace(94e6, 106e6, POINTS)
        gen.enable()
        for mode in ("cw", "list"):
            before, t0 = transactions(st, ("rf_source", "smu")), time.perf_counter()
            if mode == "cw":
                for f in freqs:
                    gen.frequency, gen.power = f, -30
                    float(smu.voltage)
            else:
                gen.load_list(freqs, -30)
                gen.start_list()
                for k in range(POINTS):
                    float(smu.voltage)
                    if k + 1 < POINTS:
                        gen.next_point()
                gen.stop_list()
            out[mode] = {"s": time.perf_counter() - t0,
                         "transactions": transactions(st, ("rf_source", "smu")) - before}
    return out


def trace_reads(transport: str, n: int = 30) -> dict:
    out = {}
    with Station.load("sim-stno", sim=True, transport=transport) as st:
        smu, sa = st.instrument("smu"), st.instrument("analyzer")
        smu.apply_current(compliance_voltage=0.5)
        smu.source_current = 30e-6
        smu.enable_source()
        for binary in (False, True):
            sa.configure(265e6, 20e6, rbw=100e3, points=1001, averages=1, binary=binary)
            sa.ask("*OPC?")  # over TCP: the configuring write is processed before counting
            mock = st.bench.instruments["analyzer"]
            before, t0 = mock.messages, time.perf_counter()
            for _ in range(n):
                sa.sweep_and_read()
            out["binary" if binary else "ascii"] = {
                "ms": 1e3 * (time.perf_counter() - t0) / n,
                "transactions": (mock.messages - before) / n}
    return out


def chain_model(batch: int = 2000) -> dict:
    rng = np.random.default_rng(1)
    res = rng.uniform(40e6, 120e6, (10, 9))
    p, f = rng.uniform(0, 1e-6, (batch, 9)), rng.uniform(40e6, 120e6, (batch, 9))
    fast = chain_voltage(p, f, res)  # warm-up
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        chain_voltage(p, f, res)
        times.append(time.perf_counter() - t0)
    t_fast = float(np.median(times))
    t0 = time.perf_counter()
    slow = np.zeros((batch, 10))
    for b in range(batch):
        for j in range(10):
            for k in range(9):
                g = 0.01 * res[j, k]
                for i in range(9):
                    d = f[b, i] - res[j, k]
                    slow[b, j] += (-1) ** k * p[b, i] * K_SD_ROSS * 2 * g * d / (g * g + d * d)
    t_slow = time.perf_counter() - t0
    assert np.allclose(fast, slow, rtol=1e-9)
    terms = batch * res.size * p.shape[1]
    return {"vectorised_s": t_fast, "loop_s": t_slow, "speedup": t_slow / t_fast,
            "terms_per_s": terms / t_fast}


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__, quick=None).parse_args(argv)
    results = {"spectrum": {t: spectrum_list_vs_cw(t) for t in ("inprocess", "tcp")},
               "trace": {t: trace_reads(t) for t in ("inprocess", "tcp")},
               "chain": chain_model()}
    rows, ok = [], True
    for t, r in results["spectrum"].items():
        per_point = r["list"]["transactions"] / POINTS
        passed = per_point <= TARGET_LIST_TRANSACTIONS_PER_POINT
        ok &= passed
        rows.append((f"spectrum {POINTS} pts {t}: list vs CW",
                     f"{r['list']['transactions']} vs {r['cw']['transactions']} transactions, "
                     f"{r['list']['s']:.3f} vs {r['cw']['s']:.3f} s",
                     f"<= {TARGET_LIST_TRANSACTIONS_PER_POINT}/pt", passed))
    for t, r in results["trace"].items():
        passed = r["binary"]["transactions"] == r["ascii"]["transactions"] == 1
        ok &= passed
        rows.append((f"1001-pt trace {t}: REAL,32 vs ASCII",
                     f"{r['binary']['ms']:.2f} vs {r['ascii']['ms']:.2f} ms, "
                     f"{r['binary']['transactions']:g} transaction each",
                     f"= {TARGET_TRACE_TRANSACTIONS}", passed))
    c = results["chain"]
    passed = c["terms_per_s"] >= TARGET_CHAIN_EVALS_PER_S
    ok &= passed
    rows.append(("chain model 2000x9 -> 10x9", f"{c['terms_per_s']:.3g} terms/s, "
                 f"{c['speedup']:.0f}x a per-sample loop", f">= {TARGET_CHAIN_EVALS_PER_S:g}/s",
                 passed))
    for name, value, target, passed in rows:
        print(f"{name:38s} {value:55s} {target:12s} {'PASS' if passed else 'FAIL'}")
    return finish(results, args.json, ok)


if __name__ == "__main__":
    sys.exit(main())
