"""One sync run, start to end: the only place that knows the order of the stages.

::

    lock → open state → resolve earlier pending batches → stream source into staging →
    rejects / guardrails → diff → cut batches → upload → commit per accepted batch →
    poll batch status → revert failed rows → history

Delivery is at least once: the snapshot advances for a batch only after Target accepted it,
and rows Target later reports failed (or whose batch ends stuck or unknown) are reverted so
the next run sends them again. A run killed at any point loses nothing.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .batches import Batch, cut_batches, header_line
from .config import RemovedSet, SyncConfig, load_config
from .errors import (
    GuardrailError,
    StrictRejectError,
    TargetError,
    TargetFatalError,
    TargetRetriableError,
    TargetSyncError,
)
from .lock import StateLock
from .result import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, Event, Listener, SyncResult
from .serialize import mapping_description, mapping_signature
from .staging import exit_cells, staging_input, staging_sql
from .state import FINGERPRINT_SCHEME, PendingBatch, StateStore

if TYPE_CHECKING:
    import pyarrow as pa

    from .target import BatchStatus, TargetClient

log = logging.getLogger(__name__)

READ_CHUNK_ROWS = 100_000
PROGRESS_SECONDS = 0.5
SAMPLE_REJECTS = 20


def as_config(config: SyncConfig | str | os.PathLike[str]) -> SyncConfig:
    """Accept a loaded config or a path to one."""
    return config if isinstance(config, SyncConfig) else load_config(config)


def new_run_id() -> str:
    """A sortable, unique id for a run."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


class Run:
    """The state of one run while it goes; :func:`sync` drives it."""

    def __init__(
        self,
        config: SyncConfig,
        store: StateStore,
        result: SyncResult,
        listener: Listener | None,
    ) -> None:
        self.config = config
        self.store = store
        self.result = result
        self.listener = listener
        self._clock = time.monotonic()

    def emit(self, name: str, **fields: object) -> None:
        log.debug("%s %s", name, fields)
        if self.listener is not None:
            self.listener(Event(name, self.config.name, dict(fields)))

    def stage_done(self, stage: str, **fields: object) -> None:
        elapsed = time.monotonic() - self._clock
        self._clock = time.monotonic()
        self.result.stage_seconds[stage] = round(elapsed, 3)
        self.emit("stage_done", stage=stage, seconds=round(elapsed, 3), **fields)


