"""Customer data at rest stays private: the files target-sync writes are the user's alone.

The snapshot holds every synced profile's attribute values, so the state file is a copy of
customer data, and so are DuckDB's spill files and ``--out`` batch files. Whatever the umask,
what target-sync creates is ``0600`` (files) or ``0700`` (folders): its own files are created
with those modes, and files DuckDB creates (the state file, its WAL, spill files) are made
while :func:`private_umask` is in force. A file the user already has is never changed
silently: a state file that others can read gets a one-line warning with the ``chmod`` that
fixes it.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

FILE_MODE = 0o600
FOLDER_MODE = 0o700
_PRIVATE_UMASK = 0o077

_lock = threading.Lock()
_depth = 0
_saved: int | None = None


@contextmanager
def private_umask() -> Iterator[None]:
    """Create files as ``0600`` and folders as ``0700`` while the block runs.

    The umask belongs to the whole process: for the length of a run, files any thread
    creates are private. Nested and concurrent uses restore the original umask once, when
    the last one ends.
    """
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = os.umask(_PRIVATE_UMASK)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved is not None:
                os.umask(_saved)
                _saved = None


def private_folder(path: Path) -> None:
    """Create ``path`` (and missing parents) as ``0700``; an existing folder is left as is."""
    if path.is_dir():
        return
    with private_umask():
        path.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a new or truncated ``0600`` file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as file:
        file.write(data)


def warn_if_shared(path: Path, what: str) -> bool:
    """Warn, once per call, when others than the owner may read ``path``; returns whether."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    if not mode & (stat.S_IRWXG | stat.S_IRWXO):
        return False
    log.warning(
        "%s %s can be read by other users (mode %s); it holds customer data: chmod 600 %s",
        what,
        path,
        stat.filemode(mode),
        path,
    )
    return True
