"""The carddav connector's HTTP behaviour against a real Radicale behind a small
fault-injecting proxy: retries with backoff and Retry-After, run errors for a server
that keeps failing or refuses access, per-record errors for a refused card, a server
without sync-collection (ETag listing), and cards damaged on their way from the
server (listing problems, a card that cannot be patched)."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from test_carddav_connector import _start, radicale  # noqa: F401 - the fixture
from test_carddav_connector import connector as open_connector

from syncd.plugin.connector import (
    AuthError,
    ConfigurationError,
    Create,
    ErrorKind,
    RateLimitedError,
    UnavailableError,
    Update,
)
from syncd_carddav import CardDavConnector

#: Response headers not passed on: the proxy sends the body decoded, in one piece.
_HOP_BY_HOP = ("content-length", "transfer-encoding", "connection", "content-encoding")


@dataclass
class Fault:
    """Answer the next ``times`` requests of ``method`` (whose body contains ``when``)
    with ``status`` and ``headers`` instead of forwarding them."""

    method: str
    status: int
    times: int = 1
    when: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Rewrite:
    """Replace ``pattern`` (a regular expression) with ``replacement`` in the answers
    to ``method``: a card damaged on the server or on its way."""

    method: str
    pattern: bytes
    replacement: bytes


class Proxy:
    """A reverse proxy on 127.0.0.1 in front of ``upstream``, with injectable faults
    and rewrites, and a log of the requests it saw as (method, path)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.faults: list[Fault] = []
        self.rewrites: list[Rewrite] = []
        self.seen: list[tuple[str, str]] = []
        self.client = httpx.Client()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.seen.append((self.command, self.path))
                for fault in proxy.faults:
                    if fault.times and fault.method == self.command and fault.when in body:
                        fault.times -= 1
                        self.send_response(fault.status)
                        for name, value in fault.headers.items():
                            self.send_header(name, value)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")
                }
                answer = proxy.client.request(
                    self.command, proxy.upstream + self.path, headers=headers, content=body
                )
                content = answer.content
                for rewrite in proxy.rewrites:
                    if rewrite.method == self.command:
                        content = re.sub(rewrite.pattern, rewrite.replacement, content, flags=re.S)
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_PUT = do_DELETE = do_PROPFIND = do_REPORT = do_MKCOL = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self, method: str) -> int:
        return sum(1 for seen, _ in self.seen if seen == method)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.client.close()


@pytest.fixture
def proxy(radicale: str) -> Iterator[Proxy]:  # noqa: F811 - the fixture
    """A proxy in front of the test Radicale; its ``book`` attribute is the address
    book's URL through the proxy."""
    base, path = radicale.split("/alice/", 1)
    running = Proxy(base)
    running.book = f"{running.url}/alice/{path}"  # type: ignore[attr-defined]
    yield running
    running.close()


def connector(url: str, tmp_path: Path, **extra: object) -> CardDavConnector:
    """An opened connector that retries without waiting long."""
    return open_connector(url, tmp_path, **{"backoff": 0.01, **extra})


def test_a_503_with_retry_after_is_retried_after_the_delay(proxy: Proxy, tmp_path: Path) -> None:
    conn = connector(proxy.book, tmp_path)  # type: ignore[attr-defined]
    proxy.faults.append(Fault("PUT", 503, headers={"Retry-After": "1"}))
    started = time.monotonic()
    [result] = conn.create("contact", [Create("k", {"email": "k@x.example"})])
    assert result.ok and result.version
    assert proxy.count("PUT") == 2
    assert time.monotonic() - started >= 1  # the server asked for a second


def test_a_server_that_keeps_failing_fails_the_run(proxy: Proxy, tmp_path: Path) -> None:
    proxy.faults.append(Fault("PROPFIND", 500, times=100))
    with pytest.raises(UnavailableError, match="500"):
        connector(proxy.book, tmp_path, retries=2)  # type: ignore[attr-defined]
    assert proxy.count("PROPFIND") == 3


