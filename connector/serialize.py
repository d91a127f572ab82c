"""How each source value becomes the text Target receives, as DuckDB SQL over Arrow columns.

Every rule here is vectorized: Arrow compute while the stream is handed to DuckDB (to bring
a few types into a form DuckDB reads and writes exactly, see :func:`ingest_type`), then SQL
that DuckDB runs while it ingests the stream. No Python touches a row. One value always
serializes to the same text, whichever source, Arrow type width or unit produced it, so
fingerprints are stable across runs, sources and versions. Where DuckDB's own conversions
fall short (float text not always shortest, nanosecond dates wrong before 1970, no years
outside 0000-9999) the rules do not use them. tests/test_fidelity.py checks them against an
independent statement in Python.

==========================  ================================================================
Arrow type                  text
==========================  ================================================================
string, large_string,       as is (byte for byte)
string_view, dictionary
integers (8-64 bit,         decimal digits, ``-`` for negatives (``18446744073709551615``)
signed and unsigned)
decimal(p, s), any width    exact digits, no exponent, trailing fractional zeros and a
                            trailing ``.`` removed (``1520.50`` → ``1520.5``, ``100.00`` →
                            ``100``, ``-0.00`` → ``0``); negative scales written out
                            (``1.23E+4`` → ``12300``); precision above 38 kept exact
double                      the shortest text that reads back to the same double, laid out
                            as Python's ``repr``: positional from 1e-4 to below 1e16 with at
                            least one decimal, else ``d.ddde±XX`` (``0.1``, ``1.0``,
                            ``1e+16``, ``1e-05``, ``1.2345678901234568e+17``)
float (32 bit)              the same for a 32-bit float: shortest digits that read back to the
                            same 32-bit float (``0.1``, not ``0.10000000149011612``)
half float (16 bit)         as the 32-bit float of the same value (``0.1`` → ``0.099975586``)
NaN, ±inf, -0.0             ``NaN``, ``Infinity``, ``-Infinity``; ``-0.0`` as ``0.0``
bool                        ``true`` / ``false``
date32, date64              ``YYYY-MM-DD``; years outside 0000-9999 as ``+YYYYYY`` /
                            ``-YYYYYY`` (ISO 8601 expanded, as JavaScript's
                            ``Date.toISOString``; astronomical years: 1 BC is ``0000``)
timestamp (s, ms, us, ns)   ``YYYY-MM-DDTHH:MM:SS`` with the same year rule, then ``.ffffff``
                            when the sub-second part is not zero, ``.fffffffff`` when it is not
                            a whole number of microseconds; the same instant gives the same
                            text in every unit
timestamp with a zone       the same instant in UTC, with ``Z`` (the zone name is not sent)
±infinity, out of range     a date that is DuckDB's ``infinity`` / ``-infinity`` or outside
                            its dates, a timestamp that is ``±infinity`` or outside its
                            timestamps (-290308-12-21 to 294247-01-10): no text; the row is
                            rejected (``value_out_of_range``, see staging.py)
time32, time64              ``HH:MM:SS`` and the same fraction rule
null (all-NULL column)      an empty cell (or the ``null:`` replacement)
uuid extension              lowercase ``8-4-4-4-12`` hex
json extension              the JSON, compacted (as ``format: json``)
binary, fixed/large binary  no text form: ``format: base64`` or ``format: hex`` (lowercase)
list, struct, map, union    no text form: ``format: json`` (a union DuckDB cannot read, a
                            dense one, needs a cast to text in the query)
interval, duration          no text form: ``format: json`` writes the ISO 8601 duration as a
                            JSON string (``"P1Y2M3DT4H5M6.5S"``, see :func:`_duration_text`)
others                      no text form: cast the column in the query
==========================  ================================================================

``format:`` overrides the rule for one attribute:

- ``json`` (any type): nested values as DuckDB's ``to_json`` writes them (compact, keys in
  declared order); a scalar as a JSON scalar (strings, dates, times quoted);
- ``base64`` / ``hex`` (binary);
- a strftime pattern (dates, times, timestamps; timestamps with a zone in UTC, so ``%Z``
  is ``UTC`` and ``%z`` ``+0000``), e.g. ``%Y-%m-%d``, with the directives of
  :data:`DATE_DIRECTIVES`, :data:`CLOCK_DIRECTIVES` and :data:`ZONE_DIRECTIVES` only;
- a printf pattern with one conversion (numbers), e.g. ``%.2f``, ``%05d``, ``EUR %.2f``.
  ``%.Nf`` (no flags or width) on integers and decimals is exact, rounded half away from
  zero in decimal arithmetic; other patterns format decimals as doubles (DuckDB's printf).
  ``%d %i %x %X %o`` take integer columns only. A result that reads as a negative zero
  (``-0.00``) is written without the sign; NaN and infinities keep their words; ``%f`` of a
  value of magnitude 2^63 or more, whose digits DuckDB's printf gets wrong, is written in the
  default form instead.

Types with no text form, and patterns that do not apply to a column's type or that DuckDB
cannot format, are config errors naming the attribute, found before anything is read.

Then NULL, and the empty text (which Target ignores just like NULL), become the attribute's
``null:`` replacement, or an empty cell; and the text is URL-encoded as UTF-8 (only
``A-Z a-z 0-9 - _ . ~`` stay as they are, a space is ``%20``).
"""

