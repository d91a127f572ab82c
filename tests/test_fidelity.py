"""Every row arrives exactly or is rejected with a reason (issue #4: data fidelity).

Values are checked against an independent Python statement of the serialization rules of
connector/serialize.py (``expected_text``), end to end: Arrow table → DuckDB warehouse → the
DuckDB source → staging → batches → the Target emulator over HTTP → its profiles.
"""

from __future__ import annotations

import base64
import json
import math
import tempfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import duckdb
import numpy as np
import pyarrow as pa
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import connector
from connector.config import parse_config
from connector.emulator import Emulator
from connector.mapping import staging_input, staging_sql
from connector.state.duckdb import DuckDBStore as StateStore

from .conftest import ConfigWriter, run_cli

MAX_VALUE = 256

# -- the rules, stated again independently ---------------------------------------------------


def civil_from_days(days: int) -> tuple[int, int, int]:
    """Proleptic Gregorian (year, month, day) of a day number (0 = 1970-01-01); astronomical
    years (0 = 1 BC). Howard Hinnant's algorithm."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def date_text(days: int) -> str:
    year, month, day = civil_from_days(days)
    if 0 <= year <= 9999:
        return f"{year:04d}-{month:02d}-{day:02d}"
    return f"{'-' if year < 0 else '+'}{abs(year):06d}-{month:02d}-{day:02d}"


UNITS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def clock_text(units: int, per_second: int) -> str:
    seconds, fraction = divmod(units, per_second)
    text = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    if fraction == 0:
        return text
    nanos = fraction * (1_000_000_000 // per_second)
    return text + (f".{nanos // 1000:06d}" if nanos % 1000 == 0 else f".{nanos:09d}")


def timestamp_text(value: int, unit: str, zone: bool) -> str:
    per_day = 86_400 * UNITS[unit]
    days, rest = divmod(value, per_day)
    return f"{date_text(days)}T{clock_text(rest, UNITS[unit])}" + ("Z" if zone else "")


def float_text(value: float, bits: int = 64) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0.0"
    if bits == 64:
        return repr(value)
    # The shortest digits that read back to the same 32-bit float, written like repr.
    return repr(float(np.format_float_scientific(np.float32(value), unique=True)))


def decimal_text(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def printf_float(pattern: str, value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if abs(value) >= 2**63 and pattern.endswith("f"):
        return float_text(value)  # DuckDB's printf gets those digits wrong
    if value <= 0 and pattern % -value == pattern % 0.0:
        value = 0.0
    return pattern % value


# -- hostile data ------------------------------------------------------------------------------

HOSTILE = [*',\n\r"%&+= ', "\t", "'", "/", "#", "?", "\\", "~", ";", "\x00", "\x7f"]
# Single code points that combine: flags, ZWJ families, accents, BOM, zero-width space.
EMOJI = [*"😀🇩🇪👩\u200d👧東京ãé\u0301\u200b\ufeff"]
chars = st.one_of(
    st.sampled_from(HOSTILE),
    st.sampled_from(EMOJI),
    st.characters(exclude_categories=("Cs",)),
)
hostile_text = st.text(chars, max_size=MAX_VALUE)
profile_id = st.text(chars, min_size=1, max_size=MAX_VALUE).filter(
    lambda s: "+" not in s and "/" not in s
)


def nullable(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


def ints(bits: int, signed: bool) -> st.SearchStrategy[int]:
    if signed:
        return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return st.integers(0, 2**bits - 1)


# Column name → (Arrow type, value strategy, how the value is written by default).
COLUMNS: dict[str, tuple[pa.DataType, st.SearchStrategy[Any], Callable[[Any], str]]] = {
    "s": (pa.string(), hostile_text, str),
    "i8": (pa.int8(), ints(8, True), str),
    "i16": (pa.int16(), ints(16, True), str),
    "i32": (pa.int32(), ints(32, True), str),
    "i64": (pa.int64(), ints(64, True), str),
    "u8": (pa.uint8(), ints(8, False), str),
    "u16": (pa.uint16(), ints(16, False), str),
    "u32": (pa.uint32(), ints(32, False), str),
    "u64": (pa.uint64(), ints(64, False), str),
    "dec": (
        pa.decimal128(18, 4),
        st.decimals(-(10**14) + 1, 10**14 - 1, places=4, allow_nan=False),
        decimal_text,
    ),
    "dec38": (
        pa.decimal128(38, 10),
        st.decimals(-(10**28) + 1, 10**28 - 1, places=10, allow_nan=False),
        decimal_text,
    ),
    "f32": (pa.float32(), st.floats(width=32), lambda v: float_text(v, 32)),
    "f64": (pa.float64(), st.floats(), float_text),
    "flag": (pa.bool_(), st.booleans(), lambda v: "true" if v else "false"),
    # Days from 1 BC back to ~700 BC and up past year 10000 are all in range.
    "day": (pa.date32(), st.integers(-1_000_000, 3_000_000), date_text),
    "ts_s": (
        pa.timestamp("s"),
        st.integers(-(10**12), 10**12),
        lambda v: timestamp_text(v, "s", False),
    ),
    "ts_ms": (
        pa.timestamp("ms"),
        st.integers(-(10**14), 10**14),
        lambda v: timestamp_text(v, "ms", False),
    ),
    "ts_us": (
        pa.timestamp("us"),
        st.integers(-(10**17), 10**17),
        lambda v: timestamp_text(v, "us", False),
    ),
    "ts_ns": (
        pa.timestamp("ns"),
        st.integers(-(9 * 10**18), 9 * 10**18),
        lambda v: timestamp_text(v, "ns", False),
    ),
    "ts_zone": (
        pa.timestamp("us", tz="America/New_York"),
        st.integers(-(10**17), 10**17),
        lambda v: timestamp_text(v, "us", True),
    ),
    # Formatted with a strftime pattern below: years 1000-9999, where %Y has four digits.
    "when": (
        pa.timestamp("us"),
        st.integers(-30_610_224_000 * 10**6, 253_402_300_799 * 10**6),
        lambda v: timestamp_text(v, "us", False),
    ),
    "t_us": (pa.time64("us"), st.integers(0, 86_400 * 10**6 - 1), lambda v: clock_text(v, 10**6)),
    "t_ns": (pa.time64("ns"), st.integers(0, 86_400 * 10**9 - 1), lambda v: clock_text(v, 10**9)),
    "blob": (pa.binary(), st.binary(max_size=100), lambda v: base64.b64encode(v).decode()),
    "nums": (pa.list_(pa.int64()), st.lists(nullable(ints(64, True)), max_size=8), json.dumps),
    "rec": (
        pa.struct([("a", pa.int32()), ("b", pa.string())]),
        st.fixed_dictionaries(
            {"a": nullable(ints(32, True)), "b": nullable(st.text("abc ,=é😀", max_size=15))}
        ),
        json.dumps,
    ),
}

STATIC = "static, = & + % 😀"
# Attribute name → spec, and how its expected text follows from the row (None: empty cell).
ATTRIBUTES: dict[str, Any] = {name: name for name in COLUMNS}
ATTRIBUTES.update(
    {
        "blob": {"column": "blob", "format": "base64"},
        "blobHex": {"column": "blob", "format": "hex"},
        "nums": {"column": "nums", "format": "json"},
        "rec": {"column": "rec", "format": "json"},
        "sOrNone": {"column": "s", "null": "none"},
        "money": {"column": "dec", "format": "%.2f"},
        "ratio": {"column": "f64", "format": "%.3f"},
        "dayOnly": {"column": "when", "format": "%Y/%m/%d"},
        "nothing": {"column": "nothing", "null": "n/a"},
        "static": {"value": STATIC},
    }
)
JSON_ATTRIBUTES = {"nums", "rec"}


def expected_texts(row: dict[str, Any]) -> dict[str, str | None]:
    """What each attribute of a row must arrive as (None: nothing, an empty cell)."""
    out: dict[str, str | None] = {}
    for name, (_, _, text) in COLUMNS.items():
        value = row[name]
        out[name] = None if value is None else text(value)
    blob = row["blob"]
    out["blobHex"] = None if blob is None else blob.hex()
    out["sOrNone"] = row["s"] if row["s"] else "none"
    dec = row["dec"]
    if dec is None:
        out["money"] = None
    else:
        # Exact, half away from zero, never "-0.00".
        money = dec.quantize(Decimal("0.01"), "ROUND_HALF_UP")
        out["money"] = format(abs(money) if money == 0 else money, "f")
    out["ratio"] = None if row["f64"] is None else printf_float("%.3f", row["f64"])
    when = row["when"]
    out["dayOnly"] = None if when is None else date_text(when // (86_400 * 10**6)).replace("-", "/")
    out["nothing"] = "n/a"
    out["static"] = STATIC
    return {k: (None if v == "" else v) for k, v in out.items()}


@st.composite
def tables(draw: st.DrawFn) -> tuple[pa.Table, list[dict[str, Any]]]:
    ids = draw(st.lists(profile_id, min_size=1, max_size=8, unique=True))
    rows = []
    for profile in ids:
        row: dict[str, Any] = {"customer_id": profile}
        for name, (_, strategy, _) in COLUMNS.items():
            row[name] = draw(nullable(strategy))
        rows.append(row)
    arrays = {"customer_id": pa.array([r["customer_id"] for r in rows], pa.string())}
    for name, (arrow_type, _, _) in COLUMNS.items():
        arrays[name] = pa.array([r[name] for r in rows], arrow_type)
    return pa.table(arrays), rows


def _config_text(
    folder: Path, emulator: Emulator, attributes: dict[str, Any], keep_values: bool = True
) -> str:
    config = {
        "name": "fidelity",
        "source": {
            "type": "duckdb",
            "database": str(folder / "warehouse.duckdb"),
            "query": "select *, NULL AS nothing from customers",
        },
        "identity": {"column": "customer_id"},
        "attributes": attributes,
        "target": {
            "client_code": "demo",
            "base_url": emulator.base_url,
            "status_poll_interval_seconds": 0.02,
            "status_deadline_seconds": 5,
            # Every example syncs twice against one emulator, and one process shares one
            # pace per Target: Target's 40 a minute would make the examples wait for it.
            "calls_per_minute": 100_000,
        },
        "state": {"path": str(folder / "state.duckdb"), "keep_values": keep_values},
    }
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=tables(), keep_values=st.booleans())
def test_every_type_arrives_exactly_and_a_second_sync_sends_nothing(
    emulator: Emulator, data: tuple[pa.Table, list[dict[str, Any]]], keep_values: bool
) -> None:
    table, rows = data
    emulator.reset()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with duckdb.connect(str(folder / "warehouse.duckdb")) as con:
            con.register("arrow_rows", table)
            con.execute("CREATE TABLE customers AS SELECT * FROM arrow_rows")
        path = folder / "sync.yaml"
        path.write_text(_config_text(folder, emulator, ATTRIBUTES, keep_values), encoding="utf-8")

        first = connector.sync(path)
        expected = {row["customer_id"]: expected_texts(row) for row in rows}
        too_long = {
            pid
            for pid, texts in expected.items()
            if any(len(t or "") > MAX_VALUE for t in texts.values())
        }
        assert first.rejected == ({"value_too_long": len(too_long)} if too_long else {})
        assert first.exit_code == (3 if too_long else 0)
        profiles = emulator.profiles()
        assert set(profiles) == set(expected) - too_long
        for pid, texts in expected.items():
            if pid in too_long:
                continue
            got = dict(profiles[pid])
            for name in JSON_ATTRIBUTES:
                assert (name in got) == (texts[name] is not None), name
                if name in got:
                    assert json.loads(got.pop(name)) == json.loads(texts[name] or ""), name
            want = {k: v for k, v in texts.items() if v is not None and k not in JSON_ATTRIBUTES}
            assert got == want, pid
        assert not any(upload.duplicate_ids for upload in emulator.uploads)

        uploads = emulator.upload_count
        second = connector.sync(path)
        assert (second.sent, second.batches, second.new, second.changed) == (0, 0, 0, 0)
        assert emulator.upload_count == uploads


# -- Arrow types no DuckDB table holds: straight into staging ----------------------------------


def _stage(folder: Path, table: pa.Table, attributes: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Stage ``table`` as a source result; return each id's decoded cells."""
    config = parse_config(
        yaml.safe_dump(
            {
                "name": "arrow",
                "source": {"type": "duckdb", "database": "unused.duckdb", "query": "select 1"},
                "identity": {"column": "id"},
                "attributes": attributes,
                "target": {"client_code": "demo"},
                "state": {"path": str(folder / "state.duckdb")},
            },
            sort_keys=False,
        ),
        folder / "arrow.yaml",
        {},
    )
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=7))
    with StateStore.open(config.state, config.name) as store:
        sql = staging_sql(config, table.schema)
        store.stage(staging_input(config, reader), sql)
        rows = store.con.execute(f"SELECT id, cells, reject FROM {store.tables.stage}").fetchall()
        store.drop_work_tables()
    names = list(attributes)
    out = {}
    for pid, cells, reject in rows:
        assert reject is None, (pid, reject)
        out[pid] = {n: unquote(c) for n, c in zip(names, cells.split(","), strict=True)}
    return out


