"""What the CLI shows: progress while a run goes, and the summaries afterwards.

On a terminal, progress is drawn with ``rich``; elsewhere (cron, CI, an orchestrator's log)
each stage prints one plain line. With ``--log-format json`` events go to the JSON log instead.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TYPE_CHECKING, Any

import click

from .logs import log_event

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from .operations import PlanReport
    from .result import Event, SyncResult


def _n(value: int) -> str:
    return f"{value:,}"


class Reporter:
    """Turns run events into progress output (a context manager around one run)."""

    def __init__(self, json_events: bool) -> None:
        self.json_events = json_events
        self.interactive = sys.stderr.isatty() and not json_events
        self._progress: Progress | None = None
        self._task: TaskID | None = None

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
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("starting", total=None)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def on_event(self, event: Event) -> None:
        if self.json_events:
            log_event(event.name, event.sync, event.fields)
            return
        line = _describe_event(event)
        if line is None:
            return
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=line)
            if event.name == "stage_done":
                self._progress.console.print(f"  {line}")
        elif event.name != "batch_uploaded" or event.fields.get("seq", 1) % 10 == 1:
            click.echo(line, err=True)

    def summary(self, result: SyncResult) -> None:
        if self.json_events:
            return
        click.echo(result.message)
        seconds = ", ".join(f"{k} {v:.1f}s" for k, v in result.stage_seconds.items())
        if result.full_resend_reason:
            click.echo(f"  full resend: {result.full_resend_reason}")
        click.echo(
            f"  batches: {result.batches}, bytes: {_n(result.bytes_sent)}, "
            f"run {result.run_id} ({seconds})"
        )
        for path in result.batch_files[:20]:
            click.echo(f"  wrote {path}")
        if result.exit_code == 3:
            click.echo(
                "  next: fix or wait; the next run retries the rejected and failed rows; "
                "'target-sync status' lists them"
            )


def _describe_event(event: Event) -> str | None:
    f = event.fields
    if event.name == "run_start":
        return f"sync '{event.sync}': run {f['run_id']} started" + (
            " (dry run)" if f["dry_run"] else ""
        )
    if event.name == "stage_done":
        stage = f["stage"]
        details = ", ".join(
            f"{k} {_n(v) if isinstance(v, int) else v}"
            for k, v in f.items()
            if k not in ("stage", "seconds")
        )
        return f"sync '{event.sync}': {stage} done in {f['seconds']:.1f}s ({details})"
    if event.name == "batch_uploaded":
        return (
            f"sync '{event.sync}': batch {f['seq']} uploaded ({_n(f['rows'])} rows, "
            f"{_n(f['bytes'])} bytes, id {f['batch_id']})"
        )
    if event.name == "retry":
        return f"sync '{event.sync}': retry {f['attempt']} after {f['reason']} (wait {f['wait_seconds']}s)"
    return None


def render_plan(report: PlanReport) -> None:
    click.echo(f"plan for sync '{report.sync}': {_n(report.rows_read)} rows read")
    click.echo(
        f"  new {_n(report.new)}, changed {_n(report.changed)}, removed {_n(report.removed)} "
        f"(on_removed: {report.on_removed}), unchanged {_n(report.unchanged)}"
    )
    if report.full_resend_reason:
        click.echo(f"  full resend: {report.full_resend_reason}")
    for name, count in report.attribute_changes.items():
        click.echo(f"  {name} changed for {_n(count)} profile(s)")
    for name, count in report.stale_nulls.items():
        click.echo(f"  {name} turned NULL for {_n(count)} profile(s); Target keeps the old value")
    for reason, count in report.rejected.items():
        click.echo(f"  rejected {reason}: {_n(count)}")
    for reject in report.reject_samples[:10]:
        detail = f" ({reject['detail']})" if reject["detail"] else ""
        click.echo(f"    {reject['id']!r}: {reject['reason']}{detail}")
    click.echo(f"  guardrails: {report.guardrail}")
    if report.pending_batches:
        click.echo(
            f"  {report.pending_batches} batch(es) pending; the next run resolves them first"
        )
    for sample in report.samples:
        click.echo(f"  {sample['kind']} {sample['id']}:")
        old, new = sample["old"] or {}, sample["new"] or {}
        for name in dict.fromkeys([*new, *old]):
            if old.get(name) != new.get(name):
                click.echo(f"    {name}: {old.get(name)!r} → {new.get(name)!r}")


def render_status(report: dict[str, Any]) -> None:
    click.echo(f"sync '{report['sync']}' (state {report['state_path']})")
    if not report["runs"]:
        click.echo("  no runs yet")
        return
    click.echo(f"  snapshot: {_n(report.get('snapshot_profiles', 0))} profile(s)")
    for run in report["runs"]:
        summary = run.get("summary") or {}
        click.echo(
            f"  {run['run_id']} {run['outcome']:<13} exit {run['exit_code']} "
            f"sent {summary.get('sent', 0)} batches {summary.get('batches', 0)} "
            f"rejected {summary.get('rejected_total', 0)} failed {summary.get('failed', 0)}"
            + (" (dry run)" if run["dry_run"] else "")
        )
    for batch in report["pending_batches"]:
        click.echo(
            f"  pending batch {batch['batch_id']} ({batch['rows']} rows) from {batch['run_id']}"
        )
    for row in report["failed_rows"]:
        click.echo(f"  failed {row['id']!r} in {row['batch_id']}: {row['reason']}")
    for row in report["rejects"]:
        detail = f" ({row['detail']})" if row["detail"] else ""
        click.echo(f"  rejected {row['id']!r}: {row['reason']}{detail}")


def render_validate(report: dict[str, Any]) -> None:
    identity = report["identity"]
    click.echo(f"sync '{report['sync']}': config and source OK")
    click.echo(f"  id: {identity['column']} ({identity['type']}) as {identity['as']}")
    for attr in report["attributes"]:
        click.echo(f"  {attr['attribute']}: {attr['column'] or 'static'} ({attr['type']})")
    click.echo(f"  target: {report['target']['url']}: {report['target']['status']}")
