"""File-level work on a vdir folder: stat snapshots and atomic writes."""

from __future__ import annotations

import ctypes
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from syncd.connector import ConnectorError
from syncd.fsutil import fsync_directory


def file_version(stat: os.stat_result) -> str:
    """A file's version: its modification time (ns) and size."""
    return f"{stat.st_mtime_ns:x}-{stat.st_size:x}"


def snapshot(directory: Path, suffix: str) -> dict[str, str]:
    """id (file name without ``suffix``) -> version of every card file, by stat only."""
    found: dict[str, str] = {}
    try:
        entries = os.scandir(directory)
    except OSError as exc:
        raise ConnectorError(f"cannot list {directory}: {exc.strerror}") from None
    with entries:
        for entry in entries:
            name = entry.name
            if not name.endswith(suffix) or name.startswith("."):
                continue
            try:
                if entry.is_file():
                    found[name[: -len(suffix)]] = file_version(entry.stat())
            except FileNotFoundError:  # removed while we listed
                continue
    return found


def write_all(files: list[tuple[Path, str]]) -> list[str]:
    """Replace several files in one folder, each atomically: every new content goes to
    a temporary file, all of them are made durable at once (one ``syncfs`` of the file
    system where the platform has it, else an fsync per file), and only then is each
    renamed into place; returns the new versions in order. A crash leaves every file
    either as it was or complete, never half-written."""
    if not files:
        return []
    temps: list[str] = []
    try:
        for path, text in files:
            fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=path.parent)
            temps.append(tmp)
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
                if not _SYNCFS:
                    handle.flush()
                    os.fsync(handle.fileno())
        if _SYNCFS:
            _sync_file_system(files[0][0].parent)
        for (path, _), tmp in zip(files, temps, strict=True):
            os.replace(tmp, path)
        temps.clear()
    finally:
        for tmp in temps:
            Path(tmp).unlink(missing_ok=True)
    fsync_directory(files[0][0].parent)
    return [file_version(path.stat()) for path, _ in files]


def _load_syncfs() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        syncfs: Callable[[int], int] = libc.syncfs
    except (OSError, AttributeError):
        return None
    return syncfs


_SYNCFS = _load_syncfs() if sys.platform.startswith("linux") else None


def _sync_file_system(directory: Path) -> None:
    assert _SYNCFS is not None
    fd = os.open(directory, os.O_RDONLY)
    try:
        if _SYNCFS(fd) != 0:
            error = ctypes.get_errno()
            raise ConnectorError(f"cannot sync {directory}: {os.strerror(error)}")
    finally:
        os.close(fd)
