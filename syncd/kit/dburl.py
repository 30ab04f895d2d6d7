"""Database URLs as operators write them: parsed, normalised, checked and masked.

SQLAlchemy ends a URL's user-info at the FIRST ``@``, so a password holding an
unencoded ``@`` (``postgresql://u:p@ss@host/db``) is cut in two and its tail taken as
part of the host, where it reaches every message that names the host. Here the
user-info is everything up to the LAST ``@`` before the host, and such a user-info is
percent-encoded before SQLAlchemy sees it; every message shows the URL masked by the
same parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
#: ``postgres://`` is what Heroku-style DATABASE_URLs use; SQLAlchemy dropped the alias
_POSTGRES_ALIAS = re.compile(r"postgres(?=://|\+)")
#: drivers syncd's extras install, per dialect: (driver, extra)
_EXTRAS = {"postgresql": ("psycopg", "postgres"), "mysql": ("pymysql", "mysql")}
#: query parameters whose values are secrets
_SECRET_PARAM = re.compile(r"pass|secret|token|key", re.IGNORECASE)
MASK = "***"


@dataclass(frozen=True, slots=True)
class UrlParts:
    """A URL split where SQLAlchemy and an operator agree: ``scheme://`` then the
    user-info (up to the last ``@``, None without one) then the rest (host, port,
    path, query)."""

    scheme: str
    userinfo: str | None
    rest: str

    @property
    def user(self) -> str | None:
        """The user name as written (None without user-info)."""
        return None if self.userinfo is None else self.userinfo.partition(":")[0]

    @property
    def password(self) -> str | None:
        """The password as written (None when the user-info has no ``:``)."""
        if self.userinfo is None or ":" not in self.userinfo:
            return None
        return self.userinfo.partition(":")[2]


def split_url(text: str) -> UrlParts | None:
    """The parts of a ``scheme://...`` URL, or None when ``text`` is not one."""
    scheme = _SCHEME.match(text)
    if scheme is None:
        return None
    rest = text[scheme.end() :]
    at = rest.rfind("@")
    if rest.startswith("/") or at < 0:  # no authority (sqlite:///path) or no user-info
        return UrlParts(scheme.group(), None, rest)
    return UrlParts(scheme.group(), rest[:at], rest[at + 1 :])


def normalise_url(text: str, base_dir: Path) -> str:
    """The URL as SQLAlchemy must read it.

    ``postgres`` becomes ``postgresql+psycopg`` (the driver ``syncd[postgres]``
    installs); a user-info holding ``@`` (which no correctly encoded one does) is
    taken literally and percent-encoded; a relative SQLite path is made relative to
    ``base_dir`` (the configuration file's folder) instead of the working directory.
    A user-info without ``@`` is left as written: SQLAlchemy decodes its ``%XX``.
    """
    text = text.strip()
    if _POSTGRES_ALIAS.match(text):
        text = "postgresql" + ("+psycopg" if text[8:11] == "://" else "") + text[8:]
    parts = split_url(text)
    if parts is not None and parts.userinfo is not None and "@" in parts.userinfo:
        user, sep, password = parts.userinfo.partition(":")
        encoded = quote(user, safe="") + sep + quote(password, safe="")
        text = f"{parts.scheme}{encoded}@{parts.rest}"
    return _anchor_sqlite(text, base_dir)


def _anchor_sqlite(url: str, base_dir: Path) -> str:
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return url
    rest = url[len(prefix) :]
    if not rest or rest.startswith("/") or rest.startswith(":memory:"):
        return url
    path, sep, query = rest.partition("?")
    return f"{prefix}{(base_dir / path).resolve()}{sep}{query}"


def mask_url(text: str) -> str:
    """The URL with its password (and secret query values) replaced by ``***``;
    text that is not a ``scheme://`` URL is not shown at all."""
    parts = split_url(text)
    if parts is None:
        return MASK
    userinfo = ""
    if parts.userinfo is not None:
        userinfo = (parts.user or "") + (f":{MASK}" if parts.password is not None else "") + "@"
    rest = parts.rest
    for value in _secret_query_values(rest):
        rest = rest.replace(value, MASK)
    return f"{parts.scheme}{userinfo}{rest}"


def url_secrets(text: str) -> list[str]:
    """The secret pieces of a URL as they may appear in messages: its password as
    written, decoded, and encoded the ways URLs are rendered (SQLAlchemy's among
    them), and secret query values. [] for text that is not a URL."""
    parts = split_url(text)
    if parts is None:
        return []
    found = _secret_query_values(parts.rest)
    password = parts.password
    if password:
        decoded = unquote(password)
        found += [password, decoded, quote(decoded, safe=""), quote(decoded, safe=" +")]
    return found


def _secret_query_values(rest: str) -> list[str]:
    query = rest.partition("?")[2]
    return [v for k, v in parse_qsl(query) if v and _SECRET_PARAM.search(k)]


def check_database_url(text: str) -> URL:
    """Parse a normalised URL and make sure SQLAlchemy can use it: a known database
    type, a synchronous driver that is installed. Raises ``ValueError`` with a reason
    that never quotes the URL (it may hold a password it failed to parse)."""
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        raise ValueError(
            "not a database URL (e.g. sqlite:///state.db or postgresql+psycopg://user@host/dbname)"
        ) from None
    try:
        dialect = url.get_dialect()
    except NoSuchModuleError:
        raise ValueError(
            f"unknown database type {url.drivername!r} (SQLAlchemy has no such dialect; "
            "syncd supports sqlite, postgresql+psycopg and mysql+pymysql)"
        ) from None
    if getattr(dialect, "is_async", False):
        raise ValueError(f"{url.drivername} is an asyncio driver; {_advice(url)}")
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        missing = exc.name or "its module"
        raise ValueError(
            f"the database driver for {url.drivername} is not installed "
            f"(no module {missing}); {_advice(url)}"
        ) from None
    return url


def _advice(url: URL) -> str:
    name = url.get_backend_name()
    known = _EXTRAS.get("mysql" if name == "mariadb" else name)
    if known is None:
        return "install the driver's package"
    driver, extra = known
    if url.get_driver_name() == driver:
        return f"install it with: pip install 'syncd[{extra}]'"
    return f"use {name}+{driver}:// (pip install 'syncd[{extra}]')"
