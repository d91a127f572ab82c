"""What Target answers: the XML of an upload and of a batch status, a profile read back,
and which HTTP answers are worth repeating (429 and every 5xx)."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

import requests

from ..errors import TargetFatalError


def retriable_status(status: int) -> bool:
    """429 and every 5xx: Target is busy or failing; the call is worth repeating."""
    return status == 429 or 500 <= status <= 599


@dataclass(frozen=True)
class UploadReceipt:
    """Target accepted a batch: where to read its status."""

    batch_id: str
    status_url: str
    message: str
    attempts: int
    elapsed: float
    http_status: int


# The batch id `validate` asks about: Target knows no such batch.
PROBE_BATCH_ID = "target-sync-validate"


@dataclass(frozen=True)
class Reachability:
    """What Target said to ``validate``'s check, and whether a sync would get through.

    ``check`` is one of ``accepted``, ``wrong_client_code``, ``token_missing``,
    ``token_refused``, ``busy``, ``unreachable``, ``unexpected``.
    """

    check: str
    ok: bool
    message: str
    http_status: int | None = None


@dataclass(frozen=True)
class BatchStatus:
    """What a batch status call said."""

    state: str  # complete | incomplete | stuck | unknown
    failed_ids: list[str] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    message: str = ""


def retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def xml_of(response: requests.Response, what: str) -> ET.Element:
    try:
        return ET.fromstring(response.content)
    except ET.ParseError:
        snippet = response.text[:120].replace("\n", " ")
        raise TargetFatalError(
            f"Target answered {what} with HTTP {response.status_code} and no XML ({snippet!r})"
        ) from None


def profile_text(value: object) -> str:
    """A profile attribute's value as text: Target stores text, but a JSON answer might
    carry a number or a boolean; they read as the texts that were sent (``true``, ``1.5``)."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def is_target_xml(response: requests.Response) -> bool:
    """Whether an answer is one of Target's XML ``<response>`` documents."""
    try:
        return ET.fromstring(response.content).tag == "response"
    except ET.ParseError:
        return False


def parse_upload_answer(response: requests.Response, what: str) -> tuple[bool, str, str]:
    root = xml_of(response, what)
    success = (root.findtext("success") or "").strip().lower() == "true"
    status_url = (root.findtext("batchStatus") or "").strip()
    message = (root.findtext("message") or "").strip()
    if success and response.status_code != 200:
        raise TargetFatalError(f"Target answered {what} with HTTP {response.status_code}")
    return success, status_url, message


def parse_status_answer(response: requests.Response, what: str) -> BatchStatus:
    if response.status_code == 404:
        return BatchStatus(state="unknown", message="batch status not found (HTTP 404)")
    if response.status_code != 200:
        raise TargetFatalError(f"Target answered {what} with HTTP {response.status_code}")
    root = xml_of(response, what)
    state = (root.findtext("status") or "").strip().lower()
    counters = {}
    for child in root:
        text = (child.text or "").strip()
        if child.tag not in ("batchId", "status", "message", "profile") and text.isdigit():
            counters[child.tag] = int(text)
    failed = [
        (profile.findtext("id") or "")
        for profile in root.findall("profile")
        if (profile.findtext("status") or "").strip().lower() in ("failed", "error")
    ]
    message = (root.findtext("message") or "").strip()
    if state not in ("complete", "incomplete", "stuck"):
        return BatchStatus(state="unknown", counters=counters, message=message or state)
    return BatchStatus(state=state, failed_ids=failed, counters=counters, message=message)
