"""Spike detection, spiking features and behaviour classification for neuron waveforms.

A relaxation neuron's spike is the fast discharge of its capacitor through the device: the node
voltage falls by ``fall_min`` volts or more within ``fall_window`` seconds. The leak between
input pulses and the slow charging are orders of magnitude slower, and a drop measured over a
window of many samples averages the scope noise down (σ·√2 over the window instead of per
sample), so this criterion separates spikes from both without knowing the device's threshold.

Behaviours (Drouhin et al., arXiv 2209.00413; PHYSICS.md §4) and the features that name them:

==========================  =================================================================
tonic spiking               step responses that keep spiking to the end of the step, regular
                            (ISI CV2 < ``CV_IRREGULAR``), rate rising with the input
phasic bursting             a step response with ≥ 3 spikes that then falls silent for the
                            rest of the step (silence > ``BURST_SILENCE`` of the step and
                            > 5 mean ISIs)
stochastic spiking          interspike intervals with CV2 ≥ ``CV_IRREGULAR`` (≥ 10 spikes)
spike latency               first-spike latency falling with the step amplitude, by a factor
                            ≥ ``LATENCY_RATIO`` over the sweep
leaky integrate-and-fire    one sub-threshold pulse does not fire, a train does (after ≥ 2
                            pulses), and the node decays between pulses (finite leak time)
temporal integration        pulses-to-fire rising with the inter-pulse interval (or no firing
                            at the longest)
==========================  =================================================================
"""

from __future__ import annotations

import math

import numpy as np

CV_IRREGULAR = 0.3
BURST_SILENCE = 0.25
LATENCY_RATIO = 2.0

TONIC, PHASIC, STOCHASTIC = "tonic spiking", "phasic bursting", "stochastic spiking"
LATENCY, LIF, INTEGRATION = "spike latency", "leaky integrate-and-fire", "temporal integration"
SILENT, UNCLASSIFIED = "silent", "unclassified"


def spike_times(t: np.ndarray, v: np.ndarray, fall_min: float = 0.08,
                fall_window: float = 1e-6) -> np.ndarray:
    """Times (s) where the node voltage starts a fall of at least ``fall_min`` V within
    ``fall_window`` s; falls closer than ``fall_window`` merge into one spike."""
    t, v = np.asarray(t, float), np.asarray(v, float)
    if t.size < 3:
        return np.empty(0)
    dt = (t[-1] - t[0]) / (t.size - 1)
    lag = max(1, int(round(fall_window / dt)))
    if lag >= t.size:
        return np.empty(0)
    falling = (v[lag:] - v[:-lag]) <= -fall_min
    starts = np.flatnonzero(falling & ~np.concatenate([[False], falling[:-1]]))
    times = t[starts]
    if times.size:
        keep = np.concatenate([[True], np.diff(times) > fall_window])
        times = times[keep]
    return times


def isi_stats(times: np.ndarray) -> tuple[float, float]:
    """(mean interspike interval in s, coefficient of variation); NaN with < 3 spikes."""
    isi = np.diff(np.asarray(times, float))
    if isi.size < 2:
        return math.nan, math.nan
    return float(isi.mean()), float(isi.std(ddof=1) / isi.mean())


def local_variation(times: np.ndarray) -> float:
    """CV2 (Holt et al., J. Neurophysiol. 75, 1806 (1996)): the mean of 2·|I₂ − I₁|/(I₂ + I₁)
    over successive interspike intervals: ≈ 0 for a regular train, ≈ 1 for a Poisson one, and
    insensitive to a slow drift of the rate (adaptation) that inflates the plain CV. NaN with
    < 3 intervals."""
    isi = np.diff(np.asarray(times, float))
    if isi.size < 3:
        return math.nan
    return float(np.mean(2 * np.abs(np.diff(isi)) / (isi[1:] + isi[:-1])))