from __future__ import annotations

import contextlib
import decimal
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING
from urllib.parse import quote

from .errors import ConfigError

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from .config import Attribute, SyncConfig

# Bump when any rule above changes: it is part of every fingerprint, so a new rule resends
# every profile once instead of silently keeping old texts in Target.
#   1  first release
#   2  expanded years, nanoseconds, fractions of times, half floats, decimal256, negative
#      scales, uuid/json extensions, exact %.Nf, null: also replaces the empty text
SERIALIZATION_VERSION = 2

# Units per second of Arrow's time units.
_UNITS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def _interval_struct() -> pa.DataType:
    import pyarrow as pa

    return pa.struct([("months", pa.int32()), ("days", pa.int32()), ("nanoseconds", pa.int64())])


_MAX_DECIMAL128 = 38


def url_encode(text: str) -> str:
    """URL-encode like DuckDB's ``url_encode``: UTF-8, unreserved characters kept."""
    return quote(text, safe="-_.~")


def quote_ident(name: str) -> str:
    """A DuckDB identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def sql_literal(text: str) -> str:
    """A DuckDB string literal."""
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Column:
    """One Target attribute as SQL: its name, the expression giving its plain text, and
    (for dates and timestamps) the expression saying why a value has none (else NULL)."""

    name: str
    text_sql: str
    null_replacement: str | None
    problem_sql: str | None = None


# -- the Arrow side: what DuckDB is handed -----------------------------------------------


def _ext(t: pa.DataType) -> str | None:
    """The extension name of an Arrow extension type (``arrow.uuid``, ...), else None."""
    import pyarrow as pa

    return t.extension_name if isinstance(t, pa.BaseExtensionType) else None


def ingest_type(t: pa.DataType) -> pa.DataType:
    """The Arrow type a column of type ``t`` is handed to DuckDB as.

    DuckDB cannot read half floats, 256-bit decimals or negative decimal scales, casts
    nanosecond timestamps to dates wrongly before 1970, cannot compute some timestamp
    functions on ``TIMESTAMP_S`` before the year 1000, and writes some floats with more
    digits than needed (3.1219712e+25 as 3.1219712000000002e+25, 0.7% of 32-bit floats).
    So temporal values reach DuckDB as their plain integers (days, or units since the epoch
    or since midnight) and are written out with integer arithmetic; floats as Arrow's
    shortest round-trip text (double-conversion; half floats via 32-bit floats), which is
    also faster than DuckDB's cast; wide decimals as exact text.
    """
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        value = ingest_type(t.value_type)
        return t if value == t.value_type else value
    if pa.types.is_floating(t):
        return pa.string()
    if pa.types.is_decimal(t):
        precision, scale = t.precision, t.scale
        if scale < 0:
            precision, scale = precision - scale, 0
        if precision > _MAX_DECIMAL128:
            return pa.string()
        if (precision, scale) != (t.precision, t.scale) or not pa.types.is_decimal128(t):
            return pa.decimal128(precision, scale)
        return t
    if (
        pa.types.is_timestamp(t)
        or pa.types.is_time(t)
        or pa.types.is_date64(t)
        or pa.types.is_duration(t)
    ):
        return pa.int64()
    if pa.types.is_interval(t):
        return _interval_struct()
    return t


def ingest_array(array: pa.Array, t: pa.DataType) -> pa.Array:
    """``array`` (of type ``t``) converted to :func:`ingest_type` of ``t``."""
    import pyarrow as pa

    target = ingest_type(t)
    if target == t:
        return array
    if pa.types.is_dictionary(t):
        return ingest_array(array.cast(t.value_type), t.value_type)
    if (
        pa.types.is_timestamp(t)
        or pa.types.is_time64(t)
        or pa.types.is_date64(t)
        or pa.types.is_duration(t)
    ):
        return array.view(pa.int64())
    if pa.types.is_interval(t):
        return _interval_parts(array)
    if pa.types.is_time32(t):
        return array.view(pa.int32()).cast(pa.int64())
    if pa.types.is_float16(t):
        array = array.cast(pa.float32())
    if pa.types.is_decimal(t) and pa.types.is_string(target):
        if t.scale < 0:
            array = array.cast(pa.decimal256(t.precision - t.scale, 0))
        return array.cast(pa.string())
    return array.cast(target)


def _interval_parts(array: pa.Array) -> pa.Array:
    """A month_day_nano_interval array as the struct of its three integers, read straight
    from its buffer (16 bytes a value: int32 months, int32 days, int64 nanoseconds)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    names = ("months", "days", "nanoseconds")
    layout = np.dtype(list(zip(names, ("<i4", "<i4", "<i8"), strict=True)))
    data = array.buffers()[1]
    values = np.frombuffer(data, dtype=layout, count=array.offset + len(array))[array.offset :]
    return pa.StructArray.from_arrays(
        [pa.array(values[name]) for name in names],
        fields=list(_interval_struct()),
        mask=pc.is_null(array) if array.null_count else None,
    )


