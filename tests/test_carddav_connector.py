"""The carddav connector against a real Radicale started by the test suite."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_vdir_connector import CONFIG, make_crm

from cli_helpers import syncd
from syncd.plugin.connector import AuthError, ConfigurationError, Create, Delete, ErrorKind, Update
from syncd_carddav import CardDavConnector, CardDavSettings
from syncd_vcard import card_fields


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(tmp: Path, auth: list[str], scheme: str = "http") -> tuple[subprocess.Popen[bytes], str]:
    """A Radicale on a free port with ``auth`` (and any other) options; its base URL."""
    port = _free_port()
    argv = [
        sys.executable, "-m", "radicale",
        "--server-hosts", f"127.0.0.1:{port}",
        "--storage-filesystem-folder", str(tmp / "storage"),
        "--auth-delay", "0",
        *auth,
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"{scheme}://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.skip("Radicale could not start (python -m radicale exited)")
        try:
            httpx.get(base + "/", timeout=1, verify=False)
            return proc, base
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    pytest.skip("Radicale did not answer within 20 s")


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[str]:
    """A Radicale with auth type none and an address book; yields its URL."""
    proc, base = _start(tmp_path, ["--auth-type", "none"])
    try:
        auth = ("alice", "x")
        # Radicale creates the principal collection on first login (then MKCOL says 405).
        parent = httpx.request("MKCOL", f"{base}/alice/", auth=auth)
        assert parent.status_code in (201, 405), parent.text
        body = (
            '<?xml version="1.0"?><D:mkcol xmlns:D="DAV:" '
            'xmlns:C="urn:ietf:params:xml:ns:carddav"><D:set><D:prop><D:resourcetype>'
            "<D:collection/><C:addressbook/></D:resourcetype></D:prop></D:set></D:mkcol>"
        )
        made = httpx.request("MKCOL", f"{base}/alice/book/", auth=auth, content=body)
        assert made.status_code == 201, made.text
        yield f"{base}/alice/book/"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def xandikos(tmp_path: Path) -> Iterator[str]:
    """A Xandikos (a second CardDAV implementation) with its default address book;
    yields the address book's URL."""
    port = _free_port()
    argv = [
        sys.executable, "-m", "xandikos", "serve",
        "-d", str(tmp_path / "xandikos"), "--defaults",
        "--state-dir", str(tmp_path / "xandikos-state"),
        "-l", "127.0.0.1", "-p", str(port),
    ]  # fmt: skip
    try:
        import xandikos  # noqa: F401
    except ImportError:
        pytest.skip("xandikos is not installed (pip install -e '.[test]')")
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    book = f"http://127.0.0.1:{port}/user/contacts/addressbook/"
    deadline = time.monotonic() + 20
    try:
        while True:
            if proc.poll() is not None:
                pytest.skip("Xandikos could not start (python -m xandikos exited)")
            try:
                if httpx.request("PROPFIND", book, headers={"Depth": "0"}).status_code == 207:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.skip("Xandikos did not answer within 20 s")
            time.sleep(0.1)
        yield book
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(params=["radicale", "xandikos"])
def server(request: pytest.FixtureRequest) -> str:
    """The address book of each real CardDAV server the suite runs."""
    url: str = request.getfixturevalue(request.param)
    return url


def connector(url: str, tmp_path: Path, **extra: object) -> CardDavConnector:
    settings = CardDavSettings.model_validate(
        {"url": url, "username": "alice", "password": "x", "page_size": 2, **extra}
    )
    conn = CardDavConnector("book", settings, base_dir=tmp_path)
    conn.open()
    return conn


CARD = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:Bo Ek\r\nN:Ek;Bo;;;\r\n"
    "EMAIL:{email}\r\nX-CUSTOM:keep me\r\nEND:VCARD\r\n"
)


