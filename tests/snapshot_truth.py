"""Checks shared by the integrity cases and the model-based test: what the snapshot claims,
read straight from the state file, against what the emulator says Target holds.

The snapshot's promise (``connector/state/duckdb/store.py``): a row with a fingerprint that
is not on its way out was accepted by Target with exactly the cells it keeps. Target ignores
empty cells (the old value stays), so only non-empty cells must be held as such.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import duckdb

from connector.config import SyncConfig
from connector.sqltext import quote_ident


@dataclass(frozen=True)
class SnapshotRow:
    id: str | None
    cells: str | None
    fp: int | None
    batch_id: str | None
    gone: bool
    binding: str | None


@dataclass(frozen=True)
class Snapshot:
    rows: list[SnapshotRow]
    attributes: dict[str, list[str]]  # binding -> its attribute names, in cell order
    destinations: dict[str, dict[str, Any]]  # binding -> its destination
    pending: set[str]  # batch ids still pending
    sending: list[str]  # ids recorded as being uploaded (ts_sending), if the table exists

    def only(self, bound: Callable[[str | None], bool]) -> Snapshot:
        """The rows whose binding passes ``bound`` (those sent to one destination)."""
        return replace(self, rows=[row for row in self.rows if bound(row.binding)])

    def claims(self) -> dict[str, dict[str, str]]:
        """Per confirmed row (a fingerprint, not gone, its batch not pending, not recorded as
        being uploaded): the non-empty values it says Target holds."""
        out = {}
        in_flight = set(self.sending)
        for row in self.rows:
            if row.fp is None or row.gone or row.cells is None or row.id is None:
                continue
            if row.batch_id in self.pending or row.id in in_flight:
                continue
            names = self.attributes[row.binding or ""]
            values = [unquote(cell) for cell in row.cells.split(",")]
            out[row.id] = {n: v for n, v in zip(names, values, strict=True) if v != ""}
        return out


def read_snapshot(config: SyncConfig) -> Snapshot:
    """The snapshot of ``config``'s sync as stored (empty when there is no file yet)."""
    path = Path(config.state.path)
    if not path.exists():
        return Snapshot([], {}, {}, set(), [])
    table = quote_ident(f"snapshot__{config.name}")
    with duckdb.connect(str(path), read_only=True) as con:
        tables = {name for (name,) in con.execute("SHOW TABLES").fetchall()}
        rows = (
            [
                SnapshotRow(*r)
                for r in con.execute(
                    f"SELECT id, cells, fp, batch_id, gone, binding FROM {table}"
                ).fetchall()
            ]
            if f"snapshot__{config.name}" in tables
            else []
        )
        attributes, destinations = {}, {}
        if "ts_bindings" in tables:
            for binding, mapping, destination in con.execute(
                "SELECT binding, mapping, destination FROM ts_bindings WHERE sync = ?",
                [config.name],
            ).fetchall():
                attributes[binding] = list(json.loads(mapping).get("attributes", {}))
                destinations[binding] = json.loads(destination) if destination else {}
        pending: set[str] = set()
        if "ts_batches" in tables:
            pending = {
                b
                for (b,) in con.execute(
                    "SELECT batch_id FROM ts_batches WHERE sync = ? AND state = 'pending'",
                    [config.name],
                ).fetchall()
            }
        sending = []
        if "ts_sending" in tables:
            sending = [
                i
                for (i,) in con.execute(
                    "SELECT id FROM ts_sending WHERE sync = ?", [config.name]
                ).fetchall()
            ]
    return Snapshot(rows, attributes, destinations, pending, sending)


def untrue_claims(
    snapshot: Snapshot, held: dict[str, dict[str, str]], unsure: Collection[str] = ()
) -> dict[str, tuple[dict[str, str], dict[str, str] | None]]:
    """Snapshot rows whose claimed non-empty values Target does not hold:
    id -> (claimed, held). ``unsure``: ids to skip (a delivery in flight whose outcome the
    snapshot does not claim yet)."""
    wrong = {}
    for pid, claimed in snapshot.claims().items():
        if pid in unsure:
            continue
        profile = held.get(pid)
        if profile is None:
            if claimed:
                wrong[pid] = (claimed, None)
            continue
        if any(profile.get(name) != value for name, value in claimed.items()):
            wrong[pid] = (claimed, profile)
    return wrong


def duplicate_ids(snapshot: Snapshot) -> list[str]:
    seen: set[str | None] = set()
    twice = []
    for row in snapshot.rows:
        if row.id in seen:
            twice.append(str(row.id))
        seen.add(row.id)
    return twice
