"""End-to-end acceptance of the warehouse sources (issue #5): the same 10,000 rows in DuckDB,
PostgreSQL and (fake) Snowflake, and a dbt model, synced through the whole path to the
Target emulator; ``validate`` and source errors through the real CLI.

The library-level behaviour of each engine is in tests/test_sources.py; here the question is
what users see: the same bytes on the wire whichever engine holds the data, no resend when a
sync moves between engines, and one clear line when the warehouse fails.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import duckdb
import pyarrow as pa
import pytest
import yaml

import connector
from connector.emulator import Emulator
from connector.errors import ConfigError, SourceError

from .conftest import ConfigWriter, run_cli
from .servers import (
    closed_port,
    fakesnow_server,
    postgres_connect,
    postgres_dsn,
    postgres_schema,
    snowflake_literal,
    snowflake_refusing_login,
)

ROWS = 10_000
UTC = dt.UTC

# (column, DuckDB, PostgreSQL, Snowflake, Arrow type from DuckDB/PostgreSQL, from Snowflake)
COLUMNS = [
    ("id", "BIGINT", "bigint", "NUMBER(18,0)", "int64", "int64"),
    ("name", "VARCHAR", "text", "VARCHAR", "string", "string"),
    ("visits", "INTEGER", "integer", "NUMBER(10,0)", "int32", "int64"),
    ("amount", "DECIMAL(12,2)", "numeric(12,2)", "NUMBER(12,2)", "decimal128(12, 2)", None),
    ("score", "DOUBLE", "double precision", "FLOAT", "double", "double"),
    ("active", "BOOLEAN", "boolean", "BOOLEAN", "bool", "bool"),
    ("born", "DATE", "date", "DATE", "date32[day]", "date32[day]"),
    ("seen_at", "TIMESTAMP", "timestamp", "TIMESTAMP_NTZ", "timestamp[us]", "timestamp[us]"),
    ("seen_at_tz", "TIMESTAMPTZ", "timestamptz", "TIMESTAMP_TZ", None, "timestamp[us, tz=UTC]"),
]
NAMES = [c[0] for c in COLUMNS]
# Target attribute: source column (every column but the id).
ATTRIBUTES = {
    "customerName": "name",
    "visits": "visits",
    "amount": "amount",
    "score": "score",
    "active": "active",
    "born": "born",
    "seenAt": "seen_at",
    "seenAtTz": "seen_at_tz",
}
RULES = {
    "name": "text as is",
    "visits": "integer digits",
    "amount": "decimal, exact, trailing zeros trimmed",
    "score": "shortest round-trip float",
    "active": "true/false",
    "born": "YYYY-MM-DD",
    "seen_at": "ISO 8601 timestamp",
    "seen_at_tz": "ISO 8601 timestamp in UTC with Z",
}
TEXTS = [
    "Smith, John",
    "  two  spaces  ",
    "100% sure",
    "Tom & Jerry",
    "a+b=c/d?e#f",
    "Zürich – São Paulo 東京 😀",
    "quote \" and ' end",
    "tab\tnew\nline",
    "~-_.!*()",
]
FLOATS = [math.nan, math.inf, -math.inf, -0.0, 5e-324, 1e300, 0.1]


def dataset() -> list[tuple[Any, ...]]:
    """10,000 deterministic rows: awkward text, NULLs, NaN, infinities, microseconds.

    Timestamps are never NULL: fakesnow 0.12.1 sends a NULL timestamp as the epoch.
    """
    start = dt.datetime(2021, 3, 4, 5, 6, 7)
    rows = []
    for i in range(ROWS):
        micros = 0 if i % 5 == 0 else (i * 7919) % 1_000_000
        rows.append(
            (
                i + 1,
                None if i % 11 == 0 else "" if i % 97 == 5 else f"{TEXTS[i % len(TEXTS)]} #{i}",
                None if i % 13 == 0 else (i * 7919) % 100_000 - 50_000,
                None if i % 17 == 0 else Decimal((i * 104_729) % 10**10 - 5 * 10**9).scaleb(-2),
                None if i % 19 == 0 else FLOATS[i % 7] if i % 29 == 0 else i * 0.1 - 333.3,
                None if i % 7 == 0 else i % 2 == 0,
                None if i % 23 == 0 else dt.date(1950, 1, 1) + dt.timedelta(days=i * 3),
                start + dt.timedelta(seconds=i * 97, microseconds=micros),
                (start + dt.timedelta(minutes=i * 13, microseconds=micros // 7)).replace(
                    tzinfo=UTC
                ),
            )
        )
    return rows


# --- the expected bytes, written independently of connector/serialize.py ---------------------


def text(value: Any) -> str:
    """The text Target must receive for one value (design: Serialization)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, Decimal):
        digits = format(value, "f")
        if "." in digits:
            digits = digits.rstrip("0").rstrip(".")
        return "0" if digits in ("-0", "") else digits
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return "0.0" if value == 0 else repr(value)
    if isinstance(value, dt.datetime):
        zone = value.tzinfo is not None
        if zone:
            value = value.astimezone(UTC).replace(tzinfo=None)
        fraction = f".{value.microsecond:06d}" if value.microsecond else ""
        return value.strftime("%Y-%m-%dT%H:%M:%S") + fraction + ("Z" if zone else "")
    if isinstance(value, dt.date):
        return value.isoformat()
    raise AssertionError(f"no expected text for {value!r}")


