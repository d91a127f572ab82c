"""Typed fingerprints and texts built only where needed (issue #16), proven against the slow
path: a changed text always changes the fingerprint, the same value in another type keeps
it, the bounds never let a row past a limit its text would break, and the lazy staging
rejects and sends exactly what building every text does."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import connector
from connector.config import load_config, parse_config
from connector.config.models import SyncConfig
from connector.emulator import Emulator
from connector.mapping import SOURCE, staging_input, staging_sql
from connector.mapping.canonical import typed_canonical

from .conftest import ConfigWriter
from .test_integrity import Warehouse

# Values of each family, drawn from small pools so equal values (and equal texts of unequal
# values, 5.1 and 5.10) meet often; each version of a row picks its own Arrow type.
NUMBERS = [
    Decimal("0"),
    Decimal("-0.00"),
    Decimal("5"),
    Decimal("5.00"),
    Decimal("5.1"),
    Decimal("5.10"),
    Decimal("-5.1"),
    Decimal("-1"),  # DuckDB's hash of a HUGEINT takes -1 for 0 (typed-1 never sent it)
    Decimal("0.0001"),
    Decimal("-0.5"),
    Decimal("123456789012345.5"),
    Decimal("100"),
    None,
]
NUMBER_TYPES = [
    pa.int64(),
    pa.int32(),
    pa.decimal128(38, 4),
    pa.decimal128(20, 1),
    pa.decimal128(18, 0),
]
FLOATS = [0.0, -0.0, math.nan, math.inf, -math.inf, 0.1, 1e16, 1e-5, 1.5, 3.4e38, 5e-324, None]
FLOAT_TYPES = [pa.float64(), pa.float32()]
STRINGS = ["", None, "a", "é😀", ",%", "a "]
STRING_TYPES = [pa.string(), pa.large_string(), pa.dictionary(pa.int8(), pa.string())]
INSTANTS_NS = [0, 1, 1_000, 1_000_000, 1_500_000_000, -1, -86_400_000_000_000, 10**18, None]
TIMESTAMP_TYPES = [
    pa.timestamp(unit, tz)
    for unit in ("s", "ms", "us", "ns")
    for tz in (None, "UTC", "Europe/Rome")
]
DAYS = [0, -1, 1, 2_932_896, -719_528, None]
DATE_TYPES = [pa.date32(), pa.date64()]
TIMES_NS = [0, 1, 1_000, 86_399_000_000_000, 3_600_000_000_000, None]
TIME_TYPES = [pa.time32("s"), pa.time32("ms"), pa.time64("us"), pa.time64("ns")]
BOOLS = [True, False, None]

ATTRIBUTES: dict[str, Any] = {
    "num": "num",
    "flt": "flt",
    "str": "str",
    "strOrNone": {"column": "str2", "null": "none"},
    "ts": "ts",
    "day": "day",
    "clock": "clock",
    "flag": "flag",
    "price": {"column": "num2", "format": "%.2f"},
}
FAMILIES: dict[str, tuple[list[Any], list[pa.DataType]]] = {
    "num": (NUMBERS, NUMBER_TYPES),
    "num2": (NUMBERS, [pa.decimal128(38, 4), pa.decimal128(20, 1)]),
    "flt": (FLOATS, FLOAT_TYPES),
    "str": (STRINGS, STRING_TYPES),
    "str2": (STRINGS, STRING_TYPES),
    "ts": (INSTANTS_NS, TIMESTAMP_TYPES),
    "day": (DAYS, DATE_TYPES),
    "clock": (TIMES_NS, TIME_TYPES),
    "flag": (BOOLS, [pa.bool_()]),
}
UNITS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def make_config(folder: Path, attributes: dict[str, Any], **target: Any) -> SyncConfig:
    return parse_config(
        yaml.safe_dump(
            {
                "name": "fp",
                "source": {"type": "duckdb", "database": "unused.duckdb", "query": "select 1"},
                "identity": {"column": "id"},
                "attributes": attributes,
                "target": {"client_code": "demo", **target},
                "state": {"path": str(folder / "state.duckdb")},
            },
            sort_keys=False,
            allow_unicode=True,
        ),
        folder / "fp.yaml",
        {},
    )


def arrow_column(values: list[Any], t: pa.DataType) -> pa.Array:
    """``values`` of a family as an Arrow array of type ``t``: numbers that do not fit an
    integer type go as a decimal, instants and times are given in nanoseconds and floored to
    the unit, days become milliseconds for date64."""
    if pa.types.is_integer(t) and any(v is not None and v != v.to_integral() for v in values):
        t = pa.decimal128(38, 4)
    if pa.types.is_integer(t):
        return pa.array([None if v is None else int(v) for v in values], t)
    if pa.types.is_decimal(t):
        return pa.array(
            [None if v is None else v.quantize(Decimal(1).scaleb(-t.scale)) for v in values], t
        )
    if pa.types.is_timestamp(t) or pa.types.is_time(t):
        per = UNITS[t.unit]
        ints = [None if v is None else v // per for v in values]
        if pa.types.is_time(t):
            ints = [None if v is None else v % (86_400_000_000_000 // per) for v in ints]
        storage = pa.int32() if pa.types.is_time32(t) else pa.int64()
        return pa.array(ints, storage).view(t)
    if pa.types.is_date64(t):
        return pa.array([None if v is None else v * 86_400_000 for v in values], pa.int64()).view(t)
    if pa.types.is_dictionary(t):
        return pa.array(values, pa.string()).dictionary_encode()
    return pa.array(values, t)


def stage(
    config: SyncConfig, table: pa.Table, exact: bool = False, previous: pa.Table | None = None
) -> dict[str, tuple[Any, ...]]:
    """Each id's (fp, unchanged, reject, reject_detail, cells) from the staging SELECT."""
    return {r[0]: r[1:] for r in staged_rows(config, table, exact, previous)}


