"""Delivery bookkeeping: batches about to go, accepted batches committed to the snapshot,
their statuses settled, and the snapshot's own checks (the promise of what Target holds)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import duckdb

from ...errors import StateError
from ...sqltext import load_sql
from ...text import first_line
from ..store import AcceptedBatch, DrawnProfile, PendingBatch, Verdict
from .base import MAX_ROWS_KEPT, StoreBase, statements
from .history import SQL, now, run_query

if TYPE_CHECKING:
    import pyarrow as pa


class Bookkeeping(StoreBase):
    """Moves the snapshot with what Target accepted, failed or confirmed."""

    def sending(self, rows: pa.Table) -> None:
        """Record the ids of a batch before it is uploaded (see the protocol)."""
        sql = self.tables.render(self._queries["record_sending"], batch="sending_batch")
        with self._writing("sending_batch", rows, " before a batch was sent"):
            run_query(self.con, sql, {"sync": self.sync})

    def commit(self, batch: AcceptedBatch) -> None:
        """Record an accepted batch as pending and advance the snapshot for its rows, and
        forget the ids :meth:`sending` recorded, in one transaction: a run killed at any
        instant leaves all or nothing."""
        if batch.kind == "upsert":
            script = "insert_upserts.sql" if batch.fresh else "commit_upserts.sql"
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
        with self._writing("accepted_batch", batch.rows):
            self.con.execute("BEGIN TRANSACTION")
            try:
                self._run("record_batch", **params)
                for statement in statements(sql):
                    run_query(self.con, statement, params)
                self._run("forget_sending")
                self.con.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise

    @contextlib.contextmanager
    def _writing(self, name: str, rows: pa.Table, when: str = "") -> Iterator[None]:
        """``rows`` registered as ``name`` while the block writes; a failed write is one
        StateError saying that the snapshot keeps what was committed before."""
        self.con.register(name, rows)
        try:
            yield
        except duckdb.Error as exc:
            raise StateError(
                f"sync '{self.sync}': writing the state file {self.path} failed "
                f"({first_line(exc)}){when}; the snapshot keeps what was committed before; "
                "rerunning is safe"
            ) from exc
        finally:
            with contextlib.suppress(duckdb.Error):
                self.con.unregister(name)

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

    def snapshot_size(self) -> int:
        return self._count("snapshot_size")

    def forget_snapshot(self) -> int:
        """Forget this sync's snapshot and bindings (see :meth:`DuckDBStore.reset`); returns
        how many profiles it held."""
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
