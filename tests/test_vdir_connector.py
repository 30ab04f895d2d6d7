"""The vdir connector and the shared vCard mapping, through the public APIs and the
real ``syncd`` command (sql -> vdir export, vdir -> sql import)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from cli_helpers import syncd
from syncd.plugin.connector import ConfigurationError, Create, Delete, ErrorKind, Update
from syncd.plugin.manager import load_registry
from syncd_vcard import card_fields, new_card, patch_card
from syncd_vdir import VdirConnector, VdirSettings

V4 = (
    "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:u1\r\nFN:Bo Ek\r\nN:Ek;Bo;;;\r\n"
    'TEL;TYPE="cell,voice":+46 70 1\r\nTEL;VALUE=uri;TYPE=work:tel:+46 8 2\r\n'
    "TEL;TYPE=fax:+46 8 3\r\nEMAIL;TYPE=work:bo@ek.example\r\nORG:Ek AB;Sales\r\n"
    "TITLE:Boss\r\nNOTE:likes tea\r\nX-CUSTOM;P=1:keep me\r\n"
    "ADR;TYPE=home:;;Main St 1;Town;;123;SE\r\nEND:VCARD\r\n"
)


def connector(tmp_path: Path) -> VdirConnector:
    (tmp_path / "cards").mkdir(exist_ok=True)
    conn = VdirConnector("cards", VdirSettings(path="cards", page_size=2), base_dir=tmp_path)
    conn.open()
    return conn


def test_vcard_4_maps_every_field_and_tel_type() -> None:
    assert card_fields(V4) == {
        "first_name": "Bo",
        "last_name": "Ek",
        "email": "bo@ek.example",
        "phone": "+46 8 2",
        "mobile": "+46 70 1",
        "fax": "+46 8 3",
        "title": "Boss",
        "company": "Ek AB",
        "notes": "likes tea",
    }


def test_patch_keeps_unknown_properties_and_org_units() -> None:
    patched = patch_card(V4, {"email": "new@ek.example", "company": "Ek Group", "mobile": None})
    assert "X-CUSTOM;P=1:keep me" in patched
    assert "ADR;TYPE=home:;;Main St 1;Town;;123;SE" in patched
    assert "ORG:Ek Group;Sales" in patched
    assert "VERSION:4.0" in patched
    fields = card_fields(patched)
    assert fields["email"] == "new@ek.example" and fields["mobile"] is None
    assert fields["fax"] == "+46 8 3" and fields["first_name"] == "Bo"


def test_new_card_is_vcard_3_with_uid_and_display_name() -> None:
    text = new_card("k-1", {"first_name": "Ann", "last_name": "Lee", "phone": "1"})
    assert "VERSION:3.0" in text and "UID:k-1" in text and "FN:Ann Lee" in text
    assert "TEL;TYPE=work:1" in text
    assert card_fields(text)["phone"] == "1"


def test_registered_through_entry_points() -> None:
    assert load_registry().connectors["vdir"].cls is VdirConnector


def test_missing_folder_is_a_configuration_error(tmp_path: Path) -> None:
    conn = VdirConnector("cards", VdirSettings(path="nope"), base_dir=tmp_path)
    with pytest.raises(ConfigurationError, match="does not exist"):
        conn.open()


def test_listing_paging_cursor_and_no_change_run(tmp_path: Path) -> None:
    conn = connector(tmp_path)
    (tmp_path / "cards" / "a.vcf").write_text(V4)
    conn.create("contact", [Create("b", {"email": "b@x.example"}), Create("c", {"email": "c"})])
    (tmp_path / "cards" / "notes.txt").write_text("not a card")
    pages = list(conn.changes("contact", None))
    assert [len(p.records) for p in pages] == [2, 1]
    assert all(p.full for p in pages) and pages[0].cursor is None
    cursor = pages[-1].cursor
    assert cursor is not None
    # Unchanged folder: one empty page, and no card is read (a broken card would be
    # skipped silently, so prove it by making every file unreadable).
    for path in (tmp_path / "cards").glob("*.vcf"):
        path.chmod(0)
    try:
        assert [(p.records, p.cursor) for p in conn.changes("contact", cursor)] == [([], cursor)]
    finally:
        for path in (tmp_path / "cards").glob("*.vcf"):
            path.chmod(0o644)
    # Only what changed comes back: a removed card as a deletion, an edited one as a
    # record; the other cards are not read.
    (tmp_path / "cards" / "c.vcf").unlink()
    again = list(conn.changes("contact", cursor))
    assert [(p.records, p.deleted, p.full) for p in again] == [([], ["c"], False)]
    assert again[-1].cursor not in (None, cursor)
    b = tmp_path / "cards" / "b.vcf"
    b.write_text(b.read_text().replace("b@x.example", "b2@x.example"))
    os.utime(b, ns=(b.stat().st_mtime_ns + 10**9,) * 2)
    third = list(conn.changes("contact", again[-1].cursor))
    assert [r.id for p in third for r in p.records] == ["b"] and not third[-1].full
    assert third[-1].records[0].fields["email"] == "b2@x.example"
    # A full listing ignores the cursor.
    full = list(conn.changes("contact", third[-1].cursor, full=True))
    assert sorted(r.id for p in full for r in p.records) == ["a", "b"] and full[-1].full


def test_writes_versions_conflicts_and_idempotent_create(tmp_path: Path) -> None:
    conn = connector(tmp_path)
    (tmp_path / "cards" / "a.vcf").write_text(V4)
    record = conn.get("contact", ["a"])["a"]
    stat = (tmp_path / "cards" / "a.vcf").stat()
    assert record.version == f"{stat.st_mtime_ns:x}-{stat.st_size:x}"
    [done] = conn.update("contact", [Update("a", {"title": "CEO"}, version=record.version)])
    assert done.ok and done.version != record.version
    assert "X-CUSTOM;P=1:keep me" in (tmp_path / "cards" / "a.vcf").read_text()
    [stale] = conn.update("contact", [Update("a", {"title": "CTO"}, version=record.version)])
    assert stale.error is not None and stale.error.kind is ErrorKind.CONFLICT
    assert stale.error.retryable
    [missing] = conn.update("contact", [Update("zz", {"title": "x"})])
    assert missing.error is not None and missing.error.kind is ErrorKind.NOT_FOUND
    first = conn.create("contact", [Create("k1", {"email": "k@x.example"})])
    second = conn.create("contact", [Create("k1", {"email": "k@x.example"})])
    assert first == second and len(list((tmp_path / "cards").glob("k1*"))) == 1
    [conflict] = conn.delete("contact", [Delete("a", version=record.version)])
    assert conflict.error is not None and conflict.error.kind is ErrorKind.CONFLICT
    assert conn.delete("contact", [Delete("a", version=done.version), Delete("gone")])[0].ok
    assert not (tmp_path / "cards" / "a.vcf").exists()
    assert not [p for p in (tmp_path / "cards").iterdir() if p.name.startswith(".")]


def test_find_by_normalised_email(tmp_path: Path) -> None:
    conn = connector(tmp_path)
    (tmp_path / "cards" / "a.vcf").write_text(V4)
    found = conn.find("contact", "email", ["bo@ek.example", "nobody@x"])
    assert [r.id for r in found["bo@ek.example"]] == ["a"]
    # The index built by that search follows our own writes...
    conn.create("contact", [Create("k", {"email": "New@X.example"})])
    assert [r.id for r in conn.find("contact", "email", ["new@x.example"])["new@x.example"]] == [
        "k"
    ]
    conn.update("contact", [Update("k", {"email": "newer@x.example"})])
    assert "new@x.example" not in conn.find("contact", "email", ["new@x.example"])
    assert conn.find("contact", "email", ["newer@x.example"])
    # ...and a card another program adds is found too (the folder changed under us).
    (tmp_path / "cards" / "o.vcf").write_text(V4.replace("bo@ek.example", "other@x.example"))
    assert [
        r.id for r in conn.find("contact", "email", ["other@x.example"])["other@x.example"]
    ] == ["o"]


CONFIG = """
[daemon]
state = "sqlite:///state.db"
log_format = "json"

