"""Customer data at rest (issue #17): what target-sync writes is private whatever the umask,
``reset`` leaves no value behind, ``state.keep_values: false`` keeps none at all, and no
attribute value reaches a log line, an event, ``status`` or a webhook."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb

import connector
from connector.config import load_config
from connector.emulator import Emulator
from connector.result import Event

from .conftest import ConfigWriter, Webhook, run_cli

Warehouse = Callable[[str], Path]
MARKER = "Zq7MarkerValue9x"  # an attribute value that must only ever reach Target

# Few distinct cells, so DuckDB stores them in a dictionary, byte for byte (long random
# texts it compresses, and a byte search would then prove nothing).
CUSTOMERS = """
CREATE OR REPLACE TABLE customers AS
SELECT 'c' || i AS customer_id,
       CASE WHEN i = 3 THEN '{marker}' ELSE 'tier ' || (i % 5) END AS tier,
       'city ' || (i % 7) AS city
FROM range({n}) t(i)
"""
# Enough bytes that a small memory_limit makes DuckDB spill.
BULKY = """
CREATE OR REPLACE TABLE customers AS
SELECT 'c' || i AS customer_id, 'tier ' || (i % 5) AS tier,
       md5(i::VARCHAR) || md5((i * 7)::VARCHAR) AS city
FROM range({n}) t(i)
"""


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


class ModeWatcher:
    """Records the mode of every file and folder under a folder while a run goes on."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.modes: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            self._scan()
            time.sleep(0.002)

    def _scan(self) -> None:
        for root, folders, files in os.walk(self.folder):
            for name in folders + files:
                path = Path(root) / name
                with suppress(FileNotFoundError):
                    self.modes[str(path.relative_to(self.folder))] = path.stat().st_mode

    def __enter__(self) -> ModeWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._scan()


def assert_private(modes: dict[str, int]) -> None:
    assert modes
    for name, mode in modes.items():
        expected = 0o700 if stat.S_ISDIR(mode) else 0o600
        assert stat.S_IMODE(mode) == expected, (name, oct(mode))


def test_state_spill_lock_and_batch_files_are_private_under_umask_022(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter, tmp_path: Path
) -> None:
    warehouse(BULKY.format(n=200_000))
    # A small memory limit makes DuckDB spill to its temp_directory.
    config = write_config(
        emulator=emulator,
        state={"path": str(tmp_path / "state" / "s.duckdb"), "memory_limit": "40MB", "threads": 1},
    )
    folder = tmp_path / "state"
    with umask(0o022), ModeWatcher(tmp_path / "state") as watcher:
        assert connector.sync(config).exit_code == 0
        warehouse("UPDATE customers SET tier = 'platinum' WHERE customer_id < 'c2'")
        assert connector.sync(config).exit_code == 0
    names = set(watcher.modes)
    assert {"s.duckdb", "s.duckdb.lock", "s.duckdb.tmp"} <= names, names
    assert any(n.startswith("s.duckdb.tmp/") for n in names), names  # it did spill
    assert any(n.endswith(".wal") for n in names), names
    assert_private({**watcher.modes, ".": folder.stat().st_mode})

    out = tmp_path / "out"
    warehouse("UPDATE customers SET tier = 'gold' WHERE customer_id < 'c3'")
    with umask(0o022):
        result = connector.sync(config, dry_run=True, out_dir=out)
    assert result.batch_files
    assert_private({p.name: p.stat().st_mode for p in [out, *out.iterdir()]})


def test_a_state_file_others_can_read_gets_a_warning_and_keeps_its_mode(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=10, marker=MARKER))
    config = write_config(emulator=emulator)
    assert connector.sync(config).exit_code == 0
    state = Path(load_config(config).state.path)
    state.chmod(0o644)
    cli = run_cli("sync", config)
    assert cli.returncode == 0, cli.stderr
    [warning] = [line for line in cli.stderr.splitlines() if "chmod" in line]
    assert str(state) in warning and f"chmod 600 {state}" in warning
    assert stat.S_IMODE(state.stat().st_mode) == 0o644  # never changed behind the user's back


