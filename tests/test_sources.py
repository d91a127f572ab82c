"""The sources against real engines: DuckDB files, PostgreSQL on loopback, the Snowflake
connector against fakesnow's server, and a dbt project built with the real dbt CLI."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
import yaml

from connector.config import SyncConfig, parse_config
from connector.errors import ConfigError, MissingExtraError, SourceError
from connector.sources import open_reader, probe_schema
from connector.sources.dbt_source import resolve
from tests.servers import (
    closed_port,
    fakesnow_server,
    postgres_connect,
    postgres_dsn,
    postgres_schema,
    snowflake_literal,
    snowflake_refusing_login,
)

REPO = Path(__file__).resolve().parents[1]
SYNC = "src_test"
UTC = dt.UTC
NAN = float("nan")
INF = float("inf")


# --- helpers -------------------------------------------------------------------------------


def make_config(tmp_path: Path, source: dict[str, Any]) -> SyncConfig:
    """A sync config around ``source``, through the real config parser."""
    text = yaml.safe_dump(
        {
            "name": SYNC,
            "source": source,
            "identity": {"column": "id"},
            "attributes": {"attr": "s"},
            "target": {"client_code": "demo"},
        }
    )
    return parse_config(text, tmp_path / "sync.yaml", {})


def read(config: SyncConfig) -> tuple[pa.Table, list[pa.RecordBatch]]:
    """Every batch the source streams, and the table they make."""
    with open_reader(config) as reader:
        batches = list(reader)
        schema = reader.schema
    return pa.Table.from_batches(batches, schema), batches


def same(a: Any, b: Any) -> bool:
    """Equality where NaN equals NaN (a NaN read back is the right answer)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b) and type(a) is type(b)


def assert_rows(table: pa.Table, expected: Sequence[Sequence[Any]]) -> None:
    """Compare values column by column, naming the first difference."""
    assert table.num_rows == len(expected)
    for index, name in enumerate(table.column_names):
        got = table.column(index).to_pylist()
        want = [row[index] for row in expected]
        for row, (g, w) in enumerate(zip(got, want, strict=True)):
            assert same(g, w), f"column {name}, row {row}: got {g!r}, expected {w!r}"


def assert_one_line_error(exc: Exception, *secrets: str) -> str:
    message = str(exc)
    assert "\n" not in message and "\r" not in message, message
    assert f"sync '{SYNC}'" in message, message
    for secret in secrets:
        assert secret not in message, message
    return message


# --- engines -------------------------------------------------------------------------------


@pytest.fixture
def pg() -> Iterator[tuple[str, str]]:
    """(SQLAlchemy URL, a schema of this test's own)."""
    url = postgres_dsn()
    with postgres_schema() as schema:
        yield url, schema


@pytest.fixture(scope="session")
def snow_server() -> Iterator[dict[str, Any]]:
    with fakesnow_server() as kwargs:
        yield kwargs


@dataclass
class Snow:
    kwargs: dict[str, Any]
    database: str
    cursor: Any

    def source(self, query: str, **extra: Any) -> dict[str, Any]:
        return {
            "type": "snowflake",
            "account": "fakesnow",
            "user": "fake",
            "password": "snow",
            "host": "127.0.0.1",
            "port": self.kwargs["port"],
            "protocol": "http",
            "database": self.database,
            "schema": "PUBLIC",
            "query": query,
            **extra,
        }

    def load(self, table: str, columns: Sequence[tuple[str, str]], rows: Sequence[Any]) -> None:
        """Create ``table`` and insert ``rows`` in one statement (fakesnow runs a row-by-row
        executemany at ~500 rows/s)."""
        self.cursor.execute(f"CREATE TABLE {table} ({', '.join(f'{n} {t}' for n, t in columns)})")
        records = [
            {name: snowflake_literal(v) for (name, _), v in zip(columns, row, strict=True)}
            for row in rows
        ]
        casts = ", ".join(f"value:{name}::{kind}" for name, kind in columns)
        self.cursor.execute(
            f"INSERT INTO {table} SELECT {casts} FROM TABLE(FLATTEN(INPUT => PARSE_JSON(?)))",
            (json.dumps(records),),
        )


@pytest.fixture
def snow(snow_server: dict[str, Any]) -> Iterator[Snow]:
    """A fake Snowflake database of this test's own."""
    import snowflake.connector

    database = f"TS_{uuid.uuid4().hex[:10].upper()}"
    conn = snowflake.connector.connect(
        **snow_server, database=database, schema="PUBLIC", paramstyle="qmark"
    )
    try:
        yield Snow(snow_server, database, conn.cursor())
    finally:
        conn.close()


def duckdb_file(tmp_path: Path, ddl: str, rows: Sequence[Sequence[Any]] = ()) -> Path:
    path = tmp_path / f"wh_{uuid.uuid4().hex[:8]}.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(ddl)
        if rows:
            marks = ", ".join("?" for _ in rows[0])
            table = ddl.split()[2]
            con.executemany(f"INSERT INTO {table} VALUES ({marks})", [list(r) for r in rows])
    return path


# --- every common type ---------------------------------------------------------------------

