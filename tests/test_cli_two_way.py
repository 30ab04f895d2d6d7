"""Two-way sync end to end through the ``syncd`` command: a SQLite "CRM" with
companies and contacts, and a CSV "accounting" folder that knows companies only by
name. Edits on both sides, ``syncd sync``, and both stores checked as files."""

from __future__ import annotations

import csv
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cli_helpers import syncd

CONFIG = """
[daemon]
state = "sqlite:///state.db"

[connectors.crm]
type = "sql"
url = "sqlite:///crm.db"
  [connectors.crm.entities.company]
  table = "companies"
  id = "id"
  updated_at = "updated_at"
  [connectors.crm.entities.contact]
  table = "contacts"
  id = "id"
  updated_at = "updated_at"
  [connectors.crm.entities.contact.fields]
  company = "company_id"

[connectors.books]
type = "csv"
path = "books"
  [connectors.books.entities.contact]
  file = "customers.csv"
  id = "Id"
  [connectors.books.entities.contact.fields]
  first_name = "First"
  last_name = "Last"
  email = "Email"
  phone = "Phone"
  company = "Company"

[pairs.crm-books]
left = "crm"
right = "books"
mode = "two-way"
conflict = "right"
deletes = "propagate"
  [pairs.crm-books.match]
  contact = ["email"]
"""

HEADER = ["Id", "First", "Last", "Email", "Phone", "Company", "Balance"]


def _now() -> str:
    return datetime.now(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


@pytest.fixture
def world(tmp_path: Path) -> Path:
    """The config, a CRM with two companies and three contacts, and a books file with
    one customer the CRM also has (same e-mail) and one it does not."""
    db = sqlite3.connect(tmp_path / "crm.db")
    db.executescript(
        """
        CREATE TABLE companies (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
            updated_at TIMESTAMP NOT NULL);
        CREATE TABLE contacts (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT,
            email TEXT, phone TEXT, company_id INTEGER, updated_at TIMESTAMP NOT NULL);
        """
    )
    stamp = _now()
    db.executemany(
        "INSERT INTO companies VALUES (?, ?, ?)", [(1, "Acme", stamp), (2, "Globex", stamp)]
    )
    db.executemany(
        "INSERT INTO contacts VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (1, "Ann", "Archer", "ann@acme.example", "100", 1, stamp),
            (2, "Bob", "Baker", "bob@globex.example", None, 2, stamp),
            (3, "Cleo", "Cole", "cleo@acme.example", "300", 1, stamp),
        ],
    )
    db.commit()
    db.close()
    books = tmp_path / "books"
    books.mkdir()
    write_books(
        tmp_path,
        [
            {
                "Id": "C-1",
                "First": "Bob",
                "Email": "BOB@globex.example",
                "Phone": "200",
                "Company": "Globex",
                "Balance": "12.50",
            },
            {
                "Id": "C-2",
                "First": "Dee",
                "Last": "Dunn",
                "Email": "dee@initech.example",
                "Company": "Acme",
                "Balance": "0",
            },
        ],
    )
    config = tmp_path / "syncd.toml"
    config.write_text(CONFIG)
    return config


def write_books(root: Path, rows: list[dict[str, str]]) -> None:
    with (root / "books" / "customers.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, HEADER)
        writer.writeheader()
        writer.writerows(rows)


def books(root: Path) -> dict[str, dict[str, str]]:
    with (root / "books" / "customers.csv").open(newline="", encoding="utf-8") as handle:
        return {row["Email"].lower(): row for row in csv.DictReader(handle)}


def crm(root: Path) -> dict[str, dict[str, Any]]:
    db = sqlite3.connect(root / "crm.db")
    db.row_factory = sqlite3.Row
    rows = db.execute(
        "SELECT c.*, k.name AS company FROM contacts c LEFT JOIN companies k ON k.id = c.company_id"
    ).fetchall()
    db.close()
    return {r["email"].lower(): dict(r) for r in rows}


def crm_edit(root: Path, email: str, **values: Any) -> None:
    db = sqlite3.connect(root / "crm.db")
    sets = ", ".join(f"{k} = ?" for k in values)
    db.execute(
        f"UPDATE contacts SET {sets}, updated_at = ? WHERE email = ?",
        [*values.values(), _now(), email],
    )
    db.commit()
    db.close()


def sync(config: Path) -> dict[str, Any]:
    done = syncd("sync", "crm-books", "--json", config=config)
    assert done.code == 0, done.err
    return done.json()


def test_two_way_sync_between_sql_and_csv(world: Path) -> None:
    root = world.parent
    first = sync(world)
    # Ann and Cleo went to the books, Dee came to the CRM, Bob was matched by e-mail
    assert first["counts"]["created"] == 3 and first["counts"]["bound"] == 1
    book = books(root)
    assert set(book) == {
        "ann@acme.example",
        "bob@globex.example",
        "cleo@acme.example",
        "dee@initech.example",
    }
    assert book["ann@acme.example"]["Company"] == "Acme"  # the company by name
    assert book["bob@globex.example"]["Balance"] == "12.50"  # unknown column kept
    people = crm(root)
    assert people["dee@initech.example"]["company"] == "Acme"  # the name, back to an id
    assert people["bob@globex.example"]["phone"] == "200"  # the gap filled from books
    assert book["bob@globex.example"]["Last"] == "Baker"

    # a fixed point: nothing is written, the csv file is not even rewritten
    mtime = (root / "books" / "customers.csv").stat().st_mtime_ns
    quiet = sync(world)
    assert quiet["counts"]["created"] == quiet["counts"]["updated"] == 0
    assert (root / "books" / "customers.csv").stat().st_mtime_ns == mtime

    # edits on both sides: different fields of Ann, the same field of Cleo (right
    # wins), Bob deleted in the books (propagated to the CRM)
    crm_edit(root, "ann@acme.example", phone="111")
    crm_edit(root, "cleo@acme.example", last_name="Crm-Cole")
    rows = list(books(root).values())
    for row in rows:
        if row["Email"] == "ann@acme.example":
            row["Last"] = "Archer-Smith"
        if row["Email"] == "cleo@acme.example":
            row["Last"] = "Books-Cole"
    write_books(root, [r for r in rows if r["Email"].lower() != "bob@globex.example"])

    second = sync(world)
    assert second["counts"]["conflicts"] == 1 and second["counts"]["deleted"] == 1
    book, people = books(root), crm(root)
    assert (book["ann@acme.example"]["Phone"], book["ann@acme.example"]["Last"]) == (
        "111",
        "Archer-Smith",
    )
    assert (people["ann@acme.example"]["phone"], people["ann@acme.example"]["last_name"]) == (
        "111",
        "Archer-Smith",
    )
    assert (
        book["cleo@acme.example"]["Last"]
        == people["cleo@acme.example"]["last_name"]
        == ("Books-Cole")
    )
    assert "bob@globex.example" not in people

    # the conflict is in the run's items with both values and the winner
    shown = syncd("show", str(second["run_id"]), "--json", config=world).json()
    conflicts = [i for i in shown["items"] if i["action"] == "conflict"]
    assert len(conflicts) == 1
    assert conflicts[0]["detail"]["left"] == "Crm-Cole"
    assert conflicts[0]["detail"]["right"] == "Books-Cole"
    assert conflicts[0]["detail"]["winner"] == "right"

    third = sync(world)
    assert third["counts"]["created"] == third["counts"]["updated"] == 0
