"""The local stage fed by a diff made elsewhere sends what the local store sends.

A store whose snapshot lives in the warehouse diffs there and hands the local stage only the
rows that need texts (new, changed and owed ones, every copy of a duplicated id, NULL and
empty ids), each carrying its kind, the fingerprint to commit and what the snapshot held
(:meth:`connector.state.stage.LocalStage.load_given`), plus the ids that left. That shortcut
must give the same lines, rejects, counts, samples and field changes as the local store,
which diffs every row itself: compared here on random data (NULLs, empty values, duplicates,
ids that collide, owed rows, removals, no rows at all) and on fixed cases.

The "elsewhere" diff below is the test's own, in Python, with a fingerprint of its own (a
digest of the values): what matters is that the stage builds the same texts from it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.config import SyncConfig, load_config
from connector.mapping import (
    binding_signature,
    destination,
    exit_cells,
    mapping_description,
    mapping_signature,
    staging_input,
    staging_sql,
)
from connector.state import (
    AcceptedBatch,
    FieldChanges,
    Sample,
    StageReport,
    Verdict,
    open_store,
)
from connector.state.stage import CARRIED, LocalStage

Row = tuple[str | None, str | None, int | None]
ATTRIBUTES = ["loyaltyTier", "lifetimeValue"]


def _config(folder: Path, on_removed: Any = "ignore") -> SyncConfig:
    body = {
        "name": "given",
        "source": {
            "type": "duckdb",
            "database": str(folder / "warehouse.duckdb"),
            "query": "select * from customers",
        },
        "identity": {"column": "customer_id"},
        "attributes": {"loyaltyTier": "tier", "lifetimeValue": {"column": "ltv", "null": "0"}},
        "on_removed": on_removed,
        "target": {"client_code": "demo", "base_url": "http://127.0.0.1:9"},
        "state": {"path": str(folder / "state.duckdb")},
    }
    path = folder / "sync.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
    return load_config(path)


def _write(folder: Path, rows: list[Row]) -> pa.Table:
    table = pa.table(
        {
            "customer_id": pa.array([r[0] for r in rows], pa.string()),
            "tier": pa.array([r[1] for r in rows], pa.string()),
            "ltv": pa.array([r[2] for r in rows], pa.int64()),
        }
    )
    with duckdb.connect(str(folder / "warehouse.duckdb")) as con:
        con.register("rows", table)
        con.execute("CREATE OR REPLACE TABLE customers AS SELECT * FROM rows")
    return table


@dataclass
class Outcome:
    """What a run would send and show."""

    counts: dict[str, Any]
    upserts: dict[str, tuple[str, str]]  # id -> (cells, line)
    removals: dict[str, str]  # id -> line
    rejects: list[tuple[str | None, str, str | None]]
    samples: list[Sample]
    field_changes: FieldChanges


def _counts(report: StageReport) -> dict[str, Any]:
    return {
        "new": report.new,
        "changed": report.changed,
        "retried": report.retried,
        "removed": report.removed,
        "rejected": report.rejected,
    }


def _read(stage: Any, config: SyncConfig, report: StageReport) -> Outcome:
    upserts = stage.changes("upsert", 1000).read_all().to_pylist()
    removals: dict[str, str] = {}
    if not isinstance(config.on_removed, str):
        gone = stage.changes("removed", 1000, exit_cells(config)[1]).read_all().to_pylist()
        removals = {r["id"]: r["line"] for r in gone}
    return Outcome(
        counts=_counts(report),
        upserts={r["id"]: (r["cells"], r["line"]) for r in upserts},
        removals=removals,
        rejects=stage.staged_rejects(1000),
        samples=stage.samples(1000),
        field_changes=stage.field_changes(ATTRIBUTES, [True, False], None),
    )


def _digest(row: Row) -> str:
    return hashlib.sha256(repr(row[1:]).encode()).hexdigest()


def _first_sync(config: SyncConfig, owe: set[str]) -> dict[str, tuple[str | None, str, str]]:
    """Sync the source into the local store (its ids in ``owe`` fail in Target); returns the
    elsewhere store's snapshot made from the same delivery: id -> (digest or None for an
    owed profile, cells, binding)."""
    binding = binding_signature(config)
    with open_store(config, "run") as store:
        prepared = store.prepare(
            binding,
            mapping_description(config),
            destination(config),
            mapping_signature(config),
            None,
        )
        staged = store.stage_and_diff(config, prepared)
        sent = store.changes("upsert", 100_000).read_all()
        rows = sent.select(["id", "cells", "fp"])
        store.sending(rows)
        store.commit(
            AcceptedBatch("r1", 1, "upsert", "b1", "http://x/s?batchId=b1", rows, 1, binding, True)
        )
        failed = sorted(owe & set(rows["id"].to_pylist()))
        verdict = Verdict("complete", "", failed_ids=failed, reason="failed")
        store.settle(store.pending_batches()[0], "r1", verdict)
        store.drop_work_tables()
    assert staged.first_run
    return {r["id"]: (None, r["cells"], binding) for r in sent.to_pylist()}


def _local(config: SyncConfig) -> Outcome:
    with open_store(config, "plan") as store:
        prepared = store.prepare(
            binding_signature(config),
            mapping_description(config),
            destination(config),
            mapping_signature(config),
            None,
        )
        report = store.stage_and_diff(config, prepared)
        # The local store's stage, read through the protocol (the local stage reads alike).
        outcome = _read(store, config, report)
        store.drop_work_tables()
    return outcome


def _elsewhere(
    config: SyncConfig,
    source: pa.Table,
    snapshot: dict[str, tuple[str | None, str, str]],
    digests: dict[str, str],
) -> Outcome:
    """Diff ``source`` against ``snapshot`` in Python, hand the local stage only the rows that
    need texts, and read what it makes of them."""
    rows: list[Row] = list(
        zip(
            source["customer_id"].to_pylist(),
            source["tier"].to_pylist(),
            source["ltv"].to_pylist(),
            strict=True,
        )
    )
    copies: dict[str | None, int] = {}
    for row in rows:
        copies[row[0]] = copies.get(row[0], 0) + 1
    picked: list[int] = []
    kinds, fps, old_cells, old_bindings = [], [], [], []
    for index, row in enumerate(rows):
        key = row[0]
        held = snapshot.get(key) if key else None
        if held is None:
            kind = "new"
        elif held[0] is None:
            kind = "retry"
        elif held[0] != _digest(row):
            kind = "changed"
        else:
            kind = None
        if kind is None and copies[key] == 1:
            continue  # unchanged: it never leaves the warehouse
        picked.append(index)
        kinds.append(kind or "changed")
        fps.append(_digest(row))
        old_cells.append(held[1] if held else None)
        old_bindings.append(held[2] if held else None)
    given = source.take(pa.array(picked, pa.int64())).append_column(
        "ts_kind", pa.array(kinds, pa.string())
    )
    for name, values in zip(CARRIED[1:], (fps, old_cells, old_bindings), strict=True):
        given = given.append_column(name, pa.array(values, pa.string()))
    present = {row[0] for row in rows}
    left = sorted(set(snapshot) - present)
    removed = pa.table(
        {
            "id": pa.array(left, pa.string()),
            "cells": pa.array([snapshot[i][1] for i in left], pa.string()),
            "binding": pa.array([snapshot[i][2] for i in left], pa.string()),
        }
    )
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    stage = LocalStage(con, config.name, previous="unused")
    stage.load_given(
        staging_input(config, given.to_reader(), carried=CARRIED),
        staging_sql(config, source.schema),
    )
    stage.add_removed(removed.to_reader())
    outcome = _read(stage, config, stage.finish().report(first_run=False))
    stage.drop()
    con.close()
    digests.update({i: fp for i, fp in zip(given["customer_id"].to_pylist(), fps, strict=True)})
    return outcome


def _compare(
    folder: Path, first: list[Row], second: list[Row], owe: set[str], removed: Any
) -> None:
    config = _config(folder, removed)
    source = _write(folder, first)
    delivered = _first_sync(config, owe)
    digests = {r[0]: _digest(r) for r in first if r[0]}
    snapshot = {
        i: (None if i in owe else digests[i], cells, binding)
        for i, (_, cells, binding) in delivered.items()
    }
    source = _write(folder, second)
    local = _local(config)
    given = _elsewhere(config, source, snapshot, {})
    assert given.counts == local.counts
    assert given.upserts.keys() == local.upserts.keys()
    assert {i: line for i, (_, line) in given.upserts.items()} == {
        i: line for i, (_, line) in local.upserts.items()
    }
    assert given.removals == local.removals
    assert given.rejects == local.rejects
    assert [(s.kind, s.id, s.old_cells, s.new_cells, s.old_binding) for s in given.samples] == [
        (s.kind, s.id, s.old_cells, s.new_cells, s.old_binding) for s in local.samples
    ]
    assert given.field_changes == local.field_changes


ids = st.one_of(st.none(), st.just(""), st.sampled_from(["a", "b", "c", "d", "a+b", "é", "x y"]))
values = st.tuples(
    st.one_of(st.none(), st.just(""), st.sampled_from(["gold", "silver", "%,&= \n"])),
    st.one_of(st.none(), st.integers(-3, 3)),
)
rows = st.lists(st.builds(lambda i, v: (i, *v), ids, values), max_size=12)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    first=rows,
    second=rows,
    owe=st.sets(st.sampled_from(["a", "b", "c"])),
    removed=st.sampled_from(["ignore", {"set": {"loyaltyTier": "gone"}}]),
)
def test_a_diff_made_elsewhere_stages_into_the_same_batches(
    tmp_path_factory: pytest.TempPathFactory,
    first: list[Row],
    second: list[Row],
    owe: set[str],
    removed: Any,
) -> None:
    _compare(tmp_path_factory.mktemp("given"), first, second, owe, removed)


CASES: dict[str, tuple[list[Row], list[Row], set[str]]] = {
    "nothing at all": ([], [], set()),
    "a first run's worth": ([], [("a", "gold", 1), ("b", None, None)], set()),
    "everything left": ([("a", "gold", 1), ("b", "x", 2)], [], set()),
    "a duplicate of a synced id": (
        [("a", "gold", 1)],
        [("a", "gold", 1), ("a", "silver", 2), ("b", "x", 3)],
        set(),
    ),
    "NULL and empty ids": ([("a", "gold", 1)], [(None, "x", 1), ("", "y", 2)], set()),
    "owed and unchanged": (
        [("a", "gold", 1), ("b", "x", 2)],
        [("a", "gold", 1), ("b", "x", 2)],
        {"a"},
    ),
    "a value turned NULL": ([("a", "gold", 1)], [("a", None, None)], set()),
    # Found by the random test: typed-1 fingerprints hashed 0 and -1 alike (a HUGEINT).
    "an integer from 0 to -1": ([("a", "silver", 0)], [("a", "silver", -1)], set()),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize(
    "removed", ["ignore", {"set": {"loyaltyTier": "gone"}}], ids=["ignore", "set"]
)
def test_fixed_cases_stage_into_the_same_batches(tmp_path: Path, name: str, removed: Any) -> None:
    first, second, owe = CASES[name]
    _compare(tmp_path, first, second, owe, removed)
