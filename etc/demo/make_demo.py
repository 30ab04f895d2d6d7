"""Write the demo data: a small SQLite "CRM" and a CSV "accounting" export.

Run it to reset the demo: ``python etc/demo/make_demo.py``. The quick start runs it
before the first sync.
"""

from __future__ import annotations

import csv
import shutil
import sqlite3
from pathlib import Path

HERE = Path(__file__).resolve().parent

COMPANIES = [
    (1, "Acme Corporation", "+1 555 0100", "https://acme.example", "Springfield", "US"),
    (2, "Globex", "+44 20 7946 0000", "https://globex.example", "London", "GB"),
    (3, "Initech", "+1 555 0199", None, "Austin", "US"),
]
CONTACTS = [
    (1, "Ann", "Archer", "ann@acme.example", "+1 555 0101", "CFO", 1, 0),
    (2, "Bob", "Baker", "Bob.Baker@Globex.example ", "+44 20 7946 0001", "Buyer", 2, 0),
    (3, "Cleo", "Cole", "cleo@initech.example", None, "CEO", 3, 0),
    (4, "Dan", "Doe", None, "+1 555 0104", "Intern", 1, 0),
    (5, "Eve", "Evans", "eve@private.example", "+1 555 0105", None, None, 1),
]


def make_crm(path: Path) -> None:
    """The CRM: companies and contacts with modification stamps."""
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE companies (
            id INTEGER PRIMARY KEY, name TEXT NOT NULL, phone TEXT, website TEXT,
            city TEXT, country TEXT, updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP);
        CREATE TABLE contacts (
            id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, email_address TEXT,
            phone TEXT, title TEXT, company_id INTEGER REFERENCES companies(id),
            private INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP);
        """
    )
    db.executemany(
        "INSERT INTO companies (id, name, phone, website, city, country) VALUES (?,?,?,?,?,?)",
        COMPANIES,
    )
    db.executemany(
        "INSERT INTO contacts (id, first_name, last_name, email_address, phone, title,"
        " company_id, private) VALUES (?,?,?,?,?,?,?,?)",
        CONTACTS,
    )
    db.commit()
    db.close()


def make_books(folder: Path) -> None:
    """The accounting export: one customer that already exists (bound by e-mail)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with (folder / "customers.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["CustomerId", "Name", "Email", "Phone", "Company", "Balance"])
        writer.writerow(["C-1001", "Bob", "bob.baker@globex.example", "", "Globex", "120.50"])


if __name__ == "__main__":
    (HERE / "state").mkdir(exist_ok=True)
    (HERE / "state" / "state.db").unlink(missing_ok=True)
    make_crm(HERE / "crm.db")
    make_books(HERE / "books")
    print(f"demo data written to {HERE}")
