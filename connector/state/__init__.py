"""Where a sync's snapshot and history live, and how each command reaches them.

:func:`open_store` is the one way in, for every :data:`~.store.Access` (run, dry run, read,
plan, reset): it returns the store the config's ``state.type`` names, holding what that kind
of store needs for the access (for the local file: the run lock, the damage guard, read-only
views, private copies). :func:`location_of` says where a config's snapshot lives without
opening anything. :mod:`.store` is the protocol every store implements, :mod:`.stage` the
local stage every store builds its texts in; :mod:`.duckdb` the local store (with its run
lock). Nothing outside this package names a store class or a file.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from ..errors import ConfigError
from .store import (
    AcceptedBatch,
    Access,
    Binding,
    DrawnProfile,
    FieldChanges,
    Location,
    PendingBatch,
    PrepareReport,
    ResetReport,
    RunHistory,
    Sample,
    StageReport,
    StateStore,
    Verdict,
)

if TYPE_CHECKING:
    from ..config import SyncConfig

__all__ = [
    "AcceptedBatch",
    "Access",
    "Binding",
    "DrawnProfile",
    "FieldChanges",
    "Location",
    "PendingBatch",
    "PrepareReport",
    "ResetReport",
    "RunHistory",
    "Sample",
    "StageReport",
    "StateStore",
    "Verdict",
    "location_of",
    "open_store",
]


def open_store(config: SyncConfig, access: Access) -> AbstractContextManager[StateStore]:
    """The store holding ``config``'s snapshot, opened for ``access``; use it as a context
    manager (closing it lets go of whatever the access holds).

    Raises :class:`~connector.errors.LockedError` when another run holds the store (``run``,
    ``dry-run``, ``reset``), :class:`~connector.errors.RunInProgress` when a reader cannot
    read without disturbing a run (``read``, ``plan``), a
    :class:`~connector.errors.StateError` when the store cannot be used.
    """
    from .duckdb import open_file_store

    settings = config.state
    if settings.type == "duckdb":
        return open_file_store(config, settings, access)
    raise _unavailable(config)


def location_of(config: SyncConfig) -> Location:
    """Where ``config``'s snapshot lives (as :meth:`StateStore.location` says once open)."""
    from .duckdb import file_location

    settings = config.state
    if settings.type == "duckdb":
        return file_location(settings.path)
    raise _unavailable(config)


def _unavailable(config: SyncConfig) -> ConfigError:
    # The config models refuse other kinds already; a config built around them gets this.
    return ConfigError(
        f"{config.locate('state', 'type')}: '{config.state.type}' is not available in this "
        "version of target-sync"
    )
