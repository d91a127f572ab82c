"""The state store contract: what every store must do, driven through the protocol alone
(:func:`connector.state.open_store`), on tiny inputs whose outcome is known row by row.

Parametrized by store: a second store joins by adding a :class:`StoreCase` to ``STORES``
(its source, its ``state`` section, how rows are written to it). Every case here holds for
every store: the same counts, the same lines, the same snapshot afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
import yaml

from connector.config import SyncConfig, load_config
from connector.errors import LockedError, RunInProgress
from connector.mapping import binding_signature, destination, mapping_description, mapping_signature
from connector.state import (
    AcceptedBatch,
    PrepareReport,
    StageReport,
    StateStore,
    Verdict,
    location_of,
    open_store,
)

Row = tuple[str | None, str | None, int | None]  # customer_id, tier, ltv


@dataclass
class StoreCase:
    """One kind of store, with a source its syncs read: ``write`` replaces the source's rows,
    ``config`` writes a sync config for it (``overrides``: top-level keys)."""

    name: str
    write: Callable[[list[Row]], None]
    config: Callable[..., SyncConfig]


def _duckdb_case(tmp_path: Path) -> StoreCase:
    warehouse = tmp_path / "warehouse.duckdb"

    def write(rows: list[Row]) -> None:
        with duckdb.connect(str(warehouse)) as con:
            con.execute(
                "CREATE OR REPLACE TABLE customers (customer_id VARCHAR, tier VARCHAR, ltv BIGINT)"
            )
            if rows:
                con.executemany("INSERT INTO customers VALUES (?, ?, ?)", rows)

    def config(**overrides: Any) -> SyncConfig:
        body: dict[str, Any] = {
            "name": "contract",
            "source": {
                "type": "duckdb",
                "database": str(warehouse),
                "query": "select * from customers",
            },
            "identity": {"column": "customer_id"},
            "attributes": {"loyaltyTier": "tier", "lifetimeValue": "ltv"},
            "target": {"client_code": "demo", "base_url": "http://127.0.0.1:9"},
            "state": {"path": str(tmp_path / "state" / "state.duckdb")},
            **overrides,
        }
        path = tmp_path / "sync.yaml"
        path.write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
        return load_config(path)

    return StoreCase("duckdb", write, config)


STORES: dict[str, Callable[[Path], StoreCase]] = {"duckdb": _duckdb_case}


@pytest.fixture(params=sorted(STORES))
def case(request: pytest.FixtureRequest, tmp_path: Path) -> StoreCase:
    return STORES[request.param](tmp_path)


# -- driving one run through the protocol ------------------------------------------------------


def prepare(store: StateStore, config: SyncConfig) -> PrepareReport:
    return store.prepare(
        binding_signature(config),
        mapping_description(config),
        destination(config),
        mapping_signature(config),
        str(config.config_path),
    )


@dataclass
class Staged:
    prepared: PrepareReport
    report: StageReport
    lines: dict[str, str]  # id -> the line delivery would send
    rows: pa.Table  # id, cells, fp of the upserts


def stage(store: StateStore, config: SyncConfig) -> Staged:
    prepared = prepare(store, config)
    report = store.stage_and_diff(config, prepared)
    table = store.changes("upsert", 1000).read_all()
    lines = dict(zip(table["id"].to_pylist(), table["line"].to_pylist(), strict=True))
    return Staged(prepared, report, lines, table.select(["id", "cells", "fp"]))


def accept(
    store: StateStore, config: SyncConfig, staged: Staged, batch_id: str, seq: int = 1
) -> AcceptedBatch:
    """What delivery does for a batch Target accepted: record its ids, then commit it."""
    store.sending(staged.rows)
    batch = AcceptedBatch(
        run_id=f"run-{batch_id}",
        seq=seq,
        kind="upsert",
        batch_id=batch_id,
        status_url=f"http://127.0.0.1:9/status?batchId={batch_id}",
        rows=staged.rows,
        size=sum(len(line) for line in staged.lines.values()),
        binding=binding_signature(config),
        fresh=staged.report.first_run,
    )
    store.commit(batch)
    return batch


def diff(report: StageReport) -> tuple[int, int, int, int, int]:
    return (report.new, report.changed, report.retried, report.removed, report.unchanged)


FIRST: list[Row] = [
    ("a", "gold", 1),
    ("b", "silver", None),
    ("c", None, 3),
    (None, "orphan", 4),  # a NULL id: rejected, never sent
    ("d", "x", 5),  # a duplicate: both copies rejected
    ("d", "y", 6),
    ("e+1", "z", 7),  # '+' in a thirdPartyId: rejected
]


# -- the contract --------------------------------------------------------------------------------


def test_a_first_run_stages_checks_and_commits_every_valid_row(case: StoreCase) -> None:
    case.write(FIRST)
    config = case.config()
    with open_store(config, "run") as store:
        assert store.writable
        assert store.location() == location_of(config)
        staged = stage(store, config)
        assert staged.prepared.snapshot_size == 0
        assert staged.report.first_run
        assert staged.report.rows == 7
        assert diff(staged.report) == (3, 0, 0, 0, 0)
        assert staged.report.rejected == {
            "duplicate_id": 2,
            "empty_id": 1,
            "id_has_plus_or_slash": 1,
        }
        assert staged.lines == {"a": "a,gold,1\n", "b": "b,silver,\n", "c": "c,,3\n"}
        assert [r[1] for r in store.staged_rejects(10)] == [
            "duplicate_id",
            "duplicate_id",
            "empty_id",
            "id_has_plus_or_slash",
        ]
        accept(store, config, staged, "b1")
        assert store.snapshot_size() == 3
        assert [b.batch_id for b in store.pending_batches()] == ["b1"]
        assert store.invariant_violations() == []
        store.drop_work_tables()
        store.drop_work_tables()  # a second call does nothing


def test_a_second_run_sends_exactly_what_changed_and_nothing_else(case: StoreCase) -> None:
    case.write(FIRST)
    config = case.config()
    with open_store(config, "run") as store:
        batch = accept(store, config, stage(store, config), "b1")
        store.settle(store.pending_batches()[0], "run-b1", Verdict("complete", "complete", []))
        assert store.pending_batches() == []
        store.drop_work_tables()
    assert batch.rows.num_rows == 3
    # a changes, c leaves, d is repaired (one copy), f is new; b stays the same.
    case.write([("a", "platinum", 1), ("b", "silver", None), ("d", "x", 5), ("f", "new", 8)])
    with open_store(config, "run") as store:
        staged = stage(store, config)
        assert not staged.report.first_run
        assert diff(staged.report) == (2, 1, 0, 1, 1)
        assert staged.lines == {"a": "a,platinum,1\n", "d": "d,x,5\n", "f": "f,new,8\n"}
        samples = {s.id: s for s in store.samples(10)}
        assert samples["a"].old_cells == "gold,1" and samples["a"].new_cells == "platinum,1"
        assert samples["d"].old_cells is None  # new
        changes = store.field_changes(["loyaltyTier", "lifetimeValue"], [True, True], None)
        assert changes.changed == {"loyaltyTier": 1}
        assert store.forget_removed() == 1
        accept(store, config, staged, "b2")
        assert store.snapshot_size() == 4
        assert store.invariant_violations() == []
        store.drop_work_tables()
    with open_store(config, "run") as store:
        staged = stage(store, config)
        assert diff(staged.report) == (0, 0, 0, 0, 4)
        assert staged.lines == {}
        store.drop_work_tables()


def test_failed_rows_and_reverted_batches_are_owed_and_resent(case: StoreCase) -> None:
    case.write(FIRST[:3])
    config = case.config()
    with open_store(config, "run") as store:
        accept(store, config, stage(store, config), "b1")
        [pending] = store.pending_batches()
        owed = store.settle(
            pending, "run-b1", Verdict("complete", "1 failed", failed_ids=["b"], reason="failed")
        )
        assert owed == 1
        assert [p.id for p in store.draw(binding_signature(config), 10, seed=1)] == ["a", "c"]
        failed = store.history.failed_rows("run-b1", 10)
        assert [row["id"] for row in failed] == ["b"]
        store.drop_work_tables()
    with open_store(config, "run") as store:
        staged = stage(store, config)
        assert diff(staged.report) == (0, 0, 1, 0, 2)
        assert list(staged.lines) == ["b"]
        accept(store, config, staged, "b2")
        [pending] = store.pending_batches()
        assert store.settle(pending, "run-b2", Verdict("reverted", "stuck", reason="stuck")) == 1
        store.drop_work_tables()
    with open_store(config, "run") as store:
        staged = stage(store, config)
        assert diff(staged.report) == (0, 0, 1, 0, 2)
        assert store.mark_owed(["a", "nobody"]) == 1
        assert store.invariant_violations() == []
        store.drop_work_tables()
    with open_store(config, "run") as store:
        assert diff(stage(store, config).report) == (0, 0, 2, 0, 1)
        store.drop_work_tables()


KILLED_AFTER_SENDING = """
import os, signal, sys
from connector.config import load_config
from connector.state import open_store
sys.path.insert(0, {tests!r})
from test_store_contract import stage

