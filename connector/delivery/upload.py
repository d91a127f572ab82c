"""Sending the changes: cut them into batches, upload each (or write it, in a dry run), and
commit each batch Target accepted; then read the statuses of this run's batches.

Delivery is at least once: the snapshot advances for a batch only after Target accepted it,
and a batch is recorded as pending in the same step, so a run killed at any instant loses
nothing. Before each upload its ids are recorded: a batch Target applied but whose answer was
never committed leaves its profiles owed, so the next run sends them again whatever the
source then holds (even the values the snapshot had before).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import RemovedSet
from ..errors import StateError, TargetError
from ..mapping import exit_cells
from ..private import private_folder, write_private
from ..state import AcceptedBatch, StageReport
from .batches import Batch, cut_batches, header_line
from .statuses import make_room, poll

if TYPE_CHECKING:
    from .client import TargetClient
    from .session import Session

READ_CHUNK_ROWS = 100_000
# The batch in hand, as memory: its lines and its body while the body is built, its rows'
# cells, and the chunk being cut (about a batch's worth at the default limits).
BATCH_COPIES = 4


def deliver(
    session: Session, client: TargetClient | None, out_dir: Path | None, staged: StageReport
) -> None:
    """Cut and send (or, without a client, write) the batches, committing each accepted one;
    then poll this run's batch statuses."""
    config, store = session.config, session.store
    target = config.target
    removals = isinstance(config.on_removed, RemovedSet)
    session.emit(
        "upload_start",
        rows=staged.new + staged.changed + staged.retried + (staged.removed if removals else 0),
    )
    header = header_line(config.identity.type, list(config.attributes))
    with store.lend_memory(BATCH_COPIES * target.max_bytes_per_batch):
        upserts = cut_batches(
            iter(store.changes("upsert", READ_CHUNK_ROWS)),
            header,
            "upsert",
            target.max_rows_per_batch,
            target.max_bytes_per_batch,
        )
        seq = _send_all(session, client, out_dir, upserts, 1, staged.first_run)
        if staged.removed and removals:
            names, cells = exit_cells(config)
            goodbyes = cut_batches(
                iter(store.changes("removed", READ_CHUNK_ROWS, cells)),
                header_line(config.identity.type, names),
                "removed",
                target.max_rows_per_batch,
                target.max_bytes_per_batch,
                first_seq=seq,
            )
            _send_all(session, client, out_dir, goodbyes, seq, staged.first_run)
    if staged.removed and not removals and client is not None:
        store.forget_removed()


def confirm_own(session: Session, client: TargetClient) -> bool:
    """Poll the statuses of this run's batches (until the deadline); whether there were any."""
    own = [b for b in session.store.pending_batches() if b.run_id == session.run_id]
    if not own:
        return False
    session.emit("status_start", batches=len(own))
    poll(session, client, session.run_id)
    return True


def _send_all(
    session: Session,
    client: TargetClient | None,
    out_dir: Path | None,
    batches: Iterator[Batch],
    seq: int,
    first_run: bool,
) -> int:
    try:
        for batch in batches:
            if client is None:
                _write(session, batch, out_dir)
            else:
                make_room(session, client, batch.seq)
                _upload(session, client, batch, first_run)
            seq = batch.seq + 1
            # The loop variable would keep this batch (body and rows, ~100 MB at the default
            # limits) alive while the next one is cut.
            del batch
    finally:
        # Let go of the state-file cursor the stream reads, also when a batch failed: the
        # caller may keep the traceback, and with it the state file open.
        close = getattr(batches, "close", None)
        if close is not None:
            close()
    return seq


def _count(session: Session, batch: Batch) -> None:
    report = session.report
    report.batches += 1
    report.bytes_sent += batch.size
    if batch.kind == "upsert":
        report.sent += batch.num_rows
    else:
        report.removed_sent += batch.num_rows


def _write(session: Session, batch: Batch, out_dir: Path | None) -> None:
    """A dry run's batch: counted, and written to ``out_dir`` when given."""
    _count(session, batch)
    if out_dir is not None:
        path = out_dir / f"{session.config.name}-{batch.seq:04d}.txt"
        try:
            private_folder(out_dir)
            write_private(path, batch.body)
        except OSError as exc:
            raise StateError(
                f"{session.config.label}: cannot write batch file {path} "
                f"({exc.strerror or exc}); nothing was sent and the snapshot is unchanged"
            ) from None
        session.report.batch_files.append(str(path))
    session.emit(
        "batch_written", seq=batch.seq, kind=batch.kind, rows=batch.num_rows, bytes=batch.size
    )


def _upload(session: Session, client: TargetClient, batch: Batch, first_run: bool) -> None:
    """Send one batch; once Target accepted it, record it as pending and advance the
    snapshot for its rows, in one step (``first_run``: the snapshot was empty when the run
    staged, so none of the batch's ids is in it)."""
    report = session.report
    what = f"batch {batch.seq} of {session.config.label}"
    # Target may apply a batch whose answer the snapshot never records (killed after the
    # POST, or an answer lost): its profiles stay owed until commit() says otherwise.
    session.store.sending(batch.rows)
    try:
        receipt = client.upload(batch.body, what)
    except TargetError as exc:
        earlier = (
            f"; {report.batches} earlier batch(es) of this run were accepted and stay committed"
            if report.batches
            else ""
        )
        raise type(exc)(
            f"{exc}; the snapshot was not advanced for its {batch.num_rows} profiles{earlier}; "
            "rerunning is safe"
        ) from None
    session.store.commit(
        AcceptedBatch(
            run_id=session.run_id,
            seq=batch.seq,
            kind="upsert" if batch.kind == "upsert" else "removed",
            batch_id=receipt.batch_id,
            status_url=receipt.status_url,
            rows=batch.rows,
            size=batch.size,
            binding=session.binding,
            fresh=first_run,
        )
    )
    _count(session, batch)
    report.batch_ids.append(receipt.batch_id)
    session.publish()
    session.emit(
        "batch_uploaded",
        seq=batch.seq,
        kind=batch.kind,
        batch_id=receipt.batch_id,
        rows=batch.num_rows,
        bytes=batch.size,
        http_status=receipt.http_status,
        attempts=receipt.attempts,
        retries=receipt.attempts - 1,
        elapsed=round(receipt.elapsed, 3),
    )
