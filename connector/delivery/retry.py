"""Pacing and retrying calls to Target: a calls-per-minute limiter and bounded backoff.

Target allows 50 calls a minute per client account, shared with its Admin and Reporting APIs.
A process that runs several syncs (a folder of configs, an orchestrator calling
:func:`connector.sync` in a loop, ``verify`` after a sync) must stay under that together, so
every client of one destination shares one :class:`RateLimiter`: see :func:`shared_limiter`.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TypeVar

from ..errors import TargetRetriableError

log = logging.getLogger(__name__)

T = TypeVar("T")


class RateLimiter:
    """At most ``calls`` calls in any sliding 60-second window (Target allows 50 per minute,
    shared with its Admin and Reporting APIs).

    Callers that share a limiter may each bring their own limit to :meth:`acquire`: a call
    goes ahead only while fewer than that many calls, by anyone, fall in the window. So the
    calls of all sharers together never exceed the largest limit among them, and a caller
    with a lower limit is never paced above it.
    """

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

    def acquire(self, calls_per_minute: int | None = None) -> float:
        """Wait for a free slot under ``calls_per_minute`` (default: the limiter's own
        ``calls``); returns how long it waited."""
        limit = self.calls if calls_per_minute is None else calls_per_minute
        waited = 0.0
        with self._lock:
            while True:
                moment = self._clock()
                while self._stamps and moment - self._stamps[0] >= 60.0:
                    self._stamps.popleft()
                if len(self._stamps) < limit:
                    self._stamps.append(moment)
                    return waited
                # The slot frees when the call `limit` places back leaves the window.
                pause = 60.0 - (moment - self._stamps[len(self._stamps) - limit]) + 0.01
                self._sleep(pause)
                waited += pause


_shared: dict[Hashable, RateLimiter] = {}
_shared_lock = threading.Lock()


def shared_limiter(
    destination: Hashable,
    calls_per_minute: int,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RateLimiter:
    """The one limiter of this process for ``destination`` (created on first use).

    The first caller's ``clock`` and ``sleep`` drive it (tests inject fake ones); every
    caller passes its own limit to :meth:`RateLimiter.acquire`.
    """
    with _shared_lock:
        limiter = _shared.get(destination)
        if limiter is None:
            limiter = _shared[destination] = RateLimiter(calls_per_minute, clock, sleep)
        return limiter


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
                        exc.http_status,
                    ) from None
                # str(exc): a log record holding the exception would keep its frames alive.
                log.warning(
                    "%s: attempt %d failed (%s); retrying in %.2fs", what, attempt, str(exc), wait
                )
                if on_retry is not None:
                    on_retry(what, attempt, str(exc), wait)
                sleep(wait)
                attempt += 1
