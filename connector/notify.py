"""Alerts: POST a JSON summary of a run to a webhook when it fails or leaves rows behind.

Configured per sync with an optional ``notify:`` section (see
:class:`~connector.config.NotifyConfig`)::

    notify:
      webhook_url: ${TARGET_SYNC_WEBHOOK}      # a secret: never logged, never in the payload
      on: [failure, rejects, failed_rows]      # the default; or add/use `always`

The payload is the run's summary (counts, outcome, message, what happens next) plus a one-line
``text`` that chat webhooks (Slack, Teams, Mattermost) show as is. It never holds a secret of
the config: every secret value of the config is masked in it as a last line of defence.

A webhook that fails (unreachable, timeout, non-2xx answer) never fails the run nor changes its
outcome or exit code: the failure is logged as a warning, naming the webhook's host only.
"""

from __future__ import annotations

import json
import logging
import socket
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .config.secrets import mask, secret_values
from .result import SyncResult

if TYPE_CHECKING:
    from .config import NotifyConfig, SyncConfig

log = logging.getLogger(__name__)

USER_AGENT = "target-sync/0.1"
# Fields of SyncResult left out of the payload: long lists of local paths and batch ids.
_OMITTED = ("batch_files", "batch_ids")


def reasons_to_notify(settings: NotifyConfig, result: SyncResult) -> list[str]:
    """Which of the configured ``on`` conditions this run meets (empty: do not notify)."""
    if result.dry_run:
        return []
    met = {
        "failure": result.outcome == "failed",
        "rejects": result.rejected_total > 0,
        "failed_rows": result.failed > 0
        or result.not_found > 0
        or result.resolved_from_earlier.get("reverted_rows", 0) > 0,
        "always": True,
    }
    return [when for when in settings.on if met[when]]


def payload(config: SyncConfig, result: SyncResult, reasons: list[str]) -> dict[str, Any]:
    """The JSON body sent to the webhook; secrets of ``config`` are masked in it."""
    summary = {k: v for k, v in result.to_dict().items() if k not in _OMITTED}
    body = {
        "event": "target_sync_run",
        "reasons": reasons,
        "host": socket.gethostname(),
        "config": str(config.config_path) if config.config_path else None,
        "text": _text(result),
        **summary,
    }
    return mask(body, secret_values(config))


def _text(result: SyncResult) -> str:
    head = {
        "failed": "FAILED",
        "partial": "finished with problems",
        "delivered": "delivered",
        "nothing_to_do": "nothing to send",
    }.get(result.outcome, result.outcome)
    return (
        f"target-sync: sync '{result.sync}' {head} (exit {result.exit_code}, run "
        f"{result.run_id}): {result.message or 'no message'}. Next: {result.next_step}"
    )


def notify(config: SyncConfig, result: SyncResult) -> dict[str, Any] | None:
    """POST the summary when the run meets a configured condition; never raises.

    Returns what happened (``{"sent": bool, "reasons": [...], ...}``) or None when there was
    nothing to send.
    """
    settings = config.notify
    if settings is None:
        return None
    reasons = reasons_to_notify(settings, result)
    if not reasons:
        return None
    url = settings.webhook_url.get_secret_value()
    where = _host(url)
    try:
        body = json.dumps(payload(config, result, reasons), default=str).encode()
        status = _post(url, body, settings.timeout_seconds)
    except Exception as exc:  # a webhook must never fail the run
        report = {"sent": False, "reasons": reasons, "error": _describe(exc), "webhook_host": where}
        log.warning(
            "%s: the %s webhook at %s failed (%s); the run's own outcome (%s, exit %d) is "
            "unchanged",
            config.label,
            "/".join(reasons),
            where,
            report["error"],
            result.outcome,
            result.exit_code,
            extra={"event_fields": {"event": "notify_failed", "sync": config.name, **report}},
        )
        return report
    report = {"sent": True, "reasons": reasons, "http_status": status, "webhook_host": where}
    log.info(
        "%s: posted the run summary to the webhook at %s",
        config.label,
        where,
        extra={"event_fields": {"event": "notify_sent", "sync": config.name, **report}},
    )
    return report


def _post(url: str, body: bytes, timeout: float) -> int:
    import requests

    response = requests.post(
        url,
        data=body,
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
        timeout=(min(timeout, 10.0), timeout),
        allow_redirects=False,
    )
    if not 200 <= response.status_code < 300:
        raise _WebhookAnswer(f"HTTP {response.status_code}")
    return response.status_code


class _WebhookAnswer(Exception):
    """The webhook answered with something other than 2xx."""


def _describe(exc: Exception) -> str:
    # requests' messages embed the full URL (and so its token): name the kind of failure only.
    if isinstance(exc, _WebhookAnswer):
        return str(exc)
    import requests

    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed"
    return type(exc).__name__


def _host(url: str) -> str:
    """scheme://host[:port] of a URL: what messages may show of a secret URL."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")
