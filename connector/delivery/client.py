"""The Target bulk profile API client: upload a batch, read a batch's status.

Speaks exactly what Adobe documents for the bulk profile API: the raw batch file POSTed as
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
import logging
import ssl
import time
from collections.abc import Callable
from urllib.parse import parse_qs, urljoin, urlsplit

import requests
import urllib3.exceptions

from ..config import TargetConfig
from ..errors import TargetFatalError, TargetRetriableError
from ..transport import check_transport
from .answers import (
    PROBE_BATCH_ID,
    BatchStatus,
    Reachability,
    UploadReceipt,
    is_target_xml,
    parse_status_answer,
    parse_upload_answer,
    profile_text,
    retriable_status,
    retry_after,
)
from .failures import NETWORK_REASONS, causes_of, find_cause, is_reset, tls_problem
from .retry import RateLimiter, RetryPolicy, shared_limiter
from .urls import (
    TARGET_DOMAIN,
    base_url,
    batch_status_url,
    bearer_token,
    destination,
    profile_url,
    status_call_url,
    token_allowed,
    upload_url,
)

log = logging.getLogger(__name__)


USER_AGENT = "target-sync/0.1"


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
            success, status_url, message = parse_upload_answer(response, what)
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
                return parse_status_answer(response, what)
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
                name: profile_text(entry.get("value"))
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
        if is_target_xml(response) or PROBE_BATCH_ID in response.text:
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
                retry_after(response.headers.get("Retry-After")),
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
        causes = list(causes_of(exc))
        host = urlsplit(url).hostname or url
        tls = find_cause(
            causes, ssl.SSLError, urllib3.exceptions.SSLError, requests.exceptions.SSLError
        )
        if tls is not None and not is_reset(causes):
            return TargetFatalError(tls_problem(causes, host, what))
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
        connect_timeout = find_cause(causes, urllib3.exceptions.ConnectTimeoutError)
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
        if isinstance(exc, requests.ReadTimeout) or find_cause(
            causes, urllib3.exceptions.ReadTimeoutError, TimeoutError
        ):
            return (
                f"no answer within target.read_timeout_seconds={self.config.read_timeout_seconds:g}"
            )
        # requests raises ChunkedEncodingError for an answer cut short, reset or not.
        if isinstance(exc, requests.exceptions.ChunkedEncodingError):
            return "connection broken while reading the answer"
        # Most specific first: RemoteDisconnected is a ConnectionResetError too.
        for kinds, reason in NETWORK_REASONS:
            if find_cause(causes, *kinds) is not None:
                return reason
        return f"{type(exc).__name__} talking to Target"

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text
