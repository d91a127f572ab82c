"""A state file that an earlier version left in the working directory.

Earlier versions resolved the default ``state.path`` (``.target-sync/state.duckdb``) against
the working directory of the run; it now sits next to the config file, as an explicit
relative ``state.path`` always did. A config without ``state.path`` run from the folder it
used to run from would find no snapshot at the new place and silently send every profile
again. :func:`refuse_legacy_default` refuses that run before anything is read or sent, and
names the two ways on.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from ...config.models import DEFAULT_STATE_PATH
from ...errors import StateError
from ...sqltext import quote_ident
from ...text import first_line
from .lock import describe_holder, lock_path, shared_read

if TYPE_CHECKING:
    from ...config import DuckDBState, SyncConfig


def refuse_legacy_default(config: SyncConfig, settings: DuckDBState) -> None:
    """Raise StateError when ``config`` (whose ``state`` is ``settings``) gives no
    ``state.path``, the default state file next to it does not hold this sync, and
    ``.target-sync/state.duckdb`` in the working directory does (or may: it cannot be read).
    Creates nothing; in the common case it costs one stat."""
    if "path" in settings.model_fields_set:
        return  # an explicit path means what it says
    current = Path(settings.path)
    try:
        legacy = Path.cwd() / DEFAULT_STATE_PATH
    except OSError:  # the working directory was deleted: nothing can be in it
        return
    if current.absolute() == legacy or not legacy.exists():
        return
    if current.exists():
        with contextlib.suppress(OSError):
            if os.path.samefile(current, legacy):
                return
        if _read(current, config.name).may_hold(config.name):
            return  # it holds this sync, or cannot be read: opening it will say why
    old = _read(legacy, config.name)
    if old.may_hold(config.name):
        raise StateError(_message(config, legacy, old, current))


@dataclass(frozen=True)
class _Contents:
    """What a state file holds, as far as it could be read."""

    syncs: frozenset[str] = frozenset()  # syncs with a record or a snapshot table in it
    profiles: int | None = None  # rows of the sync's snapshot table, when it has one
    problem: str | None = None  # why it could not be read (then it may hold anything)

    def may_hold(self, sync: str) -> bool:
        return self.problem is not None or sync in self.syncs


def _read(path: Path, sync: str) -> _Contents:
    """Read which syncs ``path`` holds, read-only, and under the shared run lock when the
    file has a lock file (so the peek never gets in the way of a run opening it)."""
    with _politely(path, sync) as holder:
        if holder is not None:
            return _Contents(problem=f"a run holds it: {describe_holder(holder)}")
        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error as exc:
            return _Contents(problem=first_line(exc))
        try:
            tables = {
                name
                for (name,) in con.execute(
                    "SELECT table_name FROM duckdb_tables() "
                    "WHERE database_name = current_database() AND schema_name = 'main'"
                ).fetchall()
            }
            syncs = {t.removeprefix("snapshot__") for t in tables if t.startswith("snapshot__")}
            profiles = None
            if f"snapshot__{sync}" in tables:
                table = quote_ident(f"snapshot__{sync}")
                profiles = int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
            if "ts_syncs" in tables:
                rows = con.execute("SELECT DISTINCT sync FROM ts_syncs").fetchall()
                syncs |= {str(name) for (name,) in rows if name is not None}
        except duckdb.Error as exc:
            return _Contents(problem=first_line(exc))
        finally:
            con.close()
    return _Contents(frozenset(syncs), profiles)


@contextlib.contextmanager
def _politely(path: Path, sync: str) -> Iterator[dict[str, object] | None]:
    """The shared run lock of ``path`` if it has a lock file (a run of this version makes
    one before it opens the file); without one, nothing is locked and nothing is created."""
    if not lock_path(path).exists():
        yield None
        return
    with shared_read(path, sync) as holder:
        yield holder


def _message(config: SyncConfig, legacy: Path, old: _Contents, current: Path) -> str:
    if old.problem is not None:
        held = f"could not be read ({old.problem}), so it may hold this sync's snapshot"
    else:
        others = len(old.syncs - {config.name})
        held = "holds this sync's snapshot" + (
            f" ({old.profiles:,} profiles)" if old.profiles is not None else ""
        )
        if others:
            held += f" and those of {others} other sync{'s' if others > 1 else ''}"
    where = f"in {config.config_path}" if config.config_path is not None else "in the config"
    fixes = (
        f"To keep using the old file, set state.path: {legacy} {where} (the right fix when "
        "several configs shared it)"
    )
    if current.exists():
        fixes += (
            f"; do not copy it to the new default path {current}: that file already exists, "
            "and copying over it would lose what it holds"
        )
    else:
        fixes += (
            f"; or copy it to the new default path {current} (move it, unless configs in "
            "other folders also use it)"
        )
    return (
        f"{config.label}: no state.path is set, and the state file {legacy} in the working "
        f"directory {held}, while the default state file {current} does not hold this sync. "
        "Earlier versions put the default state file in the working directory; it now sits "
        f"next to the config file. Nothing was read or sent. {fixes}"
    )
