"""The state store: snapshots, staging, diff and run history in one DuckDB file.

The interface is small on purpose (open, stage, diff, commit a batch, revert ids, history) so
that a warehouse-backed store can implement it later. The SQL lives in ``connector/sql/``.

Tables of a state file: ``ts_meta``, ``ts_syncs`` (mapping and fingerprint scheme per sync),
``ts_runs``, ``ts_batches`` (every upload and what became of it), ``ts_failed`` (rows Target
reported failed), ``ts_rejects`` (rows never sent), and per sync ``snapshot__NAME``. A run's
work table ``stage__NAME`` (every staged row, diffed against the snapshot as it was read)
and view ``changes__NAME`` (its new, changed and removed profiles) live in an in-memory
database attached as ``work``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from .errors import StateError
from .serialize import quote_ident, sql_literal
from .sql import load as _sql
from .staging import SOURCE, cells_sql

if TYPE_CHECKING:
    import pyarrow as pa

    from .config import StateConfig

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"
# How fingerprints are computed; DuckDB's hash() may change between versions, so a state file
# written by another version gets its fingerprints recomputed from the stored cells.
FINGERPRINT_SCHEME = f"duckdb-hash/{duckdb.__version__}"
MAX_REJECTS_KEPT = 10_000
WORK_DB = "work"


def now() -> datetime:
    """The current UTC time, naive, as stored in the state file."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class StageCounts:
    """What staging found in the source result."""

    rows: int
    rejected: dict[str, int]


@dataclass(frozen=True)
class DiffCounts:
    """How the staged result compares with the snapshot."""

    new: int
    changed: int
    removed: int
    unchanged: int
    first_run: bool


@dataclass(frozen=True)
class PendingBatch:
    """An accepted upload whose batch status has not been resolved yet."""

    run_id: str
    seq: int
    kind: str
    batch_id: str
    status_url: str
    rows: int


@dataclass
class SyncTables:
    """The quoted table names of one sync."""

    snapshot: str
    stage: str
    changes: str

    @classmethod
    def of(cls, sync: str) -> SyncTables:
        return cls(
            snapshot=quote_ident(f"snapshot__{sync}"),
            stage=f"{WORK_DB}.{quote_ident(f'stage__{sync}')}",
            changes=f"{WORK_DB}.{quote_ident(f'changes__{sync}')}",
        )

    def render(self, sql: str, **extra: str) -> str:
        return sql.format(snapshot=self.snapshot, stage=self.stage, changes=self.changes, **extra)


