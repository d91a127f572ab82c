"""From a source value to the text Target holds: the mapping of one sync, as SQL.

``staging`` is the contract with the state store: the staging SELECT over the source stream
(``id, fp, old_id, old_fp, unchanged, reject, reject_detail, cells``), its input stream, and
the cells of a batch line. ``text`` (with ``temporal``, ``numbers``, ``formats`` and
``ingest``) holds the canonical text of every type, ``canonical`` the typed values a
fingerprint is made of; ``columns`` checks a mapping against the source's schema; ``signature``
and ``binding`` digest what shapes a profile's text and where it goes.
"""

from __future__ import annotations

from .binding import binding_signature, describe_change, destination
from .columns import Column, attribute_columns, check_columns, mapped_columns
from .signature import SERIALIZATION_VERSION, mapping_description, mapping_signature
from .staging import (
    SOURCE,
    StagingSQL,
    cells_sql,
    check_staging,
    exit_cells,
    staging_input,
    staging_sql,
    value_names,
)
from .text import describe_rule, id_text_sql, value_text_sql

__all__ = [
    "SERIALIZATION_VERSION",
    "SOURCE",
    "Column",
    "StagingSQL",
    "attribute_columns",
    "binding_signature",
    "cells_sql",
    "check_columns",
    "check_staging",
    "describe_change",
    "describe_rule",
    "destination",
    "exit_cells",
    "id_text_sql",
    "mapped_columns",
    "mapping_description",
    "mapping_signature",
    "staging_input",
    "staging_sql",
    "value_names",
    "value_text_sql",
]
