"""What the delivery stages share while a run sends: its store, its events, and the report
they fill in (folded into the run's result once, at the end)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import SyncConfig
    from ..state import StateStore


@dataclass
class DeliveryReport:
    """What delivery did: batches sent (or written), rows that went, and what Target said."""

    batches: int = 0
    bytes_sent: int = 0
    sent: int = 0
    removed_sent: int = 0
    failed: int = 0  # rows of this run's batches Target failed, or whose batch was lost
    not_found: int = 0  # API v1: rows of this run's batches whose profile Target lacks
    pending_batches: int = 0
    resolved_from_earlier: dict[str, int] = field(default_factory=dict)
    batch_files: list[str] = field(default_factory=list)
    batch_ids: list[str] = field(default_factory=list)


@dataclass
class Session:
    """One run's delivery: where it records, whom it tells, and what it did so far."""

    config: SyncConfig
    store: StateStore
    run_id: str
    binding: str
    emit: Callable[..., None]
    report: DeliveryReport = field(default_factory=DeliveryReport)

    def publish(self, **extra: Any) -> None:
        """Show ``status`` the counts so far."""
        r = self.report
        self.store.publish_progress(
            run_id=self.run_id,
            batches=r.batches,
            sent=r.sent,
            removed_sent=r.removed_sent,
            failed=r.failed,
            **extra,
        )