[connectors.crm]
type = "sql"
url = "sqlite:///crm.db"
  [connectors.crm.entities.company]
  table = "companies"
  id = "id"
  [connectors.crm.entities.contact]
  table = "contacts"
  id = "id"
  updated_at = "updated_at"

[connectors.cards]
type = "vdir"
path = "cards"

[pairs.out]
left = "crm"
right = "cards"
mode = "export"
entities = ["company", "contact"]
  [pairs.out.match]
  contact = ["email"]
"""


def make_crm(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE companies (id INTEGER PRIMARY KEY, name TEXT);
            CREATE TABLE contacts (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT,
              email TEXT, phone TEXT, mobile TEXT, title TEXT, company INTEGER,
              updated_at TEXT);
            INSERT INTO companies VALUES (1, 'Acme Corporation');
            INSERT INTO contacts VALUES
              (1, 'Ann', 'Lee', 'ann@acme.example', '+1 555 0100', '+1 555 0101', 'CEO', 1,
               '2026-01-01 00:00:00'),
              (2, 'Bob', 'Ray', 'bob@acme.example', NULL, NULL, NULL, NULL,
               '2026-01-01 00:00:00');
            """
        )


def cards_by_email(folder: Path) -> dict[str, tuple[str, dict]]:
    found = {}
    for path in folder.glob("*.vcf"):
        text = path.read_text()
        found[card_fields(text)["email"]] = (path.stem, card_fields(text))
    return found


