"""File-level work on a vdir folder: stat snapshots, reads and atomic writes.

Paths are plain strings here: a listing or a first sync touches every card, and
:mod:`pathlib` would cost more per file than the system calls themselves.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import sys
from collections.abc import Callable

from syncd.kit.files import fsync_directory, write_bytes
from syncd.plugin.connector import ConnectorError

_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


def file_version(stat: os.stat_result) -> str:
    """A file's version: its modification time (ns) and size."""
    return f"{stat.st_mtime_ns:x}-{stat.st_size:x}"


def snapshot(directory: str | os.PathLike[str], suffix: str) -> dict[str, str]:
    """id (file name without ``suffix``) -> version of every card file, by stat only."""
    found: dict[str, str] = {}
    try:
        entries = os.scandir(directory)
    except OSError as exc:
        raise ConnectorError(f"cannot list {directory}: {exc.strerror}") from None
    cut = -len(suffix)
    with entries:
        for entry in entries:
            name = entry.name
            if not name.endswith(suffix) or name.startswith("."):
                continue
            try:
                if entry.is_file():
                    found[name[:cut]] = file_version(entry.stat())
            except FileNotFoundError:  # removed while we listed
                continue
    return found


def read_file(path: str) -> tuple[bytes, str] | None:
    """A file's content and the version it was read at, or None if it is gone."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        stat = os.fstat(fd)
        wanted = max(stat.st_size + 1, 4096)
        chunks = [os.read(fd, wanted)]
        # a short read of a regular file is its end; a full one may not be (the file
        # grew while we read it)
        if len(chunks[0]) == wanted:
            while chunks[-1]:
                chunks.append(os.read(fd, 65536))
    finally:
        os.close(fd)
    return b"".join(chunks), file_version(stat)


class _TempNames:
    """Names for temporary files no other process uses: hidden (so listings skip
    them), unique per process and write."""

    def __init__(self) -> None:
        self.pid = -1
        self.counter = itertools.count()
        self.prefix = ""

    def next(self, directory: str) -> str:
        if self.pid != os.getpid():  # a new process (fork): new names
            self.pid = os.getpid()
            self.prefix = f".syncd-{self.pid}-{os.urandom(4).hex()}-"
        return f"{directory}/{self.prefix}{next(self.counter)}.tmp"


_temp_names = _TempNames()


def _create_temp(directory: str) -> tuple[str, int]:
    """A new temporary file in ``directory``, open for writing: its path and descriptor."""
    while True:
        tmp = _temp_names.next(directory)
        try:
            return tmp, os.open(tmp, _TEMP_FLAGS, 0o600)
        except FileExistsError:  # left by a crashed process of the same pid
            continue


def write_all(directory: str, files: list[tuple[str, str]]) -> list[str]:
    """Replace several files (full paths) in ``directory``, each atomically: every
    new content goes to a temporary file, all of them are made durable at once (one
    ``syncfs`` of the file system where the platform has it, else an fsync per
    file), and only then is each renamed into place; returns the new versions in
    order. A crash leaves every file either as it was or complete, never
    half-written."""
    if not files:
        return []
    temps: list[str] = []
    versions: list[str] = []
    try:
        for _, text in files:
            data = text.encode()
            tmp, fd = _create_temp(directory)
            temps.append(tmp)
            try:
                write_bytes(fd, data)
                if not _SYNCFS:
                    os.fsync(fd)
                # a rename keeps the modification time: this is the final version
                versions.append(file_version(os.fstat(fd)))
            finally:
                os.close(fd)
        if _SYNCFS:
            _sync_file_system(directory)
        for (path, _), tmp in zip(files, temps, strict=True):
            os.replace(tmp, path)
        temps.clear()
    finally:
        for tmp in temps:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    fsync_directory(directory)
    return versions


def _load_syncfs() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        syncfs: Callable[[int], int] = libc.syncfs
    except (OSError, AttributeError):
        return None
    return syncfs


_SYNCFS = _load_syncfs() if sys.platform.startswith("linux") else None


def _sync_file_system(directory: str) -> None:
    assert _SYNCFS is not None
    fd = os.open(directory, os.O_RDONLY)
    try:
        if _SYNCFS(fd) != 0:
            error = ctypes.get_errno()
            raise ConnectorError(f"cannot sync {directory}: {os.strerror(error)}")
    finally:
        os.close(fd)
