"""``target-sync sync``: run one or more syncs, with progress and a summary each."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import ConfigError, TargetSyncError
from ..result import EXIT_FAILED, EXIT_OK, EXIT_USAGE, exit_severity
from .configs import config_files, load_and_mask, name_clashes, selected
from .context import Context, fail, guarded, report_error
from .logs import log_event
from .options import logging_options, selection_options

if TYPE_CHECKING:
    from ..config import SyncConfig

log = logging.getLogger("connector.cli")


@click.command(short_help="Run the sync(s): config files, or folders of *.yaml, in turn.")
@click.argument("configs", nargs=-1, required=True, type=click.Path())
@click.option(
    "--dry-run", is_flag=True, help="Send nothing and leave the snapshot as it is; count only."
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    help="With --dry-run: write the exact batch files that would be POSTed to this folder.",
)
@click.option(
    "--strict",
    is_flag=True,
    default=None,
    help="Fail before sending if any row is rejected (default: the config's 'strict').",
)
@click.option(
    "--force",
    is_flag=True,
    help="Send even when a guardrail (max_removed_fraction, min_rows) trips.",
)
@selection_options
@logging_options
@click.pass_obj
def sync(
    ctx: Context,
    configs: tuple[str, ...],
    dry_run: bool,
    out_dir: str | None,
    strict: bool | None,
    force: bool,
    select: tuple[str, ...],
    exclude: tuple[str, ...],
) -> None:
    """Run the sync of each CONFIG file, or of every *.yaml in a CONFIG folder, in turn.

    Shows progress per stage on a terminal (plain lines otherwise), then a summary: rows
    read, new/changed/removed/unchanged, rejects by reason, batches and bytes sent, failed
    rows, stale NULLs, time per stage and what happens next. Each run gets its own outcome;
    the exit code is the worst of them. Before running several configs, warns when two of
    them write different attributes of the same Target profiles (they would undo each other).

    A config's optional notify: section POSTs a JSON summary to a webhook when a run fails
    or leaves rows behind; a failing webhook never changes the run's outcome.

    --select and --exclude choose configs as dbt chooses models: tag:daily, name:vip_*
    (or a bare name), path:configs/crm (or a bare path); spaces mean or, commas mean and.
    """
    from ..operations import attribute_conflicts
    from .reports import render_overview

    if out_dir and not dry_run:
        fail(ctx, "--out writes batch files instead of sending: use it with --dry-run", EXIT_USAGE)
    files = guarded(ctx, lambda: list(config_files(configs)))
    loaded: list[tuple[Path, SyncConfig | ConfigError]] = []
    for file in files:
        try:
            loaded.append((file, load_and_mask(file)))
        except ConfigError as exc:
            loaded.append((file, exc))
    if select or exclude:
        loaded = guarded(ctx, lambda: selected(loaded, select, exclude))
    good = [config for _, config in loaded if not isinstance(config, ConfigError)]
    clash = name_clashes(good)
    if clash:
        fail(ctx, clash, EXIT_USAGE, error="ConfigError")
    if len(good) > 1:
        for warning in attribute_conflicts(good):
            log.warning(
                "%s", warning, extra={"event_fields": {"event": "warning", "message": warning}}
            )

    worst = EXIT_OK
    outcomes: list[dict[str, Any]] = []
    for file, config in loaded:
        name = file.stem if isinstance(config, ConfigError) else config.name
        if isinstance(config, ConfigError):
            report_error(ctx.json, str(config), config.exit_code, error="ConfigError")
            code, outcome = config.exit_code, "config_error"
        else:
            code, outcome = _run_one(ctx, config, dry_run, out_dir, strict, force)
        outcomes.append({"sync": name, "config": str(file), "outcome": outcome, "exit_code": code})
        worst = max(worst, code, key=exit_severity)
    if len(loaded) > 1:
        if ctx.json:
            log_event("syncs_done", "", {"exit_code": worst, "runs": outcomes})
        else:
            render_overview(outcomes, worst)
    sys.exit(worst)


def _run_one(
    ctx: Context,
    config: SyncConfig,
    dry_run: bool,
    out_dir: str | None,
    strict: bool | None,
    force: bool,
) -> tuple[int, str]:
    """Run one sync with progress and summary; returns (exit code, outcome)."""
    from ..pipeline import sync as run_sync
    from .progress import Reporter

    reporter = Reporter(ctx.log_format)
    try:
        with reporter:
            result = run_sync(
                config,
                dry_run=dry_run,
                out_dir=out_dir,
                strict=strict,
                force=force,
                listener=reporter.on_event,
            )
    except TargetSyncError as exc:
        if ctx.debug:
            raise
        report_error(ctx.json, str(exc), exc.exit_code, sync=config.name, error=type(exc).__name__)
        return exc.exit_code, "failed"
    except Exception as exc:
        if ctx.debug:
            raise
        message = (
            f"{config.label}: unexpected {type(exc).__name__}: {exc} "
            "(rerun with --debug for details)"
        )
        report_error(ctx.json, message, EXIT_FAILED, sync=config.name, error=type(exc).__name__)
        return EXIT_FAILED, "failed"
    reporter.summary(result)
    return result.exit_code, result.outcome