def ingest_reader(reader: pa.RecordBatchReader, columns: list[str]) -> pa.RecordBatchReader:
    """The source stream as DuckDB should ingest it: only ``columns``, types converted.

    Unmapped columns are dropped (DuckDB need not read them, nor be able to). Returns
    ``reader`` itself when nothing needs to change.
    """
    import pyarrow as pa

    schema = reader.schema
    wanted = list(dict.fromkeys(columns))
    indices = [schema.get_field_index(name) for name in wanted]
    fields = [schema.field(i) for i in indices]
    types = [ingest_type(f.type) for f in fields]
    if wanted == schema.names and all(t == f.type for t, f in zip(types, fields, strict=True)):
        return reader
    out = pa.schema([pa.field(f.name, t) for f, t in zip(fields, types, strict=True)])

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            arrays = [
                ingest_array(batch.column(i), f.type) for i, f in zip(indices, fields, strict=True)
            ]
            yield pa.RecordBatch.from_arrays(arrays, schema=out)

    return pa.RecordBatchReader.from_batches(out, batches())


# -- the SQL side: canonical text ----------------------------------------------------------


def _floor_div(x: str, n: int) -> str:
    """SQL for floor(x / n), exact, for a BIGINT ``x`` and a positive constant ``n``."""
    return f"({x} // {n} - CASE WHEN {x} % {n} < 0 THEN 1 ELSE 0 END)"


def _modulo(x: str, n: int) -> str:
    """SQL for x mod n in [0, n), for a BIGINT ``x`` and a positive constant ``n``."""
    return f"((({x} % {n}) + {n}) % {n})"


