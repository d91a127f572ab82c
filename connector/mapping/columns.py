"""A mapping checked against the source's schema: which columns it reads, and each attribute
as the SQL that gives its canonical text and its canonical typed value (its part of the
fingerprint)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa

    from ..config import SyncConfig
from ..sqltext import quote_ident, sql_literal
from .canonical import Canonical, text_canonical, typed_canonical
from .temporal import value_problem_sql
from .text import value_text_sql


@dataclass(frozen=True)
class Column:
    """One Target attribute as SQL: its name, the expression giving its plain text, its
    canonical value (None: fingerprinted by its text), and (for dates and timestamps) the
    expression saying why a value has none (else NULL)."""

    name: str
    text_sql: str
    null_replacement: str | None
    problem_sql: str | None = None
    canonical: Canonical | None = None


def _same(name: str) -> str:
    return name


def attribute_columns(
    config: SyncConfig, schema: pa.Schema, alias: Callable[[str], str] = _same
) -> list[Column]:
    """Each mapped attribute as SQL over the source result, checked against its schema;
    ``alias`` names the SQL column a source column is read as (itself by default)."""
    check_columns(config, schema)
    columns = []
    for name, spec in config.attributes.items():
        where = config.locate("attributes", name)
        if spec.value is not None:
            columns.append(Column(name, sql_literal(spec.value), None))
            continue
        assert spec.column is not None
        field = schema.field(spec.column)
        where = f"{where} (column {spec.column})"
        column = alias(spec.column)
        text = value_text_sql(column, field.type, spec.format, where)
        problem = value_problem_sql(column, field.type)
        canonical = typed_canonical(quote_ident(column), field.type, spec.format)
        columns.append(Column(name, text, spec.null, problem, canonical))
    return columns


def canonical_of(column: Column, text: str) -> Canonical:
    """``column``'s part of the fingerprint: its typed form, or its text (SQL ``text``)."""
    return column.canonical if column.canonical is not None else text_canonical(text)


def mapped_columns(config: SyncConfig) -> list[str]:
    """The source columns a sync reads: the identity column, then the mapped ones."""
    wanted = [config.identity.column] + [
        spec.column for spec in config.attributes.values() if spec.column is not None
    ]
    return list(dict.fromkeys(wanted))


def check_columns(config: SyncConfig, schema: pa.Schema) -> None:
    """Raise a ConfigError naming every mapped column the result lacks."""
    available = set(schema.names)
    has = ", ".join(schema.names) or "no columns"
    if config.identity.column not in available:
        raise ConfigError(
            f"{config.locate('identity', 'column')}: the query result has no column "
            f"'{config.identity.column}' (it has: {has}); fix the identity or the query"
        )
    for name, spec in config.attributes.items():
        if spec.column is not None and spec.column not in available:
            raise ConfigError(
                f"{config.locate('attributes', name)}: the query result has no column "
                f"'{spec.column}' (it has: {has}); fix the mapping or the query"
            )
    wanted = mapped_columns(config)
    duplicated = sorted({n for n in schema.names if schema.names.count(n) > 1} & set(wanted))
    if duplicated:
        raise ConfigError(
            f"{config.locate('source')}: the query result has more than one column named "
            f"{', '.join(duplicated)}; alias them apart in the query"
        )
