"""Writing a CSV file only while it is still the version syncd read.

Other programs may write the same file while a run flushes. A flush therefore

1. takes an exclusive advisory lock (:func:`fcntl.flock`) on a lock file beside the
   CSV file, ``.NAME.lock``, which is never replaced or removed, before it opens the
   file, and holds it until its write is complete (it also locks the open CSV file
   itself, for programs that lock that instead). A cooperating program holds the
   lock file's lock while it changes the file (``flock books/.contacts.csv.lock
   CMD``, or ``fcntl.flock`` on it), and syncd waits for it, :data:`LOCK_WAIT`
   seconds at most;
2. checks, once locked and again just before it appends or replaces anything, that
   the file is still the version it read: same inode, size and modification time
   (:func:`same_version`). Otherwise nothing is written and the flush reads the file
   again (:class:`FileChanged`), a few times, before giving up with
   :class:`FileChangedError`, which fails the run as retryable: the engine records
   nothing of the batch, so the next run does it again.

A program that ignores the lock can still slip a change in between the last check
and the write (microseconds); one that takes it cannot.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from syncd.plugin.connector import UnavailableError

#: What identifies one version of a file: (mtime_ns, size, inode), None when missing.
FileToken = tuple[int, int, int] | None

#: Seconds a flush waits for another program to release the lock.
LOCK_WAIT = 10.0
_POLL = 0.01
#: The lock files this thread holds (see :func:`locked`).
_held = threading.local()


class FileChanged(Exception):
    """The file is no longer the version the flush read: nothing was written."""


class FileChangedError(UnavailableError):
    """A CSV file kept changing while syncd was writing it; the run will try again."""


class FileLockedError(UnavailableError):
    """Another program held a CSV file's lock for longer than :data:`LOCK_WAIT`."""


def lock_path(path: Path) -> Path:
    """The lock file that guards ``path``."""
    return path.with_name(f".{path.name}.lock")


def file_token(stat: os.stat_result | None) -> FileToken:
    """The version stamp of a file as :func:`os.stat` saw it (None when missing)."""
    if stat is None:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


def current_token(path: Path) -> FileToken:
    """The version stamp of the file now at ``path`` (None when there is none)."""
    try:
        return file_token(os.stat(path))
    except FileNotFoundError:
        return None


def same_version(path: Path, token: FileToken) -> None:
    """Raise :class:`FileChanged` unless ``path`` is still the version ``token`` stamps
    (for None: unless there is still no file)."""
    if current_token(path) != token:
        raise FileChanged(path)


@contextmanager
def locked(path: Path, shown: str) -> Iterator[None]:
    """Hold the write lock of ``path`` (its lock file's) for the block; a thread that
    holds it already just goes on. ``shown`` names the file in errors."""
    held: set[Path] = _held.__dict__.setdefault("paths", set())
    if path in held:
        yield
        return
    fd = os.open(lock_path(path), os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        _lock(fd, shown)
        held.add(path)
        try:
            yield
        finally:
            held.discard(path)
    finally:
        os.close(fd)  # releases the lock


def lock_open_file(fd: int, shown: str) -> None:
    """Lock the open CSV file ``fd`` too, for programs that lock the file itself; the
    lock goes when the file is closed."""
    _lock(fd, shown)


def _lock(fd: int, shown: str) -> None:
    """Take the exclusive lock of ``fd``, waiting at most :data:`LOCK_WAIT` seconds. A
    file system without locks (some network file systems) is written unlocked: the
    version checks still hold."""
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise FileLockedError(
                    f"{shown} is locked by another program; the run will try again"
                ) from None
            time.sleep(_POLL)
        except OSError:
            return
