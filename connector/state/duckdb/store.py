"""The local state store: a sync's snapshot, staging, diff and history in one DuckDB file.

Implements :class:`connector.state.store.StateStore` from four parts: :mod:`.bindings`
(what rows were sent under, fingerprint schemes), :mod:`.staged` (staging and the diff),
:mod:`.bookkeeping` (batches and the snapshot's checks) and this module (opening, schema
upgrades, reset). The snapshot is the promise of what Target holds: every row is confirmed
by Target, tied to a batch Target has not finished, or owed (fingerprint NULL: resent by the
next run); each id appears at most once; and every row carries the binding (mapping +
destination) it was sent under, which is part of its fingerprint.
:meth:`DuckDBStore.invariant_violations` checks all three.

Tables of a state file: ``ts_meta``, ``ts_syncs``, ``ts_bindings``, ``ts_sending``,
``ts_runs``, ``ts_batches``, ``ts_failed``, ``ts_rejects`` (``sql/schema.sql``) and per sync
``snapshot__NAME`` (``sql/snapshot.sql``); a run's ``stage__NAME`` lives in memory. Every
statement is in ``sql/``.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from ...errors import StateError
from ...sqltext import load_queries, load_sql, quote_ident
from ..stage import WORK_DB
from ..store import Location, ResetReport
from .base import MAX_ROWS_KEPT, StoreBase, SyncTables, statements
from .bindings import FINGERPRINT_SCHEME, TEXT_SCHEME, Bindings
from .bookkeeping import Bookkeeping
from .files import (
    STATE_DB,
    Mode,
    connect,
    copy_into_fresh_file,
    create_whole,
    file_location,
    memory_budget,
    scratch_copy,
)
from .history import SQL, run_query
from .staged import Staging

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from ...config import DuckDBState
    from .lock import RunLock

SCHEMA_VERSION = "2"

__all__ = [
    "FINGERPRINT_SCHEME",
    "MAX_ROWS_KEPT",
    "SCHEMA_VERSION",
    "TEXT_SCHEME",
    "DuckDBStore",
    "StoreBase",
    "SyncTables",
]


class DuckDBStore(Staging, Bookkeeping, Bindings):
    """One sync's view of a state file; open it with :meth:`open`, close it when done (the
    way in for every command is :func:`connector.state.open_store`, see :mod:`.access`)."""

    @classmethod
    def open(
        cls,
        settings: DuckDBState,
        sync: str,
        mode: Mode = "write",
        lock: RunLock | None = None,
    ) -> DuckDBStore:
        """Open the state file for ``sync``.

        ``write`` creates it when needed and migrates it; ``read`` attaches it read-only (it
        must exist; see :attr:`outdated`); ``scratch`` works on a private copy (the caller
        holds the shared lock while it is taken; empty when there is no file yet) that is
        deleted on close, so nothing reaches the real file. ``lock``: the run lock the
        caller holds, whose sidecar shows the run's progress.
        """
        path = Path(settings.path)
        folder, target = None, path
        if mode == "scratch":
            folder, target = scratch_copy(settings, sync)
        elif mode == "read" and not path.exists():
            raise StateError(f"sync '{sync}': no state file at {path} yet (no run has happened)")
        elif mode == "write" and not path.exists():
            create_whole(path, sync, _initialise)
        try:
            con = connect(settings, target, sync, mode, shown=path)
            budget = memory_budget(settings.memory_limit)
            store = cls(con, path, sync, mode, settings.keep_values, budget, lock)
            store._scratch = folder
            try:
                if mode == "read":
                    store._check_readable()
                else:
                    store._migrate()
            except BaseException:
                con.close()
                raise
        except BaseException:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        return store

    def location(self) -> Location:
        return file_location(self.path)

    def close(self) -> None:
        """Close the file (and delete a scratch copy). When values were forgotten, the file
        is first copied into a fresh one that replaces it, so their bytes leave the disk:
        DuckDB keeps deleted rows' bytes in free blocks."""
        fresh = None
        try:
            if self.rewrite_on_close and self.mode == "write":
                fresh = copy_into_fresh_file(self.con, self.path)
        finally:
            try:
                self.con.close()
            finally:
                if self._scratch is not None:
                    shutil.rmtree(self._scratch, ignore_errors=True)
                    self._scratch = None
        if fresh is not None:
            fresh.replace(self.path)

    def __enter__(self) -> DuckDBStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def publish_progress(self, **counts: Any) -> None:
        if self.lock is not None:
            self.lock.progress(**counts)

    def reset(self) -> ResetReport:
        """Forget this sync's snapshot; the file is rewritten when the store closes, so that
        no forgotten value lingers in it."""
        forgotten = self.forget_snapshot()
        self.rewrite_on_close = True
        return ResetReport(forgotten, str(self.kept_aside) if self.kept_aside else None)

    def _schema_version(self) -> str | None:
        if not self._has_table("ts_meta"):
            return None
        rows = self._run("schema_version").fetchall()
        return str(rows[0][0]) if rows else None

    def _check_readable(self) -> None:
        version = self._schema_version()
        if version not in (None, "1", SCHEMA_VERSION):
            raise StateError(
                f"sync '{self.sync}': state file {self.path} has schema {version}, this "
                f"version of target-sync reads schema {SCHEMA_VERSION}; upgrade target-sync"
            )
        if version is None:
            raise StateError(
                f"sync '{self.sync}': {self.path} is a DuckDB file but not a target-sync state "
                "file; point state.path elsewhere, or run 'target-sync reset CONFIG' to keep it "
                "aside and start a new one"
            )
        self.outdated = version == "1"
        if not self._has_table(f"snapshot__{self.sync}"):
            # No run of this sync yet: read an empty snapshot.
            self.tables.snapshot = f"{WORK_DB}.{self.tables.snapshot}"
            self.local.previous = self.tables.snapshot
            self.con.execute(self.tables.render(load_sql(SQL, "snapshot.sql")))

    def _migrate(self) -> None:
        version = self._schema_version()
        if version is not None and version not in ("1", SCHEMA_VERSION):
            raise StateError(
                f"sync '{self.sync}': state file {self.path} has schema {version}, this "
                f"version of target-sync reads schema {SCHEMA_VERSION}; upgrade target-sync"
            )
        if version == "1":
            self._migrate_1_to_2()
        self.con.execute(load_sql(SQL, "schema.sql"))
        self.con.execute(self.tables.render(load_sql(SQL, "snapshot.sql")))
        if version is None:
            self._run("set_schema_version", version=SCHEMA_VERSION)

    def _migrate_1_to_2(self) -> None:
        tables = [name for (name,) in self._run("snapshot_tables", catalog=STATE_DB).fetchall()]
        self.con.execute("BEGIN TRANSACTION")
        try:
            for table in tables:
                fill = {"snapshot": quote_ident(table)}
                sync = table.removeprefix("snapshot__")
                run_query(self.con, self._queries["add_binding_column"].format(**fill), {})
                run_query(self.con, self._queries["legacy_binding"].format(**fill), {"sync": sync})
            for statement in statements(load_sql(SQL, "migrate_1_to_2.sql")):
                self.con.execute(statement)
            self.con.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        log.info("state file %s upgraded to schema %s", self.path, SCHEMA_VERSION)


def _initialise(con: duckdb.DuckDBPyConnection) -> None:
    """The bookkeeping tables and schema version of a new state file, in one transaction."""
    con.execute("BEGIN TRANSACTION")
    con.execute(load_sql(SQL, "schema.sql"))
    version = load_queries(SQL, "maintenance.sql")["set_schema_version"]
    run_query(con, version, {"version": SCHEMA_VERSION})
    con.execute("COMMIT")
