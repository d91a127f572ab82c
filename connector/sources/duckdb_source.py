"""``type: duckdb``: a query against a DuckDB database file, streamed as Arrow batches."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import duckdb

from ..config import DuckDBSource, SyncConfig
from ..errors import ConfigError, SourceError
from ..text import first_line

if TYPE_CHECKING:
    import pyarrow as pa


def _connect(source: DuckDBSource, label: str) -> duckdb.DuckDBPyConnection:
    database = str(source.database)
    if database != ":memory:" and not source.database.exists():
        raise ConfigError(f"{label}: source.database {database} does not exist")
    try:
        con = duckdb.connect(database, read_only=database != ":memory:")
    except duckdb.Error as exc:
        raise SourceError(f"{label}: cannot open DuckDB database {database}: {exc}") from None
    # Zoned timestamps come out labelled with the session zone; make it UTC everywhere.
    con.execute("SET TimeZone = 'UTC'")
    return con


def _source(config: SyncConfig) -> DuckDBSource:
    assert isinstance(config.source, DuckDBSource)
    return config.source


@contextmanager
def open_reader(config: SyncConfig) -> Iterator[pa.RecordBatchReader]:
    """Run the query and yield a reader over its result."""
    source = _source(config)
    con = _connect(source, config.label)
    try:
        try:
            reader = con.sql(source.query_text()).to_arrow_reader(source.batch_size)
        except duckdb.Error as exc:
            raise SourceError(
                f"{config.label}: the DuckDB query failed: {first_line(exc)}"
            ) from None
        yield reader
    finally:
        con.close()


def probe_schema(config: SyncConfig) -> pa.Schema:
    """The result schema of the query, with no rows read."""
    source = _source(config)
    con = _connect(source, config.label)
    try:
        sql = f"SELECT * FROM ({source.query_text()}) AS q LIMIT 0"
        return con.sql(sql).to_arrow_table().schema
    except duckdb.Error as exc:
        raise SourceError(f"{config.label}: the DuckDB query failed: {first_line(exc)}") from None
    finally:
        con.close()
