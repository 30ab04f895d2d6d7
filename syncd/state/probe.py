"""What ``syncd check`` says about the state store, found without changing anything.

Opening the store would create a missing SQLite file and migrate an old schema; a
check must do neither. A SQLite file that exists is opened read-only; one that does
not must be creatable (its nearest existing folder writable); any other database is
connected to and left as it was.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, exc
from sqlalchemy.engine import make_url

from syncd.state.connect import make_engine


@dataclass(frozen=True, slots=True)
class Probe:
    """The state store's condition: usable or not, and what was found, in words."""

    ok: bool
    detail: str


def probe_state(url: str) -> Probe:
    """Look at the state store ``url`` names (a normalised, checked URL)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _probe_sqlite(parsed.database or "", bool(parsed.query.get("uri")))
    engine = create_engine(parsed)
    try:
        with engine.connect():
            return Probe(True, "reachable")
    except exc.DBAPIError as error:
        lines = str(error.orig or error).strip().splitlines()
        return Probe(False, f"cannot connect: {lines[0] if lines else type(error).__name__}")
    finally:
        engine.dispose()


def _probe_sqlite(database: str, uri: bool) -> Probe:
    if not database or database == ":memory:":
        return Probe(True, "in memory: nothing is kept between commands")
    if uri or database.startswith("file:"):
        return Probe(True, "a SQLite URI, not probed")
    path = Path(database)
    if path.is_dir():
        return Probe(False, "is a directory")
    if not path.exists():
        return _creatable(path)
    if not os.access(path, os.R_OK):
        return Probe(False, "is not readable")
    engine = make_engine(f"sqlite:///{path}", readonly=True)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA schema_version").fetchone()
    except exc.DBAPIError as error:
        return Probe(False, f"cannot be read as SQLite: {error.orig or error}")
    finally:
        engine.dispose()
    writable = os.access(path, os.W_OK)
    return Probe(True, "exists" + ("" if writable else " (read-only for this user)"))


def _creatable(path: Path) -> Probe:
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():  # a file where a folder must be
        return Probe(False, f"cannot be created: {folder} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        return Probe(False, f"cannot be created: {folder} is not writable")
    return Probe(True, "does not exist yet; the first command that needs it creates it")
