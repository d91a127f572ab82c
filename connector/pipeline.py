"""One sync run, start to end: the only place that knows the order of the stages.

::

    lock → open state → resolve earlier pending batches → stream source into staging →
    rejects / guardrails → diff → cut batches → upload (never more batches unresolved than
    Target remembers) → commit per accepted batch → poll batch status → revert failed rows →
    history

Delivery is at least once: the snapshot advances for a batch only after Target accepted it,
and rows Target later reports failed or not found (or whose batch ends stuck or unknown) are
reverted so the next run sends them again. A run killed at any point loses nothing.
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
from typing import TYPE_CHECKING, Any

from .batches import Batch, cut_batches, header_line
from .binding import binding_signature, describe_change, destination
from .config import RemovedSet, SyncConfig, load_config
from .errors import (
    GuardrailError,
    StateError,
    StrictRejectError,
    TargetError,
    TargetFatalError,
    TargetRetriableError,
    TargetSyncError,
    interrupt_exit_code,
    interrupt_name,
)
from .lock import RunLock
from .private import private_folder, private_umask, write_private
from .result import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, Event, Listener, SyncResult
from .serialize import mapping_description, mapping_signature
from .staging import exit_cells, staging_input, staging_sql
from .state import PendingBatch, StateStore, damage_guard, rewrite_state

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
        lock: RunLock | None = None,
        previous_config: str | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.result = result
        self.listener = listener
        self.lock = lock
        # The config file that last ran this sync (to tell a name clash from a real drop).
        self.previous_config = previous_config
        self.binding = binding_signature(config)
        self._clock = time.monotonic()

    def emit(self, name: str, **fields: object) -> None:
        log.debug("%s %s", name, fields)
        if self.listener is not None:
            self.listener(Event(name, self.config.name, dict(fields)))

    def progress(self) -> None:
        """Publish the counts so far (``status`` shows them while the run goes on)."""
        if self.lock is not None:
            r = self.result
            self.lock.progress(
                run_id=r.run_id,
                rows_read=r.rows_read,
                new=r.new,
                changed=r.changed,
                removed=r.removed,
                batches=r.batches,
                sent=r.sent,
                removed_sent=r.removed_sent,
                failed=r.failed,
            )

    def stage_done(self, stage: str, **fields: object) -> None:
        elapsed = time.monotonic() - self._clock
        self._clock = time.monotonic()
        self.result.stage_seconds[stage] = round(elapsed, 3)
        self.progress()
        self.emit("stage_done", stage=stage, seconds=round(elapsed, 3), **fields)


def _open_store(config: SyncConfig, dry_run: bool) -> StateStore:
    """The state store for a run: the file itself, read-only for a dry run (which never
    writes a byte), or a scratch copy when a dry run must see it upgraded first."""
    if not dry_run:
        return StateStore.open(config.state, config.name, "write")
    if not Path(config.state.path).exists():
        return StateStore.open(config.state, config.name, "scratch")
    store = StateStore.open(config.state, config.name, "read")
    if not _needs_rewrite(store, config):
        return store
    store.close()
    return StateStore.open(config.state, config.name, "scratch")


def _needs_rewrite(store: StateStore, config: SyncConfig) -> bool:
    """Whether reading the snapshot needs changes a read-only store cannot make first."""
    if store.outdated:
        return True
    legacy = any(b.destination is None for b in store.bindings().values())
    return legacy or store.needs_refresh()


@contextmanager
def open_run(config: SyncConfig, dry_run: bool, listener: Listener | None) -> Iterator[Run]:
    """Lock the state file, open it, and record the run in the history (dry runs are not
    recorded: they change nothing).

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
    watched = False  # Ctrl-C: someone is watching, no alert for a run they stopped
    state_path = Path(config.state.path)
    try:
        with ExitStack() as stack:
            stack.enter_context(damage_guard(state_path, config.name))
            lock = None
            if not dry_run or state_path.exists():
                purpose = "dry run" if dry_run else "sync"
                lock = stack.enter_context(RunLock(state_path, config.name, purpose))
            # Runs once the store is closed, while the lock is still held.
            stack.callback(_compact_if_asked, config, result)
            store = stack.enter_context(_open_store(config, dry_run))
            previous_config = None
            if store.writable and not dry_run:
                store.close_interrupted_runs()  # killed earlier runs; we hold the lock now
                _, previous_config = store.sync_record()
                store.record_sync(str(config.config_path) if config.config_path else None)
                store.start_run(result.run_id, dry_run)
            run = Run(config, store, result, listener, lock, previous_config)
            run.emit("run_start", run_id=result.run_id, dry_run=dry_run)
            try:
                yield run
            except TargetSyncError as exc:
                result.outcome, result.exit_code = "failed", exc.exit_code
                result.message = str(exc)
                raise
            except KeyboardInterrupt as exc:
                watched = interrupt_name(exc) == "SIGINT"
                result.outcome, result.exit_code = "interrupted", interrupt_exit_code(exc)
                result.message = _interrupted_message(run, interrupt_name(exc))
                raise
            except BaseException as exc:
                result.outcome, result.exit_code = "failed", EXIT_FAILED
                result.message = f"{type(exc).__name__}: {exc}"
                raise
            finally:
                result.duration_seconds = round(time.monotonic() - started, 3)
                _close_run(run, unwinding=result.outcome in ("failed", "interrupted"))
    except TargetSyncError as exc:
        if result.outcome == "running":  # the lock or the state file failed first
            result.outcome, result.exit_code, result.message = "failed", exc.exit_code, str(exc)
        raise
    finally:
        if config.notify is not None and result.outcome != "running" and not watched:
            _notify(config, result, listener)


