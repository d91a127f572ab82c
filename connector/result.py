"""What a run produces: the result object, its events, and its exit code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3


@dataclass(frozen=True)
class Event:
    """Something a run did, for progress displays and structured logs."""

    name: str
    sync: str
    fields: dict[str, Any]


Listener = Callable[[Event], None]


@dataclass
class SyncResult:
    """Everything a run's summary shows; returned by :func:`connector.sync`."""

    sync: str
    run_id: str
    dry_run: bool
    outcome: str = "running"  # delivered | partial | failed | nothing_to_do | dry_run
    exit_code: int = EXIT_OK
    message: str = ""
    rows_read: int = 0
    new: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    removed_sent: int = 0
    batches: int = 0
    bytes_sent: int = 0
    failed: int = 0
    pending_batches: int = 0
    resolved_from_earlier: dict[str, int] = field(default_factory=dict)
    stale_nulls: dict[str, int] = field(default_factory=dict)
    full_resend_reason: str | None = None
    batch_files: list[str] = field(default_factory=list)
    batch_ids: list[str] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form of the result (also stored in the run history)."""
        data = asdict(self)
        data["rejected_total"] = self.rejected_total
        return data
