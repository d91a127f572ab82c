"""What the emulator remembers of the calls it answered: upload records and batch statuses."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BatchRecord", "UploadRecord", "redacted_headers"]

_REDACTED = "<redacted>"


def redacted_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``(name, value)`` pairs as a dict, the ``Authorization`` value replaced by
    ``<redacted>``."""
    return {
        name: (_REDACTED if name.lower() == "authorization" else value) for name, value in headers
    }


@dataclass(frozen=True)
class UploadRecord:
    """What the emulator received on one upload call and how it answered.

    Attributes:
        path: the request path (without query string).
        api_version: 1 or 2, from the path.
        headers: request headers; the ``Authorization`` value is replaced by ``<redacted>``.
        body: the raw request body.
        header_names: the decoded header cells (id column first); empty if not parsed.
        id_type: ``thirdPartyId`` / ``pcId``, or None if not parsed.
        rows: every data row as sent, cells decoded; empty if not parsed.
        batch_id: the batch id handed out, or None when the batch was not accepted.
        http_status: the HTTP status answered, or None when the connection was dropped.
        success: the ``<success>`` answered (False for non-200 answers and drops).
        message: the ``<message>`` answered (or what happened, for drops and errors).
        duplicate_ids: ids sent more than once in this batch (the connector must never).
        failed_ids: ids reported failed in the batch status.
        lost_ids: ids accepted and reported successful but not applied (``lose_fraction``).
        dropped: the connection was closed without an answer (``drop_*`` faults).
        received_at: Unix time of the call.
    """

    path: str
    api_version: int
    headers: dict[str, str]
    body: bytes
    header_names: list[str] = field(default_factory=list)
    id_type: str | None = None
    rows: list[list[str]] = field(default_factory=list)
    batch_id: str | None = None
    http_status: int | None = None
    success: bool = False
    message: str = ""
    duplicate_ids: list[str] = field(default_factory=list)
    failed_ids: list[str] = field(default_factory=list)
    lost_ids: list[str] = field(default_factory=list)
    dropped: bool = False
    received_at: float = 0.0

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary (no body, no rows)."""
        return {
            "path": self.path,
            "api_version": self.api_version,
            "id_type": self.id_type,
            "header_names": self.header_names,
            "rows": len(self.rows),
            "body_bytes": len(self.body),
            "batch_id": self.batch_id,
            "http_status": self.http_status,
            "success": self.success,
            "message": self.message,
            "duplicate_ids": self.duplicate_ids,
            "failed_ids": self.failed_ids,
            "lost_ids": self.lost_ids,
            "dropped": self.dropped,
            "received_at": self.received_at,
        }


@dataclass
class BatchRecord:
    """The status of one accepted batch, as the status call reports it.

    Attributes:
        batch_id: the id handed out in the upload answer.
        size: rows in the batch.
        successful: rows reported as successful updates once complete.
        not_found: rows of a v1 upload whose profile does not exist.
        failed_ids: ids of the rows reported failed.
        stuck: the batch never completes.
        incomplete_left: status polls still to answer ``incomplete``.
    """

    batch_id: str
    size: int
    successful: int
    not_found: int
    failed_ids: list[str]
    stuck: bool
    incomplete_left: int

    def poll(self) -> str:
        """The state one status poll reports (``incomplete`` polls count down)."""
        if self.incomplete_left > 0:
            self.incomplete_left -= 1
            return "incomplete"
        return "stuck" if self.stuck else "complete"