def test_rate_limiting_that_does_not_stop_is_reported(proxy: Proxy, tmp_path: Path) -> None:
    conn = connector(proxy.book, tmp_path, retries=1)  # type: ignore[attr-defined]
    proxy.faults.append(Fault("REPORT", 429, times=100, headers={"Retry-After": "0"}))
    with pytest.raises(RateLimitedError):
        list(conn.changes("contact", None))
    assert proxy.count("REPORT") == 2


def test_access_refused_is_a_run_error(proxy: Proxy, tmp_path: Path) -> None:
    proxy.faults.append(Fault("PROPFIND", 403))
    with pytest.raises(AuthError, match="check username/password"):
        connector(proxy.book, tmp_path)  # type: ignore[attr-defined]


def test_a_refused_card_fails_alone(proxy: Proxy, tmp_path: Path) -> None:
    conn = connector(proxy.book, tmp_path)  # type: ignore[attr-defined]
    proxy.faults.append(Fault("PUT", 415, when=b"bad@x.example"))
    results = conn.create(
        "contact",
        [
            Create("a", {"email": "a@x.example"}),
            Create("b", {"email": "bad@x.example"}),
            Create("c", {"email": "c@x.example"}),
        ],
    )
    assert [r.ok for r in results] == [True, False, True]
    error = results[1].error
    assert error is not None and error.kind is ErrorKind.INVALID and not error.retryable
    assert "415" in error.message


def test_cards_that_cannot_be_read_are_listing_problems(proxy: Proxy, tmp_path: Path) -> None:
    """Issue 17, item 5: a card the server sends cut short, or sends no data for, is
    reported on its page (resource name, one-line reason), not left out silently."""
    conn = connector(proxy.book, tmp_path)  # type: ignore[attr-defined]
    emails = {"a": "a@x.example", "b": "cut@x.example", "c": "c@x.example", "d": "none@x.example"}
    created = conn.create("contact", [Create(k, {"email": v}) for k, v in emails.items()])
    assert all(r.ok for r in created)
    proxy.rewrites += [
        Rewrite("REPORT", rb"(EMAIL:cut@x\.example).*?END:VCARD", rb"\1"),
        Rewrite("REPORT", rb"<([\w]+:)?address-data[^>]*>[^<]*none@x\.example[^<]*</[^>]*>", b""),
    ]
    pages = list(conn.changes("contact", None))
    assert sorted(r.id for p in pages for r in p.records) == ["a.vcf", "c.vcf"]
    problems = {p.id: p for page in pages for p in page.problems}
    assert set(problems) == {"b.vcf", "d.vcf"}
    assert problems["b.vcf"].where == "b.vcf" and "cut short" in problems["b.vcf"].reason
    assert problems["d.vcf"].reason == "the server sent no card data"
    assert not any(p.warning or "@" in p.reason for p in problems.values())
    assert set(conn.get("contact", ["a.vcf", "b.vcf"])) == {"a.vcf"}


def test_a_card_that_cannot_be_patched_or_written_fails_alone(proxy: Proxy, tmp_path: Path) -> None:
    """Issue 17, item 8: a card the update cannot patch, or a new card that cannot be
    written, is that card's permanent INVALID error; the rest of the batch goes on."""
    conn = connector(proxy.book, tmp_path)  # type: ignore[attr-defined]
    created = conn.create(
        "contact",
        [Create(k, {"email": f"{k}@x.example"}) for k in "abc"]
        + [Create("d", {"email": "d@x.example", "notes": "lone \ud800"})],
    )
    assert [r.ok for r in created] == [True, True, True, False]
    bad_new = created[3].error
    assert bad_new is not None and bad_new.kind is ErrorKind.INVALID
    assert bad_new.message == "d.vcf: cannot create: a value holds a character UTF-8 cannot encode"
    # b's card comes back from the server with a grouped UID, which vobject refuses
    proxy.rewrites.append(Rewrite("GET", rb"\nUID:b\r", rb"\nitem1.UID:b\r"))
    puts = proxy.count("PUT")
    results = conn.update("contact", [Update(f"{k}.vcf", {"title": "CEO"}) for k in "abc"])
    assert [r.ok for r in results] == [True, False, True]
    error = results[1].error
    assert error is not None and error.kind is ErrorKind.INVALID and not error.retryable
    assert error.message.startswith("b.vcf: cannot update: ") and "group" in error.message
    assert proxy.count("PUT") == puts + 2


