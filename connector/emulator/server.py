"""The HTTP side of the Target emulator: :class:`Emulator` serves a :class:`.app.TargetApp`.

The server speaks HTTP/1.1 with keep-alive, reads ``Content-Length`` and chunked bodies, and
closes open connections on :meth:`Emulator.stop`; what each request gets is the app's
:class:`.answers.Reply`, written, delayed or dropped as it says. One log line per request goes
to ``logging.getLogger(__name__)``; the ``Authorization`` value is never logged or recorded.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from .answers import Reply, text_answer
from .app import Request, TargetApp
from .batchfile import ParsedBatch, parse_batch
from .faults import Faults
from .records import UploadRecord
from .store import ProfileStore

__all__ = ["Emulator", "serve_forever"]

logger = logging.getLogger(__name__)

# Bodies above this are not even read (413 and the connection is closed); bodies between
# the batch limit (50,000,000 bytes) and this are read and answered success=false.
MAX_READ_BYTES = 256 * 1024 * 1024


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
        store_factory: makes each client code's profile store (the benchmark's counts
            profiles instead of keeping them).
        parse: parses an upload body, raising ``BatchError`` for an invalid batch (the
            benchmark's sink only counts lines).
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
        store_factory: Callable[[], ProfileStore] = ProfileStore,
        parse: Callable[[bytes], ParsedBatch] = parse_batch,
    ) -> None:
        self._app = TargetApp(
            client_code,
            faults,
            other_clients=other_clients,
            max_upload_records=max_upload_records,
            store_factory=store_factory,
            parse=parse,
        )
        self.client_code = client_code
        self.host = host
        self._requested_port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Emulator:
        """Bind the port and serve in a daemon thread; returns self."""
        if self._server is not None:
            raise RuntimeError("the emulator is already started")
        server_cls = _Server6 if ":" in self.host else _Server
        server = server_cls((self.host, self._requested_port), _Handler)
        server.answer = self._answer
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

    def _answer(self, method: str, target: str, headers: Message, body: bytes) -> Reply:
        return self._app.answer(Request(method, target, headers, body, self.base_url))

    # -- addresses -----------------------------------------------------------------------------

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

    # -- state and switches (the app's) -------------------------------------------------------

    @property
    def faults(self) -> Faults:
        """The live fault switches (mutate fields, or assign a new :class:`Faults`)."""
        return self._app.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self._app.faults = faults

    @property
    def client_codes(self) -> tuple[str, ...]:
        """Every client code this server answers for, its own first."""
        return self._app.client_codes

    def profiles(
        self, id_type: str = "thirdPartyId", client: str | None = None
    ) -> dict[str, dict[str, str]]:
        """A copy of every profile of ``id_type`` of ``client`` (default: the server's own
        client code): ``id -> {attribute: value}``."""
        return self._app.profiles(id_type, client)

    def add_profile(
        self,
        profile_id: str,
        attributes: dict[str, str],
        id_type: str = "thirdPartyId",
        client: str | None = None,
    ) -> None:
        """Create or update a profile directly (to seed v1 tests); empty values are ignored."""
        self._app.add_profile(profile_id, attributes, id_type, client)

    @property
    def uploads(self) -> list[UploadRecord]:
        """The upload calls received, oldest first (a new list)."""
        return self._app.uploads

    @property
    def upload_count(self) -> int:
        """Upload calls received since start or reset (even when records were discarded)."""
        return self._app.upload_count

    @property
    def status_polls(self) -> int:
        """Batch status calls received since start or reset."""
        return self._app.status_polls

    @property
    def calls(self) -> int:
        """API calls (uploads, status, profile reads; not ``/_emulator/``) since start or reset."""
        return self._app.calls

    def reset(self) -> None:
        """Forget profiles, uploads, batches and counters, and turn every fault off (in place)."""
        self._app.reset()

    def state(self) -> dict[str, Any]:
        """What ``GET /_emulator/state`` answers."""
        return self._app.state(self.base_url)


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows who answers its requests, and its open connections."""

    daemon_threads = True
    answer: Callable[[str, str, Message, bytes], Reply]  # (method, target, headers, body)

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
            reply = text_answer(500, "internal emulator error")
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

    def _route(self, method: str) -> Reply:
        body = self._read_body()
        if body is None:
            self.close_connection = True
            return text_answer(413, "request body too large")
        return self.server.answer(method, self.path, self.headers, body)


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
