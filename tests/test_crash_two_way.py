"""Two-way crash safety through the real command: ``syncd sync`` killed (SIGKILL, by
``tests/faults.py``) just before the state commit that follows its write into one
side. The write landed, its snapshot was not recorded; the next run must recognise
the write as its own, so a person's next edit on the other side is not taken for a
conflict with syncd's echo and reverted."""

from __future__ import annotations

import csv
import os
import random
import sqlite3
import subprocess
import sys
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cli_helpers import ROOT, syncd

EDITED = 10

CONFIG = """
[daemon]
state = "sqlite:///state.db"

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
  phone = "Phone"
  title = "Title"

[pairs.crm-books]
left = "crm"
right = "books"
mode = "two-way"
entities = ["contact"]
conflict = "{conflict}"
  [pairs.crm-books.match]
  contact = ["email"]
"""


def _now() -> str:
    return datetime.now(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def make_world(root: Path, conflict: str) -> Path:
    """A CRM of 20 contacts, synced once into an empty books folder."""
    (root / "books").mkdir()
    with sqlite3.connect(root / "crm.db") as db:
        db.execute(
            "CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT, phone TEXT,"
            " title TEXT, updated_at TIMESTAMP NOT NULL)"
        )
        db.executemany(
            "INSERT INTO contacts VALUES (?, ?, ?, ?, ?)",
            [(i, f"p{i}@example.com", f"{i}00", "Clerk", _now()) for i in range(1, 21)],
        )
    config = root / "syncd.toml"
    config.write_text(CONFIG.format(conflict=conflict), encoding="utf-8")
    first = sync(config)
    assert first["counts"]["created"] == 20
    return config


def sync(config: Path) -> dict[str, Any]:
    done = syncd("sync", "crm-books", "--json", config=config)
    assert done.code == 0, done.err
    return done.json()


def killed_sync(config: Path, target_side: str, commit: int = 1) -> bool:
    """``syncd sync`` killed just before its ``commit``-th batch commit that writes to
    ``target_side``: every write of that batch landed, none is recorded. False if the
    run ended before that commit."""
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests" / "faults.py"),
            "--kill-before-commit",
            str(commit),
            "--target-side",
            target_side,
            "--",
            "--config",
            str(config),
            "sync",
            "crm-books",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode in (-9, 0), (done.returncode, done.stderr[-2000:])
    return done.returncode == -9


def books(root: Path) -> dict[str, dict[str, str]]:
    with (root / "books" / "contacts.csv").open(newline="", encoding="utf-8") as handle:
        return {row["Email"]: row for row in csv.DictReader(handle)}


def edit_books(root: Path, title: str, edited: Collection[int] = range(1, EDITED + 1)) -> None:
    """Set the title of contacts ``edited`` (numbers) in the CSV."""
    path = root / "books" / "contacts.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        rows = list(reader)
    for row in rows:
        if int(row["Email"].removeprefix("p").split("@")[0]) in edited:
            row["Title"] = f"{title} {row['Email']}"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, header)
        writer.writeheader()
        writer.writerows(rows)


def crm(root: Path) -> dict[str, str]:
    """E-mail -> title in the CRM."""
    with sqlite3.connect(root / "crm.db") as db:
        return dict(db.execute("SELECT email, title FROM contacts").fetchall())


def edit_crm(root: Path, title: str, edited: Collection[int] = range(1, EDITED + 1)) -> None:
    """Set the title of contacts ``edited`` (numbers) in the CRM."""
    with sqlite3.connect(root / "crm.db") as db:
        db.executemany(
            "UPDATE contacts SET title = ? || ' ' || email, updated_at = ? WHERE id = ?",
            [(title, _now(), number) for number in edited],
        )


def titles(root: Path, side: str) -> dict[str, str]:
    if side == "left":
        return crm(root)
    return {email: row["Title"] for email, row in books(root).items()}


def expected(title: str) -> dict[str, str]:
    return {
        f"p{i}@example.com": f"{title} p{i}@example.com" if i <= EDITED else "Clerk"
        for i in range(1, 21)
    }


# (the side edited, the side syncd writes into and is killed after, the conflict rule
# under which syncd's echo would win a conflict)
CASES = [("right", "left", "left"), ("left", "right", "right")]


@pytest.mark.parametrize(("edited", "written", "conflict"), CASES)
def test_a_write_killed_before_its_commit_is_not_taken_for_an_edit(
    tmp_path: Path, edited: str, written: str, conflict: str
) -> None:
    config = make_world(tmp_path, conflict)
    edit = edit_books if edited == "right" else edit_crm
    edit(tmp_path, "First")
    assert killed_sync(config, written)
    # the write landed before the kill
    assert titles(tmp_path, written) == expected("First")

    edit(tmp_path, "Second")
    after = sync(config)
    assert after["counts"]["conflicts"] == 0, after
    assert titles(tmp_path, edited) == expected("Second")
    assert titles(tmp_path, written) == expected("Second")
    # and nothing is left to do
    again = sync(config)
    assert sum(again["counts"].values()) == 0, again


@pytest.mark.parametrize(("edited", "written", "conflict"), CASES)
def test_a_write_killed_before_its_commit_settles_without_a_second_edit(
    tmp_path: Path, edited: str, written: str, conflict: str
) -> None:
    config = make_world(tmp_path, conflict)
    edit = edit_books if edited == "right" else edit_crm
    edit(tmp_path, "First")
    assert killed_sync(config, written)

    after = sync(config)
    assert after["counts"]["conflicts"] == 0, after
    assert titles(tmp_path, written) == titles(tmp_path, edited) == expected("First")
    shown = syncd("show", str(after["run_id"]), "--json", config=config).json()
    settled = [i for i in shown["items"] if i["action"] == "update"]
    assert len(settled) == EDITED
    assert all(i["detail"]["note"].startswith("written by an interrupted run") for i in settled)
    again = sync(config)
    assert sum(again["counts"].values()) == 0, again


#: Kills of the deep run (``SYNCD_DEEP_KILLS=200``); a few by default.
DEEP_KILLS = int(os.environ.get("SYNCD_DEEP_KILLS", "3"))


def test_kills_after_write_backs_lose_no_edit(tmp_path: Path) -> None:
    """Rounds of: some records edited on a random side, a sync killed before a random
    one of its commits that write to the other side, the same records edited again
    where they were first edited, and a sync to the end. Every second edit must be on
    both sides, with no conflict. ``SYNCD_DEEP_KILLS=200`` for a deep run."""
    rnd = random.Random(17)
    config = make_world(tmp_path, rnd.choice(["left", "right"]))
    kills = lost = conflicts = 0
    for round_ in range(DEEP_KILLS * 3):
        if kills >= DEEP_KILLS:
            break
        edited = rnd.sample(range(1, 21), rnd.randint(1, 12))
        side = rnd.choice(["left", "right"])
        written = "right" if side == "left" else "left"
        edit = edit_books if side == "right" else edit_crm
        edit(tmp_path, f"First{round_}", edited)
        kills += killed_sync(config, written, rnd.randint(1, 2))
        edit(tmp_path, f"Second{round_}", edited)
        after = sync(config)
        conflicts += after["counts"]["conflicts"]
        want = f"Second{round_}"
        for side_ in ("left", "right"):
            have = titles(tmp_path, side_)
            lost += sum(have[f"p{n}@example.com"] != f"{want} p{n}@example.com" for n in edited)
    print(f"{kills} kills, {lost} lost edits, {conflicts} conflicts")
    assert kills >= DEEP_KILLS
    assert (lost, conflicts) == (0, 0)
