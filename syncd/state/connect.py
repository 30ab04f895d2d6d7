"""Opening the state store's database.

SQLite: the file is created owner-only (0600) before SQLite opens it, whatever the
umask, since it holds contact snapshots; SQLite gives its ``-wal``, ``-shm`` and
``-journal`` files the main file's permissions. WAL mode and a busy timeout let the
CLI and the daemon share the file. A connection opened with the execution option
:data:`IMMEDIATE` begins its transactions with ``BEGIN IMMEDIATE``, taking the write
lock at once (pysqlite would begin only before the first write, too late for a
check-then-insert). A read-only store is opened with SQLite's ``mode=ro``, so a user
who may read the file but not write it can still look at it.

Servers: connections are checked before use, named ``syncd-<pid>`` for PostgreSQL's
``pg_stat_activity``, and a read-only store's sessions refuse writes.

Every engine hides statement parameters: an error's text never holds record values.
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import URL, Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

#: Execution option: begin the connection's transactions with ``BEGIN IMMEDIATE``
#: on SQLite (other databases ignore it).
IMMEDIATE = "syncd_begin_immediate"


def make_engine(url: str, *, readonly: bool = False) -> Engine:
    """A SQLAlchemy engine for the state store at ``url``; ``readonly`` opens it so
    that nothing can be written (and nothing needs to be writable)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, readonly)
    return _server_engine(parsed, readonly)


def sqlite_path(url: URL) -> Path | None:
    """The database file of a SQLite URL; None for a memory database or a URI."""
    database = url.database or ""
    if not database or database == ":memory:" or url.query.get("uri"):
        return None
    return Path(os.path.abspath(database))


def create_private(path: Path) -> None:
    """Create ``path`` as an empty file readable by its owner only, unless it exists
    (an empty file is a valid, empty SQLite database)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _sqlite_engine(url: URL, readonly: bool) -> Engine:
    path = sqlite_path(url)
    if path is not None and readonly:
        url = _readonly_url(path)
    elif path is not None:
        # if this fails, SQLite's own open says why, in the store's one-line error
        with suppress(OSError):
            create_private(path)
    engine = create_engine(url, hide_parameters=True)
    event.listen(engine, "connect", _sqlite_readonly if readonly else _sqlite_pragmas)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _readonly_url(path: Path) -> URL:
    """A URL opening ``path`` with ``mode=ro``; when the file is in WAL mode, its
    ``-shm`` file is missing and cannot be created (no writer has it open and the
    directory is not writable), as ``immutable``: nothing is writing it then."""
    query = {"mode": "ro", "uri": "true"}
    shm = path.with_name(path.name + "-shm")
    if not shm.exists() and not os.access(path.parent, os.W_OK | os.X_OK) and _is_wal(path):
        query = {"immutable": "1", "uri": "true"}
    return URL.create("sqlite", database=f"file:{quote(str(path))}", query=query)


def _is_wal(path: Path) -> bool:
    """True when the SQLite file's header says WAL (file format versions 2)."""
    try:
        with path.open("rb") as handle:
            header = handle.read(20)
    except OSError:
        return False
    return len(header) == 20 and header[18:20] == b"\x02\x02"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    # SQLite's default page cache, 2 MiB, said explicitly: 8 and 32 MiB were no
    # quicker for a first run of 100,000 records, and cost 6 and 28 MB of peak RSS.
    cursor.execute("PRAGMA cache_size=-2048")
    cursor.execute("PRAGMA wal_autocheckpoint=8192")
    # statement journals (a multi-row insert into a table with unique indexes makes
    # one) in memory: a first run of 100,000 records wrote 14 MB of them to /var/tmp
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


def _sqlite_readonly(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA query_only=1")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    if connection.get_execution_options().get(IMMEDIATE):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _server_engine(url: URL, readonly: bool) -> Engine:
    connect_args: dict[str, Any] = {}
    backend = url.get_backend_name()
    if backend == "postgresql":
        if "application_name" not in url.query:
            connect_args["application_name"] = f"syncd-{os.getpid()}"
        if readonly:
            connect_args["options"] = "-c default_transaction_read_only=on"
    elif backend == "mysql" and readonly:
        connect_args["init_command"] = "SET SESSION TRANSACTION READ ONLY"
    return create_engine(url, pool_pre_ping=True, hide_parameters=True, connect_args=connect_args)
