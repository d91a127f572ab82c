"""Wide mappings (issue #12): 2,000 attributes sync and round-trip exactly, the row checks
still hold at that width, and the flat staging SQL keeps every fingerprint and reject of
the chained SQL it replaced.

DuckDB's parser stops at an expression depth of 1000; the staging SQL used to chain ``+``
and ``||`` once per attribute and failed from about 498 attributes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import duckdb
import pyarrow as pa
import pytest
import yaml

import connector
from connector.config import parse_config
from connector.emulator import Emulator
from connector.mapping import SOURCE, binding_signature, staging_input, staging_sql
from connector.state.duckdb import DuckDBStore as StateStore

from .conftest import ConfigWriter, run_cli
from .test_fidelity import date_text, float_text, timestamp_text

WIDTH = 2_000
HOSTILE = ",%&+= \n/é😀東'\""


def _wide_table(
    rows: int, seed: int = 12, width: int = WIDTH
) -> tuple[pa.Table, dict[str, dict[str, str | None]]]:
    """``rows`` customers × ``width`` columns: text holding every character that must be
    encoded, integers, and one column in forty each of floats, dates and timestamps (DuckDB
    takes 10-40 ms to plan each of those, against ~1 ms for text), a fifth of the values
    NULL; and what each attribute must arrive as, stated in Python (None: an empty cell)."""
    rng = random.Random(seed)

    def text() -> str:
        return "".join(rng.choice(HOSTILE + "abc") for _ in range(rng.randint(0, 12)))

    kinds: list[tuple[pa.DataType, Callable[[], Any], Callable[[Any], str]]] = [
        (pa.float64(), lambda: rng.choice([rng.uniform(-1e6, 1e6), 1e-7, 0.1]), float_text),
        (pa.date32(), lambda: rng.randint(-800_000, 2_900_000), date_text),
        (
            pa.timestamp("us"),
            lambda: rng.randint(-(10**17), 10**17),
            lambda v: timestamp_text(v, "us", False),
        ),
        *[(pa.string(), text, str)] * 19,
        *[(pa.int64(), lambda: rng.randint(-(2**63), 2**63 - 1), str)] * 18,
    ]
    ids = [f"c{i}" for i in range(rows)]
    arrays: dict[str, pa.Array] = {"customer_id": pa.array(ids)}
    expected: dict[str, dict[str, str | None]] = {pid: {} for pid in ids}
    for j in range(width):
        arrow_type, draw, write = kinds[j % len(kinds)]
        values = [None if rng.random() < 0.2 else draw() for _ in ids]
        if pa.types.is_date32(arrow_type):
            array = pa.array(values, pa.int32()).view(arrow_type)
        elif pa.types.is_timestamp(arrow_type):
            array = pa.array(values, pa.int64()).view(arrow_type)
        else:
            array = pa.array(values, arrow_type)
        arrays[f"col{j}"] = array
        for pid, value in zip(ids, values, strict=True):
            expected[pid][f"attribute{j:04d}"] = None if value in (None, "") else write(value)
    return pa.table(arrays), expected


def _warehouse(path: Path, table: pa.Table) -> None:
    with duckdb.connect(str(path)) as con:
        con.register("wide", table)
        con.execute("CREATE OR REPLACE TABLE customers AS SELECT * FROM wide")


WIDE_ATTRIBUTES = {f"attribute{j:04d}": f"col{j}" for j in range(WIDTH)}


@pytest.mark.slow
def test_two_thousand_attributes_sync_and_round_trip_exactly(
    emulator: Emulator, tmp_path: Path, write_config: ConfigWriter
) -> None:
    table, expected = _wide_table(12)
    _warehouse(tmp_path / "warehouse.duckdb", table)
    config = write_config(emulator=emulator, attributes=WIDE_ATTRIBUTES)

    report = connector.validate(config)
    assert len(report["attributes"]) == WIDTH

    proc = run_cli("sync", config)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    profiles = emulator.profiles()
    assert set(profiles) == set(expected)
    for pid, texts in expected.items():
        assert profiles[pid] == {k: v for k, v in texts.items() if v is not None}, pid
    assert emulator.uploads[-1].header_names == ["thirdPartyId", *WIDE_ATTRIBUTES]

    again = connector.sync(config)
    assert (again.sent, again.unchanged, again.exit_code) == (0, 12, 0)


@pytest.mark.slow
def test_rejects_are_still_found_at_two_thousand_attributes(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    # c1: one value of 257 characters (value_too_long, named); c2: 2,000 values of 30
    # characters, 86 KB with the names (profile_too_large); c0 and c3 fine.
    columns = ", ".join(
        f"CASE WHEN i = 1 AND {j} = 1234 THEN repeat('x', 257) "
        f"WHEN i = 2 THEN repeat('y', 30) ELSE 'v' || i END AS col{j}"
        for j in range(WIDTH)
    )
    warehouse(
        f"CREATE TABLE customers AS SELECT 'c' || i AS customer_id, {columns} FROM range(4) t(i)"
    )
    config = write_config(emulator=emulator, attributes=WIDE_ATTRIBUTES)
    result = connector.sync(config)
    assert result.rejected == {"value_too_long": 1, "profile_too_large": 1}
    assert (result.sent, result.exit_code) == (2, 3)
    assert set(emulator.profiles()) == {"c0", "c3"}
    details = {r["id"]: (r["reason"], r["detail"]) for r in connector.status(config)["rejects"]}
    size = sum(len(name) for name in WIDE_ATTRIBUTES) + 30 * WIDTH
    assert details == {
        "c1": ("value_too_long", "attribute1234: 257 characters"),
        "c2": ("profile_too_large", f"{size} bytes"),
    }


# -- the flat SQL keeps what the chained SQL computed -------------------------------------


def _config(folder: Path, attributes: dict[str, Any], max_bytes: int = 50_000_000) -> Any:
    return parse_config(
        yaml.safe_dump(
            {
                "name": "wide",
                "source": {"type": "duckdb", "database": "unused.duckdb", "query": "select 1"},
                "identity": {"column": "id"},
                "attributes": attributes,
                "target": {"client_code": "demo", "max_bytes_per_batch": max_bytes},
                "state": {"path": str(folder / "state.duckdb")},
            },
            sort_keys=False,
            allow_unicode=True,
        ),
        folder / "wide.yaml",
        {},
    )


def _stage_rows(
    folder: Path, table: pa.Table, attributes: dict[str, Any], max_bytes: int = 50_000_000
) -> tuple[dict[str, tuple[int | None, str | None, str | None, str | None]], str]:
    """Stage ``table``: each id's (fingerprint, cells, reject, detail); and the mapping
    signature."""
    config = _config(folder, attributes, max_bytes)
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=50))
    with StateStore.open(config.state, config.name) as store:
        store.stage(staging_input(config, reader), staging_sql(config, table.schema))
        rows = store.con.execute(
            f"SELECT id, fp, cells, reject, reject_detail FROM {store.tables.stage}"
        ).fetchall()
        store.drop_work_tables()
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}, binding_signature(config)


@pytest.mark.parametrize("width", [3, 300])
def test_the_text_fingerprints_of_the_scheme_before_stay_reachable(
    tmp_path: Path, width: int
) -> None:
    # Fingerprints used to be DuckDB's hash(v0, v1, ..., signature) over the texts Target
    # holds. A snapshot of that scheme is migrated by comparing exactly that hash once
    # (render(..., migrate=True)): every unchanged row must match it, a changed one not.
    table, expected = _wide_table(6, seed=width, width=width)
    table = table.rename_columns(["id", *table.column_names[1:]])
    attributes = {f"attribute{j:04d}": f"col{j}" for j in range(width)}
    staged, signature = _stage_rows(tmp_path, table, attributes)
    con = duckdb.connect()
    old = []
    for pid, texts in expected.items():
        values = [texts[name] or "" for name in attributes]
        placeholders = ", ".join("?" for _ in values)
        [(want,)] = con.execute(f"SELECT hash({placeholders}, ?)", [*values, signature]).fetchall()
        _, cells, reject, _ = staged[pid]
        assert reject is None
        assert cells == ",".join(quote(v, safe="-_.~") for v in values)
        old.append((pid, want if pid != "c1" else want ^ 1))
    config = _config(tmp_path, attributes)
    fps = pa.array([f for _, f in old], pa.uint64())
    con.register("old_snapshot", pa.table({"id": [i for i, _ in old], "fp": fps}))
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=50))
    con.register(SOURCE, staging_input(config, reader))
    sql = staging_sql(config, table.schema).render("(SELECT id, fp FROM old_snapshot)", True)
    unchanged = dict(con.execute(f"SELECT id, unchanged FROM ({sql})").fetchall())
    assert unchanged == {pid: pid != "c1" for pid in expected}


def _expected_reject(
    pid: str, values: list[str], names: list[str], room: int
) -> tuple[str | None, str | None]:
    """The rules of connector/staging.py, stated again: (reason, detail)."""
    if len(pid) > 256:
        return "id_too_long", f"{len(pid)} characters"
    for name, value in zip(names, values, strict=True):
        if len(value) > 256:
            return "value_too_long", f"{name}: {len(value)} characters"
    size = sum(len(n.encode()) + len(v.encode()) for n, v in zip(names, values, strict=True))
    if size >= 65_536:
        return "profile_too_large", f"{size} bytes"
    line = (
        len(quote(pid, safe="-_.~")) + 1 + len(",".join(quote(v, safe="-_.~") for v in values)) + 1
    )
    if line > room:
        return "line_too_large", str(line)
    return None, None


@pytest.mark.parametrize(("width", "max_bytes"), [(3, 1_500), (40, 50_000), (300, 50_000_000)])
def test_the_quick_row_test_agrees_with_the_exact_rules(
    tmp_path: Path, width: int, max_bytes: int
) -> None:
    # Common rows pass on byte counts alone, and sums the width already bounds are left
    # out; rows near every limit must get exactly the verdict of the full rules.
    rng = random.Random(width)
    names = [f"a{j:03d}" for j in range(width)]
    header = len("batch=thirdPartyId,") + len(",".join(names)) + 1
    room = max_bytes - header - 1
    alphabet = ["x", "é", "😀", "%", " ", "東"]

    def text(limit: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, limit)))

    rows: list[tuple[str, list[str]]] = []
    for i in range(120):
        limit = rng.choice([4, 60, 250, 256, 257, 300])
        values = [text(limit) for _ in range(width)]
        pid = f"r{i}-" + text(rng.choice([5, 256]))
        rows.append((pid.replace("+", "").replace("/", "")[:260], values))
    # Exactly at the limits: 256 and 257 four-byte characters, a line of exactly `room`.
    rows.append(("at256", ["😀" * 256] + [""] * (width - 1)))
    rows.append(("at257", ["😀" * 257] + [""] * (width - 1)))
    fill = room - len("exact") - 1 - (width - 1) - 1  # bytes left for the encoded values
    if 0 < fill < 768 * width - 3:
        # '%' is 3 bytes encoded; 256 of them fill a value; 'x' pads the last bytes.
        percents, pad = divmod(fill, 3)
        values = ["%" * min(256, max(0, percents - 256 * k)) for k in range(width)]
        short = next(k for k, v in enumerate(values) if len(v) < 255)
        values[short] += "x" * pad
        rows.append(("exact", values))
        longer = [*values]
        longer[short] += "x"
        rows.append(("exact-and-one", longer))
    ids = list(dict.fromkeys(pid for pid, _ in rows))
    rows = [next(r for r in rows if r[0] == pid) for pid in ids]
    table = pa.table(
        {
            "id": [pid for pid, _ in rows],
            **{n: [v[j] for _, v in rows] for j, n in enumerate(names)},
        }
    )
    staged, _ = _stage_rows(tmp_path, table, {n: n for n in names}, max_bytes=max_bytes)
    verdicts: dict[str | None, int] = {}
    for pid, values in rows:
        reason, detail = _expected_reject(pid, values, names, room)
        verdicts[reason] = verdicts.get(reason, 0) + 1
        _, cells, got_reason, got_detail = staged[pid]
        assert got_reason == reason, (pid, got_detail)
        if reason == "line_too_large":
            assert got_detail is not None and got_detail.startswith(f"{detail} bytes URL-encoded")
        elif reason is not None:
            assert got_detail == detail
        else:
            assert cells == ",".join(quote(v, safe="-_.~") for v in values)
    assert verdicts.get(None) and len(verdicts) > 1, verdicts  # both kinds were exercised


def test_per_attribute_changes_and_stale_values_at_width(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    # plan's field changes and the stale-value counts come from one grouped query whatever
    # the width (two counts per attribute took minutes to plan at 2,000): checked against
    # the counts stated in Python.
    width, rows = 300, 40
    rng = random.Random(7)
    names = [f"a{j:03d}" for j in range(width)]
    replaced = {j for j in range(width) if j % 7 == 0}  # null: "none"; the rest nullable
    before = [
        [f"v{i}-{j}" if rng.random() > 0.1 else None for j in range(width)] for i in range(rows)
    ]
    after = [list(row) for row in before]
    for _ in range(400):
        i, j = rng.randrange(rows), rng.randrange(width)
        after[i][j] = rng.choice([None, "", f"w{i}-{j}", after[i][j]])

    def load(values: list[list[str | None]]) -> None:
        columns = ", ".join(f"c{j} VARCHAR" for j in range(width))
        literal = ", ".join(
            "(" + ", ".join([f"'p{i}'"] + ["NULL" if v is None else f"'{v}'" for v in row]) + ")"
            for i, row in enumerate(values)
        )
        warehouse(
            f"CREATE OR REPLACE TABLE customers (customer_id VARCHAR, {columns});"
            f"INSERT INTO customers VALUES {literal}"
        )

    def text(j: int, value: str | None) -> str:
        if j in replaced:
            return value or "none"
        return value or ""

    load(before)
    attributes = {
        name: {"column": f"c{j}", "null": "none"} if j in replaced else f"c{j}"
        for j, name in enumerate(names)
    }
    config = write_config(emulator=emulator, attributes=attributes)
    assert connector.sync(config).sent == rows
    load(after)

    changed_rows = [
        i
        for i in range(rows)
        if any(text(j, before[i][j]) != text(j, after[i][j]) for j in range(width))
    ]
    want_changes = {
        names[j]: n
        for j in range(width)
        if (n := sum(text(j, before[i][j]) != text(j, after[i][j]) for i in changed_rows))
    }
    want_stale = {
        names[j]: n
        for j in range(width)
        if j not in replaced
        and (
            n := sum(
                text(j, before[i][j]) != "" and text(j, after[i][j]) == "" for i in changed_rows
            )
        )
    }
    assert want_changes and want_stale  # the data exercises both counts
    plan = connector.plan(config)
    assert plan.changed == len(changed_rows)
    assert plan.attribute_changes == want_changes
    assert plan.stale_nulls == want_stale
    assert connector.sync(config).stale_nulls == want_stale
