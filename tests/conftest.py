"""Shared fixtures: the Target emulator over real HTTP, DuckDB warehouses, config files, and
the real CLI run as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from connector.emulator import Emulator

CLI = [sys.executable, "-m", "connector"]

# A customers table of n rows: ids c0..c{n-1}, a third of the tiers NULL, seven cities.
CUSTOMERS = """
CREATE OR REPLACE TABLE customers AS
SELECT 'c' || i AS customer_id,
       CASE i % 3 WHEN 0 THEN 'gold' WHEN 1 THEN 'silver' ELSE NULL END AS tier,
       'city ' || (i % 7) AS city
FROM range({n}) t(i)
"""


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A Target emulator on a free loopback port, for one test."""
    with Emulator(client_code="demo") as emu:
        yield emu


@pytest.fixture
def warehouse(tmp_path: Path) -> Callable[[str], Path]:
    """Run SQL against a DuckDB warehouse file of this test; returns its path."""
    path = tmp_path / "warehouse.duckdb"

    def run(sql: str) -> Path:
        with duckdb.connect(str(path)) as con:
            con.execute(sql)
        return path

    return run


ConfigWriter = Callable[..., Path]


@pytest.fixture
def write_config(tmp_path: Path) -> ConfigWriter:
    """Write a sync config YAML (defaults: a DuckDB source and the given emulator)."""

    def write(
        *,
        emulator: Emulator | None = None,
        name: str = "test_sync",
        database: Path | None = None,
        query: str = "select * from customers",
        identity: dict[str, Any] | None = None,
        attributes: dict[str, Any] | None = None,
        target: dict[str, Any] | None = None,
        file_name: str = "sync.yaml",
        **top: Any,
    ) -> Path:
        config: dict[str, Any] = {
            "name": name,
            "source": {
                "type": "duckdb",
                "database": str(database or tmp_path / "warehouse.duckdb"),
                "query": query,
            },
            "identity": identity or {"column": "customer_id"},
            "attributes": attributes or {"loyaltyTier": "tier", "city": "city"},
            "target": {
                "client_code": "demo",
                "base_url": emulator.base_url if emulator else "http://127.0.0.1:9",
                "status_poll_interval_seconds": 0.05,
                "status_deadline_seconds": 5,
                "backoff_base_seconds": 0.01,
                "backoff_max_seconds": 0.05,
                **(target or {}),
            },
            "state": {"path": str(tmp_path / "state" / "state.duckdb")},
            **top,
        }
        path = tmp_path / file_name
        path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
        return path

    return write


def run_cli(
    *args: str | Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the real ``target-sync`` command in a subprocess."""
    return subprocess.run(
        [*CLI, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


# A secret the webhook URL carries (it must never show in logs or payloads).
HOOK_TOKEN = "hook-s3cr3t-abc987"


class Webhook:
    """A tiny HTTP server on loopback that records the JSON POSTed to it."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.received.append(
                    {
                        "path": self.path,
                        "content_type": self.headers.get("Content-Type"),
                        "raw": body.decode(),
                        "json": json.loads(body),
                    }
                )
                self.send_response(hook.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/t?token={HOOK_TOKEN}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()
