"""``format:`` patterns of dates and times (strftime, checked directive by directive), and
trying a pattern once on a sample value in a scratch DuckDB, so a bad one fails at config
time, before anything is read."""

from __future__ import annotations

import contextlib
import decimal
import re
import threading
from functools import cache
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..text import first_line

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

from ..sqltext import sql_literal
from .ingest import ingest_array, ingest_type
from .numbers import printf_sql
from .temporal import MS_PER_DAY, epoch_date, floor_div, timestamp_value, within_limits

_STRFTIME_HINT = "a strftime pattern such as %Y-%m-%d"


def formatted_sql(c: str, t: pa.DataType, fmt: str, where: str) -> str:
    """SQL for a strftime/printf ``format:``, tried once on a sample value."""
    import pyarrow as pa

    if fmt in ("base64", "hex"):
        raise ConfigError(f"{where}: format: {fmt} applies to binary data, not to {t} values")
    if pa.types.is_date32(t):
        pattern = sql_literal(strftime_pattern(fmt, t, where))
        sql = within_limits(c, t, f"strftime({c}, {pattern})")
    elif pa.types.is_date64(t):
        pattern = sql_literal(strftime_pattern(fmt, t, where))
        date = epoch_date(floor_div(c, MS_PER_DAY))
        sql = within_limits(c, t, f"strftime({date}, {pattern})")
    elif pa.types.is_timestamp(t) or pa.types.is_time(t):
        pattern = sql_literal(strftime_pattern(fmt, t, where))
        sql = within_limits(c, t, f"strftime({timestamp_value(c, t.unit)}, {pattern})")
    elif pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        if pa.types.is_decimal(t) and ingest_type(t) == pa.string():
            raise ConfigError(
                f"{where}: format '{fmt}' cannot apply to {t} (over 38 digits); "
                "round or cast the column in the query"
            )
        sql = printf_sql(c, t, fmt, where)
    else:
        raise ConfigError(
            f"{where}: format '{fmt}' does not apply to {t} values (formats: json, base64 "
            f"and hex for binary, {_STRFTIME_HINT} for dates and times, a printf pattern "
            "such as %.2f for numbers)"
        )
    _try_format(sql, c, t, fmt, where)
    return sql


# The strftime directives a pattern may use, each giving what Python's datetime.strftime
# gives for the same value (tests/test_edge_values.py checks every one against it), except
# that %Y and %G always have four digits at least (glibc's Python writes year 927 as "927").
# %g and %n (DuckDB's own: milliseconds, nanoseconds) have no Python counterpart. %c and %x
# are left out: their text depends on the C library's locale, and DuckDB's differs.
DATE_DIRECTIVES = (
    *("a", "A", "w", "u", "d", "-d", "b", "B", "h", "m", "-m"),
    *("y", "-y", "Y", "G", "V", "U", "W", "j", "-j"),
)


CLOCK_DIRECTIVES = ("H", "-H", "I", "-I", "p", "M", "-M", "S", "-S", "f", "g", "n", "X", "T")


ZONE_DIRECTIVES = ("Z", "z")


# What %Z and %z write for a timestamp with a zone (always shown in UTC), as Python does.
_UTC_ZONE = {"Z": "UTC", "z": "+0000"}


_DIRECTIVE = re.compile(r"%(-?.)?")


def strftime_directives(t: pa.DataType) -> tuple[str, ...]:
    """The directives (without ``%``) a strftime ``format:`` may use on ``t`` values."""
    import pyarrow as pa

    if pa.types.is_time(t):
        return CLOCK_DIRECTIVES
    zoned = pa.types.is_timestamp(t) and t.tz is not None
    return DATE_DIRECTIVES + CLOCK_DIRECTIVES + (ZONE_DIRECTIVES if zoned else ())


def strftime_pattern(fmt: str, t: pa.DataType, where: str) -> str:
    """The DuckDB strftime pattern for ``format: fmt`` on ``t`` values, checked directive by
    directive. A timestamp with a zone is formatted in UTC, so its %Z is ``UTC`` and its
    %z ``+0000``; on other types %Z and %z name nothing and are refused."""
    allowed = strftime_directives(t)
    out = []
    position = 0
    for match in _DIRECTIVE.finditer(fmt):
        out.append(fmt[position : match.start()])
        position = match.end()
        directive = match.group(1) or ""
        if directive == "%":
            out.append("%%")
        elif directive in ZONE_DIRECTIVES and directive in allowed:
            out.append(_UTC_ZONE[directive])
        elif directive in allowed:
            out.append(match.group(0))
        else:
            if directive in ZONE_DIRECTIVES:
                problem = f"%{directive} names a time zone, and {t} values have none"
            else:
                shown = f"%{directive}" if directive else "a lone %"
                problem = (
                    f"{shown} is not a directive for them; use "
                    + " ".join(f"%{d}" for d in allowed)
                    + ", or %% for a percent sign"
                )
            raise ConfigError(f"{where}: format '{fmt}' cannot format {t} values ({problem})")
    out.append(fmt[position:])
    return "".join(out)


def _try_format(sql: str, c: str, t: pa.DataType, fmt: str, where: str) -> None:
    """Run ``sql`` once on a sample value, so a bad pattern fails before any data is read."""
    problem = _format_problem(sql, c, t)
    if problem is not None:
        raise ConfigError(f"{where}: format '{fmt}' cannot format {t} values ({problem})")


@cache
def _format_problem(sql: str, c: str, t: pa.DataType) -> str | None:
    import duckdb
    import pyarrow as pa

    if pa.types.is_floating(t):
        sample = pa.array([-1.5]).cast(t)
    elif pa.types.is_decimal(t):
        sample = pa.array([decimal.Decimal(0)], t)
    else:
        sample = pa.array([0], t)
    with _scratch_lock:
        con = _scratch()
        try:
            con.register("sample_value", pa.table({"s": ingest_array(sample, t)}))
            con.execute(f"SELECT {sql} FROM (SELECT s AS {c} FROM sample_value)").fetchall()
        except duckdb.Error as exc:
            return first_line(exc)
        finally:
            with contextlib.suppress(duckdb.Error):
                con.unregister("sample_value")
    return None


_scratch_lock = threading.Lock()


@cache
def _scratch() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection for trying expressions on sample values."""
    import duckdb

    return duckdb.connect()


def check_readable(t: pa.DataType, where: str) -> None:
    """Fail at config time, not mid-stream, when DuckDB cannot ingest a nested type."""
    problem = _read_problem(t)
    if problem is not None:
        raise ConfigError(
            f"{where}: DuckDB cannot read {t} values ({problem}); cast the column to text "
            "in the query (for example CAST(column AS VARCHAR))"
        )


@cache
def _read_problem(t: pa.DataType) -> str | None:
    import duckdb
    import pyarrow as pa

    with _scratch_lock:
        con = _scratch()
        try:
            # pa.nulls, not pa.array: pyarrow cannot build unions from Python values.
            con.register("probe", pa.table({"c": pa.nulls(0, t)}))
            con.execute("SELECT to_json(c) FROM probe").fetchall()
        except (duckdb.Error, pa.ArrowException) as exc:
            return first_line(exc)
        finally:
            with contextlib.suppress(duckdb.Error):
                con.unregister("probe")
    return None
