"""The csv connector's cursor: the file's stamp plus a digest of every row.

A CSV file has no change feed, but a cursor that remembers a digest of each row's raw
text gives it one: a later listing hashes each row, and a digest it knows is an
unchanged row, which is neither parsed nor handed on. Only rows with unknown digests
are parsed into records, and the ids of digests no longer seen (less the ids of rows
that changed) are the deletions. So the engine plans what changed, not the whole
file. The digests travel inside the opaque cursor, because a connector keeps no state
of its own.
"""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass

#: Cursors of this format start with it; anything else (an older cursor) means "list
#: everything once".
PREFIX = "rows2|"
#: Bytes of a row digest: BLAKE2b of the record's raw text (line breaks included) as
#: UTF-8. ``CsvConnector`` computes it inline, in its hottest loop.
DIGEST_SIZE = 8


@dataclass(frozen=True, slots=True)
class RowDigests:
    """A file's stamp (see ``CsvConnector._cursor``) and row digest -> row id ("" for
    a row without an id, which is remembered so that it is not parsed again)."""

    stamp: str
    rows: dict[bytes, str]

    def encode(self) -> str:
        """The cursor text: the stamp, the ids (compressed) and the digests, in order."""
        ids = base64.b64encode(zlib.compress("\n".join(self.rows.values()).encode(), 1))
        digests = base64.b64encode(b"".join(self.rows))
        return f"{PREFIX}{self.stamp}|{ids.decode()}|{digests.decode()}"

    @classmethod
    def decode(cls, cursor: str | None) -> RowDigests | None:
        """The digests in ``cursor``; None for no cursor or one of another format."""
        if not cursor or not cursor.startswith(PREFIX):
            return None
        try:
            stamp, ids_text, digests_text = cursor[len(PREFIX) :].split("|")
            ids = zlib.decompress(base64.b64decode(ids_text)).decode().split("\n")
            blob = base64.b64decode(digests_text)
        except (ValueError, zlib.error):
            return None
        digests = [blob[at : at + DIGEST_SIZE] for at in range(0, len(blob), DIGEST_SIZE)]
        if len(digests) != len(ids):
            if blob:
                return None
            ids = []
        return cls(stamp, dict(zip(digests, ids, strict=True)))

    def ids(self) -> set[str]:
        """The ids of the rows, without the empty id of rows that have none."""
        return set(self.rows.values()) - {""}

    @staticmethod
    def stamp_of(cursor: str | None) -> str | None:
        """The file stamp of a cursor without unpacking its digests."""
        if not cursor or not cursor.startswith(PREFIX):
            return None
        return cursor[len(PREFIX) :].split("|", 1)[0]
