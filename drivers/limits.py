"""Per-instance limits on a driver's source setters, checked before a byte is written."""

from __future__ import annotations


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
