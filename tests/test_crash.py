"""Crash safety through the real command: ``syncd sync`` killed with SIGKILL at
random moments, several times, then run to the end — no duplicate, nothing lost,
and the next run writes nothing."""

from __future__ import annotations

import csv
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from cli_helpers import SYNCD, syncd

N = 25_000

CONFIG = """
[daemon]
state = "sqlite:///state.db"
log_format = "json"

[connectors.crm]
type = "sql"
url = "sqlite:///crm.db"
  [connectors.crm.entities.contact]
  table = "contacts"
  updated_at = "updated_at"

[connectors.books]
type = "csv"
path = "books"
  [connectors.books.entities.contact]
  file = "contacts.csv"
  id = "Id"
  [connectors.books.entities.contact.fields]
  email = "Email"
  first_name = "First"

[connectors.erp]
type = "sql"
url = "sqlite:///erp.db"
  [connectors.erp.entities.contact]
  table = "contacts"

[pairs.to-csv]
left = "crm"
right = "books"
entities = ["contact"]
  [pairs.to-csv.match]
  contact = ["email"]

[pairs.to-sql]
left = "crm"
right = "erp"
entities = ["contact"]
  [pairs.to-sql.match]
  contact = ["email"]
"""


@pytest.fixture
def setup(tmp_path: Path) -> Path:
    (tmp_path / "syncd.toml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "books").mkdir()
    schema = "CREATE TABLE contacts (id INTEGER PRIMARY KEY, first_name TEXT, email TEXT{})"
    with sqlite3.connect(tmp_path / "crm.db") as db:
        db.execute(schema.format(", updated_at TEXT NOT NULL"))
        db.executemany(
            "INSERT INTO contacts VALUES (?, ?, ?, '2026-01-01 00:00:00')",
            ((i, f"First{i}", f"p{i}@example.com") for i in range(1, N + 1)),
        )
    with sqlite3.connect(tmp_path / "erp.db") as db:
        db.execute(schema.format(""))
    return tmp_path / "syncd.toml"


def bound(config: Path) -> int:
    """How many bindings the state store holds (0 before the first run)."""
    path = config.parent / "state.db"
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=10) as db:
        try:
            return db.execute("SELECT count(*) FROM binding").fetchone()[0]
        except sqlite3.OperationalError:  # the schema is not created yet
            return 0


