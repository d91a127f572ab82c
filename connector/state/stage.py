"""A run's local stage: the rows of one run in DuckDB, with their texts, cells and checks built
by the staging SQL (``connector/mapping``), and everything read back from them: the tally, the
change stream delivery cuts into batches, and what ``plan`` shows (samples, field changes,
rejects).

Every store stages here, so every store sends the same bytes for the same rows. How the stage
is filled is the store's choice:

* :meth:`LocalStage.load_first` and :meth:`LocalStage.load_diffed`: the whole source stream,
  diffed against a snapshot held in the same DuckDB connection (the local store);
* :meth:`LocalStage.load_given`: only the rows that need texts, each carrying the kind, the
  fingerprint and the old values a store found by diffing elsewhere (a warehouse store), and
  :meth:`LocalStage.add_removed` for the profiles that left.

Then :meth:`LocalStage.finish` makes the change view and returns the :class:`Tally`; the rest
reads. Nothing here knows where the snapshot lives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import duckdb

from ..mapping import SOURCE, StagingSQL
from ..sqltext import load_queries, load_sql, quote_ident, sql_literal
from .store import FieldChanges, Sample, StageReport

if TYPE_CHECKING:
    import pyarrow as pa

SQL = Path(__file__).parent / "sql"
WORK_DB = "memory"
# The columns a store that diffs elsewhere hands in with each row (see sql/stage_given.sql).
CARRIED = ("ts_kind", "ts_fp", "ts_old_cells", "ts_old_binding")
REMOVED = "removed_ids"


@dataclass(frozen=True)
class Tally:
    """The stage's rows counted by (kind, reject): every count of a run comes from it."""

    counts: tuple[tuple[str | None, str | None, int], ...]

    def report(self, first_run: bool) -> StageReport:
        """The staging report these counts make (``unchanged``: valid rows neither new,
        changed nor owed)."""
        rows = self.counts

        def count(kind: str) -> int:
            return sum(n for k, reject, n in rows if k == kind and reject is None)

        read = sum(n for kind, _, n in rows if kind != "removed")
        reasons = sorted({reject for _, reject, _ in rows if reject is not None})
        rejected = {r: sum(n for _, reject, n in rows if reject == r) for r in reasons}
        valid = sum(n for kind, reject, n in rows if reject is None and kind != "removed")
        new, changed, retried = count("new"), count("changed"), count("retry")
        return StageReport(
            rows=read,
            rejected=rejected,
            new=new,
            changed=changed,
            retried=retried,
            removed=count("removed"),
            unchanged=valid - new - changed - retried,
            first_run=first_run,
        )


