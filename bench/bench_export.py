"""Export benchmark: a SQLite "CRM" with N contacts across 1,000 companies, exported to
a CSV folder and to another SQLite database through the real ``syncd sync`` command.

Prints, per target: records/s of the first run, the time of a no-change re-run and of
a re-run after 1% of the contacts changed (as a share of the first run), and the peak
RSS of each run's process; with several sizes, how peak RSS grows between them.

    python bench/bench_export.py                 # N = 100,000
    python bench/bench_export.py --n 100000 --n 400000
    python bench/bench_export.py --repeat 5      # medians of 5 rounds
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from machine import byte_compile_project, describe_memory
from machine import describe as describe_machine

SYNCD = str(Path(sys.executable).parent / "syncd")
COMPANIES = 1000

TARGETS = {
    "first_rate": 30_000,
    "no_change_share": 0.02,
    "one_percent_share": 0.05,
    "peak_rss_mb": 300,
    "rss_growth": 1.5,
}

CONFIG = """
[daemon]
state = "sqlite:///state.db"
log_format = "json"

[connectors.crm]
type = "sql"
url = "sqlite:///crm.db"
  [connectors.crm.entities.company]
  table = "companies"
  updated_at = "updated_at"
  [connectors.crm.entities.contact]
  table = "contacts"
  updated_at = "updated_at"
  [connectors.crm.entities.contact.fields]
  company = "company_id"

[connectors.books]
type = "csv"
path = "books"
  [connectors.books.entities.company]
  file = "companies.csv"
  id = "Id"
  [connectors.books.entities.company.fields]
  name = "Name"
  phone = "Phone"
  city = "City"
  [connectors.books.entities.contact]
  file = "contacts.csv"
  id = "Id"
  [connectors.books.entities.contact.fields]
  first_name = "First"
  last_name = "Last"
  email = "Email"
  phone = "Phone"
  title = "Title"
  company = "CompanyId"

[connectors.erp]
type = "sql"
url = "sqlite:///erp.db"
  [connectors.erp.entities.company]
  table = "companies"
  [connectors.erp.entities.contact]
  table = "contacts"
  [connectors.erp.entities.contact.fields]
  company = "company_id"

[pairs.to-csv]
left = "crm"
right = "books"
mode = "export"
  [pairs.to-csv.match]
  contact = ["email"]
  company = ["name"]

[pairs.to-sql]
left = "crm"
right = "erp"
mode = "export"
  [pairs.to-sql.match]
  contact = ["email"]
  company = ["name"]
"""

SCHEMA = """
CREATE TABLE companies (id INTEGER PRIMARY KEY, name TEXT, phone TEXT, city TEXT {stamp});
CREATE TABLE contacts (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, email TEXT,
    phone TEXT, title TEXT, company_id INTEGER {stamp});
"""
STAMP = ", updated_at TEXT NOT NULL"


def build(folder: Path, n: int) -> None:
    """Write the CRM with ``n`` contacts, an empty ERP, an empty books folder."""
    (folder / "syncd.toml").write_text(CONFIG, encoding="utf-8")
    (folder / "books").mkdir()
    rnd = random.Random(7)
    titles = ["CEO", "CFO", "Buyer", "Engineer", "Accountant", None]
    crm = sqlite3.connect(folder / "crm.db")
    crm.executescript(SCHEMA.format(stamp=STAMP) + "CREATE INDEX ix ON contacts(updated_at, id);")
    stamp = "2026-01-01 00:00:00"
    crm.executemany(
        "INSERT INTO companies VALUES (?,?,?,?,?)",
        (
            (i, f"Company {i}", f"+1 555 {i:04d}", "Springfield", stamp)
            for i in range(1, COMPANIES + 1)
        ),
    )
    crm.executemany(
        "INSERT INTO contacts VALUES (?,?,?,?,?,?,?,?)",
        (
            (
                i,
                f"First{i}",
                f"Last{i}",
                f"person{i}@example.com",
                f"+1 555 {i:07d}",
                rnd.choice(titles),
                rnd.randint(1, COMPANIES),
                stamp,
            )
            for i in range(1, n + 1)
        ),
    )
    crm.commit()
    crm.close()
    erp = sqlite3.connect(folder / "erp.db")
    erp.executescript(SCHEMA.format(stamp=""))
    erp.close()


def change_one_percent(folder: Path) -> int:
    """Change the phone of every hundredth contact, bumping updated_at."""
    crm = sqlite3.connect(folder / "crm.db")
    done = crm.execute(
        "UPDATE contacts SET phone = phone || '9', updated_at = '2026-02-01 00:00:00'"
        " WHERE id % 100 = 0"
    ).rowcount
    crm.commit()
    crm.close()
    return done


def sync(folder: Path, pair: str) -> tuple[dict, float]:
    """Run ``syncd sync PAIR --json``; return its report and the process's peak RSS (MB).

    The benchmark's own writes (the data it just built or edited) are flushed to disk
    first, so that the run's first fsync does not pay for them."""
    os.sync()
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            [SYNCD, "--config", str(folder / "syncd.toml"), "sync", pair, "--json"],
            stdout=subprocess.PIPE,
            stderr=errors,
        )
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        err = errors.read().decode(errors="replace")
    report = json.loads(out) if out.strip() else {}
    if report.get("status") != "ok":
        raise SystemExit(
            f"run of {pair} did not succeed ({proc.returncode}): {report} {err[-800:]}"
        )
    return report, usage.ru_maxrss / 1024


