"""A cursor for systems without a change feed that list their records' versions.

A folder of files (modification times), a WebDAV collection without sync-collection
(ETags): a listing is cheap, reading records is not. The cursor keeps the version of
every record seen (compressed, with a digest of the whole listing), so the next
listing reads only the records whose version changed and reports the ids that are
gone, and an unchanged listing is recognised from its digest without unpacking the
rest. Connectors keep no state of their own: this travels as their opaque cursor.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from hashlib import blake2b

_PREFIX = "versions1|"


def listing_digest(versions: Mapping[str, str], salt: str = "") -> str:
    """A short digest standing for one whole listing (id -> version)."""
    text = "".join(f"{rid}\0{versions[rid]}\n" for rid in sorted(versions))
    return blake2b((salt + "\n" + text).encode(), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class ListingCursor:
    """The digest of one listing and the version of every record in it."""

    digest: str
    versions: dict[str, str]

    @classmethod
    def of(cls, versions: dict[str, str], salt: str = "") -> ListingCursor:
        """The cursor for a listing; ``salt`` covers settings that shape records."""
        return cls(listing_digest(versions, salt), versions)

    def encode(self) -> str:
        """The cursor text."""
        lines = "\n".join(f"{rid}\t{version}" for rid, version in self.versions.items())
        packed = base64.b64encode(zlib.compress(lines.encode(), 1)).decode("ascii")
        return f"{_PREFIX}{self.digest}|{packed}"

    @staticmethod
    def digest_of(cursor: str | None) -> str | None:
        """The digest of a cursor without unpacking the versions."""
        if not cursor or not cursor.startswith(_PREFIX):
            return None
        return cursor[len(_PREFIX) :].split("|", 1)[0]

    @classmethod
    def decode(cls, cursor: str | None) -> ListingCursor | None:
        """The cursor's content; None for no cursor or one of another format (then
        everything is listed once)."""
        if not cursor or not cursor.startswith(_PREFIX):
            return None
        try:
            digest, packed = cursor[len(_PREFIX) :].split("|", 1)
            text = zlib.decompress(base64.b64decode(packed)).decode()
        except (ValueError, zlib.error):
            return None
        versions = dict(line.split("\t", 1) for line in text.split("\n")) if text else {}
        return cls(digest, versions)

    def since(self, before: ListingCursor | None) -> tuple[list[str], list[str]]:
        """What this listing holds that ``before`` did not: (ids new or changed, ids
        gone), both sorted; every id, and none gone, when there is no ``before``."""
        if before is None:
            return sorted(self.versions), []
        return before.changed(self.versions)

    def changed(self, now: Mapping[str, str]) -> tuple[list[str], list[str]]:
        """Against the listing ``now``: (ids new or changed, ids gone), both sorted."""
        before = self.versions
        changed = sorted(rid for rid, version in now.items() if before.get(rid) != version)
        return changed, sorted(before.keys() - now.keys())
