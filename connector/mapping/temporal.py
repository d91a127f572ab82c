"""Canonical texts of dates, times, timestamps and durations, as DuckDB SQL over the integers
:mod:`.ingest` hands DuckDB (days, or units since the epoch or midnight): integer arithmetic,
so years outside 0000-9999 and nanoseconds come out exact; values DuckDB has no text for
(infinities, out of range) are found by :func:`value_problem_sql`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

from ..sqltext import quote_ident, sql_literal

# Units per second of Arrow's time units.
UNITS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def floor_div(x: str, n: int) -> str:
    """SQL for floor(x / n), exact, for a BIGINT ``x`` and a positive constant ``n``."""
    return f"({x} // {n} - CASE WHEN {x} % {n} < 0 THEN 1 ELSE 0 END)"


def _modulo(x: str, n: int) -> str:
    """SQL for x mod n in [0, n), for a BIGINT ``x`` and a positive constant ``n``."""
    return f"((({x} % {n}) + {n}) % {n})"


def date_text(d: str) -> str:
    """SQL for a DATE as ``YYYY-MM-DD``, expanded ``±YYYYYY`` outside years 0000-9999."""
    y = f"year({d})"
    return (
        f"(CASE WHEN {y} BETWEEN 0 AND 9999 THEN strftime({d}, '%Y-%m-%d') "
        f"WHEN {y} < 0 THEN printf('-%06d', -{y}) || strftime({d}, '-%m-%d') "
        f"ELSE printf('+%06d', {y}) || strftime({d}, '-%m-%d') END)"
    )


def _fraction_text(fraction: str, per_second: int) -> str:
    """SQL for ``.ffffff`` / ``.fffffffff`` (or nothing) of a sub-second count in [0, 1 s)."""
    if per_second == 1:
        return "''"
    if per_second == 1_000_000_000:
        return (
            f"CASE WHEN {fraction} = 0 THEN '' "
            f"WHEN {fraction} % 1000 = 0 "
            f"THEN '.' || lpad(CAST({fraction} // 1000 AS VARCHAR), 6, '0') "
            f"ELSE '.' || lpad(CAST({fraction} AS VARCHAR), 9, '0') END"
        )
    scale = 1_000_000 // per_second
    micros = f"{fraction} * {scale}" if scale > 1 else fraction
    return (
        f"CASE WHEN {fraction} = 0 THEN '' ELSE '.' || lpad(CAST({micros} AS VARCHAR), 6, '0') END"
    )


def clock_text(units: str, per_second: int) -> str:
    """SQL for ``HH:MM:SS[.ffffff|.fffffffff]`` of a count of units since midnight."""
    per_day = 86_400 * per_second
    seconds = f"({units} // {per_second})" if per_second > 1 else units
    fraction = f"({units} % {per_second})"
    fast = f"strftime(make_timestamp({seconds} * 1000000), '%H:%M:%S')"
    # Outside a day (an invalid time) the hours just go on counting.
    slow = (
        f"printf('%02d:%02d:%02d', {units} // {3600 * per_second}, "
        f"({units} // {60 * per_second}) % 60, ({units} // {per_second}) % 60)"
    )
    return (
        f"(CASE WHEN {units} BETWEEN 0 AND {per_day - 1} THEN {fast} ELSE {slow} END "
        f"|| {_fraction_text(fraction, per_second)})"
    )


def _duration_text(months: str | None, days: str | None, time: str, per_second: int) -> str:
    """SQL for an ISO 8601 duration, as PostgreSQL writes intervals with ``IntervalStyle
    iso_8601``: ``P1Y2M3DT4H5M6.5S``, only the parts that are not zero, each with its own
    sign (``P-1Y-2M3DT-4H``); zero is ``PT0S``. ``months`` and ``days`` are signed integers
    (None: none); ``time`` a signed count of ``per_second`` units (seconds fraction trimmed).
    Without ``days``, whole days of ``time`` are written as days, as Python's timedelta
    counts them, 24 hours each.
    """
    t = f"CAST({time} AS HUGEINT)"  # abs() of the smallest BIGINT would overflow
    whole = f"abs({t})"
    sign = f"CASE WHEN {t} < 0 THEN '-' ELSE '' END"
    parts = []
    if months is not None:
        parts += [
            f"CASE WHEN {months} // 12 <> 0 THEN CAST({months} // 12 AS VARCHAR) || 'Y' END",
            f"CASE WHEN {months} % 12 <> 0 THEN CAST({months} % 12 AS VARCHAR) || 'M' END",
        ]
    per_day = 86_400 * per_second
    if days is not None:
        parts.append(f"CASE WHEN {days} <> 0 THEN CAST({days} AS VARCHAR) || 'D' END")
        rest = whole
    else:
        parts.append(
            f"CASE WHEN {whole} >= {per_day} THEN {sign} || ({whole} // {per_day}) || 'D' END"
        )
        rest = f"({whole} % {per_day})"
    fraction = f"({rest} % {per_second})"
    digits = len(str(per_second)) - 1
    fraction_text = (
        f"CASE WHEN {fraction} <> 0 "
        f"THEN '.' || rtrim(lpad(CAST({fraction} AS VARCHAR), {digits}, '0'), '0') ELSE '' END"
        if per_second > 1
        else "''"
    )
    clock = (
        f"CASE WHEN {rest} <> 0 THEN concat('T', "
        f"CASE WHEN {rest} >= {3600 * per_second} "
        f"THEN {sign} || ({rest} // {3600 * per_second}) || 'H' END, "
        f"CASE WHEN ({rest} // {60 * per_second}) % 60 <> 0 "
        f"THEN {sign} || (({rest} // {60 * per_second}) % 60) || 'M' END, "
        f"CASE WHEN {rest} % {60 * per_second} <> 0 "
        f"THEN {sign} || (({rest} // {per_second}) % 60) || {fraction_text} || 'S' END) END"
    )
    nothing = " AND ".join([f"{x} = 0" for x in (months, days) if x is not None] + [f"{whole} = 0"])
    return (
        f"(CASE WHEN {time} IS NULL THEN NULL WHEN {nothing} THEN 'PT0S' "
        f"ELSE concat('P', {', '.join(parts)}, {clock}) END)"
    )


def epoch_date(days: str) -> str:
    return f"(DATE '1970-01-01' + CAST({days} AS INTEGER))"


# The first and last second of years 0000 to 9999, since the epoch.
_YEAR_0 = -62_167_219_200


_YEAR_10000 = 253_402_300_800


# DuckDB's infinities as they reach Arrow: DATE 'infinity' is the largest date32, TIMESTAMP
# 'infinity' (in every unit) the largest int64; '-infinity' their negation. Its dates and
# timestamps lie strictly between the two; so do the values written here.
_DATE_INFINITY = 2**31 - 1


_INT64_INFINITY = 2**63 - 1


MS_PER_DAY = 86_400_000


def _temporal_limits(c: str, t: pa.DataType) -> tuple[str, str] | None:
    """For a date or timestamp column ``c`` (as ingested): SQL true when its value can be
    written, and SQL saying why not (``infinity``, ``-infinity``, out of range) where it
    cannot. None for other types.

    A DATE lies between DuckDB's -infinity and infinity; a timestamp's microseconds (its
    nanoseconds for ``ns``) fit strictly between DuckDB's TIMESTAMP infinities. Anything
    else has no date text: it is rejected (``value_out_of_range``), never written as an
    empty cell or as the digits of DuckDB's infinity sentinel.
    """
    import pyarrow as pa

    if pa.types.is_date32(t):
        valid = f"({c} > '-infinity'::DATE AND {c} < 'infinity'::DATE)"
        infinity, minus_infinity = f"{c} = 'infinity'::DATE", f"{c} = '-infinity'::DATE"
        what = "dates (-5877641-06-25 to 5881580-07-10)"
    elif pa.types.is_date64(t):
        last = (_DATE_INFINITY - 1) * MS_PER_DAY
        valid = f"({c} BETWEEN {-last} AND {last + MS_PER_DAY - 1})"
        infinity, minus_infinity = f"{c} = {_INT64_INFINITY}", f"{c} = {-_INT64_INFINITY}"
        what = "dates (-5877641-06-25 to 5881580-07-10)"
    elif pa.types.is_timestamp(t):
        per_micro = 1_000_000 // UNITS[t.unit] if t.unit != "ns" else 1
        last = (_INT64_INFINITY - 1) // per_micro
        valid = f"({c} BETWEEN {-last} AND {last})"
        infinity, minus_infinity = f"{c} = {_INT64_INFINITY}", f"{c} = {-_INT64_INFINITY}"
        what = "timestamps (-290308-12-21 to 294247-01-10)"
    else:
        return None
    problem = (
        f"CASE WHEN {infinity} THEN 'infinity' WHEN {minus_infinity} THEN '-infinity' "
        f"ELSE {sql_literal('outside the range of DuckDB ' + what)} END"
    )
    return valid, problem


def within_limits(c: str, t: pa.DataType, text: str) -> str:
    """``text`` where the date or timestamp ``c`` can be written, else NULL (the row is
    rejected by the staging SQL, see :func:`value_problem_sql`)."""
    limits = _temporal_limits(c, t)
    return text if limits is None else f"(CASE WHEN {limits[0]} THEN {text} END)"


def value_problem_sql(column: str, arrow_type: pa.DataType) -> str | None:
    """SQL saying why a value of ``column`` has no text (``infinity``, ...), NULL when it has
    one or is NULL; None when no value of the type can lack one."""
    import pyarrow as pa

    t = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
    limits = _temporal_limits(quote_ident(column), t)
    if limits is None:
        return None
    valid, problem = limits
    return f"(CASE WHEN NOT {valid} THEN {problem} END)"


def timestamp_text(c: str, unit: str, zone: bool) -> str:
    per_second = UNITS[unit]
    per_day = 86_400 * per_second
    whole = "'%Y-%m-%dT%H:%M:%S'"
    if unit == "ns":
        # 1677 to 2262 only: always within years 0000-9999.
        ts = f"make_timestamp({floor_div(c, 1000)})"
        text = (
            f"CASE WHEN {c} % {per_second} = 0 THEN strftime({ts}, {whole}) "
            f"WHEN {c} % 1000 = 0 THEN strftime({ts}, '%Y-%m-%dT%H:%M:%S.%f') "
            f"ELSE strftime({ts}, {whole}) || '.' || "
            f"lpad(CAST({_modulo(c, per_second)} AS VARCHAR), 9, '0') END"
        )
    else:
        ts = f"make_timestamp({c} * {1_000_000 // per_second})"
        fast = f"strftime({ts}, {whole})"
        if per_second > 1:
            fast = (
                f"CASE WHEN {c} % {per_second} = 0 THEN {fast} "
                f"ELSE strftime({ts}, '%Y-%m-%dT%H:%M:%S.%f') END"
            )
        # Other years, with integer arithmetic (DuckDB's own dates reach far, but not
        # all of its functions do).
        slow = (
            f"{date_text(epoch_date(floor_div(c, per_day)))} || 'T' || "
            f"{clock_text(_modulo(c, per_day), per_second)}"
        )
        low, high = _YEAR_0 * per_second, _YEAR_10000 * per_second - 1
        text = f"CASE WHEN {c} BETWEEN {low} AND {high} THEN {fast} ELSE {slow} END"
    suffix = " || 'Z'" if zone else ""
    return f"(({text}){suffix})"


def timestamp_value(c: str, unit: str) -> str:
    """SQL for the DuckDB TIMESTAMP (or TIMESTAMP_NS) of epoch units ``c``."""
    if unit == "ns":
        return f"make_timestamp_ns({c})"
    return f"make_timestamp({c} * {1_000_000 // UNITS[unit]})"


def interval_text(c: str, t: pa.DataType) -> str:
    """SQL for the ISO 8601 duration of an interval or duration column (as ingested)."""
    import pyarrow as pa

    if pa.types.is_interval(t):
        return _duration_text(f"{c}.months", f"{c}.days", f"{c}.nanoseconds", 1_000_000_000)
    return _duration_text(None, None, c, UNITS[t.unit])
