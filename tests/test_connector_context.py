"""Plugin API 2: the context a connector is opened with (its own durable store, a
bound logger, the clock), through the engine's API and the store's."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from structlog.testing import capture_logs

from conftest import MYSQL_ENV
from syncd.config import parse_config
from syncd.engine_setup import runner_for
from syncd.plugin.context import ConnectorContext
from syncd.plugin.manager import ConnectorType, default_registry
from syncd.state import Store
from syncd.testing.memory import MemoryConnector, MemorySettings

ROUNDS = 25


class CountingConnector(MemoryConnector):
    """An API 2 connector counting its openings in its own store, as a connector
    rotating a token would keep the token."""

    type = "counting"

    def open(self) -> None:
        super().open()
        opened = self.context.store.update("opened", lambda old: str(int(old or 0) + 1))
        self.context.log.info("connector.opened", times=opened)


def counting_config(tmp_path: Path):
    registry = default_registry()
    kind = ConnectorType("counting", CountingConnector, "test", "tests", "0")
    registry = dataclasses.replace(registry, connectors={**registry.connectors, "counting": kind})
    data = {
        "daemon": {"state": f"sqlite:///{tmp_path / 'state.db'}"},
        "connectors": {
            "crm": {"type": "counting", "system": "left"},
            "books": {"type": "memory", "system": "right"},
        },
        "pairs": {"p": {"left": "crm", "right": "books", "entities": ["contact"]}},
    }
    return parse_config(data, tmp_path / "syncd.toml", registry)


def test_an_api_2_connector_keeps_its_values_across_runs(tmp_path: Path) -> None:
    config = counting_config(tmp_path)
    for _ in range(2):
        store = Store(config.state_url)
        assert runner_for(config, store).run("p").status == "ok"
        store.close()
    store = Store(config.state_url)
    context = ConnectorContext.create("crm", store)
    assert context.store.get("opened") == "2"
    assert ConnectorContext.create("books", store).store.get("opened") is None
    store.close()


def test_the_connector_logger_is_bound_with_pair_and_connector(tmp_path: Path) -> None:
    config = counting_config(tmp_path)
    store = Store(config.state_url)
    with capture_logs() as logs:
        runner_for(config, store).run("p")
    store.close()
    opened = [e for e in logs if e["event"] == "connector.opened"]
    assert opened == [
        {
            "event": "connector.opened",
            "times": "1",
            "pair": "p",
            "connector": "crm",
            "log_level": "info",
        }
    ]


def test_a_connector_opened_without_a_context_says_so(tmp_path: Path) -> None:
    connector = CountingConnector("crm", MemorySettings(system="left"), tmp_path)
    with pytest.raises(RuntimeError, match="connector crm was opened without a context"):
        connector.open()
    clock = lambda: datetime(2030, 1, 1, tzinfo=UTC)  # noqa: E731
    context = ConnectorContext.create("crm", clock=clock)
    with connector.with_context(context):
        assert context.store.get("opened") == "1"
        assert connector.context.clock() == datetime(2030, 1, 1, tzinfo=UTC)
        assert connector.context.http is None


def test_put_get_delete_and_bad_keys(store: Store) -> None:
    one = ConnectorContext.create("one", store).store
    two = ConnectorContext.create("two", store).store
    one.put("token", "a")
    two.put("token", "b")
    one.put("token", "c")
    assert (one.get("token"), two.get("token")) == ("c", "b")
    one.delete("token")
    one.delete("token")
    assert (one.get("token"), two.get("token")) == (None, "b")
    assert two.update("token", lambda _old: None) is None
    assert two.get("token") is None
    with pytest.raises(ValueError, match="1 to 200 characters"):
        one.get("")
    with pytest.raises(TypeError, match="text"):
        one.put("n", 3)  # type: ignore[arg-type]


def test_a_failed_change_writes_nothing(store: Store) -> None:
    values = ConnectorContext.create("one", store).store
    values.put("token", "old")

    def refresh(_old: str | None) -> str:
        raise RuntimeError("the system refused the refresh")

    with pytest.raises(RuntimeError):
        values.update("token", refresh)
    assert values.get("token") == "old"


def concurrent_updates(url: str) -> None:
    """Two threads, each with its own store, increment one key ``ROUNDS`` times each
    with a pause between reading and writing: a lost update shows as a short count."""
    Store(url).close()
    errors: list[BaseException] = []

    def slow_increment(old: str | None) -> str:
        time.sleep(0.002)
        return str(int(old or 0) + 1)

    def worker() -> None:
        store = Store(url)
        try:
            values = ConnectorContext.create("crm", store).store
            for _ in range(ROUNDS):
                values.update("counter", slow_increment)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    store = Store(url)
    assert ConnectorContext.create("crm", store).store.get("counter") == str(2 * ROUNDS)
    store.close()


@pytest.fixture
def mysql_url() -> Iterator[str]:
    """A fresh MariaDB/MySQL database for one test, dropped afterwards."""
    base = os.environ.get(MYSQL_ENV)
    if not base:
        pytest.skip(f"set {MYSQL_ENV} (e.g. mysql+pymysql://root@127.0.0.1:3306/test)")
    name = f"syncd_ctx_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    yield base.rsplit("/", 1)[0] + "/" + name
    with admin.begin() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
    admin.dispose()


@pytest.mark.parametrize("database", ["sqlite", "postgresql", "mysql"])
def test_concurrent_updates_lose_nothing(
    request: pytest.FixtureRequest, state_url: str, database: str
) -> None:
    if database == "sqlite":
        url = state_url
    else:
        fixture = {"postgresql": "postgres_url", "mysql": "mysql_url"}[database]
        url = str(request.getfixturevalue(fixture))
    concurrent_updates(url)
