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

from pathlib import Path
from typing import TYPE_CHECKING

from ..delivery.batches import header_line
from ..errors import ConfigError
from ..limits import MAX_ID_CHARS, MAX_PROFILE_BYTES, MAX_VALUE_CHARS
from ..sqltext import load_sql, sql_literal, url_encode
from .binding import binding_signature
from .columns import attribute_columns, mapped_columns
from .ingest import ingest_reader
from .text import id_text_sql

if TYPE_CHECKING:
    import pyarrow as pa

    from ..config import SyncConfig

SQL = Path(__file__).parent / "sql"
# The name the state store registers the source stream under, for the staging SELECT.
SOURCE = "source_stream"


def staging_input(config: SyncConfig, reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """The source stream as staging reads it: the mapped columns, in types DuckDB reads."""
    return ingest_reader(reader, mapped_columns(config))


def staging_sql(config: SyncConfig, schema: pa.Schema) -> str:
    """The staging ``SELECT ... FROM source_stream`` for this mapping.

    ``schema`` is the source's own schema (before :func:`staging_input`). Raises a
    ConfigError when ``target.max_bytes_per_batch`` cannot hold the header and one profile.
    """
    columns = attribute_columns(config, schema)
    id_field = schema.field(config.identity.column)
    id_text = id_text_sql(
        config.identity.column, id_field.type, config.locate("identity", "column")
    )
    count = len(columns)
    names = value_names(count)
    texts = [f"{col.text_sql} AS t{i}" for i, col in enumerate(columns)]
    values = [
        f"{_effective(f't{i}', col.null_replacement)} AS v{i}" for i, col in enumerate(columns)
    ]
    # Why a value cannot be written at all (an infinite date, ...): 'NAME: reason', per column.
    problems = [
        (f"p{i}", f"{sql_literal(col.name + ': ')} || {col.problem_sql}")
        for i, col in enumerate(columns)
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

    all_clear = [
        f"id <> '' AND strlen(id) <= {MAX_ID_CHARS}",
        f"greatest({', '.join(f'strlen({name})' for name in names)}) <= {MAX_VALUE_CHARS}",
    ]
    if config.identity.type == "thirdPartyId":
        id_checks = "WHEN contains(id, '+') OR contains(id, '/') THEN 'id_has_plus_or_slash'"
        all_clear.append("NOT contains(id, '+') AND NOT contains(id, '/')")
    else:
        id_checks = ""
    if problems:
        all_clear.append("out_of_range IS NULL")
        range_check = "WHEN out_of_range IS NOT NULL THEN 'value_out_of_range'"
        range_detail = "WHEN 'value_out_of_range' THEN out_of_range"
        out_of_range = f", coalesce({', '.join(p for p, _ in problems)}) AS out_of_range"
        out_of_range_column = ", out_of_range"
    else:
        range_check = range_detail = out_of_range = out_of_range_column = ""
    # With every value within 256 bytes (tested above), a narrow mapping can reach neither
    # limit: then the sums are left out of the common row's test altogether.
    if names_bytes + MAX_VALUE_CHARS * count >= MAX_PROFILE_BYTES:
        all_clear.append(f"{size} < {MAX_PROFILE_BYTES}")
    if 3 * (MAX_ID_CHARS + MAX_VALUE_CHARS * count) + count + 1 > line_room:
        all_clear.append(f"{line_bound} <= {line_room}")
    return load_sql(SQL, "stage.sql").format(
        signature=sql_literal(binding_signature(config)),
        max_id=MAX_ID_CHARS,
        max_value=MAX_VALUE_CHARS,
        max_bytes=MAX_PROFILE_BYTES,
        all_clear=" AND ".join(all_clear),
        id_checks=id_checks,
        range_check=range_check,
        range_check_detail=range_detail,
        longest_value=f"list_max({lengths})",
        long_value_detail=long_value_detail,
        size=size,
        line_bound=line_bound,
        line_size=line_size,
        line_room=line_room,
        line_detail=sql_literal(
            f" bytes URL-encoded, over the {line_room} a line may take in a batch of "
            f"target.max_bytes_per_batch={config.target.max_bytes_per_batch}"
        ),
        values=", ".join(values),
        out_of_range=out_of_range,
        out_of_range_column=out_of_range_column,
        value_names=", ".join(names),
        id_text=id_text,
        texts=", ".join(texts),
        problems="".join(f", {sql} AS {p}" for p, sql in problems),
        source=SOURCE,
    )


def check_staging(config: SyncConfig, schema: pa.Schema) -> None:
    """Build the staging SQL for ``schema`` and have DuckDB plan it over an empty stream:
    whatever would stop a run before its first row (a type, a format, a batch size, a SQL
    DuckDB refuses) is found without reading any data (``validate``)."""
    import duckdb
    import pyarrow as pa

    sql = staging_sql(config, schema)
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
