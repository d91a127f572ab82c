"""PostgreSQL read through ADBC (binary COPY into Arrow) gives exactly what psycopg gives.

Every comparison reads one query twice from the real PostgreSQL on loopback, once with
``reader: sqlalchemy`` (psycopg) and once with ``reader: adbc``, and compares the Arrow
(types and values) and then the bytes a dry run would send to Target.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import connector
from connector.config import SyncConfig
from connector.errors import ConfigError, SourceError

from .servers import postgres_dsn, postgres_schema
from .test_sources import assert_one_line_error, make_config, read


@pytest.fixture
def pg() -> Iterator[tuple[str, str]]:
    """(SQLAlchemy URL, a schema of this test's own)."""
    with postgres_schema() as schema:
        yield postgres_dsn(), schema


# Values at every edge the two readers could disagree on: numerics of every scale and the
# special ones, the infinities and the far ends of dates and timestamps (ADBC's epoch shift
# overflows there), -0.0 and NaN, float4's rounding, uuids, padded chars, json as written.
EDGES = """
SELECT * FROM (VALUES
 (1, 1::int2, 1::int4, 1::int8, 1.50::numeric, 12.5::numeric(10,2), 1e40::numeric(50,2),
  0.1::float4, 0.1::float8, true, 'plain'::text, 'x'::char(3), 'nm'::name, 'c'::"char",
  '{"b": 2,  "a": 1}'::json, '{"b": 2, "a": 1}'::jsonb,
  '6ecd8c99-4036-403d-bf84-cf8400f67836'::uuid, '\\x00ff'::bytea, '12:34:56.789'::time,
  '2024-02-29'::date, '2024-02-29 12:00:00.000001'::timestamp,
  '2024-02-29 12:00:00+05:30'::timestamptz, ARRAY[1, NULL, 3]::int4[], ARRAY['a,b', NULL]::text[],
  ARRAY[true, NULL]::bool[], ARRAY[1.5, NULL]::float8[]),
 (2, '-32768'::int2, '-2147483648'::int4, '-9223372036854775808'::int8, 'NaN'::numeric,
  -0.01::numeric(10,2), NULL::numeric(50,2), 'NaN'::float4, '-0'::float8, false, ''::text,
  ''::char(3), ''::name, NULL::"char", 'null'::json, '[]'::jsonb, NULL::uuid, ''::bytea,
  '00:00'::time, 'infinity'::date, 'infinity'::timestamp, 'infinity'::timestamptz,
  ARRAY[]::int4[], ARRAY[]::text[], NULL::bool[], ARRAY['NaN', '-Infinity']::float8[]),
 (3, 32767::int2, 2147483647::int4, 9223372036854775807::int8, 'Infinity'::numeric,
  99999999.99::numeric(10,2), -1e-2::numeric(50,2), 3.4e38::float4, 'Infinity'::float8, NULL,
  'ünïcödé 😀 "q" %s'::text, 'abc'::char(3), NULL::name, 'z'::"char", NULL::json, NULL::jsonb,
  '00000000-0000-0000-0000-000000000000'::uuid, NULL::bytea, NULL::time,
  '-infinity'::date, '-infinity'::timestamp, '-infinity'::timestamptz, NULL::int4[],
  ARRAY[NULL]::text[], ARRAY[false]::bool[], NULL::float8[]),
 (4, NULL::int2, NULL::int4, NULL::int8, '-Infinity'::numeric, 0.00::numeric(10,2),
  0::numeric(50,2), -0.0::float4, 5e-324::float8, true, NULL::text, NULL::char(3), 'n'::name,
  'a'::"char", '{}'::json, '{"deep": {"x": [1, 2.50]}}'::jsonb,
  'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid, '\\x'::bytea, '23:59:59.999999'::time,
  '4713-01-01 BC'::date, '4713-01-01 00:00:00 BC'::timestamp,
  '0044-03-15 12:00:00+00 BC'::timestamptz, ARRAY[-1]::int4[], ARRAY['']::text[],
  ARRAY[]::bool[], ARRAY[-0.0]::float8[]),
 (5, 0::int2, 0::int4, 0::int8, 0.00::numeric, NULL::numeric(10,2), 123.45::numeric(50,2),
  NULL::float4, NULL::float8, false, 'back\\slash', 'q'::char(3), 'x'::name, 'b'::"char",
  '"text"'::json, 'true'::jsonb, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, NULL::bytea,
  '00:00:00.000001'::time, '5874897-12-31'::date, '294276-12-31 23:59:59'::timestamp,
  '294276-12-31 23:59:59+00'::timestamptz, ARRAY[2147483647]::int4[], NULL::text[],
  ARRAY[true]::bool[], ARRAY[1e308]::float8[]),
 (6, 1::int2, 1::int4, 1::int8, 100.00::numeric, 1::numeric(10,2), 1::numeric(50,2),
  1::float4, 1::float8, true, 'x', 'x'::char(3), 'x'::name, 'x'::"char", '1'::json,
  '1'::jsonb, gen_random_uuid(), '\\xdeadbeef'::bytea, '12:00'::time, '1970-01-01'::date,
  '1970-01-01 00:00:00'::timestamp, '1969-12-31 23:59:59.999999+00'::timestamptz,
  ARRAY[0]::int4[], ARRAY['z']::text[], ARRAY[NULL]::bool[], ARRAY[0.5]::float8[]),
 (7, 2::int2, 2::int4, 2::int8, 0.0000001::numeric, 5.10::numeric(10,2), 5.1::numeric(50,2),
  1.17549435e-38::float4, 2.2250738585072014e-308::float8, NULL, 'y', 'y'::char(3), 'y'::name,
  'y'::"char", '[1,2]'::json, '[1, 2]'::jsonb, NULL::uuid, NULL::bytea, '08:00'::time,
  '9999-12-31'::date, '294247-01-10 04:00:54.775806'::timestamp,
  '294247-01-10 04:00:54.775807+00'::timestamptz, ARRAY[1, 2]::int4[], ARRAY['a', 'b']::text[],
  ARRAY[true, false]::bool[], ARRAY[]::float8[])
) AS t(id, i16, i32, i64, free_num, money2, wide, f4, f8, flag, txt, padded, nm, ch, js, jsb,
       uid, bin, t, d, ts, tstz, ints, texts, bools, floats)
ORDER BY id
"""


def config_for(tmp_path: Path, url: str, query: str, reader: str, **extra: Any) -> SyncConfig:
    return make_config(
        tmp_path, {"type": "sqlalchemy", "url": url, "query": query, "reader": reader, **extra}
    )


def both(tmp_path: Path, url: str, query: str, **extra: Any) -> tuple[pa.Table, pa.Table]:
    psycopg_table, _ = read(config_for(tmp_path, url, query, "sqlalchemy", **extra))
    adbc_table, _ = read(config_for(tmp_path, url, query, "adbc", **extra))
    return psycopg_table, adbc_table


def comparable(array: pa.Array) -> pa.Array:
    """``array`` as something ``equals`` compares exactly: floats as their bits, so -0.0
    differs from 0.0 (their texts do) and every NaN is one value (its text is one)."""
    if pa.types.is_list(array.type):
        values = comparable(array.values)
        return pa.ListArray.from_arrays(array.offsets, values, mask=array.is_null())
    if pa.types.is_floating(array.type):
        bits = pa.int32() if array.type == pa.float32() else pa.int64()
        nan = pc.fill_null(pc.is_nan(array), False)
        return pc.if_else(nan, pa.scalar(0, bits), array.view(bits))
    return array


def assert_same_arrow(psycopg_table: pa.Table, adbc_table: pa.Table) -> None:
    assert adbc_table.schema == psycopg_table.schema
    for name in psycopg_table.column_names:
        # Compared as stored (not as Python objects): infinities and years Python cannot
        # hold are integers Python would refuse to convert.
        want = comparable(psycopg_table.column(name).combine_chunks())
        got = comparable(adbc_table.column(name).combine_chunks())
        assert got.equals(want), (name, got.to_string()[:800], want.to_string()[:800])


def test_every_type_adbc_reads_is_read_exactly_as_psycopg_reads_it(
    tmp_path: Path, pg: tuple[str, str]
) -> None:
    url, _ = pg
    query = EDGES.replace("gen_random_uuid()", "'9b2e4c1a-0000-4000-8000-00000000abcd'::uuid")
    psycopg_table, adbc_table = both(tmp_path, url, query)
    assert psycopg_table.num_rows == 7
    assert_same_arrow(psycopg_table, adbc_table)


def test_many_random_values_over_many_batches_read_the_same(
    tmp_path: Path, pg: tuple[str, str]
) -> None:
    url, schema = pg
    rng = random.Random(20261130)
    from tests.servers import postgres_connect

    with postgres_connect() as conn:
        conn.execute(
            f"CREATE TABLE {schema}.many (id int8, free_num numeric, dec numeric(18,6), "
            "uid uuid, d date, ts timestamptz, txt text)"
        )
        rows = []
        for i in range(30_000):
            scale = rng.randrange(0, 12)
            digits = rng.randrange(0, 10 ** rng.randrange(1, 20))
            free = f"{'-' if rng.random() < 0.3 else ''}{digits}e-{scale}"
            null = rng.random() < 0.05
            rows.append(
                (
                    i,
                    None if null else free,
                    None if null else f"{rng.randrange(-(10**12), 10**12)}e-6",
                    None if null else f"{rng.getrandbits(128):032x}",
                    None if null else f"{rng.randrange(1, 9999):04d}-01-{rng.randrange(1, 29):02d}",
                    None if null else "2020-01-01 00:00:00+00",
                    None if null else "t" * rng.randrange(0, 40),
                )
            )
        with conn.cursor().copy(f"COPY {schema}.many FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.execute(
            f"UPDATE {schema}.many SET ts = ts + (id * interval '37 minutes 0.000013 seconds')"
        )
    query = f"SELECT * FROM {schema}.many ORDER BY id"
    psycopg_table, adbc_table = both(tmp_path, url, query, batch_size=4_000)
    assert psycopg_table.num_rows == 30_000
    assert_same_arrow(psycopg_table, adbc_table)
    _, batches = read(config_for(tmp_path, url, query, "adbc", batch_size=4_000))
    assert [b.num_rows for b in batches] == [4_000] * 7 + [2_000]


def test_a_dry_run_writes_the_same_bytes_whichever_reader(
    tmp_path: Path, pg: tuple[str, str]
) -> None:
    url, _ = pg
    query = EDGES.replace("gen_random_uuid()", "'9b2e4c1a-0000-4000-8000-00000000abcd'::uuid")
    columns = [c for c in ("i16", "i32", "i64", "free_num", "money2", "wide", "f4", "f8",
                           "flag", "txt", "padded", "nm", "ch", "js", "jsb", "uid", "t", "d",
                           "ts", "tstz")]  # fmt: skip
    written = {}
    for reader in ("sqlalchemy", "adbc"):
        import yaml

        from connector.config import load_config

        path = tmp_path / f"{reader}.yaml"
        path.write_text(
            yaml.safe_dump(
                {
                    "name": f"edges_{reader}",
                    "source": {"type": "sqlalchemy", "url": url, "query": query, "reader": reader},
                    "identity": {"column": "id"},
                    "attributes": {c: c for c in columns},
                    "target": {"client_code": "demo"},
                    "state": {"path": str(tmp_path / f"{reader}.duckdb")},
                }
            )
        )
        out = tmp_path / f"out_{reader}"
        result = connector.sync(load_config(path), dry_run=True, out_dir=out)
        assert result.batch_files, result.message
        written[reader] = (
            {name: count for name, count in result.rejected.items()},
            [Path(f).read_bytes() for f in result.batch_files],
        )
    assert written["adbc"] == written["sqlalchemy"]
    # The infinities and the timestamps past DuckDB's range are rejected, not sent.
    assert written["adbc"][0].get("value_out_of_range", 0) >= 3


def test_a_type_adbc_does_not_read_exactly_goes_through_psycopg(
    tmp_path: Path, pg: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    url, _ = pg
    query = "SELECT 1 AS id, interval '1 day' AS s, ARRAY[1.5]::numeric[] AS decs"
    with caplog.at_level(logging.INFO):
        table, _ = read(config_for(tmp_path, url, query, "auto"))
    assert table.column("s").to_pylist() == [dt.timedelta(days=1)]
    assert any("through psycopg: column 's' is interval" in r.message for r in caplog.records)
    with pytest.raises(ConfigError) as caught:
        read(config_for(tmp_path, url, query, "adbc"))
    message = assert_one_line_error(caught.value)
    assert "column 's' is interval" in message and "source.reader" in message


def test_auto_reads_postgres_through_adbc(
    tmp_path: Path, pg: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    url, _ = pg
    with caplog.at_level(logging.INFO):
        table, _ = read(config_for(tmp_path, url, "SELECT 1::int8 AS id, 'a' AS s", "auto"))
    assert table.to_pylist() == [{"id": 1, "s": "a"}]
    assert any("through ADBC" in r.message for r in caplog.records)


def test_adbc_names_only_postgres(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with pytest.raises(ConfigError) as caught:
        read(config_for(tmp_path, url, "SELECT 1 AS id, 'a' AS s", "adbc"))
    assert "reads PostgreSQL only" in assert_one_line_error(caught.value)


def test_adbc_errors_are_one_line_and_hide_the_password(
    tmp_path: Path, pg: tuple[str, str]
) -> None:
    url, schema = pg
    with pytest.raises(SourceError) as caught:
        read(config_for(tmp_path, url, f"SELECT * FROM {schema}.missing", "adbc"))
    message = assert_one_line_error(caught.value)
    assert "the query on" in message and "missing" in message and "nothing was sent" in message

    from tests.servers import closed_port

    secret = "hunter2-secret"
    dead = f"postgresql+psycopg://someone:{secret}@127.0.0.1:{closed_port()}/test"
    with pytest.raises(SourceError) as caught:
        read(config_for(tmp_path, dead, "SELECT 1 AS id, 'a' AS s", "adbc"))
    message = assert_one_line_error(caught.value, secret)
    assert "cannot connect" in message and "nothing was read" in message

    # A failure in the middle of the query.
    query = "SELECT i AS id, 1 / (i - 150000) AS s FROM generate_series(1, 200000) AS i"
    with pytest.raises(SourceError) as caught:
        read(config_for(tmp_path, url, query, "adbc"))
    assert "division by zero" in assert_one_line_error(caught.value)


def test_without_the_adbc_driver_auto_reads_through_psycopg_and_adbc_names_the_extra(
    tmp_path: Path,
    pg: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import sys

    from connector.errors import MissingExtraError

    url, _ = pg
    # As if adbc-driver-postgresql were not installed: importing it fails.
    monkeypatch.setitem(sys.modules, "adbc_driver_postgresql", None)
    monkeypatch.setitem(sys.modules, "adbc_driver_postgresql.dbapi", None)
    with caplog.at_level(logging.INFO):
        table, _ = read(config_for(tmp_path, url, "SELECT 1::int8 AS id, 'a' AS s", "auto"))
    assert table.to_pylist() == [{"id": 1, "s": "a"}]
    assert any("adbc-driver-postgresql is not installed" in r.message for r in caplog.records)
    with pytest.raises(MissingExtraError) as caught:
        read(config_for(tmp_path, url, "SELECT 1::int8 AS id, 'a' AS s", "adbc"))
    message = assert_one_line_error(caught.value)
    assert "target-sync[postgres]" in message