STRINGS = [
    "plain",
    "comma, \"double\" and 'single' quotes",
    "new\nline\r\n\ttab",
    "100% of %s and %(name)s",
    "a&b+c=d/e?f#g;h",
    "ünïcödé ß 中文 русский",
    "emoji 😀🎉👍🏽",
    "",
    "back\\slash",
    None,
]
# (name, DuckDB type, PostgreSQL type, Snowflake type)
TYPED_COLUMNS = [
    ("id", "BIGINT", "bigint", "NUMBER(18,0)"),
    ("s", "VARCHAR", "text", "VARCHAR"),
    ("i16", "SMALLINT", "smallint", "NUMBER(5,0)"),
    ("i32", "INTEGER", "integer", "NUMBER(10,0)"),
    ("i64", "BIGINT", "bigint", "NUMBER(19,0)"),
    ("dec", "DECIMAL(18,4)", "numeric(18,4)", "NUMBER(18,4)"),
    ("f64", "DOUBLE", "double precision", "FLOAT"),
    ("f32", "REAL", "real", "FLOAT"),
    ("b", "BOOLEAN", "boolean", "BOOLEAN"),
    ("d", "DATE", "date", "DATE"),
    ("ts", "TIMESTAMP", "timestamp", "TIMESTAMP_NTZ"),
    ("tstz", "TIMESTAMPTZ", "timestamptz", "TIMESTAMP_TZ"),
    ("nothing", "INTEGER", "integer", "NUMBER(10,0)"),
]
TYPED_ROWS: list[tuple[Any, ...]] = [
    (1, STRINGS[0], 1, 1, 1, Decimal("1.0000"), 1.5, 1.5, True, dt.date(2024, 1, 1),
     dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1, tzinfo=UTC), None),
    (2, STRINGS[1], -32768, -2147483648, -9223372036854775808, Decimal("-12345678901234.5678"),
     NAN, -0.25, False, dt.date(1970, 1, 1), dt.datetime(1970, 1, 1, 0, 0, 0, 1),
     dt.datetime(2024, 6, 30, 20, 0, 0, 500000, tzinfo=UTC), None),
    (3, STRINGS[2], 32767, 2147483647, 9223372036854775807, Decimal("99999999999999.9999"),
     INF, INF, True, dt.date(2099, 12, 31), dt.datetime(2024, 2, 29, 23, 59, 59, 999999),
     dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC), None),
    (4, STRINGS[3], None, None, None, None, None, None, None, None, None, None, None),
    (5, STRINGS[4], 0, 0, 0, Decimal("0.0001"), -INF, 0.0, None, dt.date(2000, 2, 29),
     dt.datetime(2000, 2, 29, 12), dt.datetime(2000, 2, 29, 12, tzinfo=UTC), None),
    (6, STRINGS[5], 7, None, 7, Decimal("-0.0001"), -0.0, None, True, None,
     dt.datetime(2038, 1, 19, 3, 14, 8), None, None),
    (7, STRINGS[6], None, 42, None, Decimal("0.0000"), 1e300, 3.0, False, dt.date(1900, 1, 1),
     None, dt.datetime(1900, 1, 1, tzinfo=UTC), None),
    (8, STRINGS[7], -1, -1, -1, None, 5e-324, -1.0, True, dt.date(2024, 12, 31),
     dt.datetime(2024, 12, 31, 23, 59, 59), dt.datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC),
     None),
    (9, STRINGS[8], 2, 2, 2, Decimal("2.5000"), 0.1, 0.5, False, dt.date(2024, 1, 2),
     dt.datetime(2024, 1, 2), dt.datetime(2024, 1, 2, tzinfo=UTC), None),
    (10, STRINGS[9], 3, 3, 3, Decimal("3.0000"), 2.0, 2.0, True, dt.date(2024, 1, 3),
     dt.datetime(2024, 1, 3), dt.datetime(2024, 1, 3, tzinfo=UTC), None),
]  # fmt: skip
TYPED_QUERY = "SELECT * FROM typed ORDER BY id"


TSTZ = pa.timestamp("us", "UTC")


def typed_schema(tstz: pa.DataType = TSTZ) -> pa.Schema:
    return pa.schema(
        [
            ("id", pa.int64()),
            ("s", pa.string()),
            ("i16", pa.int16()),
            ("i32", pa.int32()),
            ("i64", pa.int64()),
            ("dec", pa.decimal128(18, 4)),
            ("f64", pa.float64()),
            ("f32", pa.float32()),
            ("b", pa.bool_()),
            ("d", pa.date32()),
            ("ts", pa.timestamp("us")),
            ("tstz", tstz),
            ("nothing", pa.int32()),
        ]
    )


def test_duckdb_every_type(tmp_path: Path) -> None:
    ddl = f"CREATE TABLE typed ({', '.join(f'{c[0]} {c[1]}' for c in TYPED_COLUMNS)})"
    path = duckdb_file(tmp_path, ddl, TYPED_ROWS)
    config = make_config(tmp_path, {"type": "duckdb", "database": str(path), "query": TYPED_QUERY})
    table, _ = read(config)
    # DuckDB labels TIMESTAMPTZ with its session time zone; the instants are what must match.
    tstz = table.schema.field("tstz").type
    assert pa.types.is_timestamp(tstz) and tstz.unit == "us" and tstz.tz
    assert table.schema == typed_schema(tstz)
    assert_rows(table, TYPED_ROWS)
    assert probe_schema(config) == table.schema


@pytest.mark.parametrize("reader", ["sqlalchemy", "adbc"])
def test_postgres_every_type(tmp_path: Path, pg: tuple[str, str], reader: str) -> None:
    url, schema = pg
    with postgres_connect() as conn:
        columns = ", ".join(f"{c[0]} {c[2]}" for c in TYPED_COLUMNS)
        conn.execute(f"CREATE TABLE {schema}.typed ({columns})")
        marks = ", ".join("%s" for _ in TYPED_COLUMNS)
        conn.cursor().executemany(f"INSERT INTO {schema}.typed VALUES ({marks})", TYPED_ROWS)
    query = f"SELECT * FROM {schema}.typed WHERE s IS NULL OR s LIKE '%' ORDER BY id"
    source = {"type": "sqlalchemy", "url": url, "query": query, "reader": reader}
    config = make_config(tmp_path, source)
    table, _ = read(config)
    assert table.schema == typed_schema()
    assert_rows(table, TYPED_ROWS)
    assert probe_schema(config) == table.schema


