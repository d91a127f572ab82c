"""Batch statuses: the one settle policy (what a status does to the snapshot), reading them,
and keeping fewer batches unresolved than Target remembers.

When unsure, resend: a status that cannot be read, a batch that ends ``stuck``, one whose
failed rows Target does not all name, and (API v1) one whose profiles Target did not all
find, are reverted whole; the next run sends their rows again.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ..errors import TargetFatalError, TargetRetriableError
from ..state import PendingBatch, Verdict
from .answers import BatchStatus

if TYPE_CHECKING:
    from .client import TargetClient
    from .session import Session

log = logging.getLogger(__name__)


def verdict(status: BatchStatus) -> Verdict:
    """The settle policy: what a final batch status means for the snapshot.

    * ``complete``: rows Target lists as failed are reverted, the rest confirmed;
    * ``complete`` with ``profilesNotFound`` (v1 updates existing profiles only): Target
      names none of those rows, so every row of the batch is reverted and resent by the next
      run (a profile that appears later still gets its attributes);
    * ``complete`` counting more failed rows than it names, ``stuck``, or ``unknown`` (the
      status is gone or unreadable): every row is reverted.
    """
    listed = sorted({i for i in status.failed_ids if i})
    counted = status.counters.get("failedUpdates", len(listed))
    not_found = status.counters.get("profilesNotFound", 0) if status.state == "complete" else 0
    if status.state == "complete" and counted <= len(listed) and not not_found:
        return Verdict(
            "complete",
            f"{len(listed)} failed row(s) reverted" if listed else "complete",
            failed_ids=listed,
            reason="failed in batch status",
        )
    if not_found:
        reason = (
            f"{not_found} profile(s) not found in Target (API v1 updates existing profiles "
            "only and does not say which); the whole batch is resent"
        )
    elif status.state == "complete":
        reason = (
            f"batch complete, but its status counts {counted} failed update(s) and names only "
            f"{len(listed)}"
        )
    else:
        reason = f"batch {status.state}" + (f": {status.message}" if status.message else "")
    return Verdict("reverted", reason, reason=reason)


def new_counts() -> dict[str, int]:
    """The tally of a round of settling (``resolved_from_earlier`` has this shape)."""
    return {"complete": 0, "reverted_rows": 0, "not_found": 0, "still_pending": 0}


def settle(
    session: Session, batch: PendingBatch, status: BatchStatus, counts: dict[str, int]
) -> None:
    """Apply a final status to the snapshot and count it.

    Reverted rows of this run's batches count as ``failed`` (exit 3); those of an earlier
    run's batch are resent by this run, before its diff, and count in
    ``resolved_from_earlier``. Either way they are listed by ``status`` and reported to a
    ``failed_rows`` webhook.
    """
    decided = verdict(status)
    reverted = session.store.settle(batch, session.run_id, decided)
    not_found = status.counters.get("profilesNotFound", 0) if status.state == "complete" else 0
    if status.state == "complete":
        counts["complete"] += 1
    counts["reverted_rows"] += reverted
    counts["not_found"] += not_found
    if batch.run_id == session.run_id:
        session.report.not_found += not_found
        session.report.failed += reverted if not not_found else 0
    session.publish()
    session.emit(
        "batch_status",
        batch_id=batch.batch_id,
        kind=batch.kind,
        state=status.state,
        failed=len(status.failed_ids),
        not_found=not_found,
        reverted=reverted,
        counters=status.counters,
    )


def read_status(session: Session, client: TargetClient, batch: PendingBatch) -> BatchStatus:
    """A batch's status; ``unknown`` when Target stayed busy or unreachable."""
    earlier = "" if batch.run_id == session.run_id else f" (run {batch.run_id})"
    what = f"status of batch {batch.seq}{earlier} of {session.config.label}"
    try:
        return client.status(batch.status_url, what)
    except TargetRetriableError as exc:
        log.warning("%s could not be read (%s); its rows are resent", what, str(exc))
        return BatchStatus(state="unknown", message=str(exc))
    except TargetFatalError as exc:
        raise TargetFatalError(
            f"{exc}; the snapshot keeps the batches Target accepted, as pending: the next run "
            "checks them first; rerunning is safe"
        ) from None


def poll(session: Session, client: TargetClient, run_id: str | None) -> dict[str, int]:
    """Poll pending batches (of ``run_id``, or all) until resolved or the deadline passes.

    Batches still incomplete at the deadline stay pending for the next run. Raises
    TargetFatalError when Target refuses the token (the batches stay pending).
    """
    target, store = session.config.target, session.store
    deadline = time.monotonic() + target.status_deadline_seconds
    counts = new_counts()
    polls: dict[str, int] = {}

    def waiting() -> list[PendingBatch]:
        return [b for b in store.pending_batches() if run_id is None or b.run_id == run_id]

    while True:
        for batch in waiting():
            status = read_status(session, client, batch)
            polls[batch.batch_id] = polls.get(batch.batch_id, 0) + 1
            if status.state != "incomplete":
                settle(session, batch, status, counts)
        left = waiting()
        if not left or time.monotonic() >= deadline:
            for batch in left:
                store.settle(
                    batch,
                    session.run_id,
                    Verdict(
                        "pending",
                        f"still incomplete after {polls.get(batch.batch_id, 0)} status poll(s) "
                        f"within status_deadline_seconds={target.status_deadline_seconds:g}; "
                        "the next run checks it first",
                    ),
                )
            counts["still_pending"] = len(left)
            session.report.pending_batches = len(store.pending_batches())
            return counts
        time.sleep(min(target.status_poll_interval_seconds, max(0.0, deadline - time.monotonic())))


def make_room(session: Session, client: TargetClient, seq: int) -> None:
    """Wait until fewer than ``target.max_batches_in_flight`` batches are unresolved.

    Target keeps the status of a client's last 10 batches only [old doc]: a batch uploaded
    while more than that are unresolved may push an earlier one's status out, and a batch
    whose status is lost is resent whole. So before each upload the oldest unresolved
    batches are polled until there is room; if Target does not finish them within
    ``target.status_deadline_seconds``, the run stops uploading (the next run goes on).
    """
    target = session.config.target
    limit = target.max_batches_in_flight
    waited_since = time.monotonic()
    announced = False
    while True:
        pending = session.store.pending_batches()
        if len(pending) < limit:
            return
        if not announced:
            session.emit("backpressure", in_flight=len(pending), limit=limit)
            announced = True
        oldest = pending[0]
        status = read_status(session, client, oldest)
        if status.state != "incomplete":
            settle(session, oldest, status, new_counts())
            continue
        if time.monotonic() - waited_since >= target.status_deadline_seconds:
            raise TargetRetriableError(
                f"Target has not finished {len(pending)} batch(es) of {session.config.label} "
                f"within target.status_deadline_seconds={target.status_deadline_seconds:g}; "
                f"batch {seq} and the rest were not sent, so that Target keeps the status of "
                "every batch it was given (it keeps a client's last 10). The accepted batches "
                "stay committed and pending: the next run checks them first and sends the "
                "rest; rerunning is safe"
            )
        time.sleep(target.status_poll_interval_seconds)


def resolve_earlier(session: Session, client: TargetClient) -> dict[str, int] | None:
    """Settle batches an earlier run uploaded but could not confirm; None when there were
    none. This runs before the diff, so the rows it reverts are sent again by this very run
    (as ``retried``)."""
    pending = session.store.pending_batches()
    if not pending:
        return None
    session.emit("pending_found", batches=len(pending))
    counts = poll(session, client, None)
    session.report.resolved_from_earlier = counts
    return counts
