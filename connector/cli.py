"""The ``target-sync`` command: parse, call one library function, render, exit.

This is the only module that knows about the terminal and turns exceptions into exit codes:
0 all delivered, 1 the run failed, 2 usage or config error, 3 some profiles were rejected or
failed (listed, and retried by the next run).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import click

from .errors import ConfigError, TargetSyncError
from .logs import configure_logging
from .result import EXIT_FAILED, EXIT_OK, EXIT_USAGE

T = TypeVar("T")

log = logging.getLogger("connector.cli")


class Context:
    """Options shared by every subcommand."""

    def __init__(self, debug: bool, log_format: str) -> None:
        self.debug = debug
        self.log_format = log_format


def guarded(ctx: Context, action: Callable[[], T]) -> T:
    """Run ``action``; on a known error print one line and exit with its code."""
    try:
        return action()
    except TargetSyncError as exc:
        if ctx.debug:
            raise
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted; the snapshot holds only what Target accepted; rerunning is safe", 130)
    except Exception as exc:  # the CLI must never dump a traceback without --debug
        if ctx.debug:
            raise
        _fail(
            f"unexpected error: {type(exc).__name__}: {exc} (rerun with --debug for details)",
            EXIT_FAILED,
        )
    raise AssertionError("unreachable")


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one JSON object per event on stderr, for log shippers and orchestrators.",
)
@click.version_option(package_name="target-sync")
@click.pass_context
def main(click_ctx: click.Context, debug: bool, log_format: str) -> None:
    """Keep Adobe Target visitor profiles in step with a warehouse query or dbt model.

    Each run streams the query result, compares it with the snapshot of what Target last
    accepted, and sends only the new and changed profiles. Exit codes: 0 delivered,
    1 failed, 2 usage or config error, 3 some profiles rejected or failed (retried next run).
    """
    configure_logging(debug=debug, log_format=log_format)
    click_ctx.obj = Context(debug, log_format)


def _config_files(paths: tuple[str, ...]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
            if not found:
                raise ConfigError(f"{path}: no *.yaml or *.yml config files in this folder")
            yield from found
        else:
            yield path


@main.command()
@click.argument("configs", nargs=-1, required=True, type=click.Path())
@click.option("--dry-run", is_flag=True, help="Send nothing and leave the snapshot as it is.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    help="With --dry-run: write the exact batch files that would be POSTed to this folder.",
)
@click.option(
    "--strict", is_flag=True, default=None, help="Fail before sending if any row is rejected."
)
@click.option(
    "--force",
    is_flag=True,
    help="Send even when a guardrail (max_removed_fraction, min_rows) trips.",
)
@click.pass_obj
def sync(
    ctx: Context,
    configs: tuple[str, ...],
    dry_run: bool,
    out_dir: str | None,
    strict: bool | None,
    force: bool,
) -> None:
    """Run the sync(s) of CONFIG files or folders, one after the other.

    The exit code is the worst of the runs.
    """
    from .pipeline import sync as run_sync
    from .render import Reporter

    if out_dir and not dry_run:
        _fail("--out writes batch files instead of sending: use it with --dry-run", EXIT_USAGE)
    files = guarded(ctx, lambda: list(_config_files(configs)))
    worst = EXIT_OK
    for file in files:
        reporter = Reporter(json_events=ctx.log_format == "json")
        try:
            with reporter:
                result = run_sync(
                    file,
                    dry_run=dry_run,
                    out_dir=out_dir,
                    strict=strict,
                    force=force,
                    listener=reporter.on_event,
                )
            reporter.summary(result)
            code = result.exit_code
        except TargetSyncError as exc:
            if ctx.debug:
                raise
            click.echo(f"error: {exc}", err=True)
            code = exc.exit_code
        except Exception as exc:
            if ctx.debug:
                raise
            click.echo(
                f"error: {file}: unexpected {type(exc).__name__}: {exc} "
                "(rerun with --debug for details)",
                err=True,
            )
            code = EXIT_FAILED
        worst = max(worst, code, key=_severity)
    sys.exit(worst)


def _severity(code: int) -> int:
    return {EXIT_OK: 0, 3: 1, EXIT_FAILED: 2, EXIT_USAGE: 3}.get(code, 2)


@main.command()
@click.argument("config", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--samples", default=5, show_default=True, help="How many sample profiles to show.")
@click.pass_obj
def plan(ctx: Context, config: str, as_json: bool, samples: int) -> None:
    """Show what the next run would send: counts, field changes, samples. Sends nothing."""
    from .operations import plan as make_plan
    from .render import render_plan

    report = guarded(ctx, lambda: make_plan(config, sample=samples))
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        render_plan(report)


@main.command()
@click.argument("config", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.pass_obj
def validate(ctx: Context, config: str, as_json: bool) -> None:
    """Check the config, the source's columns and types, and that Target is reachable."""
    from .operations import validate as run_validate
    from .render import render_validate

    report = guarded(ctx, lambda: run_validate(config))
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        render_validate(report)


@main.command()
@click.argument("config", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.option("--runs", default=10, show_default=True, help="How many recent runs to show.")
@click.pass_obj
def status(ctx: Context, config: str, as_json: bool, runs: int) -> None:
    """Show the last runs, pending batches, failed rows and rejects."""
    from .operations import status as read_status
    from .render import render_status

    report = guarded(ctx, lambda: read_status(config, runs=runs))
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        render_status(report)


@main.command()
@click.argument("config", type=click.Path())
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def reset(ctx: Context, config: str, yes: bool) -> None:
    """Forget the snapshot: the next run sends every profile again."""
    from .operations import reset as forget

    if not yes and sys.stdin.isatty():
        click.confirm("Forget the snapshot? The next run resends every profile", abort=True)
    count = guarded(ctx, lambda: forget(config))
    click.echo(f"snapshot of {count} profile(s) forgotten; the next run sends every profile")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8899, show_default=True, help="Port to listen on (0: any).")
@click.option("--client-code", default="demo", show_default=True, help="Target client code.")
@click.pass_obj
def emulator(ctx: Context, host: str, port: int, client_code: str) -> None:
    """Run the local Target emulator (for demos and development) until interrupted."""
    from .emulator import serve_forever

    guarded(ctx, lambda: serve_forever(host=host, port=port, client_code=client_code))


@main.command()
@click.option(
    "--workdir",
    type=click.Path(file_okay=False),
    default="demo-work",
    show_default=True,
    help="Where the demo warehouse and state are created.",
)
@click.pass_obj
def demo(ctx: Context, workdir: str) -> None:
    """Run the whole path on the embedded default: DuckDB warehouse + local emulator."""
    from .demo import run_demo

    code = guarded(ctx, lambda: run_demo(Path(workdir)))
    sys.exit(code)
