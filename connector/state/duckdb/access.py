"""How each command reaches a local state file (:func:`open_file_store`): the run lock, the
damage guard, read-only views and private copies, chosen by the access.

* ``run``: the run lock, held exclusively; the file opened for writing (created when new);
* ``dry-run``: the run lock too (it reads exactly what the run would), the file read-only;
  a private copy when the file must first be upgraded (an older schema, fingerprints of
  another DuckDB version, an unrecorded upload to make owed); with no file yet, an empty
  private store and no lock;
* ``read``: under the shared lock (a run starting meanwhile waits for it), read-only; while
  a run holds the file, :class:`~connector.errors.RunInProgress` says who, and nothing is
  opened; with no file yet, an empty private store;
* ``plan``: a private copy taken under the shared lock, deleted when the store closes;
* ``reset``: the run lock; a file DuckDB cannot read is kept aside (``.damaged-TIME``).

Before any of them, a state file an earlier version left in the working directory is
refused (:mod:`.legacy`). A store that dropped values (``keep_values: false``, ``reset``)
rewrites the file when it closes, while the lock is still held.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import RunInProgress, StateError
from .files import damage_guard, keep_damaged
from .legacy import refuse_legacy_default
from .lock import RunLock, describe_holder, shared_read
from .store import DuckDBStore

if TYPE_CHECKING:
    from ...config import DuckDBState, SyncConfig
    from ..store import Access

_REFUSAL = {
    "read": "read it again once it has finished",
    "plan": "plan reads the snapshot it leaves behind: run plan again once it has finished",
}


@contextmanager
def open_file_store(
    config: SyncConfig, settings: DuckDBState, access: Access
) -> Iterator[DuckDBStore]:
    """The local store of ``config`` (whose ``state`` is ``settings``) opened for
    ``access`` (see the module's docstring)."""
    refuse_legacy_default(config, settings)
    path, name = Path(settings.path), config.name
    with ExitStack() as stack:
        if access in ("read", "plan"):
            holder = stack.enter_context(shared_read(path, name))
            if holder is not None:
                info = {**holder, "holder": describe_holder(holder)}
                raise RunInProgress(
                    f"{config.label}: a run is in progress ({info['holder']}); {_REFUSAL[access]}",
                    info,
                )
        stack.enter_context(damage_guard(path, name))
        store = _open(settings, name, access, path, stack)
        if access == "plan":
            stack.close()  # the copy is taken: let runs go on
        with store:
            yield store


def _open(
    settings: DuckDBState, name: str, access: Access, path: Path, stack: ExitStack
) -> DuckDBStore:
    exists = path.exists()
    if access in ("run", "reset") or (access == "dry-run" and exists):
        purpose = {"run": "sync", "dry-run": "dry run", "reset": "reset"}[access]
        lock = stack.enter_context(RunLock(path, name, purpose))
    else:
        lock = None
    if access == "run":
        return DuckDBStore.open(settings, name, "write", lock)
    if access == "reset":
        return _for_reset(settings, name, path, lock)
    if not exists or access == "plan":
        return DuckDBStore.open(settings, name, "scratch", lock)
    store = DuckDBStore.open(settings, name, "read", lock)
    if access == "dry-run" and store.needs_rewrite():
        store.close()
        store = DuckDBStore.open(settings, name, "scratch", lock)
    return store


def _for_reset(settings: DuckDBState, name: str, path: Path, lock: RunLock | None) -> DuckDBStore:
    """The file opened for writing, or, when DuckDB cannot read it, kept aside and an empty
    private store in its place (the next run starts a new file)."""
    if not path.exists():
        return DuckDBStore.open(settings, name, "scratch", lock)
    try:
        with damage_guard(path, name):
            store = DuckDBStore.open(settings, name, "write", lock)
            try:
                store.snapshot_size()  # a truncated file may open, and fail at the first read
            except BaseException:
                store.close()
                raise
        return store
    except StateError as exc:
        if "is damaged" not in str(exc):
            raise
    kept = keep_damaged(path)
    store = DuckDBStore.open(settings, name, "scratch", lock)
    store.kept_aside = kept
    return store
