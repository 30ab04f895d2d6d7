"""Finding rows by id in one pass, noting where each sits in the file.

Updates and deletes must read the rows they change (to check versions and compute
new ones); remembering the byte range of each row found lets the flush that follows
rewrite the file by copying everything else as byte ranges (see
:func:`syncd_csv.flush.apply_pending`) instead of going through it row by row again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import accumulate, compress, count, repeat
from operator import getitem, itemgetter, methodcaller
from typing import cast

from syncd_csv.files import CsvSource, FileToken, byte_length


@dataclass(slots=True)
class Found:
    """Rows of one version of a file (``token``) found by id in full passes."""

    token: FileToken
    #: id -> cells of the first row with that id
    rows: dict[str, list[str]] = field(default_factory=dict)
    #: id -> (byte offset, byte length) of its row; None when several rows hold the id
    spans: dict[str, tuple[int, int] | None] = field(default_factory=dict)
    #: ids looked for and not found
    missing: set[str] = field(default_factory=set)
    #: id -> the cells its row gets from the updates buffered so far, worked out from
    #: ``rows`` (so only for this version of the file)
    updated: dict[str, list[str]] = field(default_factory=dict)

    def covers(self, ids: set[str]) -> bool:
        """True when every id in ``ids`` was looked for (found or not) in this version."""
        return ids <= self.rows.keys() | self.missing


def scan(source: CsvSource, id_col: int, wanted: set[str], found: Found) -> None:
    """Read every remaining record of ``source`` once, noting the rows of ``wanted``
    ids (and the ids no row holds) in ``found``."""
    if id_col == 0 and wanted and scan_plain(source, wanted, found):
        return
    scan_lines(source, id_col, wanted, found)


def scan_plain(source: CsvSource, wanted: set[str], found: Found) -> bool:
    """:func:`scan` for the usual file, ids first and no quote anywhere, looking for
    ASCII ids: its lines are cut, measured and matched by C loops over blocks of
    bytes, not one Python step per line (a large file's update run spent a third of
    its time in :func:`scan_lines`). False, with nothing noted, for any other file.
    Other text may hold any character: UTF-8 never uses an ASCII byte inside
    another one, so it cannot hide a line break, a quote or an id.

    When the ids looked for all have one length (syncd's own keys do), a line is
    matched by its first bytes: the id and the delimiter, a line break, or nothing
    (a one-cell line). Otherwise each line is cut at its first delimiter, and a line
    without one (blank, or one cell) makes the file decline."""
    delimiter = source.delimiter
    if not delimiter.isascii():
        return False
    mark = delimiter.encode()
    if not all(map(str.isascii, wanted)):
        return False
    keys = {rid.encode(): rid for rid in wanted}
    lengths = {len(key) for key in keys}
    heads: dict[bytes, str] | None = None
    if len(lengths) == 1 and (width := lengths.pop()):
        head = slice(0, width + 1)
        heads = {key + end: rid for key, rid in keys.items() for end in (mark, b"\n", b"\r", b"")}
    hits: dict[str, tuple[int, bytes]] = {}
    shared: set[str] = set()
    for offset, part in source.line_blocks():
        if b'"' in part:
            return False
        lines = part.splitlines(keepends=True)
        if heads is not None:
            # getitem's stub gives a slice of bytes as Sequence[int]; it is bytes
            ids, lookup = cast("list[bytes]", list(map(getitem, lines, repeat(head)))), heads
        else:
            cut_lines = list(map(methodcaller("partition", mark), lines))
            if not all(map(itemgetter(1), cut_lines)):  # a line without the delimiter
                return False
            ids, lookup = list(map(itemgetter(0), cut_lines)), keys
        starts = list(accumulate(map(len, lines), initial=offset))
        for index in compress(count(), map(lookup.__contains__, ids)):
            rid = lookup[ids[index]]
            if rid in hits:
                shared.add(rid)
            else:
                hits[rid] = (starts[index], lines[index])
    rows, spans = found.rows, found.spans
    for rid, (start, line) in hits.items():
        rows[rid] = line.decode().rstrip("\r\n").split(delimiter)
        spans[rid] = None if rid in shared else (start, len(line))
    found.missing |= wanted - rows.keys()
    return True


def scan_lines(source: CsvSource, id_col: int, wanted: set[str], found: Found) -> None:
    """:func:`scan` for any file, a line at a time (quoted records through the csv
    module)."""
    delimiter = source.delimiter
    quoted = source.quoted
    rows, spans = found.rows, found.spans
    offset = source.data_start
    for raw in source.lines:
        if '"' in raw:
            raw, cells = quoted(raw)
            rid = cells[id_col] if len(cells) > id_col else None
        elif id_col == 0:  # the usual layout, and the quickest to read
            cells = None
            at = raw.find(delimiter)
            rid = raw[:at] if at >= 0 else raw.rstrip("\r\n")
        else:
            cells = None
            parts = raw.split(delimiter, id_col + 1)
            if len(parts) > id_col + 1:
                rid = parts[id_col]
            else:
                rid = parts[id_col].rstrip("\r\n") if len(parts) > id_col else None
        size = len(raw) if raw.isascii() else byte_length(raw)
        if rid in wanted:
            if rid in rows:
                spans[rid] = None
            else:
                rows[rid] = raw.rstrip("\r\n").split(delimiter) if cells is None else cells
                spans[rid] = (offset, size)
        offset += size
    found.missing |= wanted - rows.keys()
