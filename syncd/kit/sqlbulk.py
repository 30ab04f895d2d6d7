"""Bulk inserts and updates sent straight to the database driver's ``executemany``.

The engine records thousands of rows per batch (bindings, run items), and the sql
connector writes thousands of records. Through SQLAlchemy's
``conn.execute(statement, rows)`` most of that time goes into building each row's
parameters; here a row becomes a tuple with one C-level call, and only the values
whose column type needs it (booleans on SQLite, say) are converted, with the very
converters SQLAlchemy would use. A driver that takes only named parameters gets the
ordinary SQLAlchemy call.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from operator import itemgetter
from typing import Any

from sqlalchemy import BindParameter, Boolean, Connection, Executable, Table, UpdateBase, bindparam
from sqlalchemy.engine import Dialect


@dataclass(frozen=True, slots=True)
class _Statement:
    sql: str
    #: (position, converter) for the row columns whose values need converting
    converters: tuple[tuple[int, Callable[[Any], Any]], ...]
    #: converters of the constant columns, in order (None: as is)
    constant_converters: tuple[Callable[[Any], Any] | None, ...]


def insert_rows(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    constants: Mapping[str, Any] | None = None,
) -> None:
    """Insert ``rows`` (all with the same keys, in any order) into ``table``,
    each with the ``constants`` columns added."""
    if not rows:
        return
    keys = tuple(rows[0])
    get = itemgetter(*keys)
    values = [(get(row),) for row in rows] if len(keys) == 1 else [get(row) for row in rows]
    insert_tuples(conn, table, keys, values, constants)


def insert_tuples(
    conn: Connection,
    table: Table,
    keys: tuple[str, ...],
    rows: Sequence[tuple[Any, ...]],
    constants: Mapping[str, Any] | None = None,
) -> None:
    """Insert ``rows``, each a tuple of the values of the columns ``keys``, into
    ``table``, each with the ``constants`` columns added."""
    if not rows:
        return
    constants = constants or {}
    statement = _statement(conn.dialect, table, keys, tuple(constants))
    if statement is None:  # a driver that only takes named parameters
        named = [{**dict(zip(keys, row, strict=True)), **constants} for row in rows]
        conn.execute(table.insert(), named)
        return
    const = _constants(statement, constants)
    params: list[Any] = [row + const for row in rows] if const else list(rows)
    if statement.converters:
        params = [_converted(row, statement.converters) for row in params]
    if conn.dialect.name == "sqlite" and len(params) > 1:
        _insert_values(conn, statement.sql, params)
    else:
        conn.exec_driver_sql(statement.sql, params)


def _insert_values(conn: Connection, sql: str, params: list[tuple[Any, ...]]) -> None:
    """SQLite: insert many rows per statement.

    ``executemany`` steps the statement once per row, dropping and taking back the
    GIL each time; a multi-row statement runs all of its rows in one step, about 10 %
    quicker for a batch of bindings. Statements hold a power of two of rows, at most
    :data:`MAX_ROWS`: the driver keeps every statement it prepared (about 2 KB a row),
    so a few sizes reused cost little memory where one statement per batch size
    would cost megabytes."""
    width = len(params[0])
    driver = conn.connection.driver_connection
    limit = driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if driver else 999
    most = max(1, min(MAX_ROWS, limit // width))
    most = 1 << (most.bit_length() - 1)
    start, total = 0, len(params)
    while start < total:
        rows = min(most, 1 << ((total - start).bit_length() - 1))
        chunk = params[start : start + rows]
        conn.exec_driver_sql(_values_sql(sql, rows), tuple(chain.from_iterable(chunk)))
        start += rows


#: The most rows one multi-row INSERT holds on SQLite (a power of two).
MAX_ROWS = 512


@lru_cache(maxsize=32)
def _values_sql(sql: str, rows: int) -> str:
    """A one-row ``INSERT ... VALUES (...)`` turned into one of ``rows`` rows."""
    head, row = sql.split(" VALUES ", 1)
    return f"{head} VALUES {', '.join([row] * rows)}"


def update_rows(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    key: str,
    constants: Mapping[str, Any] | None = None,
) -> None:
    """Update rows of ``table`` by their ``key`` column: each of ``rows`` (all with the
    same keys) holds the key's value and the new values of the other columns it
    names; the ``constants`` columns are set on every row."""
    if not rows:
        return
    columns = tuple(name for name in rows[0] if name != key)
    get = itemgetter(*columns, key)
    update_tuples(conn, table, columns, key, [get(row) for row in rows], constants)


def update_tuples(
    conn: Connection,
    table: Table,
    columns: tuple[str, ...],
    key: str,
    rows: Sequence[tuple[Any, ...]],
    constants: Mapping[str, Any] | None = None,
) -> None:
    """:func:`update_rows` for rows given as tuples: the new values of ``columns``,
    then the ``key`` column's value."""
    if not rows:
        return
    constants = constants or {}
    statement = _statement(conn.dialect, table, (*columns, key), tuple(constants), key)
    if statement is None:  # a driver that only takes named parameters
        bound: dict[str, BindParameter[Any]] = {
            name: bindparam(f"p_{name}") for name in (*columns, *constants)
        }
        where = table.c[key] == bindparam("p_key")
        named = [f"p_{name}" for name in (*columns, "key")]
        fixed = {f"p_{name}": value for name, value in constants.items()}
        values = [{**dict(zip(named, row, strict=True)), **fixed} for row in rows]
        conn.execute(table.update().where(where).values(bound), values)
        return
    # the statement takes the new values, then the constants, then the key
    const = _constants(statement, constants)
    width = len(columns)
    params = [row[:width] + const + row[width:] for row in rows] if const else list(rows)
    if statement.converters:
        params = [_converted(row, statement.converters) for row in params]
    conn.exec_driver_sql(statement.sql, params)


