"""The ``target-sync`` command: parse, call one library function, render, exit.

This is the only module that knows about the terminal and turns exceptions into exit codes:
0 all delivered, 1 the run failed, 2 usage or config error, 3 some profiles were rejected or
failed (listed, and retried by the next run). Under ``--log-format json`` every line written
to stderr is one JSON object, errors (usage errors included) as ``{"event": "error", ...}``.

Heavy modules (duckdb, pyarrow, the warehouse drivers) are imported inside the commands, so
``--help`` stays fast.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from .errors import ConfigError, RunInterrupted, TargetSyncError, interrupt_exit_code
from .logs import add_secrets, configure_logging, log_error, log_event
from .result import EXIT_FAILED, EXIT_OK, EXIT_USAGE, exit_severity

if TYPE_CHECKING:
    from .config import SyncConfig

T = TypeVar("T")

log = logging.getLogger("connector.cli")

LOG_FORMAT_ENV = "TARGET_SYNC_LOG_FORMAT"
# Loggers whose INFO lines a person needs in text mode too: which dbt profile and target a
# run reads, and the model's latest build.
SHOWN_INFO_LOGGERS = ("connector.sources.dbt_source",)
EXIT_INTERRUPTED = 130
INTERRUPTED = "interrupted; the snapshot holds only what Target accepted; rerunning is safe"


class Context:
    """Options shared by every subcommand."""

    def __init__(self, debug: bool, log_format: str) -> None:
        self.debug = debug
        self.log_format = log_format

    @property
    def json(self) -> bool:
        return self.log_format == "json"


def report_error(json_log: bool, message: str, code: int, **fields: Any) -> None:
    """Print an error: ``error: ...`` on stderr, or an ``error`` event in the JSON log."""
    if json_log:
        log_error(message, code, **fields)
    else:
        click.echo(f"error: {message}", err=True)


def _fail(ctx: Context, message: str, code: int, **fields: Any) -> NoReturn:
    report_error(ctx.json, message, code, **fields)
    sys.exit(code)


def guarded(ctx: Context, action: Callable[[], T]) -> T:
    """Run ``action``; on a known error print one line (or JSON event) and exit with its code."""
    try:
        return action()
    except TargetSyncError as exc:
        if ctx.debug:
            raise
        _fail(ctx, str(exc), exc.exit_code, error=type(exc).__name__)
    except KeyboardInterrupt as exc:
        _fail(ctx, INTERRUPTED, interrupt_exit_code(exc), error=type(exc).__name__)
    except Exception as exc:  # the CLI must never dump a traceback without --debug
        if ctx.debug:
            raise
        _fail(
            ctx,
            f"unexpected error: {type(exc).__name__}: {exc} (rerun with --debug for details)",
            EXIT_FAILED,
            error=type(exc).__name__,
        )


def _json_requested(argv: Sequence[str]) -> bool:
    """Whether the command line (or the environment) asks for JSON logs, before parsing."""
    for index, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--log-format=json" or (
            arg == "--log-format" and index + 1 < len(argv) and argv[index + 1] == "json"
        ):
            return True
    return os.environ.get(LOG_FORMAT_ENV) == "json"


class _Cli(click.Group):
    """The command group; reports usage errors as JSON events under ``--log-format json``."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        argv = list(sys.argv[1:] if args is None else args)
        json_log = _json_requested(argv)
        _stop_on_sigterm()
        try:
            code = super().main(argv, prog_name, complete_var, False, **extra)
        except click.ClickException as exc:
            if json_log:
                configure_logging(debug=False, log_format="json")
                log_error(exc.format_message(), exc.exit_code, error=type(exc).__name__)
            else:
                exc.show()
            sys.exit(exc.exit_code)
        except click.Abort as exc:
            cause = exc.__cause__ or exc.__context__
            interrupted = isinstance(cause, KeyboardInterrupt)
            code = interrupt_exit_code(cause) if interrupted and cause else EXIT_FAILED
            if json_log:
                configure_logging(debug=False, log_format="json")
            report_error(
                json_log,
                INTERRUPTED if interrupted else "aborted",
                code,
                error=type(cause).__name__ if interrupted and cause else "Abort",
            )
            sys.exit(code)
        sys.exit(code if isinstance(code, int) else EXIT_OK)


