"""One writer per data home: two `index` runs at once would overwrite each other's index files."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = "ingest.lock"


class BusyError(RuntimeError):
    """Another process holds the data home's writer lock."""


@contextmanager
def writer_lock(home: Path) -> Iterator[None]:
    """Hold the data home's writer lock (released by the OS even when the process is killed)."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise BusyError(
                f"another soundsearch index or reindex (pid {holder}) is writing to {home}; wait for it to finish"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
