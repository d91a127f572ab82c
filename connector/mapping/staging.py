"""The staging SQL of one sync: serialize, fingerprint and check every row of the source.

Generated once per run from the mapping and the source's Arrow schema: a ``SELECT`` over the
source stream (registered as :data:`SOURCE`, narrowed by :func:`staging_input` to the mapped
columns in the form DuckDB reads exactly) giving ``id, fp, reject, reject_detail, v0, v1,
...`` per row (see ``connector/sql/stage.sql``). The state store runs it inside the one
statement that also diffs it against the snapshot, so only changed rows are ever encoded.

A row is rejected (never sent, never committed, counted by reason) for, in this order:

======================== =================================================================
``empty_id``             the id is NULL or empty
``id_too_long``          the id is over 256 characters
``id_has_plus_or_slash`` a ``thirdPartyId`` holds ``+`` or ``/`` (Target refuses them)
``value_out_of_range``   a date or timestamp is ``infinity`` / ``-infinity``, or outside the
                         range DuckDB can represent (the detail names the attribute)
``value_too_long``       an attribute's text is over 256 characters (the detail names it)
``profile_too_large``    names and values together reach 64 KB (65,536 bytes of UTF-8)
``line_too_large``       the profile's URL-encoded line cannot fit in a batch of
                         ``target.max_bytes_per_batch`` bytes with its header
``duplicate_id``         the id appears on more than one row: every copy is rejected
======================== =================================================================

Characters are Unicode code points, as DuckDB's ``length`` counts them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..delivery.batches import header_line
from ..errors import ConfigError
from ..limits import MAX_ID_CHARS, MAX_PROFILE_BYTES, MAX_VALUE_CHARS
from ..sqltext import load_sql, quote_ident, sql_literal, url_encode
from .binding import binding_signature
from .canonical import Canonical
from .columns import Column, attribute_columns, canonical_of, mapped_columns
from .ingest import ingest_reader
from .text import id_text_sql

if TYPE_CHECKING:
    import pyarrow as pa

    from ..config import SyncConfig

SQL = Path(__file__).parent / "sql"
# The name the state store registers the source stream under, for the staging SELECT.
SOURCE = "source_stream"
# The version of the typed fingerprint (part of every fingerprint's signature).
# typed-2: 128-bit values hashed as their halves (typed-1 hashed 0 and -1 alike).
TYPED_SCHEME = "typed-2"


def staging_input(
    config: SyncConfig, reader: pa.RecordBatchReader, carried: Sequence[str] = ()
) -> pa.RecordBatchReader:
    """The source stream as staging reads it: the mapped columns, in types DuckDB reads,
    named by position (``c0`` the identity, see :func:`source_alias`), so that no source
    column name can meet a name of the staging SQL; then the ``carried`` columns, under
    their own names (see :meth:`StagingSQL.render`)."""
    import pyarrow as pa

    columns = mapped_columns(config)
    if set(carried) & set(columns):
        raise ValueError(f"carried columns {sorted(carried)} must not be mapped columns")
    stream = ingest_reader(reader, [*columns, *carried])
    names = [*(source_alias(config, name) for name in columns), *carried]
    schema = pa.schema([field.with_name(n) for field, n in zip(stream.schema, names, strict=True)])

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in stream:
            yield batch.rename_columns(names)

    return pa.RecordBatchReader.from_batches(schema, batches())


def source_alias(config: SyncConfig, column: str) -> str:
    """The name a mapped source column has in the staging input: ``c`` and its position."""
    return f"c{mapped_columns(config).index(column)}"


@dataclass(frozen=True)
class StagingSQL:
    """The staging SELECT of one mapping over the source stream, rendered by the state store
    for its run: joined to the snapshot's ``(id, fp)`` or not (a first run), comparing typed
    fingerprints or, once, the texts' (a migration). See ``sql/stage.sql``."""

    parts: tuple[tuple[str, str], ...]
    # Each value's text as Target holds it (NULL replaced), over the joined row.
    effective: tuple[str, ...]
    # The binding signature: the old text fingerprints were hash(v0, ..., signature).
    text_signature: str

    def render(
        self,
        previous: str | None = None,
        migrate: bool = False,
        exact: bool = False,
        carried: Sequence[str] = (),
    ) -> str:
        """The SELECT giving ``id, fp, old_id, old_fp, unchanged, reject, reject_detail,
        cells`` per row: ``previous`` is a relation of the snapshot's ``(id, fp)`` (None: no
        snapshot); with ``migrate`` its fingerprints are the texts' (the scheme before typed
        fingerprints) and every row's texts are built to compare them. ``exact`` (tests: the
        slow path) builds every row's texts and checks them, with no bound to clear a row.

        ``carried`` names columns of the stream (beyond the mapped ones) passed through to
        the result as they are: a store that diffed elsewhere hands in only the rows to send,
        each with what it found, and every one of them gets its texts (no snapshot here)."""
        parts = dict(self.parts)
        if exact:
            parts["bounds_clear"] = "false"
        if previous is None:
            join, old = "", "CAST(NULL AS VARCHAR) AS old_id, CAST(NULL AS UBIGINT) AS old_fp"
        else:
            join = f"FULL OUTER JOIN {previous} AS p ON s.id = p.id"
            old = "p.id AS old_id, p.fp AS old_fp"
        # Whether a row needs its texts: every row to send, every row no bound clears; all
        # of them on a first run, while migrating, and for rows a store handed in.
        need = "s.fp IS NOT NULL"
        if migrate:
            text_fp = f"hash({parts['value_names']}, {sql_literal(self.text_signature)})"
            unchanged = f"coalesce(old_fp = {text_fp}, false)"
        else:
            if previous is not None:
                need = "s.fp IS NOT NULL AND (NOT s.clear OR s.fp IS DISTINCT FROM p.fp)"
            unchanged = "coalesce(old_fp = fp, false)"
        values = ", ".join(
            f"CASE WHEN need THEN {text} END AS v{i}" for i, text in enumerate(self.effective)
        )
        return load_sql(SQL, "stage.sql").format(
            **parts,
            join=join,
            old_columns=f"{old}, {need} AS need",
            values=values,
            unchanged=unchanged,
            source=SOURCE,
            carry="".join(f", {quote_ident(name)}" for name in carried),
        )


