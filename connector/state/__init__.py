"""Where a sync's snapshot and history live, and how each command may reach them.

:mod:`.store` is the protocol every store implements; :mod:`.duckdb` the local one;
:mod:`.lock` the run lock. The functions here open a store the way each command needs it:

* :func:`for_run`: a run holds the lock exclusively; a dry run reads the file without
  writing a byte (a private copy when the file must be upgraded first);
* :func:`for_reading`: ``status`` and ``verify`` read under the shared lock, or learn who
  is running;
* :func:`private_copy`: ``plan`` works on a copy taken under the shared lock;
* :func:`reset`: rewrites the file under the run lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import StateError
from .duckdb import DuckDBStore, damage_guard, reset_state, rewrite_state
from .duckdb.legacy import refuse_legacy_default
from .lock import RunLock, describe_holder, shared_read
from .store import (
    AcceptedBatch,
    Binding,
    DrawnProfile,
    FieldChanges,
    PendingBatch,
    PrepareReport,
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
    "Binding",
    "DrawnProfile",
    "FieldChanges",
    "PendingBatch",
    "PrepareReport",
    "Reading",
    "ResetReport",
    "RunHistory",
    "Sample",
    "StageReport",
    "StateStore",
    "Verdict",
    "for_reading",
    "for_run",
    "private_copy",
    "reset",
]


@contextmanager
def for_run(config: SyncConfig, dry_run: bool) -> Iterator[StateStore]:
    """The store a run works with, holding the run lock.

    A dry run holds the lock too (it reads exactly what the run would) but opens the file
    read-only; when the file must first be upgraded (an older schema, fingerprints of
    another DuckDB version) it works on a private copy instead. With no state file yet, a
    dry run takes no lock and reads an empty store.
    """
    refuse_legacy_default(config)
    path = Path(config.state.path)
    with ExitStack() as stack:
        stack.enter_context(damage_guard(path, config.name))
        lock = None
        if not dry_run or path.exists():
            purpose = "dry run" if dry_run else "sync"
            lock = stack.enter_context(RunLock(path, config.name, purpose))
        if not dry_run:
            store = DuckDBStore.open(config.state, config.name, "write")
        elif not path.exists():
            store = DuckDBStore.open(config.state, config.name, "scratch")
        else:
            store = DuckDBStore.open(config.state, config.name, "read")
            if store.needs_rewrite():
                store.close()
                store = DuckDBStore.open(config.state, config.name, "scratch")
        store.lock = lock
        try:
            with store:
                yield store
        finally:
            if store.dropped_values:
                # Values dropped (state.keep_values: false) must leave no trace on disk.
                rewrite_state(config.state, config.name, forget=False)


@dataclass(frozen=True)
class Reading:
    """What :func:`for_reading` found: the store, or the run that holds the file."""

    store: StateStore | None
    running: dict[str, Any] | None  # the holder's sidecar (with its progress) while a run goes


@contextmanager
def for_reading(config: SyncConfig) -> Iterator[Reading]:
    """The state file opened read-only under the shared lock (a run starting meanwhile waits
    for it). While a run holds the file, ``running`` says who and how far it got and nothing
    is opened; with no file yet, neither is set."""
    refuse_legacy_default(config)
    path = Path(config.state.path)
    with shared_read(path, config.name) as holder:
        if holder is not None:
            yield Reading(None, {**holder, "holder": describe_holder(holder)})
            return
        if not path.exists():
            yield Reading(None, None)
            return
        with (
            damage_guard(path, config.name),
            DuckDBStore.open(config.state, config.name, "read") as store,
        ):
            yield Reading(store, None)


def private_copy(config: SyncConfig) -> StateStore:
    """A store over a private copy of the state file, taken under the shared lock (it is
    deleted when the store closes). Raises StateError while a run holds the file."""
    refuse_legacy_default(config)
    path = Path(config.state.path)
    with shared_read(path, config.name) as holder, damage_guard(path, config.name):
        if holder is not None:
            raise StateError(
                f"{config.label}: a run is in progress ({describe_holder(holder)}); plan reads "
                "the snapshot it leaves behind: run plan again once it has finished"
            )
        return DuckDBStore.open(config.state, config.name, "scratch")


@dataclass(frozen=True)
class ResetReport:
    """What ``reset`` did."""

    forgotten: int
    damaged_kept_as: str | None


def reset(config: SyncConfig) -> ResetReport:
    """Forget a sync's snapshot under the run lock; the file is rewritten so that no value
    lingers, and a damaged file is kept aside (the report says where)."""
    refuse_legacy_default(config)
    with RunLock(Path(config.state.path), config.name, "reset"):
        forgotten, kept = reset_state(config.state, config.name)
    return ResetReport(forgotten, str(kept) if kept else None)
