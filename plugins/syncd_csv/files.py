"""Streaming reads and atomic rewrites of one CSV file.

Nothing here holds a whole file in memory: reads hand out a row iterator, and writes
go to a temporary file in the same directory that replaces the original with
:func:`os.replace` only once it is complete and on disk, so a crash leaves either the
old file or the new one, never half of one.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from syncd.connector import ConfigurationError

#: The csv module's (and RFC 4180's) line terminator, used for files we create.
DEFAULT_LINETERMINATOR = "\r\n"
_SNIFF_BYTES = 1 << 16
_COPY_CHUNK = 1 << 20

#: What identifies one version of a file: (mtime_ns, size, inode), None when missing.
FileToken = tuple[int, int, int] | None


@dataclass(frozen=True, slots=True)
class Format:
    """How a file is encoded, so that a rewrite looks like the original: whether it
    starts with a UTF-8 byte order mark, and which line terminator it uses."""

    bom: bool = False
    lineterminator: str = DEFAULT_LINETERMINATOR

    @classmethod
    def sniff(cls, head: bytes) -> Format:
        """Detect the format from the first bytes of a file."""
        newline = head.find(b"\n")
        if newline > 0 and head[newline - 1 : newline] == b"\r":
            terminator = "\r\n"
        elif newline >= 0:
            terminator = "\n"
        elif b"\r" in head:
            terminator = "\r"
        else:
            terminator = DEFAULT_LINETERMINATOR
        return cls(bom=head.startswith(codecs.BOM_UTF8), lineterminator=terminator)


def file_token(stat: os.stat_result | None) -> FileToken:
    """The version stamp of a file as :func:`os.stat` saw it (None when missing)."""
    if stat is None:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


def stat_file(path: Path) -> os.stat_result | None:
    """Stat a CSV file; None when it does not exist yet, an error when its directory
    does not exist either (a misspelt ``path`` must not look like an empty table)."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        _require_directory(path)
        return None


def _require_directory(path: Path) -> None:
    if not path.parent.is_dir():
        raise ConfigurationError(f"directory {path.parent} does not exist")


class CsvSource:
    """An open CSV file being read: its stat, format, header and remaining rows."""

    def __init__(self, path: Path, binary: BinaryIO, delimiter: str) -> None:
        self.path = path
        self.stat = os.fstat(binary.fileno())
        self.format = Format.sniff(binary.read(_SNIFF_BYTES))
        binary.seek(0)
        self._text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
        #: Data rows after the header, as lists of cells; consumed once.
        self.rows: Iterator[list[str]] = csv.reader(self._text, delimiter=delimiter)
        #: The first non-blank row, or None for an empty file.
        self.header: list[str] | None = next((row for row in self.rows if row), None)

    @property
    def token(self) -> FileToken:
        """The version stamp of the file being read, taken before reading it."""
        return file_token(self.stat)

    def copy_to(self, out: BinaryIO, lineterminator: str) -> None:
        """Copy the file's bytes unchanged to ``out``, making sure they end with a line
        break so that rows can be appended. ``rows`` cannot be used afterwards."""
        binary = self._text.detach()
        binary.seek(0)
        shutil.copyfileobj(binary, out, _COPY_CHUNK)
        if binary.tell():
            binary.seek(-1, os.SEEK_END)
            if binary.read(1) not in (b"\n", b"\r"):
                out.write(lineterminator.encode())


@contextmanager
def open_source(path: Path, delimiter: str) -> Iterator[CsvSource | None]:
    """Open a CSV file for a streaming read; None when it does not exist yet.

    Undecodable or malformed content is reported as :class:`ConfigurationError` (an
    operator must fix the file) rather than as a traceback from the csv module.
    """
    try:
        binary = open(path, "rb")  # noqa: SIM115 - closed by the with block below
    except FileNotFoundError:
        _require_directory(path)
        yield None
        return
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from None
    with binary:
        try:
            yield CsvSource(path, binary, delimiter)
        except UnicodeDecodeError as exc:
            raise ConfigurationError(f"{path} is not valid UTF-8: {exc.reason}") from None
        except csv.Error as exc:
            raise ConfigurationError(f"{path} is not a readable CSV file: {exc}") from None


class AtomicFile:
    """A temporary file next to ``path`` that replaces it on :meth:`commit`.

    Use it through :func:`atomic_write`; set ``unchanged`` to keep the original.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
        # 0o666 lets the umask decide, as for any new file; mkstemp would force 0o600.
        fd = os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        self.out: BinaryIO = open(fd, "wb")  # noqa: SIM115 - closed by commit/discard
        #: Set when the new content turned out equal to the old: nothing is replaced.
        self.unchanged = False

    def commit(self) -> None:
        """Make the written bytes durable and put them in place of the original."""
        self.out.flush()
        os.fsync(self.out.fileno())
        self.out.close()
        with suppress(FileNotFoundError):
            shutil.copymode(self.path, self.temp)
        os.replace(self.temp, self.path)
        _fsync_directory(self.path.parent)

    def discard(self) -> None:
        """Throw the temporary file away, leaving the original untouched."""
        self.out.close()
        with suppress(FileNotFoundError):
            os.unlink(self.temp)


@contextmanager
def atomic_write(path: Path) -> Iterator[AtomicFile]:
    """Write a replacement for ``path``: committed when the block ends normally (unless
    marked ``unchanged``), discarded when it raises, so no temporary file is left."""
    atomic = AtomicFile(path)
    try:
        yield atomic
    except BaseException:
        atomic.discard()
        raise
    if atomic.unchanged:
        atomic.discard()
        return
    try:
        atomic.commit()
    except BaseException:
        atomic.discard()
        raise


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a directory; the rename still holds
        pass
    finally:
        os.close(fd)


@contextmanager
def csv_writer(out: BinaryIO, delimiter: str, fmt: Format, *, bom: bool) -> Iterator[Any]:
    """A csv writer with minimal quoting that encodes rows as UTF-8 into ``out``
    (with a leading byte order mark when ``bom``), in the file's line terminator."""
    text = io.TextIOWrapper(out, encoding="utf-8-sig" if bom else "utf-8", newline="")
    try:
        yield csv.writer(text, delimiter=delimiter, lineterminator=fmt.lineterminator)
        text.flush()
    finally:
        text.detach()