def _stop_on_sigterm() -> None:
    """Turn SIGTERM (what cron's timeout, systemd and orchestrators send) into an exception in
    the main thread, so a run records itself as interrupted instead of vanishing."""
    import signal

    def stop(signal_number: int, frame: object) -> None:
        raise RunInterrupted(signal_number)

    with contextlib.suppress(ValueError):  # not the main thread (embedded): leave it be
        signal.signal(signal.SIGTERM, stop)


def _show_info_loggers(debug: bool) -> None:
    for name in SHOWN_INFO_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.INFO)


def _set_logging(click_ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """Callback of the per-command copies of --log-format and --debug."""
    if value is None or value is False:
        return
    ctx = click_ctx.find_object(Context)
    if ctx is None:
        return
    if param.name == "log_format":
        ctx.log_format = value
    else:
        ctx.debug = True
    configure_logging(debug=ctx.debug, log_format=ctx.log_format)
    _show_info_loggers(ctx.debug)


def _logging_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Accept --log-format and --debug after the command name too (`sync --log-format json`)."""
    command = click.option(
        "--log-format",
        type=click.Choice(["text", "json"]),
        default=None,
        expose_value=False,
        callback=_set_logging,
        help="text (default) or json: one JSON object per event on stderr. "
        "Same as the global option.",
    )(command)
    return click.option(
        "--debug",
        is_flag=True,
        default=False,
        expose_value=False,
        callback=_set_logging,
        help="Show tracebacks and debug logs. Same as the global option.",
    )(command)


def _selection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--select / --exclude, in dbt's syntax (connector/selection.py)."""
    command = click.option(
        "--exclude",
        multiple=True,
        metavar="SELECTOR",
        help="Leave out the configs these selectors match (same syntax as --select).",
    )(command)
    return click.option(
        "--select",
        "-s",
        multiple=True,
        metavar="SELECTOR",
        help="Only the configs these selectors match: tag:daily, name:vip_* (or a bare name), "
        "path:configs/crm (or a bare path); spaces mean or, commas mean and.",
    )(command)


EPILOG = f"""\b
Exit codes: 0 all delivered; 1 the run failed (source, state, lock, Target);
2 usage or config error; 3 the run finished but some rows were rejected or
failed (listed by 'target-sync status', retried by the next run).
\b
Environment: {LOG_FORMAT_ENV}=json sets --log-format json; configs read
their own ${{VARS}} (tokens, passwords, webhook URLs) from the environment.
Run 'target-sync COMMAND --help' for a command's options.
"""


@click.group(
    cls=_Cli,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EPILOG,
)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    envvar=LOG_FORMAT_ENV,
    show_envvar=True,
    help="json: one JSON object per event on stderr (run start/end, stages, batches, "
    "retries, errors), for log shippers and orchestrators.",
)
@click.version_option(package_name="target-sync")
@click.pass_context
def main(click_ctx: click.Context, debug: bool, log_format: str) -> None:
    """Keep Adobe Target visitor profiles in step with a warehouse query or dbt model.

    Each run streams the query result, compares it with the snapshot of what Target last
    accepted, and sends only the new and changed profiles.
    """
    configure_logging(debug=debug, log_format=log_format)
    _show_info_loggers(debug)
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


def _load(file: str | Path) -> SyncConfig:
    """Load a config and mask its secrets in every log line from now on."""
    from .config import load_config
    from .notify import secret_values

    config = load_config(file)
    add_secrets(secret_values(config))
    return config


@main.command(short_help="Run the sync(s): config files, or folders of *.yaml, in turn.")
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
@_selection_options
@_logging_options
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
    from .operations import attribute_conflicts
    from .render import render_overview

    if out_dir and not dry_run:
        _fail(ctx, "--out writes batch files instead of sending: use it with --dry-run", EXIT_USAGE)
    files = guarded(ctx, lambda: list(_config_files(configs)))
    loaded: list[tuple[Path, SyncConfig | ConfigError]] = []
    for file in files:
        try:
            loaded.append((file, _load(file)))
        except ConfigError as exc:
            loaded.append((file, exc))
    if select or exclude:
        loaded = guarded(ctx, lambda: _selected(loaded, select, exclude))
    good = [config for _, config in loaded if not isinstance(config, ConfigError)]
    clash = _name_clashes(good)
    if clash:
        _fail(ctx, clash, EXIT_USAGE, error="ConfigError")
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


