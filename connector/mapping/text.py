"""How each source value becomes the text Target receives, as DuckDB SQL over Arrow columns.

Every rule here is vectorized: Arrow compute while the stream is handed to DuckDB (to bring
a few types into a form DuckDB reads and writes exactly, see :func:`.ingest.ingest_type`), then SQL
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

from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa

from ..sqltext import quote_ident
from .formats import check_readable, formatted_sql
from .ingest import extension_name
from .numbers import number_text
from .temporal import (
    MS_PER_DAY,
    UNITS,
    clock_text,
    date_text,
    epoch_date,
    floor_div,
    interval_text,
    timestamp_text,
    within_limits,
)


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
    ext = extension_name(t)
    if pa.types.is_null(t):
        return "CAST(NULL AS VARCHAR)"
    if ext == "arrow.json" and fmt in (None, "json"):
        return f"CAST(json({c}) AS VARCHAR)"
    if fmt == "json":
        if pa.types.is_nested(t) or ext is not None:
            check_readable(t, where)
            return f"CAST(to_json({c}) AS VARCHAR)"
        if _is_binary(t):
            raise ConfigError(
                f"{where}: format: json does not apply to binary data; use base64 or hex"
            )
        if pa.types.is_boolean(t) or pa.types.is_integer(t):
            return f"CAST(to_json({c}) AS VARCHAR)"
        if pa.types.is_interval(t) or pa.types.is_duration(t):
            return f"CAST(to_json({interval_text(c, t)}) AS VARCHAR)"
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
        check_readable(t, where)
        raise ConfigError(f"{where}: {t} values have no text form of their own; set format: json")
    if (pa.types.is_interval(t) or pa.types.is_duration(t)) and fmt is None:
        raise ConfigError(
            f"{where}: {t} values have no text form; set format: json to send each as an "
            'ISO 8601 duration in JSON ("P1DT2H30M"), or cast the column to text or a number '
            "in the query"
        )
    if fmt is not None:
        return formatted_sql(c, t, fmt, where)
    if _is_text(t):
        return c
    if pa.types.is_boolean(t):
        return f"CASE WHEN {c} THEN 'true' WHEN NOT {c} THEN 'false' END"
    if pa.types.is_integer(t):
        return f"CAST({c} AS VARCHAR)"
    if pa.types.is_decimal(t) or pa.types.is_floating(t):
        # Decimals: exact text with `scale` decimals (from DuckDB, or from Arrow above 38
        # digits), trailing zeros trimmed. Floats: Arrow's shortest text, rewritten.
        return number_text(c, t)
    if pa.types.is_date32(t):
        return within_limits(c, t, date_text(c))
    if pa.types.is_date64(t):
        return within_limits(c, t, date_text(epoch_date(floor_div(c, MS_PER_DAY))))
    if pa.types.is_timestamp(t):
        return within_limits(c, t, timestamp_text(c, t.unit, t.tz is not None))
    if pa.types.is_time(t):
        return clock_text(c, UNITS[t.unit])
    raise ConfigError(
        f"{where}: {t} values have no text form; set format: json, or cast the column "
        "to text or a number in the query"
    )


def describe_rule(arrow_type: pa.DataType, fmt: str | None) -> str:
    """The rule :func:`value_text_sql` applies to ``arrow_type`` (with ``format: fmt``), in
    a few words for people (``validate``): the table in this module's docstring, abridged.

    It describes and does not check: a format that does not fit the type is reported by
    :func:`value_text_sql`. Types with no text form of their own say which format they need.
    """
    import pyarrow as pa

    t = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
    ext = extension_name(t)
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


def id_text_sql(column: str, arrow_type: pa.DataType, where: str) -> str:
    """SQL giving the profile id as text (the raw id, before URL-encoding)."""
    import pyarrow as pa

    t = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
    if not (
        _is_text(t)
        or pa.types.is_integer(t)
        or (pa.types.is_decimal(t) and t.scale <= 0)
        or extension_name(t) == "arrow.uuid"
    ):
        raise ConfigError(
            f"{where}: an id must be text or an integer, not {t}; cast it in the query"
        )
    return value_text_sql(column, arrow_type, None, where)
