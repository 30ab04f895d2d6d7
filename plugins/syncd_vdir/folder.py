"""File-level work on a vdir folder: stat snapshots and atomic writes."""

from __future__ import annotations

import base64
import os
import tempfile
import zlib
from dataclasses import dataclass
from hashlib import blake2b
from pathlib import Path

from syncd.connector import ConnectorError


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


def write_atomic(path: Path, text: str) -> str:
    """Replace ``path`` with ``text`` atomically (temp file, fsync, rename); return the
    new version."""
    fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return file_version(path.stat())