def test_postgres_types_beyond_the_common_ones(tmp_path: Path, pg: tuple[str, str]) -> None:
    url, _ = pg
    query = """
        SELECT 1.50::numeric AS free_numeric, 0.0000001::numeric AS tiny,
               100.00::numeric AS hundred,
               'NaN'::numeric AS nan_numeric, NULL::numeric(40, 2) AS wide_numeric,
               '{"b": 2, "a": [1, "x"]}'::jsonb AS doc, '{"keep":  "spacing"}'::json AS raw,
               '6ecd8c99-4036-403d-bf84-cf8400f67836'::uuid AS uid, '\\x00ff'::bytea AS bin,
               '12:34:56.789'::time AS t, ARRAY[1, NULL, 3]::int4[] AS ints,
               ARRAY['a,b', NULL]::text[] AS texts, ARRAY[1.5]::numeric(5,2)[] AS decs,
               ARRAY[1.50, NULL, 1e-7]::numeric[] AS free_decs,
               'x'::char(3) AS padded, NULL AS untyped, NULL::date AS no_date
    """
    config = make_config(tmp_path, {"type": "sqlalchemy", "url": url, "query": query})
    table, _ = read(config)
    assert table.schema == pa.schema(
        [
            ("free_numeric", pa.string()),
            ("tiny", pa.string()),
            ("hundred", pa.string()),
            ("nan_numeric", pa.string()),
            ("wide_numeric", pa.string()),
            ("doc", pa.string()),
            ("raw", pa.string()),
            ("uid", pa.string()),
            ("bin", pa.binary()),
            ("t", pa.time64("us")),
            ("ints", pa.list_(pa.int32())),
            ("texts", pa.list_(pa.string())),
            ("decs", pa.list_(pa.decimal128(5, 2))),
            ("free_decs", pa.list_(pa.string())),
            ("padded", pa.string()),
            ("untyped", pa.string()),
            ("no_date", pa.date32()),
        ]
    )
    assert table.to_pylist() == [
        {
            "free_numeric": "1.5",
            "tiny": "0.0000001",
            "hundred": "100",
            "nan_numeric": "NaN",
            "wide_numeric": None,
            "doc": '{"a": [1, "x"], "b": 2}',
            "raw": '{"keep":  "spacing"}',
            "uid": "6ecd8c99-4036-403d-bf84-cf8400f67836",
            "bin": b"\x00\xff",
            "t": dt.time(12, 34, 56, 789000),
            "ints": [1, None, 3],
            "texts": ["a,b", None],
            "decs": [Decimal("1.50")],
            "free_decs": ["1.5", None, "0.0000001"],
            "padded": "x  ",
            "untyped": None,
            "no_date": None,
        }
    ]


def test_postgres_nan_in_a_constrained_numeric_fails_naming_the_column(
    tmp_path: Path, pg: tuple[str, str]
) -> None:
    url, _ = pg
    query = "SELECT 'NaN'::numeric(10, 2) AS amount"
    config = make_config(tmp_path, {"type": "sqlalchemy", "url": url, "query": query})
    with pytest.raises(SourceError) as caught:
        read(config)
    assert "'amount'" in assert_one_line_error(caught.value)


def snowflake_typed_rows() -> list[tuple[Any, ...]]:
    # fakesnow 0.12.1 returns a NULL timestamp as 1970-01-01 (see the xfail test below), so
    # the Snowflake copy of the rows has no NULL timestamps.
    filler = dt.datetime(2011, 11, 11, 11, 11, 11)
    return [
        (*row[:10], row[10] or filler, row[11] or filler.replace(tzinfo=UTC), row[12])
        for row in TYPED_ROWS
    ]


def test_snowflake_every_type(tmp_path: Path, snow: Snow) -> None:
    rows = snowflake_typed_rows()
    snow.load("typed", [(c[0], c[3]) for c in TYPED_COLUMNS], rows)
    aliases = ", ".join(f'{c[0]} AS "{c[0]}"' for c in TYPED_COLUMNS)
    query = f"SELECT {aliases} FROM typed WHERE s IS NULL OR s LIKE '%' ORDER BY id"
    config = make_config(tmp_path, snow.source(query))
    table, _ = read(config)
    # Snowflake's integers are all NUMBER(p,0) and its floats all double precision.
    expected = typed_schema()
    for name in ("i16", "i32", "nothing"):
        expected = expected.set(expected.get_field_index(name), pa.field(name, pa.int64()))
    expected = expected.set(expected.get_field_index("f32"), pa.field("f32", pa.float64()))
    assert table.schema == expected
    assert_rows(table, rows)
    assert probe_schema(config) == table.schema


