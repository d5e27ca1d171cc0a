"""Switching statistics (Wilson intervals, adaptive sampling) and the fits' coverage on benches
with hidden device parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom

from labctl import switching
from mocks.bench import Bench
from mocks.devices.stochastic import MTJArray, MTJParams
from procedures.switching_probability import SwitchingProbability


def test_wilson_interval_known_values():
    lo, hi = switching.wilson(np.array([0, 5, 10]), np.array([10, 10, 10]))
    # textbook values (Wilson 1927; Agresti & Coull 1998) for n = 10 at 95 %
    assert lo == pytest.approx([0.0, 0.2366, 0.7225], abs=1e-4)
    assert hi == pytest.approx([0.2775, 0.7634, 1.0], abs=1e-4)
    lo, hi = switching.wilson(3, 0)
    assert math.isnan(lo) and math.isnan(hi)


def test_transition_points_and_refinement():
    k = np.array([0, 0, 5, 50, 95, 100, 100])
    n = np.full(7, 100)
    mask = switching.transition_points(k, n)
    assert mask.tolist() == [False, False, True, True, True, False, False]
    amps = np.arange(7.0)
    new = switching.refine_amplitudes(amps, mask, 5)
    # five evenly over [1, 5] (the transition widened by a step), minus 3.0 already measured
    assert new.tolist() == pytest.approx([5 / 3, 7 / 3, 11 / 3, 13 / 3])
    assert switching.refine_amplitudes(amps, np.zeros(7, bool), 5).size == 0


def test_adaptive_sampling_spends_trials_in_the_transition():
    calls = []

    def counter(amps, n):
        calls.append((amps.copy(), n))
        p = 1 / (1 + np.exp(-(amps - 5.0) * 3))
        return np.round(p * n).astype(int), np.full(amps.size, n)

    curve = switching.measure_curve(counter, 1e-4, np.linspace(2, 8, 7), 100, 300, 3)
    assert len(calls) == 2  # one instrument list per stage
    second = calls[1][0]
    assert second.min() >= 4.0 and second.max() <= 6.0  # only where 0.1 < P < 0.9
    assert curve.trials[curve.amplitude == 2.0] == 100
    assert curve.trials[curve.amplitude == 5.0] == 400
    assert np.all(np.diff(curve.amplitude) > 0)


# ------------------------------------------------------------------ coverage on benches
# The check: fitted parameters inside their reported 95 % intervals for >= 90 % of
# seeds. With correct intervals the number of covering seeds out of S is Binomial(S, 0.95).
# S = 100 and a pass mark of 90: a correct fit fails with P(Bin(100, .95) < 90) = 1.1 %, a fit
# whose intervals really cover only 80 % passes with P(Bin(100, .80) >= 90) = 0.6 % (power 99 %).
SEEDS = 100
PASS = 90


def test_pass_mark_is_what_the_comment_says():
    assert binom.cdf(PASS - 1, SEEDS, 0.95) == pytest.approx(0.0115, abs=5e-4)
    assert binom.sf(PASS - 1, SEEDS, 0.80) == pytest.approx(0.0057, abs=5e-4)


def _coverage(bench: str, device: str, m, widths, amplitudes, trials, adaptive, refine):
    """Per parameter: seeds whose fitted 95 % interval holds the device's hidden value. Trials
    are drawn by the bench's device exactly as the procedure samples them (same adaptive plan,
    iid trials counted as Binomial draws)."""
    hits = dict.fromkeys(m.parameters, 0)
    for seed in range(SEEDS):
        dev = Bench.load(bench, seed=seed).devices[device]

        def counter(amps, n, width, dev=dev):
            idx = np.zeros(amps.size, dtype=int)
            return dev.switch_counts(amps, width, n, index=idx), np.full(amps.size, n)

        curves = [switching.measure_curve(lambda a, n, w=w: counter(a, n, w), w, amplitudes,
                                          trials, adaptive, refine) for w in widths]
        fit = switching.fit_curves(m, curves)
        truth = dev.hidden(0)
        for name, key in zip(m.parameters, truth, strict=True):
            lo, hi = fit.interval(name)
            hits[name] += bool(lo <= float(truth[key]) <= hi)
    return hits


def test_dw_sigmoid_fit_covers_hidden_x0_dx_a():
    """With the procedure's default plan: the floor 1 − a ≈ 0.02 needs the low amplitudes
    (1 to 3.3 V) sampled well, or the symmetric interval of a under-covers (Wald, few events)."""
    p = SwitchingProbability()
    hits = _coverage("dw-synapse", "syn", switching.model("dw-sigmoid"), [1e-4],
                     p.amplitudes(), p.trials, p.adaptive_trials, p.refine)
    assert all(h >= PASS for h in hits.values()), hits


def test_mtj_neel_brown_fit_covers_hidden_delta_and_ic0():
    hits = _coverage("mtj", "mtj", switching.model("mtj-neel-brown", 1e-9, 1.0),
                     [1e-5, 1e-4, 1e-3, 1e-2], np.linspace(30e-6, 100e-6, 10), 100, 200, 3)
    assert all(h >= PASS for h in hits.values()), hits


def test_depinning_fit_covers_hidden_barrier_and_current():
    hits = _coverage("dw-depinning", "track", switching.model("dw-depinning", 1e-9, 1.0),
                     [1e-5, 1e-3, 1e-1], np.linspace(50e-6, 220e-6, 10), 100, 200, 3)
    assert all(h >= PASS for h in hits.values()), hits


def test_fit_needs_enough_points():
    with pytest.raises(ValueError, match="need at least 4"):
        switching.fit_model(switching.model("dw-sigmoid"), [1.0, 2.0], [1e-4] * 2, [0, 1],
                            [10, 10])
    with pytest.raises(ValueError, match="unknown switching model"):
        switching.model("sigmoid")


def test_mtj_fit_with_beta_2_covers_hidden_delta_and_ic0():
    """β = 2 (arXiv 1204.1190): the same coverage check on junctions built with β = 2 and
    fitted with β = 2 (the device's own spread of Δ and I_c0, seeds 0..99)."""
    m = switching.model("mtj-neel-brown", 1e-9, 2.0)
    hits = dict.fromkeys(m.parameters, 0)
    for seed in range(SEEDS):
        dev = MTJArray(1, MTJParams(beta=2.0), np.random.default_rng(seed))

        def counter(amps, n, width, dev=dev):
            return dev.switch_counts(amps, width, n, index=np.zeros(amps.size, dtype=int)), \
                np.full(amps.size, n)

        curves = [switching.measure_curve(lambda a, n, w=w: counter(a, n, w), w,
                                          np.linspace(20e-6, 80e-6, 10), 100, 200, 3)
                  for w in (1e-5, 1e-4, 1e-3, 1e-2)]
        fit = switching.fit_curves(m, curves)
        for name, value in dev.hidden(0).items():
            lo, hi = fit.interval(name)
            hits[name] += bool(lo <= float(value) <= hi)
    assert all(h >= PASS for h in hits.values()), hits