def staged_rows(
    config: SyncConfig, table: pa.Table, exact: bool = False, previous: pa.Table | None = None
) -> list[tuple[Any, ...]]:
    """Every staged row: (id, fp, unchanged, reject, reject_detail, cells), sorted."""
    sql = staging_sql(config, table.schema)
    with duckdb.connect() as con:
        reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=7))
        con.register(SOURCE, staging_input(config, reader))
        relation = None
        if previous is not None:
            con.register("previous", previous)
            relation = "(SELECT id, fp FROM previous)"
        rows = con.execute(
            "SELECT coalesce(id, old_id), fp, unchanged, reject, reject_detail, cells "
            f"FROM ({sql.render(relation, exact=exact)})"
        ).fetchall()
    return sorted(rows, key=repr)


@st.composite
def two_versions(draw: st.DrawFn) -> tuple[pa.Table, pa.Table]:
    """The same ids twice, each column in a type of its family per version, values drawn
    from the pools (the second version often copies the first)."""
    n = draw(st.integers(1, 12))
    ids = [f"p{i}" for i in range(n)]
    first: dict[str, pa.Array] = {"id": pa.array(ids)}
    second: dict[str, pa.Array] = {"id": pa.array(ids)}
    for column, (pool, types) in FAMILIES.items():
        a = [draw(st.sampled_from(pool)) for _ in ids]
        b = [x if draw(st.booleans()) else draw(st.sampled_from(pool)) for x in a]
        first[column] = arrow_column(a, draw(st.sampled_from(types)))
        second[column] = arrow_column(b, draw(st.sampled_from(types)))
    return pa.table(first), pa.table(second)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(versions=two_versions())
def test_a_changed_text_always_changes_the_fingerprint(tmp_path: Path, versions: Any) -> None:
    first, second = versions
    config = make_config(tmp_path, ATTRIBUTES)
    before, after = stage(config, first), stage(config, second)
    assert before.keys() == after.keys()
    for pid, (fp, _, reject, _, cells) in before.items():
        fp2, _, reject2, _, cells2 = after[pid]
        if reject is None and reject2 is None and cells != cells2:
            assert fp != fp2, (pid, cells, cells2)
    # The same row in the same types is the same fingerprint (and the same text).
    again = stage(config, first)
    assert again == before


@pytest.mark.parametrize(
    ("t", "pair"),
    [
        (pa.int64(), [0, -1]),
        (pa.int8(), [0, -1]),
        (pa.uint64(), [0, 2**64 - 1]),
        (pa.decimal128(10, 2), [Decimal("0.00"), Decimal("-1.00")]),
        # 2^64 + 1: both halves 1, which DuckDB's hash of a HUGEINT XORs away.
        (pa.decimal128(38, 0), [Decimal(0), Decimal(2**64 + 1)]),
        (pa.decimal128(38, 0), [Decimal(2**64 + 5), Decimal(5 * 2**64 + 1)]),
        (pa.decimal128(38, 38), [Decimal(0), Decimal("-1e-38")]),
        (pa.timestamp("ns"), [0, -1]),
    ],
    ids=repr,
)
def test_values_that_duckdb_hashes_alike_as_hugeint_still_change_the_fingerprint(
    tmp_path: Path, t: pa.DataType, pair: list[Any]
) -> None:
    config = make_config(tmp_path, {"num": "num"})
    if pa.types.is_timestamp(t) or pa.types.is_time(t):
        column = pa.array(pair, pa.int64()).view(t)
    else:
        column = pa.array(pair, t)
    table = pa.table({"id": ["a", "b"], "num": column})
    staged = stage(config, table)
    assert staged["a"][4] != staged["b"][4]  # different texts ...
    assert staged["a"][0] != staged["b"][0]  # ... so different fingerprints