def encode(value: str) -> str:
    return quote(value, safe="-_.~")


def expected_batch(rows: Sequence[Sequence[Any]]) -> bytes:
    """The one batch file a first sync of ``rows`` writes (rows in id order)."""
    header = ",".join(["thirdPartyId", *ATTRIBUTES])
    lines = [",".join([encode(text(row[0])), *(encode(text(v)) for v in row[1:])]) for row in rows]
    return ("batch=" + header + "\n" + "".join(line + "\n" for line in lines)).encode()


def expected_profiles(rows: Sequence[Sequence[Any]]) -> dict[str, dict[str, str]]:
    """What Target holds after the rows were sent: empty cells are ignored."""
    return {
        text(row[0]): {
            name: text(v) for name, v in zip(ATTRIBUTES, row[1:], strict=True) if text(v) != ""
        }
        for row in rows
    }


# --- the three warehouses, loaded once per module (per xdist worker) --------------------------


@pytest.fixture(scope="module")
def rows() -> list[tuple[Any, ...]]:
    return dataset()


@pytest.fixture(scope="module")
def duck_source(tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[Any, ...]]) -> dict:
    path = tmp_path_factory.mktemp("duck") / "warehouse.duckdb"
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("name", pa.string()),
            ("visits", pa.int32()),
            ("amount", pa.decimal128(12, 2)),
            ("score", pa.float64()),
            ("active", pa.bool_()),
            ("born", pa.date32()),
            ("seen_at", pa.timestamp("us")),
            ("seen_at_tz", pa.timestamp("us", "UTC")),
        ]
    )
    table = pa.Table.from_pylist([dict(zip(NAMES, r, strict=True)) for r in rows], schema)
    with duckdb.connect(str(path)) as con:
        con.execute(f"CREATE TABLE dataset ({', '.join(f'{c[0]} {c[1]}' for c in COLUMNS)})")
        con.register("arrow_rows", table)
        con.execute("INSERT INTO dataset SELECT * FROM arrow_rows")
    return {"type": "duckdb", "database": str(path), "query": "SELECT * FROM dataset ORDER BY id"}


