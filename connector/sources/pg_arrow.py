"""PostgreSQL read straight into Arrow: ADBC's binary ``COPY``, no Python object per value.

The ``sqlalchemy`` source reads PostgreSQL through psycopg, one Python object per value. When
``adbc-driver-postgresql`` is installed (the ``postgres`` extra), this module reads the same
query with ADBC instead and hands over exactly the Arrow the psycopg path would have built,
so the canonical texts, the fingerprints and the bytes sent to Target do not depend on the
reader (tests/test_pg_arrow.py compares the two, value by value):

- the column types are the psycopg path's (connector/sources/sqlalchemy_source.py), chosen
  from the same PostgreSQL types: ``numeric(p,s)`` with ``p <= 38`` as ``decimal128(p, s)``,
  other numerics as their exact text without trailing zeros (ADBC gives ``12.50``, ``nan``,
  ``inf``; psycopg's path ``12.5``, ``NaN``, ``Infinity``), ``uuid`` as its text (ADBC gives
  16 bytes), ``json``/``jsonb`` as the server's text;
- ``infinity`` dates and timestamps, and timestamps past year 294247, overflow in ADBC's
  shift from PostgreSQL's epoch (2000) to Arrow's (1970): they are told apart from real
  values (which never come near) and mapped to the values connector/sources/pg_temporal.py
  gives them, so the staging SQL rejects them as ``value_out_of_range`` as before.

A column of any other type (interval, timetz, inet, an enum, arrays of anything but numbers,
booleans and text, ...) sends the whole query through psycopg: :func:`plan` says which.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .pg_temporal import (
    DATE_BELOW_RANGE,
    DATE_INFINITY,
    TIMESTAMP_BELOW_RANGE,
    TIMESTAMP_INFINITY,
)
from .pg_types import PG_ARROW, does_not_fit

_log = logging.getLogger(__name__)

_TYPE_KEY = b"POSTGRESQL:type"
_TYPMOD_KEY = b"POSTGRESQL:typmod"

# Types read exactly, as the psycopg path types them (timetz ADBC gives as opaque bytes).
_SCALARS: dict[str, pa.DataType] = {k: t for k, t in PG_ARROW.items() if k != "timetz"}
# Array elements read exactly: no epoch shift, no text to rewrite inside a list.
_ARRAY_ELEMENTS = {"bool", "int2", "int4", "int8", "float4", "float8", "text", "varchar", "name"}

# ADBC shifts PostgreSQL's values (days or microseconds since 2000-01-01) to 1970 by adding
# these, in 32- and 64-bit integers: infinity (the largest integer) wraps around to the
# smallest, -infinity lands just above it. Real dates and timestamps from 4713 BC never get
# anywhere near those values.
_DAYS_2000 = 10_957
_MICROS_2000 = _DAYS_2000 * 86_400_000_000
_DATE_MINUS_INFINITY = -(2**31) + _DAYS_2000
_TIMESTAMP_MINUS_INFINITY = -(2**63) + _MICROS_2000
_OLDEST_DAYS = -2_440_550  # 4713-01-01 BC, PostgreSQL's first date
_OLDEST_MICROS = _OLDEST_DAYS * 86_400_000_000


def available() -> bool:
    """Whether the ADBC PostgreSQL driver is installed."""
    try:
        import adbc_driver_postgresql.dbapi  # noqa: F401
    except ImportError:
        return False
    return True


def plan(schema: pa.Schema) -> tuple[pa.Schema | None, str | None]:
    """The Arrow schema the psycopg path gives ADBC's ``schema``, or None and why not."""
    fields = []
    for field in schema:
        target = _target_type(field)
        if target is None:
            return None, f"column '{field.name}' is {_pg_name(field)}"
        fields.append(pa.field(field.name, target))
    return pa.schema(fields), None


def _pg_name(field: pa.Field) -> str:
    return (field.metadata or {}).get(_TYPE_KEY, b"of an unknown type").decode()


def _target_type(field: pa.Field) -> pa.DataType | None:
    name = _pg_name(field)
    if name == "numeric":
        typmod = int((field.metadata or {}).get(_TYPMOD_KEY, b"-1"))
        if typmod < 4:
            return pa.string()
        precision, scale = (typmod - 4) >> 16, (typmod - 4) & 0xFFFF
        if precision > 38:
            return pa.string()
        # numeric(p, s) with a negative scale (PostgreSQL 15): left to psycopg's path.
        return pa.decimal128(precision, scale) if 0 <= scale <= precision else None
    if name.startswith("_") and name[1:] in _ARRAY_ELEMENTS:
        return pa.list_(_SCALARS[name[1:]])
    return _SCALARS.get(name)


