"""One run at a time per state file.

An exclusive ``flock`` on ``<state file>.lock``, taken without waiting. The kernel releases
it when the holder exits, however it exits, so a lock left by a dead process never blocks.
The file holds who took it (pid, sync, start time) so a refused run can name the holder.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from .errors import LockedError, StateError

UNKNOWN_HOLDER = "holder unknown"
HOLDER_READ_TRIES = 10


class StateLock:
    """Hold the run lock of a state file (a context manager)."""

    def __init__(self, state_path: Path, sync: str) -> None:
        self.path = state_path.with_name(state_path.name + ".lock")
        self.sync = sync
        self._fd: int | None = None

    def __enter__(self) -> StateLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StateError(
                f"sync '{self.sync}': cannot create lock file {self.path} ({exc.strerror})"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            # The holder writes who it is right after taking the lock: give it a moment.
            for _ in range(HOLDER_READ_TRIES):
                if holder != UNKNOWN_HOLDER:
                    break
                time.sleep(0.05)
                holder = _read_holder(fd)
            os.close(fd)
            raise LockedError(
                f"sync '{self.sync}': another run holds the lock on {self.path.with_suffix('')} "
                f"({holder}); this run did nothing and exits. Wait for it to finish, then rerun"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(
            fd,
            json.dumps(
                {
                    "pid": os.getpid(),
                    "sync": self.sync,
                    "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "host": socket.gethostname(),
                }
            ).encode(),
            0,
        )
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def current_holder(state_path: Path) -> str | None:
    """Who holds the run lock of a state file right now, or None when nobody does."""
    path = state_path.with_name(state_path.name + ".lock")
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_holder(fd)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return UNKNOWN_HOLDER
    holder = f"pid {info.get('pid')}, sync '{info.get('sync')}', started {info.get('started_at')}"
    return holder + (f", host {info['host']}" if info.get("host") else "")
