"""Custom fields end to end through the ``syncd`` command.

A field name outside the canonical lists is a *custom field*: it syncs where both
connectors map it under ``fields``, and nowhere else. Here a SQL "CRM" (SQLite, and
PostgreSQL when ``SYNCD_TEST_POSTGRES_URL`` is set) has a text column ``loyalty_tier``
and an integer column ``points``; a CSV "accounting" folder maps its ``Tier`` and
``Points`` columns to the same custom fields. Each side also maps a custom field the
other side does not (``segment`` in the CRM, ``vip_note`` in the books): those never
travel, and they are no error either. The books file even has an unmapped column
called ``segment``: a custom field is never mapped by name alone.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cli_helpers import syncd

CONFIG = """
[daemon]
state = "sqlite:///state.db"

[connectors.crm]
type = "sql"
url = "{url}"
  [connectors.crm.entities.contact]
  table = "contacts"
  id = "id"
  updated_at = "updated_at"
  [connectors.crm.entities.contact.fields]
  email = "email_address"
  loyalty_tier = "loyalty_tier"
  loyalty_points = "points"
  segment = "segment"

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
  loyalty_tier = "Tier"
  loyalty_points = "Points"
  vip_note = "VIP"

[pairs.crm-books]
left = "crm"
right = "books"
mode = "{mode}"
entities = ["contact"]
  [pairs.crm-books.match]
  contact = ["email"]
"""

HEADER = ["Id", "First", "Last", "Email", "Tier", "Points", "VIP", "segment", "Balance"]

PEOPLE = [
    # id, first, last, email, tier, points, segment
    (1, "Ann", "Archer", "ann@acme.example", "gold", 1200, "enterprise"),
    (2, "Bob", "Baker", "bob@globex.example", "silver", 300, "smb"),
    (3, "Cleo", "Cole", "cleo@initech.example", None, None, "smb"),
]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class World:
    """The configuration file, its folder and the CRM database behind it."""

    config: Path
    root: Path
    db: sa.Engine
    contacts: sa.Table

    def crm(self) -> dict[str, dict[str, Any]]:
        """The CRM's contacts by e-mail."""
        with self.db.connect() as conn:
            rows = conn.execute(sa.select(self.contacts)).mappings().all()
        return {r["email_address"]: dict(r) for r in rows}

    def crm_edit(self, email: str, **values: Any) -> None:
        """Change a CRM contact the way an application does: ``updated_at`` moves."""
        with self.db.begin() as conn:
            conn.execute(
                sa.update(self.contacts)
                .where(self.contacts.c.email_address == email)
                .values(**values, updated_at=_now())
            )

    @property
    def books_file(self) -> Path:
        return self.root / "books" / "customers.csv"

    def books(self) -> dict[str, dict[str, str]]:
        """The books' customers by e-mail, as the file holds them."""
        with self.books_file.open(newline="", encoding="utf-8") as handle:
            return {row["Email"]: row for row in csv.DictReader(handle)}

    def write_books(self, rows: list[dict[str, str]]) -> None:
        with self.books_file.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, HEADER)
            writer.writeheader()
            writer.writerows(rows)

    def sync(self) -> dict[str, Any]:
        done = syncd("sync", "crm-books", "--json", config=self.config)
        assert done.code == 0, done.out + done.err
        run = done.json()
        assert run["status"] == "ok" and run["counts"]["failed"] == 0, run
        return run


