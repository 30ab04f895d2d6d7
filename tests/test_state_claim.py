"""One run per pair at a time: the claim is atomic in the state store.

Two runners, each with its own store (as two processes have), are made to interleave
exactly where a check-then-insert claim breaks: each is held just before inserting
its run until the other gets there too. With an atomic claim the second never gets
there: it waits for the first's claim and then finds it running.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text

from conftest import MYSQL_ENV, make_config, systems
from syncd.engine import RunResult
from syncd.engine_setup import runner_for
from syncd.errors import UserError
from syncd.state import Store

PAIR = {"mode": "export", "match": {"contact": ["email"]}}


@pytest.fixture
def mysql_url() -> Iterator[str]:
    """A fresh MariaDB/MySQL database for one test, dropped afterwards."""
    base = os.environ.get(MYSQL_ENV)
    if not base:
        pytest.skip(f"set {MYSQL_ENV} (e.g. mysql+pymysql://root@127.0.0.1:3306/test)")
    name = f"syncd_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    yield base.rsplit("/", 1)[0] + "/" + name
    with admin.begin() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    fixture = {"postgresql": "postgres_url", "mysql": "mysql_url"}[request.param]
    return str(request.getfixturevalue(fixture))


def hold_before_inserting_a_run(store: Store, barrier: threading.Barrier) -> None:
    """Make ``store`` wait at ``barrier`` just before it inserts a run (and go on
    alone if the other party never arrives)."""

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO") and " run " in f"{statement} ":
            with suppress(threading.BrokenBarrierError):
                barrier.wait()

    event.listen(store.engine, "before_cursor_execute", before)


@pytest.fixture
def two_stores(url: str) -> Iterator[tuple[Store, Store]]:
    one, two = Store(url), Store(url)
    yield one, two
    one.close()
    two.close()


def test_two_runners_racing_for_one_pair_one_runs_and_one_is_refused(
    tmp_path: Path, url: str, two_stores: tuple[Store, Store]
) -> None:
    cfg = make_config(tmp_path, PAIR)  # the runners use the stores given to them
    left, right = systems()
    for i in range(20):
        left.put("contact", {"email": f"c{i}@example.org"})
    barrier = threading.Barrier(2, timeout=1)
    outcomes: list[RunResult | Exception] = []
    done = [threading.Event(), threading.Event()]

    def run(me: int) -> None:
        store = two_stores[me]
        hold_before_inserting_a_run(store, barrier)
        # a run that started goes on only once the other runner is done: both are
        # running at once unless one was refused
        runner = runner_for(cfg, store, progress=lambda *_: done[1 - me].wait(5))
        try:
            outcomes.append(runner.run("p"))
        except Exception as exc:  # the outcome is what the test looks at
            outcomes.append(exc)
        finally:
            done[me].set()

    threads = [threading.Thread(target=run, args=(me,)) for me in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(outcomes) == 2
    ran = [o for o in outcomes if isinstance(o, RunResult)]
    refused = [o for o in outcomes if isinstance(o, UserError)]
    assert len(ran) == 1 and len(refused) == 1, outcomes
    assert "pair p is already running" in str(refused[0])
    assert ran[0].status == "ok" and ran[0].counts["created"] == 20
    assert len(right.rows("contact")) == 20
    assert [r["status"] for r in two_stores[0].runs("p")] == ["ok"]


def test_stores_opened_together_on_a_new_database_build_its_schema_once(url: str) -> None:
    """Processes started together on a new store each find it empty: one builds the
    schema, the others wait for it and use it."""
    barrier = threading.Barrier(6, timeout=10)
    outcomes: list[Store | Exception] = []

    def open_store() -> None:
        barrier.wait()
        try:
            outcomes.append(Store(url))
        except Exception as exc:  # the outcome is what the test looks at
            outcomes.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    stores = [o for o in outcomes if isinstance(o, Store)]
    try:
        assert len(stores) == 6, outcomes
        assert stores[0].start_run("p", "cli", "export", False) == 1
    finally:
        for store in stores:
            store.close()
