"""Legal but unusual values (issue #12): infinite and out-of-range dates and timestamps,
every strftime directive, intervals and unions.

Each rule is checked against an independent statement: Python's own ``strftime``,
PostgreSQL's ISO 8601 interval output, or the rule written out again in Python.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import duckdb
import pyarrow as pa
import pytest

import connector
from connector.emulator import Emulator
from connector.mapping.formats import CLOCK_DIRECTIVES, DATE_DIRECTIVES

from .conftest import ConfigWriter, run_cli
from .servers import postgres_connect, postgres_dsn, postgres_schema
from .test_fidelity import date_text, timestamp_text
from .test_wide import _stage_rows

DATE_INFINITY = 2**31 - 1
INT64_INFINITY = 2**63 - 1
PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
DATE_RANGE = "outside the range of DuckDB dates (-5877641-06-25 to 5881580-07-10)"
TIMESTAMP_RANGE = "outside the range of DuckDB timestamps (-290308-12-21 to 294247-01-10)"


def _staged(tmp_path: Path, table: pa.Table, attributes: dict[str, Any]) -> dict[str, Any]:
    """id -> (decoded cells by attribute, reject, detail) of ``table`` staged as a source."""
    rows, _ = _stage_rows(tmp_path, table, attributes)
    out = {}
    for pid, (_, cells, reject, detail) in rows.items():
        texts = (
            None
            if cells is None
            else dict(zip(attributes, map(unquote, cells.split(",")), strict=True))
        )
        out[pid] = (texts, reject, detail)
    return out


# -- infinite and out-of-range dates and timestamps ------------------------------------------


def _date_verdict(days: int) -> str | None:
    """Why a date32 value has no text (None: it has one)."""
    if days == DATE_INFINITY:
        return "infinity"
    if days == -DATE_INFINITY:
        return "-infinity"
    return None if abs(days) <= DATE_INFINITY - 1 else DATE_RANGE


def _timestamp_verdict(value: int, unit: str) -> str | None:
    """Why a timestamp value has no text: DuckDB's infinities, or microseconds (nanoseconds
    for ns) that do not fit strictly between them."""
    if value == INT64_INFINITY:
        return "infinity"
    if value == -INT64_INFINITY:
        return "-infinity"
    scale = 1 if unit == "ns" else 1_000_000 // PER_SECOND[unit]
    return None if abs(value * scale) <= INT64_INFINITY - 1 else TIMESTAMP_RANGE


def _edges(last: int) -> list[int]:
    return [
        0,
        1_700_000_000,
        last,
        -last,
        last + 1,
        -last - 1,
        INT64_INFINITY,
        -INT64_INFINITY,
        -(2**63),
    ]


@pytest.mark.parametrize(
    "arrow_type",
    [
        pa.date32(),
        pa.date64(),
        *[pa.timestamp(unit) for unit in ("s", "ms", "us", "ns")],
        pa.timestamp("us", tz="Europe/Paris"),
    ],
    ids=str,
)
def test_infinite_and_out_of_range_temporal_values_are_rejected_by_name(
    tmp_path: Path, arrow_type: pa.DataType
) -> None:
    if pa.types.is_date32(arrow_type):
        values = [0, 2**31 - 2, -(2**31 - 2), DATE_INFINITY, -DATE_INFINITY, -(2**31)]
        base = pa.int32()
    else:
        base = pa.int64()
        if pa.types.is_date64(arrow_type):
            per_day = 86_400_000
            values = _edges((DATE_INFINITY - 1) * per_day + per_day - 1)
            values += [-(DATE_INFINITY - 1) * per_day - 1]
        else:
            scale = 1 if arrow_type.unit == "ns" else 1_000_000 // PER_SECOND[arrow_type.unit]
            values = _edges((INT64_INFINITY - 1) // scale)
        values = [v for v in dict.fromkeys(values) if -(2**63) <= v <= INT64_INFINITY]
    table = pa.table(
        {
            "id": [f"r{i}" for i in range(len(values))],
            "when": pa.array(values, base).view(arrow_type),
        }
    )
    # The default text, a strftime pattern and JSON: each refuses the same values.
    attributes = {
        "when": "when",
        "whenDay": {"column": "when", "format": "%Y-%m-%d"},
        "whenJson": {"column": "when", "format": "json"},
    }
    staged = _staged(tmp_path, table, attributes)
    verdicts = set()
    for i, value in enumerate(values):
        if pa.types.is_date32(arrow_type):
            verdict, text = _date_verdict(value), None
            if verdict is None:
                text = date_text(value)
        elif pa.types.is_date64(arrow_type):
            days = value // 86_400_000
            # A date64's infinities are the int64 ones; its days are then DuckDB's dates.
            verdict = {INT64_INFINITY: "infinity", -INT64_INFINITY: "-infinity"}.get(value)
            if verdict is None and abs(days) > DATE_INFINITY - 1:
                verdict = DATE_RANGE
            text = date_text(days) if verdict is None else None
        else:
            verdict = _timestamp_verdict(value, arrow_type.unit)
            zone = arrow_type.tz is not None
            text = timestamp_text(value, arrow_type.unit, zone) if verdict is None else None
        verdicts.add(verdict)
        texts, reject, detail = staged[f"r{i}"]
        if verdict is None:
            assert (reject, texts["when"]) == (None, text), value
            assert texts["whenJson"] == f'"{text}"'
            if not text.startswith(("+", "-")):  # years 0000-9999: %Y has four digits
                assert texts["whenDay"] == text[:10]
        else:
            assert (reject, detail) == ("value_out_of_range", f"when: {verdict}"), value
    assert None in verdicts and "infinity" in verdicts and "-infinity" in verdicts


def test_infinite_dates_from_duckdb_are_rejected_and_sent_once_fixed(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    warehouse(
        "CREATE TABLE customers (customer_id VARCHAR, born DATE, seen TIMESTAMP, "
        "seen_tz TIMESTAMPTZ, seen_s TIMESTAMP_S, seen_ns TIMESTAMP_NS);"
        "INSERT INTO customers VALUES "
        "('ok', '2026-01-02', '2026-01-02 03:04:05.5', '2026-01-02 03:04:05+00', "
        "'2026-01-02 03:04:05', '2026-01-02 03:04:05.123456789'),"
        "('born_inf', 'infinity', NULL, NULL, NULL, NULL),"
        "('born_minf', '-infinity', NULL, NULL, NULL, NULL),"
        "('seen_inf', NULL, 'infinity', NULL, NULL, NULL),"
        "('tz_minf', NULL, NULL, '-infinity', NULL, NULL),"
        "('s_inf', NULL, NULL, NULL, 'infinity', NULL),"
        "('ns_minf', NULL, NULL, NULL, NULL, '-infinity')"
    )
    attributes = {
        "born": "born",
        "bornDay": {"column": "born", "format": "%d.%m.%Y"},
        "seen": "seen",
        "seenTz": "seen_tz",
        "seenS": "seen_s",
        "seenNs": "seen_ns",
    }
    config = write_config(emulator=emulator, attributes=attributes)
    proc = run_cli("sync", config)
    assert proc.returncode == 3, proc.stderr
    assert "value_out_of_range: 6" in proc.stdout
    assert emulator.profiles() == {
        "ok": {
            "born": "2026-01-02",
            "bornDay": "02.01.2026",
            "seen": "2026-01-02T03:04:05.500000",
            "seenTz": "2026-01-02T03:04:05Z",
            "seenS": "2026-01-02T03:04:05",
            "seenNs": "2026-01-02T03:04:05.123456789",
        }
    }
    details = {r["id"]: r["detail"] for r in connector.status(config)["rejects"]}
    assert details == {
        "born_inf": "born: infinity",
        "born_minf": "born: -infinity",
        "seen_inf": "seen: infinity",
        "tz_minf": "seenTz: -infinity",
        "s_inf": "seenS: infinity",
        "ns_minf": "seenNs: -infinity",
    }
    warehouse("UPDATE customers SET born = '1999-12-31' WHERE born IN ('infinity', '-infinity')")
    fixed = connector.sync(config)
    assert (fixed.new, fixed.rejected) == (2, {"value_out_of_range": 4})
    assert emulator.profiles()["born_minf"] == {"born": "1999-12-31", "bornDay": "31.12.1999"}


def test_postgres_infinity_bc_and_far_years_never_fail_the_run(
    emulator: Emulator, tmp_path: Path, write_config: ConfigWriter
) -> None:
    url = postgres_dsn()
    with postgres_schema() as schema:
        with postgres_connect() as conn:
            conn.execute(
                f"CREATE TABLE {schema}.customers AS SELECT * FROM (VALUES "
                "('now', '2026-01-02'::date, '2026-01-02 03:04:05.25'::timestamp, "
                "'2026-01-02 03:04:05+01'::timestamptz),"
                "('inf', 'infinity', 'infinity', 'infinity'),"
                "('minf', '-infinity', '-infinity', '-infinity'),"
                "('bc', '0005-03-01 BC', '0005-03-01 12:00:00.5 BC', '0044-03-15 12:00:00+00 BC'),"
                "('far', '20000-01-01', '20000-01-01 00:00:00', '20000-01-01 00:00:00+02'),"
                "('past_duckdb', '5874897-12-31', '294276-12-31 23:59:59', NULL)"
                ") v(customer_id, born, seen, seen_tz)"
            )
        source = {
            "type": "sqlalchemy",
            "url": url,
            "query": f"SELECT * FROM {schema}.customers",
        }
        attributes = {"born": "born", "seen": "seen", "seenTz": "seen_tz"}
        config = write_config(emulator=emulator, attributes=attributes, source=source)
        proc = run_cli("sync", config)
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    assert emulator.profiles() == {
        "now": {
            "born": "2026-01-02",
            "seen": "2026-01-02T03:04:05.250000",
            "seenTz": "2026-01-02T02:04:05Z",
        },
        # Astronomical years: 5 BC is -4, 44 BC is -43 (ISO 8601, as the DuckDB source).
        "bc": {
            "born": "-000004-03-01",
            "seen": "-000004-03-01T12:00:00.500000",
            "seenTz": "-000043-03-15T12:00:00Z",
        },
        "far": {
            "born": "+020000-01-01",
            "seen": "+020000-01-01T00:00:00",
            "seenTz": "+019999-12-31T22:00:00Z",
        },
    }
    details = {r["id"]: r["detail"] for r in connector.status(config)["rejects"]}
    assert details == {
        "inf": "born: infinity",
        "minf": "born: -infinity",
        "past_duckdb": f"seen: {TIMESTAMP_RANGE}",
    }


# -- strftime ----------------------------------------------------------------------------------


def _python_strftime(value: dt.date | dt.time, directive: str, micros: int) -> str:
    """What ``%directive`` must give, as Python writes it; %Y and %G with four digits at
    least (glibc's Python writes year 927 as "927"); %g and %n, DuckDB's own, stated."""
    if directive == "Y":
        return f"{value.year:04d}"  # type: ignore[union-attr]
    if directive == "G":
        return f"{value.isocalendar().year:04d}"  # type: ignore[union-attr]
    if directive == "g":
        return f"{micros // 1000:03d}"
    if directive == "n":
        return f"{micros * 1000:09d}"
    return value.strftime("%" + directive)


def test_every_strftime_directive_writes_what_python_writes(tmp_path: Path) -> None:
    rng = random.Random(20261128)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    instants = [
        dt.datetime(2026, 1, 1, 4, 30, 5, 123456, tzinfo=dt.UTC),
        dt.datetime(1, 1, 1, tzinfo=dt.UTC),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
        dt.datetime(927, 2, 3, 13, 0, tzinfo=dt.UTC),
        dt.datetime(2021, 1, 3, 12, 0, tzinfo=dt.UTC),  # ISO week 53 of 2020
        dt.datetime(2024, 12, 30, 0, 0, 1, tzinfo=dt.UTC),  # ISO week 1 of 2025
    ]
    instants += [
        epoch
        + dt.timedelta(microseconds=rng.randint(-62_135_596_800 * 10**6, 253_402_300_799 * 10**6))
        for _ in range(60)
    ]
    micros = [(t - epoch) // dt.timedelta(microseconds=1) for t in instants]
    table = pa.table(
        {
            "id": [f"r{i}" for i in range(len(instants))],
            "day": pa.array([m // 86_400_000_000 for m in micros], pa.int32()).view(pa.date32()),
            "naive": pa.array(micros, pa.int64()).view(pa.timestamp("us")),
            "zoned": pa.array(micros, pa.int64()).view(pa.timestamp("us", tz="America/New_York")),
            "clock": pa.array([m % 86_400_000_000 for m in micros], pa.int64()).view(
                pa.time64("us")
            ),
        }
    )
    directives = {
        "day": DATE_DIRECTIVES + CLOCK_DIRECTIVES,
        "naive": DATE_DIRECTIVES + CLOCK_DIRECTIVES,
        "zoned": (*DATE_DIRECTIVES, *CLOCK_DIRECTIVES, "Z", "z"),
        "clock": CLOCK_DIRECTIVES,
    }
    attributes = {
        f"{column}_{d}": {"column": column, "format": f"<%{d}>"}
        for column, ds in directives.items()
        for d in ds
    }
    staged = _staged(tmp_path, table, attributes)
    for i, (instant, us) in enumerate(zip(instants, micros, strict=True)):
        texts, reject, _ = staged[f"r{i}"]
        assert reject is None
        values = {
            "day": (instant.date(), 0),
            "naive": (instant.replace(tzinfo=None), us % 1_000_000),
            "zoned": (instant, us % 1_000_000),  # in UTC: %Z is "UTC", %z "+0000"
            "clock": (instant.time(), us % 1_000_000),
        }
        for column, ds in directives.items():
            value, fraction = values[column]
            for d in ds:
                want = f"<{_python_strftime(value, d, fraction)}>"
                assert texts[f"{column}_{d}"] == want, (column, d, instant)


def test_zone_name_of_a_timestamptz_is_utc_end_to_end(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    warehouse(
        "CREATE TABLE customers AS SELECT 'c1' AS customer_id, "
        "TIMESTAMPTZ '2026-01-01 04:30:00+00' AS seen, TIMESTAMP '2026-01-01 04:30:00' AS local"
    )
    attributes = {
        "seen": {"column": "seen", "format": "%Y-%m-%d %H:%M %Z"},
        "offset": {"column": "seen", "format": "%H:%M%z (%%Z)"},
        "local": {"column": "local", "format": "%d/%m/%Y %H%%"},
    }
    assert connector.sync(write_config(emulator=emulator, attributes=attributes)).sent == 1
    assert emulator.profiles()["c1"] == {
        "seen": "2026-01-01 04:30 UTC",
        "offset": "04:30+0000 (%Z)",
        "local": "01/01/2026 04%",
    }


@pytest.mark.parametrize(
    ("column_sql", "pattern", "problem"),
    [
        ("TIMESTAMPTZ '2026-01-01 00:00+00'", "%c", "%c is not a directive for them"),
        ("DATE '2026-01-01'", "%x", "%x is not a directive for them"),
        ("DATE '2026-01-01'", "%Y-%Q", "%Q is not a directive for them"),
        (
            "TIMESTAMP '2026-01-01'",
            "%H %Z",
            "%Z names a time zone, and timestamp[us] values have none",
        ),
        ("DATE '2026-01-01'", "%z", "%z names a time zone, and date32[day] values have none"),
        ("TIME '04:30:00'", "%Y %H", "%Y is not a directive for them"),
        ("DATE '2026-01-01'", "100%", "a lone % is not a directive for them"),
    ],
)
def test_strftime_directives_outside_the_list_are_config_errors(
    warehouse, write_config: ConfigWriter, column_sql: str, pattern: str, problem: str
) -> None:
    warehouse(f"CREATE TABLE customers AS SELECT 'c1' AS customer_id, {column_sql} AS raw")
    config = write_config(attributes={"rawValue": {"column": "raw", "format": pattern}})
    proc = run_cli("sync", config)
    assert proc.returncode == 2
    message = proc.stderr.strip().splitlines()[-1]
    assert f"attributes.rawValue (column raw): format '{pattern}' cannot format" in message
    assert problem in message
    assert "%% for a percent sign" in message or "time zone" in message


# -- intervals and unions ------------------------------------------------------------------


def iso_duration(months: int, days: int | None, time: int, per_second: int) -> str:
    """An ISO 8601 duration as PostgreSQL writes intervals (IntervalStyle iso_8601): each
    part that is not zero, with its own sign; days=None: whole 24-hour days of ``time``."""
    text = "P"
    years = int(months / 12)
    for amount, unit in ((years, "Y"), (months - 12 * years, "M"), (days or 0, "D")):
        text += f"{amount}{unit}" if amount else ""
    sign, rest = ("-" if time < 0 else ""), abs(time)
    if days is None and rest >= 86_400 * per_second:
        text += f"{sign}{rest // (86_400 * per_second)}D"
        rest %= 86_400 * per_second
    if rest:
        hours, minutes = rest // (3_600 * per_second), rest // (60 * per_second) % 60
        seconds, fraction = rest // per_second % 60, rest % per_second
        text += (
            "T" + (f"{sign}{hours}H" if hours else "") + (f"{sign}{minutes}M" if minutes else "")
        )
        if seconds or fraction:
            digits = len(str(per_second)) - 1
            decimals = f".{fraction:0{digits}d}".rstrip("0") if fraction else ""
            text += f"{sign}{seconds}{decimals}S"
    return "PT0S" if text == "P" else text


INTERVALS = [
    (0, 0, 0),
    (14, -3, 14_706_500_000),  # 1 year 2 months -3 days 04:05:06.5
    (-13, 0, 0),
    (0, 0, -1_500_000),
    (0, 0, 86_400_000_000 * 3 + 1),
    (5, 40, -3_600_000_000),
]


def test_intervals_with_format_json_arrive_as_iso_8601_durations(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    rows = ", ".join(
        f"('i{k}', to_months({m}) + to_days({d}) + to_microseconds({us}))"
        for k, (m, d, us) in enumerate(INTERVALS)
    )
    warehouse(
        "CREATE TABLE customers (customer_id VARCHAR, wait INTERVAL);"
        f"INSERT INTO customers VALUES {rows}, ('none', NULL)"
    )
    plain = write_config(attributes={"wait": "wait"}, file_name="plain.yaml")
    with pytest.raises(
        connector.ConfigError,
        match="no text form; set format: json to send each as an ISO 8601 duration",
    ):
        connector.sync(plain)
    config = write_config(
        emulator=emulator, attributes={"wait": {"column": "wait", "format": "json"}}
    )
    assert (
        connector.validate(config)["attributes"][0]["serialized_as"]
        == "ISO 8601 duration, as a JSON string"
    )
    result = connector.sync(config)
    assert (result.sent, result.exit_code) == (len(INTERVALS) + 1, 0)
    profiles = emulator.profiles()
    for k, (m, d, us) in enumerate(INTERVALS):
        assert profiles[f"i{k}"] == {"wait": f'"{iso_duration(m, d, us * 1000, 10**9)}"'}
    assert profiles["none"] == {}
    assert profiles["i1"] == {"wait": '"P1Y2M-3DT4H5M6.5S"'}


def test_interval_texts_are_postgresqls_iso_8601(tmp_path: Path) -> None:
    rng = random.Random(8601)
    triples = INTERVALS + [
        (
            rng.choice([0, rng.randint(-500, 500)]),
            rng.choice([0, rng.randint(-400, 400)]),
            rng.choice([0, rng.randint(-(10**12), 10**12), rng.randint(-(10**7), 10**7)]),
        )
        for _ in range(150)
    ]
    with postgres_connect() as conn:
        conn.execute("SET intervalstyle = iso_8601")
        expected = [
            conn.execute(
                "SELECT (make_interval(months => %s, days => %s) "
                "+ make_interval(secs => %s::numeric / 1000000))::text",
                [m, d, us],
            ).fetchone()[0]
            for m, d, us in triples
        ]
    intervals = duckdb.sql(
        "SELECT to_months(m) + to_days(d) + to_microseconds(us) AS wait "
        "FROM (SELECT unnest($m) AS m, unnest($d) AS d, unnest($us) AS us)",
        params={
            "m": [t[0] for t in triples],
            "d": [t[1] for t in triples],
            "us": [t[2] for t in triples],
        },
    ).to_arrow_table()["wait"]
    table = pa.table({"id": [f"r{k}" for k in range(len(triples))], "wait": intervals})
    staged = _staged(tmp_path, table, {"wait": {"column": "wait", "format": "json"}})
    for k, want in enumerate(expected):
        assert staged[f"r{k}"][0]["wait"] == f'"{want}"', triples[k]


def test_durations_and_nanosecond_intervals(tmp_path: Path) -> None:
    # Arrow durations (PostgreSQL intervals arrive so through psycopg) and intervals with
    # nanoseconds, straight from Arrow.
    rng = random.Random(3)
    counts = [0, 1, -1, 86_400, -90_061, 2**63 - 1, -(2**63)] + [
        rng.randint(-(10**15), 10**15) for _ in range(30)
    ]
    nanos = [(0, 0, 1), (1, 1, -999_999_999), (-7, 2, 3_600_000_000_001)]
    table = pa.table(
        {
            "id": [f"r{k}" for k in range(len(counts))],
            **{unit: pa.array(counts, pa.int64()).view(pa.duration(unit)) for unit in PER_SECOND},
            "nano": pa.array(
                [pa.MonthDayNano(t) for t in nanos] + [None] * (len(counts) - len(nanos)),
                pa.month_day_nano_interval(),
            ),
        }
    )
    attributes = {name: {"column": name, "format": "json"} for name in (*PER_SECOND, "nano")}
    staged = _staged(tmp_path, table, attributes)
    for k, count in enumerate(counts):
        texts = staged[f"r{k}"][0]
        for unit, per_second in PER_SECOND.items():
            assert texts[unit] == f'"{iso_duration(0, None, count, per_second)}"', (unit, count)
        if k < len(nanos):
            m, d, ns = nanos[k]
            assert texts["nano"] == f'"{iso_duration(m, d, ns, 10**9)}"'
        else:
            assert texts["nano"] == ""


def test_unions_from_duckdb_with_format_json(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    warehouse(
        "CREATE TABLE customers (customer_id VARCHAR, pick UNION(num INTEGER, label VARCHAR));"
        "INSERT INTO customers VALUES ('n', union_value(num := 2)), "
        "('l', union_value(label := 'a, b')), ('none', NULL)"
    )
    plain = write_config(attributes={"pick": "pick"}, file_name="plain.yaml")
    with pytest.raises(connector.ConfigError, match="no text form of their own; set format: json"):
        connector.sync(plain)
    config = write_config(
        emulator=emulator, attributes={"pick": {"column": "pick", "format": "json"}}
    )
    assert connector.sync(config).sent == 3
    assert emulator.profiles() == {
        "n": {"pick": '{"num":2}'},
        "l": {"pick": '{"label":"a, b"}'},
        "none": {},
    }


def test_a_union_duckdb_cannot_read_says_which_cast_to_write(tmp_path: Path) -> None:
    dense = pa.UnionArray.from_dense(
        pa.array([0, 1], pa.int8()),
        pa.array([0, 0], pa.int32()),
        [pa.array([1], pa.int32()), pa.array(["x"])],
        ["num", "label"],
    )
    table = pa.table({"id": ["a", "b"], "pick": dense})
    for spec in ("pick", {"column": "pick", "format": "json"}):
        with pytest.raises(connector.ConfigError) as error:
            _staged(tmp_path, table, {"pick": spec})
        message = str(error.value)
        assert "DuckDB cannot read dense_union" in message
        assert (
            "cast the column to text in the query (for example CAST(column AS VARCHAR))" in message
        )
        assert "set format: json" not in message


def test_the_readme_lists_exactly_the_allowed_directives() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| (dates|times of day) \| (.*) \|$", readme, re.M))
    listed = {kind: set(re.findall(r"%(-?\w)", text)) for kind, text in rows.items()}
    assert listed == {"dates": set(DATE_DIRECTIVES), "times of day": set(CLOCK_DIRECTIVES)}
