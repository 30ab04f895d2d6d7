"""Writes to one entity table, each batch in one transaction (see :mod:`.batch`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Integer, bindparam, delete, func, insert, select, update

from syncd.kit.sqlbulk import insert_rows
from syncd.plugin.connector import Create, Delete, ErrorKind, RecordError, Update, WriteResult

from .batch import CHUNK, PendingRow, Redo, invalid, not_found, run_batch
from .database import Database
from .markers import deleted_marker, live_marker, stamp_now, version_of
from .schema import EntityTable
from .updates import update_exact, update_fast
from .values import CoercionError


class Writer:
    """Creates, updates and deletes rows of one entity table."""

    def __init__(self, db: Database, table: EntityTable) -> None:
        self.db = db
        self.table = table
        #: how many rows have ids from ``first`` to ``last`` (built once: it is asked
        #: after every batch of creates)
        self._count_ids = (
            select(func.count())
            .select_from(table.table)
            .where(table.id.between(bindparam("first"), bindparam("last")))
        )

    # -- create -------------------------------------------------------------------------

    def create(self, items: Sequence[Create]) -> list[WriteResult]:
        """Insert new rows; the database assigns their ids."""
        results: dict[int, WriteResult] = {}
        rows: list[PendingRow] = []
        stamp = self._stamp()
        for index, item in enumerate(items):
            try:
                values = self.table.row_values(item.fields)
            except CoercionError as error:
                results[index] = invalid(None, str(error))
                continue
            rows.append(PendingRow(index, None, None, self._new_row(values, stamp, item.key)))
        fast = self._insert_rowids if self._rowid_ids() else self._insert
        results.update(run_batch(self.db, rows, fast, self._insert))
        return [results[i] for i in range(len(items))]

    def _rowid_ids(self) -> bool:
        """True for a SQLite table whose id is its rowid (``INTEGER PRIMARY KEY``):
        SQLite numbers a multi-row insert consecutively, so its ids need no RETURNING
        (which SQLAlchemy can only send there one row at a time)."""
        column = self.table.id
        primary = list(self.table.table.primary_key.columns)
        return (
            self.db.dialect_name == "sqlite"
            and primary == [column]
            and isinstance(column.type, Integer)
        )

    def _insert_rowids(
        self, conn: Connection, rows: Sequence[PendingRow]
    ) -> dict[int, WriteResult]:
        """One executemany per column set; the ids are the consecutive rowids the
        statement produced, checked by counting them (else :class:`Redo`)."""
        # grouped by their columns in the order given (rows built alike list them alike)
        groups: dict[tuple[str, ...], list[PendingRow]] = {}
        for row in rows:
            groups.setdefault(tuple(row.values), []).append(row)
        column = self.table.id
        results: dict[int, WriteResult] = {}
        for columns, group in groups.items():
            if column.name in columns or not columns:
                raise Redo()
            insert_rows(conn, self.table.table, [row.values for row in group])
            last = conn.exec_driver_sql("SELECT last_insert_rowid()").scalar_one()
            first = last - len(group) + 1
            count = conn.execute(self._count_ids, {"first": first, "last": last}).scalar_one()
            if count != len(group):
                raise Redo()
            # one create batch carries one stamp, so its rows share one version
            version = self._version(group[0])
            for offset, row in enumerate(group):
                results[row.index] = WriteResult(id=str(first + offset), version=version)
        return results

    def _new_row(self, values: dict[str, Any], stamp: Any, key: str) -> dict[str, Any]:
        if self.table.created_key is not None:
            values[self.table.created_key.name] = key
        if self.table.updated_at is not None:
            values[self.table.updated_at.name] = stamp
        flag = self.table.deleted
        if flag is not None and flag.name not in values and live_marker(flag) is not None:
            values[flag.name] = live_marker(flag)
        return values

    def _insert(self, conn: Connection, rows: Sequence[PendingRow]) -> dict[int, WriteResult]:
        groups: dict[tuple[str, ...], list[PendingRow]] = {}
        for row in rows:
            groups.setdefault(tuple(sorted(row.values)), []).append(row)
        ids: dict[int, Any] = {}
        for columns, group in groups.items():
            ids.update(
                zip((r.index for r in group), self._insert_group(conn, columns, group), strict=True)
            )
        return {row.index: self._created(ids[row.index], row) for row in rows}

    def _insert_group(
        self, conn: Connection, columns: tuple[str, ...], rows: list[PendingRow]
    ) -> list[Any]:
        table = self.table.table
        if self.db.insert_returning and columns:
            statement = insert(table).returning(self.table.id, sort_by_parameter_order=True)
            return list(conn.execute(statement, [row.values for row in rows]).scalars())
        if self.db.engine.dialect.insert_returning:
            statement = insert(table).returning(self.table.id)
            return [conn.execute(statement, row.values).scalar_one() for row in rows]
        return [
            _first(conn.execute(insert(table), row.values).inserted_primary_key) for row in rows
        ]

    def _created(self, row_id: Any, row: PendingRow) -> WriteResult:
        if row_id is None:
            message = f"column {self.table.id.name}: the database generated no id"
            return WriteResult(error=RecordError(ErrorKind.INVALID, message))
        return WriteResult(id=str(row_id), version=self._version(row))

    def _version(self, row: PendingRow) -> str | None:
        """The version a row written with these values has (from its stamp)."""
        stamp_col = self.table.updated_at
        return version_of(row.values.get(stamp_col.name) if stamp_col is not None else None)

    # -- update -------------------------------------------------------------------------

    def update(self, items: Sequence[Update]) -> list[WriteResult]:
        """Write the given fields (only those) onto existing live rows; optimistic when
        a version is given and the table has a stamp column."""
        results: dict[int, WriteResult] = {}
        rows: list[PendingRow] = []
        for index, item in enumerate(items):
            key = self.table.key(item.id)
            if key is None:
                results[index] = not_found(self.table.entity, item.id)
                continue
            try:
                values = self.table.row_values(item.fields)
            except CoercionError as error:
                results[index] = invalid(item.id, str(error))
                continue
            rows.append(PendingRow(index, key, item.id, values, item.version))
        results.update(run_batch(self.db, rows, self._update_fast, self._update_exact))
        return [results[i] for i in range(len(items))]

    def _update_fast(self, conn: Connection, rows: Sequence[PendingRow]) -> dict[int, WriteResult]:
        return update_fast(conn, self.table, rows)

    def _update_exact(self, conn: Connection, rows: Sequence[PendingRow]) -> dict[int, WriteResult]:
        return update_exact(conn, self.table, rows)

    # -- delete -------------------------------------------------------------------------

    def delete(self, items: Sequence[Delete]) -> list[WriteResult]:
        """Delete rows (or mark them deleted); a row already gone counts as deleted."""
        results: dict[int, WriteResult] = {}
        rows: list[PendingRow] = []
        for index, item in enumerate(items):
            key = self.table.key(item.id)
            if key is None:
                results[index] = WriteResult(id=item.id)
            else:
                rows.append(PendingRow(index, key, item.id))
        operation = self._hard_delete if self.table.deleted is None else self._soft_delete
        results.update(run_batch(self.db, rows, operation))
        return [results[i] for i in range(len(items))]

    def _hard_delete(self, conn: Connection, rows: Sequence[PendingRow]) -> dict[int, WriteResult]:
        for start in range(0, len(rows), CHUNK):
            keys = [row.key for row in rows[start : start + CHUNK]]
            conn.execute(delete(self.table.table).where(self.table.id.in_(keys)))
        return {row.index: WriteResult(id=row.record_id) for row in rows}

    def _soft_delete(self, conn: Connection, rows: Sequence[PendingRow]) -> dict[int, WriteResult]:
        flag = self.table.deleted
        assert flag is not None
        values: dict[str, Any] = {flag.name: deleted_marker(flag)}
        stamp = self._stamp()
        if self.table.updated_at is not None:
            values[self.table.updated_at.name] = stamp
        changed: set[str] = set()
        for start in range(0, len(rows), CHUNK):
            keys = [row.key for row in rows[start : start + CHUNK]]
            live = self.table.id.in_(keys) & self.table.live()
            changed.update(
                str(k) for k in conn.execute(select(self.table.id).where(live)).scalars()
            )
            conn.execute(update(self.table.table).where(live).values(values))
        version = version_of(stamp)
        return {
            row.index: WriteResult(row.record_id, version if str(row.key) in changed else None)
            for row in rows
        }

    # -- shared -------------------------------------------------------------------------

    def _stamp(self) -> Any:
        return stamp_now(self.table.updated_at) if self.table.updated_at is not None else None


def _first(key: Sequence[Any] | None) -> Any:
    """The id in an inserted row's primary key (None when the database gave none)."""
    return key[0] if key is not None else None
