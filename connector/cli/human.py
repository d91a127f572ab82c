"""How numbers, counts, ids and durations read for a person in the CLI's text output."""

from __future__ import annotations

from collections.abc import Mapping

from ..text import by_reason


def thousands(value: int) -> str:
    """``1,204``."""
    return f"{value:,}"


def plural(value: int, unit: str) -> str:
    """``1 profile``, ``1,204 profiles``, ``2 batches``."""
    if value == 1:
        return f"1 {unit}"
    return f"{value:,} {unit}" + ("es" if unit.endswith(("ch", "sh", "s", "x")) else "s")


def reason_counts(counts: Mapping[str, int]) -> str:
    """``reason: 1,204, reason: 3``, in the order of the reasons."""
    return by_reason(counts, thousands)


# Ids longer than this are shortened in human output: a 256-character thirdPartyId or a
# status URL standing in for a batch id would drown the line. --json keeps them whole.
MAX_ID_CHARS = 40
ID_TAIL_CHARS = 12


def short_id(value: str) -> str:
    """``value``, or its head and tail around an ellipsis when longer than MAX_ID_CHARS
    (the tail often tells ids apart: sequence numbers, suffixes)."""
    if len(value) <= MAX_ID_CHARS:
        return value
    head = MAX_ID_CHARS - ID_TAIL_CHARS - 1
    return f"{value[:head]}…{value[-ID_TAIL_CHARS:]}"


def quoted_id(value: str | None) -> str:
    """A profile id for a human: quoted (spaces and control characters show), shortened."""
    return "NULL" if value is None else repr(short_id(value))


def duration(value: float) -> str:
    """``42.0s``, or ``3.5min`` from two minutes on."""
    return f"{value:.1f}s" if value < 120 else f"{value / 60:.1f}min"
