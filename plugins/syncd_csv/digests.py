"""The csv connector's cursor: the file's stamp plus a digest of every row.

A CSV file has no change feed, but a cursor that remembers each row's digest gives it
one: a later listing compares rows with the digests and yields only the rows that
changed and the ids that disappeared, so the engine plans what changed, not the whole
file. The digests travel inside the opaque cursor (compressed), because a connector
keeps no state of its own.
"""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass

#: Cursors of this format start with it; anything else (an older cursor) means "list
#: everything once".
PREFIX = "rows1|"


@dataclass(frozen=True, slots=True)
class RowDigests:
    """A file's stamp (see ``CsvConnector._cursor``) and row id -> row digest."""

    stamp: str
    rows: dict[str, str]

    def encode(self) -> str:
        """The cursor text."""
        lines = "\n".join(f"{rid}\t{digest}" for rid, digest in self.rows.items())
        packed = base64.b64encode(zlib.compress(lines.encode(), 1)).decode("ascii")
        return f"{PREFIX}{self.stamp}|{packed}"

    @classmethod
    def decode(cls, cursor: str | None) -> RowDigests | None:
        """The digests in ``cursor``; None for no cursor or one of another format."""
        if not cursor or not cursor.startswith(PREFIX):
            return None
        try:
            stamp, packed = cursor[len(PREFIX) :].split("|", 1)
            text = zlib.decompress(base64.b64decode(packed)).decode()
        except (ValueError, zlib.error):
            return None
        rows = dict(line.split("\t", 1) for line in text.split("\n")) if text else {}
        return cls(stamp, rows)

    @staticmethod
    def stamp_of(cursor: str | None) -> str | None:
        """The file stamp of a cursor without unpacking its digests."""
        if not cursor or not cursor.startswith(PREFIX):
            return None
        return cursor[len(PREFIX) :].split("|", 1)[0]
