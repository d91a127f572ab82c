"""The state store protocol: what the pipeline needs from wherever a sync's snapshot lives.

A store keeps, per sync, the snapshot (what Target holds: one row per profile, confirmed,
tied to a pending batch, or owed), the bindings its rows were sent under, the batches Target
has not resolved yet, and the run history. ``connector/state/duckdb/`` is the local
implementation (one DuckDB file); a store in the warehouse implements the same protocol.

Nothing here depends on call order beyond the obvious (open, then use, then close): what a
call learned comes back in its return value.

Adding a store: implement :class:`StateStore` and :class:`RunHistory` (most of a run's work can
be left to the local stage, :mod:`connector.state.stage`, which every store uses to build the
texts it sends), open it in :func:`connector.state.open_store` for its ``state.type`` and
every :data:`Access`, and add it to ``tests/test_store_contract.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypedDict

if TYPE_CHECKING:
    import pyarrow as pa

    from ..config import SyncConfig


Access = Literal["run", "dry-run", "read", "plan", "reset"]
"""How a command reaches a store (:func:`connector.state.open_store`):

* ``run``: a sync, or ``verify --resend-mismatched``: holds the run lock and writes;
* ``dry-run``: reads exactly what the run would, holding the run lock, and writes nothing;
* ``read``: ``status`` and ``verify``: reads, never blocking a run;
* ``plan``: diffs like a run on a private view that nothing outlives;
* ``reset``: forgets the snapshot under the run lock.
"""


@dataclass(frozen=True)
class Location:
    """Where a sync's snapshot lives: ``place`` identifies it (two syncs of one name at one
    place share a snapshot), ``text`` names it in messages (``state file /x/state.duckdb``)."""

    place: tuple[str, ...]
    text: str
    path: str | None = None  # the file holding it, when it is a local file
    key: str = "state"  # the config key that places it elsewhere (state.path)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class ResetReport:
    """What ``reset`` did: how many profiles were forgotten, and where a damaged store was
    kept aside (None when it was not damaged)."""

    forgotten: int
    damaged_kept_as: str | None


@dataclass(frozen=True)
class Binding:
    """A mapping and destination snapshot rows were sent under (``mapping.binding``)."""

    signature: str
    mapping: dict[str, Any]
    destination: dict[str, Any] | None  # None: recorded before destinations were (schema 1)
    attributes: int


@dataclass(frozen=True)
class PrepareReport:
    """What :meth:`StateStore.prepare` found and did before staging."""

    previous_config: str | None  # the config file that last ran the sync
    snapshot_size: int  # profiles in the snapshot (not said goodbye to), owed ones included
    census: dict[str | None, int]  # binding -> confirmed or pending profiles under it
    bindings: dict[str, Binding]
    unrefreshable: int  # profiles resent because their fingerprints cannot be recomputed
    adopted: int = 0  # profiles of a schema-1 file bound to the configured destination
    values_dropped: int = 0  # stored values forgotten (state.keep_values: false)
    # The snapshot's fingerprints are of an earlier scheme: staging compares the texts once
    # and moves unchanged profiles to the current scheme without sending them.
    migrating: bool = False
    # Profiles of an upload whose answer was never recorded (a run died between sending a
    # batch and committing it): Target may hold them, so they were made owed.
    unconfirmed: int = 0


class DiffCounts(TypedDict):
    """How many staged profiles are new, changed, owed (retried), gone, unchanged."""

    new: int
    changed: int
    retried: int
    removed: int
    unchanged: int


NO_DIFF = DiffCounts(new=0, changed=0, retried=0, removed=0, unchanged=0)


@dataclass(frozen=True)
class StageReport:
    """What one pass over the source found, diffed against the snapshot."""

    rows: int  # rows the source returned (rejected ones included)
    rejected: dict[str, int]
    new: int
    changed: int
    retried: int  # profiles the snapshot owed (their last delivery was not confirmed)
    removed: int
    unchanged: int
    first_run: bool

    def diff(self) -> DiffCounts:
        """The diff's counts by name (new, changed, retried, removed, unchanged), as the
        reports and events that carry them name them."""
        return DiffCounts(
            new=self.new,
            changed=self.changed,
            retried=self.retried,
            removed=self.removed,
            unchanged=self.unchanged,
        )


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
class AcceptedBatch:
    """A batch Target accepted: recorded as pending, its rows committed, in one step."""

    run_id: str
    seq: int
    kind: Literal["upsert", "removed"]
    batch_id: str
    status_url: str
    rows: pa.Table  # id, cells, fp
    size: int
    binding: str
    # The snapshot was empty when the run staged (its first run): none of these ids is in
    # it, so the commit need not look for earlier rows.
    fresh: bool = False


@dataclass(frozen=True)
class Verdict:
    """What a batch status means for the snapshot (``delivery.statuses`` decides it)."""

    state: Literal["complete", "reverted", "pending"]
    detail: str
    # Rows to resend: None for none (``complete``) or every row (``reverted``); else these.
    failed_ids: Sequence[str] | None = None
    reason: str = ""  # listed with each failed row


@dataclass(frozen=True)
class Sample:
    """A profile the next run would send, for ``plan``: old and new cells."""

    kind: str
    id: str
    old_cells: str | None
    new_cells: str | None
    old_binding: str | None


@dataclass(frozen=True)
class DrawnProfile:
    """A profile drawn at random for ``verify``: what was sent, and when."""

    id: str
    cells: str | None  # None: the snapshot keeps no values (state.keep_values: false)
    uploaded_at: Any  # naive UTC datetime of its batch, None when unknown
    pending: bool  # its batch's status is not resolved yet


@dataclass(frozen=True)
class FieldChanges:
    """Per attribute: how many changed profiles changed it, and how many went from a value
    to an empty cell (a stale value stays in Target)."""

    changed: dict[str, int] = field(default_factory=dict)
    stale: dict[str, int] = field(default_factory=dict)


class RunHistory(Protocol):
    """The run history of one sync: runs, their batches, failed and rejected rows."""

    def close_interrupted(self) -> int:
        """Mark runs that never finished as interrupted, with what they uploaded."""

    def start(self, run_id: str, dry_run: bool) -> None: ...

    def progress(self, run_id: str, summary: dict[str, Any]) -> None:
        """Keep a running run's counts so far (a killed run then still shows them)."""

    def finish(
        self, run_id: str, outcome: str, exit_code: int, summary: dict[str, Any], message: str
    ) -> None: ...

    def prune(self, keep_runs: int) -> None: ...

    def runs(self, limit: int) -> list[dict[str, Any]]:
        """The last runs, newest first; one a dead process left 'running' shows interrupted
        when nobody holds the lock (the caller knows)."""

    def interrupted_summary(self, run_id: str, summary: str | None) -> dict[str, Any]: ...

    def batches(
        self, run_id: str | None = None, state: str | None = None
    ) -> list[dict[str, Any]]: ...

    def failed_rows(self, run_id: str, limit: int) -> list[dict[str, Any]]: ...

    def rejects(self, run_id: str, limit: int) -> list[dict[str, Any]]: ...


