"""The staging SQL of one sync: serialize, URL-encode, fingerprint and check every row.

Generated once per run from the mapping and the source's Arrow schema, then run by DuckDB over
the source stream (see ``connector/sql/stage.sql``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .serialize import attribute_columns, id_text_sql, mapping_signature, sql_literal, url_encode
from .sql import load as load_sql

if TYPE_CHECKING:
    import pyarrow as pa

    from .config import SyncConfig
    from .state import SyncTables

MAX_VALUE_CHARS = 256


def staging_sql(config: SyncConfig, schema: pa.Schema, tables: SyncTables) -> str:
    """The ``CREATE TABLE stage AS SELECT ... FROM {source}`` statement for this mapping."""
    columns = attribute_columns(config, schema)
    id_field = schema.field(config.identity.column)
    id_text = id_text_sql(config.identity.column, id_field.type, f"{config.label}: identity column")
    texts = [f"{col.text_sql} AS t{i}" for i, col in enumerate(columns)]
    cells = " || ',' || ".join(
        _encoded(f"t{i}", col.null_replacement) for i, col in enumerate(columns)
    )
    size = " + ".join(
        f"{len(col.name.encode())} + coalesce(strlen(t{i}), "
        f"{len((col.null_replacement or '').encode())})"
        for i, col in enumerate(columns)
    )
    value_checks = "\n        ".join(
        f"WHEN length(t{i}) > {MAX_VALUE_CHARS} THEN 'value_too_long'" for i in range(len(columns))
    )
    value_details = "\n        ".join(
        f"WHEN length(t{i}) > {MAX_VALUE_CHARS} THEN "
        f"{sql_literal(col.name + ': ')} || length(t{i}) || ' characters'"
        for i, col in enumerate(columns)
    )
    if config.identity.type == "thirdPartyId":
        id_checks = "WHEN contains(id, '+') OR contains(id, '/') THEN 'id_has_plus_or_slash'"
        id_details = "WHEN contains(id, '+') OR contains(id, '/') THEN NULL"
    else:
        id_checks = id_details = ""
    return load_sql("stage.sql").format(
        stage=tables.stage,
        signature=sql_literal(mapping_signature(config)),
        id_checks=id_checks,
        id_check_details=id_details,
        value_checks=value_checks,
        value_check_details=value_details,
        cells=cells,
        size=size,
        text_names=", ".join(f"t{i}" for i in range(len(columns))),
        id_text=id_text,
        texts=", ".join(texts),
        source="{source}",
    )


def _encoded(text: str, null_replacement: str | None) -> str:
    fallback = sql_literal(url_encode(null_replacement or ""))
    return f"coalesce(url_encode({text}), {fallback})"


def exit_cells(config: SyncConfig) -> tuple[list[str], str]:
    """Header names and encoded cells sent once for profiles that left the result."""
    from .config import RemovedSet

    assert isinstance(config.on_removed, RemovedSet)
    names = list(config.on_removed.set)
    return names, ",".join(url_encode(value) for value in config.on_removed.set.values())
