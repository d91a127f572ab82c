"""The Target bulk profile API client: upload a batch, read a batch's status.

Speaks exactly what ``shared/target-api.md`` describes: the raw batch file POSTed as
``application/x-www-form-urlencoded`` to the v1 or v2 path, an optional bearer token, XML
answers. ``success=false`` is a rejected batch whatever the HTTP status. 503, 429, other 5xx,
connection errors and timeouts are retried with backoff (``Retry-After`` honoured); every
other answer is fatal. All calls share one calls-per-minute pace.
"""

from __future__ import annotations

import ipaddress
import logging
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qs, urlsplit

import requests

from .config import TargetConfig
from .errors import ConfigError, TargetFatalError, TargetRetriableError
from .retry import RateLimiter, RetryPolicy

log = logging.getLogger(__name__)

RETRIABLE_STATUS = {429, 500, 502, 503, 504}
USER_AGENT = "target-sync/0.1"


@dataclass(frozen=True)
class UploadReceipt:
    """Target accepted a batch: where to read its status."""

    batch_id: str
    status_url: str
    message: str
    attempts: int
    elapsed: float
    http_status: int


@dataclass(frozen=True)
class BatchStatus:
    """What a batch status call said."""

    state: str  # complete | incomplete | stuck | unknown
    failed_ids: list[str] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    message: str = ""


def upload_url(config: TargetConfig) -> str:
    """The batchUpdate URL for the configured client and API version."""
    client = config.client_code
    base = config.base_url or f"https://{client}.tt.omtrdc.net"
    path = "v2/profile/batchUpdate" if config.api_version == 2 else "profile/batchUpdate"
    return f"{base}/m2/{client}/{path}"


def check_transport(url: str, allow_insecure_http: bool, where: str) -> None:
    """Refuse plain http:// to anything but loopback unless explicitly allowed."""
    parts = urlsplit(url)
    if parts.scheme != "http" or allow_insecure_http:
        return
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(
            f"{where}: refusing plain http:// to {host} (profile data and the token would "
            "cross the network unencrypted); use https:// or set "
            "target.allow_insecure_http: true"
        )


class TargetClient:
    """Uploads batches and reads batch status for one Target client."""

    def __init__(
        self,
        config: TargetConfig,
        label: str,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[int, str, float], None] | None = None,
    ) -> None:
        self.config = config
        self.label = label
        self.url = upload_url(config)
        check_transport(self.url, config.allow_insecure_http, f"{label}: target.base_url")
        self.timeout = (config.connect_timeout_seconds, config.read_timeout_seconds)
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        if config.auth_token is not None:
            self.session.headers["Authorization"] = f"Bearer {config.auth_token.get_secret_value()}"
        self.pace = RateLimiter(config.calls_per_minute, sleep=sleep)
        self.retry = RetryPolicy(
            max_attempts=config.max_attempts,
            max_seconds=config.max_retry_seconds,
            base_seconds=config.backoff_base_seconds,
            cap_seconds=config.backoff_max_seconds,
        )
        self._sleep = sleep
        self._on_retry = on_retry

    def close(self) -> None:
        self.session.close()

    def upload(self, body: bytes, what: str) -> UploadReceipt:
        """POST one batch file; returns the receipt or raises a TargetError."""
        attempts = 0
        started = time.monotonic()

        def once() -> UploadReceipt:
            nonlocal attempts
            attempts += 1
            response = self._call("POST", self.url, what, data=body)
            success, status_url, message = _parse_upload_answer(response, what)
            if not success:
                raise TargetFatalError(
                    f"Target rejected {what} (HTTP {response.status_code}, success=false: "
                    f"{message or 'no message'})"
                )
            if not status_url:
                raise TargetFatalError(f"Target accepted {what} but gave no batchStatus URL")
            batch_id = parse_qs(urlsplit(status_url).query).get("batchId", [""])[0]
            return UploadReceipt(
                batch_id=batch_id or status_url,
                status_url=status_url,
                message=message,
                attempts=attempts,
                elapsed=time.monotonic() - started,
                http_status=response.status_code,
            )

        return self.retry.run(once, what, sleep=self._sleep, on_retry=self._on_retry)

    def status(self, status_url: str, what: str) -> BatchStatus:
        """GET a batch's status with details; an unreadable status is ``unknown``."""
        separator = "&" if "?" in status_url else "?"
        url = f"{status_url}{separator}showDetails=true"
        check_transport(url, self.config.allow_insecure_http, f"{self.label}: batch status URL")

        def once() -> BatchStatus:
            response = self._call("GET", url, what)
            return _parse_status_answer(response, what)

        return self.retry.run(once, what, sleep=self._sleep, on_retry=self._on_retry)

    def _call(
        self, method: str, url: str, what: str, data: bytes | None = None
    ) -> requests.Response:
        self.pace.acquire()
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if data is not None else {}
        started = time.monotonic()
        try:
            response = self.session.request(
                method, url, data=data, headers=headers, timeout=self.timeout
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TargetRetriableError(f"{type(exc).__name__} talking to Target") from None
        except requests.RequestException as exc:
            raise TargetFatalError(f"{what}: {type(exc).__name__}: {exc}") from None
        log.info(
            "%s %s -> HTTP %s in %.2fs (%s)",
            method,
            urlsplit(url).path,
            response.status_code,
            time.monotonic() - started,
            what,
        )
        if response.status_code in RETRIABLE_STATUS:
            raise TargetRetriableError(
                f"HTTP {response.status_code}", _retry_after(response.headers.get("Retry-After"))
            )
        if response.status_code in (401, 403):
            raise TargetFatalError(
                f"Target refused {what}: HTTP {response.status_code} (authentication failed; "
                "check target.auth_token, which Target invalidates when it is regenerated)"
            )
        return response


def _retry_after(value: str | None) -> float | None:
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


def _xml(response: requests.Response, what: str) -> ET.Element:
    try:
        return ET.fromstring(response.content)
    except ET.ParseError:
        snippet = response.text[:120].replace("\n", " ")
        raise TargetFatalError(
            f"Target answered {what} with HTTP {response.status_code} and no XML ({snippet!r})"
        ) from None


def _parse_upload_answer(response: requests.Response, what: str) -> tuple[bool, str, str]:
    root = _xml(response, what)
    success = (root.findtext("success") or "").strip().lower() == "true"
    status_url = (root.findtext("batchStatus") or "").strip()
    message = (root.findtext("message") or "").strip()
    if success and response.status_code != 200:
        raise TargetFatalError(f"Target answered {what} with HTTP {response.status_code}")
    return success, status_url, message


def _parse_status_answer(response: requests.Response, what: str) -> BatchStatus:
    if response.status_code == 404:
        return BatchStatus(state="unknown", message="batch status not found (HTTP 404)")
    if response.status_code != 200:
        raise TargetFatalError(f"Target answered {what} with HTTP {response.status_code}")
    root = _xml(response, what)
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
