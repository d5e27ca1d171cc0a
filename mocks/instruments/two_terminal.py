"""Driving a generic two-terminal device (``apply``, ``current``, ``voltage_at_current``,
``measure_current``: a model, or a switch matrix's :class:`MatrixTerminal`) from a voltage
source with a current compliance, as an SMU personality does.

The source clamps: with ``|I(V)| > I_lim`` the device sees ``voltage_at_current(±I_lim)``. A
level held for a time is integrated in geometric sub-steps (each twice the previous one),
re-clamping after each, so a device that SETs during the level is caught by the compliance
early rather than after the whole level.
"""

from __future__ import annotations

import math

import numpy as np

SUBSTEPS = 8


def _scalar(values) -> float:
    return float(np.asarray(values).reshape(-1)[0])


def operating_point(device, index: int, level: float, ilim: float) -> tuple[float, float, bool]:
    """(device voltage V, device current A, compliance tripped) at source level ``level`` V."""
    i = _scalar(device.current(level, index))
    if math.isfinite(i) and abs(i) <= ilim:
        return level, i, False
    i = math.copysign(ilim, level if math.isnan(i) else i)
    v = _scalar(device.voltage_at_current(i, index))
    return (v if math.isfinite(v) else 0.0), i, True


def hold(device, index: int, level: float, seconds: float,
         ilim: float) -> tuple[float, float, bool]:
    """Hold ``level`` V for ``seconds`` under compliance ``ilim`` A; the operating point at the
    end and whether the compliance tripped at any sub-step."""
    tripped = False
    if seconds > 0 and level != 0.0:
        weights = 2.0 ** np.arange(SUBSTEPS)
        for dt in seconds * weights / weights.sum():
            v, _, t = operating_point(device, index, level, ilim)
            tripped |= t
            device.apply(v, float(dt), index)
    v, i, t = operating_point(device, index, level, ilim)
    return v, i, tripped or t


def measured(device, index: int, v: float, i: float, tripped: bool) -> float:
    """The current an SMU reads at operating point (v, i): the device's read noise on it,
    except in compliance (the SMU reads its own limit)."""
    if tripped or i == 0.0:
        return i
    noisy = _scalar(device.measure_current(v, index))
    return noisy if math.isfinite(noisy) else i