def _compact_if_asked(config: SyncConfig, result: SyncResult) -> None:
    """Rewrite the state file once values were dropped (``state.keep_values: false``), so
    that none lingers in its free blocks."""
    if result.values_dropped:
        rewrite_state(config.state, config.name, forget=False)


def _close_run(run: Run, unwinding: bool) -> None:
    """Record how the run ended. While an error unwinds, a failing step here (the state file
    may be what broke) is logged and skipped: it must never replace the error."""
    store, result = run.store, run.result
    steps: list[tuple[str, Any]] = [("drop the work tables", store.drop_work_tables)]
    if store.writable and not result.dry_run:
        steps += [
            (
                "record the run",
                lambda: store.finish_run(
                    result.run_id,
                    result.outcome,
                    result.exit_code,
                    result.to_dict(),
                    result.message,
                ),
            ),
            ("prune the history", lambda: store.prune_history(run.config.state.keep_runs)),
        ]
    for what, step in steps:
        try:
            step()
        except Exception as exc:
            if not unwinding:
                raise
            log.warning("%s: could not %s after the run failed (%s)", run.config.label, what, exc)
    run.emit("run_end", **result.to_dict())


def _interrupted_message(run: Run, signal_name: str) -> str:
    result = run.result
    return (
        f"{run.config.label}: interrupted ({signal_name}) after Target accepted "
        f"{result.batches} batch(es) of {result.sent + result.removed_sent} profile(s), which "
        "stay committed; the next run checks the pending ones and sends everything else; "
        "rerunning is safe"
    )


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

    With ``dry_run`` nothing is sent and the state file is not written; the batch files that
    would be POSTed are written to ``out_dir`` when given. ``strict`` (default: the config's
    ``strict``) fails the run before sending when any row is rejected; ``force`` overrides
    the guardrails. Raises a :class:`~connector.errors.TargetSyncError` when the run fails
    (a ``KeyboardInterrupt`` when interrupted); otherwise returns the result, whose
    ``exit_code`` is 0 or 3.
    """
    config = as_config(config)
    strict = config.strict if strict is None else strict
    with private_umask(), open_run(config, dry_run, listener) as run:
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
    """Bring the snapshot's fingerprints up to date, stream the source into staging, check
    rejects and guardrails, and diff."""
    from . import sources

    config, store, result = run.config, run.store, run.result
    if store.writable:
        store.register_binding(run.binding, mapping_description(config), destination(config))
        adopted = store.adopt_legacy(mapping_signature(config), run.binding)
        if adopted:
            log.info(
                "%s: %d profiles of a state file from an earlier version bound to %s",
                config.label,
                adopted,
                destination(config)["base_url"],
            )
        unrefreshable = store.unrefreshable()
        if store.needs_refresh():
            store.refresh_fingerprints()
        if not store.keep_values and not result.dry_run:
            result.values_dropped = store.drop_values()
    else:
        unrefreshable = store.unrefreshable()
    result.full_resend_reason = _full_resend_reason(run, unrefreshable)

    with sources.open_reader(config) as reader:
        sql = staging_sql(config, reader.schema)
        counts = store.stage(
            staging_input(config, _with_progress(run, reader)), sql, len(config.attributes)
        )
    result.rows_read = counts.rows
    result.rejected = counts.rejected
    run.stage_done("read", rows=counts.rows, rejected=counts.rejected)
    if result.rejected:
        if record and store.writable and not result.dry_run:
            store.record_rejects(result.run_id)
        if strict:
            raise StrictRejectError(
                f"{config.label}: {result.rejected_total} row(s) rejected "
                f"({_reasons(result.rejected)}) and strict mode is on; nothing was sent. "
                "Fix the rows (see 'target-sync status') or run without --strict"
            )

    previous_size = store.snapshot_size()
    diff = store.diff()
    result.new, result.changed, result.retried = diff.new, diff.changed, diff.retried
    result.removed, result.unchanged = diff.removed, diff.unchanged
    comparable = comparable_bindings(run)
    if comparable != []:
        # Cells line up attribute by attribute (even when a rule changed): a cell that held a
        # value and is now empty leaves that value in Target.
        nullable = [spec.null is None for spec in config.attributes.values()]
        _, result.stale_nulls = store.attribute_changes(
            list(config.attributes), nullable, comparable
        )
    run.stage_done(
        "diff",
        new=diff.new,
        changed=diff.changed,
        retried=diff.retried,
        removed=diff.removed,
        unchanged=diff.unchanged,
    )
    if record and store.writable and not result.dry_run:
        store.record_progress(result.run_id, result.to_dict())
    if not force:
        check_guardrails(run, previous_size)


def _full_resend_reason(run: Run, unrefreshable: int) -> str | None:
    """Why profiles are resent whatever their data: the first run, fingerprints that cannot
    be recomputed, or profiles last sent under another mapping or destination."""
    store, config = run.store, run.config
    census = store.binding_census()
    total = sum(census.values())
    if store.snapshot_size() == 0:
        return "first run (the snapshot is empty)"
    if unrefreshable:
        return (
            f"fingerprints were made by another DuckDB version and the snapshot keeps no "
            f"values to recompute them (state.keep_values: false): {unrefreshable:,} "
            "profiles are resent once"
        )
    others = {b: n for b, n in census.items() if b != run.binding}
    if not others:
        return None
    bindings = store.bindings()
    largest = max(others, key=lambda b: others[b])
    old = bindings.get(largest) if largest is not None else None
    reason = (
        describe_change(old.mapping, old.destination, config)
        if old is not None
        else "profiles bound to no recorded mapping: every one is resent"
    )
    moved = sum(others.values())
    if moved < total:
        reason = f"{moved:,} of {total:,} profiles were last sent under another binding: {reason}"
    return reason


def comparable_bindings(run: Run) -> list[str] | None:
    """Bindings whose cells hold the current attributes in the current order; None when
    every snapshot profile's are (the common case, which needs no filter)."""
    names = list(run.config.attributes)
    comparable = [
        signature
        for signature, binding in run.store.bindings().items()
        if list(binding.mapping.get("attributes", {})) == names
    ]
    in_use = set(run.store.binding_census())
    return None if in_use <= set(comparable) else comparable


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
    valid = result.new + result.changed + result.retried + result.unchanged
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
        share = (
            f"{config.label}: {result.removed:,} of the {previous_size:,} synced profiles "
            f"({result.removed / previous_size:.0%}) left the query result, more than "
            f"max_removed_fraction={limit:g} allows; nothing was sent and the snapshot is "
            f"unchanged ({valid:,} valid profiles remain, {result.rejected_total:,} rows "
            "rejected)"
        )
        here = str(config.config_path) if config.config_path else None
        if run.previous_config and here and run.previous_config != here:
            raise GuardrailError(
                f"{share}. This snapshot was last written by another config, "
                f"{run.previous_config}: two configs with the name '{config.name}' share the "
                f"state file {config.state.path}, and each would undo the other. Give one of "
                "them another name (or another state.path)"
            )
        raise GuardrailError(
            f"{share}. Check the query's upstream data; if the drop is real, {override}, "
            f"or raise max_removed_fraction in {_config_file(config)}"
        )


