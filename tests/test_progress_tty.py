"""``syncd sync``'s progress display, under a real pseudo-terminal and through a pipe.

On a terminal ``syncd sync`` shows a rich progress display on stderr (one line per
entity with the records read so far) and prints a one-line summary at the end; through
a pipe (cron, scripts, systemd) it prints only the summary, with no escape sequences.
The terminal is a real pty (Python's :mod:`pty`): ``syncd`` sees ``isatty()`` true on
stdin, stdout and stderr, exactly as in an operator's shell, and the test reads
everything it writes from the master side. The data set (a SQLite CRM with a few
thousand contacts, exported to a CSV folder) is paged so the display advances several
times; the display is always drawn once more when it stops, so nothing here depends on
how fast the machine is.
"""

from __future__ import annotations

import os
import re
import select
import sqlite3
import struct
import subprocess
import time
from pathlib import Path

import pytest

from cli_helpers import SYNCD, syncd

pty = pytest.importorskip("pty", reason="the pty module is unavailable on this platform")
fcntl = pytest.importorskip("fcntl", reason="fcntl is unavailable on this platform")
termios = pytest.importorskip("termios", reason="termios is unavailable on this platform")

COMPANIES = 150
CONTACTS = 2500

CONFIG = """
[daemon]
state = "sqlite:///state.db"

[connectors.crm]
type = "sql"
url = "sqlite:///crm.db"
page_size = 250
  [connectors.crm.entities.company]
  table = "companies"
  id = "id"
  [connectors.crm.entities.contact]
  table = "contacts"
  id = "id"
  [connectors.crm.entities.contact.fields]
  company = "company_id"

[connectors.books]
type = "csv"
path = "books"
  [connectors.books.entities.company]
  file = "companies.csv"
  id = "Id"
  [connectors.books.entities.contact]
  file = "contacts.csv"
  id = "Id"

[pairs.crm-books]
left = "crm"
right = "books"
mode = "export"
entities = ["company", "contact"]
"""

#: What rich's live display writes and a plain pipe must never carry: any CSI
#: sequence (cursor moves, erase line, colours) and cursor hide / show.
ESCAPE = re.compile(r"\x1b\[")
SUMMARY = re.compile(
    r"run 1 of crm-books: ok: (\d+) created, 0 updated, 0 deleted, 0 bound, 0 skipped,"
    r" 0 failed, 0 conflicts in [\d.]+s"
)
#: Variables that make rich pretend a pipe is a terminal (or the other way round).
RICH_OVERRIDES = ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A CRM with companies and contacts, an empty books folder, and the pair."""
    db = sqlite3.connect(tmp_path / "crm.db")
    db.executescript(
        """
        CREATE TABLE companies (id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT);
        CREATE TABLE contacts (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT,
            email TEXT, phone TEXT, company_id INTEGER);
        """
    )
    db.executemany(
        "INSERT INTO companies VALUES (?, ?, ?)",
        [(i, f"Company {i}", "Leeds") for i in range(1, COMPANIES + 1)],
    )
    db.executemany(
        "INSERT INTO contacts VALUES (?, ?, ?, ?, ?, ?)",
        [
            (i, f"First{i}", f"Last{i}", f"p{i}@example.com", f"+44 20 {i:07d}", i % COMPANIES + 1)
            for i in range(1, CONTACTS + 1)
        ],
    )
    db.commit()
    db.close()
    (tmp_path / "books").mkdir()
    path = tmp_path / "syncd.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in RICH_OVERRIDES}
    return {**env, **extra}


def run_in_pty(argv: list[str], *, columns: int = 120, rows: int = 30, timeout: float = 60) -> str:
    """Run ``argv`` with a pseudo-terminal as its stdin, stdout and stderr (its own
    session, so the pty is its controlling terminal) and return all it wrote."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    try:
        proc = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=_env(TERM="xterm-256color"),
            start_new_session=True,
            close_fds=True,
        )
    finally:
        os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal's last descriptor
                break
            if not data:
                break
            chunks.append(data)
        else:
            proc.kill()
            pytest.fail(f"{argv} did not finish within {timeout}s")
        assert proc.wait(timeout=10) == 0, b"".join(chunks).decode(errors="replace")
    finally:
        os.close(master)
    return b"".join(chunks).decode("utf-8", errors="replace")


def test_sync_on_a_terminal_shows_progress_and_a_summary(config: Path) -> None:
    screen = run_in_pty([SYNCD, "--config", str(config), "sync", "crm-books"])
    assert "\x1b[?25l" in screen  # the live display hid the cursor ...
    assert "\x1b[?25h" in screen  # ... and gave it back
    # one line per entity with the records read (the spinner and elapsed time around it)
    assert re.search(rf"company\s+{COMPANIES:,} records read", screen), screen
    assert re.search(rf"contact\s+{CONTACTS:,} records read", screen), screen
    # the display is transient; the summary line stays on the screen, after it
    summary = SUMMARY.search(screen)
    assert summary, screen
    assert int(summary.group(1)) == COMPANIES + CONTACTS
    assert screen.rindex("records read") < summary.start()
    with (config.parent / "books" / "contacts.csv").open(encoding="utf-8") as handle:
        assert sum(1 for _ in handle) == CONTACTS + 1


def test_sync_through_a_pipe_prints_no_progress_display(config: Path) -> None:
    done = syncd("sync", "crm-books", config=config)
    assert done.code == 0, done.err
    assert SUMMARY.fullmatch(done.out.strip()), done.out
    for stream in (done.out, done.err):
        assert not ESCAPE.search(stream), repr(stream)
        assert "records read" not in stream
