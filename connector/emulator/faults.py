"""Fault injection for the Target emulator: the switches, and the decisions they make.

A :class:`Faults` object is plain mutable data. The emulator reads and updates it (counters such
as ``fail_next`` count down) only while holding its own lock, so a test may flip a field between
two calls from any thread. Everything is off by default: a fresh ``Faults()`` makes the emulator
behave like a healthy Target. The functions below are the decisions, made from a ``Faults``, a
:class:`SeededRandom` and a :class:`RateWindow`; the caller holds the emulator's lock.

Order in which the emulator applies the switches to an upload call:

1. ``rate_limit_per_minute`` (HTTP 503), then ``required_token`` (HTTP 401): :func:`gate`;
2. the request body is read in full;
3. ``drop_next`` / ``drop_fraction``: the connection is closed without an answer, nothing applied;
4. ``fail_next`` / ``fail_fraction``: HTTP ``fail_status`` (+ ``Retry-After``), nothing applied;
5. ``reject_next``: HTTP 200 ``success=false`` with ``reject_message``, nothing applied
   (3 to 5: :func:`upload_fault`);
6. the batch is parsed; a valid one is accepted, then ``stuck_next`` (not applied) or applied
   minus the rows in ``failed_ids`` and minus the rows ``lose_fraction`` loses (those are
   reported successful: Target's documented silent loss): :func:`batch_fate`;
   ``incomplete_polls`` is captured for the new batch;
7. ``delay_seconds``: the answer is held back (the batch was already applied, as when a real
   answer is lost to a client timeout).

Status calls and profile reads are subject to ``rate_limit_per_minute`` and ``required_token``
only; ``status_retention`` decides which batch ids the status call still knows.
"""

from __future__ import annotations

import dataclasses
import hmac
import random
import time
from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "BatchFate",
    "Faults",
    "RateWindow",
    "SeededRandom",
    "batch_fate",
    "gate",
    "upload_fault",
]