class LocalStage:
    """One sync's stage in a DuckDB connection (its in-memory catalog, which spills to the
    connection's ``temp_directory``).

    ``previous`` is the table holding what the snapshot had for the staged profiles (id,
    cells, binding), which ``plan``'s samples and field changes compare with: the snapshot
    itself when it lives in the same connection; rows staged by :meth:`load_given` bring
    their own.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, sync: str, previous: str) -> None:
        self.con = con
        self.sync = sync
        self.table = f"{WORK_DB}.{quote_ident(f'stage__{sync}')}"
        self.changes_view = f"{WORK_DB}.{quote_ident(f'changes__{sync}')}"
        self._carried = f"{WORK_DB}.{quote_ident(f'carried__{sync}')}"
        self.previous = previous
        self._given = False  # filled by load_given: the old values came with the rows
        self._queries = load_queries(SQL, "changes.sql")

    def _render(self, sql: str, **extra: str) -> str:
        return sql.format(
            stage=self.table,
            changes=self.changes_view,
            previous=self.previous,
            carried=self._carried,
            **extra,
        )

    def _run(self, name: str, params: dict[str, Any] | None = None, **fill: str) -> Any:
        return self.con.execute(self._render(self._queries[name], **fill), params)

    # -- filling the stage -----------------------------------------------------------------

    def load_first(self, source: pa.RecordBatchReader, staged: StagingSQL) -> None:
        """Stage the whole source of a first run (an empty snapshot): every valid row is new."""
        sql = self._render(load_sql(SQL, "stage_first.sql"), staged=staged.render())
        self._ingest(source, sql)

    def load_diffed(
        self, source: pa.RecordBatchReader, staged: StagingSQL, snapshot: str, migrating: bool
    ) -> None:
        """Stage the whole source, diffed in the same pass against ``snapshot`` (a relation of
        this connection with ``id, fp, gone``): see ``sql/stage_diff.sql``. ``migrating``:
        the snapshot's fingerprints are of the scheme before typed ones; unchanged rows keep
        their staged fingerprint, for the store to adopt."""
        previous = f"(SELECT id, fp FROM {snapshot} WHERE NOT gone)"
        sql = self._render(
            load_sql(SQL, "stage_diff.sql"),
            staged=staged.render(previous, migrate=migrating),
            keep_fp="true" if migrating else "false",
        )
        self._ingest(source, sql)

    def load_given(self, source: pa.RecordBatchReader, staged: StagingSQL) -> None:
        """Stage rows whose diff a store made elsewhere: ``source`` is the staging input
        (:func:`connector.mapping.staging_input` with ``carried=CARRIED``) of just the rows
        that need texts; see ``sql/stage_given.sql``."""
        sql = self._render(load_sql(SQL, "stage_given.sql"), staged=staged.render(carried=CARRIED))
        self._ingest(source, sql)
        self._given = True

    def add_removed(self, removed: pa.RecordBatchReader) -> None:
        """Add profiles that left the result, as a store that diffs elsewhere found them
        (``removed``: ``id``, and the ``cells`` and ``binding`` the snapshot held), after
        :meth:`load_given`: to send their exit attributes, or to show them in ``plan``."""
        self.con.register(REMOVED, removed)
        try:
            self._run("add_removed", removed=REMOVED)
        finally:
            self.con.unregister(REMOVED)

    def _ingest(self, source: pa.RecordBatchReader, sql: str) -> None:
        """Run a stage-creating statement over ``source``, then flag duplicate ids.

        An error the stream raises while DuckDB reads it (a query failing mid-result, a
        value that does not fit its column) reaches DuckDB's caller as a DuckDB error with
        a traceback in its text; the stream's own exception is raised instead.
        """
        import pyarrow as pa

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

    def finish(self) -> Tally:
        """Reject every copy of a duplicated id, make the view of the rows to send, and count
        the stage by (kind, reject)."""
        if duplicate_check_needed(self.con, self.table):
            self.con.execute(self._render(load_sql(SQL, "duplicates.sql")))
        if self._given:
            self._run("carried_previous")
            self.previous = self._carried
        self._run("changes_view")
        return Tally(tuple((k, r, int(n)) for k, r, n in self._run("tally").fetchall()))

    # -- reading it back -------------------------------------------------------------------

    def changes(
        self, kind: Literal["upsert", "removed"], batch_rows: int, exit_cells: str = ""
    ) -> pa.RecordBatchReader:
        """The profiles to send as (id, cells, fp, line) chunks, ``line`` ending in ``\\n``;
        read on a cursor of its own, so batches can be committed while it is read."""
        name = "upserts" if kind == "upsert" else "removals"
        sql = self._render(self._queries[name], exit_cells=sql_literal(exit_cells))
        return self.con.cursor().sql(sql).to_arrow_reader(batch_rows)

    def samples(self, limit: int) -> list[Sample]:
        """Up to ``limit`` profiles to send, with what the snapshot held for them."""
        rows = self._run("samples", {"limit": limit}).fetchall()
        return [Sample(str(r[0]), r[1], r[2], r[3], r[4]) for r in rows]

    def field_changes(
        self,
        names: Sequence[str],
        nullable: Sequence[bool],
        comparable: Sequence[str] | None = None,
    ) -> FieldChanges:
        """Per attribute: how many changed profiles changed it, and how many went from a
        value to an empty cell where ``nullable``. Only profiles last sent under a binding in
        ``comparable`` (the same attributes in the same order; None: every one) compare."""
        if not names or comparable == []:
            return FieldChanges()
        only = (
            f" WHERE binding IN ({', '.join(sql_literal(b) for b in comparable)})"
            if comparable is not None
            else ""
        )
        rows = self._run("field_changes", only=only).fetchall()
        # (a profile whose values are not kept has no old cells: no position)
        rows = [row for row in rows if row[0] is not None and row[0] <= len(names)]
        return FieldChanges(
            changed={names[i - 1]: int(n) for i, n, _ in rows if n},
            stale={names[i - 1]: int(n) for i, _, n in rows if n and nullable[i - 1]},
        )

    def staged_rejects(self, limit: int) -> list[tuple[str | None, str, str | None]]:
        """Up to ``limit`` rejected rows: (id, reason, detail), by reason then id."""
        rows = self._run("staged_rejects", {"limit": limit}).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    def drop(self) -> None:
        """Drop the stage, its view and what it carried (the end of a run)."""
        for name in ("drop_changes", "drop_stage", "drop_carried"):
            self._run(name)


def duplicate_check_needed(
    con: duckdb.DuckDBPyConnection, stage: str, hash_sql: str | None = None
) -> bool:
    """Whether the exact duplicate check (``duplicates.sql``) may find something in
    ``stage``: never false when it would (``duplicate_precheck.sql``)."""
    sql = load_sql(SQL, "duplicate_precheck.sql").format(stage=stage, hash=hash_sql or "hash(id)")
    rows = con.execute(sql).fetchall()
    return bool(rows and rows[0][0])


def counted(
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