def _config_file(config: SyncConfig) -> str:
    return str(config.config_path) if config.config_path else "the config"


def deliver(run: Run, client: TargetClient | None, out_dir: Path | None) -> None:
    """Cut and send (or write) the batches, committing each accepted one."""
    config, store, result = run.config, run.store, run.result
    target = config.target
    removals_sent = result.removed if isinstance(config.on_removed, RemovedSet) else 0
    run.emit("upload_start", rows=result.new + result.changed + result.retried + removals_sent)
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
    if result.full_resend_reason is not None and not result.dry_run:
        store.prune_bindings(run.binding)
    run.stage_done("upload", batches=result.batches, bytes=result.bytes_sent)
    if client is not None and _own_pending(run):
        run.emit("status_start", batches=len(_own_pending(run)))
        poll_statuses(run, client, result.run_id)
        run.stage_done("status", failed=result.failed, pending=result.pending_batches)


def _own_pending(run: Run) -> list[PendingBatch]:
    return [b for b in run.store.pending_batches() if b.run_id == run.result.run_id]


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
                make_room(run, client, batch.seq)
                _upload(run, client, batch)
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
        path = out_dir / f"{run.config.name}-{batch.seq:04d}.txt"
        try:
            private_folder(out_dir)
            write_private(path, batch.body)
        except OSError as exc:
            raise StateError(
                f"{run.config.label}: cannot write batch file {path} ({exc.strerror or exc}); "
                "nothing was sent and the snapshot is unchanged"
            ) from None
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
        store.commit_upserts(batch.rows, receipt.batch_id, run.binding)
        result.sent += batch.num_rows
    else:
        store.commit_removed(batch.rows, receipt.batch_id)
        result.removed_sent += batch.num_rows
    result.batches += 1
    result.bytes_sent += batch.size
    result.batch_ids.append(receipt.batch_id)
    run.progress()
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


