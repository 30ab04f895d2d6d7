"""Creates interrupted on a target that chooses its own ids, through the real command.

``syncd sync`` of a one-way pair into a SQL table (the database picks each new row's
id) is killed with SIGKILL just before the Nth state-store commit (``tests/faults.py``:
every connector write of that batch is done, none of it recorded), several times, then
run to the end. The pair has no match keys of its own (contacts fall back to e-mail),
a fifth of the contacts have no e-mail and a tenth share one, so the match keys cannot
find an interrupted create again: the records it made are found by what was sent.

``SYNCD_DEEP_KILLS=200`` runs the deep variant: that many kills at random commits.
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cli_helpers import ROOT, syncd

#: Contacts in the CRM: three batches of creates (the sql connector writes 1,000 at a time).
N = 2500
FAULTS = str(ROOT / "tests" / "faults.py")

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

[connectors.erp]
type = "sql"
url = "{erp}"
  [connectors.erp.entities.contact]
  table = "contacts"
{marker}
[pairs.to-sql]
left = "crm"
right = "erp"
entities = ["contact"]
"""

ERP_TABLE = "CREATE TABLE contacts (id {key}, first_name TEXT, last_name TEXT, email TEXT{extra})"


def crm_rows(n: int, seed: int = 17) -> list[tuple[int, str, str, str | None]]:
    """``n`` contacts: a fifth without an e-mail, about a tenth sharing one."""
    rnd = random.Random(seed)
    rows = []
    for i in range(1, n + 1):
        draw = rnd.random()
        if draw < 0.2:
            email = None
        elif draw < 0.31:
            email = f"team{rnd.randint(1, n // 40)}@example.com"
        else:
            email = f"p{i}@example.com"
        rows.append((i, f"First{i}", f"Last{i}", email))
    return rows


def make_world(folder: Path, erp_url: str, marker: bool) -> Path:
    """The CRM (SQLite), an empty ERP table at ``erp_url``; returns the config path."""
    with sqlite3.connect(folder / "crm.db") as db:
        db.execute(
            "CREATE TABLE contacts (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT,"
            " email TEXT, updated_at TEXT NOT NULL)"
        )
        db.executemany(
            "INSERT INTO contacts VALUES (?, ?, ?, ?, '2026-01-01 00:00:00')", crm_rows(N)
        )
    engine = sa.create_engine(erp_url)
    serial = "SERIAL PRIMARY KEY" if engine.dialect.name == "postgresql" else "INTEGER PRIMARY KEY"
    with engine.begin() as conn:
        conn.exec_driver_sql(
            ERP_TABLE.format(key=serial, extra=", syncd_key VARCHAR(64)" if marker else "")
        )
    engine.dispose()
    setting = '  created_key = "syncd_key"\n' if marker else ""
    config = folder / "syncd.toml"
    config.write_text(CONFIG.format(erp=erp_url, marker=setting), encoding="utf-8")
    return config


def killed_sync(config: Path, before_commit: int) -> int:
    """``syncd sync to-sql`` killed just before its ``before_commit``-th batch commit
    (if it gets that far); its exit status."""
    return killed_sync_pair(config, "to-sql", before_commit)


def killed_sync_pair(config: Path, pair: str, before_commit: int) -> int:
    """``syncd sync PAIR`` killed just before its ``before_commit``-th batch commit
    (if it gets that far); its exit status."""
    args = [sys.executable, FAULTS, "--kill-before-commit", str(before_commit)]
    args += ["--", "--config", str(config), "sync", pair]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode in (-9, 0), done.stderr
    return done.returncode


def erp_rows(erp_url: str) -> list[Any]:
    engine = sa.create_engine(erp_url)
    with engine.connect() as conn:
        rows = list(conn.exec_driver_sql("SELECT id, first_name, last_name, email FROM contacts"))
    engine.dispose()
    return rows


def assert_synced_once(config: Path, erp_url: str) -> None:
    """Every CRM contact is in the ERP exactly once, bound to its own row, field for
    field; no intent is left and the next run writes nothing."""
    final = syncd("sync", "to-sql", "--json", config=config, timeout=300)
    assert final.code == 0, final.err + final.out
    rows = erp_rows(erp_url)
    names = Counter(row[1] for row in rows)
    duplicates = {name: count for name, count in names.items() if count > 1}
    assert not duplicates, f"{len(duplicates)} contacts created twice"
    source = {str(i): (first, last, email) for i, first, last, email in crm_rows(N)}
    target = {str(row[0]): tuple(row[1:]) for row in rows}
    assert len(target) == N
    with sqlite3.connect(config.parent / "state.db") as db:
        bindings = db.execute("SELECT left_id, right_id FROM binding").fetchall()
        assert db.execute("SELECT count(*) FROM intent").fetchone()[0] == 0
    assert len(bindings) == N
    assert {left for left, _ in bindings} == set(source)
    assert {right for _, right in bindings} == set(target)
    assert all(target[right] == source[left] for left, right in bindings)
    again = syncd("sync", "to-sql", "--json", config=config).json()
    assert sum(again["counts"].values()) == 0