def convert(batch: pa.RecordBatch, schema: pa.Schema, label: str) -> pa.RecordBatch:
    """ADBC's batch as the psycopg path would have built it (``schema`` from :func:`plan`)."""
    arrays = []
    for column, source_field, target in zip(batch.columns, batch.schema, schema, strict=True):
        arrays.append(_column(column, _pg_name(source_field), target, label))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _column(array: pa.Array, name: str, target: pa.Field, label: str) -> pa.Array:
    if isinstance(array, pa.ExtensionArray):
        array = array.storage
    if name == "numeric":
        if pa.types.is_decimal(target.type):
            try:
                return pc.cast(array, target.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise does_not_fit(label, target.name, target.type, exc) from None
        return _numeric_text(array)
    if name == "uuid":
        return _uuid_text(array)
    if name == "date":
        return _shifted(array, pa.int32(), _OLDEST_DAYS, _dates)
    if name in ("timestamp", "timestamptz"):
        return _shifted(array, pa.int64(), _OLDEST_MICROS, _timestamps)
    if array.type != target.type:
        return array.cast(target.type)
    return array


def _numeric_text(array: pa.Array) -> pa.Array:
    """PostgreSQL's numeric text without trailing zeros, as psycopg's path writes a Decimal."""
    fraction = pc.match_substring(array, ".")
    trimmed = pc.replace_substring_regex(array, r"\.?0+$", "")
    text = pc.if_else(fraction, trimmed, array)
    text = pc.if_else(pc.equal(text, ""), "0", text)  # 0.00 -> "" -> 0
    text = pc.if_else(pc.equal(text, "-0"), "0", text)
    for adbc, python in (("nan", "NaN"), ("inf", "Infinity"), ("-inf", "-Infinity")):
        text = pc.if_else(pc.equal(text, adbc), python, text)
    return text.cast(pa.string())


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_DASHES_AFTER = (4, 6, 8, 10)  # bytes before each '-' in 8-4-4-4-12


def _uuid_text(array: pa.Array) -> pa.Array:
    """16-byte UUIDs as their canonical text (lower-case 8-4-4-4-12), without a Python loop."""
    count = len(array)
    raw = np.frombuffer(array.buffers()[1], dtype=np.uint8, count=(array.offset + count) * 16)
    raw = raw[array.offset * 16 :].reshape(count, 16)
    digits = np.empty((count, 32), dtype=np.uint8)
    digits[:, 0::2] = _HEX[raw >> 4]
    digits[:, 1::2] = _HEX[raw & 0x0F]
    parts = np.split(digits, [2 * n for n in _DASHES_AFTER], axis=1)
    dash = np.full((count, 1), ord("-"), dtype=np.uint8)
    text = np.concatenate(
        [parts[0], dash, parts[1], dash, parts[2], dash, parts[3], dash, parts[4]], axis=1
    )
    offsets = np.arange(0, 36 * count + 1, 36, dtype=np.int32)
    validity = array.buffers()[0]
    if validity is not None and array.offset:
        validity = pc.is_valid(array).buffers()[1]
    return pa.StringArray.from_buffers(
        count, pa.py_buffer(offsets), pa.py_buffer(text.tobytes()), validity, array.null_count
    )


def _dates(values: np.ndarray) -> np.ndarray:
    out = values.copy()
    out[values == _DATE_MINUS_INFINITY] = -DATE_INFINITY
    out[values == _DATE_MINUS_INFINITY - 1] = DATE_INFINITY
    out[values < _DATE_MINUS_INFINITY - 1] = DATE_BELOW_RANGE
    return out


def _timestamps(values: np.ndarray) -> np.ndarray:
    out = values.copy()
    out[values == _TIMESTAMP_MINUS_INFINITY] = -TIMESTAMP_INFINITY
    out[values == _TIMESTAMP_MINUS_INFINITY - 1] = TIMESTAMP_INFINITY
    # Past 294247 AD: wrapped around, or (the last microsecond) DuckDB's infinity itself;
    # beyond DuckDB's timestamps either way.
    out[values < _TIMESTAMP_MINUS_INFINITY - 1] = TIMESTAMP_BELOW_RANGE
    out[values == TIMESTAMP_INFINITY] = TIMESTAMP_BELOW_RANGE
    return out


def _shifted(
    array: pa.Array, storage: pa.DataType, oldest: int, fix: Callable[[np.ndarray], np.ndarray]
) -> pa.Array:
    integers = array.view(storage)
    bounds = pc.min_max(integers)
    smallest, largest = bounds["min"].as_py(), bounds["max"].as_py()
    if smallest is None or (smallest >= oldest and largest < TIMESTAMP_INFINITY):
        return array  # the common case: no special value in this batch
    values = integers.to_numpy(zero_copy_only=False)
    fixed = fix(values.astype(np.int64) if storage == pa.int32() else values)
    mask = pc.is_null(integers).to_numpy(zero_copy_only=False)
    return pa.array(fixed.astype(storage.to_pandas_dtype()), storage, mask=mask).view(array.type)


@contextmanager
def connect(uri: str) -> Iterator[Any]:
    """An ADBC connection to the libpq ``uri``."""
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(uri) as conn:
        yield conn


def read_schema(conn: Any, query: str) -> pa.Schema:
    """ADBC's schema of ``query``'s result; the query is prepared, not run."""
    with conn.cursor() as cursor:
        schema: pa.Schema = cursor.adbc_execute_schema(query)
        return schema


@contextmanager
def stream(conn: Any, query: str) -> Iterator[pa.RecordBatchReader]:
    """ADBC's batches of ``query``'s result (binary COPY), as ADBC types them."""
    with conn.cursor() as cursor:
        cursor.execute(query)
        yield cursor.fetch_record_batch()