@pytest.fixture(scope="module")
def pg_source(rows: list[tuple[Any, ...]]) -> Iterator[dict]:
    url = postgres_dsn()
    with postgres_schema() as schema:
        with postgres_connect() as conn:
            ddl = ", ".join(f"{c[0]} {c[2]}" for c in COLUMNS)
            conn.execute(f"CREATE TABLE {schema}.dataset ({ddl})")
            with conn.cursor().copy(f"COPY {schema}.dataset FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        # A LIKE with % checks that the query reaches the server as written.
        query = f"SELECT * FROM {schema}.dataset WHERE name IS NULL OR name LIKE '%' ORDER BY id"
        yield {"type": "sqlalchemy", "url": url, "query": query}


@pytest.fixture(scope="module")
def snow_server() -> Iterator[dict[str, Any]]:
    with fakesnow_server() as kwargs:
        yield kwargs


@pytest.fixture(scope="module")
def snow_source(snow_server: dict[str, Any], rows: list[tuple[Any, ...]]) -> Iterator[dict]:
    import snowflake.connector

    database = f"TS_E2E_{uuid.uuid4().hex[:10].upper()}"
    conn = snowflake.connector.connect(
        **snow_server, database=database, schema="PUBLIC", paramstyle="qmark"
    )
    try:
        cursor = conn.cursor()
        cursor.execute(f"CREATE TABLE dataset ({', '.join(f'{c[0]} {c[3]}' for c in COLUMNS)})")
        # One INSERT (fakesnow's executemany goes row by row at ~500 rows/s).
        records = [{n: snowflake_literal(v) for n, v in zip(NAMES, r, strict=True)} for r in rows]
        casts = ", ".join(f"value:{c[0]}::{c[3]}" for c in COLUMNS)
        cursor.execute(
            f"INSERT INTO dataset SELECT {casts} FROM TABLE(FLATTEN(INPUT => PARSE_JSON(?)))",
            (json.dumps(records),),
        )
    finally:
        conn.close()
    # Snowflake folds unquoted names to upper case: alias them back.
    columns = ", ".join(f'{n} AS "{n}"' for n in NAMES)
    yield {
        "type": "snowflake",
        "account": "fakesnow",
        "user": "fake",
        "password": "snow-pw-e2e",
        "host": "127.0.0.1",
        "port": snow_server["port"],
        "protocol": "http",
        "database": database,
        "schema": "PUBLIC",
        "query": f"SELECT {columns} FROM dataset ORDER BY id",
    }


def write_sync(
    write_config: ConfigWriter,
    tmp_path: Path,
    tag: str,
    source: dict[str, Any],
    emulator: Emulator | None = None,
    name: str = "e2e_customers",
    attributes: dict[str, Any] | None = None,
    state: Path | None = None,
) -> Path:
    """A config file ``tag.yaml`` reading ``source`` into a state file of its own."""
    return write_config(
        emulator=emulator,
        name=name,
        source=source,
        identity={"column": "id", "type": "thirdPartyId"},
        attributes=attributes or ATTRIBUTES,
        state={"path": str(state or tmp_path / f"state_{tag}" / "state.duckdb")},
        file_name=f"{tag}.yaml",
    )


def fingerprints(state: Path, name: str = "e2e_customers") -> list[tuple[str, int]]:
    with duckdb.connect(str(state), read_only=True) as con:
        rows = con.execute(f'SELECT id, fp FROM "snapshot__{name}" ORDER BY id').fetchall()
    return [(str(r[0]), int(r[1])) for r in rows]


# --- 1. the same bytes and fingerprints from every engine ---------------------------------


def test_dry_run_batches_are_byte_identical_across_engines(
    tmp_path: Path,
    write_config: ConfigWriter,
    rows: list[tuple[Any, ...]],
    duck_source: dict,
    pg_source: dict,
    snow_source: dict,
) -> None:
    sources = {"duckdb": duck_source, "postgres": pg_source, "snowflake": snow_source}
    files: dict[str, dict[str, bytes]] = {}
    for engine, source in sources.items():
        config = write_sync(write_config, tmp_path, engine, source)
        out = tmp_path / f"out_{engine}"
        result = connector.sync(config, dry_run=True, out_dir=out)
        assert (result.new, result.sent, result.rejected_total) == (ROWS, ROWS, 0), engine
        files[engine] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}

    # One batch (10,000 rows are far below the limits), exactly the independent reference.
    assert list(files["duckdb"]) == ["e2e_customers-0001.txt"]
    assert_same_bytes(files["duckdb"]["e2e_customers-0001.txt"], expected_batch(rows), "DuckDB")
    for engine in ("postgres", "snowflake"):
        assert files[engine].keys() == files["duckdb"].keys(), engine
        for file_name, data in files[engine].items():
            assert_same_bytes(data, files["duckdb"][file_name], f"{engine} {file_name}")


def assert_same_bytes(got: bytes, want: bytes, what: str) -> None:
    """``got == want``, failing with the first line that differs rather than megabytes."""
    if got == want:
        return
    got_lines, want_lines = got.split(b"\n"), want.split(b"\n")
    for number, (g, w) in enumerate(zip(got_lines, want_lines, strict=False)):
        if g != w:
            pytest.fail(f"{what}: line {number} is {g!r}, expected {w!r}")
    pytest.fail(f"{what}: {len(got_lines)} lines, expected {len(want_lines)}")