def staging_sql(config: SyncConfig, schema: pa.Schema) -> StagingSQL:
    """The staging ``SELECT ... FROM source_stream`` for this mapping.

    ``schema`` is the source's own schema (before :func:`staging_input`). Raises a
    ConfigError when ``target.max_bytes_per_batch`` cannot hold the header and one profile.
    """
    columns = attribute_columns(config, schema, lambda name: source_alias(config, name))
    id_field = schema.field(config.identity.column)
    id_text = id_text_sql(
        source_alias(config, config.identity.column),
        id_field.type,
        config.locate("identity", "column"),
    )
    count = len(columns)
    names = value_names(count)
    # Columns fingerprinted by their text compute it once, for every row (t0, t1, ...).
    canonicals = [canonical_of(col, f"t{i}") for i, col in enumerate(columns)]
    texts = [
        f"{col.text_sql} AS t{i}"
        for i, (col, canon) in enumerate(zip(columns, canonicals, strict=True))
        if canon.is_text
    ]
    plain = [
        f"t{i}" if canon.is_text else col.text_sql
        for i, (col, canon) in enumerate(zip(columns, canonicals, strict=True))
    ]
    effective = tuple(
        _effective(text, col.null_replacement) for text, col in zip(plain, columns, strict=True)
    )
    shapes = [canon.shape for canon in canonicals]
    fingerprint = [value for canon in canonicals for value in canon.values]
    # Why a value cannot be written at all (an infinite date, ...): 'NAME: reason', per column.
    problems = [
        f"{sql_literal(col.name + ': ')} || {col.problem_sql}"
        for col in columns
        if col.problem_sql is not None
    ]
    # Sizes in bytes and characters, each one flat call over every value.
    names_bytes = sum(len(col.name.encode()) for col in columns)
    raw_bytes = f"strlen(concat({', '.join(names)}))"
    size = f"({names_bytes} + {raw_bytes})"
    lengths = f"[{', '.join(f'length({name})' for name in names)}]"
    first_long = f"list_position(list_transform({lengths}, lambda n: n > {MAX_VALUE_CHARS}), true)"
    attribute_names = f"[{', '.join(sql_literal(col.name) for col in columns)}]"
    long_value_detail = (
        f"{attribute_names}[{first_long}] || ': ' || {lengths}[{first_long}] || ' characters'"
    )
    line_room = _line_room(config)
    # URL-encoding turns a byte into at most 3; the line adds a comma per value and a newline.
    line_bound = f"(3 * (strlen(id) + {raw_bytes}) + {count + 1})"
    encoded = ", ".join(f"url_encode({name})" for name in names)
    line_size = f"(strlen(url_encode(id)) + strlen(concat_ws(',', {encoded})) + 2)"

    id_clear = [f"id <> '' AND strlen(id) <= {MAX_ID_CHARS}"]
    if config.identity.type == "thirdPartyId":
        id_checks = "WHEN contains(id, '+') OR contains(id, '/') THEN 'id_has_plus_or_slash'"
        id_clear.append("NOT contains(id, '+') AND NOT contains(id, '/')")
    else:
        id_checks = ""
    if problems:
        id_clear.append("out_of_range IS NULL")
        range_check = "WHEN out_of_range IS NOT NULL THEN 'value_out_of_range'"
        range_detail = "WHEN 'value_out_of_range' THEN out_of_range"
        out_of_range = f", coalesce({', '.join(problems)}) AS out_of_range"
        out_of_range_column = ", out_of_range"
    else:
        range_check = range_detail = out_of_range = out_of_range_column = ""
    longest = f"greatest({', '.join(f'strlen({n})' for n in names)})"
    all_clear = [*id_clear, f"{longest} <= {MAX_VALUE_CHARS}"]
    # The same tests on bounds (no text needed): every value's, then the sums, over the list
    # of measured bounds (computed once per row) plus the constant ones.
    constant, measured = _bounds(columns, canonicals)
    sums = names_bytes + MAX_VALUE_CHARS * count >= MAX_PROFILE_BYTES
    lines = 3 * (MAX_ID_CHARS + MAX_VALUE_CHARS * count) + count + 1 > line_room
    bounds_clear = list(id_clear)
    bounds_column = ""
    bound_bytes = str(sum(constant))
    if max(constant, default=0) > MAX_VALUE_CHARS:
        bounds_clear.append("false")  # a NULL replacement over the limit: every row exactly
    elif measured and (sums or lines):
        bounds_column = f", [{', '.join(measured)}] AS bounds"
        bounds_clear.append(f"list_max(bounds) <= {MAX_VALUE_CHARS}")
        bound_bytes = f"({sum(constant)} + list_sum(bounds))"
    elif measured:
        bounds_clear.append(f"greatest({', '.join(measured)}) <= {MAX_VALUE_CHARS}")
    # With every value within 256 bytes (tested above), a narrow mapping can reach neither
    # limit: then the sums are left out of the common row's test altogether.
    if sums:
        all_clear.append(f"{size} < {MAX_PROFILE_BYTES}")
        bounds_clear.append(f"{names_bytes} + {bound_bytes} < {MAX_PROFILE_BYTES}")
    if lines:
        all_clear.append(f"{line_bound} <= {line_room}")
        bounds_clear.append(f"3 * (strlen(id) + {bound_bytes}) + {count + 1} <= {line_room}")
    raw = ", ".join(quote_ident(f"c{j}") for j in range(len(mapped_columns(config))))
    parts = {
        "fingerprint": ", ".join(fingerprint),
        "fp_signature": sql_literal(fingerprint_signature(binding_signature(config), shapes)),
        "bounds_clear": " AND ".join(bounds_clear),
        "bounds_column": bounds_column,
        "max_id": str(MAX_ID_CHARS),
        "max_value": str(MAX_VALUE_CHARS),
        "max_bytes": str(MAX_PROFILE_BYTES),
        "all_clear": " AND ".join(all_clear),
        "id_checks": id_checks,
        "range_check": range_check,
        "range_check_detail": range_detail,
        "longest_value": f"list_max({lengths})",
        "long_value_detail": long_value_detail,
        "size": size,
        "line_bound": line_bound,
        "line_size": line_size,
        "line_room": str(line_room),
        "line_detail": sql_literal(
            f" bytes URL-encoded, over the {line_room} a line may take in a batch of "
            f"target.max_bytes_per_batch={config.target.max_bytes_per_batch}"
        ),
        "out_of_range": out_of_range,
        "out_of_range_column": out_of_range_column,
        "value_names": ", ".join(names),
        "cells": cells_sql(count, ""),
        "id_text": id_text,
        "texts": "".join(f", {text}" for text in texts),
        "text_names": "".join(f", t{i}" for i, c in enumerate(canonicals) if c.is_text),
        "raw": raw,
    }
    return StagingSQL(tuple(parts.items()), effective, binding_signature(config))


