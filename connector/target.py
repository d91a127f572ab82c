"""The Target bulk profile API client: upload a batch, read a batch's status.

Speaks exactly what ``shared/target-api.md`` describes: the raw batch file POSTed as
``application/x-www-form-urlencoded`` to the v1 or v2 path, an optional bearer token, XML
answers. ``success=false`` is a rejected batch whatever the HTTP status. 429, every 5xx,
connection errors and timeouts are retried with backoff (``Retry-After`` honoured); every
other answer is fatal. All calls of a client share one calls-per-minute pace. A batch status
that cannot be read is ``unknown`` (the caller resends the batch), except when Target refuses
the token: that stops the run.

The bearer token never leaves the ``Authorization`` header: it is not logged, and any error
text that could carry it is scrubbed.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import re
import socket
import ssl
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qs, quote, urljoin, urlsplit, urlunsplit

import requests
import urllib3.exceptions

from .config import TargetConfig
from .errors import ConfigError, TargetFatalError, TargetRetriableError
from .retry import RateLimiter, RetryPolicy, shared_limiter

log = logging.getLogger(__name__)

USER_AGENT = "target-sync/0.1"
# RFC 6750 b64token, loosely: visible ASCII only (no space, line break or control character).
_TOKEN = re.compile(r"[\x21-\x7e]+")


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


# Target's hosts: the upload host {client}.tt.omtrdc.net and the edge hosts its answers name.
TARGET_DOMAIN = "tt.omtrdc.net"


def base_url(config: TargetConfig) -> str:
    """The configured base URL, or Target's own host for the client code."""
    return config.base_url or f"https://{config.client_code}.{TARGET_DOMAIN}"


def _client_root(config: TargetConfig) -> str:
    return f"{base_url(config)}/m2/{config.client_code}"


def destination(config: TargetConfig) -> str:
    """What identifies one Target account for pacing: the base URL and the client code."""
    return _client_root(config)


def _origin(url: str) -> tuple[str, int | None]:
    """(host, port) of a URL, the port made explicit for http and https."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    try:
        port = parts.port
    except ValueError:
        port = None
    return (parts.hostname or "").lower(), port or default


def token_allowed(config: TargetConfig, url: str) -> bool:
    """Whether a request to ``url`` may carry the bearer token.

    Only Target's hosts may: the host (and port) of the configured base URL, which is the
    upload host, and Target's edge hosts, any name under ``tt.omtrdc.net`` (matched on a
    dot boundary, so ``eviltt.omtrdc.net.example`` and ``xtt.omtrdc.net`` do not match).
    """
    host, port = _origin(url)
    if not host:
        return False
    base_host, base_port = _origin(base_url(config))
    if port == base_port and (
        host == base_host or (_is_loopback(host) and _is_loopback(base_host))
    ):
        return True  # (localhost and 127.0.0.1 are the same machine)
    return host == TARGET_DOMAIN or host.endswith("." + TARGET_DOMAIN)


def upload_url(config: TargetConfig) -> str:
    """The batchUpdate URL for the configured client and API version."""
    path = "v2/profile/batchUpdate" if config.api_version == 2 else "profile/batchUpdate"
    return f"{_client_root(config)}/{path}"


def batch_status_url(config: TargetConfig) -> str:
    """The batchStatus URL on the upload host (``validate`` probes it for reachability)."""
    return f"{_client_root(config)}/profile/batchStatus"


def profile_url(config: TargetConfig, id_type: str, profile_id: str) -> str:
    """The profile API URL that reads one profile back (``?client=`` is added per call)."""
    quoted = quote(profile_id, safe="")
    if id_type == "thirdPartyId":
        return f"{base_url(config)}/rest/v1/profiles/thirdPartyId/{quoted}"
    return f"{base_url(config)}/rest/v1/profiles/{quoted}"


def check_transport(url: str, allow_insecure_http: bool, where: str) -> None:
    """Refuse plain http:// to anything but loopback unless explicitly allowed."""
    parts = urlsplit(url)
    if parts.scheme != "http" or allow_insecure_http:
        return
    host = parts.hostname or ""
    if not _is_loopback(host):
        raise ConfigError(
            f"{where}: refusing plain http:// to {host} (profile data and the token would "
            "cross the network unencrypted); use https:// or set "
            "target.allow_insecure_http: true"
        )


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def status_call_url(status_url: str, allow_insecure_http: bool) -> str:
    """The URL to GET for a batch's status: the ``batchStatus`` URL Target gave, with
    ``showDetails=true``.

    Target's answers name an edge host with ``http://`` (so does its documentation); HTTPS
    works on the same host, so a plain-http URL to anything but loopback is read over
    ``https://`` unless ``allow_insecure_http`` is set.
    """
    parts = urlsplit(status_url)
    if (
        parts.scheme == "http"
        and not allow_insecure_http
        and not _is_loopback(parts.hostname or "")
    ):
        parts = parts._replace(scheme="https")
    query = f"{parts.query}&showDetails=true" if parts.query else "showDetails=true"
    return urlunsplit(parts._replace(query=query))