def _float_text(c: str) -> str:
    """SQL rewriting Arrow's shortest text of a float (see :func:`ingest_type`) as Python's
    ``repr`` writes it: positional for exponents -4 to 15 with at least one decimal, else
    ``d.ddde±XX`` with at least two exponent digits; ``NaN``, ``Infinity``, ``0.0``.

    Arrow writes the same shortest digits, positional for exponents -6 to 9 only, with no
    ``.0`` and a one-digit exponent; the common case is one ``contains`` away.
    """
    sign = f"CASE WHEN starts_with({c}, '-') THEN '-' ELSE '' END"
    absolute = f"ltrim({c}, '-')"
    exponent = f"CAST(split_part({c}, 'e', 2) AS INTEGER)"
    digits = f"replace(ltrim(split_part({c}, 'e', 1), '-'), '.', '')"
    positional = (
        f"CASE WHEN length({digits}) <= {exponent} + 1 "
        f"THEN rpad({digits}, {exponent} + 1, '0') || '.0' "
        f"ELSE left({digits}, {exponent} + 1) || '.' || substr({digits}, {exponent} + 2) END"
    )
    scientific = (
        f"split_part({c}, 'e', 1) || 'e' || CASE WHEN {exponent} < 0 THEN '-' ELSE '+' END "
        f"|| printf('%02d', abs({exponent}))"
    )
    # 0.0000ddd (exponent -5 or -6) is scientific in repr.
    fraction = f"substr({absolute}, 3)"
    small_digits = f"ltrim({fraction}, '0')"
    small = (
        f"{sign} || left({small_digits}, 1) || CASE WHEN length({small_digits}) > 1 "
        f"THEN '.' || substr({small_digits}, 2) ELSE '' END || 'e-' || "
        f"printf('%02d', length({fraction}) - length({small_digits}) + 1)"
    )
    # Most floats are already written as repr writes them; those go first (this test
    # implies every condition under which the rules below keep the text as it is).
    return (
        f"CASE WHEN contains({c}, '.') AND NOT contains({c}, 'e') "
        f"AND NOT contains({c}, '0.0000') THEN {c} "
        f"WHEN {c} = 'nan' THEN 'NaN' WHEN {c} = 'inf' THEN 'Infinity' "
        f"WHEN {c} = '-inf' THEN '-Infinity' WHEN {c} IN ('0', '-0') THEN '0.0' "
        f"WHEN contains({c}, 'e') THEN CASE WHEN {exponent} BETWEEN 0 AND 15 "
        f"THEN {sign} || {positional} ELSE {scientific} END "
        f"WHEN starts_with({absolute}, '0.0000') THEN {small} "
        f"WHEN contains({c}, '.') THEN {c} ELSE {c} || '.0' END"
    )


def _date_text(d: str) -> str:
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


def _clock_text(units: str, per_second: int) -> str:
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


def _epoch_date(days: str) -> str:
    return f"(DATE '1970-01-01' + CAST({days} AS INTEGER))"


# The first and last second of years 0000 to 9999, since the epoch.
_YEAR_0 = -62_167_219_200
_YEAR_10000 = 253_402_300_800

# DuckDB's infinities as they reach Arrow: DATE 'infinity' is the largest date32, TIMESTAMP
# 'infinity' (in every unit) the largest int64; '-infinity' their negation. Its dates and
# timestamps lie strictly between the two; so do the values written here.
_DATE_INFINITY = 2**31 - 1
_INT64_INFINITY = 2**63 - 1
_MS_PER_DAY = 86_400_000


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
        last = (_DATE_INFINITY - 1) * _MS_PER_DAY
        valid = f"({c} BETWEEN {-last} AND {last + _MS_PER_DAY - 1})"
        infinity, minus_infinity = f"{c} = {_INT64_INFINITY}", f"{c} = {-_INT64_INFINITY}"
        what = "dates (-5877641-06-25 to 5881580-07-10)"
    elif pa.types.is_timestamp(t):
        per_micro = 1_000_000 // _UNITS[t.unit] if t.unit != "ns" else 1
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


def _within_limits(c: str, t: pa.DataType, text: str) -> str:
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


def _timestamp_text(c: str, unit: str, zone: bool) -> str:
    per_second = _UNITS[unit]
    per_day = 86_400 * per_second
    whole = "'%Y-%m-%dT%H:%M:%S'"
    if unit == "ns":
        # 1677 to 2262 only: always within years 0000-9999.
        ts = f"make_timestamp({_floor_div(c, 1000)})"
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
            f"{_date_text(_epoch_date(_floor_div(c, per_day)))} || 'T' || "
            f"{_clock_text(_modulo(c, per_day), per_second)}"
        )
        low, high = _YEAR_0 * per_second, _YEAR_10000 * per_second - 1
        text = f"CASE WHEN {c} BETWEEN {low} AND {high} THEN {fast} ELSE {slow} END"
    suffix = " || 'Z'" if zone else ""
    return f"(({text}){suffix})"


def _timestamp_value(c: str, unit: str) -> str:
    """SQL for the DuckDB TIMESTAMP (or TIMESTAMP_NS) of epoch units ``c``."""
    if unit == "ns":
        return f"make_timestamp_ns({c})"
    return f"make_timestamp({c} * {1_000_000 // _UNITS[unit]})"