def run_size(n: int, repeat: int = 1) -> dict[str, dict[str, float]]:
    """All phases at one size, ``repeat`` times on fresh copies of the same data;
    returns figures per pair, each the median of the repeats (the peak RSS: the
    highest)."""
    rounds: list[dict[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        template = Path(tmp) / "data"
        template.mkdir()
        build(template, n)
        for index in range(repeat):
            # each round in a folder of its own, kept to the end (see bench/README.md:
            # creating files just after deleting large ones is slow on ext4)
            folder = Path(tmp) / f"round-{index}"
            shutil.copytree(template, folder)
            rounds.append(run_phases(folder))
    figures = {
        pair: {
            key: max(r[pair][key] for r in rounds)
            if key == "rss"
            else statistics.median(r[pair][key] for r in rounds)
            for key in rounds[0][pair]
        }
        for pair in rounds[0]
    }
    # the spread of the rounds, which a median hides
    for pair, values in figures.items():
        firsts = [r[pair]["first"] for r in rounds]
        shares = [r[pair]["one_percent"] / r[pair]["first"] for r in rounds]
        values.update(
            first_min=min(firsts),
            first_max=max(firsts),
            share_min=min(shares),
            share_max=max(shares),
        )
    return figures


def run_phases(folder: Path) -> dict[str, dict[str, float]]:
    """First run, no-change re-run and 1 % re-run of both pairs in ``folder``."""
    results: dict[str, dict[str, float]] = {}
    for pair in ("to-csv", "to-sql"):
        first, rss1 = sync(folder, pair)
        again, rss2 = sync(folder, pair)
        results[pair] = {
            "first": first["seconds"],
            "no_change": again["seconds"],
            "rss": max(rss1, rss2),
            "created": first["counts"]["created"],
        }
    changed = change_one_percent(folder)
    for pair in ("to-csv", "to-sql"):
        after, rss3 = sync(folder, pair)
        if after["counts"]["updated"] != changed:
            raise SystemExit(f"{pair}: expected {changed} updates, got {after['counts']}")
        results[pair]["one_percent"] = after["seconds"]
        results[pair]["rss"] = max(results[pair]["rss"], rss3)
    return results


def report(label: str, figure: str, ok: bool, target: str) -> None:
    """One figure against its target."""
    print(f"  {label}: {figure} (target {target}: {'ok' if ok else 'MISSED'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, action="append", help="contacts (repeatable)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds per size; figures are their medians"
    )
    args = parser.parse_args()
    sizes = args.n or [100_000]
    byte_compile_project()
    print(describe_machine())
    print(describe_memory())
    peaks: dict[str, list[float]] = {}
    t = TARGETS
    for n in sizes:
        rounds = f", median of {args.repeat} rounds" if args.repeat > 1 else ""
        print(f"N = {n:,} contacts across {COMPANIES:,} companies{rounds}")
        for pair, r in run_size(n, args.repeat).items():
            rate = (n + COMPANIES) / r["first"]
            nc, op = r["no_change"] / r["first"], r["one_percent"] / r["first"]
            peaks.setdefault(pair, []).append(r["rss"])
            spread, share_spread = "", ""
            if args.repeat > 1:
                records = n + COMPANIES
                slowest, fastest = records / r["first_max"], records / r["first_min"]
                spread = f"; rounds {slowest:,.0f}-{fastest:,.0f}/s"
                share_spread = f"; rounds {r['share_min']:.1%}-{r['share_max']:.1%}"
            report(
                f"{pair} first run",
                f"{r['first']:.2f}s = {rate:,.0f} records/s{spread}",
                rate >= t["first_rate"],
                f">= {t['first_rate']:,}/s",
            )
            report(
                f"{pair} no-change re-run",
                f"{r['no_change']:.3f}s = {nc:.1%} of first",
                nc < t["no_change_share"],
                f"< {t['no_change_share']:.0%}",
            )
            report(
                f"{pair} 1% changed re-run",
                f"{r['one_percent']:.3f}s = {op:.1%} of first{share_spread}",
                op < t["one_percent_share"],
                f"< {t['one_percent_share']:.0%}",
            )
            report(
                f"{pair} peak RSS",
                f"{r['rss']:.0f} MB",
                r["rss"] < t["peak_rss_mb"],
                f"< {t['peak_rss_mb']} MB",
            )
    if len(sizes) > 1:
        for pair, values in peaks.items():
            growth = values[-1] / values[0]
            report(
                f"{pair} peak RSS growth N={sizes[0]:,} -> {sizes[-1]:,}",
                f"{growth:.2f}x",
                growth < t["rss_growth"],
                f"< {t['rss_growth']}x",
            )
    print(describe_memory(), "(after)")


if __name__ == "__main__":
    main()
