"""``type: snowflake``: a query through snowflake-connector-python, streamed as Arrow batches.

Authentication is by password, by key pair (``private_key_file``, a PEM file, decrypted here
with ``private_key_passphrase`` and handed to the connector as DER bytes), or by
``connection_name``, an entry of Snowflake's own ``connections.toml`` that the connector reads;
fields set in the sync config override that entry's. ``host``/``port``/``protocol`` reach a
proxy or a local fake Snowflake server.

The result is fetched with ``fetch_arrow_batches`` (Snowflake's own result chunks, downloaded
as they are read), re-batched to ``batch_size`` rows, and normalized to the Arrow types the
other engines produce for the same data; the schema comes from the result metadata, so an
all-NULL column still gets its type:

==========================  =====================================================
Snowflake                   Arrow
==========================  =====================================================
NUMBER(p, 0)                int64 (a value outside int64 fails the run, naming the
                            column: cast it to VARCHAR in the query)
NUMBER(p, s>0)              decimal128(p, s)
FLOAT / DOUBLE              float64
VARCHAR, VARIANT, OBJECT,   string (semi-structured values as their JSON text)
ARRAY, GEOGRAPHY, GEOMETRY
BOOLEAN                     bool
BINARY                      binary
DATE                        date32
TIME                        time64('us')
TIMESTAMP_NTZ               timestamp('us')
TIMESTAMP_LTZ/TZ            timestamp('us', 'UTC') (the instant; a TZ offset is not kept)
==========================  =====================================================

Sub-microsecond digits of times and timestamps are truncated, as PostgreSQL and DuckDB store
microseconds.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ..config import SnowflakeSource, SyncConfig
from ..errors import ConfigError, SourceError
from ..text import one_line
from . import rebatch, require

if TYPE_CHECKING:
    from snowflake.connector import SnowflakeConnection

_log = logging.getLogger(__name__)

_TEXT_TYPES = ("TEXT", "VARIANT", "OBJECT", "ARRAY", "GEOGRAPHY", "GEOMETRY", "FILE")
_FIXED_TYPES: dict[str, pa.DataType] = {
    "REAL": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "BINARY": pa.binary(),
    "DATE": pa.date32(),
    "TIME": pa.time64("us"),
    "TIMESTAMP": pa.timestamp("us"),
    "TIMESTAMP_NTZ": pa.timestamp("us"),
    "TIMESTAMP_LTZ": pa.timestamp("us", "UTC"),
    "TIMESTAMP_TZ": pa.timestamp("us", "UTC"),
    **dict.fromkeys(_TEXT_TYPES, pa.string()),
}


def _source(config: SyncConfig) -> SnowflakeSource:
    assert isinstance(config.source, SnowflakeSource)
    return config.source


@contextmanager
def open_reader(config: SyncConfig) -> Iterator[pa.RecordBatchReader]:
    """Run the query and yield a reader over its result, in batches of ``batch_size`` rows."""
    source = _source(config)
    label = config.label
    conn = _connect(source, label)
    try:
        from snowflake.connector.errors import Error

        cursor = conn.cursor()
        try:
            cursor.execute(source.query_text())
            schema = _schema(cursor.description, label)
            tables = cursor.fetch_arrow_batches(force_microsecond_precision=True)
        except Error as exc:
            raise SourceError(
                f"{label}: the query on {_where(source)} failed: {_reason(exc, source)}; "
                "nothing was sent"
            ) from None
        batches = _normalized(tables, schema, source, label)
        yield rebatch(schema, batches, source.batch_size)
    finally:
        conn.close()


def probe_schema(config: SyncConfig) -> pa.Schema:
    """The result schema of the query, described by Snowflake without running it."""
    source = _source(config)
    conn = _connect(source, config.label)
    try:
        from snowflake.connector.errors import Error

        try:
            description = conn.cursor().describe(source.query_text())
        except Error as exc:
            raise SourceError(
                f"{config.label}: describing the query on {_where(source)} failed: "
                f"{_reason(exc, source)}"
            ) from None
        return _schema(description, config.label)
    finally:
        conn.close()


def _connect(source: SnowflakeSource, label: str) -> SnowflakeConnection:
    require("snowflake.connector", "snowflake", f"{label} (source type snowflake)")
    import snowflake.connector
    from snowflake.connector.errors import Error

    kwargs = _connect_args(source, label)
    _log.info("%s: connecting to %s", label, _where(source))
    try:
        return snowflake.connector.connect(**kwargs)
    except Error as exc:
        raise SourceError(
            f"{label}: cannot connect to {_where(source)}: {_reason(exc, source)}; nothing was read"
        ) from None


def _connect_args(source: SnowflakeSource, label: str) -> dict[str, Any]:
    if source.connection_name is None:
        missing = [key for key in ("account", "user") if getattr(source, key) is None]
        if source.password is None and source.private_key_file is None:
            missing.append("password or private_key_file")
        if missing:
            raise ConfigError(
                f"{label}: source needs {', '.join(missing)} "
                "(or connection_name, naming an entry of Snowflake's connections.toml)"
            )
    args: dict[str, Any] = {
        "login_timeout": source.login_timeout,
        # Lets the warehouse's admins find these queries in QUERY_HISTORY.
        "session_parameters": {"QUERY_TAG": f"target-sync:{label}"},
    }
    if source.connection_name is not None:
        args["connection_name"] = source.connection_name
    for key in ("account", "user", "role", "warehouse", "database", "host", "port", "protocol"):
        if (value := getattr(source, key)) is not None:
            args[key] = value
    if source.schema_ is not None:
        args["schema"] = source.schema_
    if source.password is not None:
        args["password"] = source.password.get_secret_value()
    if source.private_key_file is not None:
        args["private_key"] = _private_key(source, label)
    return args


def _private_key(source: SnowflakeSource, label: str) -> bytes:
    """The PEM key file decrypted and re-encoded as unencrypted PKCS#8 DER bytes."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    path = source.private_key_file
    assert path is not None
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"{label}: source.private_key_file: cannot read {path} ({exc.strerror or exc})"
        ) from None
    secret = source.private_key_passphrase
    passphrase = secret.get_secret_value().encode() if secret is not None else None
    try:
        key = serialization.load_pem_private_key(pem, password=passphrase)
    except (TypeError, ValueError, UnsupportedAlgorithm) as exc:
        # cryptography's messages say what is wrong (encrypted without a passphrase, a wrong
        # passphrase, not a PEM key) and never echo the passphrase.
        raise ConfigError(
            f"{label}: source.private_key_file {path} cannot be loaded: "
            f"{' '.join(str(exc).split())} (check private_key_passphrase)"
        ) from None
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _schema(description: Any, label: str) -> pa.Schema:
    return pa.schema(pa.field(column.name, _arrow_type(column)) for column in description or ())


