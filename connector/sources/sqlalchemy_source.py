"""``type: sqlalchemy``: a query through any SQLAlchemy URL, streamed as Arrow batches.

The query runs on a server-side cursor (``stream_results``) and is fetched ``batch_size`` rows
at a time; each partition becomes one ``pyarrow.RecordBatch`` and is dropped before the next is
fetched, so memory stays bounded by one partition whatever the result size.

The Arrow schema comes from the column types the database reports, never from the values, so
an all-NULL column still gets its real type:

- PostgreSQL (any driver reporting type OIDs): the built-in types in :data:`_PG_TYPES`;
  ``numeric(p,s)`` with ``p <= 38`` becomes ``decimal128(p, s)``; ``numeric`` without a
  precision (what ``sum``/``avg`` over numerics return) and ``numeric(p,s)`` with ``p > 38``
  become strings holding the exact value as plain decimal text without trailing zeros
  (``12.5``, ``0.0000001``, ``NaN``), because any fixed Arrow scale would either round values
  or reject them. ``json``/``jsonb`` arrive as the server's JSON text (psycopg is
  told not to parse them), ``uuid`` as its canonical text, arrays as Arrow lists.
- Drivers that report type names (DuckDB through duckdb_engine): the names in
  :data:`_NAMED_TYPES`, ``DECIMAL(p,s)`` and ``T[]``.
- Anything else (SQLite reports no types at all; custom or exotic types elsewhere): the type
  is inferred from the values of the first partition and then held for the whole stream. A
  column that is NULL throughout the first partition becomes a string column (later values
  arrive as their text); any other later value that does not fit the inferred type fails the
  run with a message naming the column. CAST such columns in the query to pin their type.

SQLAlchemy attaches type objects only to results of typed Core constructs, not to a raw SQL
string, so the database's own description is the only typed source here.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ..config import SqlAlchemySource, SyncConfig
from ..errors import ConfigError, MissingExtraError, SourceError
from . import pg_arrow, rebatch, require
from .pg_types import PG_ARROW, does_not_fit

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection, CursorResult, Engine

_log = logging.getLogger(__name__)

_CONNECT_TIMEOUT_SECONDS = 30

# Built-in PostgreSQL type OIDs (fixed in pg_type.dat, the same on every server version).
_PG_TYPES: dict[int, str] = {
    16: "bool",
    17: "bytea",
    18: "char",
    19: "name",
    20: "int8",
    21: "int2",
    23: "int4",
    25: "text",
    114: "json",
    700: "float4",
    701: "float8",
    1042: "bpchar",
    1043: "varchar",
    1082: "date",
    1083: "time",
    1114: "timestamp",
    1184: "timestamptz",
    1266: "timetz",
    1700: "numeric",
    2950: "uuid",
    3802: "jsonb",
}
# Array type OID -> element type OID.
_PG_ARRAYS: dict[int, int] = {
    1000: 16,
    1001: 17,
    1002: 18,
    1003: 19,
    1016: 20,
    1005: 21,
    1007: 23,
    1009: 25,
    199: 114,
    1021: 700,
    1022: 701,
    1014: 1042,
    1015: 1043,
    1182: 1082,
    1183: 1083,
    1115: 1114,
    1185: 1184,
    1270: 1266,
    1231: 1700,
    2951: 2950,
    3807: 3802,
}

# Type names as DuckDB (and other drivers that report names) spell them.
_NAMED_TYPES: dict[str, pa.DataType] = {
    "BOOLEAN": pa.bool_(),
    "TINYINT": pa.int8(),
    "SMALLINT": pa.int16(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "UTINYINT": pa.uint8(),
    "USMALLINT": pa.uint16(),
    "UINTEGER": pa.uint32(),
    "UBIGINT": pa.uint64(),
    "FLOAT": pa.float32(),
    "REAL": pa.float32(),
    "DOUBLE": pa.float64(),
    "VARCHAR": pa.string(),
    "TEXT": pa.string(),
    "JSON": pa.string(),
    "UUID": pa.string(),
    "BLOB": pa.binary(),
    "DATE": pa.date32(),
    "TIME": pa.time64("us"),
    "TIMESTAMP": pa.timestamp("us"),
    "TIMESTAMP_S": pa.timestamp("us"),
    "TIMESTAMP_MS": pa.timestamp("us"),
    "TIMESTAMP WITH TIME ZONE": pa.timestamp("us", "UTC"),
    "TIMESTAMPTZ": pa.timestamp("us", "UTC"),
}
_DECIMAL_NAME = re.compile(r"^(?:DECIMAL|NUMERIC)\((\d+),\s*(\d+)\)$")
_SCHEME = re.compile(r"^\s*([A-Za-z0-9_]+)(?:\+[A-Za-z0-9_]+)?://")


def _source(config: SyncConfig) -> SqlAlchemySource:
    assert isinstance(config.source, SqlAlchemySource)
    return config.source


@contextmanager
def open_reader(config: SyncConfig) -> Iterator[pa.RecordBatchReader]:
    """Run the query on a streaming cursor and yield a reader over its result."""
    source = _source(config)
    engine, where = _engine(source, config.label)
    try:
        with _arrow_native(source, engine, where, config.label) as native:
            if native is not None:
                yield native
                return
        with _connect(engine, where, config.label) as conn:
            streaming = conn.execution_options(stream_results=True, yield_per=source.batch_size)
            try:
                result = streaming.exec_driver_sql(_driver_sql(engine, source.query_text()))
            except Exception as exc:
                raise _query_error(exc, config.label, where, engine) from None
            try:
                fetch = functools.partial(
                    _fetch, result, source.batch_size, config.label, where, engine
                )
                description = result.cursor.description or ()
                types = [_declared_type(engine.dialect.name, column) for column in description]
                # Untyped columns are inferred from the first partition, which then becomes
                # the first batch: it is held in a list that the batch generator empties.
                head = [fetch()] if None in types else []
                sample = head[0] if head else []
                schema = pa.schema(
                    pa.field(
                        str(column[0]),
                        declared
                        or _infer(str(column[0]), [row[i] for row in sample], config.label),
                    )
                    for i, (column, declared) in enumerate(zip(description, types, strict=True))
                )
                del sample
                batches = _batches(schema, head, fetch, config.label, where)
                yield pa.RecordBatchReader.from_batches(schema, batches)
            finally:
                result.close()
    finally:
        engine.dispose()


@contextmanager
def _arrow_native(
    source: SqlAlchemySource, engine: Engine, where: str, label: str
) -> Iterator[pa.RecordBatchReader | None]:
    """The result read through ADBC (PostgreSQL, binary COPY into Arrow), or None when it is
    read through SQLAlchemy: another database, ``reader: sqlalchemy``, the driver missing, or
    a column type ADBC does not read exactly (see connector/sources/pg_arrow.py)."""
    if source.reader == "sqlalchemy" or engine.dialect.name != "postgresql":
        if source.reader == "adbc":
            raise ConfigError(
                f"{label}: source.reader is adbc, which reads PostgreSQL only, and source.url "
                f"is {engine.dialect.name}; remove source.reader"
            )
        yield None
        return
    if not pg_arrow.available():
        if source.reader == "adbc":
            raise MissingExtraError(
                f"{label} (source.reader adbc)", "postgres", "adbc_driver_postgresql"
            )
        _log.info(
            "%s: reading %s through psycopg (adbc-driver-postgresql is not installed)", label, where
        )
        yield None
        return
    url = engine.url.set(drivername="postgresql")
    if "connect_timeout" not in url.query:
        url = url.update_query_dict({"connect_timeout": str(_CONNECT_TIMEOUT_SECONDS)})
    query = source.query_text().strip().rstrip(";")
    with ExitStack() as stack:
        try:
            conn = stack.enter_context(pg_arrow.connect(url.render_as_string(hide_password=False)))
        except Exception as exc:
            raise SourceError(
                f"{label}: cannot connect to {where}: {_reason(exc, engine)}; nothing was read"
            ) from None
        try:
            schema, why = pg_arrow.plan(pg_arrow.read_schema(conn, query))
            if schema is not None:
                adbc_reader = stack.enter_context(pg_arrow.stream(conn, query))
        except Exception as exc:
            raise _query_error(exc, label, where, engine) from None
        if schema is None:
            if source.reader == "adbc":
                raise ConfigError(
                    f"{label}: source.reader is adbc but {why}, which ADBC does not read "
                    "exactly; CAST it in the query or remove source.reader"
                )
            _log.info("%s: reading %s through psycopg: %s", label, where, why)
            yield None
            return
        _log.info("%s: reading %s through ADBC (binary COPY into Arrow)", label, where)
        # ADBC cuts batches by bytes; the rest of the run expects batch_size rows.
        batches = _adbc_batches(adbc_reader, schema, label, where, engine)
        yield rebatch(schema, batches, source.batch_size)


def _adbc_batches(
    reader: pa.RecordBatchReader, schema: pa.Schema, label: str, where: str, engine: Engine
) -> Iterator[pa.RecordBatch]:
    rows = count = 0
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        except Exception as exc:
            raise _query_error(exc, label, where, engine) from None
        rows += batch.num_rows
        count += 1
        yield pg_arrow.convert(batch, schema, label)
    _log.info("%s: read %d rows in %d batches from %s", label, rows, count, where)


def probe_schema(config: SyncConfig) -> pa.Schema:
    """The result schema of the query, with no rows read.

    Columns whose type the database does not report (SQLite) come back as ``pa.null()``: their
    type is only known once rows are read.
    """
    source = _source(config)
    engine, where = _engine(source, config.label)
    try:
        with _connect(engine, where, config.label) as conn:
            query = source.query_text().strip().rstrip(";")
            sql = _driver_sql(engine, f"SELECT * FROM ({query}) AS q LIMIT 0")
            try:
                result = conn.exec_driver_sql(sql)
            except Exception as exc:
                raise _query_error(exc, config.label, where, engine) from None
            try:
                description = result.cursor.description or ()
            finally:
                result.close()
            return pa.schema(
                pa.field(str(column[0]), _declared_type(engine.dialect.name, column) or pa.null())
                for column in description
            )
    finally:
        engine.dispose()


def _engine(source: SqlAlchemySource, label: str) -> tuple[Engine, str]:
    """An engine for the URL (no pool: one run, one connection) and the URL with its password
    masked, for messages."""
    raw = source.url.get_secret_value()
    scheme = _SCHEME.match(raw)
    postgres = scheme is not None and scheme.group(1).lower() in ("postgresql", "postgres")
    what = f"{label} (source type sqlalchemy)"
    require("sqlalchemy", "postgres" if postgres else "sqlalchemy", what)
    import sqlalchemy as sa
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        url = sa.make_url(raw)
    except ArgumentError:
        raise ConfigError(
            f"{label}: source.url is not a SQLAlchemy URL "
            "(expected dialect+driver://user:password@host:port/database)"
        ) from None
    if url.drivername == "postgresql":
        # SQLAlchemy's default PostgreSQL driver is psycopg2; the 'postgres' extra installs
        # psycopg 3, so a bare postgresql:// URL means that.
        url = url.set(drivername="postgresql+psycopg")
    where = url.render_as_string(hide_password=True)
    connect_args: dict[str, Any] = {}
    if url.drivername == "postgresql+psycopg" and "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = _CONNECT_TIMEOUT_SECONDS
    try:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=connect_args)
    except NoSuchModuleError:
        raise ConfigError(
            f"{label}: source.url names the SQLAlchemy dialect '{url.drivername}', which is not "
            "installed (check the spelling, or install the package that provides it)"
        ) from None
    except ImportError as exc:
        raise _missing_driver(exc, url, label, what) from None
    return engine, where


def _missing_driver(exc: ImportError, url: URL, label: str, what: str) -> ConfigError:
    module = exc.name or url.get_driver_name()
    if module.split(".")[0] in ("psycopg", "psycopg_binary", "psycopg_c"):
        return MissingExtraError(what, "postgres", "psycopg")
    # Other drivers are not bundled in an extra: naming one would not help.
    return ConfigError(
        f"{label}: source.url uses the SQLAlchemy driver '{url.drivername}', whose module "
        f"'{module}' is not installed; install that driver's package in this environment "
        "(target-sync's 'postgres' extra bundles psycopg, for postgresql+psycopg:// URLs)"
    )


@contextmanager
def _connect(engine: Engine, where: str, label: str) -> Iterator[Connection]:
    try:
        conn = engine.connect()
    except Exception as exc:
        raise SourceError(
            f"{label}: cannot connect to {where}: {_reason(exc, engine)}; nothing was read"
        ) from None
    try:
        _text_loaders(conn)
        yield conn
    finally:
        conn.close()


def _text_loaders(conn: Connection) -> None:
    """Have psycopg hand over json/jsonb/uuid as the server's text instead of Python objects.

    Re-serializing a parsed JSON document would not reproduce the text the database holds.
    """
    dbapi = conn.connection.dbapi_connection
    adapters = getattr(dbapi, "adapters", None)
    if adapters is None or not type(dbapi).__module__.startswith("psycopg"):
        return
    from psycopg.types.string import TextLoader

    from .pg_temporal import register

    for name in ("json", "jsonb", "uuid"):
        adapters.register_loader(name, TextLoader)
    register(adapters)  # infinity and years outside 1-9999 load too


def _driver_sql(engine: Engine, sql: str) -> str:
    # exec_driver_sql hands the driver an (empty) parameter list, so drivers with
    # format/pyformat placeholders read a literal % (LIKE 'a%') as one: double it.
    if engine.dialect.paramstyle in ("format", "pyformat"):
        return sql.replace("%", "%%")
    return sql


def _declared_type(dialect: str, column: Sequence[Any]) -> pa.DataType | None:
    """The Arrow type for a cursor.description entry, or None when it must be inferred."""
    code = column[1]
    if dialect == "postgresql" and isinstance(code, int):
        precision, scale = column[4], column[5]
        if code in _PG_ARRAYS:
            element = _pg_type(_PG_ARRAYS[code], precision, scale)
            return pa.list_(element) if element is not None else None
        return _pg_type(code, precision, scale)
    if code is None or isinstance(code, int):
        return None
    return _named_type(str(code).upper())


def _pg_type(oid: int, precision: int | None, scale: int | None) -> pa.DataType | None:
    name = _PG_TYPES.get(oid)
    if name == "numeric":
        if precision and precision <= 38:
            return pa.decimal128(precision, scale or 0)
        return pa.string()
    return PG_ARROW.get(name) if name else None


def _named_type(name: str) -> pa.DataType | None:
    if name.endswith("[]"):
        element = _named_type(name[:-2])
        return pa.list_(element) if element is not None else None
    if match := _DECIMAL_NAME.match(name):
        precision, scale = int(match.group(1)), int(match.group(2))
        return pa.decimal128(precision, scale) if precision <= 38 else pa.string()
    return _NAMED_TYPES.get(name)


def _infer(name: str, values: list[Any], label: str) -> pa.DataType:
    """A stable Arrow type for a column the database did not type, from sample values."""
    try:
        inferred = pa.array(values).type
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        kinds = {type(v) for v in values if v is not None}
        if len(kinds) == 1:
            # One Python type Arrow does not know (an IP address, an enum): its text.
            return pa.string()
        raise SourceError(
            f"{label}: column '{name}' mixes value types and the database reports no type for "
            f"it ({_short(exc)}); CAST it in the query; nothing was sent"
        ) from None
    if pa.types.is_null(inferred) or pa.types.is_struct(inferred) or pa.types.is_map(inferred):
        return pa.string()
    if pa.types.is_timestamp(inferred):
        return pa.timestamp("us", "UTC" if inferred.tz else None)
    if pa.types.is_decimal(inferred):
        # Later partitions may hold larger values: keep the scale, widen the precision.
        return pa.decimal128(38, inferred.scale) if inferred.scale <= 38 else pa.string()
    return inferred


def _fetch(
    result: CursorResult[Any], size: int, label: str, where: str, engine: Engine
) -> Sequence[Sequence[Any]]:
    """The next ``size`` rows, empty at the end; database errors become SourceError.

    ``fetchmany`` rather than ``result.partitions()``: that generator keeps the previous
    partition alive while it fetches the next one, doubling peak memory.
    """
    try:
        return result.fetchmany(size)
    except Exception as exc:
        raise _query_error(exc, label, where, engine) from None


def _batches(
    schema: pa.Schema,
    head: list[Sequence[Sequence[Any]]],
    fetch: Callable[[], Sequence[Sequence[Any]]],
    label: str,
    where: str,
) -> Iterator[pa.RecordBatch]:
    converters = [_converter(field, label) for field in schema]
    rows = count = 0
    while True:
        partition = head.pop() if head else fetch()
        if not partition:
            break
        arrays = [convert([row[i] for row in partition]) for i, convert in enumerate(converters)]
        rows += len(partition)
        count += 1
        # Only one partition is ever alive: its rows are dropped before the consumer asks for
        # the next batch, which is when the next partition is fetched.
        del partition
        batch = pa.RecordBatch.from_arrays(arrays, schema=schema)
        del arrays
        yield batch
        del batch
    _log.info("%s: read %d rows in %d batches from %s", label, rows, count, where)


def _converter(field: pa.Field, label: str) -> Callable[[list[Any]], pa.Array]:
    arrow_type = field.type

    def convert(values: list[Any]) -> pa.Array:
        try:
            try:
                return pa.array(values, arrow_type)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                if pa.types.is_string(arrow_type):
                    return pa.array([_as_text(v) for v in values], arrow_type)
                if pa.types.is_list(arrow_type) and pa.types.is_string(arrow_type.value_type):
                    texts = [None if v is None else [_as_text(x) for x in v] for v in values]
                    return pa.array(texts, arrow_type)
                raise
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError) as exc:
            raise does_not_fit(label, field.name, arrow_type, exc) from None

    return convert


def _as_text(value: Any) -> Any:
    """The text of a value that belongs in a string column (uuid, unconstrained numeric, ...)."""
    if value is None or isinstance(value, str | bytes):
        return value
    if isinstance(value, Decimal):
        # Without trailing zeros, as a decimal column's value is written downstream, so one
        # number gives one text whichever column type carried it; "f" avoids 1E-7.
        return format(value.normalize(), "f")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _query_error(exc: Exception, label: str, where: str, engine: Engine) -> Exception:
    if isinstance(exc, SourceError):
        return exc
    return SourceError(
        f"{label}: the query on {where} failed: {_reason(exc, engine)}; nothing was sent"
    )


def _reason(exc: Exception, engine: Engine) -> str:
    """The driver's own message on one line, without SQLAlchemy's SQL echo or the password."""
    original = getattr(exc, "orig", None) or exc
    text = " ".join(str(original).split()) or type(original).__name__
    if engine.url.password:
        text = text.replace(str(engine.url.password), "***")
    return _short(text)


def _short(value: object, limit: int = 300) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
