"""The Arrow side of a mapping: the source stream narrowed to the mapped columns, with the few
types DuckDB cannot read or write exactly converted before it reads them (see
:func:`ingest_type`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa


def _interval_struct() -> pa.DataType:
    import pyarrow as pa

    return pa.struct([("months", pa.int32()), ("days", pa.int32()), ("nanoseconds", pa.int64())])


MAX_DECIMAL128 = 38


def extension_name(t: pa.DataType) -> str | None:
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
        if precision > MAX_DECIMAL128:
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