def test_sync_token_changes_deletions_races_and_unknown_properties(
    server: str, tmp_path: Path
) -> None:
    radicale = server
    conn = connector(radicale, tmp_path)
    created = conn.create(
        "contact",
        [Create(f"k{i}", {"email": f"p{i}@x.example", "first_name": f"P{i}"}) for i in range(3)],
    )
    assert all(r.ok and r.version for r in created)
    pages = list(conn.changes("contact", None))
    assert sorted(r.id for p in pages for r in p.records) == ["k0.vcf", "k1.vcf", "k2.vcf"]
    assert all(p.full for p in pages)
    token = pages[-1].cursor
    assert token
    assert [(p.records, p.deleted) for p in conn.changes("contact", token)] == [([], [])]

    # Another client PUTs a card with a property syncd does not know, and edits k0.
    auth = ("alice", "x")
    httpx.put(radicale + "other.vcf", content=CARD.format(uid="o1", email="o@x.example"), auth=auth)
    conn.delete("contact", [Delete("k2.vcf", version=created[2].version)])
    pages = list(conn.changes("contact", token))
    assert [r.id for p in pages for r in p.records] == ["other.vcf"]
    assert [d for p in pages for d in p.deleted] == ["k2.vcf"]
    assert not any(p.full for p in pages)

    other = conn.get("contact", ["other.vcf"])["other.vcf"]
    [ok] = conn.update("contact", [Update("other.vcf", {"title": "CEO"}, version=other.version)])
    assert ok.ok and ok.version != other.version
    text = httpx.get(radicale + "other.vcf", auth=auth).text
    assert "X-CUSTOM:keep me" in text and card_fields(text)["title"] == "CEO"

    # A 412 race: the card changed since the engine read it.
    [stale] = conn.update("contact", [Update("other.vcf", {"title": "x"}, version=other.version)])
    assert stale.error is not None and stale.error.kind is ErrorKind.CONFLICT
    assert stale.error.retryable
    [gone] = conn.update("contact", [Update("nope.vcf", {"title": "x"})])
    assert gone.error is not None and gone.error.kind is ErrorKind.NOT_FOUND

    # An interrupted create tried again returns the card already there.
    again = conn.create("contact", [Create("k0", {"email": "p0@x.example"})])
    assert again[0].ok and again[0].id == "k0.vcf"


