"""SQL text: quoting DuckDB identifiers and literals, URL-encoding as Target and DuckDB do, and
reading a package's SQL files."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from urllib.parse import quote


def url_encode(text: str) -> str:
    """URL-encode like DuckDB's ``url_encode``: UTF-8, unreserved characters kept."""
    return quote(text, safe="-_.~")


def quote_ident(name: str) -> str:
    """A DuckDB identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def sql_literal(text: str) -> str:
    """A DuckDB string literal."""
    return "'" + text.replace("'", "''") + "'"


@cache
def load_sql(folder: Path, name: str) -> str:
    """The text of the SQL file ``name`` in ``folder`` (a package's ``sql/``)."""
    return (folder / name).read_text(encoding="utf-8")


@cache
def load_queries(folder: Path, name: str) -> dict[str, str]:
    """The named statements of a SQL file: each starts at a ``-- name: NAME`` line and runs
    to the next one (the file's own header comment comes before the first)."""
    queries: dict[str, str] = {}
    current: str | None = None
    lines: list[str] = []
    for line in load_sql(folder, name).splitlines():
        if line.startswith("-- name: "):
            if current is not None:
                queries[current] = "\n".join(lines).strip()
            current, lines = line.removeprefix("-- name: ").strip(), []
        elif current is not None and not line.lstrip().startswith("--"):
            lines.append(line)
    if current is not None:
        queries[current] = "\n".join(lines).strip()
    return queries
