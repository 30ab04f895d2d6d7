"""Rows a CSV listing cannot read, or reads but distrusts.

A listing that silently skips a row looks complete, and the engine would infer the
deletion of the record the row holds. So every row a listing leaves out is reported
as a :class:`~syncd.plugin.connector.ListingProblem`: a row without an id, a row with more
cells than the header, and a quoted cell that is not a proper one.

The worst case is a stray quote character at the start of a cell: the csv module
reads it as the start of a quoted cell that runs to the next quote in the file,
swallowing every row in between into one cell (and to the end of the file if there
is no other quote). A quoted cell that spans lines is therefore checked (such cells
are rare, so this costs nothing on the usual rows):

* read again strictly, it must close properly: its closing quote followed by a
  delimiter or a line break, and before the end of the file;
* its lines must not look like rows of the file: a line whose id cell is the id of
  a row the listing knew, or (with the header's three or more columns) two or more
  lines, most of its lines, cut into exactly as many cells as the header has;
* a cell with more than :data:`MANY_LINE_BREAKS` line breaks that passes those
  checks is still reported, as a warning, and its record is synced as read.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Collection
from dataclasses import dataclass

from syncd.plugin.connector import ListingProblem
from syncd_csv.files import physical_lines

#: Line breaks in one cell beyond which a cell is worth a warning (addresses and
#: notes hold a few).
MANY_LINE_BREAKS = 20


@dataclass(slots=True)
class RowCheck:
    """Checks the rows of one file: ``width`` header cells, the id in column
    ``id_col``, and ``known`` giving the ids of rows a listing knew before (read
    only when a quoted cell spans lines)."""

    where: str
    id_name: str
    width: int
    id_col: int
    delimiter: str
    known: Callable[[], Collection[str]]

    def unread(self, cells: list[str], line: int) -> ListingProblem | None:
        """The problem of a row that yields no record (None: a blank row, nothing lost)."""
        if any(cell.strip() for cell in cells):
            return ListingProblem(
                f"{self.where} line {line}", f"the row has no id (column {self.id_name!r})"
            )
        return None

    def misshapen(self, cells: list[str], line: int, rid: str) -> ListingProblem | None:
        """The problem of a row with more (non-empty) cells than the header."""
        if len(cells) > self.width and any(cells[self.width :]):
            reason = f"the row has {len(cells)} cells where the header has {self.width}"
            return ListingProblem(f"{self.where} line {line}", reason, rid)
        return None

    def quoted(self, raw: str, cells: list[str], line: int) -> ListingProblem | None:
        """The problem of a record read through the csv module whose text spans lines
        or ends the file (None when it is sound)."""
        spans = physical_lines(raw)
        rid = cells[self.id_col] if len(cells) > self.id_col else None
        rid = rid if rid and rid.strip() else None
        where = f"{self.where} line {line}"
        try:
            next(csv.reader(io.StringIO(raw, newline=""), delimiter=self.delimiter, strict=True))
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                reason = "a quoted cell runs from here to the end of the file unclosed"
            else:
                reason = f"a quoted cell over {spans} lines does not close properly"
            return ListingProblem(where, f"{reason} (a stray quote character?)", rid)
        if spans < 2:
            return None
        inner = [part for cell in cells for part in _inner_lines(cell)]
        if not inner:
            return None
        if self._swallowed(inner):
            reason = (
                f"a quoted cell over {spans} lines holds lines that look like rows of"
                " the file (a stray quote character?)"
            )
            return ListingProblem(where, reason, rid)
        if len(inner) > MANY_LINE_BREAKS:
            reason = (
                f"a quoted cell holds {len(inner)} line breaks: check that a stray"
                " quote character did not swallow rows"
            )
            return ListingProblem(where, reason, rid, warning=True)
        return None

    def _swallowed(self, lines: list[str]) -> bool:
        """True when ``lines`` (within one record's cells) look like rows of the file."""
        delimiter, width = self.delimiter, self.width
        shaped = sum(1 for text in lines if text.count(delimiter) == width - 1)
        if width >= 3 and shaped >= 2 and 2 * shaped > len(lines):
            return True
        known = self.known()
        if not known:
            return False
        col = self.id_col
        for text in lines:
            parts = text.split(delimiter, col + 1)
            if len(parts) > col + 1 and parts[col] in known:
                return True
        return False


def _inner_lines(cell: str) -> list[str]:
    """The lines of a cell after its first line break (empty for a one-line cell)."""
    if "\n" not in cell and "\r" not in cell:
        return []
    return io.StringIO(cell, newline="").readlines()[1:]
