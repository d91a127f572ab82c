"""The commands about one sync's config: plan, validate, verify, status, reset."""

from __future__ import annotations

import json
import sys

import click

from ..result import EXIT_OK
from .configs import load_and_mask
from .context import Context, fail, guarded
from .options import logging_options


@click.command(short_help="What the next run would send: counts, field changes, samples.")
@click.argument("config", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON on stdout.")
@click.option(
    "--samples", default=5, show_default=True, help="How many sample profiles to show (old → new)."
)
@logging_options
@click.pass_obj
def plan(ctx: Context, config: str, as_json: bool, samples: int) -> None:
    """Show what the next run of CONFIG would send; sends nothing, changes nothing.

    Counts (new, changed, removed, unchanged, rejected by reason), how many profiles each
    attribute changes for, why everything would be resent (first run, changed mapping),
    sample profiles old → new, and whether the guardrails would stop the run.
    """
    from ..operations import plan as make_plan
    from .reports import render_plan

    loaded = guarded(ctx, lambda: load_and_mask(config))
    report = guarded(ctx, lambda: make_plan(loaded, sample=samples))
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        render_plan(report)


@click.command(short_help="Check the config, source columns and types, and Target's answer.")
@click.argument("config", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON on stdout.")
@logging_options
@click.pass_obj
def validate(ctx: Context, config: str, as_json: bool) -> None:
    """Check CONFIG, the source's columns and types, and ask Target (uploading nothing)
    whether it knows the client code and accepts the token.

    Exits 0 when a sync would get through; 1 when Target is unreachable, does not know the
    client code, or refuses (or misses) the token; 2 for a config or mapping error.
    """
    from ..operations import validate as run_validate
    from .reports import render_validate

    loaded = guarded(ctx, lambda: load_and_mask(config))
    report = guarded(ctx, lambda: run_validate(loaded))
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        render_validate(report)
    if report["exit_code"] != EXIT_OK:
        fail(
            ctx,
            f"{loaded.label}: Target check failed: {report['target']['status']}; a sync would fail",
            report["exit_code"],
            sync=loaded.name,
            error="TargetCheckFailed",
        )


@click.command(short_help="Read a sample back from Target and compare it with the snapshot.")
@click.argument("config", type=click.Path())
@click.option(
    "--sample",
    default=200,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many synced profiles to read back, drawn at random.",
)
@click.option(
    "--max-mismatch",
    default=0.005,
    show_default=True,
    type=click.FloatRange(min=0, max=1),
    help="Exit 3 when the share of judged profiles that differ is above this (0.005 = 0.5%).",
)
@click.option(
    "--settle-minutes",
    default=24 * 60,
    show_default=True,
    type=click.FloatRange(min=0),
    help="A profile sent less than this long ago that does not match yet is 'too recent', "
    "not counted (Target takes up to 24 hours to show updates).",
)
@click.option("--seed", type=int, default=None, help="Draw the same sample again (any integer).")
@click.option(
    "--resend-mismatched",
    is_flag=True,
    help="Mark the mismatched and not-found profiles so the next run sends them again "
    "(takes the run lock; verify changes nothing without it).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@logging_options
@click.pass_obj
def verify(
    ctx: Context,
    config: str,
    sample: int,
    max_mismatch: float,
    settle_minutes: float,
    seed: int | None,
    resend_mismatched: bool,
    as_json: bool,
) -> None:
    """Read a random sample of the profiles CONFIG synced back from Target (its profile
    API, with the token when configured, at the configured pace) and compare every attribute
    sent with a value with what Target holds.

    Reports matched, mismatched (attribute, expected, found), not found, and too recent to
    judge, with the mismatch rate and its 95% confidence interval. Changes nothing unless
    --resend-mismatched. Exit codes: 0 the rate is within --max-mismatch; 3 it is over;
    1 Target or the state store could not be read; 2 usage or config error.
    """
    from ..verify import verify as run_verify
    from .reports import render_verify

    loaded = guarded(ctx, lambda: load_and_mask(config))
    if not as_json and not ctx.json:
        calls = loaded.target.calls_per_minute
        click.echo(
            f"reading up to {sample:,} profiles of sync '{loaded.name}' back from Target at "
            f"{calls} calls a minute (about {max(1, round(sample / calls))} min)",
            err=True,
        )
    report = guarded(
        ctx,
        lambda: run_verify(
            loaded,
            sample=sample,
            max_mismatch=max_mismatch,
            settle_minutes=settle_minutes,
            seed=seed,
            resend_mismatched=resend_mismatched,
        ),
    )
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        render_verify(report)
    sys.exit(report.exit_code)


@click.command(short_help="Last runs, pending batches, failed rows, rejects.")
@click.argument("config", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON on stdout.")
@click.option("--runs", default=10, show_default=True, help="How many recent runs to show.")
@logging_options
@click.pass_obj
def status(ctx: Context, config: str, as_json: bool, runs: int) -> None:
    """Show the run history of CONFIG: last runs with counts and outcome, batches Target is
    still processing, and the failed and rejected rows (with reasons) of the last run.

    The history keeps the last state.keep_runs runs (default 200).
    """
    from ..operations import status as read_status
    from .reports import render_status

    loaded = guarded(ctx, lambda: load_and_mask(config))
    report = guarded(ctx, lambda: read_status(loaded, runs=runs))
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        render_status(report)


@click.command(short_help="Forget the snapshot: the next run sends every profile.")
@click.argument("config", type=click.Path())
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@logging_options
@click.pass_obj
def reset(ctx: Context, config: str, yes: bool) -> None:
    """Forget the snapshot of CONFIG: the next run sends every profile again."""
    from ..operations import reset as forget

    loaded = guarded(ctx, lambda: load_and_mask(config))
    if not yes and sys.stdin.isatty():
        click.confirm("Forget the snapshot? The next run resends every profile", abort=True)
    report = guarded(ctx, lambda: forget(loaded))
    if report.damaged_kept_as:
        click.echo(
            f"the damaged state file was kept as {report.damaged_kept_as}; a new one is started "
            "and every sync in it sends all its profiles on its next run"
        )
    else:
        click.echo(
            f"snapshot of {report.forgotten} profile(s) forgotten; the next run sends every profile"
        )
