"""One sync run, start to end: the only place that knows the order of the stages.

::

    lock + open state → resolve earlier pending batches → prepare the snapshot's binding →
    stream the source into staging and diff (one pass) → rejects / guardrails → cut batches
    → upload, commit per accepted batch → poll batch status → history

Each stage returns a typed report; :func:`result_of` folds them into the run's
:class:`~connector.result.SyncResult` once, at the end (also when the run fails or is
interrupted). Delivery is at least once (see :mod:`connector.delivery.upload`).
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import state
from .config import SyncConfig, load_config
from .delivery import Session
from .delivery.statuses import resolve_earlier
from .delivery.upload import confirm_own, deliver
from .errors import (
    RunInterrupted,
    StrictRejectError,
    TargetSyncError,
    interrupt_exit_code,
    interrupt_name,
    received_signal,
)
from .guardrails import check_guardrails, full_resend_reason
from .mapping import binding_signature, destination, mapping_description, mapping_signature
from .private import private_umask
from .result import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, Event, Listener, SyncResult
from .state import FieldChanges
from .state.store import NO_DIFF
from .text import by_reason

if TYPE_CHECKING:
    from .delivery.client import TargetClient
    from .state import PrepareReport, StageReport, StateStore

log = logging.getLogger(__name__)

PROGRESS_SECONDS = 0.5


def as_config(config: SyncConfig | str | os.PathLike[str]) -> SyncConfig:
    """Accept a loaded config or a path to one."""
    return config if isinstance(config, SyncConfig) else load_config(config)


def new_run_id() -> str:
    """A sortable, unique id for a run."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


@dataclass
class Run:
    """One run while it goes: its reports so far; :func:`sync` drives it."""

    config: SyncConfig
    session: Session
    dry_run: bool
    listener: Listener | None
    started_at: str
    prepared: PrepareReport | None = None
    staged: StageReport | None = None
    full_resend_reason: str | None = None
    field_changes: FieldChanges = field(default_factory=FieldChanges)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    result: SyncResult | None = None  # set by finish()
    _clock: float = field(default_factory=time.monotonic)
    _started: float = field(default_factory=time.monotonic)

    @property
    def store(self) -> StateStore:
        return self.session.store

    @property
    def run_id(self) -> str:
        return self.session.run_id

    def emit(self, name: str, **fields: object) -> None:
        log.debug("%s %s", name, fields)
        if self.listener is not None:
            self.listener(Event(name, self.config.name, dict(fields)))

    def stage_done(self, stage: str, **fields: object) -> None:
        elapsed = time.monotonic() - self._clock
        self._clock = time.monotonic()
        self.stage_seconds[stage] = round(elapsed, 3)
        self.session.publish(rows_read=self.staged.rows if self.staged else 0)
        self.emit("stage_done", stage=stage, seconds=round(elapsed, 3), **fields)