def test_reset_leaves_no_value_of_the_snapshot_in_the_state_file(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=5000, marker=MARKER))
    config = write_config(emulator=emulator)
    assert connector.sync(config).exit_code == 0
    state = Path(load_config(config).state.path)
    assert MARKER.encode() in state.read_bytes()  # the snapshot holds it (as sent: plain)

    cli = run_cli("reset", "--yes", config)
    assert cli.returncode == 0, cli.stderr
    assert MARKER.encode() not in state.read_bytes()
    assert connector.status(config)["runs"]  # the history survives the rewrite
    assert connector.sync(config).sent == 5000


def test_keep_values_false_keeps_ids_and_fingerprints_only(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    database = warehouse(CUSTOMERS.format(n=3000, marker=MARKER))
    keeping = write_config(emulator=emulator)
    assert connector.sync(keeping).sent == 3000
    state = Path(load_config(keeping).state.path)
    assert MARKER.encode() in state.read_bytes()

    # Turning it off forgets the values already stored, and rewrites the file.
    config = write_config(emulator=emulator, state={"path": str(state), "keep_values": False})
    assert connector.sync(config).sent == 0
    assert MARKER.encode() not in state.read_bytes()
    with duckdb.connect(str(state), read_only=True) as con:
        assert con.execute('SELECT count(cells) FROM "snapshot__test_sync"').fetchone() == (0,)

    warehouse("UPDATE customers SET city = 'Rome' WHERE customer_id IN ('c1', 'c2')")
    report = connector.plan(config)
    assert (report.changed, report.values_kept) == (2, False)
    assert all(sample["old"] is None for sample in report.samples)
    text = run_cli("plan", config).stdout
    assert "keeps no attribute values (state.keep_values: false)" in text
    result = connector.sync(config)
    assert (result.sent, result.exit_code) == (2, 0)
    assert emulator.profiles()["c1"]["city"] == "Rome"
    assert connector.sync(config).sent == 0
    assert connector.operations.invariant_violations(config) == []

    # As after a DuckDB upgrade that changed hash(): other fingerprints, another scheme. With
    # no values to recompute them from, every profile is resent once, announced.
    with duckdb.connect(str(state)) as con:
        con.execute("UPDATE ts_syncs SET fingerprint_scheme = 'duckdb-hash/0.0.0'")
        con.execute('UPDATE "snapshot__test_sync" SET fp = xor(fp, 12345)')
    report = connector.plan(config)
    assert report.full_resend_reason and "keep_values: false" in report.full_resend_reason
    assert connector.sync(config).sent == 3000
    assert connector.sync(config).sent == 0
    del database


def test_no_attribute_value_reaches_logs_events_status_or_the_webhook(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter, webhook: Webhook
) -> None:
    warehouse(CUSTOMERS.format(n=50, marker=MARKER))
    # Failed rows, rejects and a full notification: every path that reports on rows.
    warehouse("INSERT INTO customers VALUES ('bad+id', 'x', 'y'), ('c7', 'dup', 'dup')")
    emulator.faults.failed_ids = {"c3"}  # the marker's row
    config = write_config(emulator=emulator, notify={"webhook_url": webhook.url, "on": ["always"]})
    events: list[Event] = []
    result = connector.sync(config, listener=events.append)
    assert result.exit_code == 3
    cli = run_cli("--log-format", "json", "--debug", "sync", config)
    outputs = [
        cli.stdout,
        cli.stderr,
        run_cli("status", config).stdout,
        run_cli("status", "--json", config).stdout,
        json.dumps([e.fields for e in events], default=str),
        json.dumps([p["json"] for p in webhook.received]),
    ]
    assert webhook.received and cli.stderr
    for text in outputs:
        assert MARKER not in text
    emulator.faults.failed_ids = set()
    assert connector.sync(config).exit_code == 3  # (the rejects remain)
    assert emulator.profiles()["c3"]["loyaltyTier"] == MARKER  # it did go where it belongs


def test_the_demo_warehouse_and_state_are_private_under_umask_022(tmp_path: Path) -> None:
    from connector.demo import run_demo

    workdir = tmp_path / "demo"
    with umask(0o022):
        assert run_demo(workdir) == 0
    modes = {str(p.relative_to(workdir)): p.stat().st_mode for p in workdir.rglob("*")}
    assert {"warehouse.duckdb", "state.duckdb"} <= set(modes), modes
    assert_private({**modes, ".": workdir.stat().st_mode})
