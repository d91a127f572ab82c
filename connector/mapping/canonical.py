"""What a profile's fingerprint is made of: each value in a canonical typed form, so that an
unchanged row costs a hash, not a serialization (the text is built for rows that are sent).

The rule every form keeps: **the text Target receives is a function of the canonical value
and the column's shape** (the family below, which goes into the fingerprint's signature).
So a changed text always means a changed canonical value or shape, hence a changed
fingerprint; the reverse may not hold (NULL and ``''`` of a number, -0.0 and 0.0 of a float
are the same text with other fingerprints: such a change is sent once, harmlessly).

============  ==================================================  =========================
shape         canonical value (DuckDB SQL over the ingested       text bound (bytes)
              column, see :mod:`.ingest`)
============  ==================================================  =========================
``num``       integers and decimals up to 38 digits: the integer  ``p + 3`` (digits, sign,
              part as HUGEINT and the fraction as DECIMAL(38,38)  point, a leading 0), 20
              (exact, and 5.1 and 5.10 agree: both are functions  for integers
              of the number alone), each hashed as below
``float``     Arrow's shortest round-trip text of the float       26
              (what the text rule rewrites; ingest makes it)
``bool``      the BOOLEAN                                         5
``date``      days since 1970-01-01 (BIGINT), date32 or date64    14
``ts``,       the instant in nanoseconds (HUGEINT), whatever the  40
``tsz``       unit; ``tsz`` for a zone (its text ends in Z)
``time``      nanoseconds since midnight (HUGEINT)                40
``str``       the string, ``''`` as NULL (both are an empty       its byte length
              cell: the README's NULL rule)
``text``      the canonical text itself, ``''`` as NULL: every    its byte length
              column whose text depends on more than the value
              (a ``format:``, JSON, uuid, binary, decimals over
              38 digits, a constant ``value:``)
``null``      NULL (a column that is NULL throughout)             0
============  ==================================================  =========================

The bounds are never less than the length of the text the value has (tested): a row whose
bounds clear every limit needs no text to be checked (see :mod:`.staging`).

DuckDB hashes a 128-bit value (HUGEINT, a DECIMAL of more than 18 digits) as the XOR of the
hashes of its two 64-bit halves, so 0 and -1 hash alike, as does any value whose halves are
equal (2^64 + 1) or swapped: an integer going from 0 to -1 was never sent (typed-1). A HUGEINT
is therefore hashed as its two halves, a BIGINT and a UBIGINT, which DuckDB combines by
position; a fraction (DECIMAL(38,38), whose halves DuckDB arithmetic cannot reach without
overflowing) is hashed with its DOUBLE beside it, which differs wherever the structured
collisions occur (0 and -1e-38; equal or swapped halves of values that are not within a
double's precision of each other).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

from .ingest import extension_name, ingest_type
from .temporal import MS_PER_DAY, UNITS, floor_div

_ZERO_FRACTION = ("CAST(0 AS DECIMAL(38, 38))", "CAST(0 AS DOUBLE)")
_LOW_64_BITS = "CAST(18446744073709551615 AS HUGEINT)"
# Upper bounds of a canonical text in bytes (the module's table; tests/test_fingerprint.py
# checks them against the longest texts of each type).
INTEGER_BYTES = 20
FLOAT_BYTES = 26
BOOL_BYTES = 5
DATE_BYTES = 14
CLOCK_BYTES = 40


@dataclass(frozen=True)
class Canonical:
    """One column's part of a fingerprint: its hash arguments, its shape, and a bound on the
    bytes of its text (``bytes`` a constant, or ``bytes_sql`` an expression)."""

    values: tuple[str, ...]
    shape: str
    bytes: int = 0
    bytes_sql: str | None = None
    # True: the values are the column's text itself (the text is computed for every row).
    is_text: bool = False


def text_canonical(text: str) -> Canonical:
    """The canonical form of a column fingerprinted by its text (SQL ``text``)."""
    return Canonical(
        (f"nullif({text}, '')",),
        "text",
        bytes_sql=f"strlen(coalesce({text}, ''))",
        is_text=True,
    )


def typed_canonical(c: str, arrow_type: pa.DataType, fmt: str | None) -> Canonical | None:
    """The canonical typed form of column ``c`` (quoted, as ingested) of source type
    ``arrow_type``; None when the column must be fingerprinted by its text."""
    import pyarrow as pa

    t = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
    if fmt is not None or extension_name(t) is not None:
        return None
    if pa.types.is_null(t):
        return Canonical(("CAST(NULL AS VARCHAR)",), "null")
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        # DuckDB reads every string type (dictionaries too) as VARCHAR.
        return Canonical((f"nullif({c}, '')",), "str", bytes_sql=f"strlen(coalesce({c}, ''))")
    if pa.types.is_boolean(t):
        return Canonical((c,), "bool", BOOL_BYTES)
    if pa.types.is_integer(t):
        return Canonical((*_halves(f"CAST({c} AS HUGEINT)"), *_ZERO_FRACTION), "num", INTEGER_BYTES)
    if pa.types.is_decimal(t):
        ingested = ingest_type(t)
        if not pa.types.is_decimal(ingested):
            return None  # over 38 digits: ingested as exact text
        if ingested.scale == 0:
            values = (*_halves(f"CAST({c} AS HUGEINT)"), *_ZERO_FRACTION)
        else:
            fraction = f"CAST({c} - trunc({c}) AS DECIMAL(38, 38))"
            values = (
                *_halves(f"CAST(trunc({c}) AS HUGEINT)"),
                fraction,
                f"CAST({fraction} AS DOUBLE)",
            )
        return Canonical(values, "num", ingested.precision + 3)
    if pa.types.is_floating(t):
        return Canonical((c,), "float", FLOAT_BYTES)
    if pa.types.is_date32(t):
        return Canonical((f"({c} - DATE '1970-01-01')",), "date", DATE_BYTES)
    if pa.types.is_date64(t):
        return Canonical((floor_div(c, MS_PER_DAY),), "date", DATE_BYTES)
    if pa.types.is_timestamp(t):
        shape = "tsz" if t.tz is not None else "ts"
        return Canonical(_halves(_nanoseconds(c, t.unit)), shape, CLOCK_BYTES)
    if pa.types.is_time(t):
        return Canonical(_halves(_nanoseconds(c, t.unit)), "time", CLOCK_BYTES)
    return None


def _halves(value: str) -> tuple[str, str]:
    """A HUGEINT as two hash arguments, its upper and lower 64 bits (see the module's
    docstring: DuckDB's own hash of a HUGEINT confuses 0 and -1)."""
    return (
        f"CAST(({value}) >> 64 AS BIGINT)",
        f"CAST(({value}) & {_LOW_64_BITS} AS UBIGINT)",
    )


def _nanoseconds(c: str, unit: str) -> str:
    factor = 1_000_000_000 // UNITS[unit]
    scaled = f" * {factor}" if factor > 1 else ""
    return f"(CAST({c} AS HUGEINT){scaled})"
