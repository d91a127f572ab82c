"""The ``target-sync`` command group: the global options, usage errors, SIGTERM, exit.

:mod:`connector.cli` is the only part of the connector that knows about the terminal and
turns exceptions into exit codes: 0 all delivered, 1 the run failed, 2 usage or config error,
3 some profiles were rejected or failed (listed, and retried by the next run). Under
``--log-format json`` every line written to stderr is one JSON object, errors (usage errors
included) as ``{"event": "error", ...}``.

Heavy modules (duckdb, pyarrow, rich, the warehouse drivers) are imported inside the
commands, so ``--help`` stays fast.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from ..errors import RunInterrupted, interrupt_exit_code, note_signal
from ..result import EXIT_FAILED, EXIT_OK
from .commands import plan, reset, status, validate, verify
from .context import INTERRUPTED, Context, report_error
from .logs import configure_logging, log_error
from .options import LOG_FORMAT_ENV, show_info_loggers
from .sync import sync
from .tools import dbt, demo, emulator


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
        _stop_on_signals()
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


def _stop_on_signals() -> None:
    """Turn SIGTERM (what cron's timeout, systemd and orchestrators send) and SIGINT (Ctrl-C)
    into an exception in the main thread, so a run records itself as interrupted instead of
    vanishing, and remember the signal (see :func:`connector.errors.note_signal`)."""
    import signal

    def stop(signal_number: int, frame: object) -> None:
        note_signal(signal_number)
        raise RunInterrupted(signal_number)

    note_signal(None)
    with contextlib.suppress(ValueError):  # not the main thread (embedded): leave it be
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, stop)


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
    show_info_loggers(debug)
    click_ctx.obj = Context(debug, log_format)


for command in (sync, plan, validate, verify, status, reset, emulator, demo, dbt):
    main.add_command(command)
