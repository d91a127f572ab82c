"""The whole sync path against the Target emulator over real HTTP (issue: the pipeline)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

import connector
from connector.delivery.batches import cut_batches
from connector.emulator import Emulator
from connector.state import open_store
from connector.state.duckdb.files import memory_budget

from .conftest import CUSTOMERS, ConfigWriter, run_cli


def test_first_run_sends_all_second_nothing_then_exactly_the_changes(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=500))
    config = write_config(emulator=emulator)

    first = connector.sync(config)
    assert (first.new, first.sent, first.exit_code) == (500, 500, 0)
    assert len(emulator.profiles()) == 500
    assert emulator.profiles()["c3"] == {"loyaltyTier": "gold", "city": "city 3"}
    assert "loyaltyTier" not in emulator.profiles()["c2"]  # NULL is an empty cell
    uploads_after_first = len(emulator.uploads)

    second = connector.sync(config)
    assert (second.sent, second.batches, second.unchanged) == (0, 0, 500)
    assert len(emulator.uploads) == uploads_after_first  # zero POSTs

    warehouse(
        "UPDATE customers SET tier = 'platinum' WHERE customer_id IN ('c1', 'c4', 'c7');"
        "INSERT INTO customers VALUES ('n1', 'gold', 'Oslo'), ('n2', NULL, 'Rome')"
    )
    third = connector.sync(config)
    assert (third.changed, third.new, third.sent) == (3, 2, 5)
    sent_ids = sorted(row[0] for row in emulator.uploads[-1].rows)
    assert sent_ids == ["c1", "c4", "c7", "n1", "n2"]
    # Every profile goes with its full attribute set, never a partial delta.
    assert emulator.uploads[-1].header_names == ["thirdPartyId", "loyaltyTier", "city"]
    assert emulator.profiles()["c4"] == {"loyaltyTier": "platinum", "city": "city 4"}


HOSTILE = "a,b\nc\r\"d\" 100% & x+y=z São 東京 😀 'q' ~-_.!*()/?#[]@$;:"


def test_hostile_values_arrive_byte_for_byte(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    warehouse(
        "CREATE TABLE customers AS SELECT * FROM (VALUES "
        f"('id-1', {_sql(HOSTILE)}, {_sql(HOSTILE[::-1])}), ('id 2', '%', '&'), "
        "('id,3', '+', '=')) t(customer_id, tier, city)"
    )
    result = connector.sync(write_config(emulator=emulator))
    assert result.sent == 3
    profiles = emulator.profiles()
    assert profiles["id-1"] == {"loyaltyTier": HOSTILE, "city": HOSTILE[::-1]}
    assert profiles["id 2"] == {"loyaltyTier": "%", "city": "&"}
    assert profiles["id,3"] == {"loyaltyTier": "+", "city": "="}
    body = emulator.uploads[0].body
    for raw in (b" ", b"&", b"+", b"=", b"%2", b"\r"):
        # Only the separators and percent-escapes appear raw in the body.
        assert raw not in body.split(b"\n", 1)[1].replace(b"%2", b"") or raw == b"%2"


def _sql(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def test_dry_run_writes_exactly_what_a_real_run_posts_and_keeps_the_snapshot(
    emulator: Emulator, warehouse, write_config: ConfigWriter, tmp_path: Path
) -> None:
    warehouse(CUSTOMERS.format(n=2000))
    config = write_config(emulator=emulator, target={"max_rows_per_batch": 700})
    out = tmp_path / "out"

    code = run_cli("sync", config, "--dry-run", "--out", out)
    assert code.returncode == 0, code.stderr
    files = sorted(out.iterdir())
    assert [f.name for f in files] == [f"test_sync-000{i}.txt" for i in (1, 2, 3)]
    assert emulator.uploads == []
    assert connector.status(config)["snapshot_profiles"] == 0

    real = connector.sync(config)
    assert real.sent == 2000
    posted = sorted(u.body for u in emulator.uploads)
    assert posted == sorted(f.read_bytes() for f in files)


def test_byte_limit_splits_batches_below_the_limit(
    warehouse, write_config: ConfigWriter, tmp_path: Path
) -> None:
    warehouse(CUSTOMERS.format(n=3000))
    config = write_config(target={"max_bytes_per_batch": 4096})
    result = connector.sync(config, dry_run=True, out_dir=tmp_path / "out")
    sizes = [Path(f).stat().st_size for f in result.batch_files]
    assert len(sizes) > 10
    assert max(sizes) < 4096
    ids: list[str] = []
    for file in result.batch_files:
        lines = Path(file).read_bytes().decode().split("\n")
        assert lines[0] == "batch=thirdPartyId,loyaltyTier,city"
        assert lines[-1] == ""  # every line ends in \n
        ids += [line.split(",")[0] for line in lines[1:-1]]
    assert sorted(ids) == sorted(f"c{i}" for i in range(3000))  # each in exactly one batch


@pytest.mark.slow
def test_1_200_000_profiles_give_three_batches_within_500_000_rows(
    warehouse, write_config: ConfigWriter, tmp_path: Path
) -> None:
    warehouse(
        "CREATE TABLE customers AS SELECT i AS customer_id, i % 10 AS tier FROM range(1200000) t(i)"
    )
    config = write_config(attributes={"t": "tier"})
    result = connector.sync(config, dry_run=True, out_dir=tmp_path / "out")
    rows = [Path(f).read_bytes().count(b"\n") - 1 for f in result.batch_files]
    assert len(rows) == 3
    assert max(rows) <= 500_000
    assert sum(rows) == 1_200_000


def test_pcid_and_api_v1(emulator: Emulator, warehouse, write_config: ConfigWriter) -> None:
    warehouse(CUSTOMERS.format(n=10))
    emulator.add_profile("c1", {"loyaltyTier": "old"}, id_type="pcId")
    config = write_config(
        emulator=emulator,
        identity={"column": "customer_id", "type": "pcId"},
        target={"api_version": 1},
    )
    result = connector.sync(config)
    assert result.sent == 10
    assert emulator.uploads[0].path.endswith("/m2/demo/profile/batchUpdate")
    assert emulator.uploads[0].header_names[0] == "pcId"
    # v1 updates existing profiles only.
    assert emulator.profiles("pcId") == {"c1": {"loyaltyTier": "silver", "city": "city 1"}}


def test_plan_counts_without_sending_or_touching_state(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=100))
    config = write_config(emulator=emulator)
    connector.sync(config)
    warehouse(
        "UPDATE customers SET tier = 'x' WHERE customer_id = 'c3';"
        "DELETE FROM customers WHERE customer_id = 'c6'"
    )
    uploads = len(emulator.uploads)

    report = connector.plan(config)
    assert (report.changed, report.removed, report.unchanged, report.new) == (1, 1, 98, 0)
    assert report.attribute_changes == {"loyaltyTier": 1}
    changed = next(s for s in report.samples if s["kind"] == "changed")
    assert changed["old"]["loyaltyTier"] == "gold" and changed["new"]["loyaltyTier"] == "x"
    assert len(emulator.uploads) == uploads
    assert connector.plan(config).changed == 1  # nothing advanced

    cli = run_cli("plan", config)
    assert cli.returncode == 0 and "loyaltyTier changed for 1 profile" in cli.stdout


def test_status_and_reset(emulator: Emulator, warehouse, write_config: ConfigWriter) -> None:
    warehouse(CUSTOMERS.format(n=20))
    config = write_config(emulator=emulator)
    connector.sync(config)
    report = connector.status(config)
    assert report["snapshot_profiles"] == 20
    assert report["runs"][0]["outcome"] == "delivered"
    assert report["runs"][0]["summary"]["sent"] == 20

    cli = run_cli("reset", config, "--yes")
    assert cli.returncode == 0, cli.stderr
    assert "20 profile(s) forgotten" in cli.stdout
    assert connector.sync(config).sent == 20


def test_removed_profiles_are_forgotten_with_on_removed_ignore(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=10))
    config = write_config(emulator=emulator)
    connector.sync(config)
    warehouse("DELETE FROM customers WHERE customer_id = 'c1'")
    assert connector.sync(config).removed == 1
    warehouse("INSERT INTO customers VALUES ('c1', 'silver', 'city 1')")
    back = connector.sync(config)
    assert (back.new, back.sent) == (1, 1)  # a profile that comes back is sent again


def test_state_file_holds_no_secret(
    emulator: Emulator, warehouse, write_config: ConfigWriter, tmp_path: Path
) -> None:
    warehouse(CUSTOMERS.format(n=5))
    config = write_config(emulator=emulator, target={"auth_token": "s3cr3t-token-value"})
    connector.sync(config)
    state = tmp_path / "state" / "state.duckdb"
    with duckdb.connect(str(state), read_only=True) as con:
        dump = str(con.execute("SELECT * FROM ts_runs").fetchall()) + str(
            con.execute("SELECT * FROM ts_syncs").fetchall()
        )
    assert "s3cr3t" not in dump
    assert b"s3cr3t" not in state.read_bytes()


def test_fingerprints_from_another_duckdb_version_are_recomputed_not_resent(
    emulator: Emulator, warehouse, write_config: ConfigWriter, tmp_path: Path
) -> None:
    warehouse(CUSTOMERS.format(n=50))
    config = write_config(emulator=emulator)
    connector.sync(config)
    # As if an older DuckDB, whose hash() differs, had written the snapshot.
    with duckdb.connect(str(tmp_path / "state" / "state.duckdb")) as con:
        con.execute("UPDATE ts_syncs SET fingerprint_scheme = 'duckdb-hash/0.9.0'")
        con.execute('UPDATE "snapshot__test_sync" SET fp = fp + 1')
    uploads = len(emulator.uploads)
    again = connector.sync(config)
    assert (again.sent, again.unchanged) == (0, 50)
    assert len(emulator.uploads) == uploads


def test_a_run_holds_one_batch_body_at_a_time(
    warehouse, write_config: ConfigWriter, tmp_path: Path
) -> None:
    """Peak memory: the batch just written is let go before the next one is cut (the loop
    variable kept it alive, two 50 MB bodies at the default limits)."""
    warehouse(
        "CREATE TABLE customers AS SELECT 'c' || i AS customer_id, "
        "repeat('x', 240) AS a, repeat('y', 240) AS b, repeat('z', 240) AS c FROM range(80000) t(i)"
    )
    limit = 10_000_000
    config = write_config(
        attributes={"a": "a", "b": "b", "c": "c"}, target={"max_bytes_per_batch": limit}
    )
    connector.sync(config, dry_run=True)  # imports and caches out of the measured run
    tracemalloc.start()
    try:
        result = connector.sync(config, dry_run=True, out_dir=tmp_path / "out")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    sizes = [Path(f).stat().st_size for f in result.batch_files]
    assert len(sizes) >= 5, sizes
    # Python holds the bodies (Arrow and DuckDB hold the rest): one at a time, and the rest
    # of a run's Python objects are far smaller than a body.
    assert max(sizes) < peak < 1.5 * max(sizes), (peak, sizes)


def test_cutting_batches_keeps_each_batchs_lines_only_in_its_body() -> None:
    """While a batch is sent, the generator holds no copy of its lines (they are in the
    body): Arrow memory stays about one batch's rows, not rows plus lines."""
    line = "x" * 999 + "\n"

    def chunks() -> Iterator[pa.RecordBatch]:
        for start in range(0, 20_000, 1_000):
            ids = [f"c{i}" for i in range(start, start + 1_000)]
            yield pa.record_batch(
                {
                    "id": ids,
                    "cells": [line[:-1]] * 1_000,
                    "fp": list(range(1_000)),
                    "line": [line] * 1_000,
                }
            )

    held = []
    for batch in cut_batches(chunks(), b"batch=h\n", "upsert", 10**9, 5_000_000):
        held.append(pa.total_allocated_bytes() - batch.rows.nbytes)
        assert batch.rows.column_names == ["id", "cells", "fp"]
        del batch
    assert len(held) == 5
    # Beyond the batch's own rows: the chunk being read (~2 MB), never the batch's 5 MB of lines.
    assert max(held) < 4_000_000, held


