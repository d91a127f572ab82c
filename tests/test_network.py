"""Network and security of the Target client (issue #12), over real sockets on loopback.

Retries are decided by the failure's type: a connection reset in the middle of an answer is
retried, an untrusted TLS certificate or a failed handshake fails at once. The bearer token
reaches Target's hosts only, never a status URL on another host nor a redirect. Every client
of one Target in a process shares one calls-per-minute pace.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import ipaddress
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

import connector
from connector.config import TargetConfig
from connector.delivery import retry
from connector.delivery.client import TargetClient
from connector.delivery.urls import token_allowed
from connector.emulator import Emulator
from connector.emulator import faults as emulator_faults
from connector.errors import TargetFatalError

from .conftest import CUSTOMERS, ConfigWriter
from .test_delivery import EmulatorTime, Events, FakeClock

BODY = b"batch=thirdPartyId,loyaltyTier\nc1,gold\n"
TOKEN = "tok-7Hq2-secret-9xZ"


@pytest.fixture(autouse=True)
def fresh_paces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no shared pace, so fake clocks never meet real ones."""
    monkeypatch.setattr(retry, "_shared", {})


def settings(base_url: str, **extra: Any) -> TargetConfig:
    return TargetConfig(
        client_code="demo",
        base_url=base_url,
        backoff_base_seconds=0.01,
        backoff_max_seconds=0.02,
        **extra,
    )


def upload_answer(status_url: str) -> bytes:
    return (
        "<response><success>true</success>"
        f"<batchStatus>{status_url}</batchStatus>"
        "<message>Batch submitted for processing</message></response>"
    ).encode()


# -- small real servers ---------------------------------------------------------------------