def bearer_token(config: TargetConfig, label: str) -> str | None:
    """The configured token, stripped of surrounding whitespace (a secret read from a file
    often ends in a newline); None when none is configured or it is empty.

    Raises ConfigError, without showing the value, when the token holds characters an HTTP
    header cannot carry.
    """
    if config.auth_token is None:
        return None
    token = config.auth_token.get_secret_value().strip()
    if not token:
        return None
    if not _TOKEN.fullmatch(token):
        raise ConfigError(
            f"{label}: target.auth_token holds spaces, line breaks or non-ASCII characters "
            f"({len(token)} characters; the value is not shown); copy the token again from "
            "Target (Administration > Implementation > Profile API)"
        )
    return token


class TargetClient:
    """Uploads batches, reads batch status and profiles for one Target client.

    Its calls share one calls-per-minute pace with every other client of the same
    destination in this process (unless ``pace`` is given). ``sleep`` and ``clock`` drive
    the pace (when this client creates it) and the retry waits; tests inject them.
    ``retry`` replaces the retry policy the config describes.
    """

    def __init__(
        self,
        config: TargetConfig,
        label: str,
        sleep: Callable[[float], None] | None = None,
        on_retry: Callable[[str, int, str, float], None] | None = None,
        clock: Callable[[], float] | None = None,
        pace: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.config = config
        self.label = label
        self.url = upload_url(config)
        check_transport(self.url, config.allow_insecure_http, f"{label}: target.base_url")
        self._token = bearer_token(config, label)
        self.timeout = (config.connect_timeout_seconds, config.read_timeout_seconds)
        # No Authorization on the session: a session sends its headers to every host, and
        # the token must reach Target's hosts only (set per request in _call).
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.pace = pace or shared_limiter(
            destination(config),
            config.calls_per_minute,
            clock=clock or time.monotonic,
            sleep=sleep or time.sleep,
        )
        self.retry = retry or RetryPolicy(
            max_attempts=config.max_attempts,
            max_seconds=config.max_retry_seconds,
            base_seconds=config.backoff_base_seconds,
            cap_seconds=config.backoff_max_seconds,
        )
        self._sleep = sleep or time.sleep
        self._clock = clock or time.monotonic
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
            self._check_auth(response, what)
            success, status_url, message = _parse_upload_answer(response, what)
            if not success:
                raise TargetFatalError(
                    f"Target rejected {what} (HTTP {response.status_code}, success=false: "
                    f"{message or 'no message'})"
                )
            if not status_url:
                raise TargetFatalError(f"Target accepted {what} but gave no batchStatus URL")
            status_url = urljoin(self.url, status_url)
            batch_id = parse_qs(urlsplit(status_url).query).get("batchId", [""])[0]
            return UploadReceipt(
                batch_id=batch_id or status_url,
                status_url=status_url,
                message=message,
                attempts=attempts,
                elapsed=time.monotonic() - started,
                http_status=response.status_code,
            )

        return self.retry.run(
            once, what, sleep=self._sleep, clock=self._clock, on_retry=self._on_retry
        )

    def status(self, status_url: str, what: str) -> BatchStatus:
        """GET a batch's status with details.

        A status that cannot be read (an unexpected answer, no XML, a bad URL) is
        ``unknown``. Raises TargetFatalError when Target refuses the token, and
        TargetRetriableError when Target stayed busy or unreachable through the retries.

        A status URL on a host that is not Target's (see :func:`token_allowed`) is not read
        at all: it came from an answer or a state file we cannot trust, the token must not
        go there, and only Target may confirm a delivery. Its batch is ``unknown``, so its
        rows are sent again.
        """
        url = status_call_url(urljoin(self.url, status_url), self.config.allow_insecure_http)
        if not token_allowed(self.config, url):
            host = urlsplit(url).netloc
            message = (
                f"status URL on {host}, which is not the configured Target ({base_url(self.config)}"
                f" or a host under {TARGET_DOMAIN}); not read"
            )
            log.warning("%s: %s; its rows are sent again", what, message)
            return BatchStatus(state="unknown", message=message)

        def once() -> BatchStatus:
            try:
                response = self._call("GET", url, what)
            except TargetFatalError as exc:
                return BatchStatus(state="unknown", message=str(exc))
            self._check_auth(response, what)
            try:
                return _parse_status_answer(response, what)
            except TargetFatalError as exc:
                return BatchStatus(state="unknown", message=str(exc))

        return self.retry.run(
            once, what, sleep=self._sleep, clock=self._clock, on_retry=self._on_retry
        )

    def read_profile(self, id_type: str, profile_id: str, what: str) -> dict[str, str] | None:
        """Read one profile back through the profile API: its attributes as
        ``{name: value}``, or None when Target knows no such profile (HTTP 404).

        Paced and retried like every call. Raises TargetFatalError when Target refuses the
        token or answers anything else, TargetRetriableError when it stayed busy or
        unreachable through the retries.
        """
        url = profile_url(self.config, id_type, profile_id)
        params = {"client": self.config.client_code}

        def once() -> dict[str, str] | None:
            response = self._call("GET", url, what, params=params)
            self._check_auth(response, what)
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                raise TargetFatalError(f"Target answered {what} with HTTP {response.status_code}")
            try:
                data = response.json()
            except ValueError:
                raise TargetFatalError(
                    f"Target answered {what} with HTTP 200 but no JSON profile"
                ) from None
            held = data.get("profileAttributes") if isinstance(data, dict) else None
            if not isinstance(held, dict):
                return {}
            return {
                name: _profile_text(entry.get("value"))
                for name, entry in held.items()
                if isinstance(entry, dict) and entry.get("value") is not None
            }

        return self.retry.run(
            once, what, sleep=self._sleep, clock=self._clock, on_retry=self._on_retry
        )

    def probe(self) -> Reachability:
        """Ask Target whether it knows the client code and accepts the token, uploading
        nothing: read the status of a batch that does not exist.

        Target answers a known client's status call with its XML (for an unknown batch:
        an unknown status) once the token passed; 401/403 mean the token is missing, wrong
        or expired; 404 without Target's XML and without the batch id asked for means no
        such client code (or a base URL that is not Target). Busy answers and network
        failures are retried by the client's policy; a TLS failure is not.
        """
        what = f"{self.label}: the Target check"
        url = batch_status_url(self.config)
        client = self.config.client_code
        attempts = 0

        def once() -> requests.Response:
            nonlocal attempts
            attempts += 1
            return self._call("GET", url, what, params={"batchId": PROBE_BATCH_ID})

        try:
            response = self.retry.run(
                once,
                what,
                sleep=self._sleep,
                clock=self._clock,
                on_retry=self._on_retry,
            )
        except TargetRetriableError as exc:
            if exc.http_status is not None:
                return Reachability(
                    "busy",
                    False,
                    f"reachable, but Target stayed busy (HTTP {exc.http_status}) through "
                    f"{attempts} attempt(s); client code and token not confirmed, "
                    "try again later",
                    exc.http_status,
                )
            return Reachability("unreachable", False, f"unreachable ({exc})")
        except TargetFatalError as exc:
            return Reachability("unreachable", False, f"unreachable ({exc})")
        status = response.status_code
        if status in (401, 403):
            if self._token is None:
                return Reachability(
                    "token_missing",
                    False,
                    f"reachable, but Target requires a bearer token (HTTP {status}) and "
                    'target.auth_token is not set; "Require Authentication" is on in Target '
                    "(Administration > Implementation > Profile API): set the token",
                    status,
                )
            return Reachability(
                "token_refused",
                False,
                f"reachable, but Target refused the configured token (HTTP {status}): it is "
                "wrong, expired, or was regenerated since; copy the current one into "
                "target.auth_token",
                status,
            )
        # Target's XML, or an answer naming the batch asked for, came from the batch lookup
        # of a client Target knows (some answer an unknown batch with 404).
        if _is_target_xml(response) or PROBE_BATCH_ID in response.text:
            token = "the token accepted" if self._token else "no token needed"
            return Reachability(
                "accepted",
                True,
                f"reachable; client code '{client}' known, {token} (HTTP {status})",
                status,
            )
        if status == 404:
            where = "; or target.base_url does not point at Target" if self.config.base_url else ""
            return Reachability(
                "wrong_client_code",
                False,
                f"reachable, but Target does not know client code '{client}' (HTTP 404 for "
                f"{urlsplit(url).path}): check target.client_code{where}",
                status,
            )
        return Reachability(
            "unexpected",
            False,
            f"reachable, but the answer is not Target's (HTTP {status}, no Target XML): "
            "check target.base_url",
            status,
        )

    def _call(
        self,
        method: str,
        url: str,
        what: str,
        data: bytes | None = None,
        params: dict[str, str] | None = None,
    ) -> requests.Response:
        """One round trip, paced. Raises TargetRetriableError for a busy answer or a network
        failure, TargetFatalError for a TLS failure, a redirect, or a request that cannot be
        made at all."""
        self.pace.acquire(self.config.calls_per_minute)
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if data is not None else {}
        if self._token is not None and token_allowed(self.config, url):
            headers["Authorization"] = f"Bearer {self._token}"
        started = time.monotonic()
        path = urlsplit(url).path
        try:
            response = self.session.request(
                method,
                url,
                data=data,
                params=params,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except Exception as exc:
            failure = self._classify(exc, url, what)
            if failure is None:
                raise
            log.info(
                "%s %s -> %s after %.2fs (%s)",
                method,
                path,
                failure,
                time.monotonic() - started,
                what,
            )
            raise failure from None
        log.info(
            "%s %s -> HTTP %s in %.2fs (%s)",
            method,
            path,
            response.status_code,
            time.monotonic() - started,
            what,
        )
        if retriable_status(response.status_code):
            raise TargetRetriableError(
                f"HTTP {response.status_code}",
                _retry_after(response.headers.get("Retry-After")),
                response.status_code,
            )
        if response.is_redirect:
            where = urlsplit(urljoin(url, response.headers.get("Location", ""))).netloc
            raise TargetFatalError(
                f"{what}: Target answered HTTP {response.status_code}, a redirect to "
                f"{where or 'nowhere'}; target-sync follows no redirects (the profiles and the "
                "token go to the configured Target only): set target.base_url to the address "
                "that answers"
            )
        return response

    def _classify(
        self, exc: Exception, url: str, what: str
    ) -> TargetRetriableError | TargetFatalError | None:
        """What a failed round trip means, by the failure's type (never its text):
        retriable network trouble, a fatal TLS failure or request, or None for an exception
        that is not about the network at all (a bug: let it surface)."""
        causes = list(_causes(exc))
        host = urlsplit(url).hostname or url
        tls = _find(causes, ssl.SSLError, urllib3.exceptions.SSLError, requests.exceptions.SSLError)
        if tls is not None and not _is_reset(causes):
            return TargetFatalError(_tls_problem(causes, host, what))
        if isinstance(
            exc,
            requests.ConnectionError
            | requests.Timeout
            | requests.exceptions.ChunkedEncodingError
            | urllib3.exceptions.HTTPError
            | http.client.HTTPException
            | OSError,
        ):
            return TargetRetriableError(self._network_reason(exc, causes))
        if isinstance(exc, requests.RequestException):
            return TargetFatalError(f"{what}: {type(exc).__name__}: {self._scrub(str(exc))}")
        return None

    def _check_auth(self, response: requests.Response, what: str) -> None:
        if response.status_code in (401, 403):
            given = "the configured token" if self._token else "no token (none is configured)"
            raise TargetFatalError(
                f"Target refused {what}: HTTP {response.status_code} (authentication failed "
                f"with {given}; check target.auth_token, which Target invalidates when it is "
                "regenerated)"
            )

    def _network_reason(self, exc: Exception, causes: list[BaseException]) -> str:
        """A short, secret-free reason for a failed round trip, from the failure's types."""
        connect_timeout = _find(causes, urllib3.exceptions.ConnectTimeoutError)
        # (urllib3's NewConnectionError, a refused connection for one, is a
        # ConnectTimeoutError too, for backward compatibility: not a timeout.)
        if isinstance(exc, requests.ConnectTimeout) or (
            connect_timeout is not None
            and not isinstance(connect_timeout, urllib3.exceptions.NewConnectionError)
        ):
            return (
                "no connection within target.connect_timeout_seconds="
                f"{self.config.connect_timeout_seconds:g}"
            )
        if isinstance(exc, requests.ReadTimeout) or _find(
            causes, urllib3.exceptions.ReadTimeoutError, TimeoutError
        ):
            return (
                f"no answer within target.read_timeout_seconds={self.config.read_timeout_seconds:g}"
            )
        # requests raises ChunkedEncodingError for an answer cut short, reset or not.
        if isinstance(exc, requests.exceptions.ChunkedEncodingError):
            return "connection broken while reading the answer"
        # Most specific first: RemoteDisconnected is a ConnectionResetError too.
        for kinds, reason in _NETWORK_REASONS:
            if _find(causes, *kinds) is not None:
                return reason
        return f"{type(exc).__name__} talking to Target"

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text


_NETWORK_REASONS: tuple[tuple[tuple[type[BaseException], ...], str], ...] = (
    ((http.client.RemoteDisconnected,), "connection closed without an answer"),
    ((ConnectionRefusedError,), "connection refused"),
    ((urllib3.exceptions.NameResolutionError, socket.gaierror), "host name not found"),
    ((ssl.SSLEOFError, ssl.SSLZeroReturnError), "connection closed during the TLS handshake"),
    ((BrokenPipeError,), "connection closed while sending"),
    (
        (http.client.IncompleteRead, urllib3.exceptions.IncompleteRead),
        "connection broken while reading the answer",
    ),
    ((ConnectionResetError,), "connection reset"),
    ((ConnectionAbortedError,), "connection aborted"),
)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps: requests and urllib3 keep the real failure in
    ``args``, ``reason``, ``__cause__`` or ``__context__``."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [*current.args, getattr(current, "reason", None)]
        wrapped += [current.__cause__, current.__context__]
        todo.extend(item for item in wrapped if isinstance(item, BaseException))


def _find(causes: list[BaseException], *kinds: type[BaseException]) -> BaseException | None:
    return next((c for c in causes if isinstance(c, kinds)), None)


def _is_reset(causes: list[BaseException]) -> bool:
    """A TLS "error" that is only the connection going away mid-handshake: retriable."""
    return _find(causes, ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError) is not None


def _tls_problem(causes: list[BaseException], host: str, what: str) -> str:
    """The one-line message of a fatal TLS failure."""
    untrusted = _find(causes, ssl.SSLCertVerificationError)
    if isinstance(untrusted, ssl.SSLCertVerificationError):
        detail = untrusted.verify_message or untrusted.reason or "verification failed"
        problem = f"the TLS certificate of {host} is not trusted ({detail})"
        fix = "check target.base_url; a private CA's bundle can be named in REQUESTS_CA_BUNDLE"
    else:
        failure = _find(causes, ssl.SSLError)
        detail = getattr(failure, "reason", None) or type(failure).__name__
        problem = f"the TLS handshake with {host} failed ({detail})"
        fix = "check that target.base_url names an https:// server, or http:// for a plain one"
    return f"{what}: {problem}; not retried: {fix}"


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


def _profile_text(value: object) -> str:
    """A profile attribute's value as text: Target stores text, but a JSON answer might
    carry a number or a boolean; they read as the texts that were sent (``true``, ``1.5``)."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _is_target_xml(response: requests.Response) -> bool:
    """Whether an answer is one of Target's XML ``<response>`` documents."""
    try:
        return ET.fromstring(response.content).tag == "response"
    except ET.ParseError:
        return False


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
