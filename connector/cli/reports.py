"""The summaries the CLI prints on stdout in text mode: of a run, several runs, a plan,
the status, validate and verify."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from .human import duration, plural, quoted_id, reason_counts, short_id, thousands

if TYPE_CHECKING:
    from ..operations import PlanReport
    from ..result import SyncResult
    from ..verify import VerifyReport


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
        f"sync '{result.sync}': {head} in {duration(result.duration_seconds)} "
        f"(run {result.run_id}, exit {result.exit_code})"
    )
    rows = [("read", plural(result.rows_read, "row"))]
    if result.rejected:
        rows.append(
            (
                "rejected",
                f"{plural(result.rejected_total, 'row')} not sent "
                f"({reason_counts(result.rejected)})",
            )
        )
    rows.append(
        (
            "diff",
            f"{thousands(result.new)} new, {thousands(result.changed)} changed, "
            f"{thousands(result.removed)} removed, "
            f"{thousands(result.unchanged)} unchanged"
            + (f", {thousands(result.retried)} retried" if result.retried else ""),
        )
    )
    if result.full_resend_reason:
        rows.append(("full resend", result.full_resend_reason))
    if result.resolved_from_earlier:
        earlier = result.resolved_from_earlier
        rows.append(
            (
                "earlier",
                f"{plural(earlier.get('complete', 0), 'batch')} of an earlier run confirmed, "
                f"{plural(earlier.get('reverted_rows', 0), 'row')} reverted for resending",
            )
        )
    verb = "would send" if result.dry_run else "sent"
    removed = f" + {thousands(result.removed_sent)} removed" if result.removed_sent else ""
    rows.append(
        (
            verb,
            f"{plural(result.sent, 'profile')}{removed} in {plural(result.batches, 'batch')}, "
            f"{plural(result.bytes_sent, 'byte')}",
        )
    )
    if result.batch_files:
        shown = ", ".join(result.batch_files[:3])
        more = f" and {len(result.batch_files) - 3} more" if len(result.batch_files) > 3 else ""
        rows.append(("wrote", shown + more))
    if not result.dry_run:
        rows.append(("failed", f"{plural(result.failed, 'row')} failed in Target"))
    if result.not_found:
        rows.append(
            (
                "not found",
                f"{plural(result.not_found, 'profile')} not found in Target (API v1); their "
                "batches are resent by the next run",
            )
        )
    if result.pending_batches:
        rows.append(("pending", f"{plural(result.pending_batches, 'batch')} still processing"))
    if result.stale_nulls:
        stale = ", ".join(f"{name} {thousands(n)}" for name, n in result.stale_nulls.items())
        rows.append(("stale NULLs", f"{stale} (Target keeps the old value)"))
    if result.stage_seconds:
        rows.append(
            ("stages", ", ".join(f"{k} {duration(v)}" for k, v in result.stage_seconds.items()))
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
    from ..operations import MIGRATION_NOTE

    click.echo(
        f"plan for sync '{report.sync}' (nothing sent, snapshot unchanged): "
        f"{plural(report.rows_read, 'row')} read"
    )
    rejected = sum(report.rejected.values())
    removed_note = {
        "ignore": "forgotten, not sent (on_removed: ignore)",
        "set": "sent once with the on_removed attributes",
    }.get(report.on_removed, report.on_removed)
    rows = [
        ("new", f"{plural(report.new, 'profile')} would be sent"),
        ("changed", f"{plural(report.changed, 'profile')} would be sent"),
        ("removed", f"{plural(report.removed, 'profile')}: {removed_note}"),
        ("unchanged", f"{plural(report.unchanged, 'profile')}, not sent"),
        (
            "rejected",
            f"{plural(rejected, 'row')} ({reason_counts(report.rejected)})" if rejected else "none",
        ),
        ("guardrails", report.guardrail),
    ]
    if report.full_resend_reason:
        rows.insert(0, ("full resend", report.full_resend_reason))
    if report.fingerprint_migration:
        rows.append(("migration", MIGRATION_NOTE))
    if report.pending_batches:
        rows.append(
            (
                "pending",
                f"{plural(report.pending_batches, 'batch')} of an earlier run unconfirmed; "
                "the next run resolves them first",
            )
        )
    if report.unconfirmed:
        rows.append(
            (
                "unrecorded",
                f"{plural(report.unconfirmed, 'profile')} of an upload an earlier run never "
                "recorded (it was stopped mid-upload); resent, counted as retried",
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
            click.echo(f"    {name} changed for {plural(count, 'profile')}")
    if report.stale_nulls:
        click.echo("  stale NULLs (Target cannot delete a value; give 'null:' a replacement):")
        for name, count in report.stale_nulls.items():
            click.echo(
                f"    {name} turned NULL for {plural(count, 'profile')}; Target keeps the old value"
            )
    if report.reject_samples:
        click.echo("  rejected rows (sample):")
        for reject in report.reject_samples[:10]:
            detail = f" ({reject['detail']})" if reject["detail"] else ""
            click.echo(f"    {quoted_id(reject['id'])}: {reject['reason']}{detail}")
    if report.samples:
        click.echo("  samples (old → new; NULL is sent as an empty value):")
    for sample in report.samples:
        click.echo(f"    {sample['kind']} {quoted_id(sample['id'])}:")
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
    click.echo(f"sync '{report['sync']}' ({report['state']})")
    running = report.get("running")
    if running is not None:
        progress = running.get("progress") or {}
        counts = ", ".join(
            f"{key.replace('_', ' ')} {thousands(value)}"
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
    click.echo(f"  snapshot: {plural(report.get('snapshot_profiles', 0), 'profile')}")
    click.echo("  last runs (newest first):")
    header = (
        f"    {'run':<24} {'started (UTC)':<19} {'outcome':<13} {'exit':>4} {'read':>10} "
        f"{'sent':>10} {'batches':>7} {'rejected':>8} {'failed':>7} {'took':>7}"
    )
    click.echo(header)
    for run in report["runs"]:
        s = run.get("summary") or {}
        started = str(run.get("started_at") or "")[:19].replace("T", " ")
        took = duration(s["duration_seconds"]) if s.get("duration_seconds") else ""
        exit_code = "" if run["exit_code"] is None else run["exit_code"]
        click.echo(
            f"    {run['run_id']:<24} {started:<19} {run['outcome']:<13} {exit_code:>4} "
            f"{thousands(s.get('rows_read', 0)):>10} {thousands(s.get('sent', 0)):>10} "
            f"{s.get('batches', 0):>7} {thousands(s.get('rejected_total', 0)):>8} "
            f"{thousands(s.get('failed', 0)):>7} {took:>7}" + (" dry run" if run["dry_run"] else "")
        )
    last = report["runs"][0]
    if last.get("message") and last["outcome"] in ("failed", "partial"):
        click.echo(f"  last run: {last['message']}")
    pending = report.get("pending_batches") or []
    if pending:
        click.echo(f"  pending batches ({len(pending)}; the next run checks them first):")
        for batch in pending:
            click.echo(
                f"    {short_id(batch['batch_id'])} ({plural(batch['rows'], 'row')}) "
                "uploaded by run "
                f"{batch['run_id']}"
            )
    failed = report.get("failed_rows") or []
    if failed:
        click.echo(f"  failed rows of the last run (resent by the next run): {len(failed)}")
        for row in failed[:20]:
            click.echo(
                f"    {quoted_id(row['id'])} in batch {short_id(row['batch_id'])}: {row['reason']}"
            )
    rejects = report.get("rejects") or []
    if rejects:
        by_reason = (last.get("summary") or {}).get("rejected") or {}
        counts = f" ({reason_counts(by_reason)})" if by_reason else ""
        click.echo(f"  rejected rows of the last run{counts}; retried once the data is fixed:")
        for row in rejects[:20]:
            detail = f" ({row['detail']})" if row["detail"] else ""
            click.echo(f"    {quoted_id(row['id'])}: {row['reason']}{detail}")
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
        f"verify of sync '{report.sync}': {plural(report.sampled, 'profile')} of "
        f"{thousands(report.snapshot_profiles)} synced read back from Target (client "
        f"'{report.client_code}')"
    )
    if report.sampled:
        settle = f"{report.settle_minutes:g} min"
        rows = [
            ("matched", thousands(report.matched)),
            ("mismatched", thousands(report.mismatched)),
            ("not found", thousands(report.not_found)),
            (
                "too recent",
                f"{thousands(report.too_recent)} (sent less than {settle} ago, not showing yet)",
            ),
        ]
        width = max(len(label) for label, _ in rows)
        for label, text in rows:
            click.echo(f"  {label:<{width}}  {text}")
    for entry in report.mismatches[:SHOWN]:
        click.echo(
            f"  mismatch: {quoted_id(entry['id'])}: {entry['attribute']} expected "
            f"{entry['expected']!r}, found {entry['found']!r}"
        )
    _more(len(report.mismatches), "mismatches")
    for label, ids in (("not found", report.not_found_ids), ("too recent", report.too_recent_ids)):
        if ids:
            shown = ", ".join(quoted_id(i) for i in ids[:SHOWN])
            more = f" and {len(ids) - SHOWN} more" if len(ids) > SHOWN else ""
            click.echo(f"  {label}: {shown}{more}")
    if report.marked_for_resend is not None:
        click.echo(
            f"  marked {plural(report.marked_for_resend, 'profile')} for resending by the next run"
        )
    outcome = "OVER the limit" if report.exit_code else "OK"
    click.echo(f"{outcome}: {report.verdict} (exit {report.exit_code})")


SHOWN = 20


def _more(count: int, what: str) -> None:
    if count > SHOWN:
        click.echo(f"  ... and {count - SHOWN} more {what} ('verify --json' lists them all)")