def test_real_syncs_leave_identical_fingerprints(
    tmp_path: Path,
    write_config: ConfigWriter,
    emulator: Emulator,
    rows: list[tuple[Any, ...]],
    duck_source: dict,
    pg_source: dict,
    snow_source: dict,
) -> None:
    sources = {"duckdb": duck_source, "postgres": pg_source, "snowflake": snow_source}
    prints = {}
    for engine, source in sources.items():
        state = tmp_path / f"state_{engine}" / "state.duckdb"
        config = write_sync(write_config, tmp_path, engine, source, emulator, state=state)
        uploads = len(emulator.uploads)
        result = connector.sync(config)
        assert (result.exit_code, result.sent, result.failed) == (0, ROWS, 0), engine
        assert len(emulator.uploads) > uploads, engine
        prints[engine] = fingerprints(state)

    assert len(prints["duckdb"]) == ROWS
    assert len({fp for _, fp in prints["duckdb"]}) > ROWS * 0.99  # real hashes, not constants
    assert prints["postgres"] == prints["duckdb"]
    assert prints["snowflake"] == prints["duckdb"]
    assert emulator.profiles() == expected_profiles(rows)


# --- 2. moving a sync between engines resends nothing -----------------------------------


def test_switching_the_source_engine_sends_nothing(
    tmp_path: Path,
    write_config: ConfigWriter,
    emulator: Emulator,
    duck_source: dict,
    pg_source: dict,
    snow_source: dict,
) -> None:
    config = write_sync(write_config, tmp_path, "moving", duck_source, emulator)
    first = connector.sync(config)
    assert (first.new, first.sent, first.exit_code) == (ROWS, ROWS, 0)

    for engine, source in (("postgres", pg_source), ("snowflake", snow_source)):
        document = yaml.safe_load(config.read_text())
        document["source"] = source  # only the source block changes
        config.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
        uploads = len(emulator.uploads)
        result = connector.sync(config)
        assert result.sent == 0, engine
        assert (result.unchanged, result.new, result.changed, result.removed) == (ROWS, 0, 0, 0)
        assert (result.batches, result.exit_code, result.full_resend_reason) == (0, 0, None)
        assert len(emulator.uploads) == uploads, f"{engine}: a batch was uploaded"


def test_a_migrated_snapshot_moves_between_engines_and_wider_types_sending_nothing(
    tmp_path: Path,
    write_config: ConfigWriter,
    emulator: Emulator,
    duck_source: dict,
    pg_source: dict,
    snow_source: dict,
) -> None:
    # Typed fingerprints (issue #16): a snapshot the text scheme wrote (DuckDB) is migrated
    # by a run from PostgreSQL, then read from Snowflake (integers as NUMBER: int64 instead
    # of int32) and from PostgreSQL again with every number widened (bigint, numeric(20,4),
    # 5.10 for 5.1): the same texts, the same fingerprints, nothing sent.
    from connector.config import load_config
    from connector.state.duckdb.store import FINGERPRINT_SCHEME, TEXT_SCHEME

    config = write_sync(write_config, tmp_path, "migrating", duck_source, emulator)
    assert connector.sync(config).sent == ROWS
    state = load_config(config).state.path
    cells = ", ".join(
        f"url_decode(split_part(cells, ',', {i}))" for i in range(1, len(ATTRIBUTES) + 1)
    )
    with duckdb.connect(str(state)) as con:  # as the text scheme left it
        con.execute(f'UPDATE "snapshot__e2e_customers" SET fp = hash({cells}, binding)')
        con.execute("UPDATE ts_syncs SET fingerprint_scheme = ?", [TEXT_SCHEME])
    table = pg_source["query"].split(" FROM ")[1].split()[0]
    widened = dict(
        pg_source,
        query=(
            "SELECT id, name, visits::bigint AS visits, amount::numeric(20,4) AS amount, "
            f"score, active, born, seen_at, seen_at_tz FROM {table} ORDER BY id"
        ),
    )
    for engine, source in (("postgres", pg_source), ("snowflake", snow_source), ("wide", widened)):
        document = yaml.safe_load(config.read_text())
        document["source"] = source
        config.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
        uploads = len(emulator.uploads)
        result = connector.sync(config)
        assert (result.sent, result.unchanged, result.changed) == (0, ROWS, 0), engine
        assert len(emulator.uploads) == uploads, f"{engine}: a batch was uploaded"
    with duckdb.connect(str(state), read_only=True) as con:
        assert con.execute("SELECT fingerprint_scheme FROM ts_syncs").fetchall() == [
            (FINGERPRINT_SCHEME,)
        ]