_PRINTF_SPEC = re.compile(r"%(?P<flags>[-+ #0]*)(?P<width>\d*)(?:\.(?P<precision>\d+))?(?P<conv>.)")
_FLOAT_CONVERSIONS = set("fFeEgG")
_INTEGER_CONVERSIONS = set("dixXo")
_STRFTIME_HINT = "a strftime pattern such as %Y-%m-%d"


def _printf_spec(fmt: str, where: str) -> re.Match[str]:
    specs = [m for m in _PRINTF_SPEC.finditer(fmt) if m.group(0) != "%%"]
    if len(specs) != 1:
        raise ConfigError(
            f"{where}: format '{fmt}' must hold exactly one printf conversion such as %.2f "
            f"or %05d (write %% for a literal percent sign)"
        )
    return specs[0]


def _exact_fixed(c: str, t: pa.DataType, places: int) -> str:
    """SQL writing an integer or decimal with exactly ``places`` decimals, exactly."""
    import pyarrow as pa

    scale = t.scale if pa.types.is_decimal(t) else 0
    if places < scale:
        return f"CAST(round({c}, {places}) AS VARCHAR)"
    pad = ("." if scale == 0 else "") + "0" * (places - scale) if places else ""
    return f"(CAST({c} AS VARCHAR) || {sql_literal(pad)})" if pad else f"CAST({c} AS VARCHAR)"


def _printf_sql(c: str, t: pa.DataType, fmt: str, where: str) -> str:
    """SQL for a printf ``format:`` on a number column of (source) type ``t``."""
    import pyarrow as pa

    spec = _printf_spec(fmt, where)
    conv = spec.group("conv")
    is_float = pa.types.is_floating(t)
    if conv in _INTEGER_CONVERSIONS:
        if not pa.types.is_integer(t):
            raise ConfigError(
                f"{where}: format '{fmt}' writes an integer, but the column holds {t} "
                f"values; use a pattern such as %.0f or %.2f"
            )
        return f"printf({sql_literal(fmt)}, {c})"
    if conv not in _FLOAT_CONVERSIONS:
        raise ConfigError(
            f"{where}: format '{fmt}': %{conv} is not a number conversion; use one of "
            f"%d %i %x %X %o (integers) or %f %e %g (any number)"
        )
    exact = (
        conv == "f"
        and not spec.group("flags")
        and not spec.group("width")
        and not is_float
        and (pa.types.is_integer(t) or t.precision <= _MAX_DECIMAL128)
    )
    if exact:
        places = int(spec.group("precision") or 6)
        before = fmt[: spec.start()].replace("%%", "%")
        after = fmt[spec.end() :].replace("%%", "%")
        text = _exact_fixed(c, ingest_type(t), places)
        if before:
            text = f"{sql_literal(before)} || {text}"
        if after:
            text = f"{text} || {sql_literal(after)}"
        return f"({text})"
    # Floats arrive as their shortest text, which reads back to the very same value.
    number = f"CAST({c} AS {'DOUBLE' if pa.types.is_float64(t) or not is_float else 'FLOAT'})"
    # A value that formats like zero once its sign is dropped is written as zero: no "-0.00".
    signless = (
        f"CASE WHEN {number} <= 0 AND printf({sql_literal(fmt)}, -{number}) = "
        f"printf({sql_literal(fmt)}, CAST(0 AS DOUBLE)) THEN CAST(0 AS DOUBLE) ELSE {number} END"
    )
    # DuckDB's printf writes wrong digits for %f of 2^63 and more (6.3e20 comes out with a
    # fraction); such values keep their default text instead.
    huge = (
        f"WHEN abs({number}) >= 9223372036854775808.0 THEN {_number_text(c, t)} "
        if conv in "fF"
        else ""
    )
    return (
        f"CASE WHEN isnan({number}) THEN 'NaN' "
        f"WHEN {number} = 'infinity' THEN 'Infinity' "
        f"WHEN {number} = '-infinity' THEN '-Infinity' {huge}"
        f"ELSE printf({sql_literal(fmt)}, {signless}) END"
    )


