"""What the CLI shows: progress while a run goes, and the summaries afterwards.

On a terminal, progress is drawn with ``rich`` on stderr (a bar per stage: rows read, diff,
profiles uploaded, batch statuses polled); elsewhere (cron, CI, an orchestrator's log) each
stage prints one plain line. With ``--log-format json`` events go to the JSON log instead and
nothing else is drawn. Summaries go to stdout in text mode only.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

import click

from .logs import log_event
from .result import PROGRESS_ONLY

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from .operations import PlanReport
    from .result import Event, SyncResult
    from .verify import VerifyReport


def _n(value: int) -> str:
    return f"{value:,}"


def _count(value: int, unit: str) -> str:
    """``1 profile``, ``1,204 profiles``, ``2 batches``."""
    if value == 1:
        return f"1 {unit}"
    return f"{value:,} {unit}" + ("es" if unit.endswith(("ch", "sh", "s", "x")) else "s")


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason}: {_n(n)}" for reason, n in sorted(counts.items()))


# Ids longer than this are shortened in human output: a 256-character thirdPartyId or a
# status URL standing in for a batch id would drown the line. --json keeps them whole.
MAX_ID_CHARS = 40
ID_TAIL_CHARS = 12


def _short_id(value: str) -> str:
    """``value``, or its head and tail around an ellipsis when longer than MAX_ID_CHARS
    (the tail often tells ids apart: sequence numbers, suffixes)."""
    if len(value) <= MAX_ID_CHARS:
        return value
    head = MAX_ID_CHARS - ID_TAIL_CHARS - 1
    return f"{value[:head]}…{value[-ID_TAIL_CHARS:]}"


def _id(value: str | None) -> str:
    """A profile id for a human: quoted (spaces and control characters show), shortened."""
    return "NULL" if value is None else repr(_short_id(value))


def _seconds(value: float) -> str:
    return f"{value:.1f}s" if value < 120 else f"{value / 60:.1f}min"


# Each event's level in the JSON log (default: info).
def _level(event: Event) -> int:
    if event.name == "retry":
        return logging.WARNING
    if event.name == "batch_status" and (
        event.fields.get("state") != "complete" or event.fields.get("failed")
    ):
        return logging.WARNING
    if event.name == "run_end":
        code = event.fields.get("exit_code", 0)
        return logging.INFO if code == 0 else logging.WARNING if code == 3 else logging.ERROR
    return logging.INFO


class Reporter:
    """Turns run events into progress output (a context manager around one run).

    ``log_format="json"`` writes each event as a JSON line; otherwise progress is drawn with
    rich when stderr is a terminal (``interactive``), else as plain lines.
    """

    def __init__(self, log_format: str = "text", interactive: bool | None = None) -> None:
        self.json_events = log_format == "json"
        tty = sys.stderr.isatty() if interactive is None else interactive
        self.interactive = tty and not self.json_events
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._counts: dict[str, tuple[int, int | None]] = {}
        self._batches_written = 0

    # -- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> Reporter:
        if self.interactive:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[count]}"),
                TimeElapsedColumn(),
                console=Console(stderr=True, highlight=False),
                transient=True,
            )
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._tasks.clear()

    # -- events --------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        if self.json_events:
            # notify.py logs its own events; progress ticks are for displays only.
            if event.name not in PROGRESS_ONLY and not event.name.startswith("notify_"):
                log_event(event.name, event.sync, event.fields, _level(event))
            return
        if self._progress is not None:
            self._draw(event)
            return
        line = _describe_event(event)
        if line is None:
            return
        if event.name == "batch_written":
            self._batches_written += 1
            if self._batches_written % 10 != 1:
                return
        click.echo(f"{datetime.now():%H:%M:%S} {line}", err=True)

    def _draw(self, event: Event) -> None:
        progress = self._progress
        assert progress is not None
        f = event.fields
        if event.name == "run_start":
            progress.console.print(_describe_event(event))
            self._start("read", "reading the source", None, "rows")
        elif event.name == "read_progress":
            self._set("read", f["rows"], "rows")
        elif event.name == "stage_done":
            stage = f["stage"]
            self._finish(stage)
            progress.console.print(f"  [green]✓[/green] {_stage_line(f)}")
            if stage == "read":
                self._start("diff", "comparing with the snapshot", None, "")
        elif event.name == "pending_found":
            progress.console.print(f"  {_describe_event(event, short=True)}")
            self._start("resolve_pending", "checking earlier batches", None, "")
        elif event.name == "upload_start":
            self._start("upload", "sending profiles", f["rows"], "profiles")
        elif event.name in ("batch_uploaded", "batch_written"):
            verb = "uploaded" if event.name == "batch_uploaded" else "written"
            self._advance("upload", f["rows"], "profiles", f"batch {f['seq']} {verb}")
        elif event.name == "status_start":
            self._start("status", "polling batch status", f["batches"], "batches")
        elif event.name == "batch_status":
            self._advance("status", 1, "batches", None)
            line = _describe_event(event, short=True)
            if line is not None:
                progress.console.print(f"  [yellow]![/yellow] {line}")
        elif event.name == "notify_sent":
            progress.console.print(f"  {_describe_event(event, short=True)}")

    def _start(self, stage: str, description: str, total: int | None, unit: str) -> None:
        assert self._progress is not None
        count = f"0/{_n(total)} {unit}" if total is not None else ""
        self._tasks[stage] = self._progress.add_task(description, total=total, count=count)
        self._counts[stage] = (0, total)

    def _set(self, stage: str, completed: int, unit: str) -> None:
        assert self._progress is not None
        task = self._tasks.get(stage)
        if task is not None:
            self._progress.update(task, completed=completed, count=f"{_n(completed)} {unit}")

    def _advance(self, stage: str, step: int, unit: str, description: str | None) -> None:
        assert self._progress is not None
        task = self._tasks.get(stage)
        if task is None:
            return
        done, total = self._counts[stage]
        done += step
        self._counts[stage] = (done, total)
        count = f"{_n(done)}/{_n(total)} {unit}" if total is not None else f"{_n(done)} {unit}"
        if description is None:
            self._progress.update(task, completed=done, count=count)
        else:
            self._progress.update(task, completed=done, count=count, description=description)

    def _finish(self, stage: str) -> None:
        assert self._progress is not None
        task = self._tasks.pop(stage, None)
        if task is not None:
            self._progress.remove_task(task)

    # -- the end -------------------------------------------------------------------------

    def summary(self, result: SyncResult) -> None:
        """The closing summary on stdout (text mode; the JSON log has ``run_end``)."""
        if not self.json_events:
            render_summary(result)


def _stage_line(f: dict[str, Any]) -> str:
    stage, seconds = f["stage"], _seconds(f["seconds"])
    if stage == "read":
        rejected = f.get("rejected") or {}
        extra = (
            f"; rejected {_n(sum(rejected.values()))} ({_reasons(rejected)})" if rejected else ""
        )
        return f"read {_count(f['rows'], 'row')}{extra} ({seconds})"
    if stage == "diff":
        return (
            f"diff: {_n(f['new'])} new, {_n(f['changed'])} changed, {_n(f['removed'])} removed, "
            f"{_n(f['unchanged'])} unchanged ({seconds})"
        )
    if stage == "upload":
        return f"upload: {_count(f['batches'], 'batch')}, {_count(f['bytes'], 'byte')} ({seconds})"
    if stage == "status":
        pending = f", {_count(f['pending'], 'batch')} still processing" if f["pending"] else ""
        return f"batch status: {_count(f['failed'], 'row')} failed{pending} ({seconds})"
    if stage == "resolve_pending":
        return (
            f"earlier batches: {f.get('complete', 0)} complete, "
            f"{_count(f.get('reverted_rows', 0), 'row')} reverted for resending, "
            f"{f.get('still_pending', 0)} still processing ({seconds})"
        )
    details = ", ".join(f"{k} {v}" for k, v in f.items() if k not in ("stage", "seconds"))
    return f"{stage} done ({details}) ({seconds})"


def _describe_event(event: Event, short: bool = False) -> str | None:
    f = event.fields
    text: str | None = None
    if event.name == "run_start":
        text = f"run {f['run_id']} started" + (" (dry run)" if f["dry_run"] else "")
    elif event.name == "stage_done":
        text = _stage_line(f)
    elif event.name == "upload_start":
        text = f"sending {_count(f['rows'], 'profile')}" if f["rows"] else None
    elif event.name == "batch_uploaded":
        n = f.get("retries") or 0
        retries = ", 1 retry" if n == 1 else f", {n} retries" if n else ""
        text = (
            f"batch {f['seq']} uploaded: {_count(f['rows'], 'row')}, {_n(f['bytes'])} bytes, "
            f"id {_short_id(f['batch_id'])}, HTTP {f['http_status']}, "
            f"{f['elapsed']:.1f}s{retries}"
        )
    elif event.name == "batch_written":
        text = f"batch {f['seq']} written: {_count(f['rows'], 'row')}, {_n(f['bytes'])} bytes"
    elif event.name == "status_start":
        text = f"polling the status of {_count(f['batches'], 'batch')}"
    elif event.name == "batch_status":
        if f["state"] != "complete":
            text = (
                f"batch {_short_id(f['batch_id'])} ended {f['state']}; "
                "the next run resends its rows"
            )
        elif f.get("failed"):
            text = (
                f"batch {_short_id(f['batch_id'])}: {_count(f['failed'], 'row')} failed in "
                "Target; "
                "the next run resends them"
            )
    elif event.name == "pending_found":
        text = f"{_count(f['batches'], 'batch')} from an earlier run still unconfirmed"
    elif event.name == "notify_sent":
        text = f"posted the run summary to the webhook at {f['webhook_host']}"
    if text is None or short:
        return text
    return f"sync '{event.sync}': {text}"


_HEADLINES = {
    "delivered": "delivered",
    "partial": "finished with rows left behind",
    "nothing_to_do": "nothing to send",
    "dry_run": "dry run",
    "failed": "failed",
    "interrupted": "interrupted",
}


def render_summary(result: SyncResult) -> None:
    """Everything the run did, one aspect per line, ending with what happens next."""
    head = _HEADLINES.get(result.outcome, result.outcome)
    click.echo(
        f"sync '{result.sync}': {head} in {_seconds(result.duration_seconds)} "
        f"(run {result.run_id}, exit {result.exit_code})"
    )
    rows = [("read", _count(result.rows_read, "row"))]
    if result.rejected:
        rows.append(
            (
                "rejected",
                f"{_count(result.rejected_total, 'row')} not sent ({_reasons(result.rejected)})",
            )
        )
    rows.append(
        (
            "diff",
            f"{_n(result.new)} new, {_n(result.changed)} changed, {_n(result.removed)} removed, "
            f"{_n(result.unchanged)} unchanged"
            + (f", {_n(result.retried)} retried" if result.retried else ""),
        )
    )
    if result.full_resend_reason:
        rows.append(("full resend", result.full_resend_reason))
    if result.resolved_from_earlier:
        earlier = result.resolved_from_earlier
        rows.append(
            (
                "earlier",
                f"{_count(earlier.get('complete', 0), 'batch')} of an earlier run confirmed, "
                f"{_count(earlier.get('reverted_rows', 0), 'row')} reverted for resending",
            )
        )
    verb = "would send" if result.dry_run else "sent"
    removed = f" + {_n(result.removed_sent)} removed" if result.removed_sent else ""
    rows.append(
        (
            verb,
            f"{_count(result.sent, 'profile')}{removed} in {_count(result.batches, 'batch')}, "
            f"{_count(result.bytes_sent, 'byte')}",
        )
    )
    if result.batch_files:
        shown = ", ".join(result.batch_files[:3])
        more = f" and {len(result.batch_files) - 3} more" if len(result.batch_files) > 3 else ""
        rows.append(("wrote", shown + more))
    if not result.dry_run:
        rows.append(("failed", f"{_count(result.failed, 'row')} failed in Target"))
    if result.not_found:
        rows.append(
            (
                "not found",
                f"{_count(result.not_found, 'profile')} not found in Target (API v1); their "
                "batches are resent by the next run",
            )
        )
    if result.pending_batches:
        rows.append(("pending", f"{_count(result.pending_batches, 'batch')} still processing"))
    if result.stale_nulls:
        stale = ", ".join(f"{name} {_n(n)}" for name, n in result.stale_nulls.items())
        rows.append(("stale NULLs", f"{stale} (Target keeps the old value)"))
    if result.stage_seconds:
        rows.append(
            ("stages", ", ".join(f"{k} {_seconds(v)}" for k, v in result.stage_seconds.items()))
        )
    if result.outcome in ("failed", "interrupted") and result.message:
        rows.append(("error", result.message))
    rows.append(("next", result.next_step))
    width = max(len(label) for label, _ in rows)
    for label, text in rows:
        click.echo(f"  {label:<{width}}  {text}")


def render_overview(outcomes: list[dict[str, Any]], worst: int) -> None:
    """One line per sync of a multi-config run, and the exit code they add up to."""
    click.echo(f"{len(outcomes)} syncs run, one after the other:")
    width = max(len(o["sync"]) for o in outcomes)
    for o in outcomes:
        click.echo(
            f"  {o['sync']:<{width}}  {o['outcome']:<13}  exit {o['exit_code']}  {o['config']}"
        )
    click.echo(f"exit code {worst} (the worst of the runs)")


def render_plan(report: PlanReport) -> None:
    click.echo(
        f"plan for sync '{report.sync}' (nothing sent, snapshot unchanged): "
        f"{_count(report.rows_read, 'row')} read"
    )
    rejected = sum(report.rejected.values())
    removed_note = {
        "ignore": "forgotten, not sent (on_removed: ignore)",
        "set": "sent once with the on_removed attributes",
    }.get(report.on_removed, report.on_removed)
    rows = [
        ("new", f"{_count(report.new, 'profile')} would be sent"),
        ("changed", f"{_count(report.changed, 'profile')} would be sent"),
        ("removed", f"{_count(report.removed, 'profile')}: {removed_note}"),
        ("unchanged", f"{_count(report.unchanged, 'profile')}, not sent"),
        (
            "rejected",
            f"{_count(rejected, 'row')} ({_reasons(report.rejected)})" if rejected else "none",
        ),
        ("guardrails", report.guardrail),
    ]
    if report.full_resend_reason:
        rows.insert(0, ("full resend", report.full_resend_reason))
    if report.pending_batches:
        rows.append(
            (
                "pending",
                f"{_count(report.pending_batches, 'batch')} of an earlier run unconfirmed; "
                "the next run resolves them first",
            )
        )
    width = max(len(label) for label, _ in rows)
    for label, text in rows:
        click.echo(f"  {label:<{width}}  {text}")
    if not report.values_kept:
        click.echo(
            "  the snapshot keeps no attribute values (state.keep_values: false): old values, "
            "field changes and stale NULLs cannot be shown"
        )
    if report.attribute_changes:
        click.echo("  field changes:")
        for name, count in sorted(report.attribute_changes.items(), key=lambda kv: -kv[1]):
            click.echo(f"    {name} changed for {_count(count, 'profile')}")
    if report.stale_nulls:
        click.echo("  stale NULLs (Target cannot delete a value; give 'null:' a replacement):")
        for name, count in report.stale_nulls.items():
            click.echo(
                f"    {name} turned NULL for {_count(count, 'profile')}; Target keeps the old value"
            )
    if report.reject_samples:
        click.echo("  rejected rows (sample):")
        for reject in report.reject_samples[:10]:
            detail = f" ({reject['detail']})" if reject["detail"] else ""
            click.echo(f"    {_id(reject['id'])}: {reject['reason']}{detail}")
    if report.samples:
        click.echo("  samples (old → new; NULL is sent as an empty value):")
    for sample in report.samples:
        click.echo(f"    {sample['kind']} {_id(sample['id'])}:")
        old, new = sample["old"] or {}, sample["new"] or {}
        for name in dict.fromkeys([*new, *old]):
            if sample["kind"] == "new":
                click.echo(f"      {name}: {_cell(new.get(name))}")
            elif sample["kind"] == "removed":
                click.echo(f"      {name}: {_cell(old.get(name))} (profile left the result)")
            elif old.get(name) != new.get(name):
                click.echo(f"      {name}: {_cell(old.get(name))} → {_cell(new.get(name))}")


def _cell(value: str | None) -> str:
    return "NULL" if value in (None, "") else repr(value)


def render_status(report: dict[str, Any]) -> None:
    click.echo(f"sync '{report['sync']}' (state {report['state_path']})")
    running = report.get("running")
    if running is not None:
        progress = running.get("progress") or {}
        counts = ", ".join(
            f"{key.replace('_', ' ')} {_n(value)}"
            for key, value in progress.items()
            if isinstance(value, int)
        )
        click.echo(f"  running now: {running.get('holder')}")
        click.echo(f"    so far: {counts or 'starting'}")
        click.echo("  the run history can be read once it has finished")
        return
    if not report["runs"]:
        click.echo("  no runs yet")
        return
    click.echo(f"  snapshot: {_count(report.get('snapshot_profiles', 0), 'profile')}")
    click.echo("  last runs (newest first):")
    header = (
        f"    {'run':<24} {'started (UTC)':<19} {'outcome':<13} {'exit':>4} {'read':>10} "
        f"{'sent':>10} {'batches':>7} {'rejected':>8} {'failed':>7} {'took':>7}"
    )
    click.echo(header)
    for run in report["runs"]:
        s = run.get("summary") or {}
        started = str(run.get("started_at") or "")[:19].replace("T", " ")
        took = _seconds(s["duration_seconds"]) if s.get("duration_seconds") else ""
        exit_code = "" if run["exit_code"] is None else run["exit_code"]
        click.echo(
            f"    {run['run_id']:<24} {started:<19} {run['outcome']:<13} {exit_code:>4} "
            f"{_n(s.get('rows_read', 0)):>10} {_n(s.get('sent', 0)):>10} "
            f"{s.get('batches', 0):>7} {_n(s.get('rejected_total', 0)):>8} "
            f"{_n(s.get('failed', 0)):>7} {took:>7}" + (" dry run" if run["dry_run"] else "")
        )
    last = report["runs"][0]
    if last.get("message") and last["outcome"] in ("failed", "partial"):
        click.echo(f"  last run: {last['message']}")
    pending = report.get("pending_batches") or []
    if pending:
        click.echo(f"  pending batches ({len(pending)}; the next run checks them first):")
        for batch in pending:
            click.echo(
                f"    {_short_id(batch['batch_id'])} ({_count(batch['rows'], 'row')}) "
                "uploaded by run "
                f"{batch['run_id']}"
            )
    failed = report.get("failed_rows") or []
    if failed:
        click.echo(f"  failed rows of the last run (resent by the next run): {len(failed)}")
        for row in failed[:20]:
            click.echo(
                f"    {_id(row['id'])} in batch {_short_id(row['batch_id'])}: {row['reason']}"
            )
    rejects = report.get("rejects") or []
    if rejects:
        by_reason = (last.get("summary") or {}).get("rejected") or {}
        counts = f" ({_reasons(by_reason)})" if by_reason else ""
        click.echo(f"  rejected rows of the last run{counts}; retried once the data is fixed:")
        for row in rejects[:20]:
            detail = f" ({row['detail']})" if row["detail"] else ""
            click.echo(f"    {_id(row['id'])}: {row['reason']}{detail}")
        if len(rejects) > 20:
            click.echo(f"    ... and more: 'target-sync status --json' lists up to {len(rejects)}")


def render_validate(report: dict[str, Any]) -> None:
    identity = report["identity"]
    click.echo(f"sync '{report['sync']}': config and source OK")
    click.echo(
        f"  id: {identity['column']} ({identity['type']}) as {identity['as']}, "
        f"sent as {identity['serialized_as']}"
    )
    for attr in report["attributes"]:
        null = f"; NULL sent as {attr['null']!r}" if attr["null"] is not None else ""
        click.echo(
            f"  {attr['attribute']}: {attr['column'] or 'static'} ({attr['type']}), "
            f"sent as {attr['serialized_as']}{null}"
        )
    target = report["target"]
    mark = "OK" if target["ok"] else "FAILED"
    click.echo(f"  target: {target['url']}: {mark}: {target['status']}")


def render_verify(report: VerifyReport) -> None:
    """What verify found: the counts, the rate with its interval, and the profiles that
    differ (at most 20 of each kind; --json lists them all)."""
    click.echo(
        f"verify of sync '{report.sync}': {_count(report.sampled, 'profile')} of "
        f"{_n(report.snapshot_profiles)} synced read back from Target (client "
        f"'{report.client_code}')"
    )
    if report.sampled:
        settle = f"{report.settle_minutes:g} min"
        rows = [
            ("matched", _n(report.matched)),
            ("mismatched", _n(report.mismatched)),
            ("not found", _n(report.not_found)),
            (
                "too recent",
                f"{_n(report.too_recent)} (sent less than {settle} ago, not showing yet)",
            ),
        ]
        width = max(len(label) for label, _ in rows)
        for label, text in rows:
            click.echo(f"  {label:<{width}}  {text}")
    for entry in report.mismatches[:SHOWN]:
        click.echo(
            f"  mismatch: {_id(entry['id'])}: {entry['attribute']} expected "
            f"{entry['expected']!r}, found {entry['found']!r}"
        )
    _more(len(report.mismatches), "mismatches")
    for label, ids in (("not found", report.not_found_ids), ("too recent", report.too_recent_ids)):
        if ids:
            shown = ", ".join(_id(i) for i in ids[:SHOWN])
            more = f" and {len(ids) - SHOWN} more" if len(ids) > SHOWN else ""
            click.echo(f"  {label}: {shown}{more}")
    if report.marked_for_resend is not None:
        click.echo(
            f"  marked {_count(report.marked_for_resend, 'profile')} for resending by the next run"
        )
    outcome = "OVER the limit" if report.exit_code else "OK"
    click.echo(f"{outcome}: {report.verdict} (exit {report.exit_code})")


SHOWN = 20


def _more(count: int, what: str) -> None:
    if count > SHOWN:
        click.echo(f"  ... and {count - SHOWN} more {what} ('verify --json' lists them all)")
