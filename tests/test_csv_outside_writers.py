"""Other programs writing a CSV file while syncd flushes into it: nothing of theirs is
lost or glued to syncd's rows, and a flush that cannot finish fails as retryable
without the run recording it."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import syncd_csv.append as append_module
import syncd_csv.files as files_module
import syncd_csv.guard as guard_module
from cli_helpers import syncd
from conftest import make_config, systems
from syncd.engine_setup import runner_for
from syncd.plugin.connector import Create, Update
from syncd.state import Store
from syncd_csv import CsvConnector, CsvSettings
from syncd_csv.guard import FileChangedError, FileLockedError, lock_path

HEADER = "Id,Email,First\r\n"
BOOKS = {
    "type": "csv",
    "path": "books",
    "entities": {
        "contact": {
            "file": "contacts.csv",
            "id": "Id",
            "fields": {"email": "Email", "first_name": "First"},
        }
    },
}
CHANGED = "books/contacts.csv changed while syncd was writing it; the run will try again"


def connector(root: Path) -> CsvConnector:
    """An opened csv connector on ``root/books``."""
    (root / "books").mkdir(exist_ok=True)
    settings = {key: value for key, value in BOOKS.items() if key != "type"}
    parsed = CsvSettings.model_validate(settings, context={"base_dir": root})
    conn = CsvConnector("books", parsed, base_dir=root)
    conn.open()
    return conn


def table(path: Path) -> list[list[str]]:
    """The file's rows as the csv module reads them, header first."""
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def meddle(
    monkeypatch: pytest.MonkeyPatch, module: Any, name: str, times: int, edit: Callable[[int], None]
) -> list[int]:
    """Make ``module.name`` (a step a flush takes just before it writes) first call
    ``edit`` with a counter, the first ``times`` times: another program writing the
    file at the worst moment. Returns the list of the counters used."""
    real = getattr(module, name)
    calls: list[int] = []

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if len(calls) < times:
            calls.append(len(calls))
            edit(len(calls))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapped)
    return calls


def append_outside(path: Path) -> Callable[[int], None]:
    """An edit that appends an outside row ``x<n>``."""

    def edit(n: int) -> None:
        with path.open("ab") as handle:
            handle.write(f"x{n},x{n}@outside.org,Outside\r\n".encode())

    return edit


# -- a change at the worst moment: between the flush's read and its write ---------------


def test_rows_added_while_an_append_is_under_way_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The append's journal is written (the file's old size in it) when another program
    adds a row: the flush must not cut the file back to the size it read."""
    path = tmp_path / "books" / "contacts.csv"
    conn = connector(tmp_path)
    path.write_bytes((HEADER + "1,a@x.org,Ann\r\n").encode())
    conn.create("contact", [Create("k", {"email": "k@x.org"})])
    meddle(monkeypatch, append_module, "fsync_directory", 1, append_outside(path))
    conn.flush()
    assert table(path)[1:] == [
        ["1", "a@x.org", "Ann"],
        ["x1", "x1@outside.org", "Outside"],
        ["k", "k@x.org", ""],
    ]
    assert not append_module.journal_path(path).exists()


def test_a_file_replaced_while_a_rewrite_is_under_way_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new version is written and about to replace the old one when another
    program adds a row: the flush reads the file again instead of replacing it."""
    path = tmp_path / "books" / "contacts.csv"
    conn = connector(tmp_path)
    path.write_bytes((HEADER + "1,a@x.org,Ann\r\n2,b@x.org,Bob\r\n").encode())
    assert conn.update("contact", [Update("1", {"first_name": "Anna"})])[0].ok
    conn.create("contact", [Create("k", {"email": "k@x.org"})])
    meddle(monkeypatch, files_module.shutil, "copymode", 1, append_outside(path))
    conn.flush()
    assert table(path)[1:] == [
        ["1", "a@x.org", "Anna"],
        ["2", "b@x.org", "Bob"],
        ["x1", "x1@outside.org", "Outside"],
        ["k", "k@x.org", ""],
    ]


