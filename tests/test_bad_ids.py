"""Records whose id is missing or not unique fail alone, with a one-line reason, and
the rest of the run goes on (issue 17, item 7): through ``syncd sync`` on a CSV
folder and a SQLite table."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cli_helpers import syncd

CONFIG = """
[daemon]
state = "sqlite:///state.db"

[connectors.books]
type = "csv"
path = "books"
  [connectors.books.entities.contact]
  file = "contacts.csv"
  id = "Id"
  [connectors.books.entities.contact.fields]
  email = "Email"

[connectors.crm]
type = "sql"
url = "sqlite:///crm.db"
  [connectors.crm.entities.contact]
  table = "people"

[connectors.erp]
type = "sql"
url = "sqlite:///erp.db"
  [connectors.erp.entities.contact]
  table = "contacts"

[pairs.books-erp]
left = "books"
right = "erp"
entities = ["contact"]

[pairs.crm-erp]
left = "crm"
right = "erp"
entities = ["contact"]
"""


def setup(tmp_path: Path) -> Path:
    config = tmp_path / "syncd.toml"
    config.write_text(CONFIG, encoding="utf-8")
    with sqlite3.connect(tmp_path / "erp.db") as db:
        db.execute("CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT)")
    return config


def erp_emails(tmp_path: Path) -> list[str]:
    with sqlite3.connect(tmp_path / "erp.db") as db:
        return sorted(row[0] for row in db.execute("SELECT email FROM contacts"))


def failures(config: Path, run_id: int) -> list[dict[str, str]]:
    shown = syncd("show", str(run_id), "--json", config=config).json()
    return [i for i in shown["items"] if i["outcome"] == "failed"]


def test_duplicate_csv_ids_fail_alone(tmp_path: Path) -> None:
    config = setup(tmp_path)
    (tmp_path / "books").mkdir()
    (tmp_path / "books" / "contacts.csv").write_text(
        "Id,Email\n1,a@x.org\n2,b@x.org\n2,b2@x.org\n3,c@x.org\n", encoding="utf-8"
    )
    first = syncd("sync", "books-erp", "--json", config=config)
    assert first.code == 1, first.err
    run = first.json()
    assert run["status"] == "partial" and run["counts"]["created"] == 2
    assert erp_emails(tmp_path) == ["a@x.org", "c@x.org"]
    (failed_a, failed_b) = failures(config, run["run_id"])
    for item in (failed_a, failed_b):
        assert item["source_id"] == "2" and "more than once" in item["error"]
        assert "\n" not in item["error"] and "b@x.org" not in item["error"]

    again = syncd("sync", "books-erp", "--json", config=config).json()
    assert again["counts"]["created"] == 0 and erp_emails(tmp_path) == ["a@x.org", "c@x.org"]


def test_null_and_duplicate_sql_ids_fail_alone(tmp_path: Path) -> None:
    config = setup(tmp_path)
    with sqlite3.connect(tmp_path / "crm.db") as db:
        db.execute("CREATE TABLE people (id TEXT, email TEXT)")
        db.executemany(
            "INSERT INTO people VALUES (?, ?)",
            [("1", "a@x.org"), (None, "n@x.org"), ("2", "b@x.org"), ("2", "b2@x.org")],
        )
    first = syncd("sync", "crm-erp", "--json", config=config)
    assert first.code == 1, first.err
    run = first.json()
    assert run["status"] == "partial" and run["counts"]["created"] == 1
    assert erp_emails(tmp_path) == ["a@x.org"]
    reasons = sorted(i["error"] for i in failures(config, run["run_id"]))
    assert len(reasons) == 3
    assert "no id" in reasons[-1] and all("\n" not in r for r in reasons)


def test_rows_without_an_id_do_not_cut_a_complete_listing_short(tmp_path: Path) -> None:
    """More NULL-id rows than a page once ended the listing at its first page: every
    row after them looked deleted."""
    config = setup(tmp_path)
    text = config.read_text(encoding="utf-8").replace(
        'url = "sqlite:///crm.db"', 'url = "sqlite:///crm.db"\npage_size = 2'
    )
    text = text.replace(
        'left = "crm"\nright = "erp"\nentities = ["contact"]',
        'left = "crm"\nright = "erp"\nentities = ["contact"]\ndeletes = "propagate"',
    )
    config.write_text(text, encoding="utf-8")
    with sqlite3.connect(tmp_path / "crm.db") as db:
        db.execute("CREATE TABLE people (id TEXT, email TEXT)")
        db.executemany(
            "INSERT INTO people VALUES (?, ?)", [(str(i), f"{i}@x.org") for i in range(5)]
        )
    assert syncd("sync", "crm-erp", config=config).code == 0
    with sqlite3.connect(tmp_path / "crm.db") as db:
        db.executemany("INSERT INTO people VALUES (NULL, ?)", [(f"n{i}@x.org",) for i in range(3)])
    second = syncd("sync", "crm-erp", "--json", config=config).json()
    assert second["counts"]["deleted"] == 0 and second["counts"]["failed"] == 2
    assert len(erp_emails(tmp_path)) == 5
