"""The staging SQL of one sync: serialize, fingerprint and check every row of the source.

Generated once per run from the mapping and the source's Arrow schema: a ``SELECT`` over the
source stream (registered as :data:`SOURCE`, narrowed by :func:`staging_input` to the mapped
columns in the form DuckDB reads exactly) giving ``id, fp, reject, reject_detail, v0, v1,
...`` per row (see ``connector/sql/stage.sql``). The state store runs it inside the one
statement that also diffs it against the snapshot, so only changed rows are ever encoded.

A row is rejected (never sent, never committed, counted by reason) for, in this order:

==================== =====================================================================
``empty_id``         the id is NULL or empty
``id_too_long``      the id is over 256 characters
``id_has_plus_or_slash``  a ``thirdPartyId`` holds ``+`` or ``/`` (Target refuses them)
``value_too_long``   an attribute's text is over 256 characters (the detail names it)
``profile_too_large``  names and values together reach 64 KB (65,536 bytes of UTF-8)
``duplicate_id``     the id appears on more than one row: every copy is rejected
==================== =====================================================================

Characters are Unicode code points, as DuckDB's ``length`` counts them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .binding import binding_signature
from .serialize import (
    attribute_columns,
    id_text_sql,
    ingest_reader,
    mapped_columns,
    sql_literal,
    url_encode,
)
from .sql import load as load_sql

if TYPE_CHECKING:
    import pyarrow as pa

    from .config import SyncConfig

# The name the state store registers the source stream under, for the staging SELECT.
SOURCE = "source_stream"
MAX_ID_CHARS = 256
MAX_VALUE_CHARS = 256
MAX_PROFILE_BYTES = 65_536


def staging_input(config: SyncConfig, reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """The source stream as staging reads it: the mapped columns, in types DuckDB reads."""
    return ingest_reader(reader, mapped_columns(config))


def staging_sql(config: SyncConfig, schema: pa.Schema) -> str:
    """The staging ``SELECT ... FROM source_stream`` for this mapping.

    ``schema`` is the source's own schema (before :func:`staging_input`).
    """
    columns = attribute_columns(config, schema)
    id_field = schema.field(config.identity.column)
    id_text = id_text_sql(
        config.identity.column, id_field.type, config.locate("identity", "column")
    )
    texts = [f"{col.text_sql} AS t{i}" for i, col in enumerate(columns)]
    values = [
        f"{_effective(f't{i}', col.null_replacement)} AS v{i}" for i, col in enumerate(columns)
    ]
    size = " + ".join(f"{len(col.name.encode())} + strlen(v{i})" for i, col in enumerate(columns))
    value_checks = "\n        ".join(
        f"WHEN length(v{i}) > {MAX_VALUE_CHARS} THEN 'value_too_long'" for i in range(len(columns))
    )
    value_details = "\n        ".join(
        f"WHEN length(v{i}) > {MAX_VALUE_CHARS} THEN "
        f"{sql_literal(col.name + ': ')} || length(v{i}) || ' characters'"
        for i, col in enumerate(columns)
    )
    all_clear = [f"id <> '' AND strlen(id) <= {MAX_ID_CHARS}"]
    if config.identity.type == "thirdPartyId":
        id_checks = "WHEN contains(id, '+') OR contains(id, '/') THEN 'id_has_plus_or_slash'"
        id_details = "WHEN contains(id, '+') OR contains(id, '/') THEN NULL"
        all_clear.append("NOT contains(id, '+') AND NOT contains(id, '/')")
    else:
        id_checks = id_details = ""
    all_clear += [f"strlen(v{i}) <= {MAX_VALUE_CHARS}" for i in range(len(columns))]
    all_clear.append(f"size < {MAX_PROFILE_BYTES}")
    return load_sql("stage.sql").format(
        signature=sql_literal(binding_signature(config)),
        max_id=MAX_ID_CHARS,
        max_bytes=MAX_PROFILE_BYTES,
        all_clear=" AND ".join(all_clear),
        id_checks=id_checks,
        id_check_details=id_details,
        value_checks=value_checks,
        value_check_details=value_details,
        values=", ".join(values),
        value_names=", ".join(value_names(len(columns))),
        size=size,
        id_text=id_text,
        texts=", ".join(texts),
        source=SOURCE,
    )


def _effective(text: str, null_replacement: str | None) -> str:
    """The text Target will hold: a NULL is an empty cell unless replaced."""
    if null_replacement is None:
        return f"coalesce({text}, '')"
    # Target ignores an empty value just like a missing one: both take the replacement.
    return f"coalesce(nullif({text}, ''), {sql_literal(null_replacement)})"


def value_names(count: int) -> list[str]:
    """The staged value columns: v0, v1, ... in attribute order."""
    return [f"v{i}" for i in range(count)]


def cells_sql(count: int, prefix: str) -> str:
    """SQL joining the URL-encoded values into the cells of a batch line (after the id);
    ``prefix`` qualifies the value columns (``s.``)."""
    return " || ',' || ".join(f"url_encode({prefix}{name})" for name in value_names(count))


def exit_cells(config: SyncConfig) -> tuple[list[str], str]:
    """Header names and encoded cells sent once for profiles that left the result."""
    from .config import RemovedSet

    assert isinstance(config.on_removed, RemovedSet)
    names = list(config.on_removed.set)
    return names, ",".join(url_encode(value) for value in config.on_removed.set.values())