def _world(tmp_path: Path, url: str, mode: str) -> World:
    db = sa.create_engine(url)
    contacts = sa.Table(
        "contacts",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("first_name", sa.String(100)),
        sa.Column("last_name", sa.String(100)),
        sa.Column("email_address", sa.String(200)),
        sa.Column("loyalty_tier", sa.String(20)),
        sa.Column("points", sa.Integer),
        sa.Column("segment", sa.String(20)),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    contacts.metadata.create_all(db)
    stamp = _now()
    keys = ("id", "first_name", "last_name", "email_address", "loyalty_tier", "points", "segment")
    with db.begin() as conn:
        rows = [{**dict(zip(keys, p, strict=True)), "updated_at": stamp} for p in PEOPLE]
        conn.execute(sa.insert(contacts), rows)
    if db.dialect.name == "postgresql":  # explicit ids: move the sequence past them
        with db.begin() as conn:
            conn.execute(sa.text("SELECT setval('contacts_id_seq', 100)"))
    (tmp_path / "books").mkdir()
    config = tmp_path / "syncd.toml"
    config.write_text(CONFIG.format(url=url, mode=mode), encoding="utf-8")
    world = World(config, tmp_path, db, contacts)
    world.write_books([])
    return world


@pytest.fixture(params=["sqlite", "postgresql"])
def crm_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The CRM database: a SQLite file, or a fresh PostgreSQL database (skipped with a
    message when ``SYNCD_TEST_POSTGRES_URL`` is not set)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'crm.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def export(tmp_path: Path, crm_url: str) -> Iterator[World]:
    world = _world(tmp_path, crm_url, "export")
    yield world
    world.db.dispose()


@pytest.fixture
def two_way(tmp_path: Path, crm_url: str) -> Iterator[World]:
    world = _world(tmp_path, crm_url, "two-way")
    yield world
    world.db.dispose()


def test_export_carries_custom_fields_mapped_on_both_sides(export: World) -> None:
    # Bob is in the books already, without a tier: he is bound by e-mail and filled in
    bob = {"Id": "C-1", "First": "Bob", "Email": "bob@globex.example", "segment": "keep-me"}
    export.write_books([{**dict.fromkeys(HEADER, ""), **bob, "Balance": "12.50"}])
    first = export.sync()
    assert first["counts"]["created"] == 2 and first["counts"]["bound"] == 1
    book = export.books()
    assert (book["ann@acme.example"]["Tier"], book["ann@acme.example"]["Points"]) == (
        "gold",
        "1200",
    )
    assert (book["bob@globex.example"]["Tier"], book["bob@globex.example"]["Points"]) == (
        "silver",
        "300",
    )
    assert (book["cleo@initech.example"]["Tier"], book["cleo@initech.example"]["Points"]) == (
        "",
        "",
    )
    assert book["bob@globex.example"]["Id"] == "C-1"
    # mapped on one side only: the CRM's segment does not reach the books, not even
    # into the books' column of the same name
    assert [row["segment"] for row in book.values()] == ["keep-me", "", ""]
    assert {row["VIP"] for row in book.values()} == {""}

    # a custom field edited in the CRM: only that changes in the books
    before = export.books()
    export.crm_edit("bob@globex.example", loyalty_tier="gold", points=450)
    export.crm_edit("ann@acme.example", segment="strategic")  # one side only: no change
    second = export.sync()
    assert second["counts"]["updated"] == 1 and second["counts"]["created"] == 0
    after = export.books()
    assert after["bob@globex.example"] == {
        **before["bob@globex.example"],
        "Tier": "gold",
        "Points": "450",
    }
    assert after["ann@acme.example"] == before["ann@acme.example"]
    assert after["cleo@initech.example"] == before["cleo@initech.example"]


def test_two_way_carries_a_csv_edit_of_a_custom_field_to_sql(two_way: World) -> None:
    first = two_way.sync()
    assert first["counts"]["created"] == 3
    rows = two_way.books()
    rows["cleo@initech.example"].update(Tier="bronze", Points="75")
    rows["ann@acme.example"]["VIP"] = "call first"  # mapped in the books only
    rows["bob@globex.example"]["segment"] = "retail"  # an unmapped column
    two_way.write_books(list(rows.values()))

    second = two_way.sync()
    assert second["counts"]["updated"] == 1 and second["counts"]["conflicts"] == 0
    people = two_way.crm()
    cleo = people["cleo@initech.example"]
    assert (cleo["loyalty_tier"], cleo["points"]) == ("bronze", 75)  # an integer again
    assert people["ann@acme.example"]["loyalty_tier"] == "gold"
    assert people["bob@globex.example"]["segment"] == "smb"
    assert (people["ann@acme.example"]["points"], people["bob@globex.example"]["points"]) == (
        1200,
        300,
    )
    book = two_way.books()
    assert book["ann@acme.example"]["VIP"] == "call first"  # kept where it was typed
    assert book["bob@globex.example"]["segment"] == "retail"

    # a fixed point: the write to the CRM does not come back as a change
    quiet = two_way.sync()
    assert quiet["counts"]["updated"] == quiet["counts"]["created"] == 0