def test_the_same_value_in_another_type_keeps_its_fingerprint(tmp_path: Path) -> None:
    # Switching engines or widening a column must send nothing: 5.1 and 5.10, an integer
    # and a decimal of scale 0 or 2, float32 0.1 and float64 0.1 (both "0.1"), an instant in
    # seconds or nanoseconds, date32 and date64, time32 and time64, string and dictionary.
    config = make_config(
        tmp_path,
        {"num": "num", "flt": "flt", "ts": "ts", "day": "day", "clock": "clock", "str": "str"},
    )
    tables = [
        pa.table(
            {
                "id": pa.array(["a", "b"]),
                "num": arrow_column([Decimal("5.1"), Decimal("7")], num),
                "flt": pa.array([0.1, -1.5], flt),
                "ts": arrow_column([1_000_000_000, None], ts),
                "day": arrow_column([18_000, -1], day),
                "clock": arrow_column([3_600_000_000_000, 0], clock),
                "str": arrow_column(["x", None], text),
            }
        )
        for num, flt, ts, day, clock, text in [
            (
                pa.decimal128(10, 1),
                pa.float64(),
                pa.timestamp("s"),
                pa.date32(),
                pa.time32("s"),
                pa.string(),
            ),
            (
                pa.decimal128(38, 4),
                pa.float32(),
                pa.timestamp("ns"),
                pa.date64(),
                pa.time64("ns"),
                pa.large_string(),
            ),
            (
                pa.decimal128(20, 2),
                pa.float64(),
                pa.timestamp("ms"),
                pa.date32(),
                pa.time64("us"),
                pa.dictionary(pa.int8(), pa.string()),
            ),
        ]
    ]
    staged = [stage(config, table) for table in tables]
    for pid in ("a", "b"):
        assert len({s[pid][4] for s in staged}) == 1, pid  # the same texts...
        assert len({s[pid][0] for s in staged}) == 1, pid  # ...and the same fingerprints
    # An integer column and a decimal of scale 0 holding the same numbers agree too.
    ints = pa.table({"id": ["a"], "num": pa.array([7], pa.int64())})
    decimals = pa.table({"id": ["a"], "num": pa.array([Decimal(7)], pa.decimal128(18, 0))})
    config = make_config(tmp_path, {"num": "num"})
    assert stage(config, ints)["a"][0] == stage(config, decimals)["a"][0]


def test_a_zone_or_a_type_family_is_part_of_the_fingerprint(tmp_path: Path) -> None:
    # The same integer as a naive instant, a zoned one (its text ends in Z) or a number has
    # three texts: three fingerprints.
    config = make_config(tmp_path, {"v": "v"})
    prints = {
        stage(config, pa.table({"id": ["a"], "v": column}))["a"][0]
        for column in (
            pa.array([5], pa.int64()),
            pa.array([5], pa.int64()).view(pa.timestamp("s")),
            pa.array([5], pa.int64()).view(pa.timestamp("s", "UTC")),
        )
    }
    assert len(prints) == 3


# -- the bounds: never below the text ------------------------------------------------------

EXTREMES: list[tuple[pa.DataType, list[Any]]] = [
    (pa.int64(), [-(2**63), 2**63 - 1]),
    (pa.uint64(), [2**64 - 1]),
    (pa.int8(), [-128]),
    (pa.decimal128(38, 0), [Decimal(-(10**38) + 1)]),
    (pa.decimal128(38, 38), [Decimal("-0." + "9" * 38)]),
    (pa.decimal128(5, 5), [Decimal("-0.00001")]),
    (
        pa.float64(),
        [-2.2250738585072014e-308, -1.7976931348623157e308, -5e-324, -1.2345678901234567e-100],
    ),
    (pa.float32(), [-1.1754944e-38, -3.4028235e38, -1e-45]),
    (pa.date32(), [-2_147_483_646, 2_147_483_646]),
    (pa.timestamp("s", "UTC"), [-9_223_372_036_854, 9_223_372_036_854]),
    (pa.timestamp("us"), [-(2**63) + 2, 2**63 - 2]),
    (pa.timestamp("ns", "UTC"), [-(2**63) + 2, 2**63 - 2]),
    (pa.time64("ns"), [2**63 - 1, -(2**63)]),
    (pa.time64("us"), [2**63 - 1, -(2**63)]),
    (pa.time32("s"), [2**31 - 1, -(2**31)]),
    (pa.bool_(), [False]),
]