def _name_clashes(configs: list[SyncConfig]) -> str | None:
    """Two configs of one run that would share a snapshot: same name, same state file."""
    seen: dict[tuple[str, str], SyncConfig] = {}
    for config in configs:
        key = (config.name, str(Path(config.state.path).resolve()))
        first = seen.setdefault(key, config)
        if first is not config and first.config_path != config.config_path:
            return (
                f"{first.config_path} and {config.config_path} are both sync '{config.name}' "
                f"with the state file {config.state.path}: they would share one snapshot and "
                "undo each other's work; give one of them another name (or another "
                "state.path). Nothing was run"
            )
    return None


def _selected(
    loaded: list[tuple[Path, SyncConfig | ConfigError]],
    select: tuple[str, ...],
    exclude: tuple[str, ...],
) -> list[tuple[Path, SyncConfig | ConfigError]]:
    """The loaded configs that --select picks and --exclude leaves (connector/selection.py)."""
    from .selection import Candidate
    from .selection import select as pick

    candidates = [
        Candidate(file)
        if isinstance(config, ConfigError)
        else Candidate(file, config.name, config.tags)
        for file, config in loaded
    ]
    kept = {id(candidate) for candidate in pick(candidates, select, exclude)}
    return [item for item, c in zip(loaded, candidates, strict=True) if id(c) in kept]


def _run_one(
    ctx: Context,
    config: SyncConfig,
    dry_run: bool,
    out_dir: str | None,
    strict: bool | None,
    force: bool,
) -> tuple[int, str]:
    """Run one sync with progress and summary; returns (exit code, outcome)."""
    from .pipeline import sync as run_sync
    from .render import Reporter

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


@main.command(short_help="What the next run would send: counts, field changes, samples.")
@click.argument("config", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON on stdout.")
@click.option(
    "--samples", default=5, show_default=True, help="How many sample profiles to show (old → new)."
)
@_logging_options
@click.pass_obj
def plan(ctx: Context, config: str, as_json: bool, samples: int) -> None:
    """Show what the next run of CONFIG would send; sends nothing, changes nothing.

    Counts (new, changed, removed, unchanged, rejected by reason), how many profiles each
    attribute changes for, why everything would be resent (first run, changed mapping),
    sample profiles old → new, and whether the guardrails would stop the run.
    """
    from .operations import plan as make_plan
    from .render import render_plan

    loaded = guarded(ctx, lambda: _load(config))
    report = guarded(ctx, lambda: make_plan(loaded, sample=samples))
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        render_plan(report)


@main.command(short_help="Check the config, source columns and types, and Target's answer.")
@click.argument("config", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON on stdout.")
@_logging_options
@click.pass_obj
def validate(ctx: Context, config: str, as_json: bool) -> None:
    """Check CONFIG, the source's columns and types, and ask Target (uploading nothing)
    whether it knows the client code and accepts the token.

    Exits 0 when a sync would get through; 1 when Target is unreachable, does not know the
    client code, or refuses (or misses) the token; 2 for a config or mapping error.
    """
    from .operations import validate as run_validate
    from .render import render_validate

    loaded = guarded(ctx, lambda: _load(config))
    report = guarded(ctx, lambda: run_validate(loaded))
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        render_validate(report)
    if report["exit_code"] != EXIT_OK:
        _fail(
            ctx,
            f"{loaded.label}: Target check failed: {report['target']['status']}; a sync would fail",
            report["exit_code"],
            sync=loaded.name,
            error="TargetCheckFailed",
        )


@main.command(short_help="Read a sample back from Target and compare it with the snapshot.")
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
@_logging_options
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
    1 Target or the state file could not be read; 2 usage or config error.
    """
    from .render import render_verify
    from .verify import verify as run_verify

    loaded = guarded(ctx, lambda: _load(config))
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


@main.command(short_help="Last runs, pending batches, failed rows, rejects.")
@click.argument("config", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON on stdout.")
@click.option("--runs", default=10, show_default=True, help="How many recent runs to show.")
@_logging_options
@click.pass_obj
def status(ctx: Context, config: str, as_json: bool, runs: int) -> None:
    """Show the run history of CONFIG: last runs with counts and outcome, batches Target is
    still processing, and the failed and rejected rows (with reasons) of the last run.

    The history keeps the last state.keep_runs runs (default 200).
    """
    from .operations import status as read_status
    from .render import render_status

    loaded = guarded(ctx, lambda: _load(config))
    report = guarded(ctx, lambda: read_status(loaded, runs=runs))
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        render_status(report)


@main.command(short_help="Forget the snapshot: the next run sends every profile.")
@click.argument("config", type=click.Path())
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_logging_options
@click.pass_obj
def reset(ctx: Context, config: str, yes: bool) -> None:
    """Forget the snapshot of CONFIG: the next run sends every profile again."""
    from .operations import reset as forget

    loaded = guarded(ctx, lambda: _load(config))
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


@main.command(short_help="The local Target emulator, for demos and development.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8899, show_default=True, help="Port to listen on (0: any).")
@click.option("--client-code", default="demo", show_default=True, help="Target client code.")
@_logging_options
@click.pass_obj
def emulator(ctx: Context, host: str, port: int, client_code: str) -> None:
    """Run the local Target emulator (for demos and development) until interrupted.

    Once it listens, prints one line on stdout with its URL (the actual port with --port 0),
    to use as target.base_url; then one line per request on stderr (a JSON object each
    under --log-format json). Fault switches are set with POST /_emulator/faults.
    """
    from .emulator import Emulator, serve_forever
    from .logs import show_request_log

    show_request_log("connector.emulator", ctx.log_format)

    def ready(emu: Emulator) -> None:
        click.echo(
            f"Target emulator for client '{emu.client_code}' listening on {emu.base_url} "
            "(Ctrl+C to stop)"
        )

    def run() -> None:
        try:
            serve_forever(host=host, port=port, client_code=client_code, on_ready=ready)
        except OSError as exc:  # binding the port: the only OSError that reaches here
            _fail(ctx, _cannot_listen(host, port, exc), EXIT_FAILED, error=type(exc).__name__)

    guarded(ctx, run)


def _cannot_listen(host: str, port: int, exc: OSError) -> str:
    """One line saying why the emulator cannot listen, and what to do."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        advice = "another program uses it (another emulator?); choose another --port, or --port 0"
        return f"the emulator cannot listen on {where}: the port is in use; {advice}"
    if exc.errno == errno.EACCES:
        return (
            f"the emulator cannot listen on {where}: permission denied (ports below 1024 need "
            "privileges); choose a port above 1024, or --port 0"
        )
    reason = exc.strerror or str(exc)
    return f"the emulator cannot listen on {where}: {reason}; check --host and --port"


@main.command(short_help="The whole path on the embedded default: DuckDB + emulator.")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False),
    default="demo-work",
    show_default=True,
    help="Where the demo warehouse and state are created.",
)
@_logging_options
@click.pass_obj
def demo(ctx: Context, workdir: str) -> None:
    """Run the whole path on the embedded default: DuckDB warehouse + local emulator."""
    from .demo import run_demo

    code = guarded(ctx, lambda: run_demo(Path(workdir)))
    sys.exit(code)