ARROW_ONLY: dict[str, tuple[pa.DataType, st.SearchStrategy[Any], Callable[[Any], str]]] = {
    "half": (
        pa.float16(),
        st.floats(width=16),
        lambda v: float_text(float(np.float32(np.float16(v))), 32),
    ),
    "dec256": (
        pa.decimal256(60, 8),
        st.one_of(
            st.decimals(-(10**52) + 1, 10**52 - 1, places=8, allow_nan=False),
            st.decimals(-1, 1, places=8, allow_nan=False),  # Arrow writes these as 1.2E-7
        ),
        decimal_text,
    ),
    "negScale": (
        pa.decimal128(6, -3),
        st.integers(-999_999, 999_999).map(lambda n: Decimal(n).scaleb(3)),
        decimal_text,
    ),
    "dict": (pa.dictionary(pa.int8(), pa.string()), hostile_text, str),
    "large": (pa.large_string(), hostile_text, str),
    "view": (pa.string_view(), hostile_text, str),
    "day64": (pa.date64(), st.integers(-(10**14), 10**14), lambda v: date_text(v // 86_400_000)),
    "t_s": (pa.time32("s"), st.integers(0, 86_399), lambda v: clock_text(v, 1)),
    "t_ms": (pa.time32("ms"), st.integers(0, 86_399_999), lambda v: clock_text(v, 1000)),
    "zoned_s": (
        pa.timestamp("s", tz="Asia/Kolkata"),
        st.integers(-(10**12), 10**12),
        lambda v: timestamp_text(v, "s", True),
    ),
    "zoned_ms": (
        pa.timestamp("ms", tz="+05:45"),
        st.integers(-(10**14), 10**14),
        lambda v: timestamp_text(v, "ms", True),
    ),
    "zoned_ns": (
        pa.timestamp("ns", tz="UTC"),
        st.integers(-(9 * 10**18), 9 * 10**18),
        lambda v: timestamp_text(v, "ns", True),
    ),
}


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_arrow_types_duckdb_cannot_store_are_written_by_the_same_rules(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 12))
    values = {
        name: data.draw(st.lists(nullable(strategy), min_size=n, max_size=n))
        for name, (_, strategy, _) in ARROW_ONLY.items()
    }
    arrays: dict[str, pa.Array] = {"id": pa.array([f"r{i}" for i in range(n)])}
    for name, (arrow_type, _, _) in ARROW_ONLY.items():
        if pa.types.is_dictionary(arrow_type):
            arrays[name] = pa.array(values[name], pa.string()).dictionary_encode()
        elif (
            pa.types.is_date64(arrow_type)
            or pa.types.is_time(arrow_type)
            or pa.types.is_timestamp(arrow_type)
        ):
            base = pa.int32() if pa.types.is_time32(arrow_type) else pa.int64()
            arrays[name] = pa.array(values[name], base).view(arrow_type)
        else:
            arrays[name] = pa.array(values[name], arrow_type)
    with tempfile.TemporaryDirectory() as tmp:
        cells = _stage(Path(tmp), pa.table(arrays), {name: name for name in ARROW_ONLY})
    for i in range(n):
        for name, (_, _, text) in ARROW_ONLY.items():
            value = values[name][i]
            want = "" if value is None else text(value)
            assert cells[f"r{i}"][name] == want, (name, value)


def test_extension_and_null_types(tmp_path: Path) -> None:
    table = pa.table(
        {
            "id": pa.array([b"0123456789abcdef", b"\xff" * 16], pa.uuid()),
            "uid": pa.array([b"\x00" * 16, None], pa.uuid()),
            "doc": pa.array(['{"b": [1, 2.5],  "a": "x y"}', None], pa.json_()),
            "none": pa.array([None, None], pa.null()),
        }
    )
    cells = _stage(
        tmp_path,
        table,
        {"uid": "uid", "doc": "doc", "none": {"column": "none", "null": "-"}},
    )
    assert cells == {
        "30313233-3435-3637-3839-616263646566": {
            "uid": "00000000-0000-0000-0000-000000000000",
            "doc": '{"b":[1,2.5],"a":"x y"}',
            "none": "-",
        },
        "ffffffff-ffff-ffff-ffff-ffffffffffff": {"uid": "", "doc": "", "none": "-"},
    }


def test_the_same_instant_is_the_same_text_in_every_unit(tmp_path: Path) -> None:
    seconds = [-62_135_596_801, -1, 0, 1_700_000_000]  # 1 BC, just before 1970, ...

    def in_unit(s: int, unit: str) -> int | None:
        value = s * UNITS[unit]
        return value if abs(value) < 2**63 else None  # nanoseconds reach 1677-2262 only

    table = pa.table(
        {
            "id": pa.array([str(s) for s in seconds]),
            **{
                unit: pa.array([in_unit(s, unit) for s in seconds], pa.int64()).view(
                    pa.timestamp(unit, tz="Europe/Paris")
                )
                for unit in ("s", "ms", "us", "ns")
            },
        }
    )
    cells = _stage(tmp_path, table, {u: u for u in ("s", "ms", "us", "ns")})
    for s in seconds:
        texts = set(cells[str(s)].values()) - {""}
        assert texts == {timestamp_text(s, "s", True)}
    assert cells["-1"]["ns"] == "1969-12-31T23:59:59Z"
    assert cells["-62135596801"]["s"] == "0000-12-31T23:59:59Z"


# -- config-time errors for types without a text form ----------------------------------------


@pytest.mark.parametrize(
    ("column_sql", "attribute", "message"),
    [
        ("'\\xAA'::BLOB", "raw", "set format: base64 or format: hex"),
        ("[1, 2]", "raw", "set format: json"),
        ("{'a': 1}", "raw", "set format: json"),
        ("MAP {'k': 1}", "raw", "set format: json"),
        ("INTERVAL 3 DAY", "raw", "no text form; set format: json"),
        ("1.5::DOUBLE", {"column": "raw", "format": "%d"}, "writes an integer"),
        ("1::INTEGER", {"column": "raw", "format": "%s"}, "is not a number conversion"),
        ("'x'", {"column": "raw", "format": "base64"}, "applies to binary data"),
        ("DATE '2020-01-01'", {"column": "raw", "format": "%Y-%Q"}, "cannot format"),
    ],
)
def test_types_without_text_form_fail_at_config_time(
    warehouse, write_config: ConfigWriter, column_sql: str, attribute: Any, message: str
) -> None:
    warehouse(f"CREATE TABLE customers AS SELECT 'c1' AS customer_id, {column_sql} AS raw")
    config = write_config(attributes={"rawValue": attribute})
    with pytest.raises(connector.ConfigError, match=message) as error:
        connector.sync(config)
    assert f"{config.resolve()}:" in str(error.value)
    assert "attributes.rawValue (column raw)" in str(error.value)


# -- rejects -----------------------------------------------------------------------------------

GOOD = "INSERT INTO customers VALUES ('good1', 'gold', 'Oslo'), ('good2', 'silver', 'Rome');"


@pytest.mark.parametrize(
    ("reason", "bad_rows", "fix", "fixed_id"),
    [
        (
            "empty_id",
            "(NULL, 'gold', 'a'), ('', 'gold', 'b')",
            "DELETE FROM customers WHERE customer_id = '';"
            "UPDATE customers SET customer_id = 'was_empty' WHERE customer_id IS NULL",
            "was_empty",
        ),
        (
            "id_too_long",
            f"('{'x' * 257}', 'gold', 'a')",
            "UPDATE customers SET customer_id = 'short' WHERE length(customer_id) > 256",
            "short",
        ),
        (
            "id_has_plus_or_slash",
            "('a+b', 'gold', 'a'), ('a/b', 'gold', 'b')",
            "DELETE FROM customers WHERE customer_id = 'a/b';"
            "UPDATE customers SET customer_id = 'a-b' WHERE customer_id = 'a+b'",
            "a-b",
        ),
        (
            "duplicate_id",
            "('dup', 'gold', 'a'), ('dup', 'silver', 'b')",
            "DELETE FROM customers WHERE customer_id = 'dup' AND tier = 'silver'",
            "dup",
        ),
        (
            "value_too_long",
            f"('long', '{'é' * 257}', 'a')",
            "UPDATE customers SET tier = 'é' WHERE customer_id = 'long'",
            "long",
        ),
    ],
)
def test_each_reject_reason(
    emulator: Emulator,
    warehouse,
    write_config: ConfigWriter,
    reason: str,
    bad_rows: str,
    fix: str,
    fixed_id: str,
) -> None:
    warehouse(
        "CREATE TABLE customers (customer_id VARCHAR, tier VARCHAR, city VARCHAR);"
        + GOOD
        + f"INSERT INTO customers VALUES {bad_rows};"
    )
    config = write_config(emulator=emulator)
    bad_count = bad_rows.count("),") + 1

    result = connector.sync(config)
    assert result.exit_code == 3
    assert result.rejected == {reason: bad_count}
    assert result.sent == 2
    assert set(emulator.profiles()) == {"good1", "good2"}
    assert reason in result.message and "not sent" in result.message

    rejects = connector.status(config)["rejects"]
    assert [r["reason"] for r in rejects] == [reason] * bad_count
    plan = connector.plan(config)
    assert plan.rejected == {reason: bad_count} and plan.new == 0
    assert {r["reason"] for r in plan.reject_samples} == {reason}

    warehouse(fix)
    fixed = connector.sync(config)
    assert (fixed.exit_code, fixed.rejected, fixed.new, fixed.sent) == (0, {}, 1, 1)
    assert fixed_id in emulator.profiles()


def _synced_good_customers(emulator: Emulator, warehouse, write_config: ConfigWriter) -> Path:
    """The two GOOD customers, synced once; returns the config."""
    warehouse("CREATE TABLE customers (customer_id VARCHAR, tier VARCHAR, city VARCHAR);" + GOOD)
    config = write_config(emulator=emulator)
    assert connector.sync(config).sent == 2
    return config


def test_duplicate_ids_reject_every_copy_even_when_already_synced(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    config = _synced_good_customers(emulator, warehouse, write_config)
    warehouse("INSERT INTO customers VALUES ('good1', 'platinum', 'Oslo')")
    again = connector.sync(config)
    assert again.rejected == {"duplicate_id": 2}
    assert (again.removed, again.sent, again.unchanged) == (0, 0, 1)  # neither removed nor sent
    assert emulator.profiles()["good1"]["loyaltyTier"] == "gold"
    details = {r["detail"] for r in connector.status(config)["rejects"]}
    assert details == {"2 rows have this id"}


def test_a_synced_profile_that_turns_bad_is_rejected_not_removed(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    config = _synced_good_customers(emulator, warehouse, write_config)
    warehouse(f"UPDATE customers SET tier = '{'x' * 300}' WHERE customer_id = 'good1'")
    again = connector.sync(config)
    assert again.rejected == {"value_too_long": 1}
    assert (again.removed, again.changed, again.sent, again.unchanged) == (0, 0, 0, 1)
    assert emulator.profiles()["good1"]["loyaltyTier"] == "gold"
    warehouse("UPDATE customers SET tier = 'silver' WHERE customer_id = 'good1'")
    fixed = connector.sync(config)
    assert (fixed.rejected, fixed.changed, fixed.sent) == ({}, 1, 1)
    assert emulator.profiles()["good1"]["loyaltyTier"] == "silver"


def test_braces_in_a_replacement_or_pattern_reach_target_as_written(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    # The staging SQL is assembled from templates: text from the config must not be read as
    # a template placeholder.
    warehouse(
        "CREATE TABLE customers (customer_id VARCHAR, tier VARCHAR, ltv DOUBLE);"
        "INSERT INTO customers VALUES ('a', NULL, 1.5)"
    )
    config = write_config(
        emulator=emulator,
        attributes={
            "loyaltyTier": {"column": "tier", "null": "{none}"},
            "lifetimeValue": {"column": "ltv", "format": "{%.2f}"},
        },
    )
    assert connector.sync(config).sent == 1
    assert emulator.profiles()["a"] == {"loyaltyTier": "{none}", "lifetimeValue": "{1.50}"}


def test_profile_over_64_kb_is_rejected(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    columns = ", ".join(
        f"repeat(chr(233), CASE WHEN i = 0 THEN 250 ELSE 1 END) AS v{j}" for j in range(140)
    )
    warehouse(
        f"CREATE TABLE customers AS SELECT 'c' || i AS customer_id, {columns} FROM range(3) t(i)"
    )
    # 140 attributes × 250 two-byte characters: 70,000 bytes for c0; the others are small.
    config = write_config(
        emulator=emulator, attributes={f"attribute{j:03d}": f"v{j}" for j in range(140)}
    )
    proc = run_cli("sync", config)
    assert proc.returncode == 3, proc.stderr
    assert "profile_too_large: 1" in proc.stdout + proc.stderr
    assert set(emulator.profiles()) == {"c1", "c2"}
    status = run_cli("status", config)
    assert "'c0': profile_too_large (71680 bytes)" in status.stdout
    plan = connector.plan(config)
    assert plan.rejected == {"profile_too_large": 1}
    shorter = ", ".join(f"v{j} = left(v{j}, 200)" for j in range(140))  # 56,000 bytes
    warehouse(f"UPDATE customers SET {shorter} WHERE customer_id = 'c0'")
    fixed = connector.sync(config)
    assert (fixed.exit_code, fixed.new, fixed.sent) == (0, 1, 1)
    assert emulator.profiles()["c0"]["attribute000"] == "é" * 200
    assert "bytes" in status.stdout


def test_strict_mode_fails_before_sending(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    warehouse(
        "CREATE TABLE customers (customer_id VARCHAR, tier VARCHAR, city VARCHAR);"
        + GOOD
        + "INSERT INTO customers VALUES ('a/b', 'gold', 'x');"
    )
    config = write_config(emulator=emulator)
    proc = run_cli("sync", config, "--strict")
    assert proc.returncode == 1
    assert "strict" in proc.stderr and "id_has_plus_or_slash: 1" in proc.stderr
    assert emulator.upload_count == 0
    strict_config = write_config(emulator=emulator, strict=True, file_name="strict.yaml")
    with pytest.raises(connector.StrictRejectError):
        connector.sync(strict_config)
    assert emulator.upload_count == 0
    assert connector.status(config)["snapshot_profiles"] == 0
    assert connector.sync(config, strict=False).sent == 2


# -- NULL policy -------------------------------------------------------------------------------


def test_stale_nulls_are_counted_per_attribute_and_null_replacement_overwrites(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    warehouse(
        "CREATE TABLE customers AS SELECT 'c' || i AS customer_id, 'gold' AS tier, "
        "'Oslo' AS city FROM range(5) t(i)"
    )
    attributes = {"loyaltyTier": "tier", "city": {"column": "city", "null": "unknown"}}
    config = write_config(emulator=emulator, attributes=attributes)
    connector.sync(config)
    warehouse(
        "UPDATE customers SET tier = NULL WHERE customer_id IN ('c1', 'c2');"
        "UPDATE customers SET tier = '' WHERE customer_id = 'c3';"
        "UPDATE customers SET city = NULL WHERE customer_id = 'c4';"
        "UPDATE customers SET city = '' WHERE customer_id = 'c0';"
    )
    plan = connector.plan(config)
    assert plan.stale_nulls == {"loyaltyTier": 3}
    result = connector.sync(config)
    assert result.stale_nulls == {"loyaltyTier": 3}
    assert "keep their old value in Target (loyaltyTier: 3)" in result.message
    profiles = emulator.profiles()
    assert profiles["c1"]["loyaltyTier"] == "gold"  # Target cannot clear it
    assert profiles["c4"]["city"] == "unknown" and profiles["c0"]["city"] == "unknown"


# -- removed profiles and guardrails -----------------------------------------------------------


def test_on_removed_set_sends_exit_attributes_once_and_a_returning_profile_in_full(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    warehouse(
        "CREATE TABLE customers AS SELECT 'c' || i AS customer_id, 'gold' AS tier, "
        "'Oslo' AS city FROM range(10) t(i)"
    )
    config = write_config(
        emulator=emulator, on_removed={"set": {"vipSegment": False, "loyaltyTier": "none"}}
    )
    connector.sync(config)
    warehouse("DELETE FROM customers WHERE customer_id IN ('c1', 'c2')")

    gone = connector.sync(config)
    assert (gone.removed, gone.removed_sent, gone.exit_code) == (2, 2, 0)
    last = emulator.uploads[-1]
    assert last.header_names == ["thirdPartyId", "vipSegment", "loyaltyTier"]
    assert sorted(last.rows) == [["c1", "false", "none"], ["c2", "false", "none"]]
    assert emulator.profiles()["c1"] == {
        "loyaltyTier": "none",
        "city": "Oslo",
        "vipSegment": "false",
    }

    uploads = emulator.upload_count
    again = connector.sync(config)
    assert (again.removed, again.removed_sent, again.sent) == (0, 0, 0)
    assert emulator.upload_count == uploads  # exactly once

    warehouse("INSERT INTO customers VALUES ('c1', 'silver', 'Rome')")
    back = connector.sync(config)
    assert (back.new, back.sent) == (1, 1)
    assert emulator.uploads[-1].rows == [["c1", "silver", "Rome"]]


def test_guardrail_stops_a_run_that_removes_too_much_and_force_proceeds(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    warehouse(
        "CREATE TABLE customers AS SELECT 'c' || i AS customer_id, 'gold' AS tier, "
        "'Oslo' AS city FROM range(10) t(i)"
    )
    config = write_config(emulator=emulator, on_removed={"set": {"vipSegment": "false"}})
    connector.sync(config)
    warehouse("DELETE FROM customers WHERE customer_id <> 'c0'")  # 9 of 10: a broken model?
    uploads = emulator.upload_count

    proc = run_cli("sync", config)
    assert proc.returncode == 1
    message = proc.stderr.strip().splitlines()[-1]
    assert "9 of the 10 synced profiles (90%)" in message
    assert "max_removed_fraction=0.5" in message
    assert "nothing was sent" in message and "rerun with --force" in message
    assert emulator.upload_count == uploads
    assert connector.plan(config).guardrail.startswith("would stop the run")
    assert connector.status(config)["snapshot_profiles"] == 10

    forced = run_cli("sync", config, "--force")
    assert forced.returncode == 0, forced.stderr
    assert emulator.upload_count == uploads + 1
    assert connector.status(config)["snapshot_profiles"] == 1


def test_configured_fraction_and_min_rows(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    warehouse(
        "CREATE TABLE customers AS SELECT 'c' || i AS customer_id, 'gold' AS tier, "
        "'Oslo' AS city FROM range(10) t(i)"
    )
    config = write_config(emulator=emulator, max_removed_fraction=0.2, min_rows=5)
    connector.sync(config)
    warehouse("DELETE FROM customers WHERE customer_id IN ('c1', 'c2', 'c3')")
    with pytest.raises(connector.GuardrailError, match=r"max_removed_fraction=0\.2"):
        connector.sync(config)
    assert connector.sync(config, force=True).removed == 3
    warehouse("DELETE FROM customers WHERE customer_id IN ('c4', 'c5', 'c6')")
    with pytest.raises(connector.GuardrailError, match="fewer than min_rows=5"):
        connector.sync(config)
    off = write_config(
        emulator=emulator, max_removed_fraction=None, file_name="off.yaml", name="other"
    )
    connector.sync(off)
    warehouse("DELETE FROM customers")
    assert connector.sync(off).removed == 4


# -- mapping changes ---------------------------------------------------------------------------


def test_mapping_changes_resend_every_profile_with_the_new_attribute_set(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    warehouse(
        "CREATE TABLE customers AS SELECT 'c' || i AS customer_id, 'gold' AS tier, "
        "'Oslo' AS city, i * 1.5 AS score FROM range(4) t(i)"
    )
    steps: list[tuple[dict[str, Any], str]] = [
        ({"loyaltyTier": "tier", "city": "city"}, "first run"),
        ({"loyaltyTier": "tier", "city": "city", "score": "score"}, "added score"),
        ({"loyaltyTier": "tier", "town": "city", "score": "score"}, "renamed city → town"),
        ({"loyaltyTier": "tier", "town": "city"}, "removed score"),
        (
            {"loyaltyTier": {"column": "tier", "null": "none"}, "town": "city"},
            "changed loyaltyTier (null (none) → 'none')",
        ),
        (
            {
                "loyaltyTier": {"column": "tier", "null": "none"},
                "town": {"column": "city", "format": "json"},
            },
            "changed town (format (none) → 'json')",
        ),
    ]
    for attributes, reason in steps:
        config = write_config(emulator=emulator, attributes=attributes)
        plan = connector.plan(config)
        assert reason in (plan.full_resend_reason or ""), plan.full_resend_reason
        result = connector.sync(config)
        assert result.sent == 4
        assert emulator.uploads[-1].header_names == ["thirdPartyId", *attributes]
        assert connector.sync(config).sent == 0
    assert emulator.profiles()["c1"]["town"] == '"Oslo"'
    assert "Target keeps the values of attributes no longer sent" in (
        connector.plan(
            write_config(emulator=emulator, attributes={"loyaltyTier": "tier"})
        ).full_resend_reason
        or ""
    )
