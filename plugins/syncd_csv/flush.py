"""Applying an entity's pending writes to its file in one atomic replacement."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from syncd.fsutil import WRITE_CHUNK
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
    (or drop them), then append the created rows."""
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
    with atomic_write(path) as atomic, open(path, "rb") as old:
        if not changed and not created:
            atomic.unchanged = True
            return written
        out = _Output(atomic.out)
        terminator = fmt.lineterminator
        rewritten = [new for *_, new in edits if new is not None]
        lines = iter(encode_each(rewritten, delimiter, terminator))
        position = 0
        for offset, length, new in edits:
            out.copy(old, position, offset - position)
            if new is not None:
                out.write(next(lines).encode())
            position = offset + length
        out.copy(old, position, source.stat.st_size - position)
        if created:
            if out.last not in (b"", b"\n", b"\r"):
                out.write(terminator.encode())
            out.write(encode_rows(created, delimiter, terminator).encode())
    return [*written, *created]


class _Output:
    """The new file's bytes, remembering the last one written, handed on in pieces
    of at most :data:`~syncd.fsutil.WRITE_CHUNK` bytes."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.last = b""

    def write(self, data: bytes) -> None:
        if len(data) > WRITE_CHUNK:
            view = memoryview(data)
            for start in range(0, len(view), WRITE_CHUNK):
                self.out.write(view[start : start + WRITE_CHUNK])
        elif data:
            self.out.write(data)
        if data:
            self.last = data[-1:]

    def copy(self, old: BinaryIO, start: int, count: int) -> None:
        """Copy ``count`` bytes of ``old`` from ``start`` (read, not mapped: a file
        cut short meanwhile by another program gives fewer bytes, where a mapping
        would kill the process)."""
        old.seek(start)
        while count > 0:
            chunk = old.read(min(count, WRITE_CHUNK))
            if not chunk:
                break
            self.write(chunk)
            count -= len(chunk)


def _append(
    path: Path, source: CsvSource, pending: PendingWrites, delimiter: str
) -> list[list[str]]:
    """Add the created rows at the end of the file, in place (see :mod:`.append`)."""
    created = list(pending.creates.values())
    fmt = source.format
    text = encode_rows(created, delimiter, fmt.lineterminator)
    if not source.ends_with_line_break():
        text = fmt.lineterminator + text
    append_bytes(path, source.stat.st_size, text.encode())
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
    nothing touched are copied byte for byte."""
    written: list[list[str]] = []
    fmt = source.format if source is not None else Format()
    changed = source is None or source.header is None
    touched = pending.deletes | pending.updates.keys()
    id_col = layout.id_col
    with (
        atomic_write(path) as atomic,
        csv_writer(atomic.out, delimiter, fmt, bom=fmt.bom) as writer,
    ):
        writer.writerow(layout.header)
        last = None
        copy = writer.write
        for raw, cells in source.records if source is not None else ():
            if record_id(raw, cells, delimiter, id_col) not in touched:
                copy(raw)
                last = raw
                continue
            writer.end_raw(last)
            last = None
            row = cells_of(raw, cells, delimiter)
            new = pending.rewrite(row, layout)
            if new is None:
                changed = True
                continue
            written.append(new)
            changed = changed or new != layout.padded(row)
            writer.writerow(new)
        writer.end_raw(last)
        writer.writerows(pending.creates.values())
        written.extend(pending.creates.values())
        atomic.unchanged = not changed and not pending.creates
    return written
