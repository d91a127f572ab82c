"""The Target emulator: a real HTTP server on loopback speaking Target's bulk profile API.

Routes (``{client}`` is the configured client code; any other client code answers 404):

=========================================================  ======================================
``POST /m2/{client}/v2/profile/batchUpdate``               upload, v2 (creates unknown profiles)
``POST /m2/{client}/profile/batchUpdate``                  upload, v1 (updates existing only)
``GET  /m2/{client}/profile/batchStatus?batchId=..``       batch status (``&showDetails=true``)
``GET  /rest/v1/profiles/thirdPartyId/{id}?client=..``     read a thirdPartyId profile (JSON)
``GET  /rest/v1/profiles/{tntId}?client=..``               read a pcId profile (JSON)
``GET  /_emulator/state``                                  counters and an upload summary (JSON)
``GET  /_emulator/profiles?type=thirdPartyId``             every profile of one id type (JSON)
``GET|POST /_emulator/faults``                             read / set fault switches (JSON)
``POST /_emulator/reset``                                  forget everything, faults off
=========================================================  ======================================

Answers follow /work/shared/target-api.md sections 3 to 5. Where Adobe documents nothing:

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
* a batch whose rows hold no value at all is accepted and skipped: it creates no profile;
* rate-limited calls get HTTP 503 and are not counted in the 60 s window; ``Retry-After`` is
  sent (as ``%g`` seconds, so ``0.5`` is possible) only when ``Faults.retry_after`` is set;
* a profile read needs ``?client=`` (400 when missing, 404 for another client code);
* an upload is applied before ``delay_seconds`` is slept, as when Target processed a batch
  whose answer the client then timed out on.

The server speaks HTTP/1.1 with keep-alive, reads ``Content-Length`` and chunked bodies, and
closes open connections on :meth:`Emulator.stop`. One log line per request goes to
``logging.getLogger(__name__)``; the ``Authorization`` value is never logged or recorded.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import random
import re
import socket
import sys
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit
from xml.sax.saxutils import escape

from .batchfile import ID_TYPES, BatchError, parse_batch
from .faults import Faults
from .store import ProfileStore

__all__ = ["Emulator", "UploadRecord", "serve_forever"]

logger = logging.getLogger(__name__)

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# Bodies above this are not even read (413 and the connection is closed); bodies between
# the batch limit (50,000,000 bytes) and this are read and answered success=false.
MAX_READ_BYTES = 256 * 1024 * 1024
_XML = "application/xml; charset=UTF-8"
_JSON = "application/json; charset=UTF-8"
_CLIENT_CODE = re.compile(r"[A-Za-z0-9_-]+")
_REDACTED = "<redacted>"


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
class _Batch:
    """Status of one accepted batch."""

    batch_id: str
    size: int
    successful: int
    not_found: int
    failed_ids: list[str]
    stuck: bool
    incomplete_left: int


@dataclass
class _Reply:
    """An answer the handler writes (or, with ``drop``, does not write)."""

    status: int
    body: bytes = b""
    content_type: str = _XML
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    delay: float = 0.0
    note: str = ""  # appended to the request's log line


def _upload_xml(success: bool, status_url: str, message: str) -> bytes:
    batch_status = (
        f"<batchStatus>{escape(status_url)}</batchStatus>" if status_url else "<batchStatus/>"
    )
    text = (
        f"<response><success>{'true' if success else 'false'}</success>{batch_status}"
        f"<message>{escape(message)}</message></response>"
    )
    return text.encode("utf-8")


def _xml_reply(status: int, success: bool, message: str, status_url: str = "") -> _Reply:
    return _Reply(status, _upload_xml(success, status_url, message), note=message)


def _json_reply(status: int, data: Any, note: str = "") -> _Reply:
    return _Reply(status, json.dumps(data).encode("utf-8"), _JSON, note=note)


def _safe_headers(headers: Message) -> dict[str, str]:
    return {
        name: (_REDACTED if name.lower() == "authorization" else value)
        for name, value in headers.items()
    }


class Emulator:
    """An in-process Target emulator on loopback.

    Use it as a context manager (or call :meth:`start` / :meth:`stop`); the server runs in a
    daemon thread. Every public method is thread-safe.

    Args:
        client_code: the Target client code in paths (``/m2/{client}/...``).
        host: address to bind; loopback by default.
        port: port to bind; 0 picks a free one (see :attr:`port` after start).
        faults: fault switches; a fresh :class:`Faults` (all off) by default.
        max_upload_records: keep only the last N :class:`UploadRecord` (None keeps all);
            long-running servers set it so memory stays bounded.
        other_clients: more client codes this server also answers for, each with profiles
            and batch statuses of its own (a second Target account, for destination changes).
    """

    def __init__(
        self,
        client_code: str = "demo",
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        *,
        max_upload_records: int | None = None,
        other_clients: tuple[str, ...] = (),
    ) -> None:
        for code in (client_code, *other_clients):
            if not _CLIENT_CODE.fullmatch(code):
                raise ValueError(f"invalid client code {code!r}: use letters, digits, - or _")
        self.client_code = client_code
        self.host = host
        self._requested_port = port
        self._lock = threading.RLock()
        self._faults = faults if faults is not None else Faults()
        # Per client code: its profiles, and the statuses of its batches (Target keeps the
        # last ones of each client).
        self._stores = {code: ProfileStore() for code in (client_code, *other_clients)}
        self._client_batches: dict[str, OrderedDict[str, _Batch]] = {
            code: OrderedDict() for code in self._stores
        }
        self._uploads: deque[UploadRecord] = deque(maxlen=max_upload_records)
        self._upload_count = 0
        self._seq = 0  # never reset, so batch ids stay unique across reset()
        self._calls = 0
        self._status_polls = 0
        self._call_times: deque[float] = deque()
        self._rng = random.Random(self._faults.seed)
        self._rng_seed = self._faults.seed
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Emulator:
        """Bind the port and serve in a daemon thread; returns self."""
        if self._server is not None:
            raise RuntimeError("the emulator is already started")
        server_cls = _Server6 if ":" in self.host else _Server
        server = server_cls((self.host, self._requested_port), _Handler)
        server.emulator = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"target-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        # (`target-sync emulator` prints this line on stdout itself.)
        logger.debug(
            "Target emulator for client %r listening on %s", self.client_code, self.base_url
        )
        return self

    def stop(self) -> None:
        """Stop serving, close the port and every open connection."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def wait(self) -> None:
        """Block until the server stops (used by :func:`serve_forever`)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.5)

    # -- properties and inspection -----------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (the requested one before :meth:`start`)."""
        if self._server is None:
            return self._requested_port
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: the URL to give the connector as its base URL."""
        host = self.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def upload_url(self, api_version: int = 2) -> str:
        """The batchUpdate URL for ``api_version`` 1 or 2."""
        version = "/v2" if api_version == 2 else ""
        return f"{self.base_url}/m2/{self.client_code}{version}/profile/batchUpdate"

    @property
    def faults(self) -> Faults:
        """The live fault switches (mutate fields, or assign a new :class:`Faults`)."""
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        with self._lock:
            self._faults = faults

    @property
    def client_codes(self) -> tuple[str, ...]:
        """Every client code this server answers for, its own first."""
        return tuple(self._stores)

    def profiles(
        self, id_type: str = "thirdPartyId", client: str | None = None
    ) -> dict[str, dict[str, str]]:
        """A copy of every profile of ``id_type`` of ``client`` (default: the server's own
        client code): ``id -> {attribute: value}``."""
        _check_id_type(id_type)
        with self._lock:
            return self._client_store(client).dump(id_type)

    def add_profile(
        self,
        profile_id: str,
        attributes: dict[str, str],
        id_type: str = "thirdPartyId",
        client: str | None = None,
    ) -> None:
        """Create or update a profile directly (to seed v1 tests); empty values are ignored."""
        _check_id_type(id_type)
        with self._lock:
            self._client_store(client).put(id_type, profile_id, attributes, _now_ms())

    def _client_store(self, client: str | None) -> ProfileStore:
        code = self.client_code if client is None else client
        if code not in self._stores:
            raise ValueError(f"this emulator does not serve client code {code!r}")
        return self._stores[code]

    @property
    def uploads(self) -> list[UploadRecord]:
        """The upload calls received, oldest first (a new list)."""
        with self._lock:
            return list(self._uploads)

    @property
    def upload_count(self) -> int:
        """Upload calls received since start or reset (even when records were discarded)."""
        with self._lock:
            return self._upload_count

    @property
    def status_polls(self) -> int:
        """Batch status calls received since start or reset."""
        with self._lock:
            return self._status_polls

    @property
    def calls(self) -> int:
        """API calls (uploads, status, profile reads; not ``/_emulator/``) since start or reset."""
        with self._lock:
            return self._calls

    def reset(self) -> None:
        """Forget profiles, uploads, batches and counters, and turn every fault off (in place)."""
        with self._lock:
            for store in self._stores.values():
                store.clear()
            for batches in self._client_batches.values():
                batches.clear()
            self._uploads.clear()
            self._upload_count = 0
            self._calls = 0
            self._status_polls = 0
            self._call_times.clear()
            self._faults.reset()
            self._rng = random.Random(self._faults.seed)
            self._rng_seed = self._faults.seed

    def state(self) -> dict[str, Any]:
        """What ``GET /_emulator/state`` answers."""
        with self._lock:
            return {
                "client_code": self.client_code,
                "base_url": self.base_url,
                "profiles": {
                    id_type: self._stores[self.client_code].count(id_type) for id_type in ID_TYPES
                },
                "uploads": self._upload_count,
                "calls": self._calls,
                "status_polls": self._status_polls,
                "batches": sum(len(batches) for batches in self._client_batches.values()),
                "faults": self._faults.to_json(),
                "uploads_summary": [record.summary() for record in self._uploads],
            }

    # -- API behaviour (called by the handler) -----------------------------------------------

    def _record(self, record: UploadRecord) -> None:
        with self._lock:
            self._uploads.append(record)
            self._upload_count += 1

    def _random(self) -> float:
        # Reseed when a test changed Faults.seed, so a seed set at any time is reproducible.
        if self._faults.seed != self._rng_seed:
            self._rng = random.Random(self._faults.seed)
            self._rng_seed = self._faults.seed
        return self._rng.random()

    def _retry_after_headers(self) -> dict[str, str]:
        retry_after = self._faults.retry_after
        return {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}

    def _gate(self, headers: Message, as_json: bool) -> _Reply | None:
        """Count the call; apply the rate limit and the token check. None lets it through."""
        with self._lock:
            self._calls += 1
            faults = self._faults
            limit = faults.rate_limit_per_minute
            if limit is not None:
                now = time.monotonic()
                while self._call_times and now - self._call_times[0] >= 60.0:
                    self._call_times.popleft()
                if len(self._call_times) >= limit:
                    message = f"Too many requests: more than {limit} calls per minute"
                    reply = (
                        _json_reply(503, {"status": 503, "message": message}, message)
                        if as_json
                        else _xml_reply(503, False, message)
                    )
                    reply.headers.update(self._retry_after_headers())
                    return reply
                self._call_times.append(now)
            token = faults.required_token
        if token is not None:
            given = headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode("utf-8"), f"Bearer {token}".encode()):
                message = "Authentication failed"
                if as_json:
                    return _json_reply(401, {"status": 401, "message": message}, message)
                return _xml_reply(401, False, message)
        return None

    def _upload_fault(self) -> str | None:
        """Decide (under the lock) whether an injected fault answers this upload."""
        faults = self._faults
        if faults.drop_next > 0:
            faults.drop_next -= 1
            return "drop"
        if faults.drop_fraction > 0 and self._random() < faults.drop_fraction:
            return "drop"
        if faults.fail_next > 0:
            faults.fail_next -= 1
            return "fail"
        if faults.fail_fraction > 0 and self._random() < faults.fail_fraction:
            return "fail"
        if faults.reject_next > 0:
            faults.reject_next -= 1
            return "reject"
        return None

    def _handle_upload(
        self, client: str, path: str, api_version: int, headers: Message, body: bytes
    ) -> _Reply:
        received_at = time.time()
        base: dict[str, Any] = {
            "path": path,
            "api_version": api_version,
            "headers": _safe_headers(headers),
            "body": body,
            "received_at": received_at,
        }

        def finish(reply: _Reply, **fields: Any) -> _Reply:
            success = fields.pop("success", False)
            self._record(
                UploadRecord(
                    **base,
                    http_status=None if reply.drop else reply.status,
                    success=success,
                    message=fields.pop("message", reply.note),
                    dropped=reply.drop,
                    **fields,
                )
            )
            return reply

        gate = self._gate(headers, as_json=False)
        if gate is not None:
            return finish(gate)

        with self._lock:
            fault = self._upload_fault()
            delay = self._faults.delay_seconds
            fail_status = self._faults.fail_status
            reject_message = self._faults.reject_message
            retry_headers = self._retry_after_headers()
        if fault == "drop":
            return finish(_Reply(0, drop=True, note="connection dropped (fault)"))
        if fault == "fail":
            reply = _xml_reply(fail_status, False, "Service unavailable (fault)")
            reply.headers.update(retry_headers)
            reply.delay = delay
            return finish(reply)
        if fault == "reject":
            reply = _xml_reply(200, False, reject_message)
            reply.delay = delay
            return finish(reply)

        content_type = headers.get("Content-Type", "")
        if content_type.split(";")[0].strip().lower() != FORM_CONTENT_TYPE:
            message = f"Invalid content type {content_type!r}: expected {FORM_CONTENT_TYPE}"
            reply = _xml_reply(200, False, message)
            reply.delay = delay
            return finish(reply)

        # Parse outside the lock: a 500,000-row batch takes seconds.
        try:
            parsed = parse_batch(body)
        except BatchError as error:
            reply = _xml_reply(200, False, str(error))
            reply.delay = delay
            return finish(reply)

        with self._lock:
            faults = self._faults
            stuck = faults.stuck_next > 0
            if stuck:
                faults.stuck_next -= 1
            fault_failed = (
                [pid for pid in parsed.updates if pid in faults.failed_ids]
                if faults.failed_ids
                else []
            )
            failed_ids = [pid for pid, _ in parsed.failed] + fault_failed
            size = len(parsed.rows)
            successful = not_found = 0
            lost: list[str] = []
            if not stuck:
                skip = set(fault_failed)
                if faults.lose_fraction > 0:
                    lost = [
                        pid
                        for pid in parsed.updates
                        if pid not in skip and self._random() < faults.lose_fraction
                    ]
                    skip.update(lost)  # not applied, yet counted as successful below
                if parsed.has_values:
                    _, not_found = self._stores[client].apply(
                        parsed.id_type,
                        ((pid, v) for pid, v in parsed.updates.items() if pid not in skip),
                        create=api_version == 2,
                        now_ms=_now_ms(),
                    )
                # else: a batch holding only empty values is skipped (nothing created).
                successful = size - len(failed_ids) - not_found
            self._seq += 1
            batch_id = f"{client}-{_now_ms()}-{self._seq}"
            self._client_batches[client][batch_id] = _Batch(
                batch_id=batch_id,
                size=size,
                successful=successful,
                not_found=not_found,
                failed_ids=failed_ids,
                stuck=stuck,
                incomplete_left=faults.incomplete_polls,
            )
            self._enforce_retention()
        status_url = (
            f"{self.base_url}/m2/{client}/profile/batchStatus?batchId={quote(batch_id, safe='')}"
        )
        message = "Batch submitted for processing"
        reply = _xml_reply(200, True, message, status_url)
        reply.delay = delay
        reply.note = (
            f"{batch_id} rows={size} failed={len(failed_ids)}"
            + (f" lost={len(lost)}" if lost else "")
            + (" stuck" if stuck else "")
        )
        return finish(
            reply,
            success=True,
            message=message,
            header_names=parsed.header,
            id_type=parsed.id_type,
            rows=parsed.rows,
            batch_id=batch_id,
            duplicate_ids=parsed.duplicate_ids,
            failed_ids=failed_ids,
            lost_ids=lost,
        )

    def _enforce_retention(self) -> None:
        keep = self._faults.status_retention
        if keep is not None:
            for batches in self._client_batches.values():
                while len(batches) > keep:
                    batches.popitem(last=False)

    def _handle_status(self, client: str, query: dict[str, str], headers: Message) -> _Reply:
        with self._lock:
            self._status_polls += 1
        gate = self._gate(headers, as_json=False)
        if gate is not None:
            return gate
        batch_id = query.get("batchId", "")
        if not batch_id:
            return _Reply(
                400,
                b"<response><success>false</success><message>batchId is required</message>"
                b"</response>",
                note="missing batchId",
            )
        details = query.get("showDetails", "").lower() == "true"
        with self._lock:
            self._enforce_retention()
            batch = self._client_batches[client].get(batch_id)
            if batch is None:
                text = (
                    f"<response><batchId>{escape(batch_id)}</batchId><status>unknown</status>"
                    "<message>batch not found</message></response>"
                )
                return _Reply(200, text.encode("utf-8"), note="unknown batch")
            if batch.incomplete_left > 0:
                batch.incomplete_left -= 1
                status = "incomplete"
            else:
                status = "stuck" if batch.stuck else "complete"
            parts = [
                f"<response><batchId>{escape(batch_id)}</batchId><status>{status}</status>",
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
                    f"<profile><id>{escape(pid)}</id><status>failed</status></profile>"
                    for pid in failed
                )
            parts.append("</response>")
        return _Reply(200, "".join(parts).encode("utf-8"), note=f"{batch_id} {status}")

    def _handle_profile(
        self, id_type: str, profile_id: str, query: dict[str, str], headers: Message
    ) -> _Reply:
        gate = self._gate(headers, as_json=True)
        if gate is not None:
            return gate
        client = query.get("client")
        if not client:
            message = "client parameter is required"
            return _json_reply(400, {"status": 400, "message": message}, message)
        if client not in self._stores:
            message = f"Unknown client {client}"
            return _json_reply(404, {"status": 404, "message": message}, message)
        with self._lock:
            data = self._stores[client].to_api_json(id_type, profile_id, client)
        if data is None:
            kind = "third party id" if id_type == "thirdPartyId" else "tnt id"
            message = f"No profile found for client {client} with {kind}={profile_id}"
            return _json_reply(404, {"status": 404, "message": message}, "not found")
        return _json_reply(200, data)

    def _handle_admin(self, method: str, name: str, query: dict[str, str], body: bytes) -> _Reply:
        if name == "state" and method == "GET":
            return _json_reply(200, self.state())
        if name == "profiles" and method == "GET":
            id_type = query.get("type", "thirdPartyId")
            if id_type not in ID_TYPES:
                return _json_reply(400, {"error": f"type must be one of {', '.join(ID_TYPES)}"})
            return _json_reply(200, {"type": id_type, "profiles": self.profiles(id_type)})
        if name == "faults" and method in ("GET", "POST"):
            if method == "POST":
                try:
                    changes = json.loads(body or b"{}")
                    if not isinstance(changes, dict):
                        raise ValueError("the body must be a JSON object")
                    with self._lock:
                        self._faults.update(changes)
                except ValueError as error:  # JSONDecodeError is a ValueError too
                    return _json_reply(400, {"error": str(error)}, str(error))
            with self._lock:
                return _json_reply(200, self._faults.to_json())
        if name == "reset" and method == "POST":
            self.reset()
            return _json_reply(200, {"reset": True})
        if name in ("state", "profiles", "faults", "reset"):
            return _json_reply(405, {"error": f"method {method} not allowed"})
        return _json_reply(404, {"error": f"no emulator endpoint {name!r}"})


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _check_id_type(id_type: str) -> None:
    if id_type not in ID_TYPES:
        raise ValueError(f"id_type must be one of {ID_TYPES}, got {id_type!r}")


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its emulator and its open connections."""

    daemon_threads = True
    emulator: Emulator

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints tracebacks to stderr; a vanished client is routine here.
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            logger.debug("connection from %s ended: %s", client_address, error)
        else:
            logger.exception("emulator error on a connection from %s", client_address)

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """Shut down keep-alive connections so a stopped emulator answers nothing more."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the peer
                connection.shutdown(socket.SHUT_RDWR)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    """Reads a request, lets the emulator answer it, writes (or drops) the answer."""

    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as Target's edge servers
    server_version = "TargetEmulator/1.0"
    timeout = 120  # idle keep-alive connections are closed after this

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without TCP_NODELAY, Nagle holds the body
        # back until the client's delayed ACK (~40 ms per answer on Linux loopback).
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        # http.server's own messages (bad request lines, timeouts): keep them off stderr.
        logger.debug("%s - %s", self.address_string(), format % args)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # _dispatch logs one line per request itself

    def _read_body(self) -> bytes | None:
        """The request body; None when it is too large to read."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_READ_BYTES:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes | None:
        parts: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline(65537).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailer fields
                break
            total += size
            if total > MAX_READ_BYTES:
                return None
            parts.append(self.rfile.read(size))
            self.rfile.readline(65537)  # the CRLF after each chunk
        return b"".join(parts)

    def _dispatch(self, method: str) -> None:
        try:
            reply = self._route(method)
        except Exception:
            logger.exception("emulator error on %s %s", method, self.path)
            reply = _Reply(500, b"internal emulator error", "text/plain; charset=UTF-8")
        if reply.delay > 0:
            time.sleep(reply.delay)
        if reply.drop:
            self.close_connection = True
            logger.info("%s %s -> dropped connection", method, self.path)
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        note = f" ({reply.note})" if reply.note else ""
        # Logged before writing, so the line exists once the client has its answer.
        logger.info("%s %s -> %d%s", method, self.path, reply.status, note)
        try:
            self.end_headers()
            self.wfile.write(reply.body)
            self.wfile.flush()
        except OSError as error:
            # The client gave up (typically a timeout during delay_seconds): nothing to answer.
            self.close_connection = True
            logger.debug("%s %s: client gone before the answer (%s)", method, self.path, error)

    def _route(self, method: str) -> _Reply:
        emulator = self.server.emulator
        body = self._read_body()
        if body is None:
            self.close_connection = True
            return _Reply(413, b"request body too large", "text/plain; charset=UTF-8")
        split = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(split.query).items()}
        # Split the raw path first: a %2F inside an id must not become a path separator.
        segments = split.path.split("/")[1:]
        try:
            decoded = [unquote(segment, errors="strict") for segment in segments]
        except UnicodeDecodeError:
            return _json_reply(400, {"status": 400, "message": "invalid UTF-8 in path"})

        not_found = _Reply(404, b"not found", "text/plain; charset=UTF-8", note="not found")

        def allow(expected: str) -> _Reply | None:
            if method == expected:
                return None
            return _Reply(
                405, b"method not allowed", "text/plain; charset=UTF-8", {"Allow": expected}
            )

        if len(decoded) >= 2 and decoded[0] == "m2":
            client = decoded[1]
            if client not in emulator.client_codes:
                return not_found
            rest = decoded[2:]
            if rest in (["v2", "profile", "batchUpdate"], ["profile", "batchUpdate"]):
                return allow("POST") or emulator._handle_upload(
                    client, split.path, 2 if rest[0] == "v2" else 1, self.headers, body
                )
            if rest == ["profile", "batchStatus"]:
                return allow("GET") or emulator._handle_status(client, query, self.headers)
            return not_found
        if decoded[:3] == ["rest", "v1", "profiles"]:
            if len(decoded) == 5 and decoded[3] == "thirdPartyId" and decoded[4]:
                return allow("GET") or emulator._handle_profile(
                    "thirdPartyId", decoded[4], query, self.headers
                )
            if len(decoded) == 4 and decoded[3]:
                return allow("GET") or emulator._handle_profile(
                    "pcId", decoded[3], query, self.headers
                )
            return not_found
        if len(decoded) == 2 and decoded[0] == "_emulator":
            return emulator._handle_admin(method, decoded[1], query, body)
        return not_found


def serve_forever(
    host: str = "127.0.0.1",
    port: int = 8899,
    client_code: str = "demo",
    *,
    faults: Faults | None = None,
    max_upload_records: int | None = 1000,
    on_ready: Callable[[Emulator], object] | None = None,
) -> None:
    """Run an emulator in the foreground until interrupted (``target-sync emulator``).

    Args:
        host: address to bind (loopback by default).
        port: port to bind (0 picks a free one; ``on_ready`` can read it).
        client_code: the Target client code in paths.
        faults: initial fault switches (they can be changed via ``POST /_emulator/faults``).
        max_upload_records: how many upload records to keep for ``/_emulator/state``.
        on_ready: optional ``callable(Emulator)`` called once the port is bound, e.g. to
            print the base URL.
    """
    emulator = Emulator(client_code, host, port, faults, max_upload_records=max_upload_records)
    emulator.start()
    try:
        if on_ready is not None:
            on_ready(emulator)
        emulator.wait()
    except KeyboardInterrupt:
        logger.info("Target emulator interrupted; stopping")
    finally:
        emulator.stop()