def kill_mid_run(config: Path, pair: str, rnd: random.Random) -> bool:
    """Start a sync and SIGKILL it once it has recorded some progress, at a random
    moment after that; True if it was killed before it recorded its end (a kill
    that lands while a finished run closes its connections interrupts nothing)."""
    start = bound(config)
    left = N - start  # a run binds ~40,000 records a second: aim well within them
    goal = start + rnd.randint(left // 20, left // 4)
    proc = subprocess.Popen(
        [SYNCD, "--config", str(config), "sync", pair],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if bound(config) >= goal:
            time.sleep(rnd.uniform(0, 0.03))
            break
        time.sleep(0.02)
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    latest = syncd("history", pair, "--limit", "1", "--json", config=config).json()
    return latest[0]["status"] == "running"


def target_emails(config: Path, pair: str) -> list[str]:
    if pair == "to-csv":
        with (config.parent / "books" / "contacts.csv").open(newline="") as handle:
            return [row["Email"] for row in csv.DictReader(handle)]
    with sqlite3.connect(config.parent / "erp.db") as db:
        return [email for (email,) in db.execute("SELECT email FROM contacts")]


@pytest.mark.parametrize("pair", ["to-csv", "to-sql"])
def test_killed_runs_leave_no_duplicate_and_lose_nothing(setup: Path, pair: str) -> None:
    rnd = random.Random(pair)
    kills = 0
    for _ in range(5):
        if kill_mid_run(setup, pair, rnd):
            kills += 1
        with sqlite3.connect(setup.parent / "crm.db") as db:  # edits between crashes
            db.execute(
                "UPDATE contacts SET first_name = first_name || 'x',"
                " updated_at = datetime('2026-01-01', '+' || ? || ' minutes') WHERE id = ?",
                (kills + 1, rnd.randint(1, N)),
            )
    assert kills >= 3, "the runs ended before they could be killed; raise N"
    final = syncd("sync", pair, "--json", config=setup, timeout=300)
    assert final.code == 0, final.err
    emails = target_emails(setup, pair)
    assert len(emails) == len(set(emails)) == N
    assert set(emails) == {f"p{i}@example.com" for i in range(1, N + 1)}
    again = syncd("sync", pair, "--json", config=setup).json()
    assert sum(again["counts"].values()) == 0
    runs = syncd("history", pair, "--limit", "50", "--json", config=setup).json()
    assert sum(r["status"] == "interrupted" for r in runs) >= kills
    with sqlite3.connect(setup.parent / "state.db") as db:
        assert db.execute("SELECT count(*) FROM intent").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM binding").fetchone()[0] == N


def daemon_mid_run(config: Path) -> subprocess.Popen[bytes]:
    """``syncd run`` with the to-sql pair scheduled (so it runs at once), returned as
    soon as its run has bound 2,000 records."""
    text = config.read_text().replace("[pairs.to-sql]\n", '[pairs.to-sql]\nevery = "1h"\n')
    config.write_text(text)
    proc = subprocess.Popen(
        [SYNCD, "--config", str(config), "run"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while bound(config) < 2000 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    return proc


def test_sigterm_mid_run_stops_the_daemon_cleanly(setup: Path) -> None:
    """SIGTERM while the daemon is in the middle of a run: it commits the batch in
    hand and exits 0; every row written is bound, and the next run completes the
    rest without a duplicate."""
    proc = daemon_mid_run(setup)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    with sqlite3.connect(setup.parent / "state.db") as db:
        (status,) = db.execute("SELECT status FROM run ORDER BY id DESC LIMIT 1").fetchone()
    assert status in ("stopped", "ok"), status
    assert len(target_emails(setup, "to-sql")) == bound(setup)  # nothing half-written
    final = syncd("sync", "to-sql", "--json", config=setup, timeout=300)
    assert final.code == 0, final.err
    emails = target_emails(setup, "to-sql")
    assert len(emails) == len(set(emails)) == N


def hold_outside_a_transaction(proc: subprocess.Popen[bytes], state: Path) -> None:
    """Stop ``proc`` (SIGSTOP) at a moment it holds no write lock on ``state``: stop
    it, and if it holds one, let it run a few milliseconds and try again."""
    for _ in range(500):
        proc.send_signal(signal.SIGSTOP)
        db = sqlite3.connect(state, timeout=0, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("ROLLBACK")
            return
        except sqlite3.OperationalError:  # locked: it was stopped inside a transaction
            proc.send_signal(signal.SIGCONT)
            time.sleep(0.002)
        finally:
            db.close()
    raise AssertionError("the daemon never let go of the state store")


def test_pausing_mid_run_stops_the_run_after_its_batch(setup: Path) -> None:
    """``syncd pause`` while the daemon runs the pair: the run stops after the batch
    in hand (status stopped, nothing half-written), the daemon stays up, and after
    ``resume`` the pair completes without a duplicate."""
    proc = daemon_mid_run(setup)
    try:
        # The run is quicker than starting `syncd pause`, so the daemon is held still
        # (SIGSTOP) while the pause is requested, at a moment it holds no state-store
        # transaction: else the pause would wait for it, and SQLite does not queue
        # writers, so the run could end before the pause got its turn.
        hold_outside_a_transaction(proc, setup.parent / "state.db")
        paused = syncd("pause", "to-sql", config=setup, timeout=60)
        proc.send_signal(signal.SIGCONT)
        assert paused.code == 0, paused.err
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with sqlite3.connect(setup.parent / "state.db", timeout=10) as db:
                row = db.execute(
                    "SELECT status, error FROM run ORDER BY id DESC LIMIT 1"
                ).fetchone()
            if row[0] != "running":
                break
            time.sleep(0.05)
        assert row == ("stopped", "stopped early: the pair was paused")
        assert bound(setup) < N and len(target_emails(setup, "to-sql")) == bound(setup)
        assert proc.poll() is None
        assert syncd("resume", "to-sql", config=setup).code == 0
        done = syncd("trigger", "to-sql", "--wait", config=setup, timeout=120)
        assert done.code == 0, done.err + done.out
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    emails = target_emails(setup, "to-sql")
    assert len(emails) == len(set(emails)) == N
