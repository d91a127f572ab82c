"""Sources: each turns a source config into a stream of ``pyarrow.RecordBatch``.

``open_reader(config)`` is the one entry point: a context manager yielding a
``pyarrow.RecordBatchReader`` over the query result, re-batched to about ``batch_size`` rows,
never materialized whole. ``probe_schema(config)`` runs the query with no rows and returns the
result's Arrow schema (for ``validate`` and early column checks).

Engine modules are imported lazily so that a missing optional extra only matters to the
configs that need it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

from ..errors import MissingExtraError

if TYPE_CHECKING:
    import pyarrow as pa

    from ..config import SyncConfig

_MODULES = {
    "duckdb": "connector.sources.duckdb_source",
    "snowflake": "connector.sources.snowflake_source",
    "sqlalchemy": "connector.sources.sqlalchemy_source",
    "dbt": "connector.sources.dbt_source",
}


class SourceModule(Protocol):
    def open_reader(self, config: SyncConfig) -> AbstractContextManager[pa.RecordBatchReader]: ...

    def probe_schema(self, config: SyncConfig) -> pa.Schema: ...


def _module(config: SyncConfig) -> SourceModule:
    module: SourceModule = importlib.import_module(_MODULES[config.source.type])
    return module


def open_reader(config: SyncConfig) -> AbstractContextManager[pa.RecordBatchReader]:
    """Stream the source's result as Arrow record batches (a context manager)."""
    return _module(config).open_reader(config)


def probe_schema(config: SyncConfig) -> pa.Schema:
    """The Arrow schema of the source's result, fetched without reading rows."""
    return _module(config).probe_schema(config)


def require(module: str, extra: str, what: str) -> object:
    """Import an optional engine module, or say which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(what, extra, module) from None


def rebatch(
    schema: pa.Schema, batches: Iterator[pa.RecordBatch], rows: int
) -> pa.RecordBatchReader:
    """A reader yielding batches of exactly ``rows`` rows (the last may be shorter) from
    batches of any size.

    Engines pick their own batch sizes (Snowflake sometimes a few hundred rows); DuckDB
    ingests ~100k-row batches much faster than tiny ones, and bounded batches bound memory.
    """
    import pyarrow as pa

    def regroup() -> Iterator[pa.RecordBatch]:
        pending: list[pa.RecordBatch] = []
        count = 0
        for batch in batches:
            offset = 0
            while offset < batch.num_rows:
                take = min(rows - count, batch.num_rows - offset)
                pending.append(batch.slice(offset, take))
                count += take
                offset += take
                if count == rows:
                    yield _combine(schema, pending)
                    pending, count = [], 0
        if pending:
            yield _combine(schema, pending)

    return pa.RecordBatchReader.from_batches(schema, regroup())


def _combine(schema: pa.Schema, parts: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(parts) == 1:
        return parts[0]
    import pyarrow as pa

    return pa.Table.from_batches(parts, schema).combine_chunks().to_batches()[0]
