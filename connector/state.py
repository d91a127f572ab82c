"""The state store: snapshots, staging, diff and run history in one DuckDB file.

The snapshot is the promise of what Target holds. Every row is confirmed by Target, tied to
a batch Target has not finished, or owed (fingerprint NULL: resent by the next run); each id
appears at most once; and every row carries the binding (mapping + destination) it was sent
under, which is part of its fingerprint. :meth:`StateStore.invariant_violations` checks all
three.

The connection is an in-memory DuckDB database, where a run's work tables live (no
durability needed, and it spills to ``temp_directory`` under ``memory_limit``), with the state
file attached as ``state`` (read-only for ``status`` and dry runs, which never write a byte).
The SQL lives in ``connector/sql/``.

Tables of a state file: ``ts_meta``, ``ts_syncs``, ``ts_bindings``, ``ts_runs``,
``ts_batches``, ``ts_failed``, ``ts_rejects`` (see ``sql/schema.sql``) and per sync
``snapshot__NAME`` (``sql/snapshot.sql``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import duckdb

from .errors import StateError
from .private import private_folder, warn_if_shared
from .serialize import quote_ident, sql_literal
from .sql import load as _sql
from .staging import SOURCE, cells_sql

if TYPE_CHECKING:
    import pyarrow as pa

    from .config import StateConfig

log = logging.getLogger(__name__)

SCHEMA_VERSION = "2"
# How fingerprints are computed; DuckDB's hash() may change between versions, so a state file
# written by another version gets its fingerprints recomputed from the stored cells.
FINGERPRINT_SCHEME = f"duckdb-hash/{duckdb.__version__}"
MAX_REJECTS_KEPT = 10_000
STATE_DB = "state"
WORK_DB = "memory"

Mode = Literal["write", "read", "scratch"]


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
    retried: int
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


@dataclass(frozen=True)
class Binding:
    """A mapping and destination snapshot rows were sent under."""

    signature: str
    mapping: dict[str, Any]
    destination: dict[str, Any] | None  # None: recorded before destinations were (schema 1)
    attributes: int


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


def damaged_message(path: Path, sync: str, problem: str) -> str:
    """The one line that names a damaged state file and the way out."""
    return (
        f"sync '{sync}': the state file {path} is damaged or is not a target-sync state file "
        f"({problem}); nothing was read or sent. Run 'target-sync reset CONFIG' to keep it "
        "aside (as STATE.damaged-TIME) and start a new one: every sync in it then sends all "
        "its profiles again"
    )


def _is_damage(problem: str) -> bool:
    markers = ("not a valid DuckDB database", "Could not read enough bytes", "Corrupt", "corrupt")
    return any(marker in problem for marker in markers)


@contextlib.contextmanager
def damage_guard(path: Path, sync: str) -> Iterator[None]:
    """Turn a DuckDB error that says the state file is damaged (found by any read, not only
    on opening: a truncated file opens) into the one-line StateError that names the way out."""
    try:
        yield
    except duckdb.Error as exc:
        problem = _first(exc)
        if _is_damage(problem):
            raise StateError(damaged_message(path, sync, problem)) from exc
        raise


class StateStore:
    """One sync's view of a state file; open it with :meth:`open`, close it when done."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        path: Path,
        sync: str,
        mode: Mode,
        keep_values: bool = True,
    ):
        self.con = con
        # False: the snapshot keeps no attribute values (state.keep_values).
        self.keep_values = keep_values
        self.path = path
        self.sync = sync
        self.mode = mode
        self.tables = SyncTables.of(sync)
        # Set by stage(): with an empty snapshot, commits only insert (no DELETE to probe).
        self._snapshot_was_empty = False
        # Set by stage(): (kind, reject, rows) of the staged rows, whence every count.
        self._tally: list[tuple[str | None, str | None, int]] = []
        self._scratch: Path | None = None
        # A read-only store over a state file of an older schema (the next sync upgrades it).
        self.outdated = False

    @property
    def writable(self) -> bool:
        return self.mode != "read"

    @classmethod
    def open(cls, settings: StateConfig, sync: str, mode: Mode = "write") -> StateStore:
        """Open the state file for ``sync``.

        ``write`` creates it when needed and migrates it; ``read`` attaches it read-only
        (it must exist and be current: see :meth:`needs_rewrite`); ``scratch`` works on a
        private copy (taken under the shared lock, or empty when there is no file yet) that
        is deleted on close, so nothing reaches the real file.
        """
        path = Path(settings.path)
        scratch = None
        target = path
        if mode == "scratch":
            scratch = Path(tempfile.mkdtemp(prefix="target-sync-", dir=_scratch_parent(settings)))
            target = scratch / path.name
            _copy_state(path, target, sync)
        elif mode == "read" and not path.exists():
            raise StateError(f"sync '{sync}': no state file at {path} yet (no run has happened)")
        try:
            store = cls._connect(settings, target, sync, mode, shown=path)
        except BaseException:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
            raise
        store.path = path
        store._scratch = scratch
        return store

    @classmethod
    def _connect(
        cls, settings: StateConfig, file: Path, sync: str, mode: Mode, shown: Path
    ) -> StateStore:
        """Connect to ``file`` (``shown``: the state file it is, or a copy of, for messages)."""
        try:
            if mode == "write":
                private_folder(file.parent)
            if mode != "scratch" and file.exists():
                warn_if_shared(file, "the state file")
            con = duckdb.connect(":memory:")
        except (OSError, duckdb.Error) as exc:
            raise StateError(
                f"sync '{sync}': cannot open state file {file}: {_first(exc)}"
            ) from None
        try:
            con.execute("SET TimeZone = 'UTC'")
            if settings.memory_limit:
                con.execute(f"SET memory_limit = {sql_literal(settings.memory_limit)}")
            if settings.threads:
                con.execute(f"SET threads = {int(settings.threads)}")
            temp = settings.temp_directory or file.parent / f"{file.name}.tmp"
            if mode != "read":
                private_folder(temp)
            con.execute(f"SET temp_directory = {sql_literal(str(temp))}")
            # Row order never matters here, and keeping it costs memory.
            con.execute("SET preserve_insertion_order = false")
            read_only = " (READ_ONLY)" if mode == "read" else ""
            con.execute(f"ATTACH {sql_literal(str(file))} AS {STATE_DB}{read_only}")
            con.execute(f"USE {STATE_DB}")
        except duckdb.Error as exc:
            con.close()
            problem = _first(exc).replace(str(file), str(shown))
            if _is_damage(problem):
                raise StateError(damaged_message(shown, sync, problem)) from None
            if "lock" in problem.lower():
                raise StateError(
                    f"sync '{sync}': the state file {shown} is in use by another process "
                    f"({problem}); wait for it to finish, then rerun"
                ) from None
            raise StateError(f"sync '{sync}': cannot open state file {shown}: {problem}") from None
        store = cls(con, file, sync, mode, settings.keep_values)
        try:
            if mode == "read":
                store._check_readable()
            else:
                store._migrate()
        except BaseException:
            con.close()
            raise
        return store

    def close(self) -> None:
        """Close the file (and delete a scratch copy)."""
        try:
            self.con.close()
        finally:
            if self._scratch is not None:
                shutil.rmtree(self._scratch, ignore_errors=True)
                self._scratch = None

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema ----------------------------------------------------------------------------

    def _schema_version(self) -> str | None:
        exists = self._scalar(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_catalog = ? AND table_name = 'ts_meta'",
            [STATE_DB],
        )
        if not exists:
            return None
        row = self._one("SELECT value FROM ts_meta WHERE key = 'schema'")
        return str(row[0]) if row else None

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
        exists = self._scalar(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_catalog = ? AND table_name = ?",
            [STATE_DB, f"snapshot__{self.sync}"],
        )
        if not exists:  # no run of this sync yet: read an empty snapshot
            self.tables.snapshot = f"{WORK_DB}.{self.tables.snapshot}"
            self.con.execute(self.tables.render(_sql("snapshot.sql")))

    def _migrate(self) -> None:
        version = self._schema_version()
        if version is not None and version not in ("1", SCHEMA_VERSION):
            raise StateError(
                f"sync '{self.sync}': state file {self.path} has schema {version}, this "
                f"version of target-sync reads schema {SCHEMA_VERSION}; upgrade target-sync"
            )
        if version == "1":
            self._migrate_1_to_2()
        self.con.execute(_sql("schema.sql"))
        self.con.execute(self.tables.render(_sql("snapshot.sql")))
        if version is None:
            self.con.execute("INSERT INTO ts_meta VALUES ('schema', ?)", [SCHEMA_VERSION])

    def _migrate_1_to_2(self) -> None:
        tables = [
            name
            for (name,) in self.con.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_catalog = ? AND table_name LIKE 'snapshot\\_\\_%' ESCAPE '\\'",
                [STATE_DB],
            ).fetchall()
        ]
        self.con.execute("BEGIN TRANSACTION")
        try:
            for table in tables:
                quoted = quote_ident(table)
                self.con.execute(f"ALTER TABLE {quoted} ADD COLUMN binding VARCHAR")
                self.con.execute(
                    f"UPDATE {quoted} SET binding = (SELECT mapping_signature FROM ts_syncs "
                    "WHERE sync = ?)",
                    [table.removeprefix("snapshot__")],
                )
            for statement in _statements(_sql("migrate_1_to_2.sql")):
                self.con.execute(statement)
            self.con.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        log.info("state file %s upgraded to schema %s", self.path, SCHEMA_VERSION)

    # -- bindings, fingerprints and the sync's record -----------------------------------------

    def bindings(self) -> dict[str, Binding]:
        """Every binding this sync's rows were sent under, by signature."""
        rows = self.con.execute(
            "SELECT binding, mapping, destination, attributes FROM ts_bindings WHERE sync = ?",
            [self.sync],
        ).fetchall()
        return {
            r[0]: Binding(r[0], json.loads(r[1]), json.loads(r[2]) if r[2] else None, int(r[3]))
            for r in rows
        }

    def binding_census(self) -> dict[str | None, int]:
        """How many snapshot profiles (not gone, not owed) each binding holds."""
        return {
            binding: int(count)
            for binding, count in self.con.execute(
                f"SELECT binding, count(*) FROM {self.tables.snapshot} "
                "WHERE NOT gone AND fp IS NOT NULL GROUP BY binding"
            ).fetchall()
        }

    def register_binding(
        self, signature: str, mapping: dict[str, Any], destination: dict[str, Any]
    ) -> None:
        """Record a binding before rows are committed under it (idempotent)."""
        if signature in self.bindings():
            return
        self.con.execute(
            "INSERT INTO ts_bindings VALUES (?, ?, ?, ?, ?, ?)",
            [
                self.sync,
                signature,
                json.dumps(mapping),
                json.dumps(destination),
                len(mapping.get("attributes", {})),
                now(),
            ],
        )

    def sync_record(self) -> tuple[str | None, str | None]:
        """(fingerprint scheme, config file that last ran the sync), or Nones for a new sync."""
        row = self._one(
            "SELECT fingerprint_scheme, config_path FROM ts_syncs WHERE sync = ?", [self.sync]
        )
        return (row[0], row[1]) if row else (None, None)

    def record_sync(self, config_path: str | None) -> None:
        """Note the config file running the sync (a new sync starts with the current scheme)."""
        scheme, _ = self.sync_record()
        if scheme is None:
            self.con.execute("DELETE FROM ts_syncs WHERE sync = ?", [self.sync])
            self.con.execute(
                "INSERT INTO ts_syncs VALUES (?, ?, ?, ?)",
                [self.sync, FINGERPRINT_SCHEME, config_path, now()],
            )
        else:
            self.con.execute(
                "UPDATE ts_syncs SET config_path = ?, updated_at = ? WHERE sync = ?",
                [config_path, now(), self.sync],
            )

    def values_kept(self) -> int:
        """How many snapshot rows keep their attribute values (cells)."""
        return self._scalar(f"SELECT count(cells) FROM {self.tables.snapshot}")

    def drop_values(self) -> int:
        """Forget every stored attribute value (``state.keep_values: false``); returns how
        many rows held some. Their bytes may linger in free blocks: :func:`compact` after."""
        count = self.values_kept()
        if count:
            self.con.execute(f"UPDATE {self.tables.snapshot} SET cells = NULL")
        return count

    def unrefreshable(self) -> int:
        """Rows whose fingerprint cannot be recomputed after a scheme change (no values kept):
        those profiles are resent."""
        if not self.needs_refresh():
            return 0
        return self._scalar(
            f"SELECT count(*) FROM {self.tables.snapshot} WHERE cells IS NULL AND fp IS NOT NULL"
        )

    def needs_refresh(self) -> bool:
        """Whether stored fingerprints were made by another DuckDB version's hash()."""
        scheme, _ = self.sync_record()
        return scheme is not None and scheme != FINGERPRINT_SCHEME and self.snapshot_rows() > 0

    def refresh_fingerprints(self) -> None:
        """Recompute every stored fingerprint under this DuckDB version, without resending.

        Each row is rehashed with its own binding's signature: a row keeps the mapping and
        destination it was sent under (one sent under an earlier mapping stays different
        from the current one, and is resent). The stored cells decode back to exactly the
        texts the fingerprint was made of.
        """
        self._rehash(lambda binding: binding.signature)
        self.con.execute(
            "UPDATE ts_syncs SET fingerprint_scheme = ? WHERE sync = ?",
            [FINGERPRINT_SCHEME, self.sync],
        )

    def adopt_legacy(self, mapping_signature: str, current: str) -> int:
        """Bind rows from a schema-1 state file (no destination recorded) to ``current``, when
        they were sent under the same mapping (``mapping_signature``); returns how many.

        Schema 1 did not record where rows were sent; the configured destination is taken to
        be it, once, so that upgrading target-sync resends nothing.
        """
        legacy = [
            b
            for b in self.bindings().values()
            if b.destination is None and b.signature == mapping_signature
        ]
        if not legacy:
            return 0
        count = self._scalar(
            f"SELECT count(*) FROM {self.tables.snapshot} WHERE binding = ?", [mapping_signature]
        )
        self._rehash(lambda binding: current, only=mapping_signature, relabel=current)
        self.con.execute(
            "DELETE FROM ts_bindings WHERE sync = ? AND binding = ?", [self.sync, mapping_signature]
        )
        return count

    def _rehash(
        self,
        signature_of: Any,
        only: str | None = None,
        relabel: str | None = None,
    ) -> None:
        for binding in self.bindings().values():
            if only is not None and binding.signature != only:
                continue
            texts = ", ".join(
                f"url_decode(split_part(cells, ',', {position}))"
                for position in range(1, binding.attributes + 1)
            )
            new_signature = signature_of(binding)
            label = f", binding = {sql_literal(relabel)}" if relabel else ""
            self.con.execute(
                f"UPDATE {self.tables.snapshot} SET fp = CASE WHEN fp IS NOT NULL THEN "
                f"hash({texts}, {sql_literal(new_signature)}) END{label} "
                "WHERE binding = ? AND cells IS NOT NULL",
                [binding.signature],
            )

    def prune_bindings(self, keep: str) -> None:
        """Forget bindings no snapshot row uses any more (``keep`` always stays)."""
        self.con.execute(
            "DELETE FROM ts_bindings WHERE sync = $sync AND binding <> $keep AND binding NOT IN "
            f"(SELECT DISTINCT binding FROM {self.tables.snapshot} WHERE binding IS NOT NULL)",
            {"sync": self.sync, "keep": keep},
        )

    def snapshot_size(self) -> int:
        """Profiles in the snapshot, owed ones included (not the ones said goodbye to)."""
        return self._scalar(f"SELECT count(*) FROM {self.tables.snapshot} WHERE NOT gone")

    def snapshot_rows(self) -> int:
        return self._scalar(f"SELECT count(*) FROM {self.tables.snapshot}")

    # -- stage and diff ----------------------------------------------------------------------

    def stage(self, source: pa.RecordBatchReader, staged: str, value_count: int) -> StageCounts:
        """Ingest the source stream with the staging SELECT ``staged``, diffing it against the
        snapshot as it goes (see ``stage_diff.sql``), then flag duplicate ids.

        An error the stream raises while DuckDB reads it (a query failing mid-result, a
        value that does not fit its column) reaches DuckDB's caller as a DuckDB error with
        a traceback in its text; the stream's own exception is raised instead.
        """
        import pyarrow as pa

        self._snapshot_was_empty = self.snapshot_rows() == 0
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
        if duplicate_check_needed(self.con, self.tables.stage):
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
        new, changed, retried = count("new"), count("changed"), count("retry")
        return DiffCounts(
            new=new,
            changed=changed,
            retried=retried,
            removed=count("removed"),
            unchanged=valid - new - changed - retried,
            first_run=self._snapshot_was_empty,
        )

    def upsert_stream(self, batch_rows: int) -> pa.RecordBatchReader:
        """The new, changed and owed profiles as (id, cells, fp, line), ``line`` ending in
        ``\\n``. Read on its own cursor, so batches can be committed while it is being read.
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

    def sample_changes(self, limit: int) -> list[tuple[str, str, str | None, str | None, str]]:
        """A few profiles to send: (kind, id, old cells, new cells, old binding)."""
        rows = self.con.execute(
            f"SELECT c.kind, c.id, p.cells, c.cells, p.binding FROM (SELECT * FROM "
            f"{self.tables.changes} ORDER BY kind, id LIMIT ?) AS c LEFT JOIN "
            f"{self.tables.snapshot} AS p ON p.id = c.id AND c.kind <> 'new' "
            "ORDER BY c.kind, c.id",
            [limit],
        ).fetchall()
        return [(str(r[0]), r[1], r[2], r[3], r[4]) for r in rows]

    def attribute_changes(
        self,
        names: Sequence[str],
        nullable: Sequence[bool],
        comparable: Sequence[str] | None = None,
    ) -> tuple[dict[str, int], dict[str, int]]:
        """Per attribute: how many changed profiles changed it, and how many went from a
        value to an empty cell (a stale value stays in Target) where ``nullable``.

        Only profiles last sent under a binding in ``comparable`` (the same attributes in the
        same order; None: every profile) are compared: other cells do not line up.
        """
        if not names or comparable == [] or not self.keep_values:
            return {}, {}
        only = (
            f" WHERE binding IN ({', '.join(sql_literal(b) for b in comparable)})"
            if comparable is not None
            else ""
        )
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
            f"JOIN (SELECT id, rowid AS snapshot_row FROM {self.tables.snapshot}{only}) AS r "
            "ON r.id = c.id WHERE c.kind = 'changed') AS c "
            f"JOIN (SELECT rowid AS snapshot_row, cells FROM {self.tables.snapshot}) AS p "
            "USING (snapshot_row))) GROUP BY position ORDER BY position"
        ).fetchall()
        # (a profile whose values are not kept has no old cells: no position)
        rows = [row for row in rows if row[0] is not None and row[0] <= len(names)]
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

    # -- commit and revert -------------------------------------------------------------------

    def commit_upserts(self, batch: pa.Table, batch_id: str, binding: str) -> None:
        """Advance the snapshot for the profiles of one accepted batch."""
        script = "insert_upserts.sql" if self._snapshot_was_empty else "commit_upserts.sql"
        self._apply(script, batch, {"batch_id": batch_id, "binding": binding})

    def commit_removed(self, batch: pa.Table, batch_id: str) -> None:
        """Mark profiles whose exit attributes were accepted as gone."""
        self._apply("commit_removed.sql", batch, {"batch_id": batch_id})

    def _apply(self, script: str, batch: pa.Table, params: dict[str, str]) -> None:
        cells = "cells" if self.keep_values else "CAST(NULL AS VARCHAR)"
        sql = self.tables.render(_sql(script), batch="accepted_batch", cells=cells)
        self.con.register("accepted_batch", batch)
        try:
            self.con.execute("BEGIN TRANSACTION")
            try:
                for statement in _statements(sql):
                    used = {k: v for k, v in params.items() if f"${k}" in statement}
                    self.con.execute(statement, used or None)
                self.con.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        except duckdb.Error as exc:
            raise StateError(
                f"sync '{self.sync}': writing the state file {self.path} failed ({_first(exc)}); "
                "the snapshot keeps what was committed before; rerunning is safe"
            ) from exc
        finally:
            with contextlib.suppress(duckdb.Error):
                self.con.unregister("accepted_batch")

    def _rollback(self) -> None:
        """Undo an open transaction; never hide the error that made it necessary."""
        try:
            self.con.execute("ROLLBACK")
        except duckdb.Error as exc:
            log.debug("rollback failed after an earlier error: %s", _first(exc))

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
        has a newer delivery that supersedes this one. An upserted profile becomes owed (its
        fingerprint NULL: what Target holds is unknown, and the next run resends it); a
        removed one is no longer ``gone`` (so it is removed again). One transaction, and a
        second call for the same batch changes nothing.
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
            self.con.execute(
                f"UPDATE {snap} SET fp = NULL, batch_id = NULL WHERE NOT gone AND {where}", params
            )
            self.con.execute(
                f"UPDATE {snap} SET gone = false, batch_id = NULL WHERE gone AND {where}", params
            )
            self.con.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        return count

    def mark_owed(self, ids: Sequence[str]) -> int:
        """Make the next run resend these profiles (``verify --resend-mismatched``): what
        Target holds for them is not what the snapshot says. Returns how many."""
        where = "NOT gone AND fp IS NOT NULL AND id IN (SELECT unnest($ids))"
        count = self._scalar(
            f"SELECT count(*) FROM {self.tables.snapshot} WHERE {where}", {"ids": list(ids)}
        )
        self.con.execute(
            f"UPDATE {self.tables.snapshot} SET fp = NULL, batch_id = NULL WHERE {where}",
            {"ids": list(ids)},
        )
        return count

    def confirm(self, batch_id: str) -> None:
        """A batch is complete: profiles it said goodbye to leave the snapshot."""
        self.con.execute(
            f"DELETE FROM {self.tables.snapshot} WHERE gone AND batch_id = ?", [batch_id]
        )

    def forget_snapshot(self) -> int:
        """Forget this sync's snapshot and bindings (see :func:`reset_state`); returns how many
        profiles it held."""
        count = self.snapshot_size()
        self.con.execute(f"DELETE FROM {self.tables.snapshot}")
        self.con.execute("DELETE FROM ts_bindings WHERE sync = ?", [self.sync])
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

    # -- invariants ----------------------------------------------------------------------------

    def invariant_violations(self) -> list[str]:
        """What is wrong with this sync's snapshot, if anything (empty: it tells the truth).

        Each id at most once; no NULL or empty id; every row confirmed, tied to a pending
        batch, or owed (a row still carrying a batch Target did not confirm is a lie); a
        'gone' row only while its removal batch is pending; every row bound to a recorded
        binding.
        """
        snap = self.tables.snapshot
        checks = {
            "ids that appear more than once": f"SELECT count(*) - count(DISTINCT id) FROM {snap}",
            "rows with a NULL or empty id": (
                f"SELECT count(*) FROM {snap} WHERE id IS NULL OR id = ''"
            ),
            "rows claiming a batch Target did not confirm": (
                f"SELECT count(*) FROM {snap} AS s JOIN ts_batches AS b "
                "ON b.batch_id = s.batch_id AND b.sync = $sync "
                "WHERE b.state NOT IN ('pending', 'complete') AND s.fp IS NOT NULL"
            ),
            "gone rows whose removal batch is not pending": (
                f"SELECT count(*) FROM {snap} AS s LEFT JOIN ts_batches AS b "
                "ON b.batch_id = s.batch_id AND b.sync = $sync "
                "WHERE s.gone AND b.state IS DISTINCT FROM 'pending'"
            ),
            "rows bound to no recorded mapping and destination": (
                f"SELECT count(*) FROM {snap} WHERE binding IS NULL OR binding NOT IN "
                "(SELECT binding FROM ts_bindings WHERE sync = $sync)"
            ),
        }
        problems = []
        for what, sql in checks.items():
            params = {"sync": self.sync} if "$sync" in sql else None
            count = self._scalar(sql, params)
            if count:
                problems.append(f"{count} {what}")
        return problems

    # -- history -------------------------------------------------------------------------------

    def close_interrupted_runs(self) -> int:
        """Mark runs of this sync that never finished (killed, or the host went down) as
        ``interrupted``, with what they uploaded. Call it holding the run lock."""
        stale = self.con.execute(
            "SELECT run_id, summary FROM ts_runs WHERE sync = ? AND outcome = 'running'",
            [self.sync],
        ).fetchall()
        for run_id, summary in stale:
            report = self.interrupted_summary(run_id, summary)
            self.con.execute(
                "UPDATE ts_runs SET outcome = 'interrupted', exit_code = NULL, summary = ?, "
                "message = ? WHERE sync = ? AND run_id = ?",
                [json.dumps(report), report["message"], self.sync, run_id],
            )
        return len(stale)

    def interrupted_summary(self, run_id: str, summary: str | None) -> dict[str, Any]:
        """What a run that stopped without finishing did: its last recorded counts, and what
        its batches carried (computed from the batches it recorded)."""
        report: dict[str, Any] = json.loads(summary) if summary else {}
        row = self._one(
            "SELECT count(*), coalesce(sum(rows) FILTER (WHERE kind = 'upsert'), 0), "
            "coalesce(sum(rows) FILTER (WHERE kind = 'removed'), 0), coalesce(sum(bytes), 0), "
            "count(*) FILTER (WHERE state = 'pending') FROM ts_batches "
            "WHERE sync = ? AND run_id = ?",
            [self.sync, run_id],
        )
        assert row is not None
        batches, sent, removed_sent, size, pending = (int(v) for v in row)
        report.update(
            outcome="interrupted",
            batches=batches,
            sent=sent,
            removed_sent=removed_sent,
            bytes_sent=size,
            pending_batches=pending,
        )
        report["message"] = (
            f"sync '{self.sync}': the run stopped before it finished (killed, or the host went "
            f"down) after Target accepted {batches} batch(es) of {sent + removed_sent} "
            f"profile(s), which stay committed; {pending} of them still pending; the next run "
            "checks them and sends everything not confirmed"
        )
        return report

    def start_run(self, run_id: str, dry_run: bool) -> None:
        self.con.execute(
            "INSERT INTO ts_runs VALUES (?, ?, ?, NULL, ?, 'running', NULL, NULL, NULL)",
            [run_id, self.sync, now(), dry_run],
        )

    def record_progress(self, run_id: str, summary: dict[str, Any]) -> None:
        """Keep a running run's counts so far (a killed run then still shows them)."""
        self.con.execute(
            "UPDATE ts_runs SET summary = ? WHERE run_id = ? AND sync = ?",
            [json.dumps(summary), run_id, self.sync],
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


def duplicate_check_needed(
    con: duckdb.DuckDBPyConnection, stage: str, hash_sql: str | None = None
) -> bool:
    """Whether the exact duplicate check (``duplicates.sql``) may find something in
    ``stage``: never false when it would (``duplicate_precheck.sql``)."""
    sql = _sql("duplicate_precheck.sql").format(stage=stage, hash=hash_sql or "hash(id)")
    row = con.execute(sql).fetchone()
    return bool(row and row[0])


def reset_state(settings: StateConfig, sync: str) -> tuple[int, Path | None]:
    """Forget ``sync``'s snapshot so that the next run sends everything; the caller holds the
    run lock. Returns (profiles forgotten, where a damaged file was kept aside).

    The file is rewritten (see :func:`rewrite_state`), so the forgotten values do not linger
    on disk. A file DuckDB cannot read is moved aside as ``<file>.damaged-<time>`` and a new
    one started.
    """
    path = Path(settings.path)
    if not path.exists():
        return 0, None
    try:
        return rewrite_state(settings, sync, forget=True), None
    except StateError as exc:
        if "is damaged" not in str(exc):
            raise
    kept = path.with_name(f"{path.name}.damaged-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
    path.replace(kept)
    wal = path.with_name(path.name + ".wal")
    if wal.exists():
        wal.replace(kept.with_name(kept.name + ".wal"))
    return 0, kept


def rewrite_state(settings: StateConfig, sync: str, forget: bool) -> int:
    """Rewrite the state file: copy what it keeps into a fresh file that replaces it
    atomically (with ``forget``, without ``sync``'s snapshot; returns how many profiles that
    held). DuckDB keeps deleted rows' bytes in free blocks, so deleting alone would leave
    forgotten attribute values on disk. The caller holds the run lock.
    """
    path = Path(settings.path)
    fresh = path.with_name(path.name + ".rewrite")
    with contextlib.suppress(FileNotFoundError):
        fresh.unlink()
    try:
        with damage_guard(path, sync), StateStore.open(settings, sync, "write") as store:
            count = store.forget_snapshot() if forget else 0
            store.con.execute(f"ATTACH {sql_literal(str(fresh))} AS fresh")
            store.con.execute(f"COPY FROM DATABASE {STATE_DB} TO fresh")
            store.con.execute("DETACH fresh")
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            fresh.unlink()
        raise
    fresh.replace(path)
    return count


def _scratch_parent(settings: StateConfig) -> Path:
    """Where scratch copies go: beside the state file (same disk, same privacy)."""
    parent = Path(settings.path).parent
    return parent if parent.is_dir() else Path(tempfile.gettempdir())


def _copy_state(path: Path, target: Path, sync: str) -> None:
    """Copy a state file (and its WAL) for a scratch store; nothing when there is none."""
    if not path.exists():
        return
    try:
        shutil.copyfile(path, target)
        wal = path.with_name(path.name + ".wal")
        if wal.exists():
            shutil.copyfile(wal, target.with_name(target.name + ".wal"))
    except OSError as exc:
        raise StateError(
            f"sync '{sync}': cannot copy the state file {path} to read it ({exc.strerror})"
        ) from None


def _statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