def test_snowflake_semistructured_and_time_types(tmp_path: Path, snow: Snow) -> None:
    snow.cursor.execute(
        "CREATE TABLE semistruct "
        "(v VARIANT, t TIME, ltz TIMESTAMP_LTZ, bin BINARY, big NUMBER(38,0))"
    )
    snow.cursor.execute(
        "INSERT INTO semistruct SELECT PARSE_JSON('{\"a\": [1, 2]}'), '01:02:03.456789', "
        "'2024-01-02 03:04:05.123456', TO_BINARY('00FF', 'HEX'), 1234567890123456789"
    )
    query = 'SELECT v AS "v", t AS "t", ltz AS "ltz", bin AS "bin", big AS "big" FROM semistruct'
    table, _ = read(make_config(tmp_path, snow.source(query)))
    assert table.schema == pa.schema(
        [
            ("v", pa.string()),
            ("t", pa.time64("us")),
            ("ltz", pa.timestamp("us", "UTC")),
            ("bin", pa.binary()),
            ("big", pa.int64()),
        ]
    )
    row = table.to_pylist()[0]
    assert json.loads(row["v"]) == {"a": [1, 2]}
    assert row["t"] == dt.time(1, 2, 3, 456789)
    assert row["ltz"] == dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert (row["bin"], row["big"]) == (b"\x00\xff", 1234567890123456789)


@pytest.mark.xfail(strict=True, reason="fakesnow 0.12.1 sends NULL timestamps as epoch 0")
def test_snowflake_null_timestamp(tmp_path: Path, snow: Snow) -> None:
    snow.cursor.execute("CREATE TABLE nts (ts TIMESTAMP_NTZ)")
    snow.cursor.execute("INSERT INTO nts VALUES (NULL)")
    table, _ = read(make_config(tmp_path, snow.source('SELECT ts AS "ts" FROM nts')))
    assert table.column("ts").to_pylist() == [None]


# --- the same 10,000 rows from every engine ------------------------------------------------

DATASET_COLUMNS = [
    ("id", "BIGINT", "bigint", "NUMBER(18,0)", pa.int64()),
    ("name", "VARCHAR", "text", "VARCHAR", pa.string()),
    ("amount", "DECIMAL(12,2)", "numeric(12,2)", "NUMBER(12,2)", pa.decimal128(12, 2)),
    ("score", "DOUBLE", "double precision", "FLOAT", pa.float64()),
    ("flag", "BOOLEAN", "boolean", "BOOLEAN", pa.bool_()),
    ("day", "DATE", "date", "DATE", pa.date32()),
    ("seen_at", "TIMESTAMP", "timestamp", "TIMESTAMP_NTZ", pa.timestamp("us")),
    ("seen_at_tz", "TIMESTAMPTZ", "timestamptz", "TIMESTAMP_TZ", pa.timestamp("us", "UTC")),
    ("maybe", "BIGINT", "bigint", "NUMBER(18,0)", pa.int64()),
]
DATASET_SCHEMA = pa.schema([(c[0], c[4]) for c in DATASET_COLUMNS])


def dataset(rows: int = 10_000) -> list[tuple[Any, ...]]:
    """Deterministic rows with NULLs, NaN, awkward strings (timestamps never NULL: fakesnow)."""
    texts = [s for s in STRINGS if s is not None]
    start = dt.datetime(2020, 1, 1)
    return [
        (
            i,
            None if i % 11 == 0 else f"{texts[i % len(texts)]} #{i}",
            None if i % 19 == 0 else Decimal(i * 7919 % 10**9).scaleb(-2),
            None if i % 17 == 0 else NAN if i % 13 == 0 else i * 0.25 - 1000.125,
            None if i % 7 == 0 else i % 2 == 0,
            None if i % 23 == 0 else dt.date(2000, 1, 1) + dt.timedelta(days=i),
            start + dt.timedelta(seconds=i * 61, microseconds=i),
            (start + dt.timedelta(minutes=i * 7, microseconds=i * 3)).replace(tzinfo=UTC),
            None if i % 3 == 0 else i * 1_000_003,
        )
        for i in range(rows)
    ]


def load_duckdb_dataset(tmp_path: Path, rows: Sequence[Sequence[Any]]) -> Path:
    path = tmp_path / "dataset.duckdb"
    arrow = pa.Table.from_pylist(
        [dict(zip(DATASET_SCHEMA.names, row, strict=True)) for row in rows], DATASET_SCHEMA
    )
    with duckdb.connect(str(path)) as con:
        ddl = ", ".join(f"{c[0]} {c[1]}" for c in DATASET_COLUMNS)
        con.execute(f"CREATE TABLE dataset ({ddl})")
        con.register("arrow_rows", arrow)
        con.execute("INSERT INTO dataset SELECT * FROM arrow_rows")
    return path


def load_postgres_dataset(schema: str, rows: Sequence[Sequence[Any]]) -> None:
    with postgres_connect() as conn:
        ddl = ", ".join(f"{c[0]} {c[2]}" for c in DATASET_COLUMNS)
        conn.execute(f"CREATE TABLE {schema}.dataset ({ddl})")
        with conn.cursor().copy(f"COPY {schema}.dataset FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def test_same_rows_give_the_same_arrow_table_from_every_engine(
    tmp_path: Path, pg: tuple[str, str], snow: Snow
) -> None:
    rows = dataset()
    duck_path = load_duckdb_dataset(tmp_path, rows)
    url, schema = pg
    load_postgres_dataset(schema, rows)
    snow.load("dataset", [(c[0], c[3]) for c in DATASET_COLUMNS], rows)
    columns = ", ".join(f'{c[0]} AS "{c[0]}"' for c in DATASET_COLUMNS)
    sources = {
        "duckdb": {
            "type": "duckdb",
            "database": str(duck_path),
            "query": "SELECT * FROM dataset ORDER BY id",
        },
        "postgres": {
            "type": "sqlalchemy",
            "url": url,
            "query": f"SELECT * FROM {schema}.dataset ORDER BY id",
        },
        "snowflake": snow.source(f"SELECT {columns} FROM dataset ORDER BY id"),
    }
    tables = {}
    for engine, source in sources.items():
        table, _ = read(make_config(tmp_path, source))
        if engine == "duckdb":
            # DuckDB labels TIMESTAMPTZ with its session zone; the instants are the data.
            table = table.cast(DATASET_SCHEMA)
        assert table.schema == DATASET_SCHEMA, engine
        tables[engine] = table
    assert_rows(tables["duckdb"], rows)
    assert_rows(tables["postgres"], rows)
    assert_rows(tables["snowflake"], rows)


