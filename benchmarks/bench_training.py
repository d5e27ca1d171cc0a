"""In-situ training benchmarks: instrument transactions per training sample against layers and
synapses, and the trainer's own time per sample against the simulated device time: for the
binarized network on RRAM pairs and for train-stochastic's synapse arrays.

Run ``python benchmarks/bench_training.py [--json out.json] [--quick]``. Each network is trained
for a few batches of random binary inputs on the two-board simulated station ``sim-bnn-hfox``
(learning does not change the counts). Counted: the ArC TWO boards' own transaction counters
(``SimInstrument.transactions``: every ``execute`` and every self-executing read), per training
sample; the baseline in the same run is what a per-device loop would send for the same steps —
one read per device and one call per device pulsed (counted from the pulse log). Timed: the
trainer's wall time per sample (software: measurement decode, gradients, Adam, planning, the
driver and the simulator) against the virtual-clock time the boards would take. Not collected by
pytest.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, too
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import finish, parser, print_rows  # noqa: E402

from labctl.station import Station  # noqa: E402
from labctl.training.bnn import BinaryNet, BnnConfig  # noqa: E402
from labctl.training.data import Dataset  # noqa: E402
from labctl.training.engine import Trainer, TrainSettings  # noqa: E402
from labctl.training.rram import CrossbarPairs  # noqa: E402

ROLES = ("array", "array2")
NETWORKS = {  # name -> layer sizes
    "16-2": [16, 2],
    "32-10": [32, 10],
    "64-10": [64, 10],
    "16-8-2": [16, 8, 2],
    "16-8-8-2": [16, 8, 8, 2],
    "16-8-8-8-2": [16, 8, 8, 8, 2],
}


def random_set(n_in: int, n_out: int, n: int, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    x = (rng.random((n, n_in)) < 0.4).astype(float)
    y = np.arange(n) % n_out
    return Dataset("random", x, y, x[:32], y[:32])


def run(sizes: list[int], samples: int, batch: int) -> dict:
    shapes = list(zip(sizes[:-1], sizes[1:], strict=False))
    with Station.load("sim-bnn-hfox", sim=True) as st:
        pairs = CrossbarPairs.on_station(st, shapes, ROLES)
        boards = [st.bench.instruments[r] for r in ROLES]
        ds = random_set(sizes[0], sizes[-1], samples, 0)
        trainer = Trainer(BinaryNet(pairs.layers, BnnConfig(lr=20)), ds,
                          TrainSettings(epochs=1, batch_size=batch, set_first=False), pairs,
                          clock=lambda: st.hardware_time)
        pairs.apply(pairs.set_plan())
        t0 = sum(b.transactions for b in boards)
        log0 = {r: len(st.instrument(r).pulse_log) for r in ROLES}
        summary = trainer.run()
        transactions = sum(b.transactions for b in boards) - t0
        pulsed_calls = 0
        for r in ROLES:  # a per-device loop: one call per (operation, device) pulsed
            a = st.instrument(r).pulse_log.arrays()
            pulsed_calls += len(a["row"]) - log0[r]
        steps = trainer.last_step
        devices = 2 * sum(a * b for a, b in shapes)
        naive = steps * devices + pulsed_calls
        return {"layers": len(shapes), "synapses": devices // 2, "arrays": len(pairs.roles),
                "transactions_per_sample": transactions / samples,
                "per_device_loop_per_sample": naive / samples,
                "trainer_s_per_sample": summary["trainer_time"] / samples,
                "device_s_per_sample": summary["hardware_time"] / samples,
                "pulses_per_sample": summary["pulses"] / samples}


SYNAPSE_STATIONS = ("sim-dw-synapse-array", "sim-dw-synapse-digits")  # 10x16, 10x64 synapses


def run_stochastic(station: str, samples: int, batch: int, n: int) -> dict:
    """train-stochastic's trainer (Ellis et al.) for one epoch of random binary inputs on a
    stochastic-synapse array; P(x) from the published nominal values (the counts of
    transactions do not depend on the calibration). Baselines in the same run: one
    ``switch_counts`` call per sample (the per-sample API) and one call per synapse instance
    (a per-synapse loop), for the same training samples and test samples."""
    from labctl.training import stochastic
    from mocks.devices.stochastic import DWSynapseParams

    with Station.load(station, sim=True) as st:
        array = st.instrument("array")
        nominal = DWSynapseParams()
        cal = stochastic.Calibration(*(np.full(array.shape, v) for v in
                                       (nominal.x0, nominal.dx, nominal.a)))
        layer = stochastic.SynapseLayer(array, cal, stochastic.SynapseSettings(n=n))
        ds = random_set(array.shape[1], array.shape[0], samples, 0)
        t0 = st.bench.instruments["array"].transactions
        trainer = stochastic.StochasticTrainer(
            stochastic.StochasticNet(layer), ds, TrainSettings(epochs=1, batch_size=batch),
            stochastic.LogReader(array), passes=1, clock=lambda: st.hardware_time)
        summary = trainer.run()
        transactions = st.bench.instruments["array"].transactions - t0
        instances = array.shape[0] * (np.count_nonzero(ds.x_train) + np.count_nonzero(ds.x_test))
        return {"synapses": array.shape[0] * array.shape[1],
                "transactions_per_sample": transactions / samples,
                "per_sample_api_per_sample": (samples + len(ds.y_test)) / samples,
                "per_synapse_loop_per_sample": instances / samples,
                "trainer_s_per_sample": summary["trainer_time"] / samples,
                "device_s_per_sample": summary["hardware_time"] / samples}


def print_stochastic(results: dict) -> None:
    cols = ["array", "synapses", "transactions/sample", "per-sample API/sample",
            "per-synapse loop/sample", "trainer ms/sample", "device ms/sample", "trainer/device"]
    rows = [cols] + [[name, r["synapses"], f"{r['transactions_per_sample']:.4f}",
                      f"{r['per_sample_api_per_sample']:.4f}",
                      f"{r['per_synapse_loop_per_sample']:.1f}",
                      f"{1e3 * r['trainer_s_per_sample']:.3f}",
                      f"{1e3 * r['device_s_per_sample']:.3f}",
                      f"{r['trainer_s_per_sample'] / r['device_s_per_sample']:.2f}"]
                     for name, r in results.items()]
    print_rows(rows[0], rows[1:], rule=False)


def print_table(results: dict) -> None:
    cols = ["network", "layers", "synapses", "arrays", "transactions/sample",
            "per-device loop/sample", "trainer ms/sample", "device ms/sample", "trainer/device"]
    rows = [cols]
    for name, r in results.items():
        rows.append([name, r["layers"], r["synapses"], r["arrays"],
                     f"{r['transactions_per_sample']:.3f}",
                     f"{r['per_device_loop_per_sample']:.1f}",
                     f"{1e3 * r['trainer_s_per_sample']:.2f}",
                     f"{1e3 * r['device_s_per_sample']:.2f}",
                     f"{r['trainer_s_per_sample'] / r['device_s_per_sample']:.2f}"])
    print_rows(rows[0], rows[1:], rule=False)


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__, quick="fewer samples").parse_args(argv)
    samples, batch = (64, 32) if args.quick else (256, 32)
    results = {name: run(sizes, samples, batch) for name, sizes in NETWORKS.items()}
    print_table(results)
    one_board = [r for r in results.values() if r["arrays"] == 1 and r["layers"] == 1]
    flat = max(r["transactions_per_sample"] for r in one_board) == \
        min(r["transactions_per_sample"] for r in one_board)
    by_layers = [results[n]["transactions_per_sample"] for n in
                 ("16-2", "16-8-2", "16-8-8-2", "16-8-8-8-2")]
    print(f"\none board, one layer: transactions per sample the same for "
          f"{', '.join(str(r['synapses']) for r in one_board)} synapses: "
          f"{'PASS' if flat else 'FAIL'}")
    print(f"layers 1..4 on one board: {', '.join(f'{v:.3f}' for v in by_layers)} transactions "
          "per sample (the layers share the board's transactions)")
    stochastic = {st: run_stochastic(st, samples, batch, 1) for st in SYNAPSE_STATIONS}
    print(f"\ntrain-stochastic (n = 1, batch {batch}, one epoch + one evaluation pass):")
    print_stochastic(stochastic)
    per_sample = [r["transactions_per_sample"] for r in stochastic.values()]
    flat_syn = max(per_sample) == min(per_sample)
    print(f"transactions per sample the same for "
          f"{', '.join(str(r['synapses']) for r in stochastic.values())} synapses: "
          f"{'PASS' if flat_syn else 'FAIL'}")
    flat = flat and flat_syn
    return finish({"bnn": results, "stochastic": stochastic}, args.json, flat)


if __name__ == "__main__":
    raise SystemExit(main())
