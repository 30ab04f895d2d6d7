"""State-store failures as one line that names the cause.

SQLAlchemy's exceptions render the statement and its parameters: a batch's contact
data would reach stderr, the log and the run history. The store's engines hide
parameters, and every public method of the store (:func:`translated`) turns a
database error into a :class:`StoreError` naming its cause (disk full, connection
lost, database locked, read-only) or, for anything else, the driver's exception
class and the first line of its message, which carries no SQL. (An engine-wide
``handle_error`` hook cannot do it: SQLAlchemy's own reflection catches some
database errors, e.g. MariaDB's "no such table", and must still see them.)
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError

T = TypeVar("T")

#: What a failure was, for callers that act on it (``kind`` of :class:`StoreError`).
FULL, LOST, LOCKED, READONLY, INTEGRITY, OTHER = (
    "full",
    "lost",
    "locked",
    "readonly",
    "integrity",
    "other",
)

_SERVERS = {"postgresql": "PostgreSQL", "mysql": "MariaDB/MySQL", "sqlite": "SQLite"}

# SQLite primary result codes (the low byte of an extended code)
_SQLITE = {13: FULL, 5: LOCKED, 6: LOCKED, 8: READONLY, 19: INTEGRITY}
# PostgreSQL SQLSTATEs and their classes
_POSTGRES = {
    "53100": FULL,
    "55P03": LOCKED,
    "40P01": LOCKED,
    "25006": READONLY,
    "57P01": LOST,
    "57P02": LOST,
    "57P03": LOST,
}
_POSTGRES_CLASSES = {"08": LOST, "23": INTEGRITY}
# MariaDB/MySQL error numbers
_MYSQL = {
    1021: FULL,
    1114: FULL,
    1205: LOCKED,
    1213: LOCKED,
    1792: READONLY,
    1062: INTEGRITY,
    2006: LOST,
    2013: LOST,
    2055: LOST,
}

_REASONS = {
    FULL: "disk full",
    LOCKED: "database is locked",
    READONLY: "the database is read-only",
}


class StoreError(Exception):
    """The state store failed: ``reason`` is one line without SQL or record values,
    ``kind`` one of :data:`FULL`, :data:`LOST`, :data:`LOCKED`, :data:`READONLY`,
    :data:`INTEGRITY` or :data:`OTHER`."""

    def __init__(self, reason: str, kind: str = OTHER) -> None:
        super().__init__(f"state store: {reason}")
        self.reason = reason
        self.kind = kind


def classify(error: BaseException, dialect: str, disconnect: bool = False) -> StoreError:
    """The :class:`StoreError` for ``error``, a DBAPI exception raised by a database of
    ``dialect`` (SQLAlchemy's dialect name); ``disconnect`` when SQLAlchemy found the
    connection unusable."""
    kind = LOST if disconnect else _kind(error, dialect)
    if kind == LOST:
        return StoreError(f"connection to {_SERVERS.get(dialect, dialect)} lost", LOST)
    if kind in _REASONS:
        return StoreError(_REASONS[kind], kind)
    lines = str(error).strip().splitlines()
    first = lines[0].strip() if lines else ""
    name = type(error).__name__
    return StoreError(f"{name}: {first}" if first else name, kind)


def _kind(error: BaseException, dialect: str) -> str:
    if dialect == "sqlite":
        code = getattr(error, "sqlite_errorcode", None)
        return _SQLITE.get(code & 0xFF, OTHER) if isinstance(code, int) else OTHER
    if dialect == "postgresql":
        state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
        if not isinstance(state, str):
            return OTHER
        return _POSTGRES.get(state) or _POSTGRES_CLASSES.get(state[:2], OTHER)
    if dialect == "mysql":
        args = getattr(error, "args", ())
        number = args[0] if args and isinstance(args[0], int) else None
        return _MYSQL.get(number, OTHER) if number is not None else OTHER
    return OTHER


def from_dbapi(error: DBAPIError, dialect: str) -> StoreError:
    """The :class:`StoreError` for an error SQLAlchemy raised on ``dialect``."""
    cause = error.orig if error.orig is not None else error
    return classify(cause, dialect, error.connection_invalidated)


F = TypeVar("F", bound=Callable[..., Any])


def translated(cls: type[T]) -> type[T]:
    """Class decorator: a database error raised by a public method of ``cls`` (a
    generator's too) becomes a :class:`StoreError`; instances have an ``engine``."""
    for name, member in list(vars(cls).items()):
        if name.startswith("_") or not inspect.isfunction(member):
            continue
        setattr(cls, name, _translating(member))
    return cls


def _translating(function: F) -> F:
    if inspect.isgeneratorfunction(function):

        @functools.wraps(function)
        def generator(*args: Any, **kwargs: Any) -> Any:
            try:
                return (yield from function(*args, **kwargs))
            except DBAPIError as exc:
                raise from_dbapi(exc, args[0].engine.dialect.name) from exc

        return generator  # type: ignore[return-value]

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except DBAPIError as exc:
            raise from_dbapi(exc, args[0].engine.dialect.name) from exc

    return call  # type: ignore[return-value]
