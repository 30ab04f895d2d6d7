"""Shared fixtures: a state store per test, memory systems, configs built in code."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from syncd.config import Config, parse_config
from syncd.plugin.manager import default_registry
from syncd.state import Store
from syncd_memory import MemorySystem, memory_system, reset_memory_systems

POSTGRES_ENV = "SYNCD_TEST_POSTGRES_URL"
MYSQL_ENV = "SYNCD_TEST_MYSQL_URL"


@pytest.fixture(autouse=True)
def _fresh_memory_systems() -> Iterator[None]:
    reset_memory_systems()
    yield
    reset_memory_systems()


@pytest.fixture
def state_url(tmp_path: Path) -> str:
    """A fresh SQLite state store URL."""
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture
def store(state_url: str) -> Iterator[Store]:
    """A migrated state store on SQLite."""
    s = Store(state_url)
    yield s
    s.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"set {POSTGRES_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    name = f"syncd_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.rsplit("/", 1)[0] + "/" + name
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def make_config(tmp_path: Path, pair: dict[str, Any], **connectors: dict[str, Any]) -> Config:
    """A validated configuration with memory connectors ``left`` and ``right`` (unless
    given) and one pair called ``p``."""
    conns = {
        "left": {"type": "memory", "system": "left"},
        "right": {"type": "memory", "system": "right"},
        **connectors,
    }
    data = {
        "daemon": {"state": f"sqlite:///{tmp_path / 'state.db'}"},
        "connectors": conns,
        "pairs": {"p": {"left": "left", "right": "right", **pair}},
    }
    return parse_config(data, tmp_path / "syncd.toml", default_registry())


def systems() -> tuple[MemorySystem, MemorySystem]:
    """The memory systems behind the ``left`` and ``right`` connectors."""
    return memory_system("left"), memory_system("right")
