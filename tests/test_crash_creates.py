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
    args = [sys.executable, FAULTS, "--kill-before-commit", str(before_commit)]
    args += ["--", "--config", str(config), "sync", "to-sql"]
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
