"""Staging and the diff: the source read once into the run's local stage
(:mod:`connector.state.stage`), every row checked and fingerprinted and compared with the
snapshot in the same pass; what the run will send, read back from the stage."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal

from ...mapping import StagingSQL, staging_input, staging_sql
from ..stage import counted
from ..store import FieldChanges, PrepareReport, Sample, StageReport
from .base import MAX_ROWS_KEPT, StoreBase
from .bindings import FINGERPRINT_SCHEME

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import pyarrow as pa

    from ...config import SyncConfig


class Staging(StoreBase):
    """Stages a run's rows and reports the diff."""

    def stage_and_diff(
        self,
        config: SyncConfig,
        prepared: PrepareReport,
        progress: Callable[[int], None] | None = None,
    ) -> StageReport:
        """Read the source once, checking and fingerprinting every row, and diff it against
        the snapshot in the same pass (see ``connector/state/sql/stage_diff.sql``)."""
        from ...sources import open_reader

        with open_reader(config) as reader:
            sql = staging_sql(config, reader.schema)
            stream = staging_input(config, counted(reader, progress))
            return self.stage(stream, sql, migrating=prepared.migrating)

    def stage(
        self, source: pa.RecordBatchReader, staged: StagingSQL, migrating: bool = False
    ) -> StageReport:
        """Ingest a staging stream with the staging SELECT ``staged`` (``mapping.staging``),
        diffing it against the snapshot as it goes, then flag duplicate ids; while
        ``migrating`` the fingerprint scheme (:attr:`PrepareReport.migrating`), move the
        unchanged rows to their typed fingerprints."""
        first_run = self._count("snapshot_rows") == 0
        if first_run:
            self.local.load_first(source, staged)
        else:
            self.local.load_diffed(source, staged, self.tables.snapshot, migrating)
        if migrating and not first_run:
            self._finish_migration()
        return self.local.finish().report(first_run)

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
        log.info("%d fingerprints moved to the scheme %s", migrated, FINGERPRINT_SCHEME)

    def record_rejects(self, run_id: str) -> None:
        self._run("record_rejects", run_id=run_id, limit=MAX_ROWS_KEPT)

    def changes(
        self, kind: Literal["upsert", "removed"], batch_rows: int, exit_cells: str = ""
    ) -> pa.RecordBatchReader:
        return self.local.changes(kind, batch_rows, exit_cells)

    def samples(self, limit: int) -> list[Sample]:
        return self.local.samples(limit)

    def field_changes(
        self,
        names: Sequence[str],
        nullable: Sequence[bool],
        comparable: Sequence[str] | None = None,
    ) -> FieldChanges:
        if not self.keep_values:
            return FieldChanges()
        return self.local.field_changes(names, nullable, comparable)

    def staged_rejects(self, limit: int) -> list[tuple[str | None, str, str | None]]:
        return self.local.staged_rejects(limit)

    def drop_work_tables(self) -> None:
        """Drop the run's stage (its table, view and whatever it carried)."""
        self.local.drop()
