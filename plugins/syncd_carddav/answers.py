"""What the WebDAV layer hands the connector: members of a multistatus answer, and
the exceptions the connector acts on. Kept apart from :mod:`syncd_carddav.dav` so that
loading the plugin does not import httpx and tenacity: that happens when a CardDAV
connector is opened."""

from __future__ import annotations

from dataclasses import dataclass


class SyncCollectionUnsupported(Exception):
    """The server does not offer RFC 6578 sync-collection on this collection."""


class InvalidToken(Exception):
    """The server refused the sync-token (Radicale 403, Xandikos 412)."""


@dataclass(slots=True)
class Member:
    """One multistatus response: the resource href, its ETag, card text, or 404."""

    href: str
    etag: str | None = None
    data: str | None = None
    gone: bool = False
