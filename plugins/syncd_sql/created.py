"""Finding the rows that interrupted creates made, where the database chose their ids.

Two ways, by what the table allows:

- a ``created_key`` column: every new row keeps the key it was created under, and is
  found by it (exact, whatever else happened to the table);
- ids the database hands out in increasing order (an integer key from a sequence,
  ``AUTO_INCREMENT`` or SQLite's rowid): the highest id before a batch is its mark, and
  the rows with a higher id are those created since, among which the engine recognises
  its own by the values it sent. Text or UUID ids have no such order: no mark.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import func, select

from syncd.plugin.connector import Record

from .database import Database
from .reads import CHUNK
from .schema import EntityTable
from .values import python_type


class CreatedRows:
    """Looks up the rows creates made in one entity table."""

    def __init__(self, db: Database, table: EntityTable, page_size: int) -> None:
        self.db = db
        self.table = table
        self.page_size = page_size

    def by_key(self, keys: Sequence[str]) -> dict[str, Record] | None:
        """Live rows by the create key they keep; None without a ``created_key``."""
        column = self.table.created_key
        if column is None:
            return None
        found: dict[str, Record] = {}
        wanted = list(dict.fromkeys(keys))
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            query = select(*self.table.selected, column).where(column.in_(chunk), self.table.live())
            for row in self.db.rows(query):
                found.setdefault(row[-1], self.table.record(row))
        return found

    def ordered_ids(self) -> bool:
        """Whether the database numbers new rows upwards: an integer id that is the
        table's whole primary key and that the database generates."""
        column = self.table.id
        return (
            python_type(column) is int
            and list(self.table.table.primary_key.columns) == [column]
            and column.autoincrement is not False
        )

    def mark(self) -> str | None:
        """The highest id now ("" for an empty table), or None when ids have no order
        or a ``created_key`` column makes marks needless."""
        if self.table.created_key is not None or not self.ordered_ids():
            return None
        highest = self.db.rows(select(func.max(self.table.id)))[0][0]
        return "" if highest is None else str(highest)

    def since(self, mark: str) -> Iterator[list[Record]] | None:
        """Pages of the live rows with an id above ``mark``; None when ids have no order
        or the mark is not one of :meth:`mark`'s."""
        if not self.ordered_ids():
            return None
        try:
            after: Any = int(mark) if mark else None
        except ValueError:
            return None
        return self._pages(after)

    def _pages(self, after: Any) -> Iterator[list[Record]]:
        base = select(*self.table.selected).where(self.table.live()).order_by(self.table.id)
        while True:
            query = base if after is None else base.where(self.table.id > after)
            rows = self.db.rows(query.limit(self.page_size))
            if rows:
                yield [self.table.record(row) for row in rows]
            if len(rows) < self.page_size:
                return
            after = rows[-1][0]
