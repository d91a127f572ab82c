"""The emulator's answers: a :class:`Reply` for the HTTP side, and the XML and JSON it carries.

The shapes are those of Target's bulk profile API as documented by Adobe. Where Adobe
documents nothing:

* every ``success=false`` answer to an upload (bad ``Content-Type``, bad batch file, injected
  rejection) is HTTP 200 with an empty ``<batchStatus/>``; a missing or wrong bearer token is
  HTTP 401 with the same XML shape and ``Authentication failed``;
* an unknown (or no longer retained) batch id answers HTTP 200
  ``<response><batchId>ID</batchId><status>unknown</status><message>batch not found</message>
  </response>``, so a client cannot treat it as success by looking at the HTTP status alone;
  a status call without ``batchId`` answers HTTP 400;
* the counters after ``batchSize`` *and* the failed ``<profile>`` rows are listed only with
  ``showDetails=true``; while a batch is ``incomplete`` or ``stuck`` its counters are 0;
  ``successfulUpdates + profilesNotFound + failedUpdates == batchSize`` for a complete batch
  (rows superseded by a later row with the same id count as successful);
* rate-limited calls get HTTP 503 (and are not counted in the 60 s window); ``Retry-After``
  is sent (as ``%g`` seconds, so ``0.5`` is possible) only when ``Faults.retry_after`` is set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal
from xml.sax.saxutils import escape

from .records import BatchRecord

__all__ = [
    "Reply",
    "json_answer",
    "json_error",
    "missing_batch_id_answer",
    "refusal",
    "retry_after_headers",
    "status_answer",
    "text_answer",
    "unknown_batch_answer",
    "upload_answer",
]

XML = "application/xml; charset=UTF-8"
JSON = "application/json; charset=UTF-8"
TEXT = "text/plain; charset=UTF-8"


@dataclass
class Reply:
    """An answer the HTTP side writes (or, with ``drop``, does not write)."""

    status: int
    body: bytes = b""
    content_type: str = XML
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    delay: float = 0.0
    note: str = ""  # appended to the request's log line


def upload_answer(status: int, success: bool, message: str, status_url: str = "") -> Reply:
    """The XML answer to an upload call (also used for refusals of status calls)."""
    batch_status = (
        f"<batchStatus>{escape(status_url)}</batchStatus>" if status_url else "<batchStatus/>"
    )
    text = (
        f"<response><success>{'true' if success else 'false'}</success>{batch_status}"
        f"<message>{escape(message)}</message></response>"
    )
    return Reply(status, text.encode("utf-8"), note=message)


def json_answer(status: int, data: Any, note: str = "") -> Reply:
    """A JSON answer (profile reads and the ``/_emulator/`` admin API)."""
    return Reply(status, json.dumps(data).encode("utf-8"), JSON, note=note)


def json_error(status: int, message: str, note: str | None = None) -> Reply:
    """A profile read's error: ``{"status": N, "message": ...}``; logged with ``note`` (the
    message by default)."""
    return json_answer(
        status, {"status": status, "message": message}, message if note is None else note
    )


def text_answer(
    status: int, text: str, note: str = "", headers: dict[str, str] | None = None
) -> Reply:
    """A plain-text answer (no such route, wrong method, body too large, internal error)."""
    return Reply(status, text.encode("utf-8"), TEXT, dict(headers or {}), note=note)


def retry_after_headers(retry_after: float | None) -> dict[str, str]:
    """``Retry-After`` in ``%g`` seconds, or nothing when ``retry_after`` is None."""
    return {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}


def refusal(
    reason: Literal["rate_limited", "unauthorized"],
    *,
    limit: int | None,
    retry_after: float | None,
    as_json: bool,
) -> Reply:
    """The answer to an API call refused by the rate limit (503) or the token check (401)."""
    if reason == "rate_limited":
        status, message = 503, f"Too many requests: more than {limit} calls per minute"
    else:
        status, message = 401, "Authentication failed"
    reply = json_error(status, message) if as_json else upload_answer(status, False, message)
    if reason == "rate_limited":
        reply.headers.update(retry_after_headers(retry_after))
    return reply


def status_answer(batch: BatchRecord, status: str, details: bool) -> Reply:
    """The XML answer to a status call for a known batch, in state ``status``."""
    parts = [
        f"<response><batchId>{escape(batch.batch_id)}</batchId><status>{status}</status>",
        f"<batchSize>{batch.size}</batchSize>",
    ]
    if details:
        done = status == "complete"
        failed = batch.failed_ids if done else []
        parts.append(
            f"<consumedCount>{batch.size if done else 0}</consumedCount>"
            f"<successfulUpdates>{batch.successful if done else 0}</successfulUpdates>"
            f"<profilesNotFound>{batch.not_found if done else 0}</profilesNotFound>"
            f"<failedUpdates>{len(failed)}</failedUpdates>"
        )
        parts.extend(
            f"<profile><id>{escape(pid)}</id><status>failed</status></profile>" for pid in failed
        )
    parts.append("</response>")
    return Reply(200, "".join(parts).encode("utf-8"), note=f"{batch.batch_id} {status}")


def unknown_batch_answer(batch_id: str) -> Reply:
    """The answer to a status call for a batch id not (or no longer) known."""
    text = (
        f"<response><batchId>{escape(batch_id)}</batchId><status>unknown</status>"
        "<message>batch not found</message></response>"
    )
    return Reply(200, text.encode("utf-8"), note="unknown batch")


def missing_batch_id_answer() -> Reply:
    """The answer to a status call without ``batchId``."""
    text = "<response><success>false</success><message>batchId is required</message></response>"
    return Reply(400, text.encode("utf-8"), note="missing batchId")