@main.group(short_help="dbt integration: exposures for the syncs of dbt models.")
def dbt() -> None:
    """dbt integration: `target-sync dbt exposures` writes dbt exposures for the syncs that
    read dbt models, so dbt docs and `dbt ls --select +exposure:NAME` show them."""


@dbt.command(short_help="Write dbt exposures (YAML) for the syncs of dbt models.")
@click.argument("configs", nargs=-1, required=True, type=click.Path())
@click.option("--owner-name", help="The exposures' owner, for configs that name none.")
@click.option("--owner-email", help="The owner's email, for configs that name none.")
@_selection_options
@_logging_options
@click.pass_obj
def exposures(
    ctx: Context,
    configs: tuple[str, ...],
    owner_name: str | None,
    owner_email: str | None,
    select: tuple[str, ...],
    exclude: tuple[str, ...],
) -> None:
    """Print dbt exposures for the syncs of CONFIGS (files or folders) that read a dbt model:

    \b
        target-sync dbt exposures configs/ --owner-email crm@example.com \\
            > models/exposures.yml

    Each is an exposure of type application named after its sync, depending on the model
    (dbt ls --select +exposure:NAME lists what feeds it). The owner comes from a config's
    source.exposure.owner, else from --owner-name/--owner-email.
    """
    from .config import ExposureOwner
    from .integrations.dbt import exposures_yaml

    def build() -> str:
        loaded: list[tuple[Path, SyncConfig | ConfigError]] = [
            (file, _load(file)) for file in _config_files(configs)
        ]
        if select or exclude:
            loaded = _selected(loaded, select, exclude)
        owner = None
        if owner_name or owner_email:
            owner = ExposureOwner(name=owner_name, email=owner_email)
        chosen = [config for _, config in loaded if not isinstance(config, ConfigError)]
        return exposures_yaml(chosen, owner)

    click.echo(guarded(ctx, build), nl=False)