@contextmanager
def open_run(config: SyncConfig, dry_run: bool, listener: Listener | None) -> Iterator[Run]:
    """Lock the state file, open it, and record the run in the history.

    Last of all, a configured ``notify`` webhook hears about the outcome (a run that could
    not take the lock or open the state file included); it never changes that outcome.
    """
    result = SyncResult(
        sync=config.name,
        run_id=new_run_id(),
        dry_run=dry_run,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    started = time.monotonic()
    interrupted = False
    try:
        with ExitStack() as stack:
            stack.enter_context(StateLock(Path(config.state.path), config.name))
            store = stack.enter_context(StateStore.open(config.state, config.name))
            store.close_interrupted_runs()  # killed earlier runs; we hold the lock now
            store.start_run(result.run_id, dry_run)
            run = Run(config, store, result, listener)
            run.emit("run_start", run_id=result.run_id, dry_run=dry_run)
            try:
                yield run
            except TargetSyncError as exc:
                result.outcome, result.exit_code = "failed", exc.exit_code
                result.message = str(exc)
                raise
            except BaseException as exc:
                result.outcome, result.exit_code = "failed", EXIT_FAILED
                result.message = f"{type(exc).__name__}: {exc}"
                raise
            finally:
                result.duration_seconds = round(time.monotonic() - started, 3)
                store.drop_work_tables()
                store.finish_run(
                    result.run_id,
                    result.outcome,
                    result.exit_code,
                    result.to_dict(),
                    result.message,
                )
                store.prune_history(config.state.keep_runs)
                run.emit("run_end", **result.to_dict())
    except TargetSyncError as exc:
        if result.outcome == "running":  # the lock or the state file failed first
            result.outcome, result.exit_code, result.message = "failed", exc.exit_code, str(exc)
        raise
    except KeyboardInterrupt:
        interrupted = True  # someone is watching: no alert for a run they stopped
        raise
    finally:
        if config.notify is not None and result.outcome != "running" and not interrupted:
            _notify(config, result, listener)


def _notify(config: SyncConfig, result: SyncResult, listener: Listener | None) -> None:
    from .notify import notify

    outcome = notify(config, result)
    if outcome is None or listener is None:
        return
    try:
        listener(Event("notify_sent" if outcome["sent"] else "notify_failed", config.name, outcome))
    except Exception:  # a display problem must not hide the run's outcome
        log.warning("%s: the listener failed on a notify event", config.label, exc_info=True)


def sync(
    config: SyncConfig | str | os.PathLike[str],
    *,
    dry_run: bool = False,
    out_dir: str | os.PathLike[str] | None = None,
    strict: bool | None = None,
    force: bool = False,
    listener: Listener | None = None,
) -> SyncResult:
    """Run one sync: send the new and changed profiles to Target.

    With ``dry_run`` nothing is sent and the snapshot stays as it is; the batch files that
    would be POSTed are written to ``out_dir`` when given. ``strict`` (default: the config's
    ``strict``) fails the run before sending when any row is rejected; ``force`` overrides
    the guardrails. Raises a :class:`~connector.errors.TargetSyncError` when the run fails;
    otherwise returns the result, whose ``exit_code`` is 0 or 3.
    """
    config = as_config(config)
    strict = config.strict if strict is None else strict
    with open_run(config, dry_run, listener) as run:
        client = None if dry_run else _client(config, run)
        try:
            if client is not None:
                resolve_pending(run, client)
            prepare(run, strict=strict, force=force)
            deliver(run, client, Path(out_dir) if out_dir else None)
        finally:
            if client is not None:
                client.close()
        finish(run)
        return run.result


def _client(config: SyncConfig, run: Run) -> TargetClient:
    from .target import TargetClient

    def on_retry(what: str, attempt: int, reason: str, wait: float) -> None:
        run.emit("retry", what=what, attempt=attempt, reason=reason, wait_seconds=round(wait, 2))

    return TargetClient(config.target, config.label, on_retry=on_retry)


def prepare(run: Run, *, strict: bool, force: bool, record: bool = True) -> None:
    """Stream the source into staging, check rejects and guardrails, and diff."""
    from . import sources

    config, store, result = run.config, run.store, run.result
    signature = mapping_signature(config)
    previous = store.previous_mapping()
    if previous is None:
        result.full_resend_reason = "first run" if store.snapshot_size() == 0 else None
    elif previous[0] != signature:
        result.full_resend_reason = _mapping_change(previous[1], mapping_description(config))
    elif store.fingerprint_scheme() != FINGERPRINT_SCHEME:
        store.refresh_fingerprints(signature, len(config.attributes))

    with sources.open_reader(config) as reader:
        sql = staging_sql(config, reader.schema)
        counts = store.stage(
            staging_input(config, _with_progress(run, reader)), sql, len(config.attributes)
        )
    result.rows_read = counts.rows
    result.rejected = counts.rejected
    run.stage_done("read", rows=counts.rows, rejected=counts.rejected)
    if result.rejected:
        if record:
            store.record_rejects(result.run_id)
        if strict:
            raise StrictRejectError(
                f"{config.label}: {result.rejected_total} row(s) rejected "
                f"({_reasons(result.rejected)}) and strict mode is on; nothing was sent. "
                "Fix the rows (see 'target-sync status') or run without --strict"
            )

    previous_size = store.snapshot_size()
    diff = store.diff()
    result.new, result.changed = diff.new, diff.changed
    result.removed, result.unchanged = diff.removed, diff.unchanged
    if previous is not None and _same_attributes(previous[1], config):
        # Cells line up attribute by attribute (even when a rule changed): a cell that held a
        # value and is now empty leaves that value in Target.
        nullable = [spec.null is None for spec in config.attributes.values()]
        _, result.stale_nulls = store.attribute_changes(list(config.attributes), nullable)
    run.stage_done(
        "diff", new=diff.new, changed=diff.changed, removed=diff.removed, unchanged=diff.unchanged
    )
    if not force:
        check_guardrails(run, previous_size)


def _same_attributes(previous: dict[str, object], config: SyncConfig) -> bool:
    """Whether the snapshot's cells hold the same attributes, in the same order."""
    attributes = previous.get("attributes")
    return isinstance(attributes, dict) and list(attributes) == list(config.attributes)


def _with_progress(run: Run, reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """The same stream, emitting ``read_progress`` about once a second for progress displays."""
    if run.listener is None:
        return reader
    import pyarrow as pa

    def batches() -> Iterator[pa.RecordBatch]:
        rows, last = 0, time.monotonic()
        for batch in reader:
            rows += batch.num_rows
            if time.monotonic() - last >= PROGRESS_SECONDS:
                last = time.monotonic()
                try:
                    run.emit("read_progress", rows=rows)
                except Exception:  # a display problem must not break the read
                    log.debug("progress listener failed", exc_info=True)
            yield batch

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def check_guardrails(run: Run, previous_size: int) -> None:
    """Stop before sending when the result looks like a broken upstream model.

    ``previous_size`` is how many profiles the snapshot held before this run.
    """
    config, result = run.config, run.result
    valid = result.new + result.changed + result.unchanged
    override = "rerun with --force (force=True in Python)"
    if config.min_rows is not None and result.rows_read < config.min_rows:
        raise GuardrailError(
            f"{config.label}: the source returned {result.rows_read:,} row(s), fewer than "
            f"min_rows={config.min_rows:,}; nothing was sent and the snapshot is unchanged. "
            f"Check the query's upstream data; if so few rows are right, {override} or lower "
            f"min_rows in {_config_file(config)}"
        )
    limit = config.max_removed_fraction
    if limit is not None and previous_size > 0 and result.removed / previous_size > limit:
        raise GuardrailError(
            f"{config.label}: {result.removed:,} of the {previous_size:,} synced profiles "
            f"({result.removed / previous_size:.0%}) left the query result, more than "
            f"max_removed_fraction={limit:g} allows; nothing was sent and the snapshot is "
            f"unchanged ({valid:,} valid profiles remain, {result.rejected_total:,} rows "
            f"rejected). Check the query's upstream data; if the drop is real, {override}, "
            f"or raise max_removed_fraction in {_config_file(config)}"
        )


def _config_file(config: SyncConfig) -> str:
    return str(config.config_path) if config.config_path else "the config"


def deliver(run: Run, client: TargetClient | None, out_dir: Path | None) -> None:
    """Cut and send (or write) the batches, committing each accepted one."""
    config, store, result = run.config, run.store, run.result
    if not result.dry_run:
        store.save_mapping(mapping_signature(config), mapping_description(config))
    target = config.target
    removals_sent = result.removed if isinstance(config.on_removed, RemovedSet) else 0
    run.emit("upload_start", rows=result.new + result.changed + removals_sent)
    header = header_line(config.identity.type, list(config.attributes))
    uploads = cut_batches(
        iter(store.upsert_stream(READ_CHUNK_ROWS)),
        header,
        "upsert",
        target.max_rows_per_batch,
        target.max_bytes_per_batch,
    )
    seq = _send_all(run, client, out_dir, uploads, 1)
    if result.removed:
        if isinstance(config.on_removed, RemovedSet):
            names, cells = exit_cells(config)
            removals = cut_batches(
                iter(store.removed_stream(cells, READ_CHUNK_ROWS)),
                header_line(config.identity.type, names),
                "removed",
                target.max_rows_per_batch,
                target.max_bytes_per_batch,
                first_seq=seq,
            )
            _send_all(run, client, out_dir, removals, seq)
        elif not result.dry_run:
            store.forget_removed()
    run.stage_done("upload", batches=result.batches, bytes=result.bytes_sent)
    if client is not None and result.batch_ids:
        run.emit("status_start", batches=len(result.batch_ids))
        poll_statuses(run, client, result.run_id)
        run.stage_done("status", failed=result.failed, pending=result.pending_batches)


def _send_all(
    run: Run,
    client: TargetClient | None,
    out_dir: Path | None,
    batches: Iterator[Batch],
    seq: int,
) -> int:
    try:
        for batch in batches:
            if client is None:
                _write_batch(run, batch, out_dir)
            else:
                _upload(run, client, batch)
                _early_statuses(run, client, batch.seq)
            seq = batch.seq + 1
    finally:
        # Let go of the state-file cursor the stream reads, also when a batch failed: the
        # caller may keep the traceback, and with it the state file open.
        close = getattr(batches, "close", None)
        if close is not None:
            close()
    return seq


def _write_batch(run: Run, batch: Batch, out_dir: Path | None) -> None:
    result = run.result
    result.batches += 1
    result.bytes_sent += batch.size
    if batch.kind == "upsert":
        result.sent += batch.num_rows
    else:
        result.removed_sent += batch.num_rows
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{run.config.name}-{batch.seq:04d}.txt"
        path.write_bytes(batch.body)
        result.batch_files.append(str(path))
    run.emit("batch_written", seq=batch.seq, kind=batch.kind, rows=batch.num_rows, bytes=batch.size)


def _upload(run: Run, client: TargetClient, batch: Batch) -> None:
    """Send one batch; once Target accepted it, record it as pending, then advance the
    snapshot for its rows.

    In that order, a run killed at any instant loses nothing: before the answer, nothing is
    committed and the next run sends the rows again; between the two writes, the next run
    finds the batch pending with no rows committed under it, so it resends them too.
    """
    config, store, result = run.config, run.store, run.result
    what = f"batch {batch.seq} of {config.label}"
    try:
        receipt = client.upload(batch.body, what)
    except TargetError as exc:
        earlier = (
            f"; {result.batches} earlier batch(es) of this run were accepted and stay committed"
            if result.batches
            else ""
        )
        raise type(exc)(
            f"{exc}; the snapshot was not advanced for its {batch.num_rows} profiles{earlier}; "
            "rerunning is safe"
        ) from None
    store.record_batch(
        result.run_id,
        batch.seq,
        batch.kind,
        receipt.batch_id,
        receipt.status_url,
        batch.num_rows,
        batch.size,
    )
    if batch.kind == "upsert":
        store.commit_upserts(batch.rows, receipt.batch_id)
        result.sent += batch.num_rows
    else:
        store.commit_removed(batch.rows, receipt.batch_id)
        result.removed_sent += batch.num_rows
    result.batches += 1
    result.bytes_sent += batch.size
    result.batch_ids.append(receipt.batch_id)
    run.emit(
        "batch_uploaded",
        seq=batch.seq,
        kind=batch.kind,
        batch_id=receipt.batch_id,
        rows=batch.num_rows,
        bytes=batch.size,
        http_status=receipt.http_status,
        attempts=receipt.attempts,
        retries=receipt.attempts - 1,
        elapsed=round(receipt.elapsed, 3),
    )


# Target keeps the status of a client's last 10 batches only [old doc]: a run reads each of
# its batches' status this many uploads after it went out, not only at its end. Batches
# still incomplete then are read again at the end.
EARLY_STATUS_AFTER = (3, 8)


def _early_statuses(run: Run, client: TargetClient, seq: int) -> None:
    """Read the status of this run's batches that are due (see EARLY_STATUS_AFTER)."""
    due = [
        b
        for b in run.store.pending_batches()
        if b.run_id == run.result.run_id and seq - b.seq in EARLY_STATUS_AFTER
    ]
    for batch in due:
        status = _read_status(run, client, batch)
        if status.state != "incomplete":
            _settle(run, batch, status, _new_counts(), own_run=True)


def resolve_pending(run: Run, client: TargetClient) -> None:
    """Settle batches an earlier run uploaded but could not confirm.

    This runs before the diff, so the rows it reverts are sent again by this very run; they
    count in ``resolved_from_earlier``, not in this run's ``failed``.
    """
    pending = run.store.pending_batches()
    if not pending:
        return
    run.emit("pending_found", batches=len(pending))
    outcome = poll_statuses(run, client, None)
    run.result.resolved_from_earlier = outcome
    run.stage_done("resolve_pending", **outcome)


def poll_statuses(run: Run, client: TargetClient, run_id: str | None) -> dict[str, int]:
    """Poll pending batches (of ``run_id``, or all) until resolved or the deadline passes.

    Failed rows are reverted; a stuck batch, or one whose status cannot be read, is
    reverted whole. Batches still incomplete at the deadline stay pending for the next run.
    Raises TargetFatalError when Target refuses the token (the batches stay pending).
    """
    config, store = run.config, run.store
    deadline = time.monotonic() + config.target.status_deadline_seconds
    counts = _new_counts()
    polls: dict[str, int] = {}

    def waiting() -> list[PendingBatch]:
        return [b for b in store.pending_batches() if run_id is None or b.run_id == run_id]

    while True:
        for batch in waiting():
            status = _read_status(run, client, batch)
            polls[batch.batch_id] = polls.get(batch.batch_id, 0) + 1
            if status.state != "incomplete":
                _settle(run, batch, status, counts, own_run=run_id is not None)
        left = waiting()
        if not left or time.monotonic() >= deadline:
            for batch in left:
                store.resolve_batch(
                    batch.batch_id,
                    "pending",
                    f"still incomplete after {polls.get(batch.batch_id, 0)} status poll(s) "
                    f"within status_deadline_seconds={config.target.status_deadline_seconds:g}; "
                    "the next run checks it first",
                )
            counts["still_pending"] = len(left)
            run.result.pending_batches = len(store.pending_batches())
            return counts
        time.sleep(
            min(config.target.status_poll_interval_seconds, max(0.0, deadline - time.monotonic()))
        )


def _new_counts() -> dict[str, int]:
    return {"complete": 0, "reverted_rows": 0, "still_pending": 0}


def _read_status(run: Run, client: TargetClient, batch: PendingBatch) -> BatchStatus:
    """A batch's status; ``unknown`` when Target stayed busy or unreachable."""
    from .target import BatchStatus

    earlier = "" if batch.run_id == run.result.run_id else f" (run {batch.run_id})"
    what = f"status of batch {batch.seq}{earlier} of {run.config.label}"
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


def _settle(
    run: Run,
    batch: PendingBatch,
    status: BatchStatus,
    counts: dict[str, int],
    *,
    own_run: bool,
) -> None:
    """Record what became of a batch: revert its failed rows (or all its rows when it is
    stuck, unknown, or its failed rows cannot all be named), confirm the rest."""
    store, result = run.store, run.result
    batch_id = batch.batch_id
    listed = sorted({i for i in status.failed_ids if i})
    counted = status.counters.get("failedUpdates", len(listed))
    if status.state == "complete" and counted <= len(listed):
        reverted = store.revert(batch_id, result.run_id, "failed in batch status", listed)
        store.confirm(batch_id)
        state = "complete"
        detail = f"{reverted} failed row(s) reverted" if reverted else "complete"
    else:
        if status.state == "complete":
            reason = (
                f"batch complete, but its status counts {counted} failed update(s) and names "
                f"only {len(listed)}"
            )
        else:
            reason = f"batch {status.state}" + (f": {status.message}" if status.message else "")
        reverted = store.revert(batch_id, result.run_id, reason)
        state, detail = "reverted", reason
    store.resolve_batch(batch_id, state, detail)
    if status.state == "complete":
        counts["complete"] += 1
    counts["reverted_rows"] += reverted
    if own_run:
        result.failed += reverted
    run.emit(
        "batch_status",
        batch_id=batch_id,
        kind=batch.kind,
        state=status.state,
        failed=len(status.failed_ids),
        reverted=reverted,
        counters=status.counters,
    )


def finish(run: Run) -> None:
    """Decide the outcome, exit code and closing message."""
    config, result = run.config, run.result
    problems = result.rejected_total + result.failed
    if result.dry_run:
        result.outcome = "dry_run"
    elif result.batches == 0 and not problems:
        result.outcome = "nothing_to_do"
    else:
        result.outcome = "partial" if problems else "delivered"
    result.exit_code = EXIT_PARTIAL if problems else EXIT_OK
    parts = [
        f"{config.label}: {result.rows_read} rows read; {result.new} new, {result.changed} "
        f"changed, {result.removed} removed, {result.unchanged} unchanged"
    ]
    verb = "would send" if result.dry_run else "sent"
    parts.append(
        f"{verb} {result.sent + result.removed_sent} profile(s) in {result.batches} batch(es)"
    )
    if result.rejected:
        parts.append(
            f"{result.rejected_total} rejected ({_reasons(result.rejected)}), not sent; "
            "'target-sync status' lists them and they are sent once the data is fixed"
        )
    if result.failed:
        parts.append(f"{result.failed} failed in Target; the next run resends them")
    if result.pending_batches:
        parts.append(
            f"{result.pending_batches} batch(es) still processing; the next run checks them first"
        )
    if result.stale_nulls:
        stale = ", ".join(f"{name}: {n}" for name, n in result.stale_nulls.items())
        parts.append(
            f"profiles whose value turned NULL keep their old value in Target ({stale}); "
            "a 'null:' replacement on the attribute overwrites it"
        )
    result.message = "; ".join(parts)


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason}: {n}" for reason, n in sorted(counts.items()))


def _mapping_change(old: dict[str, object], new: dict[str, object]) -> str:
    """Why a changed mapping resends every profile, in words (for plan and the summary)."""
    old_attrs = old.get("attributes", {})
    new_attrs = new.get("attributes", {})
    assert isinstance(old_attrs, dict) and isinstance(new_attrs, dict)
    notes = []
    added = [n for n in new_attrs if n not in old_attrs]
    dropped = [n for n in old_attrs if n not in new_attrs]
    # An attribute that left and one that came with the very same rule: a rename.
    renamed = []
    for name in list(dropped):
        twin = next((n for n in added if new_attrs[n] == old_attrs[name]), None)
        if twin is not None:
            renamed.append(f"{name} → {twin}")
            dropped.remove(name)
            added.remove(twin)
    if renamed:
        notes.append("renamed " + ", ".join(renamed))
    if added:
        notes.append("added " + ", ".join(added))
    if dropped:
        notes.append("removed " + ", ".join(dropped))
    for name in new_attrs:
        if name in old_attrs and old_attrs[name] != new_attrs[name]:
            before, after = old_attrs[name], new_attrs[name]
            assert isinstance(before, dict) and isinstance(after, dict)
            changes = [
                f"{key} {_rule(before.get(key))} → {_rule(after.get(key))}"
                for key in dict.fromkeys([*before, *after])
                if before.get(key) != after.get(key)
            ]
            notes.append(f"changed {name} ({', '.join(changes)})")
    if not notes and list(old_attrs) != list(new_attrs):
        notes.append("reordered attributes")
    if old.get("identity") != new.get("identity"):
        notes.append(f"identity type {old.get('identity')} → {new.get('identity')}")
    if old.get("serialization") != new.get("serialization"):
        notes.append(
            f"serialization rules changed with this version ({old.get('serialization')} → "
            f"{new.get('serialization')})"
        )
    gone = renamed or dropped
    kept = "; Target keeps the values of attributes no longer sent" if gone else ""
    return (
        "mapping changed ("
        + ("; ".join(notes) or "details differ")
        + f"): every profile is resent with the new attribute set{kept}"
    )


def _rule(value: object) -> str:
    return "(none)" if value is None else repr(value)