def _arrow_type(column: Any) -> pa.DataType:
    """The normalized Arrow type of one column of Snowflake result metadata."""
    from snowflake.connector.constants import FIELD_ID_TO_NAME, FIELD_TYPES

    name = FIELD_ID_TO_NAME[column.type_code]
    if name == "FIXED":
        if not column.scale:
            return pa.int64()
        return pa.decimal128(column.precision or 38, column.scale)
    if name in _FIXED_TYPES:
        return _FIXED_TYPES[name]
    # VECTOR, MAP, intervals: what the connector itself makes of them.
    return FIELD_TYPES[column.type_code].pa_type(column)


def _normalized(
    tables: Iterator[pa.Table], schema: pa.Schema, source: SnowflakeSource, label: str
) -> Iterator[pa.RecordBatch]:
    """The connector's tables cast to ``schema``, as record batches."""
    from snowflake.connector.errors import Error

    rows = 0
    while True:
        try:
            table = next(tables, None)
        except Error as exc:
            raise SourceError(
                f"{label}: reading the result from {_where(source)} failed: "
                f"{_reason(exc, source)}; nothing was sent"
            ) from None
        if table is None:
            break
        columns = [
            _cast(column, field, label) for column, field in zip(table.columns, schema, strict=True)
        ]
        rows += table.num_rows
        del table
        yield from pa.Table.from_arrays(columns, schema=schema).to_batches()
    _log.info("%s: read %d rows from %s", label, rows, _where(source))


def _cast(column: pa.ChunkedArray, field: pa.Field, label: str) -> pa.ChunkedArray:
    if column.type == field.type:
        return column
    # Temporal casts only truncate sub-microsecond digits; every other cast must be exact.
    temporal = pa.types.is_temporal(field.type)
    try:
        return column.cast(field.type, safe=not temporal)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SourceError(
            f"{label}: column '{field.name}' does not fit {field.type} "
            f"({one_line(exc)}); cast it in the query (for example to "
            "VARCHAR); nothing was sent"
        ) from None


def _where(source: SnowflakeSource) -> str:
    if source.connection_name is not None:
        where = f"Snowflake connection '{source.connection_name}'"
    else:
        where = f"Snowflake account '{source.account}'"
    if source.host is not None:
        where += f" at {source.host}:{source.port or 443}"
    return where


def _reason(exc: Exception, source: SnowflakeSource) -> str:
    """The connector's message on one line, with the credentials masked."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    for secret in (source.password, source.private_key_passphrase):
        if secret is not None and secret.get_secret_value():
            text = text.replace(secret.get_secret_value(), "***")
    return text if len(text) <= 300 else text[:297] + "..."