class StateStore(Protocol):
    """One sync's snapshot and history. Open it with :func:`connector.state.open_store`."""

    sync: str
    keep_values: bool

    @property
    def writable(self) -> bool:
        """False for read-only views (status, dry runs): nothing is written."""

    @property
    def history(self) -> RunHistory: ...

    def location(self) -> Location:
        """Where this store keeps the sync's snapshot (for messages)."""

    def close(self) -> None: ...

    def __enter__(self) -> StateStore: ...

    def __exit__(self, *exc: object) -> None: ...

    def publish_progress(self, **counts: Any) -> None:
        """Make a running run's counts so far visible to ``status`` (never fails a run)."""

    def prepare(
        self,
        binding: str,
        mapping: dict[str, Any],
        destination: dict[str, Any],
        mapping_signature: str,
        config_path: str | None,
    ) -> PrepareReport:
        """Bind the snapshot to ``binding`` before staging: record the binding and the config
        file, bind rows of an older state format, recompute fingerprints made by another
        engine version, make the profiles of an unrecorded upload (:meth:`sending`) owed,
        drop stored values when they are not kept. Read-only stores only report."""

    def stage_and_diff(
        self,
        config: SyncConfig,
        prepared: PrepareReport,
        progress: Callable[[int], None] | None = None,
    ) -> StageReport:
        """Read the source once, check and fingerprint every row, and diff it against the
        snapshot (one pass) as ``prepared`` (what :meth:`prepare` returned) says; the changes
        are then read with :meth:`changes`."""

    def record_rejects(self, run_id: str) -> None:
        """Keep the staged rejects with the run (capped)."""

    def changes(
        self, kind: Literal["upsert", "removed"], batch_rows: int, exit_cells: str = ""
    ) -> pa.RecordBatchReader:
        """The staged profiles to send, as (id, cells, fp, line) chunks: new, changed and
        owed ones (``upsert``), or those that left, with the exit cells (``removed``)."""

    def lend_memory(self, nbytes: int) -> AbstractContextManager[None]:
        """For the length of the block, keep the store's own memory ``nbytes`` under its
        budget (spilling what it must): the caller holds batches of that size, and a run's
        peak stays that of its staging."""

    def field_changes(
        self, names: Sequence[str], nullable: Sequence[bool], comparable: Sequence[str] | None
    ) -> FieldChanges: ...

    def samples(self, limit: int) -> list[Sample]: ...

    def staged_rejects(self, limit: int) -> list[tuple[str | None, str, str | None]]: ...

    def sending(self, rows: pa.Table) -> None:
        """Record the ids of a batch (``rows``: id, ...) before it is uploaded, durably.

        Target may apply a batch whose answer never reaches the snapshot (the run is killed
        after the POST, or gives up on a lost answer); until :meth:`commit` forgets them in
        its transaction, the next :meth:`prepare` makes these profiles owed (those not in the
        snapshot yet become owed rows under the current binding, so they are removed if they
        leave the source). :meth:`reset` forgets them too."""

    def commit(self, batch: AcceptedBatch) -> None:
        """Record an accepted batch as pending and advance the snapshot for its rows, and
        forget the ids :meth:`sending` recorded, in one transaction. A store writable only
        under a run lock it no longer holds must fail here, writing nothing."""

    def forget_removed(self) -> int:
        """Drop profiles that left the result (``on_removed: ignore``)."""

    def prune_bindings(self, keep: str) -> None: ...

    def pending_batches(self) -> list[PendingBatch]: ...

    def settle(self, batch: PendingBatch, run_id: str, verdict: Verdict) -> int:
        """Apply a batch status to the snapshot; returns how many rows became owed."""

    def snapshot_size(self) -> int: ...

    def drop_work_tables(self) -> None:
        """Drop what the run staged (also after a failure; a second call does nothing)."""

    def reset(self) -> ResetReport:
        """Forget the sync's snapshot and bindings (its history stays), so that the next run
        sends every profile; no forgotten value may linger in the store."""

    def mark_owed(self, ids: Sequence[str]) -> int: ...

    def bindings(self) -> dict[str, Binding]: ...

    def draw(self, binding: str, limit: int, seed: int) -> list[DrawnProfile]: ...

    def invariant_violations(self) -> list[str]: ...
