"""Applying an entity's pending writes to its file in one atomic replacement."""

from __future__ import annotations

import io
from pathlib import Path

from syncd_csv.append import append_bytes
from syncd_csv.files import CsvSource, Format, atomic_write, cells_of, csv_writer, record_id
from syncd_csv.layout import Layout
from syncd_csv.pending import PendingWrites


def apply_pending(
    path: Path,
    source: CsvSource | None,
    layout: Layout,
    pending: PendingWrites,
    delimiter: str,
) -> list[list[str]]:
    """Write ``pending`` into the file ``source`` was opened from (None: the file does
    not exist yet) and return the rows written with new content.

    Creates alone are appended in place, all or nothing (see :mod:`.append`), without
    reading the file; otherwise the file is streamed through row by row into a new
    file that replaces the old one atomically. A rewrite that changes nothing
    (deleting rows that are already gone) leaves the file untouched.
    """
    pending.relayout(layout.header)
    if source is not None and source.header is not None and pending.only_creates():
        return _append(path, source, pending, delimiter)
    return _rewrite(path, source, layout, pending, delimiter)


def _append(
    path: Path, source: CsvSource, pending: PendingWrites, delimiter: str
) -> list[list[str]]:
    """Add the created rows at the end of the file, in place (see :mod:`.append`)."""
    created = list(pending.creates.values())
    fmt = source.format
    out = io.BytesIO()
    if not source.ends_with_line_break():
        out.write(fmt.lineterminator.encode())
    with csv_writer(out, delimiter, fmt, bom=False) as writer:
        writer.writerows(created)
    append_bytes(path, source.stat.st_size, out.getvalue())
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
