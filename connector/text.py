"""Tiny text helpers that messages across the package share."""

from __future__ import annotations

from collections.abc import Callable, Mapping


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none.

    Drivers' messages (DuckDB's above all) run on with context and hints; a one-line error
    keeps the line that says what went wrong.
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def one_line(value: object, limit: int = 200) -> str:
    """``value``'s text on one line (whitespace runs made one space), cut at ``limit``."""
    return " ".join(str(value).split())[:limit]


def by_reason(counts: Mapping[str, int], number: Callable[[int], str] = str) -> str:
    """``reason: n, reason: n``, in the order of the reasons; ``number`` writes each count
    (plain by default; the CLI's summaries group thousands)."""
    return ", ".join(f"{reason}: {number(n)}" for reason, n in sorted(counts.items()))
