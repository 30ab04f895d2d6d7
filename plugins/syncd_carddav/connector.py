"""The ``carddav`` connector: contacts in one CardDAV address book."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import quote

from pydantic import Field

from syncd.entities import CONTACT, normalize_key
from syncd.kit.listing import ListingCursor
from syncd.kit.secrets import Secret
from syncd.plugin.connector import (
    AuthError,
    ConfigurationError,
    Connector,
    ConnectorSettings,
    Create,
    Delete,
    ErrorKind,
    ListingProblem,
    Page,
    Record,
    RecordError,
    Update,
    WriteResult,
)
from syncd_carddav.answers import InvalidToken, Member, SyncCollectionUnsupported
from syncd_vcard import CONTACT_FIELDS, VCardError, card_fields, new_card, patch_card

if TYPE_CHECKING:
    import httpx

    from syncd_carddav.dav import DavClient

log = logging.getLogger("syncd.carddav")


class CardDavSettings(ConnectorSettings):
    """Settings of the carddav connector. ``verify`` is true, false or a CA file."""

    url: str = Field(min_length=1)
    username: str | None = None
    password: Secret | None = None
    verify: bool | str = True
    timeout: float = Field(default=30.0, gt=0)
    page_size: int = Field(default=100, ge=1)
    #: attempts after the first for 5xx, 429 and network errors
    retries: int = Field(default=4, ge=0)
    #: seconds before the first retry, doubled each time (Retry-After wins when sent)
    backoff: float = Field(default=0.5, ge=0)


class CardDavConnector(Connector):
    """One CardDAV address book serving ``contact`` records.

    * Reads use RFC 6578 sync-collection with the sync-token as cursor (deletions
      included); an invalid token falls back to a complete listing, logged. Servers
      without sync-collection are listed with PROPFIND: the cursor keeps every card's
      ETag, and only cards whose ETag changed are read (multiget).
    * A record's id is its resource name, its version the ETag.
    * Creates PUT a new resource named after the idempotency key with
      ``If-None-Match: *``; updates and deletes send ``If-Match`` and a 412 is a
      retryable conflict, never a blind overwrite.
    """

    type: ClassVar[str] = "carddav"
    Settings = CardDavSettings
    batch_size: ClassVar[int] = 100
    # Cards are named <key>.vcf, so a record's id is not the bare key: an interrupted
    # create is found again by the pair's match keys, not by get(key).
    client_ids: ClassVar[bool] = False

    settings: CardDavSettings

    def __init__(self, name: str, settings: ConnectorSettings, base_dir: Path) -> None:
        super().__init__(name, settings, base_dir)
        self._dav: DavClient | None = None
        #: set once the server refused sync-collection in this run
        self._no_sync_collection = False

    def open(self) -> None:
        """Open the HTTP client and check the address book exists."""
        import httpx  # here, not at import: loading the plugin should not cost httpx

        from syncd_carddav.dav import DavClient

        s = self.settings
        auth = None
        if s.username is not None:
            password = s.password.get_secret_value() if s.password is not None else ""
            auth = httpx.BasicAuth(s.username, password)
        client = httpx.Client(auth=auth, verify=self._tls(), timeout=s.timeout)
        self._dav = DavClient(s.url, client, self.name, retries=s.retries, backoff=s.backoff)
        try:
            self._dav.check()
        except BaseException:
            self.close()
            raise

    def _tls(self) -> bool | ssl.SSLContext:
        """``verify``: true (the system's CA certificates), false, or a CA file (relative
        to the configuration file) trusted instead."""
        verify = self.settings.verify
        if not isinstance(verify, str):
            return verify
        cafile = self.base_dir / Path(verify).expanduser()
        try:
            return ssl.create_default_context(cafile=str(cafile))
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise ConfigurationError(
                f"{self.name}: cannot use CA file {cafile} (verify): {reason}"
            ) from None

    def close(self) -> None:
        """Close the HTTP client."""
        if self._dav is not None:
            self._dav.client.close()
            self._dav = None

    @property
    def dav(self) -> DavClient:
        if self._dav is None:
            raise ConfigurationError(f"{self.name}: connector is not open")
        return self._dav

    def entities(self) -> Collection[str]:
        """An address book holds contacts only."""
        return (CONTACT,)

    def incremental(self, entity: str) -> bool:
        """Listings with a sync-token return only what changed."""
        return True

    def fields(self, entity: str) -> Collection[str]:
        """The contact fields a vCard carries (``company`` is the company's name)."""
        self._check_entity(entity)
        return CONTACT_FIELDS

    # -- reads ------------------------------------------------------------------------

    def changes(self, entity: str, cursor: str | None, *, full: bool = False) -> Iterator[Page]:
        """Pages of changed cards and deleted ids since the sync-token ``cursor``."""
        self._check_entity(entity)
        listed = ListingCursor.decode(cursor)
        if listed is not None or self._no_sync_collection:
            yield from self._listing_pages(None if full else listed)
            return
        token = "" if full or cursor is None else cursor
        try:
            members, new_token = self.dav.sync_collection(token)
        except InvalidToken as exc:
            log.warning(
                "%s: sync-token no longer valid (HTTP %s); listing the whole address book",
                self.name,
                exc.args[0],
            )
            members, new_token = self.dav.sync_collection("")
            token = ""
        except SyncCollectionUnsupported as exc:
            log.warning(
                "%s: the server does not offer sync-collection (%s); comparing ETags instead",
                self.name,
                exc,
            )
            self._no_sync_collection = True
            yield from self._listing_pages(None)
            return
        complete = token == ""
        live = [m for m in members if not m.gone and self.dav.href_to_name(m.href)]
        deleted = (
            []
            if complete
            else [n for m in members if m.gone and (n := self.dav.href_to_name(m.href))]
        )
        yield from self._pages(live, deleted, new_token, complete)

    def _listing_pages(self, before: ListingCursor | None) -> Iterator[Page]:
        """For servers without sync-collection: list every card's ETag (one PROPFIND)
        and fetch only those whose ETag changed since ``before`` (all without it)."""
        members = {name: m for m in self.dav.listing() if (name := self.dav.href_to_name(m.href))}
        now = ListingCursor.of({name: m.etag or "" for name, m in members.items()})
        changed, deleted = now.since(before)
        wanted = [members[name] for name in changed]
        yield from self._pages(wanted, deleted, now.encode(), before is None)

    def _pages(
        self, members: list[Member], deleted: list[str], token: str | None, complete: bool
    ) -> Iterator[Page]:
        size = self.settings.page_size
        if not members:
            yield Page(deleted=deleted, cursor=token, full=complete)
            return
        for start in range(0, len(members), size):
            chunk = members[start : start + size]
            last = start + size >= len(members)
            records, problems = self._fetch([m.href for m in chunk])
            yield Page(
                records=list(records.values()),
                deleted=deleted if last else [],
                cursor=token if last else None,
                full=complete,
                problems=problems,
            )

    def _fetch(self, hrefs: list[str]) -> tuple[dict[str, Record], list[ListingProblem]]:
        """The cards at ``hrefs`` (one multiget), and a problem for each one the server
        sent no readable card for; cards the server reports gone are neither."""
        found: dict[str, Record] = {}
        problems: list[ListingProblem] = []
        answered: set[str] = set()
        for member in self.dav.multiget(hrefs):
            name = self.dav.href_to_name(member.href)
            if name is None:
                continue
            answered.add(name)
            if member.gone:
                continue
            if member.data is None:
                problems.append(ListingProblem(name, "the server sent no card data", name))
                continue
            try:
                fields = card_fields(member.data)
            except VCardError as exc:
                problems.append(ListingProblem(name, str(exc), name))
                continue
            found[name] = Record(id=name, fields=fields, version=member.etag)
        for href in hrefs:
            name = self.dav.href_to_name(href)
            if name is not None and name not in answered:
                problems.append(ListingProblem(name, "the server did not answer for it", name))
        return found, problems

    def get(self, entity: str, ids: Sequence[str]) -> dict[str, Record]:
        """Fetch cards by resource name with one multiget; missing and unreadable
        cards are absent (a listing reports the unreadable ones)."""
        self._check_entity(entity)
        if not ids:
            return {}
        return self._fetch([self._href(rid) for rid in ids])[0]

    def find(self, entity: str, field: str, keys: Collection[str]) -> Mapping[str, list[Record]]:
        """Find cards by a normalised field value (lists the address book)."""
        self._check_entity(entity)
        wanted = {key for key in keys if key}
        if not wanted or field not in CONTACT_FIELDS:
            return {}
        found: dict[str, list[Record]] = {}
        for page in self._listing_pages(None):
            for record in page.records:
                key = normalize_key(field, record.fields.get(field))
                if key in wanted:
                    found.setdefault(key, []).append(record)
        return found

    # -- writes -----------------------------------------------------------------------

    def create(self, entity: str, items: Sequence[Create]) -> list[WriteResult]:
        """PUT new cards named after the idempotency keys with ``If-None-Match: *``."""
        self._check_entity(entity)
        results = []
        for item in items:
            name = f"{item.key}.vcf"
            try:
                text = new_card(item.key, item.fields)
            except VCardError as exc:
                results.append(_error(None, ErrorKind.INVALID, f"{name}: cannot create: {exc}"))
                continue
            response = self._put(name, text, {"If-None-Match": "*"})
            if response.status_code == 412:  # our own earlier, interrupted create
                existing = self.get(entity, [name]).get(name)
                if existing is not None:
                    results.append(WriteResult(id=name, version=existing.version))
                    continue
            results.append(self._result(name, response))
        return results

    def update(self, entity: str, items: Sequence[Update]) -> list[WriteResult]:
        """Patch each card as read and PUT it back with ``If-Match``."""
        self._check_entity(entity)
        results = []
        for item in items:
            response = self.dav.request("GET", self.dav.member_url(item.id))
            if response.status_code == 404:
                results.append(_error(item.id, ErrorKind.NOT_FOUND, "card does not exist"))
                continue
            etag = response.headers.get("ETag")
            if response.status_code != 200:
                results.append(self._result(item.id, response))
                continue
            if item.version is not None and etag is not None and etag != item.version:
                results.append(_conflict(item.id))
                continue
            try:
                text = patch_card(response.text, item.fields)
            except VCardError as exc:
                message = f"{item.id}: cannot update: {exc}"
                results.append(_error(item.id, ErrorKind.INVALID, message))
                continue
            match = etag or item.version
            headers = {"If-Match": match} if match else {}
            results.append(self._result(item.id, self._put(item.id, text, headers)))
        return results

    def delete(self, entity: str, items: Sequence[Delete]) -> list[WriteResult]:
        """DELETE cards with ``If-Match``; a card already gone counts as deleted."""
        self._check_entity(entity)
        results = []
        for item in items:
            headers = {"If-Match": item.version} if item.version else {}
            response = self.dav.request("DELETE", self.dav.member_url(item.id), headers=headers)
            if response.status_code in (200, 204, 404):
                results.append(WriteResult(id=item.id))
            else:
                results.append(self._result(item.id, response))
        return results

    # -- internals --------------------------------------------------------------------

    def _check_entity(self, entity: str) -> None:
        if entity != CONTACT:
            raise ConfigurationError(f"{self.name}: a CardDAV address book serves contacts only")

    def _href(self, rid: str) -> str:
        return self.dav.path + quote(rid)

    def _put(self, name: str, text: str, headers: dict[str, str]) -> httpx.Response:
        headers = {"Content-Type": "text/vcard; charset=utf-8", **headers}
        return self.dav.request("PUT", self.dav.member_url(name), content=text, headers=headers)

    def _result(self, rid: str, response: httpx.Response) -> WriteResult:
        status = response.status_code
        if status in (200, 201, 204):
            etag = response.headers.get("ETag")
            if etag is None:  # some servers do not return the new ETag
                got = self.get(CONTACT, [rid]).get(rid)
                etag = got.version if got else None
            return WriteResult(id=rid, version=etag)
        if status == 412:
            return _conflict(rid)
        if status == 403:
            raise AuthError(
                f"{self.name}: {self.dav.url} refused the write: check username/password"
            )
        if status == 409:
            return _error(
                rid,
                ErrorKind.DUPLICATE,
                f"the server refused the card (409): {response.text[:200]}",
            )
        return _error(
            rid, ErrorKind.INVALID, f"the server refused the card ({status}): {response.text[:200]}"
        )


def _error(rid: str | None, kind: ErrorKind, message: str, retryable: bool = False) -> WriteResult:
    return WriteResult(id=rid, error=RecordError(kind, message, retryable=retryable))


def _conflict(rid: str) -> WriteResult:
    return _error(
        rid, ErrorKind.CONFLICT, f"card {rid} changed on the server since it was read", True
    )
