"""Reflection of the configured tables and the mapping of fields to their columns."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Computed,
    DefaultClause,
    Identity,
    MetaData,
    Row,
    Table,
    inspect,
    text,
    true,
)
from sqlalchemy.engine.interfaces import ReflectedColumn
from sqlalchemy.exc import NoSuchTableError

from syncd.entities import BOOLEAN_FIELDS, CANONICAL_FIELDS
from syncd.plugin.connector import ConfigurationError, Record

from .database import Database
from .markers import STAMP_TYPES, live_clause, modified_at, version_of
from .settings import SqlEntitySettings, SqlSettings
from .values import (
    CoercionError,
    column_writer,
    python_type,
    read_text,
    read_value,
    to_column,
)


@dataclass(frozen=True)
class EntityTable:
    """One entity type's table: its key columns, its field -> column mapping, and the
    conversions between its rows and records.

    Rows are read with :attr:`selected` columns: the id, the stamp and the soft-delete
    flag (when configured) first, then each mapped column once.
    """

    entity: str
    table: Table
    id: Column[Any]
    updated_at: Column[Any] | None
    deleted: Column[Any] | None
    columns: Mapping[str, Column[Any]]
    #: the column that keeps each created row's create key (None: not configured)
    created_key: Column[Any] | None = None
    selected: Sequence[Column[Any]] = field(init=False)
    #: (field, position in a selected row) of text fields, read inline
    _text_positions: Sequence[tuple[str, int]] = field(init=False)
    #: (field, position in a selected row) of boolean fields
    _other_positions: Sequence[tuple[str, int]] = field(init=False)
    #: field -> (column name, writer of a value)
    _writers: Mapping[str, tuple[str, Callable[[Any], Any]]] = field(init=False)
    #: field -> column name, for the text columns (whose writer passes text through)
    _text_columns: Mapping[str, str] = field(init=False)

    def __post_init__(self) -> None:
        keys = [c for c in (self.id, self.updated_at, self.deleted) if c is not None]
        mapped = list({col.name: col for col in self.columns.values()}.values())
        selected = keys + mapped
        position = {column.name: index for index, column in enumerate(selected)}
        text = [
            (name, position[col.name])
            for name, col in self.columns.items()
            if name not in BOOLEAN_FIELDS
        ]
        other = [
            (name, position[col.name])
            for name, col in self.columns.items()
            if name in BOOLEAN_FIELDS
        ]
        writers = {name: (col.name, column_writer(col)) for name, col in self.columns.items()}
        object.__setattr__(self, "selected", selected)
        object.__setattr__(self, "_text_positions", text)
        object.__setattr__(self, "_other_positions", other)
        object.__setattr__(self, "_writers", writers)
        texts = {name: col.name for name, col in self.columns.items() if python_type(col) is str}
        object.__setattr__(self, "_text_columns", texts)

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields this table maps."""
        return tuple(self.columns)

    def live(self) -> ColumnElement[bool]:
        """SQL that keeps rows not soft-deleted (always true without the column)."""
        return live_clause(self.deleted) if self.deleted is not None else true()

    def stamp(self, row: Row[*tuple[Any, ...]]) -> Any:
        """The row's modification stamp (None when not configured)."""
        return row[1] if self.updated_at is not None else None

    def deleted_value(self, row: Row[*tuple[Any, ...]]) -> Any:
        """The row's soft-delete value (None when not configured)."""
        return row[2 if self.updated_at is not None else 1] if self.deleted is not None else None

    def record(self, row: Row[*tuple[Any, ...]]) -> Record:
        """A record from a row read with :attr:`selected`."""
        stamp = self.stamp(row)
        # read_text, inlined for the usual text value: this runs for every column of
        # every row read
        fields = {
            name: (value if value.strip() else None)
            if type(value := row[pos]) is str
            else read_text(name, value)
            for name, pos in self._text_positions
        }
        for name, pos in self._other_positions:
            fields[name] = read_value(name, row[pos])
        # positional (id, fields, version, modified_at): built for every row read; a
        # NULL id is no id (the engine refuses the record), not the text "None"
        rid = row[0]
        return Record(
            "" if rid is None else str(rid), fields, version_of(stamp), modified_at(stamp)
        )

    def key(self, record_id: str) -> Any:
        """A record id as the id column's value, or None when it cannot be one (then
        no row has that id)."""
        try:
            return to_column(record_id, self.id)
        except CoercionError:
            return None

    def fits(self, stamp: Any, row_id: Any) -> bool:
        """Whether a watermark's values have the stamp and id columns' types (a cursor
        from before a configuration change may not). A settled watermark has no id."""
        pairs = ((stamp, self.updated_at), (row_id, self.id))
        for value, column in pairs:
            kind = python_type(column) if column is not None else None
            if value is None and column is self.id:
                continue
            if kind is not None and not isinstance(value, kind):
                return False
        return True

    def row_values(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Column values for the mapped ones among ``fields``, coerced to the columns'
        types; unmapped fields are ignored. Raises :class:`CoercionError`."""
        values: dict[str, Any] = {}
        writers = self._writers
        texts = self._text_columns
        for name, value in fields.items():
            # the text column's writer, inlined for text and None (it passes them on)
            column = texts.get(name)
            if column is not None and (value is None or type(value) is str):
                values[column] = value
                continue
            writer = writers.get(name)
            if writer is not None:
                values[writer[0]] = writer[1](value)
        return values


def reflect(db: Database, settings: SqlSettings) -> dict[str, EntityTable]:
    """Reflect the columns and primary key of every configured table and map each
    entity onto its table; a missing table or column is a :class:`ConfigurationError`
    naming it.

    Only what the connector uses is asked for: ``MetaData.reflect`` also reads every
    index, foreign key, unique and check constraint, which took two thirds of the
    reflection and a fifth of a run that had nothing to sync."""
    metadata = MetaData(schema=settings.schema_)
    with db.connect() as conn:
        inspector = inspect(conn)
        for name in sorted({spec.table for spec in settings.entities.values()}):
            try:
                columns = inspector.get_columns(name, schema=settings.schema_)
            except NoSuchTableError:
                continue  # _entity_table names the missing table
            if not columns:
                continue
            key = inspector.get_pk_constraint(name, schema=settings.schema_)
            primary = set(key.get("constrained_columns") or ())
            Table(name, metadata, *(_column(c, c["name"] in primary) for c in columns))
    return {
        entity: _entity_table(db.connector, entity, spec, metadata, settings.schema_)
        for entity, spec in settings.entities.items()
    }


def _column(reflected: ReflectedColumn, primary_key: bool) -> Column[Any]:
    """A table column as the inspector describes it, with what inserts rely on: its
    type, nullability, auto-increment, server default, computed or identity values.
    SQLite reports ``id INTEGER PRIMARY KEY`` as nullable; declared keys never are,
    and SQLAlchemy's multi-row INSERT .. RETURNING refuses a nullable key column."""
    extras: list[Any] = []
    default = reflected.get("default")
    if default is not None:
        extras.append(DefaultClause(text(default) if isinstance(default, str) else default))
    computed = reflected.get("computed")
    if computed:
        extras.append(Computed(**computed))
    identity = reflected.get("identity")
    if identity:
        extras.append(Identity(**identity))
    return Column(
        reflected["name"],
        reflected["type"],
        *extras,
        primary_key=primary_key,
        nullable=False if primary_key else reflected["nullable"],
        autoincrement=reflected.get("autoincrement", "auto"),
    )


def _entity_table(
    connector: str, entity: str, spec: SqlEntitySettings, metadata: MetaData, schema: str | None
) -> EntityTable:
    qualified = f"{schema}.{spec.table}" if schema else spec.table
    table = metadata.tables.get(qualified)
    if table is None:
        raise ConfigurationError(
            f"connector {connector!r}: table {qualified!r} for {entity} does not exist"
        )

    def column(name: str, role: str) -> Column[Any]:
        if name not in table.c:
            raise ConfigurationError(
                f"connector {connector!r}: table {qualified!r} has no column {name!r} ({role})"
            )
        return table.c[name]

    id_column = column(spec.id, "id")
    stamp = column(spec.updated_at, "updated_at") if spec.updated_at else None
    deleted = column(spec.deleted, "deleted") if spec.deleted else None
    created_key = column(spec.created_key, "created_key") if spec.created_key else None
    if created_key is not None and python_type(created_key) is not str:
        raise ConfigurationError(
            f"connector {connector!r}: column {qualified}.{created_key.name}"
            f" ({created_key.type}) cannot hold a create key (use a text column)"
        )
    if stamp is not None and python_type(stamp) not in STAMP_TYPES:
        raise ConfigurationError(
            f"connector {connector!r}: column {qualified}.{stamp.name} ({stamp.type}) cannot"
            " hold a modification stamp (use a timestamp, number or text column)"
        )
    reserved = {c.name for c in (id_column, stamp, deleted, created_key) if c is not None}
    columns: dict[str, Column[Any]] = {}
    for name, native in spec.fields.items():
        if native in reserved:
            raise ConfigurationError(
                f"connector {connector!r}: field {name!r} cannot map to column {native!r} of"
                f" {qualified!r}: it is the table's id, updated_at, deleted or created_key column"
            )
        columns[name] = column(native, f"field {name}")
    for name in CANONICAL_FIELDS[entity]:
        if name not in columns and name in table.c and name not in reserved:
            columns[name] = table.c[name]
    return EntityTable(entity, table, id_column, stamp, deleted, columns, created_key)