def _number_text(c: str, t: pa.DataType) -> str:
    """SQL for the default text of a number column (as ingested)."""
    import pyarrow as pa

    if pa.types.is_floating(t):
        return _float_text(c)
    if pa.types.is_decimal(t) and t.scale > 0:
        # rtrim is slow: only a text ending in 0 needs it (3x faster at 10M values).
        text = f"CAST({c} AS VARCHAR)"
        trimmed = (
            f"CASE WHEN ends_with({text}, '0') THEN rtrim(rtrim({text}, '0'), '.') ELSE {text} END"
        )
        if ingest_type(t) != pa.string():
            return trimmed
        # Arrow writes decimals under 1e-6 as 1.2E-7 (and zero as 0E-8): write them out.
        exponent = f"CAST(split_part({c}, 'E', 2) AS INTEGER)"
        digits = f"rtrim(replace(ltrim(split_part({c}, 'E', 1), '-'), '.', ''), '0')"
        sign = f"CASE WHEN starts_with({c}, '-') THEN '-' ELSE '' END"
        return (
            f"CASE WHEN NOT contains({c}, 'E') THEN {trimmed} WHEN {digits} = '' THEN '0' "
            f"ELSE {sign} || '0.' || repeat('0', -{exponent} - 1) || {digits} END"
        )
    return f"CAST({c} AS VARCHAR)"


def _is_binary(t: pa.DataType) -> bool:
    import pyarrow as pa

    return (
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
        or pa.types.is_binary_view(t)
    )


def _is_text(t: pa.DataType) -> bool:
    import pyarrow as pa

    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def value_text_sql(column: str, arrow_type: pa.DataType, fmt: str | None, where: str) -> str:
    """SQL turning ``column`` (of ``arrow_type`` in the source) into its canonical text.

    NULL stays NULL. The SQL reads the column as :func:`ingest_reader` hands it to DuckDB.
    ``where`` starts every error message ("FILE:LINE: attributes.NAME").
    """
    import pyarrow as pa

    c = quote_ident(column)
    t = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
    ext = _ext(t)
    if pa.types.is_null(t):
        return "CAST(NULL AS VARCHAR)"
    if ext == "arrow.json" and fmt in (None, "json"):
        return f"CAST(json({c}) AS VARCHAR)"
    if fmt == "json":
        if pa.types.is_nested(t) or ext is not None:
            _check_readable(t, where)
            return f"CAST(to_json({c}) AS VARCHAR)"
        if _is_binary(t):
            raise ConfigError(
                f"{where}: format: json does not apply to binary data; use base64 or hex"
            )
        if pa.types.is_boolean(t) or pa.types.is_integer(t):
            return f"CAST(to_json({c}) AS VARCHAR)"
        if pa.types.is_interval(t) or pa.types.is_duration(t):
            return f"CAST(to_json({_interval_text(c, t)}) AS VARCHAR)"
        if pa.types.is_floating(t) or pa.types.is_decimal(t):
            # A JSON number; NaN and infinities have none, so they are written as strings.
            text = value_text_sql(column, arrow_type, None, where)
            return (
                f"CASE WHEN {text} IN ('NaN', 'Infinity', '-Infinity') "
                f"THEN CAST(to_json({text}) AS VARCHAR) ELSE {text} END"
            )
        return f"CAST(to_json({value_text_sql(column, arrow_type, None, where)}) AS VARCHAR)"
    if ext == "arrow.uuid":
        if fmt is not None:
            raise ConfigError(f"{where}: format '{fmt}' does not apply to uuid values")
        return f"lower(CAST({c} AS VARCHAR))"
    if _is_binary(t):
        if fmt == "base64":
            return f"base64(CAST({c} AS BLOB))"
        if fmt == "hex":
            return f"lower(hex(CAST({c} AS BLOB)))"
        raise ConfigError(
            f"{where}: binary data ({t}) has no text form; set format: base64 or format: hex"
        )
    if pa.types.is_nested(t) or ext is not None:
        _check_readable(t, where)
        raise ConfigError(f"{where}: {t} values have no text form of their own; set format: json")
    if (pa.types.is_interval(t) or pa.types.is_duration(t)) and fmt is None:
        raise ConfigError(
            f"{where}: {t} values have no text form; set format: json to send each as an "
            'ISO 8601 duration in JSON ("P1DT2H30M"), or cast the column to text or a number '
            "in the query"
        )
    if fmt is not None:
        return _formatted(c, t, fmt, where)
    if _is_text(t):
        return c
    if pa.types.is_boolean(t):
        return f"CASE WHEN {c} THEN 'true' WHEN NOT {c} THEN 'false' END"
    if pa.types.is_integer(t):
        return f"CAST({c} AS VARCHAR)"
    if pa.types.is_decimal(t) or pa.types.is_floating(t):
        # Decimals: exact text with `scale` decimals (from DuckDB, or from Arrow above 38
        # digits), trailing zeros trimmed. Floats: Arrow's shortest text, rewritten.
        return _number_text(c, t)
    if pa.types.is_date32(t):
        return _within_limits(c, t, _date_text(c))
    if pa.types.is_date64(t):
        return _within_limits(c, t, _date_text(_epoch_date(_floor_div(c, _MS_PER_DAY))))
    if pa.types.is_timestamp(t):
        return _within_limits(c, t, _timestamp_text(c, t.unit, t.tz is not None))
    if pa.types.is_time(t):
        return _clock_text(c, _UNITS[t.unit])
    raise ConfigError(
        f"{where}: {t} values have no text form; set format: json, or cast the column "
        "to text or a number in the query"
    )


