"""Target's bulk profile API as documented by Adobe, as a function: request in, answer out.

:class:`TargetApp` holds what a Target account keeps (per client code: its profiles and the
statuses of its last batches), what the emulator records (upload calls, counters) and the
fault switches; it knows nothing of sockets (the HTTP side is :mod:`.server`). Routes
(``{client}`` is one of the app's client codes; any other client code answers 404):

=========================================================  ======================================
``POST /m2/{client}/v2/profile/batchUpdate``               upload, v2 (creates unknown profiles)
``POST /m2/{client}/profile/batchUpdate``                  upload, v1 (updates existing only)
``GET  /m2/{client}/profile/batchStatus?batchId=..``       batch status (``&showDetails=true``)
``GET  /rest/v1/profiles/thirdPartyId/{id}?client=..``     read a thirdPartyId profile (JSON)
``GET  /rest/v1/profiles/{tntId}?client=..``               read a pcId profile (JSON)
``/_emulator/...``                                         the admin API (see :mod:`.admin`)
=========================================================  ======================================

Where Adobe documents nothing (see also :mod:`.answers` for the shapes of the answers):

* a batch whose rows hold no value at all is accepted and skipped: it creates no profile;
* a profile read needs ``?client=`` (400 when missing, 404 for another client code);
* an upload is applied before ``delay_seconds`` is slept, as when Target processed a batch
  whose answer the client then timed out on.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from . import admin
from .account import Account
from .answers import (
    Reply,
    json_answer,
    json_error,
    missing_batch_id_answer,
    refusal,
    retry_after_headers,
    status_answer,
    text_answer,
    unknown_batch_answer,
    upload_answer,
)
from .batchfile import ID_TYPES, BatchError, ParsedBatch, parse_batch
from .faults import Faults, RateWindow, SeededRandom, batch_fate, gate, upload_fault
from .records import UploadRecord, redacted_headers
from .store import ProfileStore

__all__ = ["Request", "TargetApp"]

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
_CLIENT_CODE = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Request:
    """One HTTP request, as the app needs it.

    Attributes:
        method: ``GET``, ``POST``, ...
        target: the path and query string as sent.
        headers: the request headers (case-insensitive ``get``).
        body: the whole body.
        base_url: where this emulator is reached (for the status URLs it hands out).
    """

    method: str
    target: str
    headers: Message
    body: bytes
    base_url: str


class TargetApp:
    """The emulator's behaviour without the sockets; every public method is thread-safe.

    Args:
        client_code: the Target client code in paths (``/m2/{client}/...``).
        faults: fault switches; a fresh :class:`Faults` (all off) by default.
        other_clients: more client codes answered, each with profiles and batches of its own.
        max_upload_records: keep only the last N :class:`UploadRecord` (None keeps all).
        store_factory: makes each client's profile store (a store that counts instead of
            keeping profiles lets a benchmark send millions).
        parse: parses an upload body into a batch, raising :class:`BatchError` when invalid.
    """

    def __init__(
        self,
        client_code: str,
        faults: Faults | None = None,
        *,
        other_clients: tuple[str, ...] = (),
        max_upload_records: int | None = None,
        store_factory: Callable[[], ProfileStore] = ProfileStore,
        parse: Callable[[bytes], ParsedBatch] = parse_batch,
    ) -> None:
        for code in (client_code, *other_clients):
            if not _CLIENT_CODE.fullmatch(code):
                raise ValueError(f"invalid client code {code!r}: use letters, digits, - or _")
        self.client_code = client_code
        self.lock = threading.RLock()
        self._faults = faults if faults is not None else Faults()
        self._accounts = {code: Account(store_factory()) for code in (client_code, *other_clients)}
        self._parse = parse
        self._uploads: deque[UploadRecord] = deque(maxlen=max_upload_records)
        self._upload_count = 0
        self._seq = 0  # never reset, so batch ids stay unique across reset()
        self._calls = 0
        self._status_polls = 0
        self._window = RateWindow()
        self._rng = SeededRandom(self._faults.seed)

    # -- inspection ----------------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        """The live fault switches."""
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        with self.lock:
            self._faults = faults

    @property
    def client_codes(self) -> tuple[str, ...]:
        """Every client code answered, :attr:`client_code` first."""
        return tuple(self._accounts)

    def profiles(self, id_type: str, client: str | None) -> dict[str, dict[str, str]]:
        """A copy of every profile of ``id_type`` of ``client`` (None: :attr:`client_code`)."""
        _check_id_type(id_type)
        with self.lock:
            return self._store(client).dump(id_type)

    def add_profile(
        self, profile_id: str, attributes: dict[str, str], id_type: str, client: str | None
    ) -> None:
        """Create or update a profile directly; empty values are ignored."""
        _check_id_type(id_type)
        with self.lock:
            self._store(client).put(id_type, profile_id, attributes, _now_ms())

    def _store(self, client: str | None) -> ProfileStore:
        code = self.client_code if client is None else client
        if code not in self._accounts:
            raise ValueError(f"this emulator does not serve client code {code!r}")
        return self._accounts[code].store

    @property
    def uploads(self) -> list[UploadRecord]:
        """The upload calls received, oldest first (a new list)."""
        with self.lock:
            return list(self._uploads)

    @property
    def upload_count(self) -> int:
        """Upload calls received (even when records were discarded)."""
        with self.lock:
            return self._upload_count

    @property
    def status_polls(self) -> int:
        """Batch status calls received."""
        with self.lock:
            return self._status_polls

    @property
    def calls(self) -> int:
        """API calls (uploads, status, profile reads; not ``/_emulator/``)."""
        with self.lock:
            return self._calls

    def reset(self) -> None:
        """Forget profiles, uploads, batches and counters, and turn every fault off (in place)."""
        with self.lock:
            for account in self._accounts.values():
                account.clear()
            self._uploads.clear()
            self._upload_count = 0
            self._calls = 0
            self._status_polls = 0
            self._window.clear()
            self._faults.reset()
            self._rng.reseed(self._faults.seed)

    def state(self, base_url: str) -> dict[str, Any]:
        """What ``GET /_emulator/state`` answers."""
        with self.lock:
            own = self._accounts[self.client_code].store
            return {
                "client_code": self.client_code,
                "base_url": base_url,
                "profiles": {id_type: own.count(id_type) for id_type in ID_TYPES},
                "uploads": self._upload_count,
                "calls": self._calls,
                "status_polls": self._status_polls,
                "batches": sum(len(account.batches) for account in self._accounts.values()),
                "faults": self._faults.to_json(),
                "uploads_summary": [record.summary() for record in self._uploads],
            }

    # -- routing -------------------------------------------------------------------------------

    def answer(self, request: Request) -> Reply:
        """The answer to one request."""
        method = request.method
        split = urlsplit(request.target)
        query = {key: values[0] for key, values in parse_qs(split.query).items()}
        # Split the raw path first: a %2F inside an id must not become a path separator.
        segments = split.path.split("/")[1:]
        try:
            decoded = [unquote(segment, errors="strict") for segment in segments]
        except UnicodeDecodeError:
            return json_answer(400, {"status": 400, "message": "invalid UTF-8 in path"})

        def allow(expected: str) -> Reply | None:
            if method == expected:
                return None
            return text_answer(405, "method not allowed", headers={"Allow": expected})

        if len(decoded) >= 2 and decoded[0] == "m2":
            client = decoded[1]
            if client not in self._accounts:
                return _not_found()
            rest = decoded[2:]
            if rest in (["v2", "profile", "batchUpdate"], ["profile", "batchUpdate"]):
                version = 2 if rest[0] == "v2" else 1
                return allow("POST") or self._upload(request, split.path, client, version)
            if rest == ["profile", "batchStatus"]:
                return allow("GET") or self._status(request, client, query)
            return _not_found()
        if decoded[:3] == ["rest", "v1", "profiles"]:
            if len(decoded) == 5 and decoded[3] == "thirdPartyId" and decoded[4]:
                return allow("GET") or self._profile(request, "thirdPartyId", decoded[4], query)
            if len(decoded) == 4 and decoded[3]:
                return allow("GET") or self._profile(request, "pcId", decoded[3], query)
            return _not_found()
        if len(decoded) == 2 and decoded[0] == "_emulator":
            return admin.answer(self, method, decoded[1], query, request)
        return _not_found()

    # -- the API -------------------------------------------------------------------------------

    def _gate(self, headers: Message, as_json: bool) -> Reply | None:
        """Count the call; apply the rate limit and the token check. None lets it through."""
        with self.lock:
            self._calls += 1
            faults = self._faults
            refused = gate(faults, self._window, headers.get("Authorization", ""))
            if refused is None:
                return None
            return refusal(
                refused,
                limit=faults.rate_limit_per_minute,
                retry_after=faults.retry_after,
                as_json=as_json,
            )

    def _upload(self, request: Request, path: str, client: str, api_version: int) -> Reply:
        received_at = time.time()

        def finish(reply: Reply, delay: float = 0.0, **fields: Any) -> Reply:
            reply.delay = delay
            record = UploadRecord(
                path=path,
                api_version=api_version,
                headers=redacted_headers(request.headers.items()),
                body=request.body,
                received_at=received_at,
                http_status=None if reply.drop else reply.status,
                success=fields.pop("success", False),
                message=fields.pop("message", reply.note),
                dropped=reply.drop,
                **fields,
            )
            with self.lock:
                self._uploads.append(record)
                self._upload_count += 1
            return reply

        refused = self._gate(request.headers, as_json=False)
        if refused is not None:
            return finish(refused)
        with self.lock:
            faults = self._faults
            fault = upload_fault(faults, self._rng)
            delay, retry_after = faults.delay_seconds, faults.retry_after
            fail_status, reject_message = faults.fail_status, faults.reject_message
        if fault == "drop":
            return finish(Reply(0, drop=True, note="connection dropped (fault)"))
        if fault == "fail":
            reply = upload_answer(fail_status, False, "Service unavailable (fault)")
            reply.headers.update(retry_after_headers(retry_after))
            return finish(reply, delay)
        if fault == "reject":
            return finish(upload_answer(200, False, reject_message), delay)

        content_type = request.headers.get("Content-Type", "")
        if content_type.split(";")[0].strip().lower() != FORM_CONTENT_TYPE:
            message = f"Invalid content type {content_type!r}: expected {FORM_CONTENT_TYPE}"
            return finish(upload_answer(200, False, message), delay)
        # Parse outside the lock: a 500,000-row batch takes seconds.
        try:
            parsed = self._parse(request.body)
        except BatchError as error:
            return finish(upload_answer(200, False, str(error)), delay)
        reply, fields = self._accept(parsed, client, api_version, request.base_url)
        return finish(reply, delay, **fields)

    def _accept(
        self, parsed: ParsedBatch, client: str, api_version: int, base_url: str
    ) -> tuple[Reply, dict[str, Any]]:
        """Accept a valid batch: apply it (as the faults allow) and keep its status; returns
        the answer and the fields of its upload record."""
        with self.lock:
            faults = self._faults
            fate = batch_fate(faults, self._rng, parsed.updates)
            self._seq += 1
            batch_id = f"{client}-{_now_ms()}-{self._seq}"
            batch = self._accounts[client].accept(
                batch_id,
                parsed,
                fate,
                create=api_version == 2,
                incomplete_polls=faults.incomplete_polls,
                now_ms=_now_ms(),
            )
            self._enforce_retention()
        status_url = (
            f"{base_url}/m2/{client}/profile/batchStatus?batchId={quote(batch_id, safe='')}"
        )
        message = "Batch submitted for processing"
        reply = upload_answer(200, True, message, status_url)
        lost = fate.lost_ids
        reply.note = (
            f"{batch_id} rows={batch.size} failed={len(batch.failed_ids)}"
            + (f" lost={len(lost)}" if lost else "")
            + (" stuck" if fate.stuck else "")
        )
        return reply, {
            "success": True,
            "message": message,
            "header_names": parsed.header,
            "id_type": parsed.id_type,
            "rows": parsed.rows,
            "batch_id": batch_id,
            "duplicate_ids": parsed.duplicate_ids,
            "failed_ids": batch.failed_ids,
            "lost_ids": lost,
        }

    def _enforce_retention(self) -> None:
        for account in self._accounts.values():
            account.keep_last(self._faults.status_retention)

    def _status(self, request: Request, client: str, query: dict[str, str]) -> Reply:
        with self.lock:
            self._status_polls += 1
        refused = self._gate(request.headers, as_json=False)
        if refused is not None:
            return refused
        batch_id = query.get("batchId", "")
        if not batch_id:
            return missing_batch_id_answer()
        details = query.get("showDetails", "").lower() == "true"
        with self.lock:
            self._enforce_retention()
            batch = self._accounts[client].batches.get(batch_id)
            if batch is None:
                return unknown_batch_answer(batch_id)
            return status_answer(batch, batch.poll(), details)

    def _profile(
        self, request: Request, id_type: str, profile_id: str, query: dict[str, str]
    ) -> Reply:
        refused = self._gate(request.headers, as_json=True)
        if refused is not None:
            return refused
        client = query.get("client")
        if not client:
            return json_error(400, "client parameter is required")
        if client not in self._accounts:
            return json_error(404, f"Unknown client {client}")
        with self.lock:
            data = self._accounts[client].store.to_api_json(id_type, profile_id, client)
        if data is None:
            kind = "third party id" if id_type == "thirdPartyId" else "tnt id"
            message = f"No profile found for client {client} with {kind}={profile_id}"
            return json_error(404, message, note="not found")
        return json_answer(200, data)


def _not_found() -> Reply:
    return text_answer(404, "not found", note="not found")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _check_id_type(id_type: str) -> None:
    if id_type not in ID_TYPES:
        raise ValueError(f"id_type must be one of {ID_TYPES}, got {id_type!r}")
