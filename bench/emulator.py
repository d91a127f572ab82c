"""The Target emulator as a separate process, made fit for millions of profiles.

``python -m bench.emulator [--sink]`` starts :class:`connector.emulator.Emulator` on a free
loopback port, prints its base URL on the first line of stdout, and serves until killed.
Every upload is still read, parsed and checked in Python, as in the tests, but:

* no upload record is kept (``max_upload_records=0``): each would hold a whole body;
* the profiles are counted, not kept: 10 million profiles as Python objects would take
  about 15 GB, and their garbage collection would slow the emulator down as it fills up.

With ``--sink`` an upload is not parsed either: only its size and lines are counted, and
every row is reported successful. The HTTP exchange, the answers and the batch status are
the emulator's own, so a run against the sink costs the connector what a run against a
Target that answers at once would: the difference from a run against the full emulator is
the time the connector spent waiting for the emulator's parsing.

Running it in its own process keeps its memory out of the connector's peak RSS, and lets
the runner read its CPU time per measurement.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping

from connector.emulator import Emulator
from connector.emulator.batchfile import MAX_BATCH_BYTES, BatchError, ParsedBatch, parse_batch
from connector.emulator.store import ProfileStore


class CountingStore(ProfileStore):
    """A profile store that applies nothing and keeps nothing: every row counts as done."""

    def apply(
        self,
        id_type: str,
        updates: Iterable[tuple[str, Mapping[str, str]]],
        *,
        create: bool,
        now_ms: int,
    ) -> tuple[int, int]:
        """Count the updates; with ``create`` (API v2) none is ever "not found"."""
        updated = sum(1 for _ in updates)
        return (updated, 0) if create else (0, updated)


def skim_batch(body: bytes) -> ParsedBatch:
    """The sink's parser: the size limit and the header; rows are counted, not decoded."""
    if len(body) >= MAX_BATCH_BYTES:
        raise BatchError(f"Invalid batch: {len(body)} bytes; the limit is {MAX_BATCH_BYTES}")
    header_end = body.find(b"\n")
    header = body[len(b"batch=") : header_end].decode().split(",")
    rows = body.count(b"\n") - 1
    return ParsedBatch(id_type=header[0], header=header, rows=[[]] * rows)


def main() -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sink", action="store_true", help="count uploads, do not parse them")
    args = parser.parse_args()
    emulator = Emulator(
        client_code="bench",
        max_upload_records=0,
        store_factory=CountingStore,
        parse=skim_batch if args.sink else parse_batch,
    )
    emulator.start()
    print(emulator.base_url, flush=True)
    emulator.wait()


if __name__ == "__main__":
    main()