def _interval_text(c: str, t: pa.DataType) -> str:
    """SQL for the ISO 8601 duration of an interval or duration column (as ingested)."""
    import pyarrow as pa

    if pa.types.is_interval(t):
        return _duration_text(f"{c}.months", f"{c}.days", f"{c}.nanoseconds", 1_000_000_000)
    return _duration_text(None, None, c, _UNITS[t.unit])


def describe_rule(arrow_type: pa.DataType, fmt: str | None) -> str:
    """The rule :func:`value_text_sql` applies to ``arrow_type`` (with ``format: fmt``), in
    a few words for people (``validate``): the table in this module's docstring, abridged.

    It describes and does not check: a format that does not fit the type is reported by
    :func:`value_text_sql`. Types with no text form of their own say which format they need.
    """
    import pyarrow as pa

    t = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
    ext = _ext(t)
    if pa.types.is_null(t):
        return "empty cell (the column is NULL throughout)"
    if fmt == "json" and (pa.types.is_interval(t) or pa.types.is_duration(t)):
        return "ISO 8601 duration, as a JSON string"
    if fmt == "json" or (fmt is None and ext == "arrow.json"):
        return "JSON, compact"
    if fmt == "base64":
        return "base64"
    if fmt == "hex":
        return "hex, lowercase"
    if fmt is not None:
        if pa.types.is_date(t) or pa.types.is_time(t) or pa.types.is_timestamp(t):
            zone = pa.types.is_timestamp(t) and t.tz is not None
            return f"strftime '{fmt}'" + (" of the UTC time" if zone else "")
        return f"printf '{fmt}'"
    if ext == "arrow.uuid":
        return "UUID, lowercase hex"
    if _is_binary(t):
        return "needs format: base64 or format: hex"
    if pa.types.is_nested(t) or ext is not None:
        return "needs format: json"
    if _is_text(t):
        return "text as is"
    if pa.types.is_boolean(t):
        return "true/false"
    if pa.types.is_integer(t):
        return "integer digits"
    if pa.types.is_decimal(t):
        return "decimal, exact, trailing zeros trimmed"
    if pa.types.is_floating(t):
        return "shortest round-trip float"
    if pa.types.is_date(t):
        return "YYYY-MM-DD"
    if pa.types.is_timestamp(t):
        return "ISO 8601 timestamp in UTC with Z" if t.tz is not None else "ISO 8601 timestamp"
    if pa.types.is_time(t):
        return "HH:MM:SS with fraction when not zero"
    return "needs format: json"


def _formatted(c: str, t: pa.DataType, fmt: str, where: str) -> str:
    """SQL for a strftime/printf ``format:``, tried once on a sample value."""
    import pyarrow as pa

    if fmt in ("base64", "hex"):
        raise ConfigError(f"{where}: format: {fmt} applies to binary data, not to {t} values")
    if pa.types.is_date32(t):
        pattern = sql_literal(strftime_pattern(fmt, t, where))
        sql = _within_limits(c, t, f"strftime({c}, {pattern})")
    elif pa.types.is_date64(t):
        pattern = sql_literal(strftime_pattern(fmt, t, where))
        date = _epoch_date(_floor_div(c, _MS_PER_DAY))
        sql = _within_limits(c, t, f"strftime({date}, {pattern})")
    elif pa.types.is_timestamp(t) or pa.types.is_time(t):
        pattern = sql_literal(strftime_pattern(fmt, t, where))
        sql = _within_limits(c, t, f"strftime({_timestamp_value(c, t.unit)}, {pattern})")
    elif pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        if pa.types.is_decimal(t) and ingest_type(t) == pa.string():
            raise ConfigError(
                f"{where}: format '{fmt}' cannot apply to {t} (over 38 digits); "
                "round or cast the column in the query"
            )
        sql = _printf_sql(c, t, fmt, where)
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
            text = str(exc).strip()
            return text.splitlines()[0] if text else type(exc).__name__
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


