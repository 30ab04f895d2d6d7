"""Each connector's own durable key-value store (plugin API 2): rotated tokens, a
sync token the system hands out, anything a connector must keep between runs.

:meth:`ConnectorStateStore.update_connector_value` reads and writes one key in one
transaction that holds the key's lock, so two processes rotating the same token
never lose one: on SQLite the transaction begins with ``BEGIN IMMEDIATE`` (the
database's write lock); on PostgreSQL and MariaDB the key's row is inserted if it is
missing (with no value) and locked with ``SELECT ... FOR UPDATE``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update

from syncd.state.connect import IMMEDIATE
from syncd.state.errors import translated
from syncd.state.models import CONNECTOR_STATE
from syncd.state.rows import now

_T = CONNECTOR_STATE.c


@translated
class ConnectorStateStore:
    """Values connectors keep in the state store, by connector name and key."""

    engine: Engine

    def connector_value(self, connector: str, key: str) -> str | None:
        """The value ``connector`` stored under ``key``; None if it stored none."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(_T.value).where(_T.connector == connector, _T.key == key)
            ).scalar()

    def put_connector_value(self, connector: str, key: str, value: str) -> None:
        """Store ``value`` under ``key`` for ``connector``, replacing any value."""
        self.update_connector_value(connector, key, lambda _old: value)

    def delete_connector_value(self, connector: str, key: str) -> None:
        """Forget ``connector``'s ``key``; nothing happens if it has none."""
        with self.engine.begin() as conn:
            conn.execute(delete(CONNECTOR_STATE).where(_T.connector == connector, _T.key == key))

    def update_connector_value(
        self, connector: str, key: str, change: Callable[[str | None], str | None]
    ) -> str | None:
        """Replace ``connector``'s ``key`` with ``change(current value)`` (None for no
        value) in one transaction holding the key's lock; a None result deletes the
        key. Returns the new value. If ``change`` raises, nothing is written."""
        where = (_T.connector == connector, _T.key == key)
        with _locked(self.engine, connector, key) as conn:
            old = conn.execute(select(_T.value).where(*where)).scalar()
            new = change(old)
            if new is None:
                conn.execute(delete(CONNECTOR_STATE).where(*where))
                return None
            values = {"value": new, "updated_at": now()}
            if not conn.execute(update(CONNECTOR_STATE).where(*where).values(**values)).rowcount:
                conn.execute(insert(CONNECTOR_STATE).values(connector=connector, key=key, **values))
            return new


@contextmanager
def _locked(engine: Engine, connector: str, key: str) -> Iterator[Connection]:
    """A transaction holding the lock of ``connector``'s ``key`` (see the module
    docs); committed when the block ends, rolled back if it raises."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.execution_options(**{IMMEDIATE: True})
            with conn.begin():
                yield conn
            return
        conn.execution_options(isolation_level="READ COMMITTED")
        with conn.begin():
            row = select(_T.key).where(_T.connector == connector, _T.key == key)
            # lock the row before any insert: MariaDB's INSERT IGNORE of a row that
            # exists takes a shared lock, and two such holders deadlock on FOR UPDATE
            if conn.execute(row.with_for_update()).first() is None:
                conn.execute(_insert_missing(engine.dialect.name, connector, key))
                conn.execute(row.with_for_update())
            yield conn


def _insert_missing(dialect: str, connector: str, key: str) -> Any:
    """An insert of the key's row without a value that does nothing if it exists."""
    values = {"connector": connector, "key": key, "value": None, "updated_at": now()}
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(CONNECTOR_STATE).values(**values).on_conflict_do_nothing()
    if dialect == "mysql":
        return insert(CONNECTOR_STATE).values(**values).prefix_with("IGNORE")
    raise NotImplementedError(f"the state store does not support {dialect}")