# --- streaming -----------------------------------------------------------------------------


def test_batches_are_bounded_by_batch_size(tmp_path: Path, pg: tuple[str, str], snow: Snow) -> None:
    rows = dataset(10_000)
    url, schema = pg
    load_postgres_dataset(schema, rows)
    snow.load("dataset", [(c[0], c[3]) for c in DATASET_COLUMNS], rows)
    duck_path = load_duckdb_dataset(tmp_path, rows)
    sources = [
        {"type": "duckdb", "database": str(duck_path), "query": "SELECT * FROM dataset"},
        {"type": "sqlalchemy", "url": url, "query": f"SELECT * FROM {schema}.dataset"},
        # fakesnow sends the whole result as one chunk: the source must split it.
        snow.source("SELECT * FROM dataset"),
    ]
    for source in sources:
        table, batches = read(make_config(tmp_path, {**source, "batch_size": 1000}))
        sizes = [b.num_rows for b in batches]
        assert table.num_rows == 10_000, source["type"]
        assert len(sizes) > 1 and max(sizes) <= 1000, (source["type"], sizes)


@pytest.mark.parametrize("reader", ["sqlalchemy", "adbc"])
def test_postgres_streams_from_a_server_side_cursor(
    tmp_path: Path, pg: tuple[str, str], reader: str
) -> None:
    # The division fails at row 40,000 (~40 MB in): streamed, the first batches arrive
    # before the server reaches it; a client-side cursor would fail before the first batch.
    # (ADBC's COPY sends batches of ~16 MB: hence rows of a kilobyte.)
    url, _ = pg
    query = (
        "SELECT i, repeat('x', 1000) AS pad, 1 / (i - 40000) AS boom "
        "FROM generate_series(1, 50000) AS i"
    )
    config = make_config(
        tmp_path,
        {"type": "sqlalchemy", "url": url, "query": query, "batch_size": 1000, "reader": reader},
    )
    received = []
    with pytest.raises(SourceError) as caught, open_reader(config) as reader_:
        for batch in reader_:
            received.append(batch.num_rows)
    assert received and sum(received) < 40_000
    assert "division by zero" in assert_one_line_error(caught.value)


def test_probe_schema_reads_no_rows(tmp_path: Path, pg: tuple[str, str], snow: Snow) -> None:
    # Each query fails on its first row when run: probing must not run it over rows.
    url, schema = pg
    with postgres_connect() as conn:
        conn.execute(f"CREATE TABLE {schema}.probe AS SELECT 1::bigint AS id, 0 AS zero")
    duck = duckdb_file(tmp_path, "CREATE TABLE probe AS SELECT 1::BIGINT AS id, 'abc' AS s")
    snow.cursor.execute("CREATE TABLE probe AS SELECT 1 AS id, 'abc' AS s")
    sources = [
        (
            {"type": "duckdb", "database": str(duck)},
            "SELECT id, CAST(s AS INTEGER) AS n FROM probe",
            pa.schema([("id", pa.int64()), ("n", pa.int32())]),
        ),
        (
            {"type": "sqlalchemy", "url": url},
            f"SELECT id, 1 / zero AS n FROM {schema}.probe",
            pa.schema([("id", pa.int64()), ("n", pa.int32())]),
        ),
        (
            snow.source(""),
            'SELECT id AS "id", CAST(s AS INTEGER) AS "n" FROM probe',
            pa.schema([("id", pa.int64()), ("n", pa.int64())]),
        ),
    ]
    for source, query, expected in sources:
        config = make_config(tmp_path, {**source, "query": query})
        assert probe_schema(config) == expected, source["type"]
        with pytest.raises(SourceError):
            read(config)


def test_sqlite_types_are_inferred_from_the_first_batch(tmp_path: Path) -> None:
    path = tmp_path / "small.sqlite"
    query = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500) "
        "SELECT i AS id, 'v' || i AS s, i * 0.5 AS half, NULL AS empty, "
        "CASE WHEN i > 1000 THEN i END AS late FROM n"
    )
    config = make_config(
        tmp_path,
        {"type": "sqlalchemy", "url": f"sqlite:///{path}", "query": query, "batch_size": 1000},
    )
    assert probe_schema(config).types == [pa.null()] * 5
    # 'late' is NULL in the whole first batch: string, and its later integers as text.
    table, batches = read(config)
    assert [b.num_rows for b in batches] == [1000, 1000, 500]
    assert table.schema == pa.schema(
        [
            ("id", pa.int64()),
            ("s", pa.string()),
            ("half", pa.float64()),
            ("empty", pa.string()),
            ("late", pa.string()),
        ]
    )
    assert table.column("late").to_pylist()[999:1002] == [None, "1001", "1002"]


def test_duckdb_through_sqlalchemy_uses_the_reported_types(tmp_path: Path) -> None:
    path = duckdb_file(
        tmp_path,
        "CREATE TABLE t AS SELECT 1::SMALLINT AS a, 1.5::DECIMAL(10,2) AS d, NULL::DATE AS nd, "
        "'{\"k\": 1}'::JSON AS j, [1, 2] AS l, TIMESTAMPTZ '2024-01-01 00:00:00+00' AS tz",
    )
    config = make_config(
        tmp_path, {"type": "sqlalchemy", "url": f"duckdb:///{path}", "query": "SELECT * FROM t"}
    )
    table, _ = read(config)
    assert table.schema == pa.schema(
        [
            ("a", pa.int16()),
            ("d", pa.decimal128(10, 2)),
            ("nd", pa.date32()),
            ("j", pa.string()),
            ("l", pa.list_(pa.int32())),
            ("tz", pa.timestamp("us", "UTC")),
        ]
    )
    assert table.to_pylist()[0]["j"] == '{"k":1}'


