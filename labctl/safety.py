"""The chip's safe operating area, enforced on every driver's source setters.

Drivers declare which properties source something in ``SOURCE_LIMITS`` (property name ->
quantity: ``"voltage"``, ``"current"`` or ``"pulse_width"``), each honouring a per-instance
``<prop>_values`` range (see ``drivers.limits.LimitedControl``). :func:`apply_limits` narrows that
range to the station's limit, so an out-of-limit value raises before a byte is written, whichever
path (procedure, GUI, script) set it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

QUANTITIES = ("voltage", "current", "pulse_width")
UNITS = {"voltage": "V", "current": "A", "pulse_width": "s"}


@dataclass(frozen=True)
class Limits:
    """Absolute limits of the device under test: |V| (V), |I| (A), pulse width (s)."""

    voltage: float
    current: float
    pulse_width: float | None = None

    def of(self, quantity: str) -> float | None:
        return getattr(self, quantity)

    def check(self, quantity: str, value: float, what: str) -> str | None:
        """A problem line if ``value`` (of ``quantity``) exceeds the limit, else None."""
        limit = self.of(quantity)
        if not math.isfinite(value):
            return f"{what} = {value} is not a finite number"
        if limit is not None and abs(value) > limit:
            unit = UNITS[quantity]
            return f"{what} = {value:g} {unit} exceeds the chip's {quantity} limit {limit:g} {unit}"
        return None


def narrowed(values, limit: float) -> list[float]:
    """Intersect a validator range [lo, hi] with [-limit, limit]."""
    lo, hi = float(values[0]), float(values[1])
    new_lo, new_hi = max(lo, -limit), min(hi, limit)
    if new_lo > new_hi:
        raise ValueError(f"limit {limit:g} leaves no valid range inside [{lo:g}, {hi:g}]")
    return [new_lo, new_hi]


def apply_limits(instrument, limits: Limits) -> dict[str, list[float]]:
    """Narrow every limited source property of ``instrument``; return what was set."""
    applied = {}
    for prop, quantity in getattr(type(instrument), "SOURCE_LIMITS", {}).items():
        limit = limits.of(quantity)
        if limit is None:
            continue
        present = getattr(instrument, "present_limits", None)
        current = present(prop) if present else getattr(instrument, f"{prop}_values")
        values = narrowed(current, limit)
        setattr(instrument, f"{prop}_values", values)
        applied[prop] = values
    return applied