def make_room(run: Run, client: TargetClient, seq: int) -> None:
    """Wait until fewer than ``target.max_batches_in_flight`` batches are unresolved.

    Target keeps the status of a client's last 10 batches only [old doc]: a batch uploaded
    while more than that are unresolved may push an earlier one's status out, and a batch
    whose status is lost is resent whole. So before each upload the oldest unresolved
    batches are polled until there is room; if Target does not finish them within
    ``target.status_deadline_seconds``, the run stops uploading (the next run goes on).
    """
    limit = run.config.target.max_batches_in_flight
    waited_since = time.monotonic()
    announced = False
    while True:
        pending = run.store.pending_batches()
        if len(pending) < limit:
            return
        if not announced:
            run.emit("backpressure", in_flight=len(pending), limit=limit)
            announced = True
        oldest = pending[0]
        status = _read_status(run, client, oldest)
        if status.state != "incomplete":
            _settle(run, oldest, status, _new_counts())
            continue
        deadline = run.config.target.status_deadline_seconds
        if time.monotonic() - waited_since >= deadline:
            raise TargetRetriableError(
                f"Target has not finished {len(pending)} batch(es) of {run.config.label} within "
                f"target.status_deadline_seconds={deadline:g}; batch {seq} and the rest were not "
                "sent, so that Target keeps the status of every batch it was given (it keeps a "
                "client's last 10). The accepted batches stay committed and pending: the next "
                "run checks them first and sends the rest; rerunning is safe"
            )
        time.sleep(run.config.target.status_poll_interval_seconds)


