"""The state file on disk: connecting to it in one of three modes, telling damage from other
failures, private scratch copies, and rewriting it so that forgotten values leave no trace.

The connection is an in-memory DuckDB database, where a run's work tables live (no
durability needed, and it spills to ``temp_directory`` under ``memory_limit``), with the
state file attached as ``state``: read-write for a run, read-only for ``status`` and dry runs
(which never write a byte), or a private copy that is deleted afterwards (``plan``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import duckdb
from pydantic import ByteSize, TypeAdapter, ValidationError

from ...errors import StateError
from ...private import private_folder, warn_if_shared
from ...sqltext import sql_literal
from ...text import first_line
from ..store import Location

if TYPE_CHECKING:
    from ...config import DuckDBState

STATE_DB = "state"
Mode = Literal["write", "read", "scratch"]


def file_location(path: Path) -> Location:
    """Where a state file keeps its snapshots: the file, by its resolved path."""
    resolved = Path(path).resolve()
    return Location(("duckdb", str(resolved)), f"state file {path}", str(path), "state.path")


def damaged_message(path: Path, sync: str, problem: str) -> str:
    """The one line that names a damaged state file and the way out."""
    return (
        f"sync '{sync}': the state file {path} is damaged or is not a target-sync state file "
        f"({problem}); nothing was read or sent. Run 'target-sync reset CONFIG' to keep it "
        "aside (as STATE.damaged-TIME) and start a new one: every sync in it then sends all "
        "its profiles again"
    )


def _is_damage(problem: str) -> bool:
    markers = ("not a valid DuckDB database", "Could not read enough bytes", "Corrupt", "corrupt")
    return any(marker in problem for marker in markers)


@contextlib.contextmanager
def damage_guard(path: Path, sync: str) -> Iterator[None]:
    """Turn a DuckDB error that says the state file is damaged (found by any read, not only
    on opening: a truncated file opens) into the one-line StateError that names the way out."""
    try:
        yield
    except duckdb.Error as exc:
        problem = first_line(exc)
        if _is_damage(problem):
            raise StateError(damaged_message(path, sync, problem)) from exc
        raise


def memory_budget(memory_limit: str | None) -> int | None:
    """``state.memory_limit`` in bytes, read as DuckDB reads it (``MB`` 10^6 bytes, ``MiB``
    2^20); None when it is unset or a share of the host's memory (``50%``)."""
    if not memory_limit or "%" in memory_limit:
        return None
    try:
        return int(TypeAdapter(ByteSize).validate_python(memory_limit))
    except ValidationError:
        return None