def test_without_sync_collection_etags_are_compared(
    proxy: Proxy,
    radicale: str,  # noqa: F811
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server that refuses sync-collection is listed with PROPFIND; the cursor keeps
    the ETags, so later runs fetch only new and changed cards and report deletions."""
    conn = connector(proxy.book, tmp_path)  # type: ignore[attr-defined]
    created = conn.create("contact", [Create(k, {"email": f"{k}@x.example"}) for k in "abc"])
    proxy.faults.append(Fault("REPORT", 501, times=100, when=b"sync-collection"))
    pages = list(conn.changes("contact", None))
    assert sorted(r.id for p in pages for r in p.records) == ["a.vcf", "b.vcf", "c.vcf"]
    assert all(p.full for p in pages)
    assert "does not offer sync-collection" in caplog.text
    cursor = pages[-1].cursor
    assert [(p.records, p.deleted) for p in conn.changes("contact", cursor)] == [([], [])]

    auth = ("alice", "x")
    card = httpx.get(radicale + "b.vcf", auth=auth).text.replace("b@x.example", "b2@x.example")
    assert httpx.put(radicale + "b.vcf", content=card, auth=auth).status_code in (201, 204)
    assert httpx.delete(radicale + "c.vcf", auth=auth).status_code in (200, 204)
    multigets = sum(1 for method, _ in proxy.seen if method == "REPORT")
    again = list(conn.changes("contact", cursor))
    assert [r.id for p in again for r in p.records] == ["b.vcf"]
    assert again[-1].records[0].fields["email"] == "b2@x.example"
    assert [d for p in again for d in p.deleted] == ["c.vcf"]
    assert not any(p.full for p in again)
    # one multiget, for the changed card only (a sync-collection REPORT is not sent again)
    assert sum(1 for method, _ in proxy.seen if method == "REPORT") == multigets + 1
    assert created[0].ok


@pytest.fixture
def tls_radicale(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A Radicale serving HTTPS with a self-signed certificate for 127.0.0.1, with an
    address book; yields its URL and the certificate (to trust as a CA file)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    proc, base = _start(
        tmp_path,
        ["--auth-type", "none", "--server-ssl", "True",
         "--server-certificate", str(cert), "--server-key", str(key)],
        scheme="https",
    )  # fmt: skip
    try:
        auth = ("alice", "x")
        with httpx.Client(verify=False, auth=auth) as client:
            client.request("MKCOL", f"{base}/alice/")
            body = (
                '<?xml version="1.0"?><D:mkcol xmlns:D="DAV:" '
                'xmlns:C="urn:ietf:params:xml:ns:carddav"><D:set><D:prop><D:resourcetype>'
                "<D:collection/><C:addressbook/></D:resourcetype></D:prop></D:set></D:mkcol>"
            )
            assert client.request("MKCOL", f"{base}/alice/book/", content=body).status_code == 201
        yield f"{base}/alice/book/", cert
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_tls_verification_default_ca_file_and_off(
    tls_radicale: tuple[str, Path], tmp_path: Path
) -> None:
    url, cert = tls_radicale
    with pytest.raises(UnavailableError, match="certificate is not trusted"):
        connector(url, tmp_path)
    (tmp_path / "ca").mkdir()
    shutil.copy(cert, tmp_path / "ca" / "book.pem")
    trusted = connector(url, tmp_path, verify="ca/book.pem")  # relative to the config
    assert trusted.create("contact", [Create("k", {"email": "k@x.example"})])[0].ok
    unverified = connector(url, tmp_path, verify=False)
    assert [r.id for p in unverified.changes("contact", None) for r in p.records] == ["k.vcf"]
    with pytest.raises(ConfigurationError, match="cannot use CA file"):
        connector(url, tmp_path, verify="ca/missing.pem")