# --- 3. a dbt model, by name, end to end --------------------------------------------------

DBT_MODEL = """
select
    i as id,
    case when i % 9 = 0 then null else 'Kunde ' || i || ', Zürich & Co +' || (i % 4) end
        as name,
    i * 1.25 as ltv,
    i % 3 = 0 as vip,
    date '2024-02-29' + cast(i as integer) as since
from range(1, 1201) as t(i)
"""


@pytest.fixture(scope="module")
def dbt_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A dbt-duckdb project built with the real dbt CLI: (project dir, its DuckDB file).

    profiles.yml sits in the project and reads the database path from the environment.
    """
    root = tmp_path_factory.mktemp("dbt_e2e") / "shop"
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text(
        yaml.safe_dump(
            {"name": "shop", "version": "1.0", "config-version": 2, "profile": "shop_e2e"}
        )
    )
    output = {"type": "duckdb", "path": "{{ env_var('TS_E2E_DBT_PATH') }}", "threads": 1}
    (root / "profiles.yml").write_text(
        yaml.safe_dump({"shop_e2e": {"target": "dev", "outputs": {"dev": output}}})
    )
    (root / "models" / "loyal_customers.sql").write_text(
        "{{ config(materialized='table') }}\n" + DBT_MODEL
    )
    (root / "models" / "other_model.sql").write_text("select 1 as id")
    database = root / "shop.duckdb"
    env = {
        **os.environ,
        "TS_E2E_DBT_PATH": str(database),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    env.pop("DBT_PROFILES_DIR", None)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "build", "--project-dir", str(root)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    yield root, database


@pytest.mark.slow
def test_dbt_model_by_name_end_to_end(
    tmp_path: Path,
    write_config: ConfigWriter,
    emulator: Emulator,
    dbt_project: tuple[Path, Path],
) -> None:
    project, database = dbt_project
    with duckdb.connect(str(database), read_only=True) as con:
        model_rows = con.execute(
            "SELECT id, name, ltv, vip, since FROM loyal_customers ORDER BY id"
        ).fetchall()
    assert len(model_rows) == 1200 and isinstance(model_rows[0][2], Decimal)
    attributes = {"customerName": "name", "lifetimeValue": "ltv", "vip": "vip", "since": "since"}
    config = write_config(
        emulator=emulator,
        name="e2e_dbt",
        source={"type": "dbt", "project_dir": str(project), "model": "loyal_customers"},
        identity={"column": "id"},
        attributes=attributes,
        file_name="dbt.yaml",
    )
    # dbt finds profiles.yml in the working directory or DBT_PROFILES_DIR, as here.
    env = {"TS_E2E_DBT_PATH": str(database), "DBT_PROFILES_DIR": str(project)}
    cli = run_cli("sync", config, env=env)
    assert cli.returncode == 0, cli.stderr[-2000:]

    expected = {
        text(row[0]): {
            name: text(v) for name, v in zip(attributes, row[1:], strict=True) if text(v) != ""
        }
        for row in model_rows
    }
    assert emulator.profiles() == expected
    assert expected["10"] == {
        "customerName": "Kunde 10, Zürich & Co +2",
        "lifetimeValue": "12.5",
        "vip": "false",
        "since": "2024-03-10",
    }
    # The second run reads the same model: nothing to send.
    again = run_cli("sync", config, env=env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(emulator.uploads) == 1


# --- 4. validate ------------------------------------------------------------------------


# The fixture holding each engine's dataset source.
ENGINES = {"duckdb": "duck_source", "postgres": "pg_source", "snowflake": "snow_source"}


def expected_type(engine: str, column: tuple[str, ...]) -> str:
    if engine == "snowflake":
        return column[5] or "decimal128(12, 2)"
    if column[0] == "seen_at_tz":
        # DuckDB labels TIMESTAMPTZ with its session zone, which the source sets to UTC.
        return "timestamp[us, tz=UTC]"
    return column[4]


@pytest.mark.parametrize("engine", list(ENGINES))
def test_validate_reports_columns_types_rules_and_target(
    tmp_path: Path,
    write_config: ConfigWriter,
    emulator: Emulator,
    engine: str,
    request: pytest.FixtureRequest,
) -> None:
    source = dict(request.getfixturevalue(ENGINES[engine]))
    # A column that fails as soon as a row is read: validate must read none.
    boom = "SELECT CAST(name AS INTEGER) AS boom, "
    source["query"] = source["query"].replace("SELECT ", boom, 1)
    config = write_sync(write_config, tmp_path, engine, source, emulator)
    with pytest.raises(SourceError):  # the boom column does fail when rows are read
        connector.sync(config, dry_run=True)

    cli = run_cli("validate", config, "--json")
    assert cli.returncode == 0, cli.stderr[-2000:]
    report = json.loads(cli.stdout)
    assert report["sync"] == "e2e_customers"
    assert report["identity"] == {
        "column": "id",
        "type": "int64",
        "serialized_as": "integer digits",
        "as": "thirdPartyId",
    }
    by_column = {c[0]: c for c in COLUMNS}
    assert report["attributes"] == [
        {
            "attribute": attribute,
            "column": column,
            "type": expected_type(engine, by_column[column]),
            "serialized_as": RULES[column],
            "null": None,
        }
        for attribute, column in ATTRIBUTES.items()
    ]
    assert report["target"]["url"].startswith(emulator.base_url)
    assert report["target"]["status"].startswith("reachable"), report["target"]

    shown = run_cli("validate", config)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "sync 'e2e_customers': config and source OK" in shown.stdout
    assert "id: id (int64) as thirdPartyId, sent as integer digits" in shown.stdout
    assert (
        f"amount: amount ({expected_type(engine, by_column['amount'])}), "
        "sent as decimal, exact, trailing zeros trimmed" in shown.stdout
    )
    assert "seenAtTz: seen_at_tz (timestamp[us, tz=UTC]), sent as ISO 8601 timestamp in UTC" in (
        shown.stdout
    )
    assert "SELECT" not in shown.stdout and "CASE" not in shown.stdout  # no raw SQL

    missing = write_sync(
        write_config,
        tmp_path,
        f"{engine}_missing",
        source,
        emulator,
        attributes={**ATTRIBUTES, "tier": "no_such_column"},
    )
    failed = run_cli("validate", missing)
    assert failed.returncode == 2, failed.stderr[-2000:]
    error = failed.stderr.strip()
    assert "\n" not in error and "'no_such_column'" in error and "attributes.tier" in error


def test_validate_reports_an_unreachable_target(
    tmp_path: Path, write_config: ConfigWriter, duck_source: dict
) -> None:
    config = write_sync(write_config, tmp_path, "no_target", duck_source)  # port 9
    report = connector.validate(config)
    assert report["target"]["status"].startswith("unreachable"), report["target"]


def test_validate_rejects_an_id_that_cannot_be_an_id(
    tmp_path: Path, write_config: ConfigWriter, duck_source: dict
) -> None:
    config = write_config(
        source=duck_source, identity={"column": "score"}, attributes={"n": "name"}
    )
    with pytest.raises(ConfigError) as caught:
        connector.validate(config)
    assert "identity.column" in str(caught.value) and "not double" in str(caught.value)


# --- 5. source errors on the CLI: one line, named, no password ----------------------------


def _pg_wrong_login(tmp_path: Path) -> tuple[dict[str, Any], str, list[str]]:
    postgres_dsn()  # skip (fail in CI) without PostgreSQL
    password = f"pw-{uuid.uuid4().hex}"
    user = f"ts_nobody_{uuid.uuid4().hex[:8]}"
    url = f"postgresql+psycopg://{user}:{password}@127.0.0.1:5432/test"
    source = {"type": "sqlalchemy", "url": url, "query": "SELECT 1 AS id, 'a' AS s"}
    return source, password, [f"{user}:***@127.0.0.1:5432/test", "cannot connect"]


def _pg_unreachable(tmp_path: Path) -> tuple[dict[str, Any], str, list[str]]:
    password = f"pw-{uuid.uuid4().hex}"
    port = closed_port()
    url = f"postgresql+psycopg://someone:{password}@127.0.0.1:{port}/test?connect_timeout=3"
    source = {"type": "sqlalchemy", "url": url, "query": "SELECT 1 AS id, 'a' AS s"}
    return source, password, [f"someone:***@127.0.0.1:{port}/test", "cannot connect"]


@pytest.mark.parametrize("case", ["wrong_login", "unreachable", "missing_table", "mid_result"])
def test_postgres_errors_on_the_cli(
    tmp_path: Path, write_config: ConfigWriter, case: str, request: pytest.FixtureRequest
) -> None:
    if case == "wrong_login":
        source, password, named = _pg_wrong_login(tmp_path)
    elif case == "unreachable":
        source, password, named = _pg_unreachable(tmp_path)
    else:
        url = postgres_dsn()
        schema = request.getfixturevalue("pg_schema")
        password = f"pw-{uuid.uuid4().hex}"
        # Trust auth ignores the password; it must still never be shown.
        url = url.replace("@", f":{password}@", 1)
        where = url.replace(f":{password}@", ":***@")
        if case == "missing_table":
            query = f"SELECT * FROM {schema}.no_such_table"
            named = [where, "no_such_table"]
        else:
            # Planned fine, fails on the 4th row: while the stream is being staged.
            query = (
                "SELECT i AS id, CAST(CASE WHEN i > 3 THEN 'x' ELSE '1' END AS integer) AS s "
                "FROM generate_series(1, 10) AS i"
            )
            named = [where, 'invalid input syntax for type integer: "x"']
        source = {"type": "sqlalchemy", "url": url, "query": query}
    assert_cli_source_error(write_config, tmp_path, source, password, named)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    postgres_dsn()
    with postgres_schema() as schema:
        yield schema


@pytest.mark.parametrize("case", ["wrong_login", "unreachable", "missing_table", "value_too_big"])
def test_snowflake_errors_on_the_cli(
    tmp_path: Path, write_config: ConfigWriter, case: str, request: pytest.FixtureRequest
) -> None:
    password = f"pw-{uuid.uuid4().hex}"
    base = {
        "type": "snowflake",
        "account": "acme",
        "user": "analyst",
        "password": password,
        "host": "127.0.0.1",
        "protocol": "http",
        "login_timeout": 5,
        "query": "SELECT 1 AS id, 'a' AS s",
    }
    if case == "wrong_login":
        with snowflake_refusing_login() as port:
            named = [f"Snowflake account 'acme' at 127.0.0.1:{port}", "Incorrect username"]
            assert_cli_source_error(write_config, tmp_path, {**base, "port": port}, password, named)
        return
    if case == "unreachable":
        port = closed_port()
        named = [f"Snowflake account 'acme' at 127.0.0.1:{port}", "cannot connect"]
        assert_cli_source_error(write_config, tmp_path, {**base, "port": port}, password, named)
        return
    server = request.getfixturevalue("snow_server")
    source = {
        **base,
        "account": "fakesnow",
        "port": server["port"],
        "database": f"TS_E2E_{uuid.uuid4().hex[:8].upper()}",
        "schema": "PUBLIC",
    }
    if case == "missing_table":
        source["query"] = "SELECT * FROM no_such_table"
        named = ["Snowflake account 'fakesnow'", "NO_SUCH_TABLE"]
    else:
        # NUMBER(38,0) beyond int64: found while the result is being staged.
        source["query"] = 'SELECT 1 AS "id", 123456789012345678901234567890 AS "s"'
        named = ["column 's' does not fit int64", "cast it in the query"]
    assert_cli_source_error(write_config, tmp_path, source, password, named)


def assert_cli_source_error(
    write_config: ConfigWriter,
    tmp_path: Path,
    source: dict[str, Any],
    password: str,
    named: Sequence[str],
) -> None:
    """``target-sync sync`` fails with exit 1 and one error line naming the sync and
    everything in ``named`` (the source, the table...), without the password."""
    config = write_config(
        name="e2e_broken",
        source=source,
        identity={"column": "id"},
        attributes={"x": "s"},
        file_name="broken.yaml",
    )
    cli = run_cli("sync", config, timeout=120)
    assert cli.returncode == 1, (cli.returncode, cli.stderr[-2000:])
    assert password not in cli.stdout + cli.stderr
    errors = [line for line in cli.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, cli.stderr
    assert cli.stderr.rstrip("\n").endswith(errors[0]), "the error is not one line"
    error = errors[0]
    assert "sync 'e2e_broken'" in error, error
    for part in named:
        assert part.upper() in error.upper(), (part, error)
    assert "Traceback" not in cli.stderr