# --- errors --------------------------------------------------------------------------------


def test_postgres_login_refused(tmp_path: Path, pg: tuple[str, str]) -> None:
    # The test server trusts loopback, so it refuses the user (no such role) rather than the
    # password; either way the login fails and the password must not show.
    password = f"pw-{uuid.uuid4().hex}"
    url = f"postgresql+psycopg://ts_nobody_{uuid.uuid4().hex[:8]}:{password}@127.0.0.1:5432/test"
    config = make_config(tmp_path, {"type": "sqlalchemy", "url": url, "query": "SELECT 1"})
    for call in (read, probe_schema):
        with pytest.raises(SourceError) as caught:
            call(config)
        message = assert_one_line_error(caught.value, password)
        assert "cannot connect" in message and "***@127.0.0.1" in message


def test_postgres_unreachable(tmp_path: Path) -> None:
    password = f"pw-{uuid.uuid4().hex}"
    url = f"postgresql+psycopg://someone:{password}@127.0.0.1:{closed_port()}/test"
    config = make_config(tmp_path, {"type": "sqlalchemy", "url": url, "query": "SELECT 1"})
    with pytest.raises(SourceError) as caught:
        read(config)
    assert "cannot connect" in assert_one_line_error(caught.value, password)


def test_postgres_missing_table(tmp_path: Path, pg: tuple[str, str]) -> None:
    url, schema = pg
    query = f"SELECT * FROM {schema}.no_such_table"
    config = make_config(tmp_path, {"type": "sqlalchemy", "url": url, "query": query})
    for call in (read, probe_schema):
        with pytest.raises(SourceError) as caught:
            call(config)
        assert "no_such_table" in assert_one_line_error(caught.value)


def test_duckdb_missing_table(tmp_path: Path) -> None:
    path = duckdb_file(tmp_path, "CREATE TABLE present (id BIGINT)")
    config = make_config(
        tmp_path, {"type": "duckdb", "database": str(path), "query": "SELECT * FROM absent"}
    )
    with pytest.raises(SourceError) as caught:
        read(config)
    assert "absent" in assert_one_line_error(caught.value)


def test_snowflake_wrong_password(tmp_path: Path) -> None:
    password = f"pw-{uuid.uuid4().hex}"
    with snowflake_refusing_login() as port:
        source = {
            "type": "snowflake",
            "account": "acme",
            "user": "analyst",
            "password": password,
            "host": "127.0.0.1",
            "port": port,
            "protocol": "http",
            "login_timeout": 10,
            "query": "SELECT 1",
        }
        with pytest.raises(SourceError) as caught:
            read(make_config(tmp_path, source))
    message = assert_one_line_error(caught.value, password)
    assert "Incorrect username or password" in message


def test_snowflake_unreachable(tmp_path: Path, snow: Snow) -> None:
    source = snow.source("SELECT 1", port=closed_port(), login_timeout=3, password="s3cr3t-pw")
    with pytest.raises(SourceError) as caught:
        read(make_config(tmp_path, source))
    assert "cannot connect" in assert_one_line_error(caught.value, "s3cr3t-pw")


def test_snowflake_missing_table(tmp_path: Path, snow: Snow) -> None:
    source = snow.source("SELECT * FROM no_such_table", password="pw-for-missing-table")
    config = make_config(tmp_path, source)
    for call in (read, probe_schema):
        with pytest.raises(SourceError) as caught:
            call(config)
        message = assert_one_line_error(caught.value, "pw-for-missing-table")
        assert "NO_SUCH_TABLE" in message.upper()


def test_snowflake_key_pair(tmp_path: Path, snow: Snow) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "rsa_key.p8"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"open sesame"),
        )
    )
    source = snow.source('SELECT 42 AS "answer"', private_key_file=str(pem))
    del source["password"]
    table, _ = read(make_config(tmp_path, {**source, "private_key_passphrase": "open sesame"}))
    assert table.to_pylist() == [{"answer": 42}]

    for passphrase in ("wrong horse", None):
        wrong = {**source, "private_key_passphrase": passphrase} if passphrase else source
        with pytest.raises(ConfigError) as caught:
            read(make_config(tmp_path, wrong))
        message = assert_one_line_error(caught.value, "wrong horse", "open sesame")
        assert str(pem) in message


