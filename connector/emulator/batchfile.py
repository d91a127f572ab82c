"""Parse an upload body the way Adobe Target is reported to.

Target form-decodes the request body (``application/x-www-form-urlencoded``), so:

* the body must start with ``batch=``; the form field ends at the first raw ``&`` (the rest of
  the batch is silently lost); a raw ``=`` after ``batch=`` stays part of the value;
* lines are split on ``\\n`` and cells on ``,``; a ``\\r`` is part of the cell it ends;
* every cell (header names too) is form-decoded: ``+`` is a space, ``%XX`` a byte; a ``%`` not
  followed by two hex digits makes the whole batch fail, and so does invalid UTF-8.

Decisions where Adobe documents nothing (this emulator is strict so connector bugs show up):

* only the last line may be empty (a trailing ``\\n``); an empty line elsewhere is a row with
  an empty id, i.e. a failed row;
* header: an empty attribute name, a duplicate attribute name or one starting with
  ``profile.`` fails the batch;
* a row with more cells than the header fails (the row, not the batch); a shorter row is fine;
* a row fails when its id is empty, or when a ``thirdPartyId`` is longer than 256 characters or
  contains ``+`` or ``/`` (Adobe documents these limits for ``mbox3rdPartyId``);
* the same id twice in one batch: the last row wins whole (no merge with the earlier one), the
  earlier rows count as successful updates, and the id is recorded in ``duplicate_ids``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

__all__ = [
    "ID_TYPES",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_ROWS",
    "MAX_THIRD_PARTY_ID_CHARS",
    "BatchError",
    "ParsedBatch",
    "parse_batch",
]

ID_TYPES = ("thirdPartyId", "pcId")
# "< 50 MB" in Adobe's docs, read as 50,000,000 bytes: a body of that size or more fails.
MAX_BATCH_BYTES = 50_000_000
MAX_BATCH_ROWS = 500_000
MAX_THIRD_PARTY_ID_CHARS = 256

_PREFIX = b"batch="
_BAD_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")


class BatchError(ValueError):
    """The whole batch is invalid; ``str(error)`` is the ``<message>`` Target answers."""


@dataclass
class ParsedBatch:
    """A syntactically valid batch.

    Attributes:
        id_type: ``thirdPartyId`` or ``pcId`` (the first header cell).
        header: every header cell, decoded, the id column first.
        rows: every data row as sent, cells decoded (duplicates and failed rows included).
        updates: id -> non-empty attribute values of the row that wins for that id, in the
            order the ids first appear.
        failed: ``(id, reason)`` of rows that cannot be applied.
        duplicate_ids: ids that appear in more than one row, in order of first repetition.
        superseded: number of rows replaced by a later row with the same id.
    """

    id_type: str
    header: list[str]
    rows: list[list[str]]
    updates: dict[str, dict[str, str]] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)
    duplicate_ids: list[str] = field(default_factory=list)
    superseded: int = 0

    @property
    def attributes(self) -> list[str]:
        """The attribute names (header cells after the id column)."""
        return self.header[1:]

    @property
    def has_values(self) -> bool:
        """True when at least one row sets at least one attribute."""
        return any(self.updates.values())


def _decode_cell(raw: bytes) -> str:
    if b"%" in raw:
        # Form decoding: '+' first (a literal plus arrives as %2B and survives this order).
        return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    if b"+" in raw:
        return raw.replace(b"+", b" ").decode("utf-8")
    return raw.decode("utf-8")


def _decode_line(line: bytes, line_no: int) -> list[str]:
    try:
        if b"%" not in line:
            # No escapes; ',' never occurs inside a UTF-8 multi-byte sequence.
            return line.replace(b"+", b" ").decode("utf-8").split(",")
        if b"%2C" not in line and b"%2c" not in line:
            # Decoding can only produce a ',' from %2C: without one, decoding the whole line
            # and then splitting it gives the same cells, several times faster.
            return unquote_to_bytes(line.replace(b"+", b" ")).decode("utf-8").split(",")
        return [_decode_cell(cell) for cell in line.split(b",")]
    except UnicodeDecodeError:
        raise BatchError(f"Invalid batch: invalid UTF-8 on line {line_no}") from None


def _row_failure(id_type: str, row: list[str], width: int) -> str | None:
    profile_id = row[0]
    if not profile_id:
        return "empty id"
    if len(row) > width:
        return f"{len(row)} cells but the header has {width}"
    if id_type == "thirdPartyId":
        if len(profile_id) > MAX_THIRD_PARTY_ID_CHARS:
            return f"thirdPartyId longer than {MAX_THIRD_PARTY_ID_CHARS} characters"
        if "+" in profile_id or "/" in profile_id:
            return "thirdPartyId contains '+' or '/'"
    return None


def parse_batch(body: bytes) -> ParsedBatch:
    """Parse an upload body; raise :class:`BatchError` when Target would reject the batch."""
    if len(body) >= MAX_BATCH_BYTES:
        raise BatchError(
            f"Invalid batch: {len(body)} bytes; a batch must be smaller than {MAX_BATCH_BYTES}"
        )
    if not body.startswith(_PREFIX):
        raise BatchError("Invalid batch: missing batch= prefix")
    content = body[len(_PREFIX) :]
    amp = content.find(b"&")
    if amp >= 0:
        content = content[:amp]  # the form field ends at a raw '&': the rest is lost

    bad = _BAD_PERCENT.search(content)
    if bad is not None:
        line_no = content.count(b"\n", 0, bad.start()) + 1
        raise BatchError(f"Invalid batch: malformed percent-encoding on line {line_no}")

    lines = content.split(b"\n")
    if len(lines) > 1 and lines[-1] == b"":
        lines.pop()  # a trailing newline
    if len(lines) - 1 > MAX_BATCH_ROWS:
        raise BatchError(
            f"Invalid batch: {len(lines) - 1} rows; at most {MAX_BATCH_ROWS} rows per batch"
        )

    header = _decode_line(lines[0], 1)
    id_type = header[0]
    if id_type not in ID_TYPES:
        raise BatchError(
            f"Invalid batch: the first header cell must be thirdPartyId or pcId, got {id_type!r}"
        )
    seen_names: set[str] = set()
    for column, name in enumerate(header[1:], start=2):
        if not name:
            raise BatchError(f"Invalid batch: empty attribute name in header column {column}")
        if name.startswith("profile."):
            raise BatchError(
                f"Invalid batch: attribute name {name!r} must not start with 'profile.'"
            )
        if name in seen_names:
            raise BatchError(f"Invalid batch: duplicate attribute name {name!r} in header")
        seen_names.add(name)

    batch = ParsedBatch(id_type=id_type, header=header, rows=[])
    width = len(header)
    names = header[1:]
    updates = batch.updates
    seen: set[str] = set()
    duplicates: dict[str, None] = {}  # an ordered set
    for line_no, line in enumerate(lines[1:], start=2):
        row = _decode_line(line, line_no)
        batch.rows.append(row)
        profile_id = row[0]
        if profile_id:
            if profile_id in seen:
                duplicates[profile_id] = None
            seen.add(profile_id)
        reason = _row_failure(id_type, row, width)
        if reason is not None:
            batch.failed.append((profile_id, reason))
            continue
        if profile_id in updates:
            batch.superseded += 1
        # zip stops at the shorter of the two: a short row simply leaves attributes out.
        updates[profile_id] = {
            name: value for name, value in zip(names, row[1:], strict=False) if value
        }
    batch.duplicate_ids = list(duplicates)
    return batch
