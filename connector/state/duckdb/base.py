"""What the parts of the local store share: the connection, the sync's tables, and the named
statements of ``sql/`` run with them."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from ...sqltext import load_queries, quote_ident
from ...text import first_line
from ..stage import LocalStage
from .files import STATE_DB, Mode
from .history import SQL, DuckDBHistory, run_query

if TYPE_CHECKING:
    from .lock import RunLock

log = logging.getLogger(__name__)

# Rows listed with a run (failed rows, rejects): enough to act on, bounded whatever happens.
MAX_ROWS_KEPT = 10_000


@dataclass
class SyncTables:
    """The quoted table names of one sync: its snapshot, and its run's stage and view of the
    rows to send (named by :class:`~connector.state.stage.LocalStage`)."""

    snapshot: str
    stage: str
    changes: str

    def render(self, sql: str, **extra: str) -> str:
        return sql.format(snapshot=self.snapshot, stage=self.stage, changes=self.changes, **extra)


class StoreBase:
    """One sync's connection to a state file, and what the store's parts (:mod:`.bindings`,
    :mod:`.staged`, :mod:`.bookkeeping`) share: the tables, the run's local stage, the run
    lock it was opened under."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        path: Path,
        sync: str,
        mode: Mode,
        keep_values: bool = True,
        memory_budget: int | None = None,
        lock: RunLock | None = None,
    ) -> None:
        self.con = con
        self.path = path
        self.sync = sync
        self.mode = mode
        # False: the snapshot keeps no attribute values (state.keep_values).
        self.keep_values = keep_values
        snapshot = quote_ident(f"snapshot__{sync}")
        self.local = LocalStage(con, sync, previous=snapshot)
        self.tables = SyncTables(snapshot, self.local.table, self.local.changes_view)
        self._history = DuckDBHistory(con, sync)
        # A read-only store over a state file of an older schema (the next sync upgrades it).
        self.outdated = False
        self._scratch: Path | None = None
        # Values were forgotten (prepare with keep_values: false, reset): on closing, the file
        # is rewritten so that their bytes leave the disk too.
        self.rewrite_on_close = False
        # Set by the reset access: the damaged file this (empty, private) store stands for,
        # kept aside under this name.
        self.kept_aside: Path | None = None
        # DuckDB's memory_limit in bytes (None: DuckDB's own default, a share of the host).
        self.memory_budget = memory_budget
        # The run lock this store was opened under, whose sidecar shows a run's progress.
        self.lock = lock
        self._queries: dict[str, str] = {}
        for name in ("bindings.sql", "staged.sql", "settle.sql", "maintenance.sql"):
            self._queries.update(load_queries(SQL, name))

    @property
    def writable(self) -> bool:
        return self.mode != "read"

    @property
    def history(self) -> DuckDBHistory:
        return self._history

    def _run(self, name: str, **params: Any) -> duckdb.DuckDBPyConnection:
        """Run a named statement of ``sql/`` with this sync's tables and parameters."""
        sql = self.tables.render(self._queries[name], **params.pop("fill", {}))
        return run_query(self.con, sql, {"sync": self.sync, **params})

    def _count(self, name: str, **params: Any) -> int:
        rows = self._run(name, **params).fetchall()
        return int(rows[0][0]) if rows and rows[0][0] is not None else 0

    def _has_table(self, table: str) -> bool:
        return self._count("has_table", catalog=STATE_DB, table=table) > 0

    @contextmanager
    def lend_memory(self, nbytes: int) -> Iterator[None]:
        # DuckDB fills its budget with the stage it scans while batches are cut; what the
        # batch in hand takes comes out of that budget, at most half of it.
        if self.memory_budget is None or nbytes <= 0:
            yield
            return
        lent = max(self.memory_budget - nbytes, self.memory_budget // 2)
        self.con.execute(f"SET memory_limit = '{lent}B'")
        try:
            yield
        finally:
            try:
                self.con.execute(f"SET memory_limit = '{self.memory_budget}B'")
            except duckdb.Error as exc:  # never replace the error that may be unwinding
                log.debug("memory_limit not restored after delivery: %s", first_line(exc))

    def _rollback(self) -> None:
        """Undo an open transaction; never hide the error that made it necessary."""
        try:
            self.con.execute("ROLLBACK")
        except duckdb.Error as exc:
            log.debug("rollback failed after an earlier error: %s", first_line(exc))


def statements(sql: str) -> list[str]:
    """The statements of a SQL script, comments left out."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