def test_a_row_edited_after_its_update_was_checked_fails_the_flush(tmp_path: Path) -> None:
    """The flush would have to write over another program's edit of the very row it
    updates: it writes nothing and fails as retryable (the run does it again from a
    fresh read)."""
    path = tmp_path / "books" / "contacts.csv"
    conn = connector(tmp_path)
    path.write_bytes((HEADER + "1,a@x.org,Ann\r\n").encode())
    assert conn.update("contact", [Update("1", {"first_name": "Anna"})])[0].ok
    edited = (HEADER + "0,new@x.org,New\r\n1,a@x.org,Annie\r\n").encode()
    path.write_bytes(edited)
    with pytest.raises(FileChangedError, match=CHANGED) as failure:
        conn.flush()
    assert failure.value.retryable
    assert path.read_bytes() == edited


def test_a_file_that_keeps_changing_fails_the_flush_as_retryable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "books" / "contacts.csv"
    conn = connector(tmp_path)
    path.write_bytes((HEADER + "1,a@x.org,Ann\r\n").encode())
    conn.create("contact", [Create("k", {"email": "k@x.org"})])
    calls = meddle(monkeypatch, append_module, "fsync_directory", 100, append_outside(path))
    with pytest.raises(FileChangedError, match=CHANGED) as failure:
        conn.flush()
    assert failure.value.retryable
    assert len(calls) == 3  # read again twice, then given up
    ids = [row[0] for row in table(path)[1:]]
    assert ids == ["1", "x1", "x2", "x3"] and not append_module.journal_path(path).exists()
    monkeypatch.undo()
    conn.flush()  # the writes are still pending: the next attempt makes them
    assert [row[0] for row in table(path)[1:]] == ["1", "x1", "x2", "x3", "k"]


# -- cooperating writers: the lock ----------------------------------------------------


@contextmanager
def holding_lock(path: Path) -> Iterator[None]:
    """Hold ``path``'s write lock as a cooperating program does."""
    fd = os.open(lock_path(path), os.O_RDONLY | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def test_a_flush_waits_for_a_program_that_holds_the_lock(tmp_path: Path) -> None:
    """Another program writes a row in two parts while it holds the lock: the flush
    waits for it rather than appending between the parts."""
    path = tmp_path / "books" / "contacts.csv"
    conn = connector(tmp_path)
    path.write_bytes((HEADER + "1,a@x.org,Ann\r\n").encode())
    conn.create("contact", [Create("k", {"email": "k@x.org"})])
    errors: list[BaseException] = []
    with holding_lock(path), path.open("ab") as handle:
        handle.write(b"x1,x1@out")
        handle.flush()
        flush = threading.Thread(target=lambda: _catch(conn.flush, errors))
        flush.start()
        time.sleep(0.3)
        handle.write(b"side.org,Outside\r\n")
    flush.join(timeout=30)
    assert not errors
    assert table(path)[1:] == [
        ["1", "a@x.org", "Ann"],
        ["x1", "x1@outside.org", "Outside"],
        ["k", "k@x.org", ""],
    ]


def _catch(call: Callable[[], None], errors: list[BaseException]) -> None:
    try:
        call()
    except BaseException as exc:  # handed to the test's thread
        errors.append(exc)


def test_a_lock_held_too_long_fails_the_flush_as_retryable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "books" / "contacts.csv"
    conn = connector(tmp_path)
    path.write_bytes((HEADER + "1,a@x.org,Ann\r\n").encode())
    conn.create("contact", [Create("k", {"email": "k@x.org"})])
    monkeypatch.setattr(guard_module, "LOCK_WAIT", 0.2)
    with (
        holding_lock(path),
        pytest.raises(FileLockedError, match=r"books/contacts\.csv is locked") as failure,
    ):
        conn.flush()
    assert failure.value.retryable
    assert path.read_bytes() == (HEADER + "1,a@x.org,Ann\r\n").encode()


# -- through the engine: a failed flush records nothing ---------------------------------


def test_a_failed_flush_fails_the_run_and_records_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "books").mkdir()
    path = tmp_path / "books" / "contacts.csv"
    path.write_bytes((HEADER + "1,a@x.org,Ann\r\n").encode())
    cfg = make_config(
        tmp_path, {"mode": "export", "right": "books", "match": {"contact": ["email"]}}, books=BOOKS
    )
    left, _ = systems()
    for n in range(5):
        left.put("contact", {"email": f"c{n}@x.org", "first_name": f"C{n}"})
    store = Store(cfg.daemon.state)
    try:
        meddle(monkeypatch, append_module, "fsync_directory", 100, append_outside(path))
        failed = runner_for(cfg, store).run("p")
        assert failed.status == "failed"
        assert failed.error is not None and CHANGED in failed.error
        assert store.count_bindings("p") in ({}, {"contact": 0})
        assert store.cursor("p", "left", "contact") is None
        monkeypatch.undo()
        done = runner_for(cfg, store).run("p")
        assert done.status == "ok" and done.counts["created"] == 5
    finally:
        store.close()
    emails = [row[1] for row in table(path)[1:]]
    assert sorted(emails) == sorted(
        ["a@x.org", *(f"c{n}@x.org" for n in range(5)), *(f"x{n}@outside.org" for n in (1, 2, 3))]
    )


