"""The SQL of the state store, kept as plain files so a warehouse-backed store can reuse it."""

from __future__ import annotations

from functools import cache
from pathlib import Path


@cache
def load(name: str) -> str:
    """The text of ``connector/sql/<name>``."""
    return (Path(__file__).parent / name).read_text(encoding="utf-8")