@dataclass
class Faults:
    """Fault switches of one emulator; every field is off by default.

    Attributes:
        fail_fraction: fraction (0..1) of upload calls answered with ``fail_status``.
        fail_status: HTTP status of injected failures (503 by default; 429, 500, ... work too).
        retry_after: seconds sent as ``Retry-After`` with injected failures and rate-limit
            answers; ``None`` sends no header.
        fail_next: the next N upload calls are answered with ``fail_status``.
        drop_fraction: fraction of upload calls whose connection is closed without an answer
            (after the body was read; the upload is not applied).
        drop_next: the next N upload calls are dropped that way.
        delay_seconds: sleep this long before answering each upload.
        reject_next: the next N upload calls get HTTP 200 ``success=false``.
        reject_message: the ``<message>`` of those rejections.
        stuck_next: the next N accepted batches end ``stuck`` and are not applied.
        incomplete_polls: each new batch reports ``incomplete`` for its first N status polls.
        failed_ids: rows with these ids are reported failed and not applied.
        lose_fraction: fraction (0..1) of the rows of accepted batches that are silently lost:
            counted and reported as successful updates, but not applied (Adobe documents
            that up to 0.1% of a large batch may be lost). Which rows is drawn per row from
            the seeded generator, so a seed gives the same losses.
        required_token: when set, API calls need ``Authorization: Bearer <token>``.
        rate_limit_per_minute: at most N API calls (uploads, status, profile reads) in any
            sliding 60 s window; calls above it get HTTP 503 and do not count.
        status_retention: the status call only knows the last N batches.
        seed: seed of the random generator behind the fractions (reproducible tests).
    """

    fail_fraction: float = 0.0
    fail_status: int = 503
    retry_after: float | None = None
    fail_next: int = 0
    drop_fraction: float = 0.0
    drop_next: int = 0
    delay_seconds: float = 0.0
    reject_next: int = 0
    reject_message: str = "Batch rejected (emulator fault injection)"
    stuck_next: int = 0
    incomplete_polls: int = 0
    failed_ids: set[str] = field(default_factory=set)
    lose_fraction: float = 0.0
    required_token: str | None = field(default=None, repr=False)  # a secret: keep out of reprs
    rate_limit_per_minute: int | None = None
    status_retention: int | None = None
    seed: int = 0

    def update(self, changes: Mapping[str, Any]) -> None:
        """Set fields from a JSON-like mapping (sets may be given as lists).

        The whole mapping is validated before any field changes, so a bad request leaves the
        faults as they were.

        Raises:
            ValueError: an unknown field name or a value of the wrong type.
        """
        known = {f.name: f for f in dataclasses.fields(self)}
        converted: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown fault field {name!r}; known: {', '.join(sorted(known))}")
            converted[name] = _convert(name, value)
        for name, value in converted.items():
            setattr(self, name, value)

    def reset(self) -> None:
        """Turn every switch off again, in place (references to this object stay valid)."""
        for f in dataclasses.fields(self):
            default = (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            )
            setattr(self, f.name, default)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of the switches; the token is masked."""
        data = dataclasses.asdict(self)
        data["failed_ids"] = sorted(self.failed_ids)
        data["required_token"] = "***" if self.required_token is not None else None
        return data


_FLOATS = {"fail_fraction", "drop_fraction", "lose_fraction", "delay_seconds"}
_INTS = {
    "fail_status",
    "fail_next",
    "drop_next",
    "reject_next",
    "stuck_next",
    "incomplete_polls",
    "seed",
}
_OPTIONAL_INTS = {"rate_limit_per_minute", "status_retention"}


def _convert(name: str, value: Any) -> Any:
    """Check and convert one JSON value for field ``name``."""

    def bad(expected: str) -> ValueError:
        return ValueError(f"fault field {name!r} must be {expected}, got {value!r}")

    # bool is an int subclass in Python: never accept true/false for a number.
    is_int = isinstance(value, int) and not isinstance(value, bool)
    is_number = is_int or isinstance(value, float)
    if name in _FLOATS:
        if not is_number or value < 0:
            raise bad("a non-negative number")
        if name.endswith("fraction") and value > 1:
            raise bad("a fraction between 0 and 1")
        return float(value)
    if name in _INTS:
        if not is_int or (name != "seed" and value < 0):
            raise bad("a non-negative integer")
        return value
    if name in _OPTIONAL_INTS:
        if value is not None and (not is_int or value < 0):
            raise bad("null or a non-negative integer")
        return value
    if name == "retry_after":
        if value is not None and (not is_number or value < 0):
            raise bad("null or a non-negative number")
        return None if value is None else float(value)
    if name == "reject_message":
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if name == "required_token":
        if value is not None and (not isinstance(value, str) or not value):
            raise bad("null or a non-empty string")
        return value
    if name == "failed_ids":
        if not isinstance(value, list | set | tuple) or not all(isinstance(v, str) for v in value):
            raise bad("a list of strings")
        return set(value)
    raise AssertionError(f"unhandled fault field {name}")  # pragma: no cover


# -- decisions ---------------------------------------------------------------------------------


class SeededRandom:
    """The random draws behind the fractions, reproducible from ``Faults.seed``."""

    def __init__(self, seed: int) -> None:
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        """Start over from ``seed``."""
        self._seed = seed
        self._rng = random.Random(seed)

    def draw(self, faults: Faults) -> float:
        """The next number in [0, 1); reseeds first when a test changed ``faults.seed``, so a
        seed set at any time gives the same draws from then on."""
        if faults.seed != self._seed:
            self.reseed(faults.seed)
        return self._rng.random()


class RateWindow:
    """The API calls let through in the last 60 seconds (for ``rate_limit_per_minute``)."""

    def __init__(self) -> None:
        self._times: deque[float] = deque()

    def clear(self) -> None:
        """Forget every call."""
        self._times.clear()

    def admit(self, limit: int | None) -> bool:
        """Count one call unless ``limit`` calls were let through in the last 60 s (then it is
        refused and not counted). Without a limit every call is admitted, and none counted."""
        if limit is None:
            return True
        now = time.monotonic()
        while self._times and now - self._times[0] >= 60.0:
            self._times.popleft()
        if len(self._times) >= limit:
            return False
        self._times.append(now)
        return True


def gate(
    faults: Faults, window: RateWindow, authorization: str
) -> Literal["rate_limited", "unauthorized"] | None:
    """Whether an API call is refused: over the rate limit, or without the required token."""
    if not window.admit(faults.rate_limit_per_minute):
        return "rate_limited"
    token = faults.required_token
    if token is not None and not hmac.compare_digest(
        authorization.encode("utf-8"), f"Bearer {token}".encode()
    ):
        return "unauthorized"
    return None


def upload_fault(faults: Faults, rng: SeededRandom) -> Literal["drop", "fail", "reject"] | None:
    """The injected fault that answers this upload instead of Target, if any (counts down the
    ``*_next`` switch it used)."""
    if faults.drop_next > 0:
        faults.drop_next -= 1
        return "drop"
    if faults.drop_fraction > 0 and rng.draw(faults) < faults.drop_fraction:
        return "drop"
    if faults.fail_next > 0:
        faults.fail_next -= 1
        return "fail"
    if faults.fail_fraction > 0 and rng.draw(faults) < faults.fail_fraction:
        return "fail"
    if faults.reject_next > 0:
        faults.reject_next -= 1
        return "reject"
    return None


@dataclass(frozen=True)
class BatchFate:
    """What the faults do to an accepted batch.

    Attributes:
        stuck: the batch ends ``stuck`` and nothing of it is applied.
        failed_ids: ids reported failed and not applied (``failed_ids``).
        lost_ids: ids reported successful but not applied (``lose_fraction``); none when stuck.
    """

    stuck: bool
    failed_ids: list[str]
    lost_ids: list[str]


def batch_fate(faults: Faults, rng: SeededRandom, ids: Collection[str]) -> BatchFate:
    """Decide the fate of an accepted batch whose rows apply to ``ids`` (in batch order);
    counts down ``stuck_next``."""
    stuck = faults.stuck_next > 0
    if stuck:
        faults.stuck_next -= 1
    failed = [pid for pid in ids if pid in faults.failed_ids] if faults.failed_ids else []
    lost: list[str] = []
    if not stuck and faults.lose_fraction > 0:
        skip = set(failed)
        lost = [pid for pid in ids if pid not in skip and rng.draw(faults) < faults.lose_fraction]
    return BatchFate(stuck=stuck, failed_ids=failed, lost_ids=lost)
