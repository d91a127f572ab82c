"""Logging set-up for the CLI: plain text, or one JSON object per line for log shippers.

The library only logs through ``logging.getLogger(__name__)``; run events reach the JSON log
through :func:`log_event`. Secrets never reach a log: configs hold them as ``SecretStr`` and
the client never logs headers.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

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
            payload["message"] = record.getMessage()
        if record.exc_info and record.levelno >= logging.ERROR:
            payload["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(payload, default=str)


def configure_logging(debug: bool, log_format: str) -> None:
    """Send library logs to stderr, as text or JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("connector")
    root.handlers[:] = [handler]
    root.propagate = False
    if debug:
        root.setLevel(logging.DEBUG)
    elif log_format == "json":
        root.setLevel(logging.INFO)
    else:
        root.setLevel(logging.WARNING)


def log_event(name: str, sync: str, fields: dict[str, Any]) -> None:
    """Write one run event to the event logger (a JSON line under --log-format json)."""
    logging.getLogger(EVENT_LOGGER).info(
        "%s %s", name, sync, extra={"event_fields": {"event": name, "sync": sync, **fields}}
    )
