"""The state store's statements that every run makes, as plain SQL.

SQLAlchemy compiles a Core statement the first time a process runs it, about half a
millisecond each; a ``syncd sync`` makes a dozen of them before it has read a record
(the run, each entity's cursor, bindings, retries and open intents). A text
statement compiles in a fifth of that: a run that had nothing to sync went from 15
to 12 ms. Identifiers are quoted the dialect's way and values typed by the model's own
columns, so the statements read and write exactly what the Core ones did; the rest
of the store stays with Core.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, TextClause, bindparam, column, text
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ColumnClause
from sqlalchemy.sql.selectable import TextualSelect

from syncd.state.models import BINDING, CURSOR, INTENT, RETRY, RUN


class Queries:
    """The plain-SQL statements for one database dialect: ``binding_row`` names the
    binding columns a binding is read as, in order; ``counts`` the run's counts."""

    def __init__(self, dialect: Dialect, binding_row: Sequence[str], counts: Sequence[str]) -> None:
        quote = dialect.identifier_preparer.quote

        def names(columns: Sequence[str]) -> str:
            return ", ".join(map(quote, columns))

        def where(*columns: str) -> str:
            return " AND ".join(f"{quote(name)} = :{name}" for name in columns)

        cursor, binding, retry, intent, run = (
            quote(table.name) for table in (CURSOR, BINDING, RETRY, INTENT, RUN)
        )
        on_cursor = where("pair", "side", "entity")
        self.cursor_value = text(f"SELECT {quote('value')} FROM {cursor} WHERE {on_cursor}")
        self.cursor_update = _typed(
            f"UPDATE {cursor} SET {quote('value')} = :value, {quote('updated_at')} ="
            f" :updated_at WHERE {on_cursor}",
            CURSOR,
            "updated_at",
        )
        cursor_columns = ("pair", "side", "entity", "value", "updated_at")
        self.cursor_insert = _typed(
            f"INSERT INTO {cursor} ({names(cursor_columns)})"
            f" VALUES ({', '.join(f':{name}' for name in cursor_columns)})",
            CURSOR,
            "updated_at",
        )
        self.has_bindings = text(
            f"SELECT {quote('id')} FROM {binding} WHERE {where('pair', 'entity')} LIMIT 1"
        )
        #: side -> the bindings whose ``side`` id is one of ``ids``
        self.bindings_by = {
            side: _rows(
                _typed(
                    f"SELECT {names(binding_row)} FROM {binding} WHERE"
                    f" {where('pair', 'entity')} AND {quote(side + '_id')} IN :ids",
                    BINDING,
                ).bindparams(bindparam("ids", expanding=True)),
                BINDING,
                binding_row,
            )
            for side in ("left", "right")
        }
        on_retry = where("pair", "entity", "side", "permanent")
        self.retry_ids = _typed(
            f"SELECT {quote('record_id')} FROM {retry} WHERE {on_retry}", RETRY, "permanent"
        )
        self.retry_exists = _typed(
            f"SELECT {quote('record_id')} FROM {retry} WHERE {on_retry} LIMIT 1",
            RETRY,
            "permanent",
        )
        intent_columns = [c.name for c in INTENT.c]
        self.open_intents = _rows(
            text(f"SELECT {names(intent_columns)} FROM {intent} WHERE {where('pair', 'entity')}"),
            INTENT,
            intent_columns,
        )
        self.running = _rows(
            text(
                f"SELECT {names(('id', 'host', 'pid'))} FROM {run}"
                f" WHERE {where('pair')} AND {quote('status')} = 'running'"
            ),
            RUN,
            ("id", "host", "pid"),
        )
        fields = ("pair", "trigger", "mode", "full", "status", "started_at", "pid", "host")
        started = (*fields, *counts)  # counts 0 (the model's defaults, which only Core fills in)
        #: True when ``start_run`` returns the new run's id as a row (else: lastrowid)
        self.returning = bool(dialect.insert_returning)
        self.start_run = _typed(
            f"INSERT INTO {run} ({names(started)})"
            f" VALUES ({', '.join(f':{name}' for name in started)})"
            + (f" RETURNING {quote('id')}" if self.returning else ""),
            RUN,
            "full",
            "started_at",
        )
        finished = ("status", "ended_at", "error", *counts)
        self.finish_run = _typed(
            f"UPDATE {run} SET {', '.join(f'{quote(n)} = :{n}' for n in finished)}"
            f" WHERE {quote('id')} = :id",
            RUN,
            "ended_at",
        )


def _typed(sql: str, table: Table, *typed: str) -> TextClause:
    """``sql`` whose parameters named in ``typed`` go in as ``table``'s columns of
    those names (a datetime or boolean as the column stores it)."""
    return text(sql).bindparams(*(bindparam(name, type_=table.c[name].type) for name in typed))


def _rows(statement: TextClause, table: Table, columns: Sequence[str]) -> TextualSelect:
    """``statement`` read as ``table``'s ``columns``, converted the way a Core select
    of them converts them (booleans and datetimes stored as numbers and text)."""
    typed: list[ColumnClause[Any]] = [column(name, table.c[name].type) for name in columns]
    return statement.columns(*typed)