def connect(
    settings: DuckDBState, file: Path, sync: str, mode: Mode, shown: Path
) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with ``file`` attached as ``state`` and in use (``shown``: the
    state file it is, or a copy of, for messages)."""
    try:
        if mode == "write":
            private_folder(file.parent)
        if mode != "scratch" and file.exists():
            warn_if_shared(file, "the state file")
        con = duckdb.connect(":memory:")
    except (OSError, duckdb.Error) as exc:
        raise StateError(
            f"sync '{sync}': cannot open state file {shown}: {first_line(exc)}"
        ) from None
    try:
        con.execute("SET TimeZone = 'UTC'")
        if settings.memory_limit:
            con.execute(f"SET memory_limit = {sql_literal(settings.memory_limit)}")
        if settings.threads:
            con.execute(f"SET threads = {int(settings.threads)}")
        temp = settings.temp_directory or file.parent / f"{file.name}.tmp"
        if mode != "read":
            private_folder(temp)
        con.execute(f"SET temp_directory = {sql_literal(str(temp))}")
        # Row order never matters here, and keeping it costs memory.
        con.execute("SET preserve_insertion_order = false")
        read_only = " (READ_ONLY)" if mode == "read" else ""
        con.execute(f"ATTACH {sql_literal(str(file))} AS {STATE_DB}{read_only}")
        con.execute(f"USE {STATE_DB}")
        _check_size(con, file)
    except duckdb.Error as exc:
        con.close()
        problem = first_line(exc).replace(str(file), str(shown))
        if _is_damage(problem):
            raise StateError(damaged_message(shown, sync, problem)) from None
        if "lock" in problem.lower():
            raise StateError(
                f"sync '{sync}': the state file {shown} is in use by another process "
                f"({problem}); wait for it to finish, then rerun"
            ) from None
        raise StateError(f"sync '{sync}': cannot open state file {shown}: {problem}") from None
    return con


def _check_size(con: duckdb.DuckDBPyConnection, file: Path) -> None:
    """Refuse a file too short to hold the blocks its header says are in use (a truncated
    file opens, and without this check fails at whichever read first reaches past its end,
    mid-run). Blocks a WAL replay added live in memory only, so with a WAL nothing is said."""
    if file.with_name(file.name + ".wal").exists():
        return
    rows = con.execute(
        "SELECT block_size, used_blocks FROM pragma_database_size() WHERE database_name = ?",
        [STATE_DB],
    ).fetchall()
    if not rows:
        return
    block_size, used_blocks = (int(v) for v in rows[0])
    size = file.stat().st_size
    if size < block_size * used_blocks:
        raise duckdb.IOException(
            f'Could not read enough bytes from file "{file}": it holds {size} bytes, its '
            f"header says {used_blocks} blocks of {block_size} are in use"
        )


def create_whole(
    path: Path, sync: str, initialise: Callable[[duckdb.DuckDBPyConnection], None]
) -> None:
    """Create the state file at ``path`` whole or not at all: ``initialise`` builds it under a
    temporary name beside it, which is then renamed into place. A first run killed while
    DuckDB wrote a new file left a truncated file ("damaged") or one without a schema
    version, which ``status`` and dry runs refused. The caller holds the run lock."""
    partial = path.with_name(path.name + ".creating")
    try:
        private_folder(path.parent)
        for leftover in (partial, partial.with_name(partial.name + ".wal")):
            leftover.unlink(missing_ok=True)  # a creation killed earlier
        con = duckdb.connect(str(partial))
        try:
            initialise(con)
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.replace(partial, path)
    except (OSError, duckdb.Error) as exc:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise StateError(
            f"sync '{sync}': cannot create the state file {path}: {first_line(exc)}"
        ) from None


def scratch_copy(settings: DuckDBState, sync: str) -> tuple[Path, Path]:
    """A private folder holding a copy of the state file (and its WAL; nothing when there is
    no file yet): (folder, the copy). The caller holds the shared lock and removes the folder."""
    path = Path(settings.path)
    # Beside the file, so that a large copy stays on its disk; with no file, nothing is copied
    # and the folder (perhaps read-only, perhaps not there) is left alone.
    parent = path.parent if path.exists() else Path(tempfile.gettempdir())
    folder = Path(tempfile.mkdtemp(prefix="target-sync-", dir=parent))
    copy = folder / path.name
    if path.exists():
        try:
            shutil.copyfile(path, copy)
            wal = path.with_name(path.name + ".wal")
            if wal.exists():
                shutil.copyfile(wal, copy.with_name(copy.name + ".wal"))
        except OSError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise StateError(
                f"sync '{sync}': cannot copy the state file {path} to read it ({exc.strerror})"
            ) from None
    return folder, copy


def keep_damaged(path: Path) -> Path:
    """Move a damaged state file (and its WAL) aside as ``<file>.damaged-<time>``."""
    kept = path.with_name(f"{path.name}.damaged-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
    path.replace(kept)
    wal = path.with_name(path.name + ".wal")
    if wal.exists():
        wal.replace(kept.with_name(kept.name + ".wal"))
    return kept


def copy_into_fresh_file(con: duckdb.DuckDBPyConnection, path: Path) -> Path:
    """Copy everything the attached state file holds into a fresh file beside it; returns
    it (the caller swaps it in once the connection is closed)."""
    fresh = path.with_name(path.name + ".rewrite")
    with contextlib.suppress(FileNotFoundError):
        fresh.unlink()
    try:
        con.execute(f"ATTACH {sql_literal(str(fresh))} AS fresh")
        con.execute(f"COPY FROM DATABASE {STATE_DB} TO fresh")
        con.execute("DETACH fresh")
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            fresh.unlink()
        raise
    return fresh
