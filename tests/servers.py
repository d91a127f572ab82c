"""Reaching the real engines the source tests run against.

PostgreSQL is expected on 127.0.0.1:5432, database ``test``, user ``postgres`` or ``root``
(trust auth). The fake Snowflake is fakesnow's HTTP server, started on loopback. When one is
unavailable the tests that need it are skipped with the reason, except under ``CI=true``,
where they fail: CI must never pass by skipping.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import os
import uuid
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest

POSTGRES_HOST = "127.0.0.1"
POSTGRES_PORT = 5432
POSTGRES_DATABASE = "test"
POSTGRES_USERS = ("postgres", "root")

_dsn: str | None = None
_dsn_error: str | None = None


def unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it when running in CI."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a missing test service is a failure, not a skip)")
    pytest.skip(reason)


def postgres_dsn() -> str:
    """The SQLAlchemy URL of the test PostgreSQL, or skip (fail under CI) when unreachable."""
    global _dsn, _dsn_error
    if _dsn is None and _dsn_error is None:
        try:
            import psycopg
        except ImportError:
            _dsn_error = "psycopg is not installed"
        else:
            problems = []
            for user in POSTGRES_USERS:
                try:
                    psycopg.connect(
                        host=POSTGRES_HOST,
                        port=POSTGRES_PORT,
                        dbname=POSTGRES_DATABASE,
                        user=user,
                        connect_timeout=3,
                    ).close()
                except psycopg.Error as exc:
                    problems.append(f"{user}: {' '.join(str(exc).split())}")
                    continue
                _dsn = (
                    f"postgresql+psycopg://{user}@{POSTGRES_HOST}:{POSTGRES_PORT}/"
                    f"{POSTGRES_DATABASE}"
                )
                break
            else:
                _dsn_error = (
                    f"PostgreSQL is not reachable at {POSTGRES_HOST}:{POSTGRES_PORT}/"
                    f"{POSTGRES_DATABASE} ({'; '.join(problems)})"
                )
    if _dsn is None:
        unavailable(_dsn_error or "PostgreSQL is not reachable")
    return _dsn


def postgres_connect() -> Any:
    """A psycopg connection (autocommit) to the test PostgreSQL."""
    import psycopg

    url = postgres_dsn().replace("postgresql+psycopg://", "postgresql://")
    return psycopg.connect(url, autocommit=True)


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh schema, dropped afterwards: tests running in parallel never share tables."""
    name = f"ts_{uuid.uuid4().hex[:12]}"
    with postgres_connect() as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield name
    finally:
        with postgres_connect() as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


_fakesnow: dict[str, Any] | None = None
_fakesnow_error: str | None = None


@contextlib.contextmanager
def fakesnow_server() -> Iterator[dict[str, Any]]:
    """fakesnow's Snowflake-compatible HTTP server on loopback; yields connection kwargs.

    One server per process, started on first use and stopped when the process exits:
    ``fakesnow.server()`` starts only once per process (it imports its submodule
    ``fakesnow.server``, which replaces the function on the package: a second call fails
    with "'module' object is not callable"). Tests keep apart with databases of their own.
    """
    global _fakesnow, _fakesnow_error
    if _fakesnow is None and _fakesnow_error is None:
        try:
            import fakesnow
        except ImportError as exc:
            _fakesnow_error = f"fakesnow is not installed ({exc})"
        else:
            try:
                server = fakesnow.server(host="127.0.0.1")
                _fakesnow = server.__enter__()
            except Exception as exc:
                _fakesnow_error = f"fakesnow's server did not start ({' '.join(str(exc).split())})"
            else:
                atexit.register(_stop_fakesnow, server)
    if _fakesnow is None:
        unavailable(_fakesnow_error or "fakesnow's server did not start")
    yield dict(_fakesnow)


def _stop_fakesnow(server: Any) -> None:
    import logging

    # uvicorn logs its shutdown to handlers whose streams pytest has closed by now.
    logging.getLogger("uvicorn.error").disabled = True
    server.__exit__(None, None, None)


def closed_port() -> int:
    """A loopback TCP port nothing listens on (bound, then released)."""
    import socket

    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def snowflake_refusing_login() -> Iterator[int]:
    """An HTTP server answering every Snowflake login as Snowflake answers a wrong password.

    fakesnow accepts any credentials, so the wrong-password path is exercised against the
    response Snowflake documents for it (code 390100), through the real connector.
    """
    import http.server
    import json
    import threading

    class Refuse(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.dumps(
                {
                    "data": {"nextAction": None, "authnMethod": "USERNAME_PASSWORD"},
                    "code": "390100",
                    "message": "Incorrect username or password was specified.",
                    "success": False,
                    "headers": None,
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def snowflake_literal(value: Any) -> Any:
    """Text Snowflake casts back to the value (JSON carries no NaN, no exact big ints)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return {"nan": "NaN", "inf": "inf", "-inf": "-inf"}.get(repr(value), repr(value))
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return str(value)
