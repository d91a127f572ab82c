"""Staging and the diff: the source read once, every row checked and fingerprinted and
compared with the snapshot in the same pass; what the run will send, read back from it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Literal

import duckdb

from ...mapping import SOURCE, StagingSQL, staging_input, staging_sql
from ...sqltext import load_sql, sql_literal
from ..store import FieldChanges, Sample, StageReport
from .base import MAX_ROWS_KEPT, StoreBase
from .bindings import FINGERPRINT_SCHEME
from .history import SQL

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import pyarrow as pa

    from ...config import SyncConfig


class Staging(StoreBase):
    """Stages a run's rows and reports the diff."""

    def stage_and_diff(
        self, config: SyncConfig, progress: Callable[[int], None] | None = None
    ) -> StageReport:
        """Read the source once, checking and fingerprinting every row, and diff it against
        the snapshot in the same pass (see ``stage_diff.sql``)."""
        from ...sources import open_reader

        with open_reader(config) as reader:
            sql = staging_sql(config, reader.schema)
            stream = staging_input(config, _counted(reader, progress))
            return self.stage(stream, sql)

    def stage(self, source: pa.RecordBatchReader, staged: StagingSQL) -> StageReport:
        """Ingest a staging stream with the staging SELECT ``staged`` (``mapping.staging``),
        diffing it against the snapshot as it goes, then flag duplicate ids; while migrating
        the fingerprint scheme, move the unchanged rows to their typed fingerprints.

        An error the stream raises while DuckDB reads it (a query failing mid-result, a
        value that does not fit its column) reaches DuckDB's caller as a DuckDB error with
        a traceback in its text; the stream's own exception is raised instead.
        """
        import pyarrow as pa

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


def duplicate_check_needed(
    con: duckdb.DuckDBPyConnection, stage: str, hash_sql: str | None = None
) -> bool:
    """Whether the exact duplicate check (``duplicates.sql``) may find something in
    ``stage``: never false when it would (``duplicate_precheck.sql``)."""
    sql = load_sql(SQL, "duplicate_precheck.sql").format(stage=stage, hash=hash_sql or "hash(id)")
    rows = con.execute(sql).fetchall()
    return bool(rows and rows[0][0])


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
