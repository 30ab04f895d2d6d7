"""Damaged cards in a vdir through the real ``syncd`` command (issue 17): a card that
cannot be patched fails alone while the others are updated (item 8), and a card cut
short fails alone and makes the run delete nothing (item 5)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from test_vdir_connector import CONFIG, cards_by_email, make_crm

from cli_helpers import syncd
from syncd_vcard import card_fields, new_card


def touch(path: Path, text: str) -> None:
    """Rewrite a card as another program would, its modification time moved on."""
    before = path.stat().st_mtime_ns
    path.write_bytes(text.encode())
    os.utime(path, ns=(before + 10**9, before + 10**9))


def failed_items(config: Path, run_id: int) -> list[dict[str, Any]]:
    shown = syncd("show", str(run_id), "--json", config=config)
    assert shown.code == 0, shown.err
    return [i for i in shown.json()["items"] if i["outcome"] == "failed"]


def test_a_card_that_cannot_be_patched_fails_alone_and_the_rest_are_updated(
    tmp_path: Path,
) -> None:
    config = tmp_path / "syncd.toml"
    config.write_text(CONFIG)
    make_crm(tmp_path / "crm.db")
    (tmp_path / "cards").mkdir()
    assert syncd("sync", "out", config=config).code == 0
    cards = cards_by_email(tmp_path / "cards")
    ann_file = tmp_path / "cards" / f"{cards['ann@acme.example'][0]}.vcf"
    bob_file = tmp_path / "cards" / f"{cards['bob@acme.example'][0]}.vcf"
    # Another client groups Ann's UID: vobject reads the card but will not write it.
    broken = ann_file.read_text().replace("UID:", "item1.UID:")
    touch(ann_file, broken)
    with sqlite3.connect(tmp_path / "crm.db") as db:
        db.execute("UPDATE contacts SET title = 'Chair', updated_at = '2026-02-01 00:00:00'")

    result = syncd("sync", "out", "--json", config=config)

    assert result.code == 1, result.err  # finished, one record failed
    run = result.json()
    assert run["status"] == "partial"
    assert run["counts"]["updated"] == 1 and run["counts"]["failed"] == 1
    assert card_fields(bob_file.read_text())["title"] == "Chair"
    assert ann_file.read_text() == broken  # untouched
    (item,) = failed_items(config, run["run_id"])
    assert item["source_id"] == "1" and item["action"] == "update"
    assert item["error"].startswith(f"invalid: {ann_file.name}: cannot update: ")
    assert "UID property has a group" in item["error"]
    assert "Ann" not in item["error"] and "acme" not in item["error"]


IMPORT = """
[daemon]
state = "sqlite:///state.db"
log_format = "json"

[connectors.cards]
type = "vdir"
path = "cards"

[connectors.crm]
type = "sql"
url = "sqlite:///crm.db"
  [connectors.crm.entities.contact]
  table = "contacts"
  id = "id"

[pairs.in]
left = "cards"
right = "crm"
mode = "export"
entities = ["contact"]
deletes = "propagate"
  [pairs.in.match]
  contact = ["email"]
"""


def crm_emails(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return sorted(row[0] for row in db.execute("SELECT email FROM contacts"))


def test_a_card_cut_short_fails_alone_and_deletes_nothing(tmp_path: Path) -> None:
    config = tmp_path / "syncd.toml"
    config.write_text(IMPORT)
    with sqlite3.connect(tmp_path / "crm.db") as db:
        db.execute(
            "CREATE TABLE contacts (id INTEGER PRIMARY KEY, first_name TEXT,"
            " last_name TEXT, email TEXT)"
        )
    folder = tmp_path / "cards"
    folder.mkdir()
    texts = {
        name: new_card(name, {"first_name": name.upper(), "email": f"{name}@x.example"})
        for name in ("a", "b", "c")
    }
    for name, text in texts.items():
        (folder / f"{name}.vcf").write_bytes(text.encode())
    first = syncd("sync", "in", "--json", config=config)
    assert first.code == 0, first.err
    everyone = ["a@x.example", "b@x.example", "c@x.example"]
    assert crm_emails(tmp_path / "crm.db") == everyone

    # b's card is cut short (a client crashed while writing it) and c's card is
    # deleted: the listing is damaged, so neither b nor c is deleted in the CRM.
    touch(folder / "b.vcf", texts["b"][: texts["b"].index("EMAIL:") + 8])
    (folder / "c.vcf").unlink()
    damaged = syncd("sync", "in", "--json", config=config)

    assert damaged.code == 1, damaged.err
    run = damaged.json()
    assert run["status"] == "partial" and run["counts"]["deleted"] == 0
    assert crm_emails(tmp_path / "crm.db") == everyone
    (item,) = failed_items(config, run["run_id"])
    assert item["source_id"] == "b"
    assert "b.vcf" in item["error"] and "cut short" in item["error"]
    assert "b@x" not in item["error"]

    # Mended, the card reads again and the deletion of c is carried out.
    touch(folder / "b.vcf", texts["b"])
    mended = syncd("sync", "in", "--json", config=config)
    assert mended.code == 0, mended.err
    assert mended.json()["counts"]["deleted"] == 1
    assert crm_emails(tmp_path / "crm.db") == ["a@x.example", "b@x.example"]
