"""One Target account of the emulator: a client code's profiles and its last batch statuses."""

from __future__ import annotations

from collections import OrderedDict

from .batchfile import ParsedBatch
from .faults import BatchFate
from .records import BatchRecord
from .store import ProfileStore

__all__ = ["Account"]


class Account:
    """What Target keeps for one client code. Not thread-safe: the app calls it under its lock.

    Args:
        store: the account's profiles.
    """

    def __init__(self, store: ProfileStore) -> None:
        self.store = store
        # Oldest first: Target keeps the statuses of the last batches only.
        self.batches: OrderedDict[str, BatchRecord] = OrderedDict()

    def clear(self) -> None:
        """Forget every profile and batch."""
        self.store.clear()
        self.batches.clear()

    def keep_last(self, keep: int | None) -> None:
        """Forget all but the last ``keep`` batch statuses (None keeps them all)."""
        if keep is not None:
            while len(self.batches) > keep:
                self.batches.popitem(last=False)

    def accept(
        self,
        batch_id: str,
        parsed: ParsedBatch,
        fate: BatchFate,
        *,
        create: bool,
        incomplete_polls: int,
        now_ms: int,
    ) -> BatchRecord:
        """Apply a valid batch as its fate allows, and keep (and return) its status.

        ``create`` (API v2) makes unknown ids new profiles; without it (v1) they count as not
        found. A batch holding only empty values is skipped: it creates no profile.
        """
        failed_ids = [pid for pid, _ in parsed.failed] + fate.failed_ids
        size = len(parsed.rows)
        successful = not_found = 0
        if not fate.stuck:
            # Lost rows are not applied, yet counted as successful below.
            skip = {*fate.failed_ids, *fate.lost_ids}
            if parsed.has_values:
                _, not_found = self.store.apply(
                    parsed.id_type,
                    ((pid, v) for pid, v in parsed.updates.items() if pid not in skip),
                    create=create,
                    now_ms=now_ms,
                )
            successful = size - len(failed_ids) - not_found
        record = self.batches[batch_id] = BatchRecord(
            batch_id=batch_id,
            size=size,
            successful=successful,
            not_found=not_found,
            failed_ids=failed_ids,
            stuck=fate.stuck,
            incomplete_left=incomplete_polls,
        )
        return record