# -- the race, through the real command ----------------------------------------------

RACE_CONFIG = """
[daemon]
state = "sqlite:///state.db"
log_format = "json"

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
  first_name = "First"

[pairs.to-csv]
left = "crm"
right = "books"
entities = ["contact"]
  [pairs.to-csv.match]
  contact = ["email"]
"""
HELPER = Path(__file__).with_name("csv_outside_writer.py")


def test_a_program_appending_and_rewriting_during_runs_loses_nothing(tmp_path: Path) -> None:
    """A real second process appends rows and rewrites the file (holding the lock, as
    documented) while ``syncd sync`` exports into it, round after round: no row of
    either is lost, duplicated or glued, every run finishes, and a run after the race
    has every contact as it is now."""
    config = tmp_path / "syncd.toml"
    config.write_text(RACE_CONFIG, encoding="utf-8")
    (tmp_path / "books").mkdir()
    path = tmp_path / "books" / "contacts.csv"
    path.write_bytes(HEADER.encode())
    crm = sqlite3.connect(tmp_path / "crm.db")
    crm.execute(
        "CREATE TABLE contacts"
        " (id INTEGER PRIMARY KEY, first_name TEXT, email TEXT, updated_at TEXT)"
    )
    total = 0

    def add(count: int, stamp: str) -> None:
        nonlocal total
        crm.executemany(
            "INSERT INTO contacts VALUES (?, ?, ?, ?)",
            (
                (n, f"First{n}", f"p{n}@example.com", stamp)
                for n in range(total + 1, total + count + 1)
            ),
        )
        crm.execute(
            "UPDATE contacts SET first_name = 'Renamed' || id, updated_at = ? WHERE id % 7 = 0",
            (stamp,),
        )
        crm.commit()
        total += count

    stop = tmp_path / "stop"
    helper = subprocess.Popen(
        [sys.executable, str(HELPER), str(path), str(stop), "60", "20000", "17"],
        stdout=subprocess.PIPE,
        text=True,
    )
    outcomes: list[str] = []
    try:
        for round_ in range(3):
            add(3000 if round_ == 0 else 1000, f"2026-01-0{round_ + 1} 00:00:00")
            result = syncd("sync", "to-csv", "--json", config=config, timeout=120)
            assert result.code in (0, 1), result.err
            outcomes.append(result.json()["status"])
    finally:
        stop.touch()
        out, _ = helper.communicate(timeout=60)
    assert helper.returncode == 0
    outside = json.loads(out)
    assert len(outside) > 20  # the helper did write during the runs
    assert outcomes == ["ok"] * 3  # a flush waits for the lock: the file never moves under it
    final = syncd("sync", "to-csv", "--json", config=config, timeout=120)
    assert final.code == 0 and final.json()["status"] == "ok", final.out + final.err
    rows = table(path)
    assert rows[0] == ["Id", "Email", "First"]
    assert all(len(row) == 3 for row in rows[1:]), "a row was glued or cut"
    ids = [row[0] for row in rows[1:]]
    assert len(ids) == len(set(ids))
    theirs = {row[0]: row[1:] for row in rows[1:] if row[0].startswith("x")}
    assert theirs == outside
    ours = {row[1]: row[2] for row in rows[1:] if not row[0].startswith("x")}
    expected = {
        email: first for first, email in crm.execute("SELECT first_name, email FROM contacts")
    }
    assert ours == expected
    crm.close()