config = load_config({config!r})
with open_store(config, "run") as store:
    staged = stage(store, config)
    store.sending(staged.rows)
    os.kill(os.getpid(), signal.SIGKILL)  # after the POST, before its answer is committed
"""


def test_a_run_killed_between_sending_and_commit_leaves_those_profiles_owed(
    case: StoreCase,
) -> None:
    case.write(FIRST[:3])
    config = case.config()
    with open_store(config, "run") as store:
        accept(store, config, stage(store, config), "b1")
        store.settle(store.pending_batches()[0], "run-b1", Verdict("complete", "complete", []))
        store.drop_work_tables()
    case.write([("a", "gold", 10), ("b", "silver", None), ("c", None, 3), ("g", "new", 1)])
    assert config.config_path is not None
    script = KILLED_AFTER_SENDING.format(
        tests=str(Path(__file__).parent), config=str(config.config_path)
    )
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    # Target may hold a's new value and g, or not: both are owed, whatever the source says now.
    case.write(FIRST[:3])
    with open_store(config, "run") as store:
        staged = stage(store, config)
        assert staged.prepared.unconfirmed == 2
        assert diff(staged.report) == (0, 0, 1, 1, 2)
        assert list(staged.lines) == ["a"]
        assert store.invariant_violations() == []
        store.drop_work_tables()


def test_readers_see_the_snapshot_and_write_nothing(case: StoreCase) -> None:
    case.write(FIRST[:3])
    config = case.config()
    with open_store(config, "read") as store:  # nothing synced yet: an empty snapshot
        assert store.snapshot_size() == 0 and store.history.runs(5) == []
    with open_store(config, "run") as store:
        store.history.start("r1", dry_run=False)
        accept(store, config, stage(store, config), "b1")
        store.history.finish("r1", "delivered", 0, {"sent": 3}, "ok")
        store.drop_work_tables()
    case.write([("a", "changed", 1)])
    for access in ("dry-run", "plan"):
        with open_store(config, access) as store:  # type: ignore[arg-type]
            staged = stage(store, config)
            assert diff(staged.report) == (0, 1, 0, 2, 0)
            store.drop_work_tables()
    with open_store(config, "read") as store:
        assert not store.writable
        assert store.snapshot_size() == 3
        assert [run["run_id"] for run in store.history.runs(5)] == ["r1"]
        assert json.loads(store.history.runs(5)[0]["summary"]) == {"sent": 3}
        assert [b["batch_id"] for b in store.history.batches(state="pending")] == ["b1"]


def test_one_run_at_a_time_and_readers_name_the_holder(case: StoreCase) -> None:
    case.write(FIRST[:3])
    config = case.config()
    with open_store(config, "run") as store:
        accept(store, config, stage(store, config), "b1")
        store.drop_work_tables()
    with open_store(config, "run"):
        with (
            pytest.raises(LockedError, match="another run holds the lock"),
            open_store(config, "run"),
        ):
            pass
        with pytest.raises(RunInProgress) as busy, open_store(config, "plan"):
            pass
        assert busy.value.holder["pid"]


def test_reset_forgets_the_snapshot_and_the_next_run_sends_everything(case: StoreCase) -> None:
    case.write(FIRST[:3])
    config = case.config()
    with open_store(config, "run") as store:
        accept(store, config, stage(store, config), "b1")
        store.drop_work_tables()
    with open_store(config, "reset") as store:
        report = store.reset()
    assert (report.forgotten, report.damaged_kept_as) == (3, None)
    with open_store(config, "run") as store:
        assert store.snapshot_size() == 0 and store.pending_batches() == []
        assert store.bindings() == {}
        staged = stage(store, config)
        assert staged.report.first_run and diff(staged.report) == (3, 0, 0, 0, 0)
        assert store.invariant_violations() == []
        store.drop_work_tables()
