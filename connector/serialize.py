"""How each source value becomes the text Target receives, as DuckDB SQL over Arrow columns.

Every rule here is vectorized SQL that DuckDB runs while it ingests the source stream; no
Python touches a row. One value always serializes to the same text, whichever engine produced
it, so fingerprints are stable across runs, sources and versions:

==========================  ================================================================
Arrow type                  text
==========================  ================================================================
string                      as is
integers (all widths)       decimal digits
decimal(p, s)               exact, trailing fractional zeros removed (``1520.50`` → ``1520.5``)
float / double              shortest round-trip (``0.1``, ``1e+20``); ``NaN``, ``Infinity``,
                            ``-Infinity``; ``-0.0`` is ``0.0``
bool                        ``true`` / ``false``
date                        ``YYYY-MM-DD``
timestamp                   ``YYYY-MM-DDTHH:MM:SS[.ffffff]``
timestamp with zone         the same in UTC, with ``Z``
time                        ``HH:MM:SS[.ffffff]``
binary                      needs ``format: base64`` or ``format: hex``
list / struct / map         needs ``format: json``
==========================  ================================================================

``format:`` overrides the rule for one attribute: ``json`` (any type), ``base64``/``hex``
(binary), a strftime pattern (dates, times, timestamps) or a printf pattern such as ``%.2f``
(numbers). Then a NULL becomes the attribute's ``null:`` replacement or an empty cell, and the
text is URL-encoded as UTF-8 (only ``A-Z a-z 0-9 - _ . ~`` stay as they are).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from .errors import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa

    from .config import Attribute, SyncConfig

# Bump when any rule above changes: it is part of every fingerprint, so a new rule resends
# every profile once instead of silently keeping old texts in Target.
SERIALIZATION_VERSION = 1


def url_encode(text: str) -> str:
    """URL-encode like DuckDB's ``url_encode``: UTF-8, unreserved characters kept."""
    return quote(text, safe="-_.~")


