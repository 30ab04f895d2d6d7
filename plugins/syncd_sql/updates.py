"""Updates of one entity table.

The fast statement sends each batch as executemany UPDATEs (one per set of columns)
and trusts it only when every row matched; otherwise the exact statement updates row
by row and tells a missing row (NOT_FOUND) from a changed one (CONFLICT).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Update, bindparam, select, update

from syncd.kit.sqlbulk import execute_many
from syncd.plugin.connector import WriteResult

from .batch import PendingRow, Redo, conflict, not_found
from .markers import stamp_now, version_of
from .schema import EntityTable
from .values import CoercionError, to_column

# Parameter names for the WHERE clause; SET parameters take the column names.
_KEY = "syncd_key_"
_VERSION = "syncd_version_"


def update_fast(
    conn: Connection, table: EntityTable, rows: Sequence[PendingRow]
) -> dict[int, WriteResult]:
    """Update rows with executemany; raise :class:`Redo` unless every row matched."""
    if not conn.dialect.supports_sane_multi_rowcount:
        raise Redo
    stamp = _stamp(table)
    results: dict[int, WriteResult] = {}
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        if not row.values:
            results[row.index] = update_one(conn, table, row, stamp)
            continue
        params = _params(table, row, stamp)
        groups.setdefault(tuple(sorted(params)), []).append(params)
        results[row.index] = WriteResult(id=row.record_id, version=version_of(stamp))
    for names, batch in groups.items():
        statement = _statement(table, optimistic=_VERSION in names)
        if execute_many(conn, statement, batch) != len(batch):
            raise Redo
    return results


def update_exact(
    conn: Connection, table: EntityTable, rows: Sequence[PendingRow]
) -> dict[int, WriteResult]:
    """Update rows one statement each, with a precise result per row."""
    stamp = _stamp(table)
    return {row.index: update_one(conn, table, row, stamp) for row in rows}


def update_one(conn: Connection, table: EntityTable, row: PendingRow, stamp: Any) -> WriteResult:
    """Update one row; NOT_FOUND when it is missing, CONFLICT when its stamp no longer
    matches the version the engine read."""
    stamp_col = table.updated_at
    optimistic = stamp_col is not None and row.version is not None
    where = [table.id == row.key, table.live()]
    if stamp_col is not None and row.version is not None:
        try:
            where.append(stamp_col == to_column(row.version, stamp_col))
        except CoercionError:
            return conflict(row.record_id)
    found, version = _apply(conn, table, row.values, where, stamp)
    if found:
        return WriteResult(id=row.record_id, version=version)
    if optimistic and _exists(conn, table, row.key):
        return conflict(row.record_id)
    return not_found(table.entity, row.record_id)


def _apply(
    conn: Connection,
    table: EntityTable,
    values: dict[str, Any],
    where: list[ColumnElement[bool]],
    stamp: Any,
) -> tuple[bool, str | None]:
    """Write ``values`` onto the row matching ``where``: (found, new version). With
    nothing to write the row is only looked up: a bare stamp bump would be a change
    that other readers of the table pick up for nothing."""
    stamp_col = table.updated_at
    if not values:
        column = stamp_col if stamp_col is not None else table.id
        current = conn.execute(select(column).where(*where)).first()
        if current is None:
            return False, None
        return True, version_of(current[0]) if stamp_col is not None else None
    values = dict(values)
    if stamp_col is not None:
        values[stamp_col.name] = stamp
    written = conn.execute(update(table.table).where(*where).values(values)).rowcount
    return bool(written), version_of(stamp)


def _exists(conn: Connection, table: EntityTable, key: Any) -> bool:
    query = select(table.id).where(table.id == key, table.live())
    return conn.execute(query).first() is not None


def _params(table: EntityTable, row: PendingRow, stamp: Any) -> dict[str, Any]:
    params = {**row.values, _KEY: row.key}
    stamp_col = table.updated_at
    if stamp_col is not None:
        params[stamp_col.name] = stamp
        if row.version is not None:
            try:
                params[_VERSION] = to_column(row.version, stamp_col)
            except CoercionError:
                raise Redo from None
    return params


def _statement(table: EntityTable, *, optimistic: bool) -> Update:
    # Without .values(), the SET clause takes the columns named in the parameters.
    where = [table.id == bindparam(_KEY), table.live()]
    if optimistic and table.updated_at is not None:
        where.append(table.updated_at == bindparam(_VERSION))
    return update(table.table).where(*where)


def _stamp(table: EntityTable) -> Any:
    return stamp_now(table.updated_at) if table.updated_at is not None else None
