"""The local state store: a sync's snapshot, staging, diff and history in one DuckDB file.

Implements :class:`connector.state.store.StateStore`. The snapshot is the promise of what
Target holds: every row is confirmed by Target, tied to a batch Target has not finished, or
owed (fingerprint NULL: resent by the next run); each id appears at most once; and every row
carries the binding (mapping + destination) it was sent under, which is part of its
fingerprint. :meth:`DuckDBStore.invariant_violations` checks all three.

Tables of a state file: ``ts_meta``, ``ts_syncs``, ``ts_bindings``, ``ts_sending``,
``ts_runs``, ``ts_batches``, ``ts_failed``, ``ts_rejects`` (``sql/schema.sql``) and per sync
``snapshot__NAME`` (``sql/snapshot.sql``); a run's ``stage__NAME`` lives in memory. Every
statement is in ``sql/``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import duckdb

from ...errors import StateError
from ...mapping import SOURCE, StagingSQL, staging_input, staging_sql
from ...sqltext import load_queries, load_sql, quote_ident, sql_literal
from ...text import first_line
from ..store import (
    AcceptedBatch,
    Binding,
    DrawnProfile,
    FieldChanges,
    PendingBatch,
    PrepareReport,
    Sample,
    StageReport,
    Verdict,
)
from .files import (
    STATE_DB,
    WORK_DB,
    Mode,
    connect,
    copy_into_fresh_file,
    create_whole,
    damage_guard,
    keep_damaged,
    scratch_copy,
)
from .history import SQL, DuckDBHistory, now, run_query

if TYPE_CHECKING:
    from ..lock import RunLock

if TYPE_CHECKING:
    import pyarrow as pa

    from ...config import StateConfig, SyncConfig

log = logging.getLogger(__name__)

SCHEMA_VERSION = "2"
# How fingerprints are computed: DuckDB's hash() of canonical typed values (mapping/canonical).
# DuckDB's hash() may change between versions, and the scheme before typed values hashed the
# texts: a snapshot of another scheme is migrated (see DuckDBStore.prepare).
FINGERPRINT_SCHEME = f"typed-1/duckdb-hash/{duckdb.__version__}"
# The scheme before: hash(texts..., binding signature), which the stored cells can recompute.
TEXT_SCHEME = f"duckdb-hash/{duckdb.__version__}"
MAX_ROWS_KEPT = 10_000


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


class DuckDBStore:
    """One sync's view of a state file; open it with :meth:`open`, close it when done."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        path: Path,
        sync: str,
        mode: Mode,
        keep_values: bool = True,
    ) -> None:
        self.con = con
        self.path = path
        self.sync = sync
        self.mode = mode
        # False: the snapshot keeps no attribute values (state.keep_values).
        self.keep_values = keep_values
        self.tables = SyncTables.of(sync)
        self._history = DuckDBHistory(con, sync)
        # A read-only store over a state file of an older schema (the next sync upgrades it).
        self.outdated = False
        # Set by stage(): with an empty snapshot, commits only insert (no DELETE to probe).
        self._snapshot_was_empty = False
        # Set by prepare(): the snapshot's fingerprints are the texts' (TEXT_SCHEME), so the
        # next staging compares texts once and moves unchanged rows to typed fingerprints.
        self.migrating = False
        self._tally: list[tuple[str | None, str | None, int]] = []
        self._scratch: Path | None = None
        # Set by prepare(): stored values were forgotten, so the file must be rewritten.
        self.dropped_values = False
        # The run lock this store was opened under, whose sidecar shows a run's progress.
        self.lock: RunLock | None = None
        self._queries: dict[str, str] = {}
        for name in ("bindings.sql", "changes.sql", "settle.sql", "maintenance.sql"):
            self._queries.update(load_queries(SQL, name))

    @property
    def writable(self) -> bool:
        return self.mode != "read"

    @property
    def history(self) -> DuckDBHistory:
        return self._history

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def open(cls, settings: StateConfig, sync: str, mode: Mode = "write") -> DuckDBStore:
        """Open the state file for ``sync``.

        ``write`` creates it when needed and migrates it; ``read`` attaches it read-only (it
        must exist; see :attr:`outdated`); ``scratch`` works on a private copy (the caller
        holds the shared lock while it is taken; empty when there is no file yet) that is
        deleted on close, so nothing reaches the real file.
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
            store = cls(con, path, sync, mode, settings.keep_values)
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

    def close(self) -> None:
        """Close the file (and delete a scratch copy)."""
        try:
            self.con.close()
        finally:
            if self._scratch is not None:
                shutil.rmtree(self._scratch, ignore_errors=True)
                self._scratch = None

    def __enter__(self) -> DuckDBStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def publish_progress(self, **counts: Any) -> None:
        if self.lock is not None:
            self.lock.progress(**counts)

    def _run(self, name: str, **params: Any) -> duckdb.DuckDBPyConnection:
        """Run a named statement of ``sql/`` with this sync's tables and parameters."""
        sql = self.tables.render(self._queries[name], **params.pop("fill", {}))
        return run_query(self.con, sql, {"sync": self.sync, **params})

    def _count(self, name: str, **params: Any) -> int:
        rows = self._run(name, **params).fetchall()
        return int(rows[0][0]) if rows and rows[0][0] is not None else 0

    # -- schema ------------------------------------------------------------------------------

    def _has_table(self, table: str) -> bool:
        return self._count("has_table", catalog=STATE_DB, table=table) > 0

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
            for statement in _statements(load_sql(SQL, "migrate_1_to_2.sql")):
                self.con.execute(statement)
            self.con.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        log.info("state file %s upgraded to schema %s", self.path, SCHEMA_VERSION)

    # -- bindings, fingerprints and the sync's record ----------------------------------------

    def bindings(self) -> dict[str, Binding]:
        """Every binding this sync's rows were sent under, by signature."""
        if self.outdated:
            return {}
        return {
            r[0]: Binding(r[0], json.loads(r[1]), json.loads(r[2]) if r[2] else None, int(r[3]))
            for r in self._run("bindings").fetchall()
        }

    def prepare(
        self,
        binding: str,
        mapping: dict[str, Any],
        destination: dict[str, Any],
        mapping_signature: str,
        config_path: str | None,
    ) -> PrepareReport:
        """Bind the snapshot to ``binding`` before staging (see the protocol). A writable
        store records the binding and the config file, binds rows of a schema-1 file to
        this destination (when the mapping is the same: upgrading resends nothing), makes
        the profiles of an upload whose answer was never recorded owed, and drops stored
        values when they are not kept.

        Fingerprints of another scheme are migrated without a resend: text fingerprints of
        this DuckDB version are compared as they are; those of another version (text or
        typed) are first recomputed as text fingerprints from the stored cells (each row
        with its own binding, so a row never passes for one sent under another mapping).
        The next staging then compares every row's texts once, and unchanged rows take
        their typed fingerprints (:meth:`stage`)."""
        scheme, previous_config = self._sync_record()
        unrefreshable = self._unrefreshable(scheme)
        unconfirmed = self._unconfirmed()
        adopted = dropped = 0
        if self.writable:
            if scheme is None:
                self._run("forget_sync")
                self._run("new_sync", scheme=FINGERPRINT_SCHEME, config_path=config_path, now=now())
                scheme = FINGERPRINT_SCHEME
            elif self.mode == "write":
                self._run("sync_ran_from", config_path=config_path, now=now())
            self._register(binding, mapping, destination)
            if unconfirmed:
                self._owe_unconfirmed(binding)
            adopted = self._adopt_legacy(mapping_signature, binding)
            if adopted and scheme == FINGERPRINT_SCHEME:
                scheme = TEXT_SCHEME  # the adopted rows' fingerprints are the texts' again
                self._run("scheme_is", scheme=scheme)
            if scheme != FINGERPRINT_SCHEME:
                if not self._count("snapshot_rows"):
                    self._run("scheme_is", scheme=FINGERPRINT_SCHEME)
                else:
                    if scheme != TEXT_SCHEME:
                        self._rehash(lambda known: known.signature)
                        self._run("scheme_is", scheme=TEXT_SCHEME)
                    self.migrating = True
            if not self.keep_values and self.mode == "write":
                dropped = self._count("values_kept")
                if dropped:
                    self._run("drop_values")
                    self.dropped_values = True
        return PrepareReport(
            previous_config=previous_config,
            snapshot_size=self._count("snapshot_size"),
            census={b: int(n) for b, n in self._run("census").fetchall()},
            bindings=self.bindings(),
            unrefreshable=unrefreshable,
            adopted=adopted,
            values_dropped=dropped,
            migrating=self.migrating,
            unconfirmed=unconfirmed,
        )

    def needs_rewrite(self) -> bool:
        """Whether reading this (read-only) store needs changes it cannot make: an older
        schema, rows of a schema-1 file, fingerprints of another DuckDB version, or profiles
        of an unrecorded upload to make owed."""
        if self.outdated or self._unconfirmed():
            return True
        scheme, _ = self._sync_record()
        legacy = any(b.destination is None for b in self.bindings().values())
        return legacy or (
            scheme is not None and scheme != FINGERPRINT_SCHEME and self._count("snapshot_rows") > 0
        )

    def _sync_record(self) -> tuple[str | None, str | None]:
        if self.outdated:
            return None, None
        rows = self._run("sync_record").fetchall()
        return (rows[0][0], rows[0][1]) if rows else (None, None)

    def _unconfirmed(self) -> int:
        """Profiles :meth:`sending` recorded whose batch was never committed."""
        if self.outdated or not self._has_table("ts_sending"):
            return 0  # (a file of an earlier version, read-only: nothing was recorded)
        return self._count("unconfirmed_count")

    def _owe_unconfirmed(self, binding: str) -> None:
        self.con.execute("BEGIN TRANSACTION")
        try:
            self._run("owe_unconfirmed")
            self._run("owe_unconfirmed_new", binding=binding)
            self._run("forget_sending")
            self.con.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _unrefreshable(self, scheme: str | None) -> int:
        if scheme in (None, FINGERPRINT_SCHEME, TEXT_SCHEME) or self.outdated:
            return 0  # text fingerprints of this DuckDB version migrate without values
        return self._count("without_values")

    def _register(self, binding: str, mapping: dict[str, Any], destination: dict[str, Any]) -> None:
        if binding in self.bindings():
            return
        self._run(
            "register_binding",
            binding=binding,
            mapping=json.dumps(mapping),
            destination=json.dumps(destination),
            attributes=len(mapping.get("attributes", {})),
            now=now(),
        )

    def _adopt_legacy(self, mapping_signature: str, current: str) -> int:
        """Bind rows from a schema-1 state file (no destination recorded) to ``current``, when
        they were sent under the same mapping; returns how many."""
        legacy = self.bindings().get(mapping_signature)
        if legacy is None or legacy.destination is not None:
            return 0
        count = self._count("rows_of_binding", binding=mapping_signature)
        self._rehash(lambda known: current, only=mapping_signature, relabel=current)
        self._run("delete_binding", binding=mapping_signature)
        log.info("%d profiles of a state file from an earlier version bound to %s", count, current)
        return count

    def _rehash(
        self,
        signature_of: Callable[[Binding], str],
        only: str | None = None,
        relabel: str | None = None,
    ) -> None:
        for known in self.bindings().values():
            if only is not None and known.signature != only:
                continue
            texts = ", ".join(
                f"url_decode(split_part(cells, ',', {position}))"
                for position in range(1, known.attributes + 1)
            )
            label = f", binding = {sql_literal(relabel)}" if relabel else ""
            self._run(
                "rehash",
                fill={"texts": texts, "relabel": label},
                signature=signature_of(known),
                binding=known.signature,
            )

    def prune_bindings(self, keep: str) -> None:
        """Forget bindings no snapshot row uses any more (``keep`` always stays)."""
        self._run("prune_bindings", keep=keep)

    # -- stage and diff ----------------------------------------------------------------------

    def stage_and_diff(
        self, config: SyncConfig, progress: Callable[[int], None] | None = None
    ) -> StageReport:
        """Read the source once, checking and fingerprinting every row, and diff it against
        the snapshot in the same pass (see ``stage_diff.sql``)."""
        from ...sources import open_reader

        with open_reader(config) as reader:
            sql = staging_sql(config, reader.schema)
            stream = staging_input(config, _counted(reader, progress))
            self.stage(stream, sql, len(config.attributes))
        return self.report()

    def stage(
        self, source: pa.RecordBatchReader, staged: StagingSQL, value_count: int
    ) -> StageReport:
        """Ingest a staging stream with the staging SELECT ``staged`` (``mapping.staging``),
        diffing it against the snapshot as it goes, then flag duplicate ids; while migrating
        the fingerprint scheme, move the unchanged rows to their typed fingerprints.

        ``value_count`` is the mapping's number of attributes (the staged cells hold them).
        An error the stream raises while DuckDB reads it (a query failing mid-result, a
        value that does not fit its column) reaches DuckDB's caller as a DuckDB error with
        a traceback in its text; the stream's own exception is raised instead.
        """
        import pyarrow as pa

        del value_count  # the staging SELECT builds the cells itself
        self._snapshot_was_empty = self._count("snapshot_rows") == 0
        if self._snapshot_was_empty:
            sql = self.tables.render(load_sql(SQL, "stage_first.sql"), staged=staged.render())
        else:
            previous = f"(SELECT id, fp FROM {self.tables.snapshot} WHERE NOT gone)"
            sql = self.tables.render(
                load_sql(SQL, "stage_diff.sql"),
                staged=staged.render(previous, migrate=self.migrating),
                keep_fp="true" if self.migrating else "false",
            )
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
            self.con.execute(self.tables.render(load_sql(SQL, "duplicates.sql")))
        if self.migrating:
            self._finish_migration()
        self._run("changes_view")
        self._tally = [(k, r, int(n)) for k, r, n in self._run("tally").fetchall()]
        return self.report()

    def _finish_migration(self) -> None:
        """Give the snapshot rows found unchanged (same texts, same binding) their typed
        fingerprints and record the typed scheme, in one transaction; the other rows keep
        their text fingerprints, which no typed one matches: they are sent as changes."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            migrated = self._count("migrated_count")
            self._run("adopt_typed_fingerprints")
            self._run("scheme_is", scheme=FINGERPRINT_SCHEME)
            self.con.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        self.migrating = False
        log.info("%d fingerprints moved to the scheme %s", migrated, FINGERPRINT_SCHEME)

    def report(self) -> StageReport:
        """The counts of the last staging (from one grouping of the stage table)."""

        def count(kind: str) -> int:
            return sum(n for k, reject, n in self._tally if k == kind and reject is None)

        read = sum(n for kind, _, n in self._tally if kind != "removed")
        reasons = sorted({reject for _, reject, _ in self._tally if reject is not None})
        rejected = {r: sum(n for _, reject, n in self._tally if reject == r) for r in reasons}
        valid = sum(n for kind, reject, n in self._tally if reject is None and kind != "removed")
        new, changed, retried = count("new"), count("changed"), count("retry")
        return StageReport(
            rows=read,
            rejected=rejected,
            new=new,
            changed=changed,
            retried=retried,
            removed=count("removed"),
            unchanged=valid - new - changed - retried,
            first_run=self._snapshot_was_empty,
        )

    def record_rejects(self, run_id: str) -> None:
        self._run("record_rejects", run_id=run_id, limit=MAX_ROWS_KEPT)

    def changes(
        self, kind: Literal["upsert", "removed"], batch_rows: int, exit_cells: str = ""
    ) -> pa.RecordBatchReader:
        """The profiles to send as (id, cells, fp, line) chunks, ``line`` ending in ``\\n``;
        read on a cursor of its own, so batches can be committed while it is read."""
        name = "upserts" if kind == "upsert" else "removals"
        sql = self.tables.render(self._queries[name], exit_cells=sql_literal(exit_cells))
        return self.con.cursor().sql(sql).to_arrow_reader(batch_rows)

    def samples(self, limit: int) -> list[Sample]:
        return [
            Sample(str(r[0]), r[1], r[2], r[3], r[4])
            for r in self._run("samples", limit=limit).fetchall()
        ]

    def field_changes(
        self,
        names: Sequence[str],
        nullable: Sequence[bool],
        comparable: Sequence[str] | None = None,
    ) -> FieldChanges:
        """Per attribute: how many changed profiles changed it, and how many went from a
        value to an empty cell where ``nullable``. Only profiles last sent under a binding in
        ``comparable`` (the same attributes in the same order; None: every one) compare."""
        if not names or comparable == [] or not self.keep_values:
            return FieldChanges()
        only = (
            f" WHERE binding IN ({', '.join(sql_literal(b) for b in comparable)})"
            if comparable is not None
            else ""
        )
        rows = self._run("field_changes", fill={"only": only}).fetchall()
        # (a profile whose values are not kept has no old cells: no position)
        rows = [row for row in rows if row[0] is not None and row[0] <= len(names)]
        return FieldChanges(
            changed={names[i - 1]: int(n) for i, n, _ in rows if n},
            stale={names[i - 1]: int(n) for i, _, n in rows if n and nullable[i - 1]},
        )

    def staged_rejects(self, limit: int) -> list[tuple[str | None, str, str | None]]:
        return [(r[0], r[1], r[2]) for r in self._run("staged_rejects", limit=limit).fetchall()]

    def drop_work_tables(self) -> None:
        """Drop the stage table and the changes view of the current run."""
        self._run("drop_changes")
        self._run("drop_stage")

    # -- delivery ----------------------------------------------------------------------------

    def sending(self, rows: pa.Table) -> None:
        """Record the ids of a batch before it is uploaded (see the protocol)."""
        sql = self.tables.render(self._queries["record_sending"], batch="sending_batch")
        self.con.register("sending_batch", rows)
        try:
            run_query(self.con, sql, {"sync": self.sync})
        except duckdb.Error as exc:
            raise StateError(
                f"sync '{self.sync}': writing the state file {self.path} failed "
                f"({first_line(exc)}) before a batch was sent; the snapshot keeps what was "
                "committed before; rerunning is safe"
            ) from exc
        finally:
            with contextlib.suppress(duckdb.Error):
                self.con.unregister("sending_batch")

    def commit(self, batch: AcceptedBatch) -> None:
        """Record an accepted batch as pending and advance the snapshot for its rows, and
        forget the ids :meth:`sending` recorded, in one transaction: a run killed at any
        instant leaves all or nothing."""
        if batch.kind == "upsert":
            script = "insert_upserts.sql" if self._snapshot_was_empty else "commit_upserts.sql"
        else:
            script = "commit_removed.sql"
        cells = "cells" if self.keep_values else "CAST(NULL AS VARCHAR)"
        sql = self.tables.render(load_sql(SQL, script), batch="accepted_batch", cells=cells)
        params = {
            "run_id": batch.run_id,
            "seq": batch.seq,
            "kind": batch.kind,
            "batch_id": batch.batch_id,
            "status_url": batch.status_url,
            "rows": batch.rows.num_rows,
            "bytes": batch.size,
            "binding": batch.binding,
            "now": now(),
        }
        self.con.register("accepted_batch", batch.rows)
        try:
            self.con.execute("BEGIN TRANSACTION")
            try:
                self._run("record_batch", **params)
                for statement in _statements(sql):
                    run_query(self.con, statement, params)
                self._run("forget_sending")
                self.con.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        except duckdb.Error as exc:
            raise StateError(
                f"sync '{self.sync}': writing the state file {self.path} failed "
                f"({first_line(exc)}); the snapshot keeps what was committed before; "
                "rerunning is safe"
            ) from exc
        finally:
            with contextlib.suppress(duckdb.Error):
                self.con.unregister("accepted_batch")

    def _rollback(self) -> None:
        """Undo an open transaction; never hide the error that made it necessary."""
        try:
            self.con.execute("ROLLBACK")
        except duckdb.Error as exc:
            log.debug("rollback failed after an earlier error: %s", first_line(exc))

    def forget_removed(self) -> int:
        count = self._count("forget_removed_count")
        self._run("forget_removed")
        return count

    def pending_batches(self) -> list[PendingBatch]:
        return [PendingBatch(*row) for row in self._run("pending_batches").fetchall()]

    def settle(self, batch: PendingBatch, run_id: str, verdict: Verdict) -> int:
        """Apply a batch status: revert the rows it names (or all of them) so the next run
        resends them, list them as failed, confirm a complete batch, and record what became
        of it. Only rows still carrying the batch are touched: a profile sent again since has
        a newer delivery. One transaction per step; a second call changes nothing."""
        reverted = 0
        if verdict.state == "reverted":
            reverted = self._revert(batch.batch_id, run_id, verdict.reason, None)
        elif verdict.failed_ids:
            reverted = self._revert(batch.batch_id, run_id, verdict.reason, verdict.failed_ids)
        if verdict.state == "complete":
            self._run("confirm", batch_id=batch.batch_id)
        resolved = None if verdict.state == "pending" else now()
        self._run(
            "resolve_batch",
            state=verdict.state,
            detail=verdict.detail,
            resolved_at=resolved,
            batch_id=batch.batch_id,
        )
        return reverted

    def _revert(self, batch_id: str, run_id: str, reason: str, ids: Sequence[str] | None) -> int:
        where = "batch_id = $batch_id" + (
            " AND id IN (SELECT unnest($ids))" if ids is not None else ""
        )
        params: dict[str, Any] = {
            "fill": {"where": where},
            "batch_id": batch_id,
            "run_id": run_id,
            "reason": reason,
            "limit": MAX_ROWS_KEPT,
        }
        if ids is not None:
            params["ids"] = list(ids)
        self.con.execute("BEGIN TRANSACTION")
        try:
            count = self._count("revert_count", **{**params, "fill": {"where": where}})
            for name in ("revert_list", "revert"):
                self._run(name, **{**params, "fill": {"where": where}})
            self.con.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        return count

    # -- maintenance -------------------------------------------------------------------------

    def snapshot_size(self) -> int:
        return self._count("snapshot_size")

    def forget_snapshot(self) -> int:
        """Forget this sync's snapshot and bindings (see :func:`reset_state`); returns how
        many profiles it held."""
        count = self._count("snapshot_size")
        for name in ("forget_rows", "forget_bindings", "forget_sync", "forget_sending"):
            self._run(name)
        self._run("abandon_pending", now=now())
        return count

    def mark_owed(self, ids: Sequence[str]) -> int:
        """Make the next run resend these profiles (``verify --resend-mismatched``)."""
        count = self._count("owed_count", ids=list(ids))
        self._run("mark_owed", ids=list(ids))
        return count

    def draw(self, binding: str, limit: int, seed: int) -> list[DrawnProfile]:
        """A random sample of the profiles confirmed or pending under ``binding`` (``verify``)."""
        rows = self._run("draw", binding=binding, limit=limit, seed=seed).fetchall()
        return [DrawnProfile(r[0], r[1], r[2], bool(r[3])) for r in rows]

    def invariant_violations(self) -> list[str]:
        """What is wrong with this sync's snapshot, if anything (empty: it tells the truth):
        each id at most once; no NULL or empty id; every row confirmed, tied to a pending
        batch, or owed; a 'gone' row only while its removal batch is pending; every row bound
        to a recorded binding."""
        problems = []
        for name in self._queries:
            if name.startswith("invariant: "):
                count = self._count(name)
                if count:
                    problems.append(f"{count} {name.removeprefix('invariant: ')}")
        return problems


def _initialise(con: duckdb.DuckDBPyConnection) -> None:
    """The bookkeeping tables and schema version of a new state file, in one transaction."""
    con.execute("BEGIN TRANSACTION")
    con.execute(load_sql(SQL, "schema.sql"))
    version = load_queries(SQL, "maintenance.sql")["set_schema_version"]
    run_query(con, version, {"version": SCHEMA_VERSION})
    con.execute("COMMIT")


def duplicate_check_needed(
    con: duckdb.DuckDBPyConnection, stage: str, hash_sql: str | None = None
) -> bool:
    """Whether the exact duplicate check (``duplicates.sql``) may find something in
    ``stage``: never false when it would (``duplicate_precheck.sql``)."""
    sql = load_sql(SQL, "duplicate_precheck.sql").format(stage=stage, hash=hash_sql or "hash(id)")
    rows = con.execute(sql).fetchall()
    return bool(rows and rows[0][0])


def reset_state(settings: StateConfig, sync: str) -> tuple[int, Path | None]:
    """Forget ``sync``'s snapshot so that the next run sends everything; the caller holds the
    run lock. Returns (profiles forgotten, where a damaged file was kept aside).

    The file is rewritten (:func:`rewrite_state`), so the forgotten values do not linger on
    disk. A file DuckDB cannot read is moved aside and a new one started.
    """
    path = Path(settings.path)
    if not path.exists():
        return 0, None
    try:
        return rewrite_state(settings, sync, forget=True), None
    except StateError as exc:
        if "is damaged" not in str(exc):
            raise
    return 0, keep_damaged(path)


def rewrite_state(settings: StateConfig, sync: str, forget: bool) -> int:
    """Rewrite the state file: copy what it keeps into a fresh file that replaces it
    atomically (with ``forget``, without ``sync``'s snapshot; returns how many profiles that
    held). DuckDB keeps deleted rows' bytes in free blocks, so deleting alone would leave
    forgotten attribute values on disk. The caller holds the run lock."""
    path = Path(settings.path)
    with damage_guard(path, sync), DuckDBStore.open(settings, sync, "write") as store:
        count = store.forget_snapshot() if forget else 0
        fresh = copy_into_fresh_file(store.con, path)
    fresh.replace(path)
    return count


def _counted(
    reader: pa.RecordBatchReader, progress: Callable[[int], None] | None
) -> pa.RecordBatchReader:
    """The same stream, telling ``progress`` how many rows went by (for progress displays)."""
    if progress is None:
        return reader
    import pyarrow as pa

    def batches() -> Iterator[pa.RecordBatch]:
        rows = 0
        for batch in reader:
            rows += batch.num_rows
            progress(rows)
            yield batch

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def _statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