class StateStore:
    """One sync's view of a state file; open it with :meth:`open`, close it when done."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path, sync: str) -> None:
        self.con = con
        self.path = path
        self.sync = sync
        self.tables = SyncTables.of(sync)
        # Set by stage(): with an empty snapshot, commits only insert (no DELETE to probe).
        self._snapshot_was_empty = False
        # Set by stage(): (kind, reject, rows) of the staged rows, whence every count.
        self._tally: list[tuple[str | None, str | None, int]] = []

    @classmethod
    def open(cls, settings: StateConfig, sync: str, read_only: bool = False) -> StateStore:
        """Open (creating when needed) the state file for ``sync``."""
        path = Path(settings.path)
        if read_only and not path.exists():
            raise StateError(f"sync '{sync}': no state file at {path} yet (no run has happened)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            con = duckdb.connect(str(path), read_only=read_only)
        except (OSError, duckdb.Error) as exc:
            raise StateError(
                f"sync '{sync}': cannot open state file {path}: {_first_line(exc)}"
            ) from None
        con.execute("SET TimeZone = 'UTC'")
        if settings.memory_limit:
            con.execute(f"SET memory_limit = {sql_literal(settings.memory_limit)}")
        if settings.threads:
            con.execute(f"SET threads = {int(settings.threads)}")
        temp = settings.temp_directory or path.parent / f"{path.name}.tmp"
        con.execute(f"SET temp_directory = {sql_literal(str(temp))}")
        # Row order never matters here, and keeping it costs memory.
        con.execute("SET preserve_insertion_order = false")
        # A run's work tables need no durability: an in-memory database (which spills to
        # temp_directory under memory_limit) avoids compressing and writing them to the
        # state file, the most expensive part of staging. Cursors share it.
        if not read_only:
            con.execute(f"ATTACH ':memory:' AS {WORK_DB}")
        store = cls(con, path, sync)
        if not read_only:
            store._migrate()
        return store

    def close(self) -> None:
        """Close the file."""
        self.con.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema and mapping ------------------------------------------------------------

    def _migrate(self) -> None:
        self.con.execute(_sql("schema.sql"))
        self.con.execute(self.tables.render(_sql("snapshot.sql")))
        version = self._one("SELECT value FROM ts_meta WHERE key = 'schema'")
        if version is None:
            self.con.execute("INSERT INTO ts_meta VALUES ('schema', ?)", [SCHEMA_VERSION])
        elif version[0] != SCHEMA_VERSION:
            raise StateError(
                f"sync '{self.sync}': state file {self.path} has schema {version[0]}, this "
                f"version of target-sync reads schema {SCHEMA_VERSION}"
            )

    def previous_mapping(self) -> tuple[str, dict[str, Any]] | None:
        """The mapping signature and description the snapshot was built with, if any."""
        row = self._one(
            "SELECT mapping_signature, mapping FROM ts_syncs WHERE sync = ?", [self.sync]
        )
        return (row[0], json.loads(row[1])) if row else None

    def fingerprint_scheme(self) -> str | None:
        row = self._one("SELECT fingerprint_scheme FROM ts_syncs WHERE sync = ?", [self.sync])
        return row[0] if row else None

    def refresh_fingerprints(self, signature: str, value_count: int) -> None:
        """Recompute stored fingerprints under this DuckDB version, without resending.

        The stored cells decode back to exactly the texts the fingerprint was made of.
        """
        texts = ", ".join(
            f"url_decode(split_part(cells, ',', {position}))"
            for position in range(1, value_count + 1)
        )
        self.con.execute(
            f"UPDATE {self.tables.snapshot} SET fp = hash({texts}, {sql_literal(signature)}) "
            "WHERE cells IS NOT NULL"
        )
        self.con.execute(
            "UPDATE ts_syncs SET fingerprint_scheme = ? WHERE sync = ?",
            [FINGERPRINT_SCHEME, self.sync],
        )

    def save_mapping(self, signature: str, mapping: dict[str, Any]) -> None:
        """Record the mapping the snapshot is now being built with."""
        self.con.execute("DELETE FROM ts_syncs WHERE sync = ?", [self.sync])
        self.con.execute(
            "INSERT INTO ts_syncs VALUES (?, ?, ?, ?, ?)",
            [self.sync, signature, json.dumps(mapping), FINGERPRINT_SCHEME, now()],
        )

    def snapshot_size(self) -> int:
        row = self._one(f"SELECT count(*) FROM {self.tables.snapshot} WHERE NOT gone")
        return int(row[0]) if row else 0

    # -- stage and diff ----------------------------------------------------------------

    def stage(self, source: pa.RecordBatchReader, staged: str, value_count: int) -> StageCounts:
        """Ingest the source stream with the staging SELECT ``staged``, diffing it against the
        snapshot as it goes (see ``stage_diff.sql``), then flag duplicate ids.

        An error the stream raises while DuckDB reads it (a query failing mid-result, a
        value that does not fit its column) reaches DuckDB's caller as a DuckDB error with
        a traceback in its text; the stream's own exception is raised instead.
        """
        import pyarrow as pa

        self._snapshot_was_empty = self._scalar(f"SELECT count(*) FROM {self.tables.snapshot}") == 0
        script = "stage_first.sql" if self._snapshot_was_empty else "stage_diff.sql"
        sql = self.tables.render(_sql(script), staged=staged, cells=cells_sql(value_count, "s."))
        failed: list[BaseException] = []

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                yield from source
            except BaseException as exc:
                failed.append(exc)
                raise

        self.con.register(SOURCE, pa.RecordBatchReader.from_batches(source.schema, batches()))
        # The snapshot side must be the join's build side: with no size known for a stream,
        # DuckDB may build its hash table on the stream instead, texts and all.
        self.con.execute("SET disabled_optimizers = 'build_side_probe_side'")
        try:
            self.con.execute(sql)
        except duckdb.Error:
            if failed:
                raise failed[0] from None
            raise
        finally:
            self.con.execute("RESET disabled_optimizers")
            self.con.unregister(SOURCE)
        # Most results have no repeated id, and counting distinct 64-bit hashes is cheaper
        # than distinct strings; equal hashes only send us to the exact check.
        if self._scalar(f"SELECT count(id) - count(DISTINCT hash(id)) FROM {self.tables.stage}"):
            self.con.execute(self.tables.render(_sql("duplicates.sql")))
        self.con.execute(
            f"CREATE OR REPLACE VIEW {self.tables.changes} AS "
            f"SELECT id, fp, kind, cells FROM {self.tables.stage} WHERE kind IS NOT NULL"
        )
        self._tally = [
            (kind, reject, int(rows))
            for kind, reject, rows in self.con.execute(
                f"SELECT kind, reject, count(*) FROM {self.tables.stage} GROUP BY ALL"
            ).fetchall()
        ]
        read = sum(rows for kind, _, rows in self._tally if kind != "removed")
        reasons = sorted({reject for _, reject, _ in self._tally if reject is not None})
        rejected = {r: sum(n for _, reject, n in self._tally if reject == r) for r in reasons}
        return StageCounts(rows=read, rejected=rejected)

    def diff(self) -> DiffCounts:
        """How the staged rows compare with the snapshot (the diff itself ran while staging)."""

        def count(kind: str) -> int:
            return sum(rows for k, reject, rows in self._tally if k == kind and reject is None)

        valid = sum(
            rows for kind, reject, rows in self._tally if reject is None and kind != "removed"
        )
        new, changed = count("new"), count("changed")
        return DiffCounts(
            new=new,
            changed=changed,
            removed=count("removed"),
            unchanged=valid - new - changed,
            first_run=self._snapshot_was_empty,
        )

    def upsert_stream(self, batch_rows: int) -> pa.RecordBatchReader:
        """The new and changed profiles as (id, cells, fp, line), ``line`` ending in ``\\n``.

        Read on its own cursor, so batches can be committed while it is being read.
        """
        relation = self.con.cursor().sql(
            f"SELECT id, cells, fp, url_encode(id) || ',' || cells || chr(10) AS line "
            f"FROM {self.tables.changes} WHERE kind <> 'removed'"
        )
        return relation.to_arrow_reader(batch_rows)

    def removed_stream(self, exit_cells: str, batch_rows: int) -> pa.RecordBatchReader:
        """Profiles that left the result, as lines carrying the exit attributes."""
        relation = self.con.cursor().sql(
            f"SELECT id, CAST(NULL AS VARCHAR) AS cells, CAST(NULL AS UBIGINT) AS fp, "
            f"url_encode(id) || ',' || {sql_literal(exit_cells)} || chr(10) AS line "
            f"FROM {self.tables.changes} WHERE kind = 'removed'"
        )
        return relation.to_arrow_reader(batch_rows)

    def sample_changes(self, limit: int) -> list[tuple[str, str, str | None, str | None]]:
        """A few changed profiles: (kind, id, old cells, new cells)."""
        rows = self.con.execute(
            f"SELECT c.kind, c.id, p.cells, c.cells FROM (SELECT * FROM {self.tables.changes} "
            f"ORDER BY kind, id LIMIT ?) AS c LEFT JOIN {self.tables.snapshot} AS p "
            "ON p.id = c.id AND c.kind <> 'new' ORDER BY c.kind, c.id",
            [limit],
        ).fetchall()
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def attribute_changes(
        self, names: Sequence[str], nullable: Sequence[bool]
    ) -> tuple[dict[str, int], dict[str, int]]:
        """Per attribute: how many changed profiles changed it, and how many went from a
        value to an empty cell (a stale value stays in Target) where ``nullable``."""
        if not names:
            return {}, {}
        # One row per (profile, attribute), grouped by position: the SQL stays the same size
        # whatever the width (two counts per attribute made planning quadratic: 58 s at
        # 1,000 attributes, minutes at 2,000).
        # Two joins, so the snapshot's cells are read for the changed profiles only: ids find
        # their rows, then rowids their cells (one join carrying every profile's cells took
        # twice as long at 10M profiles).
        rows = self.con.execute(
            "SELECT position, count(*) FILTER (WHERE old <> new), "
            "count(*) FILTER (WHERE old <> '' AND new = '') FROM ("
            "SELECT unnest(old_cells) AS old, unnest(new_cells) AS new, "
            "generate_subscripts(old_cells, 1) AS position FROM ("
            "SELECT string_split(p.cells, ',') AS old_cells, "
            "string_split(c.cells, ',') AS new_cells "
            f"FROM (SELECT c.cells, r.snapshot_row FROM {self.tables.changes} AS c "
            f"JOIN (SELECT id, rowid AS snapshot_row FROM {self.tables.snapshot}) AS r "
            "ON r.id = c.id WHERE c.kind = 'changed') AS c "
            f"JOIN (SELECT rowid AS snapshot_row, cells FROM {self.tables.snapshot}) AS p "
            "USING (snapshot_row))) GROUP BY position ORDER BY position"
        ).fetchall()
        rows = [row for row in rows if row[0] <= len(names)]
        changed = {names[i - 1]: int(n) for i, n, _ in rows if n}
        stale = {names[i - 1]: int(n) for i, _, n in rows if n and nullable[i - 1]}
        return changed, stale

    def rejects(self, limit: int) -> list[tuple[str | None, str, str | None]]:
        """Up to ``limit`` rejected rows of the staged result: (id, reason, detail)."""
        return [
            (r[0], r[1], r[2])
            for r in self.con.execute(
                f"SELECT id, reject, reject_detail FROM {self.tables.stage} "
                "WHERE reject IS NOT NULL ORDER BY reject, id LIMIT ?",
                [limit],
            ).fetchall()
        ]

    # -- commit and revert -------------------------------------------------------------

    def commit_upserts(self, batch: pa.Table, batch_id: str) -> None:
        """Advance the snapshot for the profiles of one accepted batch."""
        script = "insert_upserts.sql" if self._snapshot_was_empty else "commit_upserts.sql"
        self._apply(script, batch, batch_id)

    def commit_removed(self, batch: pa.Table, batch_id: str) -> None:
        """Mark profiles whose exit attributes were accepted as gone."""
        self._apply("commit_removed.sql", batch, batch_id)

    def _apply(self, script: str, batch: pa.Table, batch_id: str) -> None:
        sql = self.tables.render(_sql(script), batch="accepted_batch")
        self.con.register("accepted_batch", batch)
        try:
            self.con.execute("BEGIN TRANSACTION")
            for statement in _statements(sql):
                params = {"batch_id": batch_id} if "$batch_id" in statement else None
                self.con.execute(statement, params)
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        finally:
            self.con.unregister("accepted_batch")

    def forget_removed(self) -> int:
        """Drop profiles that left the result from the snapshot (``on_removed: ignore``)."""
        count = self._scalar(f"SELECT count(*) FROM {self.tables.changes} WHERE kind = 'removed'")
        self.con.execute(
            f"DELETE FROM {self.tables.snapshot} WHERE id IN "
            f"(SELECT id FROM {self.tables.changes} WHERE kind = 'removed')"
        )
        return count

    def revert(
        self, batch_id: str, run_id: str, reason: str, ids: Sequence[str] | None = None
    ) -> int:
        """Make the next run resend a batch's profiles (all of them, or just ``ids``), and
        list them as failed with ``reason``.

        Only rows still carrying ``batch_id`` are touched: a profile sent again since then
        has a newer delivery that supersedes this one. An upserted profile leaves the
        snapshot (so it is new again); a removed one is no longer ``gone`` (so it is removed
        again) and carries no batch any more. One transaction, and a second call for the same
        batch changes nothing.
        """
        if ids is not None and not ids:
            return 0
        snap = self.tables.snapshot
        where = "batch_id = $batch_id"
        params: dict[str, object] = {"batch_id": batch_id}
        if ids is not None:
            where += " AND id IN (SELECT unnest($ids))"
            params["ids"] = list(ids)
        self.con.execute("BEGIN TRANSACTION")
        try:
            count = self._scalar(f"SELECT count(*) FROM {snap} WHERE {where}", params)
            self.con.execute(
                f"INSERT INTO ts_failed SELECT $run_id, $sync, $batch_id, id, $reason "
                f"FROM {snap} WHERE {where} ORDER BY id LIMIT {MAX_REJECTS_KEPT}",
                {**params, "run_id": run_id, "sync": self.sync, "reason": reason},
            )
            # Delete first: the update below turns gone rows into rows that are not gone.
            self.con.execute(f"DELETE FROM {snap} WHERE NOT gone AND {where}", params)
            self.con.execute(
                f"UPDATE {snap} SET gone = false, batch_id = NULL WHERE gone AND {where}", params
            )
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        return count

    def confirm(self, batch_id: str) -> None:
        """A batch is complete: profiles it said goodbye to leave the snapshot."""
        self.con.execute(
            f"DELETE FROM {self.tables.snapshot} WHERE gone AND batch_id = ?", [batch_id]
        )

    def reset(self) -> int:
        """Forget the snapshot: the next run sends every profile."""
        count = self.snapshot_size()
        self.con.execute(f"DELETE FROM {self.tables.snapshot}")
        self.con.execute("DELETE FROM ts_syncs WHERE sync = ?", [self.sync])
        self.con.execute(
            "UPDATE ts_batches SET state = 'abandoned', resolved_at = ? "
            "WHERE sync = ? AND state = 'pending'",
            [now(), self.sync],
        )
        return count

    def drop_work_tables(self) -> None:
        """Drop the stage table and the changes view of the current run."""
        self.con.execute(f"DROP VIEW IF EXISTS {self.tables.changes}")
        self.con.execute(f"DROP TABLE IF EXISTS {self.tables.stage}")

    # -- history -------------------------------------------------------------------------

    def close_interrupted_runs(self) -> int:
        """Mark runs of this sync that never finished (killed, or the host went down) as
        ``interrupted``. Call it holding the run lock: no other run is going on then."""
        stale = self._scalar(
            "SELECT count(*) FROM ts_runs WHERE sync = ? AND outcome = 'running'", [self.sync]
        )
        if stale:
            self.con.execute(
                "UPDATE ts_runs SET outcome = 'interrupted', message = ? "
                "WHERE sync = ? AND outcome = 'running'",
                [
                    "the run stopped before it finished (killed, or the host went down); the "
                    "next run checks its pending batches and resends what was not confirmed",
                    self.sync,
                ],
            )
        return stale

    def start_run(self, run_id: str, dry_run: bool) -> None:
        self.con.execute(
            "INSERT INTO ts_runs VALUES (?, ?, ?, NULL, ?, 'running', NULL, NULL, NULL)",
            [run_id, self.sync, now(), dry_run],
        )

    def finish_run(
        self, run_id: str, outcome: str, exit_code: int, summary: dict[str, Any], message: str
    ) -> None:
        self.con.execute(
            "UPDATE ts_runs SET finished_at = ?, outcome = ?, exit_code = ?, summary = ?, "
            "message = ? WHERE run_id = ? AND sync = ?",
            [now(), outcome, exit_code, json.dumps(summary), message, run_id, self.sync],
        )

    def record_batch(
        self,
        run_id: str,
        seq: int,
        kind: str,
        batch_id: str,
        status_url: str,
        rows: int,
        size: int,
    ) -> None:
        self.con.execute(
            "INSERT INTO ts_batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', NULL, ?, NULL)",
            [run_id, self.sync, seq, kind, batch_id, status_url, rows, size, now()],
        )

    def resolve_batch(self, batch_id: str, state: str, detail: str) -> None:
        """Record what became of a batch (``complete``, ``reverted``), or, with ``pending``,
        why it is still waiting."""
        self.con.execute(
            "UPDATE ts_batches SET state = ?, detail = ?, resolved_at = ? "
            "WHERE sync = ? AND batch_id = ?",
            [state, detail, None if state == "pending" else now(), self.sync, batch_id],
        )

    def pending_batches(self) -> list[PendingBatch]:
        rows = self.con.execute(
            "SELECT run_id, seq, kind, batch_id, status_url, rows FROM ts_batches "
            "WHERE sync = ? AND state = 'pending' ORDER BY uploaded_at, seq",
            [self.sync],
        ).fetchall()
        return [PendingBatch(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    def record_rejects(self, run_id: str) -> None:
        """Keep a capped list of this run's rejected rows with the run."""
        self.con.execute(
            "INSERT INTO ts_rejects "
            f"SELECT ?, ?, id, reject, reject_detail FROM {self.tables.stage} "
            "WHERE reject IS NOT NULL ORDER BY reject, id LIMIT ?",
            [run_id, self.sync, MAX_REJECTS_KEPT],
        )

    def runs(self, limit: int) -> list[dict[str, Any]]:
        cursor = self.con.execute(
            "SELECT run_id, started_at, finished_at, dry_run, outcome, exit_code, summary, "
            "message FROM ts_runs WHERE sync = ? ORDER BY started_at DESC LIMIT ?",
            [self.sync, limit],
        )
        return _dicts(cursor)

    def batches(self, run_id: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
        sql = (
            "SELECT run_id, seq, kind, batch_id, rows, bytes, state, detail, uploaded_at, "
            "resolved_at FROM ts_batches WHERE sync = ?"
        )
        params: list[object] = [self.sync]
        if run_id is not None:
            sql += " AND run_id = ?"
            params.append(run_id)
        if state is not None:
            sql += " AND state = ?"
            params.append(state)
        return _dicts(self.con.execute(sql + " ORDER BY uploaded_at, seq", params))

    def failed_rows(self, run_id: str, limit: int) -> list[dict[str, Any]]:
        return _dicts(
            self.con.execute(
                "SELECT batch_id, id, reason FROM ts_failed WHERE sync = ? AND run_id = ? "
                "ORDER BY id LIMIT ?",
                [self.sync, run_id, limit],
            )
        )

    def stored_rejects(self, run_id: str, limit: int) -> list[dict[str, Any]]:
        return _dicts(
            self.con.execute(
                "SELECT id, reason, detail FROM ts_rejects WHERE sync = ? AND run_id = ? "
                "ORDER BY reason, id LIMIT ?",
                [self.sync, run_id, limit],
            )
        )

    def prune_history(self, keep_runs: int) -> None:
        """Keep the history of the last ``keep_runs`` runs of this sync."""
        old = "SELECT run_id FROM ts_runs WHERE sync = $sync ORDER BY started_at DESC OFFSET $keep"
        params = {"sync": self.sync, "keep": keep_runs}
        for table in ("ts_failed", "ts_rejects"):
            self.con.execute(
                f"DELETE FROM {table} WHERE sync = $sync AND run_id IN ({old})", params
            )
        self.con.execute(
            f"DELETE FROM ts_batches WHERE sync = $sync AND state <> 'pending' "
            f"AND run_id IN ({old})",
            params,
        )
        self.con.execute(f"DELETE FROM ts_runs WHERE sync = $sync AND run_id IN ({old})", params)

    def _one(self, sql: str, params: object = None) -> tuple[Any, ...] | None:
        """The first row of a query, reading the result to its end (DuckDB 2 requires it)."""
        rows = self.con.execute(sql, params).fetchall()
        return rows[0] if rows else None

    def _scalar(self, sql: str, params: object = None) -> int:
        row = self._one(sql, params)
        return int(row[0]) if row and row[0] is not None else 0


def _statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
