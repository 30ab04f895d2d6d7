"""Bulk inserts sent straight to the database driver's ``executemany``.

The engine records thousands of rows per batch (bindings, run items), and the sql
connector inserts thousands of records. Through
SQLAlchemy's ``conn.execute(table.insert(), rows)`` most of that time goes into
building each row's parameters; here a row becomes a tuple with one C-level call and
only columns whose type needs it (booleans on SQLite, say) are converted, with the
very converters SQLAlchemy would use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table
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
    constants = constants or {}
    keys = tuple(rows[0])
    statement = _statement(conn.dialect, table, keys, tuple(constants))
    if statement is None:  # a driver that only takes named parameters
        conn.execute(table.insert(), [{**row, **constants} for row in rows])
        return
    const = tuple(
        value if convert is None else convert(value)
        for value, convert in zip(constants.values(), statement.constant_converters, strict=True)
    )
    get = itemgetter(*keys)
    params: list[Any]
    if len(keys) == 1:
        params = [(get(row), *const) for row in rows]
    else:
        params = [get(row) + const for row in rows]
    if statement.converters:
        params = [_converted(row, statement.converters) for row in params]
    conn.exec_driver_sql(statement.sql, params)


def _converted(
    row: tuple[Any, ...], converters: tuple[tuple[int, Callable[[Any], Any]], ...]
) -> tuple[Any, ...]:
    values = list(row)
    for position, convert in converters:
        values[position] = convert(values[position])
    return tuple(values)


@lru_cache(maxsize=64)
def _statement(
    dialect: Dialect, table: Table, keys: tuple[str, ...], constants: tuple[str, ...]
) -> _Statement | None:
    names = (*keys, *constants)
    style = dialect.paramstyle
    if style == "qmark":
        marks = ["?"] * len(names)
    elif style in ("format", "pyformat"):
        marks = ["%s"] * len(names)
    elif style == "numeric":
        marks = [f":{n}" for n in range(1, len(names) + 1)]
    elif style == "numeric_dollar":
        marks = [f"${n}" for n in range(1, len(names) + 1)]
    else:
        return None
    quote = dialect.identifier_preparer.quote
    target = dialect.identifier_preparer.format_table(table)
    columns = ", ".join(quote(table.c[name].name) for name in names)
    sql = f"INSERT INTO {target} ({columns}) VALUES ({', '.join(marks)})"
    processors = [
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    ]
    converters = tuple(
        (position, convert)
        for position, convert in enumerate(processors[: len(keys)])
        if convert is not None
    )
    return _Statement(sql, converters, tuple(processors[len(keys) :]))
