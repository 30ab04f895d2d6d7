"""The database behind a ``sql`` connector: its engine, and what its errors mean.

Driver exceptions are turned into the connector contract's errors here. Messages name
the URL with the password hidden and never echo the raw URL, since the URL is a secret.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Executable, Row, create_engine, exc, make_url
from sqlalchemy.engine import URL

from syncd.kit.secrets import resolve_sqlite_url
from syncd.plugin.connector import (
    AuthError,
    ConfigurationError,
    ConnectorError,
    ErrorKind,
    RecordError,
    UnavailableError,
)

# MySQL / MariaDB error numbers.
_MYSQL_DUPLICATE = frozenset({1062, 1586})
_MYSQL_AUTH = frozenset({1044, 1045, 1698})
# Row errors PyMySQL reports as operational: no default for a column, bad date value,
# CHECK constraint failed (MySQL, MariaDB).
_MYSQL_ROW_ERRORS = frozenset({1292, 1364, 1411, 3819, 4025})
_SQLITE_DUPLICATE = frozenset({"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"})


def parse_url(connector: str, url: str, base_dir: Path) -> URL:
    """Parse the configured URL (relative SQLite paths taken from ``base_dir``); a
    malformed URL or a missing SQLite file is a :class:`ConfigurationError`."""
    try:
        parsed = make_url(resolve_sqlite_url(url, base_dir))
    except (exc.ArgumentError, ValueError):
        raise ConfigurationError(
            f"connector {connector!r}: url is not a valid database URL"
        ) from None
    database = parsed.database or ""
    plain_file = database and database != ":memory:" and not database.startswith("file:")
    if parsed.get_backend_name() == "sqlite" and plain_file and not Path(database).exists():
        raise ConfigurationError(
            f"connector {connector!r}: database file {database} does not exist"
        )
    return parsed


class Database:
    """One engine for one run of a connector, with error translation around every
    statement: record problems pass through for the caller to report per record,
    everything else becomes a :class:`ConnectorError`."""

    def __init__(self, connector: str, url: URL) -> None:
        self.connector = connector
        self.url = url
        self.safe_url = url.render_as_string(hide_password=True)
        try:
            self.engine: Engine = create_engine(url)
        except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as error:
            raise ConfigurationError(
                f"connector {connector!r}: cannot use {self.safe_url}: {self._scrub(str(error))}"
            ) from None

    @property
    def dialect_name(self) -> str:
        """The SQLAlchemy dialect name (sqlite, postgresql, mysql, ...)."""
        return self.engine.dialect.name

    @property
    def insert_returning(self) -> bool:
        """True when the database returns generated ids from a multi-row INSERT."""
        dialect = self.engine.dialect
        return bool(
            dialect.insert_returning
            and dialect.insert_executemany_returning
            and dialect.insert_executemany_returning_sort_by_parameter_order
        )

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection for reads, with every error translated: a read fails as a
        whole, there is no record to blame."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except exc.DBAPIError as error:
            raise self.translate(error) from None

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection in a transaction that commits on success, with errors
        translated (record errors pass through untouched)."""
        with self.errors(), self.engine.begin() as conn:
            yield conn

    def rows(self, statement: Executable) -> Sequence[Row[*tuple[Any, ...]]]:
        """Run a query and return all its rows."""
        with self.connect() as conn:
            return conn.execute(statement).all()

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Translate driver errors into the contract's errors."""
        try:
            yield
        except exc.DBAPIError as error:
            if is_record_error(error):
                raise
            raise self.translate(error) from None

    def translate(self, error: exc.DBAPIError) -> ConnectorError:
        """The contract error for a driver error that is not a single record's fault."""
        where = f"connector {self.connector!r} ({self.safe_url})"
        reason = self._scrub(first_line(error))
        if _is_auth(error):
            return AuthError(f"{where}: credentials refused: {reason}")
        if isinstance(error, exc.ProgrammingError):
            return ConfigurationError(f"{where}: {reason}")
        return UnavailableError(f"{where}: database unavailable: {reason}")

    def _scrub(self, text: str) -> str:
        password = self.url.password
        return text.replace(str(password), "***") if password else text


def first_line(error: exc.DBAPIError) -> str:
    """The driver's first error line, without SQL, parameters or details."""
    orig = error.orig
    args: tuple[Any, ...] = getattr(orig, "args", ())
    if len(args) >= 2 and isinstance(args[0], int):  # PyMySQL: (errno, message)
        text = str(args[1])
    else:
        text = str(orig) if orig is not None else str(error)
    lines = text.strip().splitlines()
    return lines[0] if lines else type(orig).__name__


def is_record_error(error: exc.DBAPIError) -> bool:
    """True when a statement failed because of the data of a row (constraint, type,
    length), not because of the database: the row is reported, the run goes on."""
    if isinstance(error, exc.IntegrityError | exc.DataError):
        return True
    return _mysql_errno(error) in _MYSQL_ROW_ERRORS


def record_error(error: exc.DBAPIError) -> RecordError:
    """The per-record result of a row the database refused."""
    kind = ErrorKind.DUPLICATE if _is_duplicate(error) else ErrorKind.INVALID
    return RecordError(kind, first_line(error), retryable=False)


def _mysql_errno(error: exc.DBAPIError) -> int | None:
    args = getattr(error.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _sqlstate(error: exc.DBAPIError) -> str:
    return str(getattr(error.orig, "sqlstate", None) or "")


def _is_duplicate(error: exc.DBAPIError) -> bool:
    if _sqlstate(error) == "23505" or _mysql_errno(error) in _MYSQL_DUPLICATE:
        return True
    return getattr(error.orig, "sqlite_errorname", None) in _SQLITE_DUPLICATE


def _is_auth(error: exc.DBAPIError) -> bool:
    if _sqlstate(error).startswith("28") or _mysql_errno(error) in _MYSQL_AUTH:
        return True
    return "authentication failed" in first_line(error).lower()
