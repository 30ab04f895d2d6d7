"""Finding rows by id in one pass, noting where each sits in the file.

Updates and deletes must read the rows they change (to check versions and compute
new ones); remembering the byte range of each row found lets the flush that follows
rewrite the file by copying everything else as byte ranges (see
:func:`syncd_csv.flush.apply_pending`) instead of going through it row by row again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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

    def covers(self, ids: set[str]) -> bool:
        """True when every id in ``ids`` was looked for (found or not) in this version."""
        return ids <= self.rows.keys() | self.missing


def scan(source: CsvSource, id_col: int, wanted: set[str], found: Found) -> None:
    """Read every remaining record of ``source`` once, noting the rows of ``wanted``
    ids (and the ids no row holds) in ``found``."""
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
