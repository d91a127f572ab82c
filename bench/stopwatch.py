"""Seconds per step of a benchmark run, as the runner reports them."""

from __future__ import annotations

import time


class Stopwatch:
    """``lap(step)`` records the seconds since the previous lap (or since creation)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._clock = time.perf_counter()

    def lap(self, step: str) -> None:
        """Record ``step`` as taking the time since the last lap."""
        now = time.perf_counter()
        self.seconds[step] = round(now - self._clock, 3)
        self._clock = now
