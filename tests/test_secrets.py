"""Secrets in URLs: parsed where an operator means them to end, masked in every output.

The end-to-end tests put a password holding every reserved URL character in the
configuration, make runs fail (a PostgreSQL port where nothing listens, a SQLite
path that does not exist) and search every output for any piece of it: stdout,
stderr, the JSON log, ``history --json``, ``show --json`` and the stored history.
Each piece of the password carries the marker ``zq``, which nothing else prints.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from cli_helpers import SYNCD, demo_copy, syncd
from syncd.kit.dburl import mask_url, normalise_url
from syncd.redact import remember, scrub

RESERVED = ":/?#[]@!$&'()*+,;=% "
PASSWORD = "".join(
    f"zq{letter}{char}" for letter, char in zip("ABCDEFGHIJKLMNOPQRST", RESERVED, strict=True)
)


def free_port() -> int:
    """A port on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


passwords = st.text(alphabet=RESERVED + "aZ9é", min_size=1, max_size=30)


@given(password=passwords.filter(lambda p: "@" in p), user=st.sampled_from(["u", "u@corp"]))
def test_a_user_info_holding_an_at_sign_is_read_to_its_last_at(password: str, user: str) -> None:
    written = f"postgresql+psycopg://{user}:{password}@db.example:5432/crm"
    url = make_url(normalise_url(written, Path("/")))
    assert (url.username, url.password) == (user, password)
    assert (url.host, url.port, url.database) == ("db.example", 5432, "crm")
    assert mask_url(written) == f"postgresql+psycopg://{user}:***@db.example:5432/crm"


@given(password=passwords.filter(lambda p: "@" not in p and "%" not in p))
def test_a_user_info_without_an_at_sign_is_left_as_written(password: str) -> None:
    written = f"postgresql://syncd:{password}@db.example/crm"
    assert normalise_url(written, Path("/")) == written
    assert make_url(written).password == password
    assert mask_url(written) == "postgresql://syncd:***@db.example/crm"


def test_postgres_is_an_alias_and_sqlite_paths_are_anchored() -> None:
    base = Path("/etc/syncd")
    assert normalise_url("postgres://u@h/db", base) == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgres+psycopg://u@h/db", base) == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///s.db", base) == "sqlite:////etc/syncd/s.db"
    assert normalise_url("sqlite:////var/x@y.db", base) == "sqlite:////var/x@y.db"
    assert mask_url("not a url with a p@ssword") == "***"


def test_remembered_secrets_are_scrubbed_as_written_and_as_urls_render_them() -> None:
    written = f"postgresql://syncd:{PASSWORD}@h/db"
    remember(written)
    remember("a-token-zqtoken")
    normalised = normalise_url(written, Path("/"))
    rendered = make_url(normalised).render_as_string(hide_password=False)
    text = f"a {PASSWORD} b {normalised} c {rendered} d a-token-zqtoken"
    assert "zq" not in scrub(text)
    assert scrub("ab zq") == "ab zq"


CONFIG = """
[daemon]
state = {state}
log_format = "json"

[connectors.crm]
type = "sql"
url = "postgresql+psycopg://syncd:{password}@127.0.0.1:{port}/crm"
  [connectors.crm.entities.contact]
  table = "contacts"

[connectors.local]
type = "sql"
url = "sqlite+pysqlcipher://:{password}@//{missing}"
  [connectors.local.entities.contact]
  table = "contacts"

[connectors.books]
type = "csv"
path = "books"
  [connectors.books.entities.contact]
  file = "contacts.csv"
  id = "Id"

[pairs.unreachable]
left = "crm"
right = "books"
entities = ["contact"]

[pairs.missing]
left = "local"
right = "books"
entities = ["contact"]
"""


def write_config(tmp_path: Path, state: str) -> Path:
    (tmp_path / "books").mkdir()
    path = tmp_path / "syncd.toml"
    missing = tmp_path / "nowhere" / "crm.db"
    path.write_text(
        CONFIG.format(state=state, password=PASSWORD, port=free_port(), missing=missing)
    )
    return path