def erp_url_for(backend: str, folder: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{folder / 'erp.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.mark.parametrize(
    ("backend", "marker"),
    [("sqlite", False), ("sqlite", True), ("postgresql", False)],
    ids=["sqlite-since-mark", "sqlite-marker-column", "postgresql-since-mark"],
)
def test_interrupted_creates_are_found_without_match_keys(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str, marker: bool
) -> None:
    erp_url = erp_url_for(backend, tmp_path, request)
    config = make_world(tmp_path, erp_url, marker)
    kills = [killed_sync(config, n) for n in (2, 1, 2, 1)]
    assert kills.count(-9) >= 3
    assert_synced_once(config, erp_url)


@pytest.mark.skipif(not os.environ.get("SYNCD_DEEP_KILLS"), reason="set SYNCD_DEEP_KILLS=200")
@pytest.mark.parametrize("marker", [False, True], ids=["since-mark", "marker-column"])
def test_deep_many_kills_leave_no_duplicate_and_lose_nothing(tmp_path: Path, marker: bool) -> None:
    """The deep variant: SYNCD_DEEP_KILLS kills (split over both ways of finding an
    interrupted create), each at a random commit of a run that starts over from a
    fresh world every few kills."""
    total = int(os.environ["SYNCD_DEEP_KILLS"]) // 2
    rnd = random.Random(f"deep-{marker}")
    killed = 0
    world = 0
    while killed < total:
        folder = tmp_path / f"w{world}"
        folder.mkdir()
        erp_url = f"sqlite:///{folder / 'erp.db'}"
        config = make_world(folder, erp_url, marker)
        for _ in range(rnd.randint(1, 6)):
            if killed_sync(config, rnd.randint(1, 4)) == -9:
                killed += 1
        assert_synced_once(config, erp_url)
        world += 1
    print(f"{killed} kills over {world} worlds: no duplicate, nothing lost")


HELD_CONFIG = """
[daemon]
state = "sqlite:///state.db"

[connectors.crm]
type = "sql"
url = "sqlite:///crm.db"
  [connectors.crm.entities.contact]
  table = "contacts"

[connectors.erp]
type = "sql"
url = "sqlite:///erp.db"
  [connectors.erp.entities.contact]
  table = "contacts"

[pairs.to-erp]
left = "crm"
right = "erp"
entities = ["contact"]
"""


def failures(config: Path) -> dict[str, str]:
    """Sync the pair; the failed items of the run: source id -> error."""
    run = syncd("sync", "to-erp", "--json", config=config)
    assert run.code == 1, run.err
    shown = syncd("show", str(run.json()["run_id"]), "--json", config=config).json()
    return {i["source_id"]: i["error"] for i in shown["items"] if i["outcome"] == "failed"}


def test_a_create_that_cannot_be_found_again_waits_for_a_person(tmp_path: Path) -> None:
    """A target whose ids are text the database makes up (no order, no marker column):
    an interrupted create is found again only by its e-mail. Those without one, or
    sharing one, may exist or not: each run reports them as needing a person and
    creates nothing for them, until a person links one or releases another (or the
    record is deleted: then nothing is to be created)."""
    config = tmp_path / "syncd.toml"
    config.write_text(HELD_CONFIG, encoding="utf-8")
    people = [
        (1, "Ann", "ann@example.com"),
        (2, "Bob", None),
        (3, "Cy", "team@example.com"),
        (4, "Di", "team@example.com"),
        (5, "Ed", None),
    ]
    with sqlite3.connect(tmp_path / "crm.db") as db:
        db.execute("CREATE TABLE contacts (id INTEGER PRIMARY KEY, first_name TEXT, email TEXT)")
        db.executemany("INSERT INTO contacts VALUES (?, ?, ?)", people)
    with sqlite3.connect(tmp_path / "erp.db") as db:
        db.execute(
            "CREATE TABLE contacts (id TEXT PRIMARY KEY DEFAULT (lower(hex(randomblob(8)))),"
            " first_name TEXT, email TEXT)"
        )

    def erp() -> dict[str, str]:
        with sqlite3.connect(tmp_path / "erp.db") as db:
            return dict(db.execute("SELECT first_name, id FROM contacts"))

    assert killed_sync_pair(config, "to-erp", 1) == -9
    assert set(erp()) == {"Ann", "Bob", "Cy", "Di", "Ed"}
    for _ in range(2):
        held = failures(config)
        assert set(held) == {"2", "3", "4", "5"}
        assert all("needs a person" in error for error in held.values())
        assert "syncd bindings link to-erp contact 2 RIGHT_ID" in held["2"]
        assert "syncd bindings release to-erp contact --left 2" in held["2"]
        assert len(erp()) == 5  # nothing created again
    ids = erp()
    assert syncd("bindings", "link", "to-erp", "contact", "2", ids["Bob"], config=config).code == 0
    with sqlite3.connect(tmp_path / "erp.db") as db:  # a person finds Ed's was never made
        db.execute("DELETE FROM contacts WHERE first_name = 'Ed'")
    released = syncd("bindings", "release", "to-erp", "contact", "--left", "5", config=config)
    assert released.code == 0, released.err
    again = syncd("bindings", "release", "to-erp", "contact", "--left", "1", config=config)
    assert again.code == 2 and "is not held" in again.err
    with sqlite3.connect(tmp_path / "crm.db") as db:  # nothing to create for Di any more
        db.execute("DELETE FROM contacts WHERE id = 4")
    assert set(failures(config)) == {"3"}
    after = erp()
    assert sorted(after) == ["Ann", "Bob", "Cy", "Di", "Ed"] and after["Bob"] == ids["Bob"]
    with sqlite3.connect(tmp_path / "state.db") as db:
        bound = dict(db.execute("SELECT left_id, right_id FROM binding"))
    assert bound == {"1": ids["Ann"], "2": ids["Bob"], "5": after["Ed"]}
    with sqlite3.connect(tmp_path / "state.db") as db:
        assert db.execute("SELECT source_id FROM intent").fetchall() == [("3",)]
