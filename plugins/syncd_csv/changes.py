"""Which rows of a changed CSV file are new or changed, by the digests of their text.

A changed file is read whole and every row's raw text hashed (see
:mod:`syncd_csv.digests`); only rows whose digest the cursor does not know are parsed
into records. This runs over every row of the file, so a file without any quote
character (the usual case) is hashed by C loops over blocks of lines, and only other
files go through the csv module a line at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from hashlib import blake2b
from itertools import compress, count, repeat
from operator import is_, methodcaller

from syncd.connector import Record
from syncd_csv.digests import DIGEST_SIZE
from syncd_csv.files import CsvSource
from syncd_csv.layout import Layout

#: Bytes read at a time by :func:`changed_plain`.
BLOCK = 1 << 18


def changed_records(
    layout: Layout,
    source: CsvSource,
    digests: dict[bytes, str],
    before: dict[bytes, str],
    changed: set[str],
) -> Iterator[Record]:
    """The records whose raw text has a digest not in ``before`` (digest -> id), with
    their ids noted in ``changed``; every record's digest and id go into ``digests``
    (in file order; a row without an id under ``""``)."""
    if source.holds_quote(BLOCK):
        return changed_lines(layout, source, digests, before, changed)
    return changed_plain(layout, source, digests, before, changed)


def changed_plain(
    layout: Layout,
    source: CsvSource,
    digests: dict[bytes, str],
    before: dict[bytes, str],
    changed: set[str],
) -> Iterator[Record]:
    """:func:`changed_records` for a file without a quote character, where every line
    is a record: lines are cut, hashed and looked up a block at a time. Each digest
    is of the line's bytes as they are in the file, which are the UTF-8 encoding of
    the line that :func:`changed_lines` hashes."""
    delimiter = source.delimiter
    hasher = partial(blake2b, digest_size=DIGEST_SIZE)
    digest = methodcaller("digest")
    for _, part in source.line_blocks(BLOCK):
        lines = part.splitlines(keepends=True)
        keys = list(map(digest, map(hasher, lines)))
        known = list(map(before.get, keys))
        digests.update(zip(keys, known, strict=True))
        for index in compress(count(), map(is_, known, repeat(None))):
            record = layout.record(lines[index].decode().rstrip("\r\n").split(delimiter))
            key = keys[index]
            if record is None:
                digests[key] = ""
                continue
            digests[key] = record.id
            changed.add(record.id)
            yield record


def changed_lines(
    layout: Layout,
    source: CsvSource,
    digests: dict[bytes, str],
    before: dict[bytes, str],
    changed: set[str],
) -> Iterator[Record]:
    """:func:`changed_records` for any file, a line at a time (a record with a quote
    through the csv module, continuation lines included in its text)."""
    delimiter = source.delimiter
    quoted = source.quoted
    known_get = before.get
    for raw in source.lines:
        cells = None
        if '"' in raw:
            raw, cells = quoted(raw)
        key = blake2b(raw.encode(), digest_size=DIGEST_SIZE).digest()
        known = known_get(key)
        if known is not None:
            digests[key] = known
            continue
        record = layout.record(raw.rstrip("\r\n").split(delimiter) if cells is None else cells)
        if record is None:
            digests[key] = ""
            continue
        digests[key] = record.id
        changed.add(record.id)
        yield record


def vanished(before: dict[bytes, str], now: dict[bytes, str], changed: set[str]) -> list[str]:
    """Ids of rows that were in ``before`` and are gone (not merely changed)."""
    if before.keys() <= now.keys():
        return []
    return sorted({rid for key, rid in before.items() if key not in now} - changed - {""})