def fingerprint_signature(binding: str, shapes: list[str]) -> str:
    """What a typed fingerprint is bound to besides the values: the binding (mapping and
    destination), the shape of every value (its text is a function of value and shape, see
    :mod:`.canonical`), and the scheme's version."""
    described = {"scheme": TYPED_SCHEME, "binding": binding, "shapes": shapes}
    return hashlib.sha256(json.dumps(described).encode()).hexdigest()[:16]


def _bounds(columns: list[Column], canonicals: list[Canonical]) -> tuple[list[int], list[str]]:
    """Each value's text bound in bytes once NULL is replaced: the constant parts (a NULL
    replacement counts whole, it may stand for any value), and SQL for the parts measured
    per row (strings and texts)."""
    constant, measured = [], []
    for col, canon in zip(columns, canonicals, strict=True):
        replacement = len(col.null_replacement.encode()) if col.null_replacement is not None else 0
        if canon.bytes_sql is None:
            constant.append(max(canon.bytes, replacement))
        else:
            constant.append(replacement)
            measured.append(canon.bytes_sql)
    return constant, measured


def check_staging(config: SyncConfig, schema: pa.Schema) -> None:
    """Build the staging SQL for ``schema`` and have DuckDB plan it over an empty stream:
    whatever would stop a run before its first row (a type, a format, a batch size, a SQL
    DuckDB refuses) is found without reading any data (``validate``)."""
    import duckdb
    import pyarrow as pa

    sql = staging_sql(config, schema).render()
    empty = staging_input(config, pa.RecordBatchReader.from_batches(schema, [])).read_all()
    with duckdb.connect() as con:
        con.register(SOURCE, empty)
        try:
            con.execute(f"EXPLAIN {sql}")
        except duckdb.Error as exc:
            problem = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConfigError(
                f"{config.label}: DuckDB cannot run the staging SQL of this mapping "
                f"({problem}); a sync would fail before sending anything"
            ) from None


