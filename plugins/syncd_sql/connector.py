"""The ``sql`` connector: one table per entity type in any database SQLAlchemy reaches."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import ClassVar

from syncd.plugin.connector import (
    ConfigurationError,
    Connector,
    ConnectorSettings,
    Create,
    CursorExpiredError,
    Delete,
    Page,
    Record,
    Update,
    WriteResult,
)

from .created import CreatedRows
from .cursor import decode as decode_cursor
from .database import Database, parse_url
from .reads import Reader
from .schema import EntityTable, reflect
from .settings import SqlSettings
from .writes import Writer


class SqlConnector(Connector):
    """Syncs contacts and companies kept in SQL tables, through SQLAlchemy Core.

    With an ``updated_at`` column it reads incrementally from a (stamp, id) watermark
    and stamps every write; without one every listing is complete and the engine diffs.
    The engine and reflected tables live for one run (``open`` to ``close``).
    """

    type: ClassVar[str] = "sql"
    Settings = SqlSettings
    batch_size: ClassVar[int] = 1000

    settings: SqlSettings

    def __init__(self, name: str, settings: ConnectorSettings, base_dir: Path) -> None:
        super().__init__(name, settings, base_dir)
        self._db: Database | None = None
        self._tables: dict[str, EntityTable] = {}
        self._indexes: dict[tuple[str, str], dict[str, list[str]]] = {}

    # -- lifecycle ----------------------------------------------------------------------

    def open(self) -> None:
        """Create the engine and reflect the configured tables."""
        url = parse_url(self.name, self.settings.url.get_secret_value(), self.base_dir)
        db = Database(self.name, url)
        try:
            self._tables = reflect(db, self.settings)
        except BaseException:
            db.dispose()
            raise
        self._db = db

    def close(self) -> None:
        """Dispose of the engine and forget the per-run lookup indexes."""
        if self._db is not None:
            self._db.dispose()
        self._db = None
        self._tables = {}
        self._indexes = {}

    # -- capabilities -------------------------------------------------------------------

    def entities(self) -> Collection[str]:
        """The configured entity types."""
        return tuple(self.settings.entities)

    def incremental(self, entity: str) -> bool:
        """True when the entity's table has a modification-stamp column."""
        return self.settings.entities[entity].updated_at is not None

    def fields(self, entity: str) -> Collection[str]:
        """The fields mapped explicitly plus canonical fields with a same-name column."""
        return self._table(entity).fields

    # -- reads --------------------------------------------------------------------------

    def changes(self, entity: str, cursor: str | None, *, full: bool = False) -> Iterator[Page]:
        """Pages of records changed after the cursor's watermark, or all live records
        (tables without a stamp column are always listed in full)."""
        reader = self._reader(entity)
        mark = None
        if cursor is not None and not full and self.incremental(entity):
            try:
                mark = decode_cursor(cursor)
            except ValueError as exc:
                raise CursorExpiredError(f"connector {self.name!r}: {exc}") from None
            if not mark.empty and not reader.table.fits(mark.stamp, mark.id):
                raise CursorExpiredError(
                    f"connector {self.name!r}: cursor does not fit table {reader.table.table.name}"
                )
        return reader.changes(mark, full)

    def get(self, entity: str, ids: Sequence[str]) -> dict[str, Record]:
        """Live records by id."""
        return self._reader(entity).get(ids)

    def find(self, entity: str, field: str, keys: Collection[str]) -> Mapping[str, list[Record]]:
        """Live records by normalised field value, from an index built on first use."""
        if field not in self._table(entity).columns:
            return {}
        reader = self._reader(entity)
        index = self._indexes.get((entity, field))
        if index is None:
            index = self._indexes[(entity, field)] = reader.index(field)
        return reader.find(index, keys)

    # -- writes -------------------------------------------------------------------------

    def create(self, entity: str, items: Sequence[Create]) -> list[WriteResult]:
        """Insert rows; ids come from the database."""
        return self._writer(entity).create(items)

    def update(self, entity: str, items: Sequence[Update]) -> list[WriteResult]:
        """Write the given fields onto existing rows."""
        return self._writer(entity).update(items)

    def delete(self, entity: str, items: Sequence[Delete]) -> list[WriteResult]:
        """Delete rows, or mark them deleted when a soft-delete column is configured."""
        return self._writer(entity).delete(items)

    # -- interrupted creates ------------------------------------------------------------

    def created(self, entity: str, keys: Sequence[str]) -> dict[str, Record] | None:
        """Rows by the create key kept in the entity's ``created_key`` column, if any."""
        return self._created(entity).by_key(keys)

    def create_mark(self, entity: str) -> str | None:
        """The table's highest id, where the database numbers new rows upwards and no
        ``created_key`` column is configured."""
        return self._created(entity).mark()

    def created_since(self, entity: str, mark: str) -> Iterator[list[Record]] | None:
        """Pages of the live rows numbered above ``mark``."""
        return self._created(entity).since(mark)

    # -- helpers ------------------------------------------------------------------------

    def _database(self) -> Database:
        if self._db is None:
            raise RuntimeError(f"connector {self.name!r} is not open")
        return self._db

    def _table(self, entity: str) -> EntityTable:
        self._database()
        try:
            return self._tables[entity]
        except KeyError:
            raise ConfigurationError(
                f"connector {self.name!r} has no table for entity {entity!r}"
            ) from None

    def _reader(self, entity: str) -> Reader:
        table = self._table(entity)
        return Reader(self._database(), table, self.settings.page_size, self.settings.overlap)

    def _created(self, entity: str) -> CreatedRows:
        return CreatedRows(self._database(), self._table(entity), self.settings.page_size)

    def _writer(self, entity: str) -> Writer:
        return Writer(self._database(), self._table(entity))
