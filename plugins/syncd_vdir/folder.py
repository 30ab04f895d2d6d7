"""File-level work on a vdir folder: stat snapshots and atomic writes."""

from __future__ import annotations

import base64
import ctypes
import os
import sys
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import blake2b
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


def snapshot_digest(versions: dict[str, str], salt: str) -> str:
    """A short cursor standing for one whole snapshot."""
    digest = blake2b(salt.encode(), digest_size=16)
    for name in sorted(versions):
        digest.update(f"{name}\0{versions[name]}\n".encode())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class FolderCursor:
    """A vdir cursor: the digest of one stat snapshot of the folder and the version
    of every card file in it (compressed), so the next listing can tell which cards
    changed without reading any that did not."""

    digest: str
    files: dict[str, str]

    def encode(self) -> str:
        """The cursor text."""
        lines = "\n".join(f"{rid}\t{version}" for rid, version in self.files.items())
        packed = base64.b64encode(zlib.compress(lines.encode(), 1)).decode("ascii")
        return f"{_PREFIX}{self.digest}|{packed}"

    @classmethod
    def decode(cls, cursor: str | None) -> FolderCursor | None:
        """The cursor's content; None for no cursor or one of another format (an
        older cursor: the folder is listed completely once)."""
        if not cursor or not cursor.startswith(_PREFIX):
            return None
        try:
            digest, packed = cursor[len(_PREFIX) :].split("|", 1)
            text = zlib.decompress(base64.b64decode(packed)).decode()
        except (ValueError, zlib.error):
            return None
        files = dict(line.split("\t", 1) for line in text.split("\n")) if text else {}
        return cls(digest, files)


_PREFIX = "files1|"


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
