"""Logging set-up for the CLI: plain text, or one JSON object per line for log shippers.

The library only logs through ``logging.getLogger(__name__)``; run events reach the JSON log
through :func:`log_event`, and the CLI's final error through :func:`log_error`. Under
``--log-format json`` every line the process writes to stderr is one JSON object: library
logs, third-party warnings (``warnings.warn`` included), run events and errors alike.

Secrets never reach a log: configs hold them as ``SecretStr``, the client never logs headers,
and as a last line of defence every secret value of the configs being run (registered with
:func:`~connector.config.secrets.add_secrets`) is masked in each formatted line.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from ..config.secrets import redact

EVENT_LOGGER = "connector.events"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, event, message and the event fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "event_fields", None)
        if isinstance(fields, dict):
            payload.update(fields)
        else:
            payload["event"] = "log"
            # One object per line: a multi-line message stays inside its JSON string.
            payload["message"] = record.getMessage()
        if record.exc_info and record.levelno >= logging.ERROR:
            payload["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return redact(json.dumps(payload, default=str))


class TextFormatter(logging.Formatter):
    """``LEVEL logger: message``, with secrets masked."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the moment of each record.

    A live progress display redirects ``sys.stderr`` so that log lines print above it instead
    of through it; a handler holding the original stream would garble the display.
    """

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(debug: bool, log_format: str) -> None:
    """Send library logs (and third-party warnings) to stderr, as text or JSON lines."""
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    ours = logging.getLogger("connector")
    ours.handlers[:] = [handler]
    ours.propagate = False
    if debug:
        ours.setLevel(logging.DEBUG)
    elif log_format == "json":
        ours.setLevel(logging.INFO)
    else:
        ours.setLevel(logging.WARNING)
    # Other libraries' warnings, and warnings.warn(), go through the same handler: without
    # it Python prints them raw, which would break "every stderr line is JSON".
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.captureWarnings(True)


def log_event(name: str, sync: str, fields: dict[str, Any], level: int = logging.INFO) -> None:
    """Write one run event to the event logger (a JSON line under --log-format json)."""
    logging.getLogger(EVENT_LOGGER).log(
        level, "%s %s", name, sync, extra={"event_fields": {"event": name, "sync": sync, **fields}}
    )


def log_error(message: str, exit_code: int, sync: str | None = None, **fields: Any) -> None:
    """Write the CLI's error as an ``error`` event (one JSON line under --log-format json)."""
    logging.getLogger("connector.cli").error(
        "%s",
        message,
        extra={
            "event_fields": {
                "event": "error",
                "sync": sync,
                "message": message,
                "exit_code": exit_code,
                **fields,
            }
        },
    )


class _RequestFormatter(logging.Formatter):
    """``HH:MM:SS message``, with secrets masked: a server's request lines for a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(message)s", datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def show_request_log(logger_name: str, log_format: str) -> None:
    """Show a server's INFO lines (one per request) on stderr: plain ``HH:MM:SS`` lines, or
    JSON objects like every other log line under ``--log-format json``."""
    logger = logging.getLogger(logger_name)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    if log_format == "json":
        return  # the JSON handler of "connector" formats them
    handler = StderrHandler()
    handler.setFormatter(_RequestFormatter())
    logger.handlers[:] = [handler]
    logger.propagate = False
