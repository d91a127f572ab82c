"""Why a round trip failed, by the type of the exception and its causes, never by its text:
retriable (connections, resets, timeouts) or fatal (TLS), in a few words for messages."""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterator

import urllib3.exceptions

NETWORK_REASONS: tuple[tuple[tuple[type[BaseException], ...], str], ...] = (
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


def causes_of(exc: BaseException) -> Iterator[BaseException]:
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


def find_cause(causes: list[BaseException], *kinds: type[BaseException]) -> BaseException | None:
    return next((c for c in causes if isinstance(c, kinds)), None)


def is_reset(causes: list[BaseException]) -> bool:
    """A TLS "error" that is only the connection going away mid-handshake: retriable."""
    return (
        find_cause(causes, ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError)
        is not None
    )


def tls_problem(causes: list[BaseException], host: str, what: str) -> str:
    """The one-line message of a fatal TLS failure."""
    untrusted = find_cause(causes, ssl.SSLCertVerificationError)
    if isinstance(untrusted, ssl.SSLCertVerificationError):
        detail = untrusted.verify_message or untrusted.reason or "verification failed"
        problem = f"the TLS certificate of {host} is not trusted ({detail})"
        fix = "check target.base_url; a private CA's bundle can be named in REQUESTS_CA_BUNDLE"
    else:
        failure = find_cause(causes, ssl.SSLError)
        detail = getattr(failure, "reason", None) or type(failure).__name__
        problem = f"the TLS handshake with {host} failed ({detail})"
        fix = "check that target.base_url names an https:// server, or http:// for a plain one"
    return f"{what}: {problem}; not retried: {fix}"
