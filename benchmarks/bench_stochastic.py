"""Stochastic-switching benchmarks: Bernoulli trials per second of the simulators, and the TCP
transactions of a 10,000-trial switching curve, each against a baseline measured in the same run.

Run ``python benchmarks/bench_stochastic.py [--json out.json] [--quick]``. Not collected by pytest.

1. ``DWSynapseArray.switch_counts`` (Binomial counts of iid trials) on 10⁴ synapses × n trials,
   target ≥ 10⁸ Bernoulli trials per second, against drawing every trial (``rng.random(N) < p``,
   the vectorised per-trial baseline) and a plain per-trial Python loop on a small sample.
2. ``switching-probability`` on the simulated B2912A over TCP (pyvisa-py, 127.0.0.1) with 1,000
   and 10,000 trials in one curve: transactions counted by the mock (program messages), target:
   the same count for both (independent of the number of trials); wall time next to a bare
   pyvisa-py ``*IDN?`` query on the same socket (the cost of one transaction).
3. The same with ``write_source=pulser`` on ``sim-mtj-pulser`` (81160A writes, fired by the
   B2912A's trigger output): transactions to both instruments, target: the same for 1,000 and
   10,000 trials (per amplitude one pulser level and one SMU list).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, too
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_foundation import best_rate, verdict  # noqa: E402
from benchlib import environment, finish, parser  # noqa: E402

from labctl.runner import build, execute  # noqa: E402
from labctl.station import Station  # noqa: E402
from mocks.devices.stochastic import DWSynapseArray  # noqa: E402
from procedures.switching_probability import SwitchingProbability  # noqa: E402

TARGET_TRIALS_PER_S = 1e8
SEED = 20261128


# -- 1. Bernoulli trials per second ---------------------------------------------------------------
def bench_trials(synapses: int, n: int, repeats: int, loop_trials: int) -> dict:
    rng = np.random.default_rng(SEED)
    syn = DWSynapseArray(synapses, rng=rng)
    drives = np.linspace(3.0, 6.5, synapses)
    p = syn.switch_probability(drives, 1e-4)

    def binomial():
        syn.switch_counts(drives, 1e-4, n)
        return synapses * n

    def per_trial_vectorised():
        block = max(1, 2_000_000 // synapses)  # bounded memory: trials drawn in blocks
        done = 0
        while done < n:
            m = min(block, n - done)
            (rng.random((m, synapses)) < p).sum(axis=0)
            done += m
        return synapses * n

    def python_loop():
        pl = p.tolist()
        k = 0
        for t in range(loop_trials):
            k += rng.random() < pl[t % synapses]
        return loop_trials

    rate = best_rate(binomial, repeats)
    per_trial = best_rate(per_trial_vectorised, 1)
    loop = best_rate(python_loop, 1)
    return {"synapses": synapses, "trials_per_synapse": n, "binomial_per_s": rate,
            "per_trial_numpy_per_s": per_trial, "python_loop_per_s": loop,
            "speedup_vs_per_trial": rate / per_trial, "pass": rate >= TARGET_TRIALS_PER_S}


# -- 2. TCP transactions of a switching curve -----------------------------------------------------
@contextmanager
def _calibration_in(folder: str):
    """The benchmark's fits go to a scratch calibration folder, not to data/."""
    old = os.environ.get("LABCTL_CALIBRATION")
    os.environ["LABCTL_CALIBRATION"] = folder
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("LABCTL_CALIBRATION")
        else:
            os.environ["LABCTL_CALIBRATION"] = old


PULSER_CURVE = {"model": "mtj-neel-brown", "write_source": "pulser", "widths": "1e-8",
                "amplitude_start": 0.2, "amplitude_stop": 0.35, "reset_amplitude": -250e-6,
                "read_amplitude": 10e-6, "compliance": 2.2, "refine": 0}


def bench_curve_tcp(trial_counts: tuple[int, ...], points: int, repeats: int,
                    station_name: str = "sim-dw-synapse", extra: dict | None = None) -> dict:
    out = {"points": points, "station": station_name, "runs": []}
    with tempfile.TemporaryDirectory() as folder, _calibration_in(folder), \
            Station.load(station_name, sim=True, transport="tcp") as station:
        roles = sorted(station.bench.instruments)
        mocks = [station.bench.instruments[r] for r in roles]
        drivers = [station.instrument(r) for r in roles]
        smu = drivers[roles.index("smu")]
        idn = []
        for _ in range(repeats * 20):
            t0 = time.perf_counter()
            smu.adapter.connection.query("*IDN?")
            idn.append(time.perf_counter() - t0)
        out["bare_query_ms"] = 1e3 * float(np.median(idn))
        for total in trial_counts:
            per_point = total // points
            before = sum(m.messages for m in mocks)
            t0 = time.perf_counter()
            proc = build(SwitchingProbability, {"trials": per_point, "adaptive_trials": 0,
                                                "points": points, "device": "bench",
                                                **(extra or {})})
            execute(proc, station, out=folder)
            wall = time.perf_counter() - t0
            for driver in drivers:
                driver.ask("*OPC?")  # the last writes have arrived before the count is read
            out["runs"].append({"trials": per_point * points,
                                "transactions": sum(m.messages for m in mocks) - before -
                                len(drivers),
                                "wall_s": wall, "wall_in_queries": wall * 1e3 /
                                out["bare_query_ms"]})
    counts = {r["transactions"] for r in out["runs"]}
    out["pass"] = len(counts) == 1
    return out


def print_table(results: dict) -> None:
    t = results["trials"]
    print(f"{'benchmark':34} {'measured':>22} {'baseline':>26} {'target':>14} verdict")
    print(f"{'1 Bernoulli trials (Binomial)':34} {t['binomial_per_s']:>18.3g} /s "
          f"{'per-trial numpy ' + format(t['per_trial_numpy_per_s'], '.3g'):>24} /s "
          f"{'>= 1e8 /s':>14} {verdict(t['pass'])}")
    print(f"{'  speed-up vs per-trial numpy':34} {t['speedup_vs_per_trial']:>20.0f} x "
          f"{'python loop ' + format(t['python_loop_per_s'], '.3g'):>24} /s")
    for label, key in (("2 curve over TCP, ", "curve_tcp"), ("3 pulser curve, ", "pulser_tcp")):
        c = results[key]
        for run in c["runs"]:
            print(f"{label + str(run['trials']) + ' trials':34} "
                  f"{run['transactions']:>15d} trans. {run['wall_s']:>17.2f} s wall "
                  f"{'same for all':>14} {verdict(c['pass'])}")
        print(f"{'  bare *IDN? on the same socket':34} {c['bare_query_ms']:>19.3f} ms")


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__).parse_args(argv)
    q = args.quick
    results = {
        **environment(),
        "trials": bench_trials(10_000, 1_000 if q else 10_000, 2 if q else 5, 200_000),
        "curve_tcp": bench_curve_tcp((1_000, 10_000), 20, 1 if q else 3),
        "pulser_tcp": bench_curve_tcp((1_000, 10_000), 10, 1 if q else 3, "sim-mtj-pulser",
                                      PULSER_CURVE),
    }
    results["all_pass"] = all(results[k]["pass"] for k in ("trials", "curve_tcp",
                                                            "pulser_tcp"))
    print_table(results)
    return finish(results, args.json, results["all_pass"])


if __name__ == "__main__":
    sys.exit(main())