def _line_room(config: SyncConfig) -> int:
    """The most bytes one profile's line may take in a batch (as :func:`cut_batches` cuts)."""
    header = header_line(config.identity.type, list(config.attributes))
    room = config.target.max_bytes_per_batch - len(header) - 1
    smallest_line = len(config.attributes) + 2  # a one-byte id, empty cells, the newline
    if room < smallest_line:
        raise ConfigError(
            f"{config.locate('target', 'max_bytes_per_batch')}: a batch of "
            f"{config.target.max_bytes_per_batch:,} bytes cannot hold the header line of "
            f"{len(config.attributes):,} attributes ({len(header):,} bytes) and one profile; "
            "raise max_bytes_per_batch"
        )
    return room


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
    ``prefix`` qualifies the value columns (``s.``).

    One flat ``concat_ws`` whatever the width (a chain of ``||`` nests one level per value).
    It skips NULLs, but a staged value is never NULL (NULL is already the empty text or the
    replacement), so it joins exactly what the chain did.
    """
    encoded = ", ".join(f"url_encode({prefix}{name})" for name in value_names(count))
    return f"concat_ws(',', {encoded})"


def exit_cells(config: SyncConfig) -> tuple[list[str], str]:
    """Header names and encoded cells sent once for profiles that left the result."""
    from ..config import RemovedSet

    assert isinstance(config.on_removed, RemovedSet)
    names = list(config.on_removed.set)
    return names, ",".join(url_encode(value) for value in config.on_removed.set.values())