@pytest.mark.parametrize("limit", ["1200MB", "512MB", "1GiB", "2GB", "300MiB", "64KB"])
def test_the_memory_budget_is_read_as_duckdb_reads_it(limit: str) -> None:
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{limit}'")
    as_duckdb_reads_it = con.execute("SELECT current_setting('memory_limit')").fetchone()
    con.execute(f"SET memory_limit = '{memory_budget(limit)}B'")
    assert con.execute("SELECT current_setting('memory_limit')").fetchone() == as_duckdb_reads_it


@pytest.mark.parametrize("limit", [None, "", "50%", "lots"])
def test_a_share_of_the_host_or_an_unknown_limit_lends_nothing(limit: str | None) -> None:
    assert memory_budget(limit) is None


def test_the_store_lends_memory_for_the_batch_in_hand_and_takes_it_back(
    warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=10))
    config = connector.load_config(write_config(state={"memory_limit": "1200MB"}))
    shown = duckdb.connect()

    def limit(con: duckdb.DuckDBPyConnection) -> str:
        return str(con.execute("SELECT current_setting('memory_limit')").fetchone()[0])

    def as_shown(nbytes: int) -> str:
        shown.execute(f"SET memory_limit = '{nbytes}B'")
        return limit(shown)

    with open_store(config, "run") as store:
        con = store.con  # type: ignore[attr-defined]
        before = limit(con)
        with store.lend_memory(200_000_000):
            lent = limit(con)
        with store.lend_memory(10**12):  # never below half the budget
            least = limit(con)
        after = limit(con)
    assert before == after == as_shown(1_200_000_000)
    assert (lent, least) == (as_shown(1_000_000_000), as_shown(600_000_000))
