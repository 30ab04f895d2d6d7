"""Create or upgrade the state store's schema with Alembic.

Alembic is imported only when there is something to upgrade: every CLI command opens
the store, and the import costs more than the rest of a small command (and 10 MB
that a sync would carry to its end). A store at :data:`HEAD` is left as it is. A new,
empty store is built from the models and stamped at :data:`HEAD` directly, which is
Alembic's own recipe for a database built from scratch (create_all, then stamp).
An existing store at an older revision is upgraded by Alembic's migrations. Tests
check that :data:`HEAD` is the newest migration script and that both ways give the
same schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    inspect,
    text,
)

from syncd.errors import UserError
from syncd.state.connect import IMMEDIATE

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

#: The newest revision in ``syncd/migrations/versions`` (update it with each new one).
HEAD = "0003"

#: The PostgreSQL advisory lock key that serialises schema changes ("syncd").
SCHEMA_LOCK = 0x73796E6364


def alembic_config() -> AlembicConfig:
    """An Alembic configuration pointing at syncd's migration scripts."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def current_revision(bind: Engine | Connection) -> str | None:
    """The schema revision the store is at (None for a new, empty store)."""
    with _connection(bind) as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision; a no-op when it is already there.

    Processes started together on a new store would each find it empty and build
    it: the building is serialised (:func:`schema_lock`) and the revision read again
    under the lock."""
    if current_revision(engine) == HEAD:
        return
    with schema_lock(engine) as connection:
        revision = current_revision(connection)
        if revision == HEAD:
            return
        if revision is None and create_fresh(connection):
            return
        from alembic import command

        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")


@contextmanager
def schema_lock(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds, until it ends, a lock every schema change of this
    store takes: SQLite's write lock, a PostgreSQL advisory lock, a MariaDB named
    lock."""
    with engine.connect() as connection:
        dialect = engine.dialect.name
        if dialect == "sqlite":
            connection.execution_options(**{IMMEDIATE: True})
        if dialect == "mysql":
            connection.execute(text("SELECT GET_LOCK('syncd_schema', 300)"))
            connection.commit()
        try:
            with connection.begin():
                if dialect == "postgresql":
                    connection.execute(text(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})"))
                yield connection
        finally:
            if dialect == "mysql":
                connection.execute(text("SELECT RELEASE_LOCK('syncd_schema')"))
                connection.commit()


@contextmanager
def _connection(bind: Engine | Connection) -> Iterator[Connection]:
    if isinstance(bind, Connection):
        yield bind
    else:
        with bind.connect() as connection:
            yield connection


def check_current(engine: Engine, shown: str) -> None:
    """Refuse, in one line, a store whose schema is not this syncd's (a read-only
    store cannot be upgraded); ``shown`` names the store in the message."""
    revision = current_revision(engine)
    if revision == HEAD:
        return
    if revision is None:
        raise UserError(f"the state store {shown} holds no syncd schema yet: run a sync first")
    if revision < HEAD:
        raise UserError(
            f"the state store {shown} has schema {revision}, older than this syncd's {HEAD}:"
            " a command that writes (syncd sync, syncd run) upgrades it"
        )
    raise UserError(
        f"the state store {shown} has schema {revision}, newer than this syncd's {HEAD}:"
        " upgrade syncd"
    )


def create_fresh(connection: Connection) -> bool:
    """Build the schema of :data:`HEAD` from the models and stamp it, if the
    database holds none of syncd's tables yet; False (nothing done) otherwise."""
    from sqlmodel import SQLModel

    import syncd.state.models  # noqa: F401  (registers the tables on SQLModel.metadata)

    present = set(inspect(connection).get_table_names())
    if present & {*SQLModel.metadata.tables, VERSION_TABLE.name}:
        return False
    SQLModel.metadata.create_all(connection)
    VERSION_TABLE.create(connection)
    connection.execute(VERSION_TABLE.insert().values(version_num=HEAD))
    return True


#: Alembic's own version table, as its ``stamp`` writes it.
VERSION_TABLE = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)
