"""Two-way benchmark: a SQLite "CRM" with N contacts across 1,000 companies (with
``updated_at``) synced both ways with a CSV folder through the real ``syncd sync``.

Prints records/s of the first run, the time of a no-change re-run (which must write
nothing) and of a re-run after 1% of the contacts changed on each side (different
records), each as a share of the first run, and the peak RSS.

    python bench/bench_two_way.py                # N = 100,000
    python bench/bench_two_way.py --n 20000
"""

from __future__ import annotations

import argparse
import csv
import sqlite3
import sys
import tempfile
from pathlib import Path

from machine import byte_compile_project
from machine import describe as describe_machine

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_export import COMPANIES, build, change_one_percent, report, sync

TARGETS = {"no_change_share": 0.03, "one_percent_share": 0.08}

TWO_WAY = """
[pairs.both]
left = "crm"
right = "books"
mode = "two-way"
conflict = "newest"
  [pairs.both.match]
  contact = ["email"]
  company = ["name"]
"""


def change_one_percent_in_books(folder: Path) -> int:
    """Change the title of every hundredth contact in the CSV (other records than the
    CRM's 1%: ids ending in 50), keeping every other byte of the file."""
    path = folder / "books" / "contacts.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = list(reader)
    email = header.index("Email")
    title = header.index("Title")
    changed = 0
    for row in rows:
        number = int(row[email].removeprefix("person").split("@")[0])
        if number % 100 == 50:
            row[title] = "Changed in books"
            changed += 1
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return changed


def run_size(n: int) -> dict[str, float]:
    """All phases at one size."""
    with tempfile.TemporaryDirectory(prefix="syncd-bench2-") as tmp:
        folder = Path(tmp)
        build(folder, n)
        config = folder / "syncd.toml"
        config.write_text(config.read_text(encoding="utf-8") + TWO_WAY, encoding="utf-8")
        first, rss1 = sync(folder, "both")
        again, rss2 = sync(folder, "both")
        writes = sum(again["counts"][k] for k in ("created", "updated", "deleted", "bound"))
        if writes:
            raise SystemExit(f"the no-change re-run wrote: {again['counts']}")
        in_crm = change_one_percent(folder)
        in_books = change_one_percent_in_books(folder)
        after, rss3 = sync(folder, "both")
        if after["counts"]["updated"] != in_crm + in_books:
            raise SystemExit(f"expected {in_crm + in_books} updates, got {after['counts']}")
        crm = sqlite3.connect(folder / "crm.db")
        moved = crm.execute(
            "SELECT count(*) FROM contacts WHERE title = 'Changed in books'"
        ).fetchone()[0]
        crm.close()
        if moved != in_books:
            raise SystemExit(f"{moved} of {in_books} books edits reached the CRM")
        return {
            "first": first["seconds"],
            "created": first["counts"]["created"],
            "no_change": again["seconds"],
            "one_percent": after["seconds"],
            "rss": max(rss1, rss2, rss3),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="contacts")
    n = parser.parse_args().n
    byte_compile_project()
    print(describe_machine())
    print(f"two-way SQLite <-> csv, N = {n:,} contacts across {COMPANIES:,} companies")
    r = run_size(n)
    rate = (n + COMPANIES) / r["first"]
    nc, op = r["no_change"] / r["first"], r["one_percent"] / r["first"]
    print(f"  first run: {r['first']:.2f}s = {rate:,.0f} records/s")
    report(
        "no-change re-run (writes nothing)",
        f"{r['no_change']:.3f}s = {nc:.1%} of first",
        nc < TARGETS["no_change_share"],
        f"< {TARGETS['no_change_share']:.0%}",
    )
    report(
        "1% changed on each side",
        f"{r['one_percent']:.3f}s = {op:.1%} of first",
        op < TARGETS["one_percent_share"],
        f"< {TARGETS['one_percent_share']:.0%}",
    )
    print(f"  peak RSS: {r['rss']:.0f} MB")


if __name__ == "__main__":
    main()
