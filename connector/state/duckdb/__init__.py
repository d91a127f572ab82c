"""The local state store: one DuckDB file (see :mod:`.store`), reached through
:mod:`.access`; every statement in ``sql/``."""

from __future__ import annotations

from .access import open_file_store
from .files import file_location
from .store import FINGERPRINT_SCHEME, SCHEMA_VERSION, DuckDBStore

__all__ = [
    "FINGERPRINT_SCHEME",
    "SCHEMA_VERSION",
    "DuckDBStore",
    "file_location",
    "open_file_store",
]