def _check_readable(t: pa.DataType, where: str) -> None:
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
            text = str(exc).strip()
            return text.splitlines()[0] if text else type(exc).__name__
        finally:
            with contextlib.suppress(duckdb.Error):
                con.unregister("probe")
    return None


def id_text_sql(column: str, arrow_type: pa.DataType, where: str) -> str:
    """SQL giving the profile id as text (the raw id, before URL-encoding)."""
    import pyarrow as pa

    t = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
    if not (
        _is_text(t)
        or pa.types.is_integer(t)
        or (pa.types.is_decimal(t) and t.scale <= 0)
        or _ext(t) == "arrow.uuid"
    ):
        raise ConfigError(
            f"{where}: an id must be text or an integer, not {t}; cast it in the query"
        )
    return value_text_sql(column, arrow_type, None, where)


def attribute_columns(config: SyncConfig, schema: pa.Schema) -> list[Column]:
    """Each mapped attribute as SQL over the source result, checked against its schema."""
    check_columns(config, schema)
    columns = []
    for name, spec in config.attributes.items():
        where = config.locate("attributes", name)
        if spec.value is not None:
            columns.append(Column(name, sql_literal(spec.value), None))
            continue
        assert spec.column is not None
        field = schema.field(spec.column)
        where = f"{where} (column {spec.column})"
        text = value_text_sql(spec.column, field.type, spec.format, where)
        problem = value_problem_sql(spec.column, field.type)
        columns.append(Column(name, text, spec.null, problem))
    return columns


def mapped_columns(config: SyncConfig) -> list[str]:
    """The source columns a sync reads: the identity column, then the mapped ones."""
    wanted = [config.identity.column] + [
        spec.column for spec in config.attributes.values() if spec.column is not None
    ]
    return list(dict.fromkeys(wanted))


def check_columns(config: SyncConfig, schema: pa.Schema) -> None:
    """Raise a ConfigError naming every mapped column the result lacks."""
    available = set(schema.names)
    has = ", ".join(schema.names) or "no columns"
    if config.identity.column not in available:
        raise ConfigError(
            f"{config.locate('identity', 'column')}: the query result has no column "
            f"'{config.identity.column}' (it has: {has}); fix the identity or the query"
        )
    for name, spec in config.attributes.items():
        if spec.column is not None and spec.column not in available:
            raise ConfigError(
                f"{config.locate('attributes', name)}: the query result has no column "
                f"'{spec.column}' (it has: {has}); fix the mapping or the query"
            )
    wanted = mapped_columns(config)
    duplicated = sorted({n for n in schema.names if schema.names.count(n) > 1} & set(wanted))
    if duplicated:
        raise ConfigError(
            f"{config.locate('source')}: the query result has more than one column named "
            f"{', '.join(duplicated)}; alias them apart in the query"
        )


def mapping_signature(config: SyncConfig) -> str:
    """A short digest of everything that shapes a profile's text, but not of the data.

    Part of every fingerprint: changing an attribute, its null/format rule, the identity
    type or the serialization rules changes every fingerprint, so every profile is resent.
    """
    described = {
        "serialization": SERIALIZATION_VERSION,
        "identity": config.identity.type,
        "attributes": [[name, _describe(spec)] for name, spec in config.attributes.items()],
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]


def mapping_description(config: SyncConfig) -> dict[str, object]:
    """The mapping in a JSON-able form, kept with the snapshot to explain full resends."""
    return {
        "identity": config.identity.type,
        "attributes": {name: _describe(spec) for name, spec in config.attributes.items()},
        "serialization": SERIALIZATION_VERSION,
    }


def _describe(spec: Attribute) -> dict[str, str]:
    return {k: v for k, v in spec.model_dump().items() if v is not None}
