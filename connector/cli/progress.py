"""Progress while a run goes: a bar per stage on a terminal, plain lines elsewhere.

On a terminal, progress is drawn with ``rich`` on stderr (a bar per stage: rows read, diff,
profiles uploaded, batch statuses polled); elsewhere (cron, CI, an orchestrator's log) each
stage prints one plain line. With ``--log-format json`` events go to the JSON log instead and
nothing else is drawn.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

import click

from ..result import PROGRESS_ONLY
from .human import duration, plural, reason_counts, short_id, thousands
from .logs import log_event
from .reports import render_summary

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from ..result import Event, SyncResult


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
            # connector/notify.py logs its own events; progress ticks are for displays only.
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
        count = f"0/{thousands(total)} {unit}" if total is not None else ""
        self._tasks[stage] = self._progress.add_task(description, total=total, count=count)
        self._counts[stage] = (0, total)

    def _set(self, stage: str, completed: int, unit: str) -> None:
        assert self._progress is not None
        task = self._tasks.get(stage)
        if task is not None:
            self._progress.update(task, completed=completed, count=f"{thousands(completed)} {unit}")

    def _advance(self, stage: str, step: int, unit: str, description: str | None) -> None:
        assert self._progress is not None
        task = self._tasks.get(stage)
        if task is None:
            return
        done, total = self._counts[stage]
        done += step
        self._counts[stage] = (done, total)
        count = (
            f"{thousands(done)}/{thousands(total)} {unit}"
            if total is not None
            else f"{thousands(done)} {unit}"
        )
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
    stage, seconds = f["stage"], duration(f["seconds"])
    if stage == "read":
        rejected = f.get("rejected") or {}
        extra = (
            f"; rejected {thousands(sum(rejected.values()))} ({reason_counts(rejected)})"
            if rejected
            else ""
        )
        return f"read {plural(f['rows'], 'row')}{extra} ({seconds})"
    if stage == "diff":
        return (
            f"diff: {thousands(f['new'])} new, {thousands(f['changed'])} changed, "
            f"{thousands(f['removed'])} removed, "
            f"{thousands(f['unchanged'])} unchanged"
            + (f", {thousands(f['retried'])} retried" if f.get("retried") else "")
            + (
                f" ({thousands(f['unrecorded'])} of an upload a stopped run never recorded)"
                if f.get("unrecorded")
                else ""
            )
            + f" ({seconds})"
        )
    if stage == "upload":
        return f"upload: {plural(f['batches'], 'batch')}, {plural(f['bytes'], 'byte')} ({seconds})"
    if stage == "status":
        pending = f", {plural(f['pending'], 'batch')} still processing" if f["pending"] else ""
        return f"batch status: {plural(f['failed'], 'row')} failed{pending} ({seconds})"
    if stage == "resolve_pending":
        return (
            f"earlier batches: {f.get('complete', 0)} complete, "
            f"{plural(f.get('reverted_rows', 0), 'row')} reverted for resending, "
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
        text = f"sending {plural(f['rows'], 'profile')}" if f["rows"] else None
    elif event.name == "batch_uploaded":
        n = f.get("retries") or 0
        retries = ", 1 retry" if n == 1 else f", {n} retries" if n else ""
        text = (
            f"batch {f['seq']} uploaded: {plural(f['rows'], 'row')}, "
            f"{thousands(f['bytes'])} bytes, "
            f"id {short_id(f['batch_id'])}, HTTP {f['http_status']}, "
            f"{f['elapsed']:.1f}s{retries}"
        )
    elif event.name == "batch_written":
        text = (
            f"batch {f['seq']} written: {plural(f['rows'], 'row')}, {thousands(f['bytes'])} bytes"
        )
    elif event.name == "status_start":
        text = f"polling the status of {plural(f['batches'], 'batch')}"
    elif event.name == "batch_status":
        if f["state"] != "complete":
            text = (
                f"batch {short_id(f['batch_id'])} ended {f['state']}; the next run resends its rows"
            )
        elif f.get("failed"):
            text = (
                f"batch {short_id(f['batch_id'])}: {plural(f['failed'], 'row')} failed in "
                "Target; "
                "the next run resends them"
            )
    elif event.name == "pending_found":
        text = f"{plural(f['batches'], 'batch')} from an earlier run still unconfirmed"

    elif event.name == "notify_sent":
        text = f"posted the run summary to the webhook at {f['webhook_host']}"
    if text is None or short:
        return text
    return f"sync '{event.sync}': {text}"
