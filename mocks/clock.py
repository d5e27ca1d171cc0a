"""Virtual clock: mocks account the time a real instrument would take instead of sleeping."""

from __future__ import annotations

import threading


class VirtualClock:
    """Monotonic simulated time in seconds, shared by every instrument of a bench.

    Personalities call :meth:`advance` with the duration of what they simulate (integration,
    source delay, pulse width, settling). Nothing sleeps; a run reads :attr:`now` to report the
    hardware time it would have taken.
    """

    def __init__(self, start: float = 0.0):
        self._now = float(start)
        self._lock = threading.Lock()

    @property
    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` (>= 0); return the new time."""
        if seconds < 0:
            raise ValueError(f"virtual time cannot go backwards (advance by {seconds} s)")
        with self._lock:
            self._now += seconds
            return self._now
