"""One run at a time per state file, and readers that never break a run.

Two kinds of holders share ``<state file>.lock`` (a portable OS file lock, released by the
kernel when the holder exits, however it exits, so a lock left by a dead process never
blocks):

* a **run** (``sync``, ``sync --dry-run``, ``reset``) holds it exclusively, taken without
  waiting for another run. It writes who it is, and its progress as it goes, to the sidecar
  ``<state file>.run.json``, so a refused run and ``status`` can name it and show how far it
  got. The sidecar outlives a killed run: it then describes a run that died.
* a **reader** (``status``, ``plan``) holds it shared, for as long as it reads the state file
  (``status``) or copies it (``plan``): never while a run holds it, and a run that finds only
  readers waits for them (up to :data:`READER_WAIT_SECONDS`) instead of failing.

POSIX uses ``flock``; Windows ``msvcrt`` locking (shared locks there need pywin32, without
which a reader takes the lock exclusively for the moment it reads).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import portalocker

from ...errors import LockedError, StateError
from ...private import private_folder

log = logging.getLogger(__name__)

UNKNOWN_HOLDER = "holder unknown"
# How long a run waits for readers (status, plan copying the file) before it gives up.
READER_WAIT_SECONDS = 60.0
# A run writes its sidecar right after taking the lock: how long a refused run waits for it.
HOLDER_WRITE_GRACE_SECONDS = 0.5
_POLL_SECONDS = 0.05


def lock_path(state_path: Path) -> Path:
    """The lock file of a state file."""
    return state_path.with_name(state_path.name + ".lock")


def sidecar_path(state_path: Path) -> Path:
    """The file naming the run that holds (or last held) the lock, with its progress."""
    return state_path.with_name(state_path.name + ".run.json")


def _open_lock_file(state_path: Path, sync: str) -> IO[bytes]:
    path = lock_path(state_path)
    try:
        private_folder(path.parent)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StateError(
            f"sync '{sync}': cannot create lock file {path} ({exc.strerror})"
        ) from None
    return os.fdopen(fd, "r+b")


def _try_lock(handle: IO[bytes], shared: bool) -> bool:
    flags = portalocker.LockFlags.SHARED if shared else portalocker.LockFlags.EXCLUSIVE
    try:
        portalocker.lock(handle, flags | portalocker.LockFlags.NON_BLOCKING)
    except portalocker.AlreadyLocked:
        return False
    except ImportError:  # Windows without pywin32: no shared locks; read under an exclusive one
        return _try_lock(handle, shared=False)
    return True


def read_holder(state_path: Path) -> dict[str, Any] | None:
    """What the sidecar says about the run holding (or last holding) the lock, if anything."""
    try:
        data = json.loads(sidecar_path(state_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("pid") else None


def describe_holder(info: dict[str, Any] | None) -> str:
    """``pid 123, sync 'x', started 2026-...``: a holder in a few words."""
    if not info:
        return UNKNOWN_HOLDER
    holder = f"pid {info.get('pid')}, sync '{info.get('sync')}', started {info.get('started_at')}"
    if info.get("purpose") not in (None, "sync"):
        holder += f", {info['purpose']}"
    return holder + (f", host {info['host']}" if info.get("host") else "")


class RunLock:
    """Hold the run lock of a state file exclusively (a context manager).

    ``purpose`` says what holds it (``sync``, ``dry run``, ``reset``) in refusals and status.
    """

    def __init__(self, state_path: Path, sync: str, purpose: str = "sync") -> None:
        self.state_path = state_path
        self.sync = sync
        self.purpose = purpose
        self._handle: IO[bytes] | None = None
        self._info: dict[str, Any] = {}

    def __enter__(self) -> RunLock:
        handle = _open_lock_file(self.state_path, self.sync)
        waited_since = time.monotonic()
        waiting = False
        while not _try_lock(handle, shared=False):
            holder = read_holder(self.state_path)
            blocked_for = time.monotonic() - waited_since
            # A run names itself at once; a lock with no run named is held by readers, which
            # let go within moments: wait for them, but not forever.
            if (holder is not None and _alive(holder)) or blocked_for > READER_WAIT_SECONDS:
                handle.close()
                who = (
                    describe_holder(holder)
                    if holder is not None and _alive(holder)
                    else f"readers (status, plan) for over {READER_WAIT_SECONDS:g} s"
                )
                raise LockedError(
                    f"sync '{self.sync}': another run holds the lock on {self.state_path} "
                    f"({who}); this run did nothing and exits. Wait for it to finish, then rerun"
                ) from None
            if not waiting:
                waiting = True
                log.info(
                    "sync '%s': waiting for readers of %s (status, plan) to let go",
                    self.sync,
                    self.state_path,
                )
            time.sleep(_POLL_SECONDS)
        self._handle = handle
        self._info = {
            "pid": os.getpid(),
            "sync": self.sync,
            "purpose": self.purpose,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "host": socket.gethostname(),
            "progress": {},
        }
        self._write_sidecar()
        return self

    def progress(self, **fields: Any) -> None:
        """Record how far the run got (``status`` shows it while the run goes on)."""
        if self._handle is None:
            return
        self._info["progress"].update(fields)
        self._info["updated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        self._write_sidecar()

    def _write_sidecar(self) -> None:
        path = sidecar_path(self.state_path)
        temporary = path.with_name(path.name + f".{os.getpid()}.tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(self._info, file, default=str)
            os.replace(temporary, path)
        except OSError:  # progress is for display: never fail a run over it
            with contextlib.suppress(OSError):
                temporary.unlink()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._handle is None:
            return
        with contextlib.suppress(OSError):
            sidecar_path(self.state_path).unlink()
        with contextlib.suppress(portalocker.LockException, OSError):
            portalocker.unlock(self._handle)
        self._handle.close()
        self._handle = None


def _alive(holder: dict[str, Any]) -> bool:
    """Whether the run a sidecar names is still alive (a killed run leaves its sidecar)."""
    if holder.get("host") not in (None, socket.gethostname()):
        return True  # another host's process: it cannot be checked from here
    if os.name == "nt":
        return True  # os.kill(pid, 0) would terminate the process on Windows
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError, OSError):
        return True
    return True


@contextlib.contextmanager
def shared_read(state_path: Path, sync: str) -> Iterator[dict[str, Any] | None]:
    """Hold the lock shared while reading the state file.

    Yields None when no run holds the lock (the state file may be read until the block
    ends); yields the holder's sidecar (``{}`` when it has not named itself yet) when a run
    holds it: the caller must not touch the state file then.
    """
    if not lock_path(state_path).exists() and not state_path.exists():
        yield None
        return
    handle = _open_lock_file(state_path, sync)
    try:
        if not _try_lock(handle, shared=True):
            deadline = time.monotonic() + HOLDER_WRITE_GRACE_SECONDS
            holder = read_holder(state_path)
            while holder is None and time.monotonic() < deadline:
                time.sleep(_POLL_SECONDS)
                holder = read_holder(state_path)
            yield holder or {}
            return
        try:
            yield None
        finally:
            with contextlib.suppress(portalocker.LockException, OSError):
                portalocker.unlock(handle)
    finally:
        handle.close()


def current_holder(state_path: Path) -> str | None:
    """Who holds the run lock of a state file right now, or None when nobody does."""
    with shared_read(state_path, "?") as holder:
        return None if holder is None else describe_holder(holder)
