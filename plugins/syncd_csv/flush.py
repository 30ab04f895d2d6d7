"""Applying an entity's pending writes to its file in one atomic replacement."""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

from syncd.kit.files import WRITE_CHUNK, chunks
from syncd_csv.append import append_bytes
from syncd_csv.files import (
    CsvSource,
    Format,
    atomic_write,
    cells_of,
    csv_writer,
    encode_each,
    encode_rows,
    record_id,
)
from syncd_csv.guard import FileChanged
from syncd_csv.layout import Layout
from syncd_csv.pending import PendingWrites
from syncd_csv.scan import Found


def apply_pending(
    path: Path,
    source: CsvSource | None,
    layout: Layout,
    pending: PendingWrites,
    delimiter: str,
    found: Found | None = None,
) -> list[list[str]]:
    """Write ``pending`` into the file ``source`` was opened from (None: the file does
    not exist yet) and return the rows written with new content.

    Creates alone are appended in place, all or nothing (see :mod:`.append`), without
    reading the file. Otherwise a new file replaces the old one atomically: when
    ``found`` (the rows read by id from this very version of the file) knows where
    every row to change sits, the rest is copied as byte ranges; else the file is
    streamed through row by row. A rewrite that changes nothing (deleting rows that
    are already gone) leaves the file untouched.
    """
    pending.relayout(layout.header)
    if source is not None and source.header is not None:
        if pending.only_creates():
            return _append(path, source, pending, delimiter)
        if found is not None and _located(source, pending, found):
            return _splice(path, source, layout, pending, delimiter, found)
    return _rewrite(path, source, layout, pending, delimiter)


def _located(source: CsvSource, pending: PendingWrites, found: Found) -> bool:
    """True when ``found`` describes the file ``source`` reads and holds the place of
    every row the pending updates and deletes touch (or knows it is not there)."""
    if found.token != source.token:
        return False
    spans = found.spans
    return all(
        spans.get(rid) is not None or rid in found.missing
        for rid in (*pending.updates, *pending.deletes)
    )


def _splice(
    path: Path,
    source: CsvSource,
    layout: Layout,
    pending: PendingWrites,
    delimiter: str,
    found: Found,
) -> list[list[str]]:
    """Copy the file as byte ranges around the rows to change, write those rows anew
    (or drop them), then append the created rows.

    The old version's cached pages are released as the copy passes them (see
    :class:`_Output`): the new file is about to replace it."""
    fmt = source.format
    written: list[list[str]] = []
    edits: list[tuple[int, int, list[str] | None]] = []
    changed = False
    for rid in (*pending.updates, *pending.deletes):
        span = found.spans.get(rid)
        if span is None:  # a deletion of a row that is already gone
            continue
        row = found.rows[rid]
        new = found.updated.get(rid) if rid in pending.updates else None
        if new is None:
            new = pending.rewrite(row, layout)
        if new is not None and new == layout.padded(row):
            continue
        changed = True
        if new is not None:
            written.append(new)
        edits.append((*span, new))
    edits.sort(key=lambda edit: edit[0])
    created = list(pending.creates.values())
    with atomic_write(path, source.token) as atomic:
        if not changed and not created:
            atomic.unchanged = True
            return written
        out = _Output(atomic.out, source.fileno())
        terminator = fmt.lineterminator
        rewritten = [new for *_, new in edits if new is not None]
        lines = iter(encode_each(rewritten, delimiter, terminator))
        position = 0
        for offset, length, new in edits:
            out.copy(position, offset - position)
            if new is not None:
                out.write(next(lines).encode())
            position = offset + length
        out.copy(position, source.stat.st_size - position)
        out.release_copied()
        if created:
            if out.last not in (b"", b"\n", b"\r"):
                out.write(terminator.encode())
            out.write(encode_rows(created, delimiter, terminator).encode())
    return [*written, *created]


#: Bytes of the old file copied between two releases of its cached pages.
RELEASE_STEP = 1 << 20