@pytest.mark.parametrize(("arrow_type", "values"), EXTREMES, ids=lambda x: str(x))
def test_text_bounds_are_never_below_the_longest_texts(
    tmp_path: Path, arrow_type: pa.DataType, values: list[Any]
) -> None:
    canonical = typed_canonical('"v"', arrow_type, None)
    assert canonical is not None and canonical.bytes_sql is None
    if pa.types.is_temporal(arrow_type):
        storage = pa.int32() if arrow_type.bit_width == 32 else pa.int64()
        column = pa.array(values, storage).view(arrow_type)
    else:
        column = pa.array(values, arrow_type)
    table = pa.table({"id": [f"r{i}" for i in range(len(values))], "v": column})
    staged = stage(make_config(tmp_path, {"v": "v"}), table, exact=True)
    from urllib.parse import unquote

    written = 0
    for _, _, reject, _, cells in staged.values():
        if reject is None:
            text = unquote(cells)
            assert len(text.encode()) <= canonical.bytes, (arrow_type, text)
            written += 1
    assert written  # the extremes that have a text were written


# -- texts only where needed: the same rejects and cells as building every one --------------

NEAR = st.one_of(
    st.none(),
    st.just(""),
    st.text("aé😀,%", min_size=240, max_size=262),  # near 256 characters and bytes
    st.text("ab", max_size=5),
)


@st.composite
def rows_near_limits(draw: st.DrawFn) -> tuple[pa.Table, pa.Table]:
    n = draw(st.integers(0, 15))
    ids = draw(
        st.lists(
            st.one_of(
                st.none(),
                st.just(""),
                st.sampled_from(["a", "b", "c+d", "x" * 257]),
                st.text("xyz", min_size=1, max_size=4),
            ),
            min_size=n,
            max_size=n,
        )
    )
    columns = {f"s{j}": pa.array([draw(NEAR) for _ in ids], pa.string()) for j in range(6)}
    columns["n"] = pa.array([draw(st.sampled_from(NUMBERS)) for _ in ids], pa.decimal128(38, 4))
    columns["d"] = pa.array(
        [draw(st.sampled_from([0, 2**31 - 1, -(2**31) + 1, None])) for _ in ids], pa.int32()
    ).view(pa.date32())
    return pa.table({"id": pa.array(ids, pa.string()), **columns})


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=rows_near_limits(),
    max_bytes=st.sampled_from([1_100, 2_000, 50_000_000]),
    keep=st.data(),
)
def test_lazy_texts_reject_and_send_exactly_what_building_every_text_does(
    tmp_path: Path, data: Any, max_bytes: int, keep: st.DataObject
) -> None:
    table = data
    attributes: dict[str, Any] = {f"attr{j}": f"s{j}" for j in range(6)}
    attributes["attr2"] = {"column": "s2", "null": "x" * 250}
    attributes["n"] = "n"
    attributes["d"] = "d"
    config = make_config(tmp_path, attributes, max_bytes_per_batch=max_bytes)
    slow = staged_rows(config, table, exact=True)
    fast = staged_rows(config, table)
    # First run: every row, rejects and details and cells alike (duplicates and NULL ids too).
    assert fast == slow
    # Against a snapshot holding some ids (their fingerprints kept or not): the same rows,
    # rejects for every row, cells for every row to send.
    prints = {r[0]: r[1] for r in slow if r[0] is not None}
    held = [pid for pid in sorted(prints) if keep.draw(st.booleans())]
    kept = [prints[pid] if keep.draw(st.booleans()) else 1 for pid in held]
    previous = pa.table({"id": pa.array(held, pa.string()), "fp": pa.array(kept, pa.uint64())})
    assert staged_rows(config, table, previous=previous) == staged_rows(
        config, table, exact=True, previous=previous
    )


# -- migrating a snapshot of text fingerprints --------------------------------------------------


