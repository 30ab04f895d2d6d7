"""Several real ``syncd sync`` of one pair started together, round after round, on a
SQLite and on a PostgreSQL state store: in every round exactly one runs, the others
say the pair is already running (exit 2), and no record is duplicated.

The processes are made to claim the pair together: the test holds the state store's
locks (its write lock on SQLite; on PostgreSQL the pair's row and the run table) until
every process has reached its claim, then lets them go at once. The run that wins
is then held on its first read of the CRM (the test holds the CRM database's lock)
until the others have answered, so "one ran, then the other ran" cannot pass for
"one refused". ``SYNCD_TEST_RACE_ROUNDS`` and ``SYNCD_TEST_RACERS`` set the rounds
and the processes per round for a deeper run.
"""

from __future__ import annotations

import contextlib
import csv
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from cli_helpers import SYNCD, demo_copy
from syncd.config import load_config
from syncd.state import Store

ROUNDS = int(os.environ.get("SYNCD_TEST_RACE_ROUNDS", "5"))
RACERS = int(os.environ.get("SYNCD_TEST_RACERS", "2"))


@pytest.fixture(params=["sqlite", "postgresql"])
def demo(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    config = demo_copy(tmp_path)
    text = config.read_text()
    # the CRM's readers wait for the test's lock instead of giving up after 5 s
    text = text.replace(
        'url = "sqlite:///demo/crm.db"', 'url = "sqlite:///demo/crm.db?timeout=120"'
    )
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
        text = text.replace('state = "sqlite:///demo/state/state.db"', f'state = "{url}"')
    config.write_text(text)
    return config


def add_contact(crm: Path, n: int) -> None:
    with sqlite3.connect(crm) as db:
        db.execute(
            "INSERT INTO contacts (first_name, last_name, email_address, title, private)"
            " VALUES (?, ?, ?, 'Racer', 0)",
            (f"R{n}", "Racer", f"racer{n}@race.example"),
        )


def until(check: Callable[[], bool], timeout: float) -> None:
    """Wait until ``check`` holds (bounded: the test's asserts then say what failed)."""
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.05)


def has_open(pid: int, path: Path) -> bool:
    """True when process ``pid`` has ``path`` open."""
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    found = False
    for fd in fds:
        with contextlib.suppress(OSError):
            found = found or os.readlink(fd) == str(path)
    return found


@contextlib.contextmanager
def claims_held(store: Store, procs: list[subprocess.Popen[str]]) -> Iterator[None]:
    """Hold every claim of the demo pair until each of ``procs`` has reached its own
    (or ended), then let them all go at once."""
    pending = lambda: [p for p in procs if p.poll() is None]  # noqa: E731
    with store.engine.connect() as conn:
        if store.engine.dialect.name == "sqlite":
            path = Path(str(store.engine.url.database))
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            until(lambda: all(has_open(p.pid, path) for p in pending()), timeout=60)
            time.sleep(0.3)  # from opening the store to claiming takes a few ms
        else:
            conn.exec_driver_sql("SELECT 1 FROM pair_state WHERE pair = 'crm-books' FOR UPDATE")
            conn.exec_driver_sql("LOCK TABLE run IN EXCLUSIVE MODE")
            waiting = text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND application_name = ANY(:names)"
            )

            def all_waiting() -> bool:
                names = [f"syncd-{p.pid}" for p in pending()]
                with store.engine.connect() as look:  # a new snapshot of the activity
                    return look.execute(waiting, {"names": names}).scalar() == len(names)

            until(all_waiting, timeout=60)
        yield
        conn.rollback()


def test_syncs_started_together_run_one_at_a_time(demo: Path) -> None:
    crm = demo.parent / "demo" / "crm.db"
    store = Store(load_config(demo).state_url)
    store.set_paused(["crm-books"], False)  # the pair's row exists, to be locked
    for n in range(ROUNDS):
        add_contact(crm, n)
        crm_lock = sqlite3.connect(crm, isolation_level=None)
        crm_lock.execute("BEGIN EXCLUSIVE")
        procs = [
            subprocess.Popen(
                [SYNCD, "--config", str(demo), "sync", "crm-books"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(RACERS)
        ]
        try:
            with claims_held(store, procs):
                pass
            ended = lambda: sum(p.poll() is not None for p in procs) >= RACERS - 1  # noqa: B023,E731
            until(ended, timeout=60)
        finally:
            crm_lock.execute("ROLLBACK")
            crm_lock.close()
        outcomes = [(p.wait(timeout=120), *p.communicate()) for p in procs]
        ran = [o for o in outcomes if o[0] in (0, 1)]
        refused = [o for o in outcomes if o[0] == 2 and "is already running" in o[2]]
        assert len(ran) == 1 and len(refused) == RACERS - 1, (n, outcomes)
        assert "of crm-books: " in ran[0][1]
        assert all(o[2].count("\n") == 1 and "Traceback" not in o[2] for o in refused)
    store.close()

    with (demo.parent / "demo" / "books" / "customers.csv").open(newline="") as handle:
        emails = [r["Email"].strip().lower() for r in csv.DictReader(handle)]
    assert len(emails) == len(set(emails)), "a contact was written twice"
    assert {f"racer{n}@race.example" for n in range(ROUNDS)} <= set(emails)
