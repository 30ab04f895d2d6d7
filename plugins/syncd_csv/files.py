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
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from syncd.kit.files import PRIVATE_MODE, WRITE_CHUNK, fsync_directory
from syncd.plugin.connector import ConfigurationError
from syncd_csv.append import recover
from syncd_csv.guard import FileToken, file_token, same_version

#: The csv module's (and RFC 4180's) line terminator, used for files we create.
DEFAULT_LINETERMINATOR = "\r\n"
_SNIFF_BYTES = 1 << 16
#: Bytes read at a time by :meth:`CsvSource.line_blocks` and :meth:`~CsvSource.holds_quote`:
#: a block's lines stay in the CPU's caches while they are cut, matched or hashed
#: (1 MiB blocks made the id scan a fifth slower).
BLOCK = 1 << 18
_COPY_CHUNK = 1 << 20


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


def stat_file(path: Path) -> os.stat_result | None:
    """Stat a CSV file; None when it does not exist yet, an error when its directory
    does not exist either (a misspelt ``path`` must not look like an empty table).
    An append a crash interrupted is finished (or dropped) first."""
    recover(path)
    try:
        return os.stat(path)
    except FileNotFoundError:
        _require_directory(path)
        return None


def byte_length(raw: str) -> int:
    """The length of a record's raw text in the file, in bytes (UTF-8)."""
    return len(raw) if raw.isascii() else len(raw.encode())


def physical_lines(raw: str) -> int:
    """How many lines of the file a record's raw text spans."""
    if not raw:
        return 0
    breaks = raw.count("\n") + raw.count("\r") - raw.count("\r\n")
    return breaks + (0 if raw.endswith(("\n", "\r")) else 1)


def blank(raw: str) -> bool:
    """True for a record that is only a line break (the csv module reads it as ``[]``)."""
    return not raw.rstrip("\r\n")


def cells_of(raw: str, cells: list[str] | None, delimiter: str) -> list[str]:
    """The cells of a record from :attr:`CsvSource.records`."""
    return raw.rstrip("\r\n").split(delimiter) if cells is None else cells


def record_id(raw: str, cells: list[str] | None, delimiter: str, column: int) -> str | None:
    """The cell at ``column`` of a record from :attr:`CsvSource.records` (None when the
    row is too short), without splitting more of a plain line than needed."""
    if cells is not None:
        return cells[column] if len(cells) > column else None
    parts = raw.split(delimiter, column + 1)
    if len(parts) <= column:
        return None
    return parts[column] if len(parts) > column + 1 else parts[column].rstrip("\r\n")


def _require_directory(path: Path) -> None:
    if not path.parent.is_dir():
        raise ConfigurationError(f"directory {path.parent} does not exist")