class _Output:
    """The new file's bytes, copied from the old file (open as ``old``, the very
    version that was read and located) or written, remembering the last byte and
    handed on in pieces of at most :data:`~syncd.kit.files.WRITE_CHUNK` bytes.

    The pages of ``old`` that are copied are dropped from the page cache every
    :data:`RELEASE_STEP` bytes (``POSIX_FADV_DONTNEED``, where the system has it), as
    a streaming copy does: once the new file replaces it, nothing reads the old
    version again, and so a rewrite holds one file's worth of cache, not two. The
    new file's pages then reuse memory the old one's just freed, which on our
    virtual machines is also quicker to hand out than memory new to their host: in a
    benchmark sequence, writing a 13 MB file took 25-30 ms without the release and
    7-8 ms with it."""

    def __init__(self, out: BinaryIO, old: int) -> None:
        self.out = out
        self.old = old
        self.last = b""
        #: where the copy last read up to in the old file
        self.position = 0
        #: the old file's bytes before this offset are released
        self.released = 0

    def write(self, data: bytes) -> None:
        """Add ``data`` to the new file."""
        if len(data) > WRITE_CHUNK:
            for piece in chunks(data):
                self.out.write(piece)
        elif data:
            self.out.write(data)
        if data:
            self.last = data[-1:]

    def copy(self, start: int, count: int) -> None:
        """Copy ``count`` bytes of the old file from ``start`` (read, not mapped: a file
        cut short meanwhile by another program gives fewer bytes, where a mapping
        would kill the process)."""
        old = self.old
        while count > 0:
            chunk = os.pread(old, min(count, WRITE_CHUNK), start)
            if not chunk:
                break
            self.write(chunk)
            count -= len(chunk)
            start += len(chunk)
        self.position = start
        if start - self.released >= RELEASE_STEP:
            self.release_copied()

    def release_copied(self) -> None:
        """Drop the cached pages of the old file up to where the copy has read."""
        end = self.position
        advise = getattr(os, "posix_fadvise", None)  # not on macOS or Windows
        if end > self.released and advise is not None:
            with suppress(OSError):  # advice only: a file system may not take it
                advise(self.old, self.released, end - self.released, _DONTNEED)
        self.released = end


_DONTNEED = getattr(os, "POSIX_FADV_DONTNEED", 4)


def _append(
    path: Path, source: CsvSource, pending: PendingWrites, delimiter: str
) -> list[list[str]]:
    """Add the created rows at the end of the file, in place (see :mod:`.append`)."""
    created = list(pending.creates.values())
    fmt = source.format
    text = encode_rows(created, delimiter, fmt.lineterminator)
    if not source.ends_with_line_break():
        text = fmt.lineterminator + text
    append_bytes(path, text.encode(), source.token)
    return created


def _rewrite(
    path: Path,
    source: CsvSource | None,
    layout: Layout,
    pending: PendingWrites,
    delimiter: str,
) -> list[list[str]]:
    """Stream the records through, dropping deleted ones and replacing updated ones,
    then append the created rows; unknown columns and row order are kept, and rows
    nothing touched are copied byte for byte.

    The file may have changed since the rows to change were read (that is why it is
    streamed through): each such row must still be as it was read, and each row to
    update still there, else :class:`~syncd_csv.guard.FileChanged`. Rows others
    added, removed or edited around them are kept as they are now."""
    written: list[list[str]] = []
    fmt = source.format if source is not None else Format()
    changed = source is None or source.header is None
    touched = pending.deletes | pending.updates.keys()
    met: set[str] = set()
    id_col = layout.id_col
    with (
        atomic_write(path, source.token if source is not None else None) as atomic,
        csv_writer(atomic.out, delimiter, fmt, bom=fmt.bom) as writer,
    ):
        writer.writerow(layout.header)
        last = None
        copy = writer.write
        for raw, cells in source.records if source is not None else ():
            rid = record_id(raw, cells, delimiter, id_col)
            if rid not in touched:
                copy(raw)
                last = raw
                continue
            writer.end_raw(last)
            last = None
            row = cells_of(raw, cells, delimiter)
            if rid not in met:  # the first row with the id is the one that was read
                met.add(rid)
                if not pending.as_read(rid, row):
                    raise FileChanged(path)
            new = pending.rewrite(row, layout)
            if new is None:
                changed = True
                continue
            written.append(new)
            changed = changed or new != layout.padded(row)
            writer.writerow(new)
        if not pending.updates.keys() <= met:
            raise FileChanged(path)  # a row to update is gone
        writer.end_raw(last)
        writer.writerows(pending.creates.values())
        written.extend(pending.creates.values())
        atomic.unchanged = not changed and not pending.creates
    return written
