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
import json
import struct
import zlib
from dataclasses import dataclass

#: Cursors of this format start with it: the stamp, the digests and the ids as plain
#: lines. Anything else (an older cursor) means "list everything once".
PREFIX = "rows3|"
#: The same with the ids as a JSON list, for the rare file whose ids hold a line break
#: or a NUL, which plain lines cannot carry.
QUOTED = "rows3j|"
#: The earlier format, with the ids compressed: still read, no longer written
#: (compressing took a large file's cursor 25 ms of the 28 it took to write, for
#: 100,000 ids, on 2026-12-05).
PACKED = "rows2|"
#: Bytes of a row digest: BLAKE2b of the record's raw text (line breaks included) as
#: UTF-8 (see :mod:`syncd_csv.changes`).
DIGEST_SIZE = 8


@dataclass(frozen=True, slots=True)
class RowDigests:
    """A file's stamp (see ``CsvConnector._cursor``) and row digest -> row id ("" for
    a row without an id, which is remembered so that it is not parsed again)."""

    stamp: str
    rows: dict[bytes, str]

    def encode(self) -> str:
        """The cursor text: the stamp, the digests and the ids, in order."""
        digests = base64.b64encode(b"".join(self.rows)).decode()
        ids = "\n".join(self.rows.values())
        if ids.count("\n") == max(len(self.rows) - 1, 0) and "\0" not in ids:
            return f"{PREFIX}{self.stamp}|{digests}|{ids}"
        return f"{QUOTED}{self.stamp}|{digests}|{json.dumps(list(self.rows.values()))}"

    @classmethod
    def decode(cls, cursor: str | None) -> RowDigests | None:
        """The digests in ``cursor``; None for no cursor or one of another format."""
        if not cursor:
            return None
        try:
            if cursor.startswith(PREFIX):
                stamp, digests_text, ids_text = cursor[len(PREFIX) :].split("|", 2)
                ids = ids_text.split("\n")
            elif cursor.startswith(QUOTED):
                stamp, digests_text, ids_text = cursor[len(QUOTED) :].split("|", 2)
                ids = json.loads(ids_text)
                if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                    return None
            elif cursor.startswith(PACKED):
                stamp, ids_text, digests_text = cursor[len(PACKED) :].split("|")
                ids = zlib.decompress(base64.b64decode(ids_text)).decode().split("\n")
            else:
                return None
            blob = base64.b64decode(digests_text)
            digests = [digest for (digest,) in struct.iter_unpack(f"{DIGEST_SIZE}s", blob)]
        except (ValueError, zlib.error, struct.error):  # json's errors are ValueErrors
            return None
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
        for prefix in (PREFIX, QUOTED, PACKED):
            if cursor and cursor.startswith(prefix):
                return cursor[len(prefix) :].split("|", 1)[0]
        return None
