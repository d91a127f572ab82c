"""The Arrow type each built-in PostgreSQL type is read as, whichever driver reads it, and
what either reader says when a value does not fit it."""

from __future__ import annotations

import pyarrow as pa

from ..errors import SourceError
from ..text import one_line

PG_ARROW: dict[str, pa.DataType] = {
    "bool": pa.bool_(),
    "bytea": pa.binary(),
    "int2": pa.int16(),
    "int4": pa.int32(),
    "int8": pa.int64(),
    "float4": pa.float32(),
    "float8": pa.float64(),
    "date": pa.date32(),
    "time": pa.time64("us"),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", "UTC"),
    # Text-like, and types whose text form is the value users mean: kept as strings.
    **dict.fromkeys(
        ("char", "name", "text", "bpchar", "varchar", "json", "jsonb", "uuid", "timetz"),
        pa.string(),
    ),
}


def does_not_fit(label: str, column: str, arrow_type: pa.DataType, exc: Exception) -> SourceError:
    """The one-line error for a value of ``column`` that its Arrow type cannot hold."""
    return SourceError(
        f"{label}: column '{column}' holds a value that does not fit its type {arrow_type} "
        f"({one_line(exc, 300)}); CAST it in the query; nothing was sent"
    )