def result_of(run: Run, outcome: str = "running", exit_code: int = EXIT_OK) -> SyncResult:
    """The run's reports, folded into its result."""
    staged, report = run.staged, run.session.report
    return SyncResult(
        sync=run.config.name,
        run_id=run.run_id,
        dry_run=run.dry_run,
        outcome=outcome,
        exit_code=exit_code,
        rows_read=staged.rows if staged else 0,
        **(staged.diff() if staged else NO_DIFF),
        rejected=dict(staged.rejected) if staged else {},
        sent=report.sent,
        removed_sent=report.removed_sent,
        batches=report.batches,
        bytes_sent=report.bytes_sent,
        failed=report.failed,
        not_found=report.not_found,
        pending_batches=report.pending_batches,
        resolved_from_earlier=dict(report.resolved_from_earlier),
        stale_nulls=dict(run.field_changes.stale),
        full_resend_reason=run.full_resend_reason,
        batch_files=list(report.batch_files),
        batch_ids=list(report.batch_ids),
        values_dropped=run.prepared.values_dropped if run.prepared else 0,
        stage_seconds=dict(run.stage_seconds),
        started_at=run.started_at,
        duration_seconds=round(time.monotonic() - run._started, 3),
    )


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

    With ``dry_run`` nothing is sent and the state store is not written; the batch files that
    would be POSTed are written to ``out_dir`` when given. ``strict`` (default: the config's
    ``strict``) fails the run before sending when any row is rejected; ``force`` overrides
    the guardrails. Raises a :class:`~connector.errors.TargetSyncError` when the run fails
    (a ``KeyboardInterrupt`` when interrupted); otherwise returns the result, whose
    ``exit_code`` is 0 or 3.
    """
    config = as_config(config)
    strict = config.strict if strict is None else strict
    with private_umask(), open_run(config, dry_run, listener) as run:
        client = None if dry_run else _client(run)
        try:
            if client is not None:
                earlier = resolve_earlier(run.session, client)
                if earlier is not None:
                    run.stage_done("resolve_pending", **earlier)
            prepare(run, strict=strict, force=force)
            assert run.staged is not None
            deliver(run.session, client, Path(out_dir) if out_dir else None, run.staged)
            if run.full_resend_reason is not None and not dry_run:
                run.store.prune_bindings(run.session.binding)
            report = run.session.report
            run.stage_done("upload", batches=report.batches, bytes=report.bytes_sent)
            if client is not None and confirm_own(run.session, client):
                run.stage_done("status", failed=report.failed, pending=report.pending_batches)
        finally:
            if client is not None:
                client.close()
        return finish(run)


def _client(run: Run) -> TargetClient:
    from .delivery.client import TargetClient

    def on_retry(what: str, attempt: int, reason: str, wait: float) -> None:
        run.emit("retry", what=what, attempt=attempt, reason=reason, wait_seconds=round(wait, 2))

    return TargetClient(run.config.target, run.config.label, on_retry=on_retry)


@contextmanager
def open_run(config: SyncConfig, dry_run: bool, listener: Listener | None) -> Iterator[Run]:
    """Open the state store for the run (holding its lock), and record the run in the
    history (dry runs are not recorded: they change nothing).

    Last of all, a configured ``notify`` webhook hears about the outcome (a run that could
    not take the lock or open the state store included); it never changes that outcome.
    """
    run_id = new_run_id()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    result: SyncResult | None = None
    watched = False  # Ctrl-C: someone is watching, no alert for a run they stopped
    try:
        with state.open_store(config, "dry-run" if dry_run else "run") as store:
            recorded = store.writable and not dry_run
            if recorded:
                store.history.close_interrupted()  # killed earlier runs; we hold the lock
                store.history.start(run_id, dry_run)
            session = Session(config, store, run_id, binding_signature(config), lambda *a: None)
            run = Run(config, session, dry_run, listener, started_at)
            session.emit = run.emit
            run.emit("run_start", run_id=run_id, dry_run=dry_run)
            try:
                with _signals_win():
                    _stop_if_signalled()  # one that DuckDB swallowed while the state opened
                    yield run
                result = run.result or result_of(run)
            except TargetSyncError as exc:
                result = result_of(run, "failed", exc.exit_code)
                result.message = str(exc)
                raise
            except KeyboardInterrupt as exc:
                watched = interrupt_name(exc) == "SIGINT"
                result = result_of(run, "interrupted", interrupt_exit_code(exc))
                result.message = _interrupted_message(config, result, interrupt_name(exc))
                raise
            except BaseException as exc:
                result = result_of(run, "failed", EXIT_FAILED)
                result.message = f"{type(exc).__name__}: {exc}"
                raise
            finally:
                assert result is not None
                _close_run(
                    run, result, recorded, unwinding=result.outcome in ("failed", "interrupted")
                )
    except BaseException as exc:
        if result is None:  # the lock or the state store failed first
            if not isinstance(exc, KeyboardInterrupt):
                # DuckDB turns a stop signal that lands in its query into an error of its own.
                _stop_if_signalled(exc)
            if isinstance(exc, TargetSyncError):
                result = SyncResult(config.name, run_id, dry_run, "failed", exc.exit_code, str(exc))
                result.started_at = started_at
        raise
    finally:
        if config.notify is not None and result is not None and not watched:
            _notify(config, result, listener)


def _stop_if_signalled(cause: BaseException | None = None) -> None:
    """Raise :class:`RunInterrupted` if the process received a stop signal (the CLI notes
    them from its start: one may have landed, and been swallowed, before the run opened)."""
    signal_number = received_signal()
    if signal_number is not None:
        raise RunInterrupted(signal_number) from cause


@contextmanager
def _signals_win() -> Iterator[None]:
    """A stop signal the run received ends it as interrupted, whatever became of the
    exception its handler raised: DuckDB may have turned it into an error of its own or
    swallowed it (see :func:`connector.errors.note_signal`)."""
    try:
        yield
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        _stop_if_signalled(exc)
        raise
    _stop_if_signalled()


def _close_run(run: Run, result: SyncResult, recorded: bool, unwinding: bool) -> None:
    """Record how the run ended. While an error unwinds, a failing step here (the state store
    may be what broke) is logged and skipped: it must never replace the error."""
    store = run.store
    steps: list[tuple[str, Any]] = [("drop the work tables", store.drop_work_tables)]
    if recorded:
        steps += [
            (
                "record the run",
                lambda: store.history.finish(
                    result.run_id,
                    result.outcome,
                    result.exit_code,
                    result.to_dict(),
                    result.message,
                ),
            ),
            ("prune the history", lambda: store.history.prune(run.config.state.keep_runs)),
        ]
    for what, step in steps:
        try:
            step()
        except Exception as exc:
            if not unwinding:
                raise
            log.warning("%s: could not %s after the run failed (%s)", run.config.label, what, exc)
    run.emit("run_end", **result.to_dict())


def _interrupted_message(config: SyncConfig, result: SyncResult, signal_name: str) -> str:
    return (
        f"{config.label}: interrupted ({signal_name}) after Target accepted "
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


def prepare(run: Run, *, strict: bool, force: bool, record: bool = True) -> None:
    """Bind the snapshot, stream the source into staging and diff, then check rejects and
    guardrails (``force`` skips the guardrails; ``record`` keeps the rejects in history)."""
    config, store = run.config, run.store
    run.prepared = store.prepare(
        run.session.binding,
        mapping_description(config),
        destination(config),
        mapping_signature(config),
        str(config.config_path) if config.config_path else None,
    )
    run.full_resend_reason = full_resend_reason(config, run.session.binding, run.prepared)
    staged = store.stage_and_diff(config, run.prepared, _progress(run))
    run.staged = staged
    run.stage_done("read", rows=staged.rows, rejected=staged.rejected)
    recorded = record and store.writable and not run.dry_run
    if staged.rejected:
        if recorded:
            store.record_rejects(run.run_id)
        if strict:
            raise StrictRejectError(
                f"{config.label}: {sum(staged.rejected.values())} row(s) rejected "
                f"({by_reason(staged.rejected)}) and strict mode is on; nothing was sent. "
                "Fix the rows (see 'target-sync status') or run without --strict"
            )
    comparable = comparable_bindings(run)
    if comparable != []:
        # Cells line up attribute by attribute (even when a rule changed): a cell that held a
        # value and is now empty leaves that value in Target.
        nullable = [spec.null is None for spec in config.attributes.values()]
        run.field_changes = store.field_changes(list(config.attributes), nullable, comparable)
    run.stage_done(
        "diff",
        **staged.diff(),
        unrecorded=run.prepared.unconfirmed,
    )
    if recorded:
        store.history.progress(run.run_id, result_of(run).to_dict())
    if not force:
        check_guardrails(config, staged, run.prepared)


def comparable_bindings(run: Run) -> list[str] | None:
    """Bindings whose cells hold the current attributes in the current order; None when
    every snapshot profile's are (the common case, which needs no filter)."""
    assert run.prepared is not None
    names = list(run.config.attributes)
    comparable = [
        signature
        for signature, binding in run.prepared.bindings.items()
        if list(binding.mapping.get("attributes", {})) == names
    ]
    in_use = set(run.prepared.census)
    return None if in_use <= set(comparable) else comparable


def _progress(run: Run) -> Any:
    """A callback for the source stream: ``read_progress`` about twice a second."""
    if run.listener is None:
        return None
    last = [time.monotonic()]

    def tell(rows: int) -> None:
        if time.monotonic() - last[0] >= PROGRESS_SECONDS:
            last[0] = time.monotonic()
            try:
                run.emit("read_progress", rows=rows)
            except Exception:  # a display problem must not break the read
                log.debug("progress listener failed", exc_info=True)

    return tell


def finish(run: Run) -> SyncResult:
    """Decide the outcome, exit code and closing message; the run's result."""
    result = result_of(run)
    problems = result.rejected_total + result.failed + result.not_found
    if result.dry_run:
        result.outcome = "dry_run"
    elif result.batches == 0 and not problems:
        result.outcome = "nothing_to_do"
    else:
        result.outcome = "partial" if problems else "delivered"
    result.exit_code = EXIT_PARTIAL if problems else EXIT_OK
    result.message = result.summary_line(run.config.label)
    run.result = result
    return result
