"""Cutting a stream of encoded lines into Target batch files.

A batch file is ``batch=`` + the header line + data lines, every cell URL-encoded and every
line ending in ``\\n``. Each batch holds at most ``max_rows`` data lines and is strictly
smaller than ``max_bytes``, counted on the exact bytes that are sent. Lines arrive as Arrow
string arrays; cut points are found with a cumulative sum, so no Python runs per row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import TargetSyncError
from ..sqltext import url_encode

BATCH_PREFIX = b"batch="


@dataclass(frozen=True)
class Batch:
    """One upload: its body and the rows (id, cells, fp) it carries."""

    seq: int
    kind: str
    body: bytes
    rows: pa.Table

    @property
    def num_rows(self) -> int:
        return self.rows.num_rows

    @property
    def size(self) -> int:
        return len(self.body)


def header_line(id_type: str, attributes: Sequence[str]) -> bytes:
    """``batch=`` and the URL-encoded header, ending in a newline."""
    cells = [id_type, *(url_encode(name) for name in attributes)]
    return BATCH_PREFIX + ",".join(cells).encode() + b"\n"


def _body(header: bytes, lines: pa.ChunkedArray) -> bytes:
    """``header`` and the UTF-8 bytes of every line, read straight from the Arrow buffers
    into one ``bytes`` (one copy: at 50 MB a batch, each extra copy shows in peak RSS)."""
    parts: list[bytes | memoryview] = [header]
    for array in lines.chunks:
        if array.null_count:
            raise TargetSyncError("internal error: a batch line is NULL")
        if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
            array = array.cast(pa.large_string())
        width = np.int64 if pa.types.is_large_string(array.type) else np.int32
        offsets = np.frombuffer(array.buffers()[1], dtype=width)
        start = int(offsets[array.offset])
        end = int(offsets[array.offset + len(array)])
        data = array.buffers()[2]
        if data is not None and end > start:
            parts.append(memoryview(data)[start:end])
    return b"".join(parts)


def cut_batches(
    chunks: Iterator[pa.RecordBatch],
    header: bytes,
    kind: str,
    max_rows: int,
    max_bytes: int,
    first_seq: int = 1,
) -> Iterator[Batch]:
    """Group lines (column ``line`` of each chunk) into batches within both limits.

    Other columns of the chunks travel with their lines into ``Batch.rows``.
    """
    room = max_bytes - len(header) - 1  # strictly under the limit
    seq = first_seq
    parts: list[pa.RecordBatch] = []
    rows = 0
    size = 0

    def flush() -> Batch:
        table = pa.Table.from_batches(parts)
        body = _body(header, table.column("line"))
        parts.clear()  # the lines are in the body now: hold them once, not twice
        return Batch(seq=seq, kind=kind, body=body, rows=table.drop_columns(["line"]))

    for chunk in chunks:
        if chunk.num_rows == 0:
            continue
        lengths = np.asarray(
            pc.binary_length(chunk.column("line")).to_numpy(zero_copy_only=False),
            dtype=np.int64,
        )
        too_long = np.flatnonzero(lengths > room)
        if too_long.size:
            # An internal check: staging rejects such profiles (line_too_large). Only the exit
            # line of a removed profile (on_removed: set), never staged, can still get here,
            # with a long id and a max_bytes_per_batch far below the default.
            raise TargetSyncError(
                f"a profile line of {int(lengths[too_long[0]])} bytes cannot fit in a batch of "
                f"at most {max_bytes} bytes (staging rejects such profiles as line_too_large; "
                "this one was not staged); raise target.max_bytes_per_batch"
            )
        ends = np.cumsum(lengths)
        position = 0
        while position < chunk.num_rows:
            base = int(ends[position - 1]) if position else 0
            fit_bytes = int(np.searchsorted(ends, base + room - size, side="right")) - position
            take = min(fit_bytes, max_rows - rows, chunk.num_rows - position)
            if take <= 0:
                yield flush()
                seq += 1
                parts, rows, size = [], 0, 0
                continue
            parts.append(chunk.slice(position, take))
            rows += take
            size += int(ends[position + take - 1]) - base
            position += take
            if rows == max_rows:
                yield flush()
                seq += 1
                parts, rows, size = [], 0, 0
    if parts:
        yield flush()