def test_invalid_token_falls_back_to_full_listing(
    server: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    conn = connector(server, tmp_path)
    conn.create("contact", [Create("a", {"email": "a@x.example"})])
    pages = list(conn.changes("contact", "http://radicale.org/ns/sync/bogus"))
    assert [r.id for p in pages for r in p.records] == ["a.vcf"]
    assert all(p.full for p in pages) and pages[-1].cursor
    assert "sync-token no longer valid" in caplog.text


def test_missing_address_book_is_a_run_error(radicale: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        connector(radicale.replace("/book/", "/nobook/"), tmp_path)


def test_wrong_password_is_an_auth_error(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text("alice:right\n")
    proc, base = _start(
        tmp_path,
        ["--auth-type", "htpasswd", "--auth-htpasswd-filename", str(users),
         "--auth-htpasswd-encryption", "plain"],
    )  # fmt: skip
    try:
        settings = CardDavSettings(url=f"{base}/alice/book/", username="alice", password="wrong")
        conn = CardDavConnector("book", settings, base_dir=tmp_path)
        with pytest.raises(AuthError, match="check username/password"):
            conn.open()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.slow
def test_sql_to_carddav_through_the_cli(radicale: str, tmp_path: Path) -> None:
    config_text = CONFIG.replace(
        'type = "vdir"\npath = "cards"', f'type = "carddav"\nurl = "{radicale}"'
    )
    config = tmp_path / "syncd.toml"
    config.write_text(config_text)
    make_crm(tmp_path / "crm.db")
    first = syncd("sync", "out", "--json", config=config)
    assert first.code == 0, first.err
    assert first.json()["counts"]["created"] == 2
    conn = connector(radicale, tmp_path)
    cards = {r.fields["email"]: r for p in conn.changes("contact", None) for r in p.records}
    # No company entity in an address book: the reference becomes the company's name.
    assert cards["ann@acme.example"].fields["company"] == "Acme Corporation"
    again = syncd("sync", "out", "--json", config=config)
    assert again.code == 0, again.err
    assert again.json()["counts"]["created"] == 0 and again.json()["counts"]["updated"] == 0

    # Another client edits Ann's card with a plain PUT; an import-direction run of the
    # same pair (two-way mode is being built in parallel) carries it into the CRM.
    ann = cards["ann@acme.example"]
    text = httpx.get(radicale + ann.id, auth=("alice", "x")).text.replace(
        "TITLE:CEO", "TITLE:Chair"
    )
    assert httpx.put(radicale + ann.id, content=text, auth=("alice", "x")).status_code in (201, 204)
    config.write_text(config_text.replace('mode = "export"', 'mode = "import"'))
    back = syncd("sync", "out", "--json", config=config)
    assert back.code == 0, back.err
    with sqlite3.connect(tmp_path / "crm.db") as db:
        assert db.execute("SELECT title FROM contacts WHERE id = 1").fetchone() == ("Chair",)


@pytest.mark.slow
def test_two_way_sql_and_carddav_through_the_cli(radicale: str, tmp_path: Path) -> None:
    """A two-way pair: an edit another client PUTs into the address book reaches the
    CRM, a CRM edit reaches the card (keeping the other client's own property), and
    the run after that writes nothing."""
    config_text = CONFIG.replace(
        'type = "vdir"\npath = "cards"', f'type = "carddav"\nurl = "{radicale}"'
    ).replace('mode = "export"', 'mode = "two-way"')
    config = tmp_path / "syncd.toml"
    config.write_text(config_text)
    make_crm(tmp_path / "crm.db")
    first = syncd("sync", "out", "--json", config=config)
    assert first.code == 0, first.err
    assert first.json()["counts"]["created"] == 2

    auth = ("alice", "x")
    conn = connector(radicale, tmp_path)
    cards = {r.fields["email"]: r for p in conn.changes("contact", None) for r in p.records}
    ann = cards["ann@acme.example"]
    text = httpx.get(radicale + ann.id, auth=auth).text.replace(
        "TITLE:CEO", "TITLE:Chair\r\nX-FOREIGN:kept by syncd"
    )
    assert httpx.put(radicale + ann.id, content=text, auth=auth).status_code in (201, 204)
    with sqlite3.connect(tmp_path / "crm.db") as db:
        db.execute(
            "UPDATE contacts SET phone = '+1 555 0200', updated_at = '2026-01-02 00:00:00'"
            " WHERE id = 2"
        )
        db.execute(
            "UPDATE contacts SET mobile = '+1 555 0109', updated_at = '2026-01-02 00:00:00'"
            " WHERE id = 1"
        )

    second = syncd("sync", "out", "--json", config=config)
    assert second.code == 0, second.err
    assert second.json()["counts"]["updated"] == 3, second.json()
    with sqlite3.connect(tmp_path / "crm.db") as db:
        assert db.execute("SELECT title FROM contacts WHERE id = 1").fetchone() == ("Chair",)
    ann_card = httpx.get(radicale + ann.id, auth=auth).text
    assert "X-FOREIGN:kept by syncd" in ann_card
    assert card_fields(ann_card)["mobile"] == "+1 555 0109"
    bob = cards["bob@acme.example"]
    assert card_fields(httpx.get(radicale + bob.id, auth=auth).text)["phone"] == "+1 555 0200"

    third = syncd("sync", "out", "--json", config=config)
    assert third.code == 0, third.err
    counts = third.json()["counts"]
    assert {k: counts[k] for k in ("created", "updated", "deleted", "bound", "failed")} == {
        "created": 0, "updated": 0, "deleted": 0, "bound": 0, "failed": 0
    }  # fmt: skip