def update_else_insert(
    conn: Connection, update: Executable, insert: Executable, values: Mapping[str, Any]
) -> None:
    """Update the one row ``values`` names, or insert it when there is none: the
    upsert every database takes (no dialect's ON CONFLICT), for rows that only one
    writer creates (a cursor, a daemon's heartbeat)."""
    if conn.execute(update, values).rowcount == 0:
        conn.execute(insert, values)


def execute_many(conn: Connection, statement: UpdateBase, rows: Sequence[Mapping[str, Any]]) -> int:
    """Run ``statement`` (an UPDATE or DELETE with ``bindparam`` placeholders named
    like the keys of ``rows``, all with the same keys) once per row through the
    driver's ``executemany``; returns the number of rows it matched in all."""
    if not rows:
        return 0
    dialect = conn.dialect
    keys = list(rows[0])
    compiled = statement.compile(dialect=dialect, column_keys=keys)
    names = compiled.positiontup if compiled.positional else None
    if not names:
        return conn.execute(statement, list(rows)).rowcount
    binds = compiled.binds
    fixed = {name: binds[name].effective_value for name in names if name not in rows[0]}
    get = itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))
    params = [get({**fixed, **row}) for row in rows]
    converters = tuple(
        (position, convert)
        for position, name in enumerate(names)
        if (convert := _processor(dialect, binds[name].type))
    )
    if converters:
        params = [_converted(row, converters) for row in params]
    return conn.exec_driver_sql(str(compiled), params).rowcount


def _constants(statement: _Statement, constants: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(
        value if convert is None else convert(value)
        for value, convert in zip(constants.values(), statement.constant_converters, strict=True)
    )


def _converted(
    row: tuple[Any, ...], converters: tuple[tuple[int, Callable[[Any], Any]], ...]
) -> tuple[Any, ...]:
    values = list(row)
    for position, convert in converters:
        values[position] = convert(values[position])
    return tuple(values)


_MARKS: dict[str, Callable[[int], str]] = {
    "qmark": lambda _n: "?",
    "format": lambda _n: "%s",
    "pyformat": lambda _n: "%s",
    "numeric": lambda n: f":{n}",
    "numeric_dollar": lambda n: f"${n}",
}


def _processor(dialect: Dialect, column_type: Any) -> Callable[[Any], Any] | None:
    """The column type's bind processor, or None where the driver binds the value
    exactly so itself: sqlite3 binds True and False as 1 and 0, which is all
    SQLAlchemy's Boolean processor does on SQLite (a binding row has two flags)."""
    if dialect.name == "sqlite" and isinstance(column_type, Boolean):
        return None
    processor: Callable[[Any], Any] | None = column_type.dialect_impl(dialect).bind_processor(
        dialect
    )
    return processor


@lru_cache(maxsize=64)
def _statement(
    dialect: Dialect,
    table: Table,
    keys: tuple[str, ...],
    constants: tuple[str, ...],
    where: str | None = None,
) -> _Statement | None:
    """The INSERT of ``keys`` then ``constants``; or, with ``where`` (the last of
    ``keys``), the UPDATE setting the other keys and the constants on the row whose
    ``where`` column has the given value. Parameters go in that order. None for a
    driver that takes only named parameters."""
    mark = _MARKS.get(dialect.paramstyle)
    if mark is None:
        return None
    preparer = dialect.identifier_preparer
    target = preparer.format_table(table)
    row_keys = keys if where is None else keys[:-1]
    order = (*row_keys, *constants) if where is None else (*row_keys, *constants, where)
    marks = [mark(n) for n in range(1, len(order) + 1)]
    columns = [preparer.quote(table.c[name].name) for name in order]
    if where is None:
        sql = f"INSERT INTO {target} ({', '.join(columns)}) VALUES ({', '.join(marks)})"
        row_positions = list(range(len(row_keys)))
    else:
        sets = ", ".join(f"{c} = {m}" for c, m in zip(columns[:-1], marks[:-1], strict=True))
        sql = f"UPDATE {target} SET {sets} WHERE {columns[-1]} = {marks[-1]}"
        row_positions = [*range(len(row_keys)), len(order) - 1]
    processors = [_processor(dialect, table.c[name].type) for name in order]
    converters = tuple(
        (position, convert)
        for position in row_positions
        if (convert := processors[position]) is not None
    )
    start = len(row_keys)
    return _Statement(sql, converters, tuple(processors[start : start + len(constants)]))