def _as_the_text_scheme_left_it(state: Path, keep_values: bool) -> None:
    """Make the snapshot what the scheme before typed fingerprints wrote: fp = hash of the
    sent texts and the binding signature (as its staging and its rehash computed them), and
    the scheme duckdb-hash/VERSION; without values when they are not kept."""
    from connector.state.duckdb.store import TEXT_SCHEME

    with duckdb.connect(str(state)) as con:
        texts = ", ".join(f"url_decode(split_part(cells, ',', {i}))" for i in (1, 2))
        con.execute(f'UPDATE "snapshot__test_sync" SET fp = hash({texts}, binding)')
        con.execute("UPDATE ts_syncs SET fingerprint_scheme = ?", [TEXT_SCHEME])
        if not keep_values:
            con.execute('UPDATE "snapshot__test_sync" SET cells = NULL')


@pytest.mark.parametrize("keep_values", [True, False])
def test_a_snapshot_of_text_fingerprints_is_migrated_without_a_resend(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter, keep_values: bool
) -> None:
    from connector.state.duckdb.store import FINGERPRINT_SCHEME

    from .conftest import run_cli
    from .test_integrity import CUSTOMERS, assert_invariants, sent_ids

    warehouse(CUSTOMERS.format(n=300))
    keeping = write_config(emulator=emulator)
    assert connector.sync(keeping).sent == 300
    state = Path(load_config(keeping).state.path)
    with duckdb.connect(str(state), read_only=True) as con:
        typed = dict(con.execute('SELECT id, fp FROM "snapshot__test_sync"').fetchall())
    _as_the_text_scheme_left_it(state, keep_values)
    with duckdb.connect(str(state), read_only=True) as con:
        text = dict(con.execute('SELECT id, fp FROM "snapshot__test_sync"').fetchall())
    assert all(text[pid] != typed[pid] for pid in typed)  # two schemes, other fingerprints
    config = write_config(emulator=emulator, state={"path": str(state), "keep_values": keep_values})
    warehouse("UPDATE customers SET city = 'Rome' WHERE customer_id = 'c3'")

    report = connector.plan(config)
    assert report.fingerprint_migration and report.full_resend_reason is None
    assert (report.new, report.changed, report.unchanged) == (0, 1, 299)
    assert "one-time migration" in run_cli("plan", config).stdout

    uploads = len(emulator.uploads)
    result = connector.sync(config)
    assert (result.exit_code, result.sent, result.full_resend_reason) == (0, 1, None)
    assert sent_ids(emulator.uploads[uploads:]) == ["c3"]
    assert emulator.profiles()["c3"]["city"] == "Rome"
    with duckdb.connect(str(state), read_only=True) as con:
        [(scheme,)] = con.execute("SELECT fingerprint_scheme FROM ts_syncs").fetchall()
        migrated = dict(con.execute('SELECT id, fp FROM "snapshot__test_sync"').fetchall())
    assert scheme == FINGERPRINT_SCHEME
    assert {pid for pid in typed if migrated[pid] != typed[pid]} == {"c3"}
    assert not connector.plan(config).fingerprint_migration
    assert connector.sync(config).sent == 0
    assert_invariants(config)


def test_a_typed_1_snapshot_migrates_once_and_sends_what_typed_1_missed(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    """typed-1 hashed 0 and -1 alike: a score that went from 0 to -1 under it was never sent
    while its snapshot row kept the old text. Migrating compares texts, so it goes now, and
    nothing else does."""
    from connector.state.duckdb.store import FINGERPRINT_SCHEME

    from .test_integrity import sent_ids

    warehouse(
        "CREATE OR REPLACE TABLE customers AS SELECT 'c' || i AS customer_id, "
        "CAST(i % 3 - 1 AS BIGINT) AS score FROM range(30) t(i)"
    )
    config = write_config(emulator=emulator, attributes={"score": "score"})
    assert connector.sync(config).sent == 30
    state = Path(load_config(config).state.path)
    # What typed-1 left after missing a change: the scheme's name, the old texts.
    warehouse("UPDATE customers SET score = -1 WHERE customer_id = 'c1'")  # 0 -> -1
    with duckdb.connect(str(state)) as con:
        scheme = FINGERPRINT_SCHEME.replace("typed-2/", "typed-1/")
        con.execute("UPDATE ts_syncs SET fingerprint_scheme = ?", [scheme])

    assert connector.plan(config).fingerprint_migration
    uploads = len(emulator.uploads)
    result = connector.sync(config)
    assert (result.exit_code, result.sent, result.full_resend_reason) == (0, 1, None)
    assert sent_ids(emulator.uploads[uploads:]) == ["c1"]
    assert emulator.profiles()["c1"]["score"] == "-1"
    warehouse("UPDATE customers SET score = 0 WHERE customer_id = 'c1'")  # and back
    assert connector.sync(config).sent == 1
    assert emulator.profiles()["c1"]["score"] == "0"
