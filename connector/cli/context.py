"""What every command shares: its options, and the one place that turns an exception into
a one-line error (or a JSON ``error`` event) and an exit code."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from ..errors import TargetSyncError, interrupt_exit_code
from ..result import EXIT_FAILED
from .logs import log_error

T = TypeVar("T")

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


def fail(ctx: Context, message: str, code: int, **fields: Any) -> NoReturn:
    """Report an error as :func:`report_error` does, and exit with ``code``."""
    report_error(ctx.json, message, code, **fields)
    sys.exit(code)


def guarded(ctx: Context, action: Callable[[], T]) -> T:
    """Run ``action``; on a known error print one line (or JSON event) and exit with its code."""
    try:
        return action()
    except TargetSyncError as exc:
        if ctx.debug:
            raise
        fail(ctx, str(exc), exc.exit_code, error=type(exc).__name__)
    except KeyboardInterrupt as exc:
        fail(ctx, INTERRUPTED, interrupt_exit_code(exc), error=type(exc).__name__)
    except Exception as exc:  # the CLI must never dump a traceback without --debug
        if ctx.debug:
            raise
        fail(
            ctx,
            f"unexpected error: {type(exc).__name__}: {exc} (rerun with --debug for details)",
            EXIT_FAILED,
            error=type(exc).__name__,
        )