def quote_ident(name: str) -> str:
    """A DuckDB identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def sql_literal(text: str) -> str:
    """A DuckDB string literal."""
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Column:
    """One Target attribute as SQL: its name and the expression giving its plain text."""

    name: str
    text_sql: str
    null_replacement: str | None


def value_text_sql(column: str, arrow_type: pa.DataType, fmt: str | None, where: str) -> str:
    """SQL turning ``column`` (of ``arrow_type``) into its canonical text, NULL kept NULL."""
    import pyarrow as pa

    c = quote_ident(column)
    t = arrow_type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if fmt == "json":
        return f"CAST(to_json({c}) AS VARCHAR)"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        if fmt == "base64":
            return f"base64(CAST({c} AS BLOB))"
        if fmt == "hex":
            return f"lower(hex(CAST({c} AS BLOB)))"
        raise ConfigError(
            f"{where}: binary data has no text form; set format: base64 or format: hex"
        )
    if pa.types.is_nested(t):
        raise ConfigError(f"{where}: {t} values have no text form of their own; set format: json")
    if fmt is not None:
        if pa.types.is_temporal(t):
            return f"strftime({c}, {sql_literal(fmt)})"
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
            return f"printf({sql_literal(fmt)}, {c})"
        raise ConfigError(f"{where}: format '{fmt}' does not apply to {t} values")
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return c
    if pa.types.is_boolean(t):
        return f"CASE WHEN {c} THEN 'true' WHEN NOT {c} THEN 'false' END"
    if pa.types.is_integer(t):
        return f"CAST({c} AS VARCHAR)"
    if pa.types.is_decimal(t):
        if t.scale <= 0:
            return f"CAST({c} AS VARCHAR)"
        return f"rtrim(rtrim(CAST({c} AS VARCHAR), '0'), '.')"
    if pa.types.is_floating(t):
        number = f"CAST({c} AS DOUBLE)" if pa.types.is_float16(t) else c
        return (
            f"CASE WHEN isnan({number}) THEN 'NaN' "
            f"WHEN {number} = 'infinity' THEN 'Infinity' "
            f"WHEN {number} = '-infinity' THEN '-Infinity' "
            f"WHEN {number} = 0 THEN '0.0' "
            f"ELSE CAST({number} AS VARCHAR) END"
        )
    if pa.types.is_date(t):
        return f"strftime(CAST({c} AS DATE), '%Y-%m-%d')"
    if pa.types.is_timestamp(t):
        zone = t.tz is not None
        ts = f"CAST({c} AS TIMESTAMPTZ)" if zone else f"CAST({c} AS TIMESTAMP)"
        suffix = " || 'Z'" if zone else ""
        return (
            f"(CASE WHEN microsecond({ts}) % 1000000 = 0 "
            f"THEN strftime({ts}, '%Y-%m-%dT%H:%M:%S') "
            f"ELSE strftime({ts}, '%Y-%m-%dT%H:%M:%S.%f') END){suffix}"
        )
    if pa.types.is_time(t):
        return f"CAST(CAST({c} AS TIME) AS VARCHAR)"
    if pa.types.is_null(t):
        return "CAST(NULL AS VARCHAR)"
    raise ConfigError(f"{where}: {t} values have no text form; set format: json")


def id_text_sql(column: str, arrow_type: pa.DataType, where: str) -> str:
    """SQL giving the profile id as text (the raw id, before URL-encoding)."""
    import pyarrow as pa

    t = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
    if not (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_string_view(t)
        or pa.types.is_integer(t)
        or (pa.types.is_decimal(t) and t.scale == 0)
    ):
        raise ConfigError(f"{where}: an id must be text or an integer, not {t}")
    return value_text_sql(column, arrow_type, None, where)


def attribute_columns(config: SyncConfig, schema: pa.Schema) -> list[Column]:
    """Each mapped attribute as SQL over the source result, checked against its schema."""
    check_columns(config, schema)
    columns = []
    for name, spec in config.attributes.items():
        where = f"{config.label}: attribute '{name}'"
        if spec.value is not None:
            columns.append(Column(name, sql_literal(spec.value), None))
            continue
        assert spec.column is not None
        field = schema.field(spec.column)
        columns.append(
            Column(name, value_text_sql(spec.column, field.type, spec.format, where), spec.null)
        )
    return columns


def check_columns(config: SyncConfig, schema: pa.Schema) -> None:
    """Raise a ConfigError naming every mapped column the result lacks."""
    available = set(schema.names)
    wanted = [config.identity.column] + [
        spec.column for spec in config.attributes.values() if spec.column is not None
    ]
    missing = [name for name in dict.fromkeys(wanted) if name not in available]
    if missing:
        raise ConfigError(
            f"{config.label}: the query result has no column(s) {', '.join(missing)} "
            f"(it has: {', '.join(schema.names) or 'no columns'}); fix the mapping or the query"
        )
    duplicated = sorted({n for n in schema.names if schema.names.count(n) > 1} & set(wanted))
    if duplicated:
        raise ConfigError(
            f"{config.label}: the query result has more than one column named "
            f"{', '.join(duplicated)}; alias them apart in the query"
        )


def mapping_signature(config: SyncConfig) -> str:
    """A short digest of everything that shapes a profile's text, but not of the data.

    Part of every fingerprint: changing an attribute, its null/format rule, the identity
    type or the serialization rules changes every fingerprint, so every profile is resent.
    """
    described = {
        "serialization": SERIALIZATION_VERSION,
        "identity": config.identity.type,
        "attributes": [[name, _describe(spec)] for name, spec in config.attributes.items()],
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]


def mapping_description(config: SyncConfig) -> dict[str, object]:
    """The mapping in a JSON-able form, kept with the snapshot to explain full resends."""
    return {
        "identity": config.identity.type,
        "attributes": {name: _describe(spec) for name, spec in config.attributes.items()},
        "serialization": SERIALIZATION_VERSION,
    }


def _describe(spec: Attribute) -> dict[str, str]:
    return {k: v for k, v in spec.model_dump().items() if v is not None}
