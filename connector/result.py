"""What a run produces: the result object, its events, and its exit code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from .text import by_reason

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3


def exit_severity(code: int) -> int:
    """How bad an exit code is, for picking the worst of several runs.

    0 < 3 (some rows rejected or failed) < 1 (a run failed) < 2 (usage or config error);
    any other code (130 after an interrupt) counts as a failure.
    """
    return {EXIT_OK: 0, EXIT_PARTIAL: 1, EXIT_FAILED: 2, EXIT_USAGE: 3}.get(code, 2)


@dataclass(frozen=True)
class Event:
    """Something a run did, for progress displays and structured logs.

    Names and their fields (all JSON-able)::

        run_start        run_id, dry_run
        read_progress    rows                      (while the source streams; not logged)
        stage_done       stage, seconds, and the stage's counts
                         (read: rows, rejected; diff: new, changed, retried, removed,
                          unchanged, unrecorded; upload: batches, bytes; status: failed,
                          pending; resolve_pending: complete, reverted_rows, not_found,
                          still_pending)
        pending_found    batches                   (an earlier run left batches unconfirmed)
        backpressure     in_flight, limit          (waiting for Target before the next upload)
        upload_start     rows                      (profiles about to be sent or written)
        batch_uploaded   seq, kind, batch_id, rows, bytes, http_status, attempts, retries,
                         elapsed
        batch_written    seq, kind, rows, bytes    (dry run)
        retry            what, attempt, reason, wait_seconds
        status_start     batches
        batch_status     batch_id, kind, state, failed, not_found, reverted, counters
        run_end          everything in SyncResult.to_dict()
        notify_sent      sent, reasons, http_status, webhook_host
        notify_failed    sent, reasons, error, webhook_host

    The CLI's JSON log (README, "JSON logs") writes each of these but ``read_progress`` as
    one object, and adds ``syncs_done``, ``warning``, ``error`` and ``log`` lines.
    """

    name: str
    sync: str
    fields: dict[str, Any]


Listener = Callable[[Event], None]

# Events that only drive progress displays; structured logs leave them out.
PROGRESS_ONLY = frozenset({"read_progress"})


@dataclass
class SyncResult:
    """Everything a run's summary shows; returned by :func:`connector.sync`."""

    sync: str
    run_id: str
    dry_run: bool
    # delivered | partial | failed | interrupted | nothing_to_do | dry_run
    outcome: str = "running"
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
    not_found: int = 0
    retried: int = 0
    pending_batches: int = 0
    resolved_from_earlier: dict[str, int] = field(default_factory=dict)
    stale_nulls: dict[str, int] = field(default_factory=dict)
    full_resend_reason: str | None = None
    batch_files: list[str] = field(default_factory=list)
    batch_ids: list[str] = field(default_factory=list)
    # Stored attribute values forgotten by this run (state.keep_values: false).
    values_dropped: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    started_at: str = ""  # ISO 8601, UTC
    duration_seconds: float = 0.0

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def next_step(self) -> str:
        """What happens next, in one sentence (the last line of the summary)."""
        if self.outcome == "failed":
            return (
                "the snapshot holds only what Target accepted; fix the cause above and rerun "
                "(rerunning is safe)"
            )
        if self.outcome == "interrupted":
            return (
                "the batches Target accepted stay committed; the next run checks the pending "
                "ones and sends everything else (rerunning is safe)"
            )
        if self.outcome == "dry_run":
            return "nothing was sent and the snapshot is unchanged; run without --dry-run to send"
        notes = []
        if self.rejected:
            notes.append(
                "rejected rows are retried by the next run once the data is fixed "
                "('target-sync status' lists them)"
            )
        if self.failed:
            notes.append("the next run resends the profiles Target reported failed")
        if self.not_found:
            notes.append(
                "the next run resends the batches whose profiles Target did not find (v1 "
                "updates existing profiles only and does not say which)"
            )
        if self.pending_batches:
            notes.append("the next run first checks the batches Target is still processing")
        if self.stale_nulls:
            notes.append(
                "values that turned NULL keep their old value in Target; give those "
                "attributes a 'null:' replacement to overwrite them"
            )
        if notes:
            return "; ".join(notes)
        if self.outcome == "nothing_to_do":
            return "Target is up to date; the next run sends only what changes"
        return "all delivered; the next run sends only what changes"

    def summary_line(self, label: str) -> str:
        """The closing message: what was read, sent, left behind, and why."""
        parts = [
            f"{label}: {self.rows_read} rows read; {self.new} new, {self.changed} changed, "
            f"{self.removed} removed, {self.unchanged} unchanged"
        ]
        if self.retried:
            parts[0] += f", {self.retried} retried (not confirmed by Target before)"
        verb = "would send" if self.dry_run else "sent"
        parts.append(
            f"{verb} {self.sent + self.removed_sent} profile(s) in {self.batches} batch(es)"
        )
        if self.rejected:
            parts.append(
                f"{self.rejected_total} rejected ({by_reason(self.rejected)}), not sent; "
                "'target-sync status' lists them and they are sent once the data is fixed"
            )
        if self.failed:
            parts.append(f"{self.failed} failed in Target; the next run resends them")
        if self.not_found:
            parts.append(
                f"{self.not_found} not found in Target (API v1 updates existing profiles "
                "only); the next run resends their batches, so a profile created later gets "
                "its values"
            )
        earlier = self.resolved_from_earlier.get("reverted_rows", 0)
        if earlier:
            parts.append(
                f"{earlier} row(s) of earlier batches were not applied by Target and were resent"
            )
        if self.pending_batches:
            parts.append(
                f"{self.pending_batches} batch(es) still processing; the next run checks them first"
            )
        if self.stale_nulls:
            stale = ", ".join(f"{name}: {n}" for name, n in self.stale_nulls.items())
            parts.append(
                f"profiles whose value turned NULL keep their old value in Target ({stale}); "
                "a 'null:' replacement on the attribute overwrites it"
            )
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form of the result (also stored in the run history)."""
        data = asdict(self)
        data["rejected_total"] = self.rejected_total
        data["next_step"] = self.next_step
        return data