@pytest.mark.slow
def test_sql_to_vdir_through_the_cli(tmp_path: Path) -> None:
    config = tmp_path / "syncd.toml"
    config.write_text(CONFIG)
    make_crm(tmp_path / "crm.db")
    (tmp_path / "cards").mkdir()
    first = syncd("sync", "out", "--json", config=config)
    assert first.code == 0, first.err
    cards = cards_by_email(tmp_path / "cards")
    assert set(cards) == {"ann@acme.example", "bob@acme.example"}
    ann_id, ann = cards["ann@acme.example"]
    # No company entity in an address book: the reference becomes the company's name.
    assert ann["company"] == "Acme Corporation"
    assert ann["phone"] == "+1 555 0100" and ann["mobile"] == "+1 555 0101"
    ann_file = tmp_path / "cards" / f"{ann_id}.vcf"
    before = ann_file.stat().st_mtime_ns
    again = syncd("sync", "out", "--json", config=config)
    assert again.code == 0, again.err
    assert again.json()["counts"]["created"] == 0 and again.json()["counts"]["updated"] == 0
    assert ann_file.stat().st_mtime_ns == before

    # Another address-book client edits Ann's card and adds a property of its own.
    text = ann_file.read_text().replace("TITLE:CEO", "TITLE:Chair\r\nX-KHARD-NICK:annie")
    ann_file.write_text(text)
    os.utime(ann_file, ns=(before + 10**9, before + 10**9))
    # Two-way mode is being built in parallel: the same pair (same bindings) is switched
    # to import for one run.
    config.write_text(CONFIG.replace('mode = "export"', 'mode = "import"'))
    back = syncd("sync", "out", "--json", config=config)
    assert back.code == 0, back.err
    with sqlite3.connect(tmp_path / "crm.db") as db:
        assert db.execute("SELECT title FROM contacts WHERE id = 1").fetchone() == ("Chair",)

    # A change in the CRM is exported onto the card without losing the foreign property.
    with sqlite3.connect(tmp_path / "crm.db") as db:
        db.execute(
            "UPDATE contacts SET phone = '+1 555 0199', updated_at = '2026-01-02 00:00:00'"
            " WHERE id = 1"
        )
    config.write_text(CONFIG)
    third = syncd("sync", "out", "--json", config=config)
    assert third.code == 0, third.err
    assert third.json()["counts"]["updated"] == 1
    final = ann_file.read_text()
    assert "X-KHARD-NICK:annie" in final and "+1 555 0199" in final


