"""Pacing and retrying calls to Target: a calls-per-minute limiter and bounded backoff."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from .errors import TargetRetriableError

log = logging.getLogger(__name__)

T = TypeVar("T")


class RateLimiter:
    """At most ``calls`` calls in any sliding 60-second window (Target allows 50 per minute,
    shared with its Admin and Reporting APIs)."""

    def __init__(
        self,
        calls_per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.calls = calls_per_minute
        self._clock = clock
        self._sleep = sleep
        self._stamps: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for a free slot; returns how long it waited."""
        waited = 0.0
        with self._lock:
            while True:
                moment = self._clock()
                while self._stamps and moment - self._stamps[0] >= 60.0:
                    self._stamps.popleft()
                if len(self._stamps) < self.calls:
                    self._stamps.append(moment)
                    return waited
                pause = 60.0 - (moment - self._stamps[0]) + 0.01
                self._sleep(pause)
                waited += pause


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded in attempts and in total time.

    The wait before attempt ``n + 1`` is drawn from ``[c / 2, c]`` with
    ``c = min(cap_seconds, base_seconds * 2 ** (n - 1))``; a ``Retry-After`` sent with the
    failure replaces it. The policy gives up, without waiting, when ``max_attempts`` calls
    have failed or when the next wait would end after ``max_seconds`` since the first call.
    """

    max_attempts: int = 8
    max_seconds: float = 900.0
    base_seconds: float = 1.0
    cap_seconds: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before attempt ``attempt + 1``; ``Retry-After`` wins when given."""
        if retry_after is not None:
            return max(0.0, retry_after)
        ceiling = min(self.cap_seconds, self.base_seconds * (2 ** min(attempt - 1, 62)))
        return random.uniform(ceiling / 2, ceiling)

    def run(
        self,
        call: Callable[[], T],
        what: str,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        on_retry: Callable[[str, int, str, float], None] | None = None,
    ) -> T:
        """Call until it succeeds, raises a non-retriable error, or the budget runs out.

        Every retry is logged (a warning naming ``what``, the attempt and the reason) and
        reported to ``on_retry(what, attempt, reason, wait_seconds)``.
        """
        started = clock()
        attempt = 1
        while True:
            try:
                return call()
            except TargetRetriableError as exc:
                wait = self.delay(attempt, exc.retry_after)
                spent = clock() - started
                budget = None
                if attempt >= self.max_attempts:
                    budget = f"max_attempts={self.max_attempts} reached"
                elif spent + wait > self.max_seconds:
                    asked = " (Retry-After)" if exc.retry_after is not None else ""
                    budget = (
                        f"waiting {wait:.1f}s more{asked} would pass "
                        f"max_retry_seconds={self.max_seconds:g}"
                    )
                if budget is not None:
                    raise TargetRetriableError(
                        f"{what} failed after {attempt} attempt(s) in {spent:.1f}s; "
                        f"last error: {exc}; gave up: {budget}",
                        exc.retry_after,
                    ) from None
                # str(exc): a log record holding the exception would keep its frames alive.
                log.warning(
                    "%s: attempt %d failed (%s); retrying in %.2fs", what, attempt, str(exc), wait
                )
                if on_retry is not None:
                    on_retry(what, attempt, str(exc), wait)
                sleep(wait)
                attempt += 1