class CsvSource:
    """An open CSV file being read: its stat, format, header and remaining records.

    Records come as their raw text plus, when it took the csv module to split them
    (a line with a quote character, which may continue on the next lines), their
    cells. Most lines of most files hold no quote: for those the cells are simply the
    line split at the delimiter, done only when someone asks (see :func:`cells_of`),
    and the raw text lets callers hash, find or copy a row without parsing it.
    """

    def __init__(self, path: Path, binary: BinaryIO, delimiter: str) -> None:
        self.path = path
        self.delimiter = delimiter
        self.stat = os.fstat(binary.fileno())
        self.format = Format.sniff(binary.read(_SNIFF_BYTES))
        binary.seek(0)
        self._text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
        self._lines: Iterator[str] = iter(self._text)
        # A quoted line goes into the slot, the csv reader takes it from there and any
        # continuation lines from the file, which are noted in _captured.
        self._slot: list[str] = []
        self._captured: list[str] = []
        self._reader = csv.reader(self._feed(), delimiter=delimiter)
        #: Data records after the header as (raw text, cells or None); consumed once.
        self.records: Iterator[tuple[str, list[str] | None]] = self._split()
        #: The first non-blank row, or None for an empty file.
        self.header: list[str] | None = None
        #: The byte offset of the first data record (after the header).
        self.data_start = len(codecs.BOM_UTF8) if self.format.bom else 0
        #: The number of the line the first data record starts on (from 1).
        self.data_line = 1
        for raw, cells in self.records:
            self.data_start += byte_length(raw)
            self.data_line += physical_lines(raw)
            if not blank(raw):
                self.header = cells_of(raw, cells, delimiter)
                break

    def fileno(self) -> int:
        """The descriptor of the file as opened (the version being read)."""
        return self._text.buffer.fileno()

    def read_bytes(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes of the file at ``offset``, from the file as opened (the
        same version the records come from), without moving the record reader."""
        return os.pread(self._text.buffer.fileno(), size, offset)

    def line_blocks(self) -> Iterator[tuple[int, bytes]]:
        """The data records' bytes (after the header) in blocks of whole lines, about
        :data:`BLOCK` bytes each, with the offset in the file where each block starts: C
        loops can then cut, hash or match a block's lines all at once. A ``\r`` that
        ends what was read is kept for the next block, where a ``\n`` may follow it.
        Does not move the record reader."""
        offset = position = self.data_start
        rest = b""
        size = BLOCK
        while True:
            data = self.read_bytes(position, size)
            position += len(data)
            text = rest + data if rest else data
            if not data:
                if text:
                    yield offset, text
                return
            cut = max(text.rfind(b"\n"), text.rfind(b"\r", 0, len(text) - 1)) + 1
            if not cut:
                rest = text
                continue
            yield offset, text[:cut]
            offset += cut
            rest = text[cut:]

    def holds_quote(self) -> bool:
        """True when a data record holds a quote character (then only the csv module can
        tell where records end and what their cells are)."""
        position = self.data_start
        while data := self.read_bytes(position, BLOCK):
            if b'"' in data:
                return True
            position += len(data)
        return False

    @property
    def rows(self) -> Iterator[list[str]]:
        """The remaining data records as lists of cells (blank lines included)."""
        delimiter = self.delimiter
        for raw, cells in self.records:
            yield raw.rstrip("\r\n").split(delimiter) if cells is None else cells

    def _feed(self) -> Iterator[str]:
        slot, captured, lines = self._slot, self._captured, self._lines
        while True:
            if slot:
                yield slot.pop()
                continue
            line = next(lines, None)
            if line is None:
                return
            captured.append(line)
            yield line

    @property
    def lines(self) -> Iterator[str]:
        """The remaining lines, for loops that handle plain lines themselves: a line
        holding a quote character must go through :meth:`quoted` (which may consume
        more lines) to become a record. :attr:`records` does exactly that."""
        return self._lines

    def quoted(self, line: str) -> tuple[str, list[str]]:
        """The record that starts with ``line`` (which holds a quote): its raw text,
        continuation lines included, and its cells as the csv module reads them."""
        self._slot.append(line)
        captured = self._captured
        captured.clear()
        cells = next(self._reader, None)
        if cells is None:  # cannot happen: the slot holds a non-empty line
            cells = []
        return (line + "".join(captured) if captured else line), cells

    @property
    def continued(self) -> int:
        """How many lines after its first the record :meth:`quoted` read last spans."""
        return len(self._captured)

    def _split(self) -> Iterator[tuple[str, list[str] | None]]:
        quoted = self.quoted
        for line in self._lines:
            if '"' not in line:
                yield line, None
            else:
                yield quoted(line)

    @property
    def token(self) -> FileToken:
        """The version stamp of the file being read, taken before reading it."""
        return file_token(self.stat)

    def ends_with_line_break(self) -> bool:
        """True when the file is empty or its last byte ends a line, so that rows can
        be appended as they are."""
        if not self.stat.st_size:
            return True
        binary = self._text.buffer
        position = binary.tell()
        binary.seek(-1, os.SEEK_END)
        last = binary.read(1)
        binary.seek(position)
        return last in (b"\n", b"\r")


@contextmanager
def open_source(path: Path, delimiter: str) -> Iterator[CsvSource | None]:
    """Open a CSV file for a streaming read; None when it does not exist yet.

    Undecodable or malformed content is reported as :class:`ConfigurationError` (an
    operator must fix the file) rather than as a traceback from the csv module.
    An append a crash interrupted is finished (or dropped) first.
    """
    recover(path)
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

    def __init__(self, path: Path, expect: FileToken) -> None:
        self.path = path
        #: The version of ``path`` this file may replace (None: there must be none).
        self.expect = expect
        self.temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
        # Owner-only whatever the umask: the file holds contact data. A file that is
        # replaced passes its own mode on (see commit).
        fd = os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
        os.fchmod(fd, PRIVATE_MODE)  # a umask such as 0o277 would take more away
        # closed by commit or discard; its buffer holds one WRITE_CHUNK
        self.out: BinaryIO = open(fd, "wb", buffering=WRITE_CHUNK)  # noqa: SIM115
        #: Set when the new content turned out equal to the old: nothing is replaced.
        self.unchanged = False

    def commit(self) -> None:
        """Make the written bytes durable and put them in place of the original,
        provided that is still the version ``expect`` stamps (else
        :class:`~syncd_csv.guard.FileChanged`, and the original stays)."""
        self.out.flush()
        os.fsync(self.out.fileno())
        self.out.close()
        with suppress(FileNotFoundError):
            shutil.copymode(self.path, self.temp)
        same_version(self.path, self.expect)
        os.replace(self.temp, self.path)
        fsync_directory(self.path.parent)

    def discard(self) -> None:
        """Throw the temporary file away, leaving the original untouched."""
        self.out.close()
        with suppress(FileNotFoundError):
            os.unlink(self.temp)


@contextmanager
def atomic_write(path: Path, expect: FileToken) -> Iterator[AtomicFile]:
    """Write a replacement for the version ``expect`` of ``path`` (None: a new file):
    committed when the block ends normally (unless marked ``unchanged``) and ``path``
    is still that version, discarded otherwise, so no temporary file is left."""
    atomic = AtomicFile(path, expect)
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


class RowWriter:
    """Writes a CSV file's new content: rows as cells (see :func:`encode_rows`: minimal
    quoting, the file's line terminator), and records read from the old file copied
    verbatim as their raw text, so untouched rows keep every byte."""

    def __init__(self, text: io.TextIOWrapper, delimiter: str, fmt: Format) -> None:
        self._text = text
        self._delimiter = delimiter
        self._terminator = fmt.lineterminator
        #: ``write(raw)``: copy raw record text (see :meth:`end_raw`).
        self.write = text.write

    def writerow(self, row: Sequence[str]) -> None:
        """Write one row of cells."""
        self._text.write(encode_rows([row], self._delimiter, self._terminator))

    def writerows(self, rows: Iterable[Sequence[str]]) -> None:
        """Write rows of cells."""
        self._text.write(encode_rows(list(rows), self._delimiter, self._terminator))

    def end_raw(self, last: str | None) -> None:
        """After raw copies whose last record was ``last``: add the line break the
        old file's last line may lack, so that rows can follow."""
        if last and not last.endswith(("\n", "\r")):
            self._text.write(self._terminator)


def encode_rows(rows: Sequence[Sequence[str]], delimiter: str, terminator: str) -> str:
    """Rows as CSV text with minimal quoting and ``terminator`` after each.

    A cell is quoted when it holds the delimiter, a quote or a line break of either
    kind (``\r`` or ``\n``, whatever the file's terminator: the csv module quotes only
    the characters of its own terminator, so a bare ``\r`` in an LF file would split
    the row when read back), and so is a row that is one empty cell. Most rows need
    no quoting at all: those are joined directly, checked for a whole batch at once
    (a first export writes every row of the file)."""
    if not rows:
        return ""
    lines = _plain_lines(rows, delimiter)
    if lines is None:
        lines = [_quoted_line(row, delimiter) for row in rows]
    return terminator.join(lines) + terminator


def _quoted_line(row: Sequence[str], delimiter: str) -> str:
    """One row's cells joined by ``delimiter``, each quoted where it must be."""
    if len(row) == 1 and not row[0]:
        return '""'  # else the row would read back as a blank line
    return delimiter.join(
        '"' + cell.replace('"', '""') + '"'
        if '"' in cell or delimiter in cell or "\n" in cell or "\r" in cell
        else cell
        for cell in row
    )


def encode_each(rows: Sequence[Sequence[str]], delimiter: str, terminator: str) -> list[str]:
    """:func:`encode_rows` of each row, checked in one go (a rewrite splices the
    rows it changed in one at a time)."""
    lines = _plain_lines(rows, delimiter) if rows else []
    if lines is None:
        return [encode_rows([row], delimiter, terminator) for row in rows]
    return [line + terminator for line in lines]


def _plain_lines(rows: Sequence[Sequence[str]], delimiter: str) -> list[str] | None:
    """The rows' cells joined by ``delimiter``, when no row needs quoting: no cell
    holds the delimiter, a quote or a line break, and no row is a single cell (the
    csv module quotes an empty one); else None."""
    lines = list(map(delimiter.join, rows))
    text = "\n".join(lines)
    if (
        '"' not in text
        and "\r" not in text
        and text.count("\n") == len(lines) - 1
        and text.count(delimiter) == sum(map(len, rows)) - len(rows)
        and min(map(len, rows)) > 1
    ):
        return lines
    return None


@contextmanager
def csv_writer(out: BinaryIO, delimiter: str, fmt: Format, *, bom: bool) -> Iterator[RowWriter]:
    """A :class:`RowWriter` that encodes as UTF-8 into ``out`` (with a leading byte
    order mark when ``bom``)."""
    text = io.TextIOWrapper(out, encoding="utf-8-sig" if bom else "utf-8", newline="")
    try:
        yield RowWriter(text, delimiter, fmt)
        text.flush()
    finally:
        text.detach()