def resolve_pending(run: Run, client: TargetClient) -> None:
    """Settle batches an earlier run uploaded but could not confirm.

    This runs before the diff, so the rows it reverts are sent again by this very run (as
    ``retried``); they count in ``resolved_from_earlier``, not in this run's ``failed``.
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

    What each status does to the snapshot is :func:`_settle`'s. Batches still incomplete at
    the deadline stay pending for the next run. Raises TargetFatalError when Target refuses
    the token (the batches stay pending).
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
                _settle(run, batch, status, counts)
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
    return {"complete": 0, "reverted_rows": 0, "not_found": 0, "still_pending": 0}


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


def _settle(run: Run, batch: PendingBatch, status: BatchStatus, counts: dict[str, int]) -> None:
    """The one settle policy: what a final batch status does to the snapshot.

    * ``complete``: rows Target lists as failed are reverted, the rest confirmed;
    * ``complete`` with ``profilesNotFound`` (v1 updates existing profiles only): Target
      names none of those rows, so every row of the batch is reverted and resent by the next
      run (a profile that appears later still gets its attributes);
    * ``complete`` counting more failed rows than it names, ``stuck``, or ``unknown`` (the
      status is gone or unreadable): every row is reverted. When unsure, resend.

    Reverted rows of this run's batches count as ``failed`` (exit 3); those of an earlier
    run's batch are resent by this run, before its diff, and count in
    ``resolved_from_earlier``. Either way they are listed by ``status`` and reported to a
    ``failed_rows`` webhook.
    """
    store, result = run.store, run.result
    own = batch.run_id == result.run_id
    batch_id = batch.batch_id
    listed = sorted({i for i in status.failed_ids if i})
    counted = status.counters.get("failedUpdates", len(listed))
    not_found = status.counters.get("profilesNotFound", 0) if status.state == "complete" else 0
    if status.state == "complete" and counted <= len(listed) and not not_found:
        reverted = store.revert(batch_id, result.run_id, "failed in batch status", listed)
        store.confirm(batch_id)
        state = "complete"
        detail = f"{reverted} failed row(s) reverted" if reverted else "complete"
    else:
        if not_found:
            reason = (
                f"{not_found} profile(s) not found in Target (API v1 updates existing profiles "
                "only and does not say which); the whole batch is resent"
            )
        elif status.state == "complete":
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
    counts["not_found"] += not_found
    if own:
        result.not_found += not_found
        result.failed += reverted if not not_found else 0
    run.progress()
    run.emit(
        "batch_status",
        batch_id=batch_id,
        kind=batch.kind,
        state=status.state,
        failed=len(status.failed_ids),
        not_found=not_found,
        reverted=reverted,
        counters=status.counters,
    )


def finish(run: Run) -> None:
    """Decide the outcome, exit code and closing message."""
    config, result = run.config, run.result
    problems = result.rejected_total + result.failed + result.not_found
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
    if result.retried:
        parts[0] += f", {result.retried} retried (not confirmed by Target before)"
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
    if result.not_found:
        parts.append(
            f"{result.not_found} not found in Target (API v1 updates existing profiles only); "
            "the next run resends their batches, so a profile created later gets its values"
        )
    earlier = result.resolved_from_earlier.get("reverted_rows", 0)
    if earlier:
        parts.append(
            f"{earlier} row(s) of earlier batches were not applied by Target and were resent"
        )
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
