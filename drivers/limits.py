"""Per-instance limits on a driver's source setters, checked before a byte is written."""

from __future__ import annotations

import numpy as np


class LimitedControl:
    """Wrap a pymeasure ``Instrument.control`` so its setter also honours narrowed limits.

    The class-level control keeps the instrument's hardware range; a safety layer narrows it for
    one instance by setting ``instrument.<name>_values = [low, high]``. The setter calls
    ``instance.check_levels(name, value)`` first, so an out-of-limit value raises ``ValueError``
    before anything is sent. Unlike pymeasure's ``dynamic=True`` (which makes every *read* look up
    seven per-instance attributes, ~14 µs each time, see benchmarks/), reads here cost what a plain
    control costs.
    """

    def __init__(self, control: property):
        self.control = control
        self.__doc__ = control.__doc__

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        return self.control.__get__(instance, owner)

    def __set__(self, instance, value) -> None:
        instance.check_levels(self.name, value)
        self.control.__set__(instance, value)


class SourceLimits:
    """Mixin for a driver whose source setters are :class:`LimitedControl` s: the hardware range
    of each (``HARDWARE_LIMITS``, property -> [low, high]) and the per-instance narrowed range a
    safety layer sets as ``<prop>_values``."""

    HARDWARE_LIMITS: dict[str, list[float]] = {}
    SOURCE_LIMITS: dict[str, str] = {}

    def present_limits(self, prop: str) -> tuple[float, float]:
        """Return the (low, high) range that source setter ``prop`` accepts now: the hardware
        range, or the one a safety layer set through ``<prop>_values``."""
        if prop not in self.SOURCE_LIMITS:
            raise KeyError(f"{prop!r} is not a source setter of {self.name}")
        low, high = self.__dict__.get(prop + "_values", self.HARDWARE_LIMITS[prop])
        return float(low), float(high)

    def check_levels(self, prop: str, levels) -> None:
        """Raise ValueError naming the first of ``levels`` (as sent, ``%g``) that lies outside the
        present limits of ``prop``; write nothing."""
        low, high = self.present_limits(prop)
        for level in np.atleast_1d(np.asarray(levels, dtype=float)):
            sent = float(f"{level:g}")
            if not (low <= level <= high and low <= sent <= high):
                raise ValueError(
                    f"{self.name}: {prop} value {level:g} is outside the limit "
                    f"[{low:g}, {high:g}]"
                )
