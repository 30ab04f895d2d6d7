"""The write buffer of one entity: creates, updates and deletes waiting for a flush."""

from __future__ import annotations

from syncd_csv.layout import Layout, row_version


class PendingWrites:
    """Writes to one file that :meth:`CsvConnector.flush` has not applied yet.

    Created rows are kept as cells laid out against ``header``; updates as column
    name -> new cell, so they still land in the right column if the header changed
    on disk before the flush.
    """

    def __init__(self, header: tuple[str, ...]) -> None:
        self.header = header
        #: New id -> cells, in creation order.
        self.creates: dict[str, list[str]] = {}
        #: Existing id -> column name -> new cell.
        self.updates: dict[str, dict[str, str]] = {}
        self.deletes: set[str] = set()
        #: Existing id -> its row as read when an update or delete of it was checked.
        self.seen: dict[str, list[str]] = {}

    def __len__(self) -> int:
        return len(self.creates) + len(self.updates) + len(self.deletes)

    def only_creates(self) -> bool:
        """True when the flush can append to the file instead of rewriting it."""
        return not self.updates and not self.deletes

    def relayout(self, header: tuple[str, ...]) -> None:
        """Move the created rows' cells to the columns of another header, by name;
        columns the new header lacks are dropped, new ones are empty."""
        if header == self.header:
            return
        old = {name: index for index, name in reversed(list(enumerate(self.header)))}
        moves = [old.get(name) for name in header]
        for rid, cells in self.creates.items():
            self.creates[rid] = ["" if i is None else cells[i] for i in moves]
        self.header = header

    def current(self, row: list[str], layout: Layout) -> list[str]:
        """A file row as it will be after the flush: a padded copy with the pending
        updates of its id applied."""
        cells = layout.padded(row)
        for name, cell in self.updates.get(cells[layout.id_col], {}).items():
            index = layout.positions.get(name)
            if index is not None:
                cells[index] = cell
        return cells

    def saw(self, rid: str, row: list[str]) -> None:
        """Note the file row an update or delete of ``rid`` was checked against."""
        self.seen[rid] = row

    def as_read(self, rid: str, row: list[str]) -> bool:
        """True when ``row`` (of ``rid``, in the file being rewritten) holds what the
        writes of ``rid`` were checked against (or nothing was checked)."""
        seen = self.seen.get(rid)
        return seen is None or seen is row or row_version(seen) == row_version(row)

    def update(self, rid: str, changes: dict[int, str], layout: Layout) -> None:
        """Record new cells (column index -> cell) for an existing row."""
        self.updates.setdefault(rid, {}).update(
            (layout.header[col], cell) for col, cell in changes.items()
        )

    def delete(self, rid: str) -> None:
        """Forget a pending create of ``rid``, or mark its row for deletion."""
        if self.creates.pop(rid, None) is None:
            self.deletes.add(rid)
            self.updates.pop(rid, None)

    def rewrite(self, row: list[str], layout: Layout) -> list[str] | None:
        """A file row as the flush writes it: None when deleted, the updated cells
        when it has pending updates, else the row itself."""
        rid = layout.row_id(row)
        if rid is None:
            return row
        if rid in self.deletes:
            return None
        if rid in self.updates:
            return self.current(row, layout)
        return row