def test_snowflake_connection_name(tmp_path: Path, snow: Snow) -> None:
    snow.cursor.execute("CREATE TABLE named AS SELECT 7 AS n")
    home = tmp_path / "snowflake_home"
    home.mkdir()
    toml = home / "connections.toml"
    toml.write_text(
        textwrap.dedent(
            f"""
            [ts_fake]
            account = "fakesnow"
            user = "fake"
            password = "snow"
            host = "127.0.0.1"
            port = {snow.kwargs["port"]}
            protocol = "http"
            database = "{snow.database}"
            schema = "PUBLIC"
            """
        )
    )
    toml.chmod(0o600)
    sync = tmp_path / "sync.yaml"
    source = {
        "type": "snowflake",
        "connection_name": "ts_fake",
        "query": 'SELECT n AS "n" FROM named',
    }
    sync.write_text(
        yaml.safe_dump(
            {
                "name": SYNC,
                "source": source,
                "identity": {"column": "n"},
                "attributes": {"attr": {"column": "n"}},
                "target": {"client_code": "demo"},
            }
        )
    )
    # The connector reads SNOWFLAKE_HOME when it is imported: a fresh interpreter.
    code = (
        "import sys; from connector.config import load_config; "
        "from connector.sources import open_reader\n"
        "with open_reader(load_config(sys.argv[1])) as r: print(r.read_all().to_pylist())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(sync)],
        env={**os.environ, "SNOWFLAKE_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[{'n': 7}]"


def test_unknown_sqlalchemy_driver_module(tmp_path: Path) -> None:
    import importlib.util

    drivers = [
        ("mysql+pymysql", "pymysql"),
        ("mssql+pymssql", "pymssql"),
        ("oracle+oracledb", "oracledb"),
    ]
    missing = [(d, m) for d, m in drivers if importlib.util.find_spec(m) is None]
    if not missing:
        pytest.fail("every candidate driver is installed; add one that is not")
    driver, module = missing[0]
    url = f"{driver}://user:hunter2-secret@127.0.0.1/db"
    config = make_config(tmp_path, {"type": "sqlalchemy", "url": url, "query": "SELECT 1"})
    with pytest.raises(ConfigError) as caught:
        read(config)
    message = assert_one_line_error(caught.value, "hunter2-secret")
    assert f"'{module}' is not installed" in message


def test_missing_postgres_extra_names_the_pip_line(tmp_path: Path) -> None:
    """A real environment without psycopg: site-packages minus psycopg, in a fresh interpreter."""
    import sqlalchemy

    site = Path(sqlalchemy.__file__).resolve().parents[1]
    view = tmp_path / "site-packages"
    view.mkdir()
    for entry in site.iterdir():
        # .pth files are skipped too: the project itself comes from PYTHONPATH.
        if not entry.name.lower().startswith("psycopg") and entry.suffix != ".pth":
            (view / entry.name).symlink_to(entry)
    text = yaml.safe_dump(
        {
            "name": SYNC,
            "source": {
                "type": "sqlalchemy",
                "url": "postgresql+psycopg://analyst:hunter2-secret@127.0.0.1/test",
                "query": "SELECT 1",
            },
            "identity": {"column": "id"},
            "attributes": {"attr": "s"},
            "target": {"client_code": "demo"},
        }
    )
    code = textwrap.dedent(
        """
        import importlib.util, sys
        from pathlib import Path
        assert importlib.util.find_spec("psycopg") is None, "psycopg is still importable"
        from connector.config import parse_config
        from connector.errors import MissingExtraError
        from connector.sources import open_reader
        config = parse_config(sys.stdin.read(), Path("sync.yaml"), {})
        try:
            with open_reader(config):
                pass
        except MissingExtraError as exc:
            print(exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", code],
        input=text,
        env={"PYTHONPATH": f"{view}{os.pathsep}{REPO}", "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    message = result.stdout.strip()
    assert "pip install 'target-sync[postgres]'" in message
    assert "'psycopg'" in message and f"sync '{SYNC}'" in message
    assert "hunter2-secret" not in message
    assert issubclass(MissingExtraError, ConfigError)


# --- dbt -----------------------------------------------------------------------------------


def write_dbt_project(root: Path, profile_output: dict[str, Any], models: dict[str, str]) -> Path:
    """A dbt project (dbt_project.yml, profiles.yml, models) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "dbt_project.yml").write_text(
        yaml.safe_dump(
            {
                "name": "ts_demo",
                "version": "1.0",
                "config-version": 2,
                "profile": "ts_demo",
                "flags": {"send_anonymous_usage_stats": False},
            }
        )
    )
    (root / "profiles.yml").write_text(
        yaml.safe_dump({"ts_demo": {"target": "dev", "outputs": {"dev": profile_output}}})
    )
    (root / "models").mkdir(exist_ok=True)
    for name, sql in models.items():
        (root / "models" / f"{name}.sql").write_text(sql)
    return root


def write_manifest(project: Path, relations: dict[str, str]) -> None:
    """A manifest.json with just what a model lookup reads (dbt writes many more keys)."""
    nodes = {
        f"model.ts_demo.{name}": {
            "unique_id": f"model.ts_demo.{name}",
            "resource_type": "model",
            "name": name,
            "package_name": "ts_demo",
            "relation_name": relation,
            "config": {"materialized": "table"},
        }
        for name, relation in relations.items()
    }
    (project / "target").mkdir(exist_ok=True)
    (project / "target" / "manifest.json").write_text(json.dumps({"nodes": nodes}))


VIP_SQL = """
select 1 as customer_id, 'gold' as tier, 12.5 as ltv, 'Zürich, CH' as city
union all select 2, 'silver', null, 'a&b=c+d'
union all select 3, null, 0.25, null
"""


@pytest.fixture(scope="module")
def dbt_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dbt-duckdb project built once with the real dbt CLI."""
    root = tmp_path_factory.mktemp("dbt") / "project"
    write_dbt_project(
        root,
        {
            "type": "duckdb",
            "path": "{{ env_var('TS_DBT_DUCKDB_PATH') }}",
            "threads": "{{ env_var('TS_DBT_THREADS', '1') | int }}",
        },
        {"vip_customers": VIP_SQL, "lapsed_customers": "select 9 as customer_id"},
    )
    dbt = Path(sys.executable).parent / "dbt"
    env = {
        **os.environ,
        "TS_DBT_DUCKDB_PATH": str(root / "warehouse.duckdb"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    result = subprocess.run(
        [str(dbt), "build", "--project-dir", str(root), "--profiles-dir", str(root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return root


@pytest.mark.slow
def test_dbt_model_rows(tmp_path: Path, dbt_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TS_DBT_DUCKDB_PATH", str(dbt_project / "warehouse.duckdb"))
    monkeypatch.setenv("DBT_PROFILES_DIR", str(dbt_project))
    source = {"type": "dbt", "project_dir": str(dbt_project), "model": "vip_customers"}
    table, _ = read(make_config(tmp_path, source))
    assert table.sort_by("customer_id").to_pylist() == [
        {"customer_id": 1, "tier": "gold", "ltv": Decimal("12.50"), "city": "Zürich, CH"},
        {"customer_id": 2, "tier": "silver", "ltv": None, "city": "a&b=c+d"},
        {"customer_id": 3, "tier": None, "ltv": Decimal("0.25"), "city": None},
    ]
    narrow = make_config(tmp_path, {**source, "columns": ["city", "customer_id"]})
    assert probe_schema(narrow).names == ["city", "customer_id"]


@pytest.mark.slow
def test_dbt_missing_model_lists_close_names(
    tmp_path: Path, dbt_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TS_DBT_DUCKDB_PATH", str(dbt_project / "warehouse.duckdb"))
    source = {
        "type": "dbt",
        "project_dir": str(dbt_project),
        "profiles_dir": str(dbt_project),
        "model": "vip_customer",
    }
    with pytest.raises(ConfigError) as caught:
        read(make_config(tmp_path, source))
    message = assert_one_line_error(caught.value)
    assert "'vip_customer'" in message and "vip_customers" in message


@pytest.mark.slow
def test_dbt_missing_env_var(
    tmp_path: Path, dbt_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TS_DBT_DUCKDB_PATH", raising=False)
    monkeypatch.setenv("DBT_PROFILES_DIR", str(dbt_project))
    source = {"type": "dbt", "project_dir": str(dbt_project), "model": "vip_customers"}
    with pytest.raises(ConfigError) as caught:
        read(make_config(tmp_path, source))
    assert "TS_DBT_DUCKDB_PATH" in assert_one_line_error(caught.value)


def dbt_source(project: Path, model: str, **keys: Any) -> dict[str, Any]:
    """A dbt source reading ``model`` of ``project``, whose profiles.yml is in the project."""
    return {
        "type": "dbt",
        "project_dir": str(project),
        "profiles_dir": str(project),
        "model": model,
        **keys,
    }


def test_dbt_missing_manifest(tmp_path: Path) -> None:
    project = write_dbt_project(
        tmp_path / "project", {"type": "duckdb", "path": "wh.duckdb"}, {"m": "select 1 as id"}
    )
    with pytest.raises(ConfigError) as caught:
        read(make_config(tmp_path, dbt_source(project, "m")))
    message = assert_one_line_error(caught.value)
    assert "manifest.json" in message and "dbt compile" in message and "dbt build" in message


def test_dbt_unsupported_adapter(tmp_path: Path) -> None:
    project = write_dbt_project(
        tmp_path / "project", {"type": "bigquery", "method": "oauth"}, {"m": "select 1 as id"}
    )
    write_manifest(project, {"m": "`proj`.`ds`.`m`"})
    with pytest.raises(ConfigError) as caught:
        read(make_config(tmp_path, dbt_source(project, "m")))
    assert "'bigquery'" in assert_one_line_error(caught.value)


def test_dbt_postgres_profile(
    tmp_path: Path, pg: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, schema = pg
    with postgres_connect() as conn:
        conn.execute(f"CREATE TABLE {schema}.vip AS SELECT 1::bigint AS id, 'x%y' AS s")
        user = conn.info.user
    monkeypatch.setenv("TS_PG_USER", user)
    project = write_dbt_project(
        tmp_path / "project",
        {
            "type": "postgres",
            "host": "127.0.0.1",
            "port": "{{ env_var('TS_PG_PORT', '5432') | int }}",
            "user": "{{ env_var('TS_PG_USER') }}",
            "password": "{{ env_var('TS_PG_PASSWORD', 'unused-secret') }}",
            "dbname": "test",
            "schema": schema,
        },
        {"vip": "select 1"},
    )
    write_manifest(project, {"vip": f'"test"."{schema}"."vip"'})
    config = make_config(tmp_path, dbt_source(project, "vip"))
    resolved = resolve(config)
    assert resolved.source.type == "sqlalchemy"
    table, _ = read(config)
    assert table.to_pylist() == [{"id": 1, "s": "x%y"}]


def test_dbt_snowflake_profile(tmp_path: Path, snow: Snow, monkeypatch: pytest.MonkeyPatch) -> None:
    snow.cursor.execute("CREATE TABLE vip AS SELECT 5 AS id")
    monkeypatch.setenv("TS_SF_PASSWORD", "snow")
    project = write_dbt_project(
        tmp_path / "project",
        {
            "type": "snowflake",
            "account": "fakesnow",
            "user": "fake",
            "password": "{{ env_var('TS_SF_PASSWORD') }}",
            "database": snow.database,
            "schema": "PUBLIC",
            "warehouse": "wh",
            "host": "127.0.0.1",
            "port": snow.kwargs["port"],
            "protocol": "http",
        },
        {"vip": "select 5 as id"},
    )
    write_manifest(project, {"vip": f"{snow.database}.PUBLIC.VIP"})
    source = dbt_source(project, "vip", columns=["id"])
    table, _ = read(make_config(tmp_path, source))
    assert table.to_pylist() == [{"ID": 5}]
