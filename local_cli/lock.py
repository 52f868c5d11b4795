"""One writer per home folder: an exclusive lock held by the commands that change the index.

Two `ingest` runs on one ``--home`` would embed everything twice and race on the index files. The lock
is ``fcntl.flock`` on ``<home>/write.lock``: the kernel drops it when its process ends, however it
ends, so a killed run never leaves a stale lock behind. The file records who holds it, for the message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path

LOCK_FILE = "write.lock"


class LockHeld(Exception):
    """Another process holds the lock; ``holder`` says which (as it wrote it)."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} is held by {holder or 'another process'}")
        self.path = path
        self.holder = holder


@contextlib.contextmanager
def write_lock(
    home: Path, command: str, *, wait: bool = False, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the home's write lock for the block. Held elsewhere: :class:`LockHeld`, or with ``wait``
    block until it is free (``on_wait`` is told who holds it first)."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            if not wait:
                raise LockHeld(path, holder) from None
            if on_wait is not None:
                on_wait(holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} ({command})".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    try:
        return os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        return ""