def step_features(times: np.ndarray, duration: float) -> dict[str, float]:
    """Features of the response to a step of ``duration`` s starting at t = 0."""
    times = np.asarray(times, float)
    times = times[(times >= 0) & (times <= duration)]
    mean_isi, cv = isi_stats(times)
    n = int(times.size)
    return {
        "spikes": n,
        "rate": n / duration,
        "latency": float(times[0]) if n else math.nan,
        "isi_mean": mean_isi,
        "isi_cv": cv,
        "isi_cv2": local_variation(times),
        "last_spike": float(times[-1]) if n else math.nan,
        "silence": duration - float(times[-1]) if n else duration,
    }


def classify_step(f: dict[str, float], duration: float) -> str:
    """Name one step response from :func:`step_features`."""
    n = f["spikes"]
    if n == 0:
        return SILENT
    if n >= 3 and f["silence"] > max(BURST_SILENCE * duration, 5 * f["isi_mean"]):
        return PHASIC
    if n >= 4 and f["isi_cv2"] >= CV_IRREGULAR:
        return STOCHASTIC
    if n >= 3:
        return TONIC
    return UNCLASSIFIED


def pulses_to_fire(times: np.ndarray, interval: float, n_pulses: int) -> float:
    """Index (1-based) of the pulse after whose onset the first spike falls; inf if none."""
    times = np.asarray(times, float)
    times = times[(times >= 0) & (times < n_pulses * interval)]
    if not times.size:
        return math.inf
    return float(math.floor(times[0] / interval) + 1)


def leak_time(t: np.ndarray, v: np.ndarray, width: float, interval: float) -> float:
    """Leak time constant (s) from the node's decay between the end of the first pulse and the
    start of the second: V(end) / V(next onset) = exp(gap / τ); NaN if it does not decay."""
    t, v = np.asarray(t, float), np.asarray(v, float)
    dt = (t[-1] - t[0]) / (t.size - 1)
    window = max(1, int(round(0.02 * interval / dt)))

    def level(at: float) -> float:
        k = int(np.searchsorted(t, at))
        return float(np.mean(v[max(0, k - window):k])) if k > 0 else math.nan

    after, before = level(width + 0.02 * interval), level(interval)
    if not (after > before > 0):
        return math.nan
    return (interval - width - 0.02 * interval) / math.log(after / before)


def classify_sweep(mode: str, rows: list[dict]) -> str:
    """The behaviour a whole sweep shows; ``rows`` are the per-point features so far."""
    if not rows:
        return UNCLASSIFIED
    if mode == "rate":
        tonic = [r for r in rows if r["class"] == TONIC]
        rates = [r["rate"] for r in tonic]
        if len(tonic) >= 2 and all(b >= a for a, b in zip(rates, rates[1:])) and \
                rates[-1] > rates[0]:
            return TONIC
    elif mode == "latency":
        lat = [r["latency"] for r in rows if math.isfinite(r["latency"])]
        if len(lat) >= 3 and all(b < a for a, b in zip(lat, lat[1:])) and \
                lat[0] >= LATENCY_RATIO * lat[-1]:
            return LATENCY
    elif mode == "burst":
        if any(r["class"] == PHASIC for r in rows):
            return PHASIC
    elif mode == "isi":
        cv2 = [r["isi_cv2"] for r in rows if math.isfinite(r["isi_cv2"])]
        if sum(r["spikes"] for r in rows) >= 10 and cv2 and np.mean(cv2) >= CV_IRREGULAR:
            return STOCHASTIC
    elif mode == "lif":
        r = rows[0]
        if 2 <= r["pulses_to_fire"] < math.inf and math.isfinite(r["leak"]) and r["leak"] > 0:
            return LIF
    elif mode == "integration":
        ptf = [r["pulses_to_fire"] for r in rows]
        if len(ptf) >= 2 and ptf[0] < math.inf and all(b >= a for a, b in zip(ptf, ptf[1:])) \
                and ptf[-1] > ptf[0]:
            return INTEGRATION
    return UNCLASSIFIED