class RawServer:
    """A TCP server on loopback answering each connection with ``answer(index, request)``.

    ``answer`` gets the connection's number (0, 1, ...) and the request (head and body) and
    writes whatever bytes it likes, or resets the connection, on the socket it is given.
    """

    def __init__(
        self,
        answer: Callable[[int, bytes, socket.socket], None],
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._answer = answer
        self._sock = socket.create_server(("127.0.0.1", 0))
        if tls is not None:
            self._sock = tls.wrap_socket(self._sock, server_side=True)
        self.port = int(self._sock.getsockname()[1])
        self.requests: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        index = 0
        while True:
            try:
                conn, _ = self._sock.accept()
            except ssl.SSLError:
                continue  # a TLS server whose handshake the client refused
            except OSError:
                return
            with conn:
                request = _read_request(conn)
                self.requests.append(request)
                self._answer(index, request, conn)
            index += 1

    def close(self) -> None:
        self._sock.close()


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


class Relay(RawServer):
    """A relay in front of the emulator: forwards each request, one per connection.

    Answers name the emulator's address; the relay puts ``status_base`` (its own address by
    default) there instead, as a proxy that owns the address would. The first
    ``break_uploads`` upload answers are cut short and the connection is reset.
    """

    def __init__(
        self, emulator: Emulator, status_base: str | None = None, break_uploads: int = 0
    ) -> None:
        self.broken = 0

        def answer(index: int, request: bytes, conn: socket.socket) -> None:
            upstream = socket.create_connection(("127.0.0.1", emulator.port))
            with upstream:
                upstream.sendall(request.replace(b"Connection: keep-alive", b"Connection: close"))
                reply = b""
                while chunk := upstream.recv(65536):
                    reply += chunk
            head, _, body = reply.partition(b"\r\n\r\n")
            body = body.replace(emulator.base_url.encode(), (status_base or self.base_url).encode())
            head = b"\r\n".join(
                f"Content-Length: {len(body)}".encode()
                if line.lower().startswith(b"content-length:")
                else line
                for line in head.split(b"\r\n")
            )
            reply = head + b"\r\n\r\n" + body
            if b"batchUpdate" in request.split(b"\r\n", 1)[0] and self.broken < break_uploads:
                self.broken += 1
                conn.sendall(reply[:-20])
                reset(conn)
            else:
                conn.sendall(reply)

        super().__init__(answer)


def reset(conn: socket.socket) -> None:
    """Close with a TCP reset (RST) instead of an orderly FIN."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class Recorder:
    """An HTTP server that records every request (path and headers) and answers 200."""

    def __init__(self) -> None:
        seen: list[dict[str, Any]] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
                text = b"<response><batchId>x</batchId><status>complete</status></response>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            do_GET = do_POST = _record

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.seen = seen
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextlib.contextmanager
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    try:
        yield server
    finally:
        server.close()


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by itself (trusted by nobody), and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


# -- 1. retry by the failure's type -----------------------------------------------------------


def _truncated_then_ok(resets: int, chunked: bool) -> Callable[[int, bytes, socket.socket], None]:
    def answer(index: int, request: bytes, conn: socket.socket) -> None:
        if index >= resets:
            body = upload_answer("/m2/demo/profile/batchStatus?batchId=b-1")
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n"
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            return
        if chunked:
            head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            conn.sendall(head + b"20\r\n<response><success>true</succ")
        else:
            head = b"HTTP/1.1 200 OK\r\nContent-Length: 4000\r\n\r\n"
            conn.sendall(head + b"<response><success>true</success>")
        reset(conn)

    return answer


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_connection_reset_mid_answer_is_retried(chunked: bool) -> None:
    probe = RawServer(_truncated_then_ok(resets=1, chunked=chunked))
    try:
        # What requests raises for this answer: the case the issue names.
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            requests.get(probe.base_url, timeout=5)
    finally:
        probe.close()

    server = RawServer(_truncated_then_ok(resets=2, chunked=chunked))
    try:
        retries: list[str] = []
        client = TargetClient(
            settings(server.base_url, calls_per_minute=50),
            "sync 't'",
            on_retry=lambda what, attempt, reason, wait: retries.append(reason),
        )
        receipt = client.upload(BODY, "batch 1")
        client.close()
    finally:
        server.close()
    assert receipt.attempts == 3 and receipt.batch_id == "b-1"
    assert retries == ["connection broken while reading the answer"] * 2
    assert len(server.requests) == 3  # the same batch went out again: at least once


def test_a_sync_through_resets_mid_answer_delivers(
    emulator: Emulator, warehouse: Callable[[str], Path], write_config: ConfigWriter
) -> None:
    """A proxy in front of the emulator that breaks the first answers mid-body."""
    warehouse(CUSTOMERS.format(n=30))
    proxy = Relay(emulator, break_uploads=2)
    try:
        events = Events()
        config = write_config(target={"base_url": proxy.base_url})
        result = connector.sync(config, listener=events)
    finally:
        proxy.close()
    assert result.exit_code == 0 and result.sent == 30
    assert [r["reason"] for r in events.named("retry")] == [
        "connection broken while reading the answer"
    ] * 2
    assert len(emulator.profiles()) == 30


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[RawServer]:
    """An HTTPS server whose certificate nobody trusts."""
    cert, key = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def answer(index: int, request: bytes, conn: socket.socket) -> None:
        pass  # never reached: the handshake fails first

    server = RawServer(answer, tls=context)
    yield server
    server.close()


def test_an_untrusted_certificate_fails_at_once_without_retries(tls_server: RawServer) -> None:
    clock = FakeClock()
    retries: list[str] = []
    client = TargetClient(
        TargetConfig(client_code="demo", base_url=f"https://127.0.0.1:{tls_server.port}"),
        "sync 't'",
        sleep=clock.sleep,
        clock=clock,
        on_retry=lambda what, attempt, reason, wait: retries.append(reason),
    )
    with pytest.raises(TargetFatalError) as failure:
        client.upload(BODY, "batch 1 of sync 't'")
    client.close()
    message = str(failure.value)
    assert message.startswith("batch 1 of sync 't': the TLS certificate of 127.0.0.1")
    assert "not trusted (self-signed certificate)" in message and "not retried" in message
    assert "\n" not in message
    assert retries == [] and clock.sleeps == []  # no backoff, no 900 s of retries


def test_https_to_a_plain_http_server_is_a_tls_failure_not_retried(emulator: Emulator) -> None:
    retries: list[str] = []
    client = TargetClient(
        TargetConfig(client_code="demo", base_url=f"https://127.0.0.1:{emulator.port}"),
        "sync 't'",
        on_retry=lambda what, attempt, reason, wait: retries.append(reason),
    )
    with pytest.raises(TargetFatalError, match=r"TLS handshake with 127\.0\.0\.1 failed"):
        client.upload(BODY, "batch 1")
    client.close()
    assert retries == []


def test_the_cli_reports_an_untrusted_certificate_in_one_line(
    tls_server: RawServer, warehouse: Callable[[str], Path], write_config: ConfigWriter
) -> None:
    from .conftest import run_cli

    warehouse(CUSTOMERS.format(n=3))
    config = write_config(target={"base_url": f"https://127.0.0.1:{tls_server.port}"})
    cli = run_cli("sync", config)
    assert cli.returncode == 1
    errors = [line for line in cli.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in cli.stderr
    assert "TLS certificate of 127.0.0.1 is not trusted" in errors[0]
    assert "snapshot was not advanced" in errors[0]
    assert "retry" not in cli.stderr.lower()


# -- 2. the token goes to Target only -----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://demo.tt.omtrdc.net/m2/demo/v2/profile/batchUpdate", True),
        ("https://mboxedge45.tt.omtrdc.net/m2/demo/profile/batchStatus?batchId=1", True),
        ("https://tt.omtrdc.net/x", True),
        ("https://MBOXEDGE45.TT.OMTRDC.NET/x", True),
        ("https://eviltt.omtrdc.net/x", False),
        ("https://tt.omtrdc.net.example.com/x", False),
        ("https://example.com/tt.omtrdc.net", False),
        ("https://proxy.example.com/m2/demo/profile/batchStatus", True),
        ("http://proxy.example.com/m2/demo/profile/batchStatus", False),  # another port
        ("https://proxy.example.com:8443/x", False),
        ("https://other.example.com/x", False),
        ("not a url", False),
    ],
)
def test_which_hosts_may_receive_the_token(url: str, allowed: bool) -> None:
    config = TargetConfig(client_code="demo", base_url="https://proxy.example.com")
    assert token_allowed(config, url) is allowed
    default = TargetConfig(client_code="demo")  # no base_url: Target's own hosts only
    assert token_allowed(default, "https://demo.tt.omtrdc.net/m2/demo/profile/batchUpdate")
    assert not token_allowed(default, "https://proxy.example.com/x")


def test_a_status_url_on_another_host_is_not_read_and_never_gets_the_token(
    emulator: Emulator,
) -> None:
    emulator.faults.required_token = TOKEN
    with recorder() as foreign:
        client = TargetClient(settings(emulator.base_url, auth_token=TOKEN), "sync 't'")
        receipt = client.upload(BODY, "batch 1")
        assert client.status(receipt.status_url, "status of batch 1").state == "complete"
        # A state file (or an answer) naming another host: not read at all.
        foreign_url = f"{foreign.base_url}/m2/demo/profile/batchStatus?batchId={receipt.batch_id}"
        status = client.status(foreign_url, "status of batch 1")
        client.close()
        assert status.state == "unknown"
        assert f"127.0.0.1:{foreign.port}, which is not the configured Target" in status.message
        assert foreign.seen == []
    assert "Authorization" not in client.session.headers  # never on the session


def test_a_sync_whose_answer_names_a_foreign_status_host_keeps_the_token_from_it(
    emulator: Emulator, warehouse: Callable[[str], Path], write_config: ConfigWriter
) -> None:
    """Target (here: a relay in front of the emulator) names a status URL on a host that is
    not Target's: the token never goes there, and the batch counts as unconfirmed."""
    warehouse(CUSTOMERS.format(n=10))
    emulator.faults.required_token = TOKEN
    with recorder() as foreign:
        relay = Relay(emulator, status_base=foreign.base_url)
        try:
            config = write_config(target={"base_url": relay.base_url, "auth_token": TOKEN})
            result = connector.sync(config)
        finally:
            relay.close()
        assert foreign.seen == []  # never contacted, so never given the token
    assert result.exit_code == 3 and result.failed == 10  # unconfirmed: resent next run
    assert [b"Authorization: Bearer " + TOKEN.encode() in r for r in relay.requests] == [True]


def test_a_redirect_is_not_followed_so_neither_profiles_nor_token_leave(
    warehouse: Callable[[str], Path], write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=5))
    with recorder() as foreign:

        def answer(index: int, request: bytes, conn: socket.socket) -> None:
            conn.sendall(
                b"HTTP/1.1 307 Temporary Redirect\r\n"
                + f"Location: {foreign.base_url}/m2/demo/v2/profile/batchUpdate\r\n".encode()
                + b"Content-Length: 0\r\nConnection: close\r\n\r\n"
            )

        target = RawServer(answer)
        try:
            config = write_config(target={"base_url": target.base_url, "auth_token": TOKEN})
            with pytest.raises(TargetFatalError) as failure:
                connector.sync(config)
        finally:
            target.close()
        assert foreign.seen == []
    assert f"a redirect to 127.0.0.1:{foreign.port}" in str(failure.value)
    assert "follows no redirects" in str(failure.value)


