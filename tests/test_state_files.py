"""The SQLite state store's files: owner-only whatever the umask, and readable by
the commands that only look (status, history, show, bindings list, check) for a
user who may read the store but not write it."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from cli_helpers import SYNCD, demo_copy, syncd
from syncd.state import Store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_store_and_its_wal_and_shm_files_are_owner_only_under_umask_022(
    tmp_path: Path,
) -> None:
    path = tmp_path / "new" / "state.db"
    old = os.umask(0o022)
    try:
        store = Store(f"sqlite:///{path}")
        store.start_run("p", "cli", "export", False)  # a write: the WAL is in use
        files = sorted(p.name for p in path.parent.iterdir())
        assert files == ["state.db", "state.db-shm", "state.db-wal"]
        assert {name: mode(path.parent / name) for name in files} == dict.fromkeys(files, 0o600)
        assert mode(path.parent) == 0o700
        store.close()
    finally:
        os.umask(old)


def test_syncd_sync_creates_an_owner_only_store_under_umask_022(tmp_path: Path) -> None:
    config = demo_copy(tmp_path)
    done = subprocess.run(
        [SYNCD, "--config", str(config), "sync", "crm-books"],
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=lambda: os.umask(0o022),
    )
    assert done.returncode == 1, done.stderr  # the demo refuses one record
    assert mode(config.parent / "demo" / "state" / "state.db") == 0o600


def test_a_store_older_than_syncd_is_named_not_upgraded_by_a_command_that_looks(
    tmp_path: Path,
) -> None:
    config = demo_copy(tmp_path)
    assert syncd("sync", "crm-books", config=config).code == 1
    state = config.parent / "demo" / "state" / "state.db"
    with sqlite3.connect(state) as db:
        db.execute("UPDATE alembic_version SET version_num = '0000'")
    shown = syncd("history", config=config)
    assert shown.code == 2
    assert "has schema 0000, older than this syncd's" in shown.err
    assert shown.err.count("\n") == 1 and "Traceback" not in shown.err
    with sqlite3.connect(state) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [("0000",)]


# -- a user who may read the store but not write it ---------------------------------------

NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


@pytest.fixture
def shared_demo() -> Iterator[Path]:
    """The demo in a directory every user may read (tests run as root; the commands
    under test run as ``nobody``)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run syncd as another user")
    probe = subprocess.run([*NOBODY, "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"setpriv cannot switch users here: {probe.stderr.decode().strip()}")
    top = Path(tempfile.mkdtemp(prefix="syncd-shared-"))
    try:
        top.chmod(0o755)
        yield demo_copy(top)
    finally:
        shutil.rmtree(top)


def as_nobody(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NOBODY, SYNCD, "--config", str(config), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_a_user_who_may_only_read_the_store_can_look_at_it(shared_demo: Path) -> None:
    config = shared_demo
    assert syncd("sync", "crm-books", config=config).code == 1
    state = config.parent / "demo" / "state" / "state.db"
    subprocess.run(["chmod", "-R", "a+rX", str(config.parent.parent)], check=True)
    state.chmod(0o644)  # readable by all, writable by root only; its directory too
    assert not list(state.parent.glob("state.db-*"))  # no writer has it open

    commands = [["status"], ["history", "--json"], ["show", "1"], ["bindings", "list", "crm-books"]]
    for command in [*commands, ["check"]]:
        done = as_nobody(config, *command)
        assert done.returncode == 0, (command, done.stderr)
    history = as_nobody(config, "history", "--json")
    assert '"status": "partial"' in history.stdout

    # while a writer has the store open, its WAL files exist (with the store's mode)
    writer = Store(f"sqlite:///{state}")
    with writer.engine.begin() as conn:
        conn.execute(text("UPDATE pair_state SET paused = paused"))
    try:
        assert mode(state.with_name("state.db-shm")) == 0o644
        for command in commands:
            done = as_nobody(config, *command)
            assert done.returncode == 0, (command, done.stderr)
    finally:
        writer.close()

    # a command that writes says, in one line, that it may not
    refused = as_nobody(config, "pause", "crm-books")
    assert refused.returncode == 2  # the store cannot be opened for writing
    assert refused.stderr.count("\n") == 1 and "read-only" in refused.stderr, refused.stderr
