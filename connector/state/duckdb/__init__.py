"""The local state store: one DuckDB file (see :mod:`.store`); every statement in ``sql/``."""

from __future__ import annotations

from .files import damage_guard
from .store import (
    FINGERPRINT_SCHEME,
    SCHEMA_VERSION,
    DuckDBStore,
    duplicate_check_needed,
    reset_state,
    rewrite_state,
)

__all__ = [
    "FINGERPRINT_SCHEME",
    "SCHEMA_VERSION",
    "DuckDBStore",
    "damage_guard",
    "duplicate_check_needed",
    "reset_state",
    "rewrite_state",
]