# -- 3. one pace per process ----------------------------------------------------------------


def test_clients_of_one_target_share_one_pace_and_other_targets_do_not(
    emulator: Emulator,
) -> None:
    a = TargetClient(settings(emulator.base_url), "sync 'a'")
    b = TargetClient(settings(emulator.base_url, calls_per_minute=10), "sync 'b'")
    other_client = TargetClient(
        TargetConfig(client_code="other", base_url=emulator.base_url), "sync 'c'"
    )
    with Emulator() as second:
        other_host = TargetClient(settings(second.base_url), "sync 'd'")
    assert a.pace is b.pace
    assert other_client.pace is not a.pace and other_host.pace is not a.pace


def test_two_syncs_in_one_process_never_exceed_the_pace_together(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()  # the clients' and the emulator's: minutes pass at once
    monkeypatch.setattr(emulator_faults, "time", EmulatorTime(clock))
    emulator.faults.rate_limit_per_minute = 6  # Target's own limit: 503 above it
    config = settings(emulator.base_url, calls_per_minute=6, max_attempts=1)

    stamps: list[float] = []

    def record(client: TargetClient) -> None:
        acquire = client.pace.acquire

        def acquire_and_stamp(calls: int | None = None) -> float:
            waited = acquire(calls)
            stamps.append(clock())
            return waited

        client.pace.acquire = acquire_and_stamp  # type: ignore[method-assign]

    first = TargetClient(config, "sync 'first'", sleep=clock.sleep, clock=clock)
    second = TargetClient(config, "sync 'second'", sleep=clock.sleep, clock=clock)
    record(first)  # (the pace is one object: this records the second's calls too)
    for i in range(9):
        for client in (first, second):
            # max_attempts=1: a single 503 from Target's limit would raise here.
            receipt = client.upload(BODY, f"batch {i} of {client.label}")
            assert client.status(receipt.status_url, f"status of batch {i}").state == "complete"
    assert emulator.calls == 36
    assert len(stamps) == 36
    assert max(sum(1 for s in stamps if start <= s < start + 60) for start in stamps) <= 6
    assert clock.now - 1_000.0 >= 5 * 60  # 36 calls at 6 a minute


def test_a_stricter_sharer_keeps_its_own_lower_pace(emulator: Emulator) -> None:
    clock = FakeClock()
    fast = TargetClient(
        settings(emulator.base_url, calls_per_minute=50), "fast", sleep=clock.sleep, clock=clock
    )
    slow = TargetClient(
        settings(emulator.base_url, calls_per_minute=2), "slow", sleep=clock.sleep, clock=clock
    )
    for i in range(3):
        fast.upload(BODY, f"fast {i}")
    assert clock.sleeps == []
    slow.upload(BODY, "slow 0")  # 3 calls in the window already: waits for a minute
    assert clock.sleeps and clock.now - 1_000.0 >= 60
