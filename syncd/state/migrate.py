"""Create or upgrade the state store's schema with Alembic.

Alembic is imported only when the schema is not at :data:`HEAD` already: every CLI
command opens the store, and the import costs more than the rest of a small command.
A test checks that :data:`HEAD` is the newest migration script.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

#: The newest revision in ``syncd/migrations/versions`` (update it with each new one).
HEAD = "0001"


def alembic_config() -> AlembicConfig:
    """An Alembic configuration pointing at syncd's migration scripts."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def current_revision(engine: Engine) -> str | None:
    """The schema revision the store is at (None for a new, empty store)."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision; a no-op when it is already there."""
    if current_revision(engine) == HEAD:
        return
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
