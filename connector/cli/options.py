"""Options several commands take: --log-format and --debug after the command name, and
--select / --exclude."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import click

from .context import Context
from .logs import configure_logging

LOG_FORMAT_ENV = "TARGET_SYNC_LOG_FORMAT"
# Loggers whose INFO lines a person needs in text mode too: which dbt profile and target a
# run reads, and the model's latest build.
SHOWN_INFO_LOGGERS = ("connector.sources.dbt_source",)


def show_info_loggers(debug: bool) -> None:
    """Show the INFO lines of :data:`SHOWN_INFO_LOGGERS` (and their DEBUG lines with --debug)."""
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
    show_info_loggers(ctx.debug)


def logging_options(command: Callable[..., Any]) -> Callable[..., Any]:
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


def selection_options(command: Callable[..., Any]) -> Callable[..., Any]:
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
