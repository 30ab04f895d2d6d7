"""The floor under a first export: what the bare work of ``bench_export.py``'s
``to-sql`` first run costs on this machine, written straight against ``sqlite3``.

syncd's first run of N contacts must at least read each row, serialise and hash its
snapshot, insert it into the target, and record a binding (with both snapshots, in
syncd's own state-store schema and its two unique indexes), a run item and a batch
intent, committing each batch in both databases. This script does exactly that and
nothing else: no configuration, plugins, rules, matching, reference translation,
per-record error handling or progress. Its rate is what no engine in Python on this
machine can beat; the distance from it is what the engine's own logic costs.

    python bench/bench_floor.py               # N = 100,000
    python bench/bench_floor.py --n 20000

It also prints how two processes at once fare against one (``machine.parallel``),
which bounds what a second thread or process could win.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import tempfile
import time
from itertools import chain
from pathlib import Path

from bench_export import COMPANIES, TARGETS, build
from machine import describe, parallel

from syncd.state import Store

PAGE = 1000
COLUMNS = ("first_name", "last_name", "email", "phone", "title", "company")
BINDING = (
    "pair, entity, left_id, right_id, left_hash, right_hash, left_data, right_data,"
    " left_version, right_version, left_deleted, right_deleted, updated_at"
)
ITEM = "run_id, entity, action, outcome, source_side, source_id, target_id"


def _values(sql: str, width: int, rows: list[tuple]) -> tuple[str, tuple]:
    """A multi-row INSERT of ``rows`` (as syncd sends them to SQLite)."""
    marks = "(" + ",".join("?" * width) + ")"
    return f"{sql} VALUES {','.join([marks] * len(rows))}", tuple(chain.from_iterable(rows))


def _insert(conn: sqlite3.Connection, sql: str, rows: list[tuple]) -> None:
    for start in range(0, len(rows), 500):
        conn.execute(*_values(sql, len(rows[0]), rows[start : start + 500]))


def floor_run(folder: Path) -> tuple[int, float]:
    """Copy every contact of the CRM to the ERP the bare way; (records, seconds)."""
    Store(f"sqlite:///{folder / 'state.db'}").close()  # syncd's schema, made untimed
    started = time.perf_counter()
    crm = sqlite3.connect(folder / "crm.db")
    erp = sqlite3.connect(folder / "erp.db", isolation_level=None)
    state = sqlite3.connect(folder / "state.db", isolation_level=None)
    state.execute("PRAGMA synchronous=NORMAL")
    encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
    stamp = "2026-11-29 00:00:00.000000"
    run_id = 1
    done = 0
    for table, entity in (("companies", "company"), ("contacts", "contact")):
        fields = ("name", "phone", "city") if entity == "company" else COLUMNS
        target_cols = ", ".join(f if f != "company" else "company_id" for f in fields)
        source_cols = ", ".join(f if f != "company" else "company_id" for f in fields)
        cursor = crm.execute(f"SELECT id, {source_cols}, updated_at FROM {table} ORDER BY id")
        while rows := cursor.fetchmany(PAGE):
            snaps = []
            for row in rows:
                snapshot = {k: v for k, v in zip(fields, row[1:-1], strict=True) if v is not None}
                serial = encode(snapshot)
                digest = hashlib.blake2b(serial.encode(), digest_size=12).hexdigest()
                snaps.append((serial, digest))
            key = os.urandom(16).hex()
            intent = json.dumps([[str(r[0]), s] for r, (s, _) in zip(rows, snaps, strict=True)])
            state.execute(
                "INSERT INTO intent (key, pair, entity, target_side, source_id, source_data,"
                " target_data, created_at) VALUES (?,?,?,?,?,?,?,?)",
                (key, "to-sql", entity, "right", "", intent, "batch", stamp),
            )
            erp.execute("BEGIN")
            _insert(erp, f"INSERT INTO {table} ({target_cols})", [r[1:-1] for r in rows])
            last = erp.execute("SELECT last_insert_rowid()").fetchone()[0]
            erp.execute("COMMIT")
            first = last - len(rows) + 1
            bindings, items = [], []
            for offset, (row, (serial, digest)) in enumerate(zip(rows, snaps, strict=True)):
                target_id = str(first + offset)
                bindings.append(
                    ("to-sql", entity, str(row[0]), target_id, digest, digest, serial, serial,
                     row[-1], stamp, 0, 0, stamp)
                )  # fmt: skip
                items.append((run_id, entity, "create", "ok", "left", str(row[0]), target_id))
            state.execute("BEGIN")
            _insert(state, f"INSERT INTO binding ({BINDING})", bindings)
            _insert(state, f"INSERT INTO run_item ({ITEM})", items)
            state.execute("DELETE FROM intent WHERE key = ?", (key,))
            state.execute("COMMIT")
            done += len(rows)
    return done, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="contacts")
    n = parser.parse_args().n
    print(describe())
    print(parallel())
    with tempfile.TemporaryDirectory(prefix="syncd-floor-") as tmp:
        folder = Path(tmp)
        build(folder, n)
        records, seconds = floor_run(folder)
    rate = records / seconds
    target = TARGETS["first_rate"]
    print(f"N = {n:,} contacts across {COMPANIES:,} companies")
    print(f"  floor of a first export to SQLite: {seconds:.2f}s = {rate:,.0f} records/s")
    per_record = 1e6 / target - 1e6 / rate
    print(
        f"  the target of {target:,}/s leaves {per_record:.1f} us per record above the "
        f"floor ({1e6 / rate:.1f} us) for everything the engine does besides"
    )


if __name__ == "__main__":
    main()
