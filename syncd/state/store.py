"""The state store: one object for every read and write of syncd's state, made of one
part per concern (:mod:`~syncd.state.bindings`, :mod:`~syncd.state.runs`,
:mod:`~syncd.state.control`, :mod:`~syncd.state.connector_state`) over one database
engine.

The engine's hot path asks for bindings a page at a time (one IN-list statement) and
records the outcome of a batch in one transaction of bulk statements (executemany), so
a run costs a few statements per page, not a round trip per record. The CLI reads and
writes the same tables: it controls the daemon only through this store.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from syncd.errors import UserError
from syncd.state.bindings import BindingsStore
from syncd.state.connect import make_engine
from syncd.state.connector_state import ConnectorStateStore
from syncd.state.control import ControlStore
from syncd.state.errors import from_dbapi, translated
from syncd.state.migrate import check_current, upgrade
from syncd.state.queries import Queries
from syncd.state.rows import (
    BINDING_VALUES,
    CHUNK,
    COUNTS,
    BatchCommit,
    BindingRow,
    now,
    other,
)
from syncd.state.runs import RunsStore

__all__ = ["CHUNK", "COUNTS", "BatchCommit", "BindingRow", "Store", "now", "other"]


@translated
class Store(BindingsStore, RunsStore, ControlStore, ConnectorStateStore):
    """All reads and writes of syncd's state, for one pair at a time or for the CLI.

    Database errors are raised as :class:`~syncd.state.errors.StoreError` (one line,
    no SQL or record values). A ``readonly`` store writes nothing, not even a schema
    upgrade: a schema older than this syncd is refused with a one-line error."""

    def __init__(self, url: str, *, migrate: bool = True, readonly: bool = False) -> None:
        self.url = url
        self.readonly = readonly
        self.engine: Engine = make_engine(url, readonly=readonly)
        try:
            self.queries = Queries(self.engine.dialect, ("id", *BINDING_VALUES), COUNTS)
            if readonly:
                check_current(self.engine, self.shown_url)
            elif migrate:
                upgrade(self.engine)
        except DBAPIError as exc:
            self.engine.dispose()
            reason = from_dbapi(exc, self.engine.dialect.name).reason
            raise UserError(f"cannot open the state store {self.shown_url}: {reason}") from None

    @property
    def shown_url(self) -> str:
        """The store's URL without its password, for messages."""
        return make_url(self.url).render_as_string(hide_password=True)

    def close(self) -> None:
        """Release the store's connections."""
        self.engine.dispose()
