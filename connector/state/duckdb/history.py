"""The run history of one sync in the state file (``sql/history.sql``): runs, the batches
they uploaded, the rows Target failed and the rows never sent."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from ...sqltext import load_queries

SQL = Path(__file__).parent / "sql"


def now() -> datetime:
    """The current UTC time, naive, as stored in the state file."""
    return datetime.now(UTC).replace(tzinfo=None)


def run_query(
    con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]
) -> duckdb.DuckDBPyConnection:
    """Execute ``sql`` with the parameters it names (DuckDB refuses unused ones)."""
    used = {k: v for k, v in params.items() if f"${k}" in sql}
    return con.execute(sql, used or None)


class DuckDBHistory:
    """:class:`connector.state.store.RunHistory` over a state file."""

    def __init__(self, con: duckdb.DuckDBPyConnection, sync: str) -> None:
        self.con = con
        self.sync = sync
        self._queries = load_queries(SQL, "history.sql")

    def _run(self, name: str, **params: Any) -> duckdb.DuckDBPyConnection:
        return run_query(self.con, self._queries[name], {"sync": self.sync, **params})

    def close_interrupted(self) -> int:
        """Mark runs of this sync that never finished (killed, or the host went down) as
        ``interrupted``, with what they uploaded. Call it holding the run lock."""
        stale = self._run("running").fetchall()
        for run_id, summary in stale:
            report = self.interrupted_summary(run_id, summary)
            self._run(
                "mark_interrupted",
                run_id=run_id,
                summary=json.dumps(report),
                message=report["message"],
            )
        return len(stale)

    def interrupted_summary(self, run_id: str, summary: str | None) -> dict[str, Any]:
        """What a run that stopped without finishing did: its last recorded counts, and what
        its batches carried (computed from the batches it recorded)."""
        report: dict[str, Any] = json.loads(summary) if summary else {}
        [row] = self._run("uploaded_by", run_id=run_id).fetchall()
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

    def start(self, run_id: str, dry_run: bool) -> None:
        self._run("start", run_id=run_id, now=now(), dry_run=dry_run)

    def progress(self, run_id: str, summary: dict[str, Any]) -> None:
        self._run("progress", run_id=run_id, summary=json.dumps(summary))

    def finish(
        self, run_id: str, outcome: str, exit_code: int, summary: dict[str, Any], message: str
    ) -> None:
        self._run(
            "finish",
            run_id=run_id,
            now=now(),
            outcome=outcome,
            exit_code=exit_code,
            summary=json.dumps(summary),
            message=message,
        )

    def prune(self, keep_runs: int) -> None:
        """Keep the history of the last ``keep_runs`` runs of this sync (and every batch
        still pending)."""
        for name in ("prune_failed", "prune_rejects", "prune_batches", "prune_runs"):
            self._run(name, keep=keep_runs)

    def runs(self, limit: int) -> list[dict[str, Any]]:
        return _dicts(self._run("runs", limit=limit))

    def batches(self, run_id: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
        return _dicts(self._run("batches", run_id=run_id, state=state))

    def failed_rows(self, run_id: str, limit: int) -> list[dict[str, Any]]:
        return _dicts(self._run("failed_rows", run_id=run_id, limit=limit))

    def rejects(self, run_id: str, limit: int) -> list[dict[str, Any]]:
        return _dicts(self._run("rejects", run_id=run_id, limit=limit))


def _dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