def test_no_piece_of_a_password_reaches_any_output_or_the_history(tmp_path: Path) -> None:
    config = write_config(tmp_path, '"sqlite:///state.db"')
    outputs = []
    for command in (
        ["sync", "unreachable"],
        ["-v", "sync", "unreachable", "--json"],
        ["--debug", "sync", "missing"],
        ["check"],
        ["check", "--json"],
        ["history"],
        ["show", "1", "--json"],
        ["show", "3"],
    ):
        done = syncd(*command, config=config)
        assert done.code in (0, 1), (command, done.err)
        outputs.append(done.out + done.err)
    history = syncd("history", "--json", config=config)
    outputs.append(history.out + history.err)
    errors = {r["pair"]: r["error"] for r in history.json()}
    assert "syncd:***@127.0.0.1" in errors["unreachable"]
    assert "database unavailable" in errors["unreachable"]
    assert "does not exist" in errors["missing"]
    assert '"event": "run.finish"' in outputs[1]  # the JSON log was searched too
    db = sqlite3.connect(tmp_path / "state.db")
    outputs.append("\n".join(db.iterdump()))  # every table of the stored history
    db.close()
    leaks = [text for text in outputs if "zq" in text]
    assert not leaks, leaks[0]


@pytest.mark.parametrize("form", ["literal", "env"])
def test_an_unreachable_state_store_names_no_piece_of_its_password(
    tmp_path: Path, form: str
) -> None:
    url = f"postgresql+psycopg://syncd:{PASSWORD}@127.0.0.1:{free_port()}/state"
    state = '{ env = "SYNCD_TEST_STATE" }' if form == "env" else f'"{url}"'
    config = write_config(tmp_path, state)
    env = {**os.environ, "SYNCD_TEST_STATE": url}
    for command in (["sync", "unreachable"], ["check"]):
        done = subprocess.run(
            [SYNCD, "--config", str(config), *command],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert done.returncode in (1, 2), (command, done.stderr)
        assert "zq" not in done.stdout + done.stderr, (command, done.stdout + done.stderr)
        if command[0] != "check":
            assert done.stderr.count("\n") == 1 and "syncd:***@127.0.0.1" in done.stderr


STATE_FORMS = {
    "env": '{ env = "SYNCD_TEST_STATE" }',
    "file": '{ file = "secrets/state-url" }',
    "credential": '{ credential = "state-url" }',
}


@pytest.mark.parametrize(
    ("form", "backend"),
    [("env", "sqlite"), ("file", "sqlite"), ("credential", "sqlite"), ("env", "postgresql")],
)
def test_the_state_store_url_from_each_secret_form(
    tmp_path: Path, request: pytest.FixtureRequest, form: str, backend: str
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'from-secret.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    config = demo_copy(tmp_path)
    text = config.read_text().replace('"sqlite:///demo/state/state.db"', STATE_FORMS[form])
    config.write_text(text)
    (config.parent / "secrets").mkdir()
    (config.parent / "secrets" / "state-url").write_text(url + "\n")
    env = {"SYNCD_TEST_STATE": url, "CREDENTIALS_DIRECTORY": str(config.parent / "secrets")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [SYNCD, "--config", str(config), *args]
        return subprocess.run(
            argv, capture_output=True, text=True, env={**os.environ, **env}, timeout=60
        )

    synced = run("sync", "crm-books", "--json")
    assert synced.returncode == 1, synced.stderr  # the demo's contact without e-mail
    history = run("history", "--json")
    assert [r["status"] for r in json.loads(history.stdout)] == ["partial"]
    if backend == "sqlite":
        assert (tmp_path / "from-secret.db").exists()
        assert not (config.parent / "demo" / "state" / "state.db").exists()
    del env["SYNCD_TEST_STATE"]
    del env["CREDENTIALS_DIRECTORY"]
    (config.parent / "secrets" / "state-url").unlink()
    unreadable = run("status")
    assert unreadable.returncode == 2
    assert unreadable.stderr.count("\n") == 1 and "daemon.state: " in unreadable.stderr