#: A card vobject reads but cannot write back (vCard allows no group on UID), and
#: one cut short: the two ways one card in a folder goes bad.
UNPATCHABLE = V4.replace("UID:u1", "item1.UID:u1")
TRUNCATED = V4[: V4.index("TITLE:")]


def test_unreadable_cards_are_listing_problems_not_silent_gaps(tmp_path: Path) -> None:
    """Issue 17, item 5: a card that cannot be read is reported on its page (file
    name, id, one-line reason without card content), not left out silently."""
    conn = connector(tmp_path)
    folder = tmp_path / "cards"
    for name in ("a", "c", "e"):
        (folder / f"{name}.vcf").write_text(V4)
    (folder / "b.vcf").write_text(TRUNCATED)
    (folder / "d.vcf").write_bytes(V4.replace("Bo Ek", "B\xf6").encode("latin-1"))
    pages = list(conn.changes("contact", None))
    assert sorted(r.id for p in pages for r in p.records) == ["a", "c", "e"]
    problems = {p.id: p for page in pages for p in page.problems}
    assert set(problems) == {"b", "d"}
    assert problems["b"].where == "b.vcf" and not problems["b"].warning
    assert "cut short" in problems["b"].reason
    assert problems["d"].where == "d.vcf" and "not UTF-8" in problems["d"].reason
    assert all("\n" not in p.reason and "Ek" not in p.reason for p in problems.values())
    # The cards that read are still fetched and found; the broken ones are not.
    assert set(conn.get("contact", ["a", "b", "d"])) == {"a"}
    assert sorted(r.id for r in conn.find("contact", "email", ["bo@ek.example"])[
        "bo@ek.example"]) == ["a", "c", "e"]  # fmt: skip


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file of mode 0")
def test_a_card_file_that_cannot_be_opened_is_a_listing_problem(tmp_path: Path) -> None:
    conn = connector(tmp_path)
    (tmp_path / "cards" / "a.vcf").write_text(V4)
    (tmp_path / "cards" / "a.vcf").chmod(0)
    [page] = conn.changes("contact", None)
    assert page.records == [] and [p.where for p in page.problems] == ["a.vcf"]
    assert "cannot read the file" in page.problems[0].reason


def test_a_card_that_cannot_be_patched_fails_alone(tmp_path: Path) -> None:
    """Issue 17, item 8: a malformed card's update is that card's permanent INVALID
    error naming its file; the other cards of the batch are written."""
    conn = connector(tmp_path)
    folder = tmp_path / "cards"
    (folder / "a.vcf").write_text(V4)
    (folder / "b.vcf").write_text(UNPATCHABLE)
    (folder / "c.vcf").write_text(TRUNCATED)
    (folder / "d.vcf").write_text(V4)
    items = [Update(rid, {"title": "Chair"}) for rid in "abcd"]
    results = conn.update("contact", items)
    assert [r.ok for r in results] == [True, False, False, True]
    for rid, result in zip("bc", results[1:3], strict=True):
        assert result.error is not None and result.error.kind is ErrorKind.INVALID
        assert not result.error.retryable
        message = result.error.message
        assert message.startswith(f"{rid}.vcf: cannot update: ") and "\n" not in message
        assert "Ek" not in message and "u1" not in message
    assert "UID property has a group" in results[1].error.message  # type: ignore[union-attr]
    assert (folder / "b.vcf").read_bytes() == UNPATCHABLE.encode()
    assert (folder / "c.vcf").read_bytes() == TRUNCATED.encode()
    assert card_fields((folder / "d.vcf").read_text())["title"] == "Chair"


def test_a_new_card_that_cannot_be_written_fails_alone(tmp_path: Path) -> None:
    conn = connector(tmp_path)
    results = conn.create(
        "contact",
        [Create("k1", {"email": "a@x"}), Create("k2", {"notes": "bad \ud800"}),
         Create("k3", {"email": "c@x"})],
    )  # fmt: skip
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].error is not None and results[1].error.kind is ErrorKind.INVALID
    assert results[1].error.message.startswith("k2.vcf: cannot create: ")
    assert sorted(p.name for p in (tmp_path / "cards").iterdir()) == ["k1.vcf", "k3.vcf"]
