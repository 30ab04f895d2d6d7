"""A failing state store ends a run with one line naming the cause, never SQL or
contact data: a full disk (SQLite's page limit in-process; a small tmpfs through the
CLI), a PostgreSQL connection killed mid-run, a locked database. The run is recorded
as failed where the store can still write, and the daemon survives it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from cli_helpers import SYNCD, demo_copy, syncd
from conftest import make_config, systems
from syncd.config import load_config
from syncd.engine_setup import runner_for
from syncd.state import Store
from syncd.state.errors import LOCKED, classify

PAIR = {"mode": "export", "match": {"contact": ["email"]}}


def contact(i: int) -> dict[str, Any]:
    return {"email": f"person{i}@contact-data.example", "notes": f"note {i} " * 40}


def assert_clean(text_: str, reason: str) -> None:
    """``text_`` names ``reason`` and holds no SQL, no contact data, no traceback."""
    assert reason in text_, text_
    for leak in ("@contact-data.example", "INSERT", "SELECT", "[parameters", "Traceback"):
        assert leak not in text_, text_


def test_a_full_disk_fails_the_run_with_one_line_and_records_it(
    tmp_path: Path, store: Store
) -> None:
    cfg = make_config(tmp_path, PAIR)
    left, _ = systems()
    left.put("contact", contact(0))
    assert runner_for(cfg, store).run("p").status == "ok"
    with store.engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()

    def limit(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages + 2}")

    event.listen(store.engine, "connect", limit)
    store.engine.dispose()
    for i in range(1, 400):
        left.put("contact", contact(i))
    result = runner_for(cfg, store).run("p")
    assert result.status == "failed"
    assert result.error == "state store: disk full"
    (run, _) = store.runs("p")
    assert (run["id"], run["status"], run["error"]) == (result.run_id, "failed", result.error)


def test_a_locked_database_is_named() -> None:
    """SQLite's SQLITE_BUSY, raised by a real connection, reads "database is locked"."""
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"syncd-locked-{os.getpid()}.db"
    one = sqlite3.connect(path, isolation_level=None, timeout=0)
    two = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        one.execute("BEGIN EXCLUSIVE")
        with pytest.raises(sqlite3.OperationalError) as caught:
            two.execute("BEGIN EXCLUSIVE")
        error = classify(caught.value, "sqlite")
        assert (str(error), error.kind) == ("state store: database is locked", LOCKED)
    finally:
        one.close()
        two.close()
        path.unlink()


# -- through the CLI ----------------------------------------------------------------------


def add_contacts(crm: Path, count: int, first: int = 0) -> None:
    with sqlite3.connect(crm) as db:
        db.executemany(
            "INSERT INTO contacts (first_name, last_name, email_address, title, private)"
            " VALUES (?, 'Doe', ?, ?, 0)",
            [
                (f"P{i}", f"person{i}@contact-data.example", "Director of things " * 10)
                for i in range(first, first + count)
            ],
        )


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 320 KiB tmpfs mounted for the test (skipped where mounting is not allowed)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=320k,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); the page-limit test runs")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_through_the_cli_is_one_clean_line(tmp_path: Path, small_disk: Path) -> None:
    config = demo_copy(tmp_path)
    state = small_disk / "state.db"
    config.write_text(
        config.read_text().replace("sqlite:///demo/state/state.db", f"sqlite:///{state}")
    )
    add_contacts(config.parent / "demo" / "crm.db", 2000)
    done = syncd("sync", "crm-books", config=config)
    assert done.code == 1, done.out + done.err
    assert_clean(done.err + done.out, "state store: disk full")
    shown = syncd("history", "--json", config=config)
    assert shown.code == 0, shown.err
    (run,) = shown.json()
    if run["status"] == "running":  # the store could not even record the failure
        assert "could not be recorded" in done.err
    else:
        assert run["status"] == "failed"
        assert_clean(run["error"], "state store: disk full")
        assert "\n" not in run["error"]


@pytest.fixture
def pg_demo(tmp_path: Path, postgres_url: str) -> Path:
    config = demo_copy(tmp_path)
    config.write_text(config.read_text().replace("sqlite:///demo/state/state.db", postgres_url))
    add_contacts(config.parent / "demo" / "crm.db", 50)
    return config


def until(check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("timed out")


def kill_when_blocked(store: Store, pid: int, table: str, start: Callable[[], Any]) -> Any:
    """Hold ``table`` locked, call ``start``, and terminate the PostgreSQL backend of
    process ``pid`` once it waits for that lock; returns what ``start`` returned."""
    blocked = text(
        "SELECT pid FROM pg_stat_activity WHERE application_name = :name"
        " AND wait_event_type = 'Lock'"
    )
    with store.engine.connect() as holder:
        holder.exec_driver_sql(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        started = start()

        def backend() -> int | None:
            with store.engine.connect() as look:
                return look.execute(blocked, {"name": f"syncd-{pid or started.pid}"}).scalar()

        victim = until(backend)
        with store.engine.connect() as killer:
            assert killer.execute(text("SELECT pg_terminate_backend(:p)"), {"p": victim}).scalar()
        holder.rollback()
    return started


def test_a_postgresql_connection_killed_mid_run_fails_the_run_in_one_line(pg_demo: Path) -> None:
    store = Store(load_config(pg_demo).state_url)
    try:
        proc = kill_when_blocked(
            store,
            0,
            "run_item",
            lambda: subprocess.Popen(
                [SYNCD, "--config", str(pg_demo), "sync", "crm-books"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 1, out + err
        assert_clean(out + err, "state store: connection to PostgreSQL lost")
        (run,) = syncd("history", "--json", config=pg_demo).json()
        assert run["status"] == "failed"
        assert run["error"] == "state store: connection to PostgreSQL lost"
        again = syncd("sync", "crm-books", config=pg_demo)
        assert again.code in (0, 1) and "of crm-books: " in again.out, again.err
    finally:
        store.close()


def test_the_daemon_survives_a_state_store_that_fails(pg_demo: Path) -> None:
    pg_demo.write_text(pg_demo.read_text().replace('every = "20s"', ""))  # runs when asked
    store = Store(load_config(pg_demo).state_url)
    log = (pg_demo.parent / "daemon.log").open("w")
    daemon = subprocess.Popen(
        [SYNCD, "--config", str(pg_demo), "run"], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        until(lambda: store.daemons(5))
        # the heartbeat's connection dies in the daemon's own loop
        kill_when_blocked(store, daemon.pid, "heartbeat", lambda: None)
        # and a run's connection dies mid-run
        add_contacts(pg_demo.parent / "demo" / "crm.db", 20, first=1000)
        kill_when_blocked(
            store,
            daemon.pid,
            "run_item",
            lambda: syncd("trigger", "crm-books", config=pg_demo),
        )
        until(lambda: [r for r in store.runs("crm-books") if r["status"] == "failed"])
        waited = syncd("trigger", "crm-books", "--wait", config=pg_demo)
        assert waited.code in (0, 1) and "of crm-books: " in waited.out, waited.err
        assert daemon.poll() is None
    finally:
        daemon.terminate()
        code = daemon.wait(timeout=30)
        log.close()
        store.close()
    assert code == 0
    logged = (pg_demo.parent / "daemon.log").read_text()
    assert_clean(logged, "state store: connection to PostgreSQL lost")
    events = [json.loads(line)["event"] for line in logged.splitlines() if line.startswith("{")]
    assert "daemon.store_failed" in events and "run.crashed" not in events
