"""Which rows of a changed CSV file are new or changed, by the digests of their text.

A changed file is read whole and every row's raw text hashed (see
:mod:`syncd_csv.digests`); only rows whose digest the cursor does not know are parsed
into records. This runs over every row of the file, so a file without any quote
character (the usual case) is hashed by C loops over blocks of lines, and only other
files go through the csv module a line at a time.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from hashlib import blake2b
from itertools import compress, count, repeat
from operator import is_, methodcaller
from typing import cast

from syncd.plugin.connector import ListingProblem, Record
from syncd_csv.digests import DIGEST_SIZE
from syncd_csv.files import CsvSource
from syncd_csv.layout import Layout
from syncd_csv.problems import RowCheck


@dataclass
class ChangeListing:
    """One pass over ``source`` (the file ``where`` names for people) against the
    digests a cursor knew (``before``: digest -> id, "" for a row without one). As its
    records are read, every row's digest and id go into ``digests`` (in file order),
    the ids of the records handed on into ``changed``, and the rows it cannot read
    (or distrusts) into ``problems`` (see :mod:`.problems`); a row that is known by
    its digest was read before and is not checked again."""

    layout: Layout
    source: CsvSource
    before: dict[bytes, str]
    where: str = ""
    digests: dict[bytes, str] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)
    problems: list[ListingProblem] = field(default_factory=list)

    def __post_init__(self) -> None:
        layout = self.layout
        self.check = RowCheck(
            self.where,
            layout.header[layout.id_col],
            len(layout.header),
            layout.id_col,
            self.source.delimiter,
            self._known,
        )
        self._known_ids: set[str] | None = None

    @property
    def sound(self) -> bool:
        """True when every row could be read (warnings aside): only then may the
        listing say which rows are gone, or be resumed from."""
        return all(problem.warning for problem in self.problems)

    def records(self) -> Iterator[Record]:
        """The records whose raw text has a digest not in ``before``."""
        if self.source.holds_quote():
            return self.lines()
        return self.plain()

    def plain(self) -> Iterator[Record]:
        """:meth:`records` for a file without a quote character, where every line is a
        record: lines are cut, hashed and looked up a block at a time. Each digest is
        of the line's bytes as they are in the file, which are the UTF-8 encoding of
        the line that :meth:`lines` hashes."""
        delimiter = self.source.delimiter
        hasher = partial(blake2b, digest_size=DIGEST_SIZE)
        digest = methodcaller("digest")
        line = self.source.data_line
        for _, part in self.source.line_blocks():
            lines = part.splitlines(keepends=True)
            keys = list(map(digest, map(hasher, lines)))
            known = list(map(self.before.get, keys))
            # a None holds the row's place in file order until _note, below, fills it
            self.digests.update(zip(keys, cast("list[str]", known), strict=True))
            for index in compress(count(), map(is_, known, repeat(None))):
                cells = lines[index].decode().rstrip("\r\n").split(delimiter)
                record = self._note(keys[index], cells, line + index)
                if record is not None:
                    yield record
            line += len(lines)

    def lines(self) -> Iterator[Record]:
        """:meth:`records` for any file, a line at a time (a record with a quote through
        the csv module, continuation lines included in its text)."""
        source = self.source
        delimiter = source.delimiter
        quoted = source.quoted
        known_get = self.before.get
        digests = self.digests
        line = source.data_line - 1
        for raw in source.lines:
            line += 1
            start = line
            cells = None
            if '"' in raw:
                try:
                    raw, cells = quoted(raw)
                except csv.Error as exc:  # a cell beyond the csv module's size limit
                    reason = f"a quoted cell from here cannot be read ({exc}): a stray quote?"
                    self.problems.append(ListingProblem(f"{self.where} line {start}", reason))
                    return  # where the next record starts is unknown
                line += source.continued
            key = blake2b(raw.encode(), digest_size=DIGEST_SIZE).digest()
            known = known_get(key)
            if known is not None:
                digests[key] = known
                continue
            if cells is not None and (line > start or not raw.endswith(("\n", "\r"))):
                problem = self.check.quoted(raw, cells, start)
                if problem is not None:
                    self.problems.append(problem)
                    if not problem.warning:
                        digests[key] = ""
                        continue
            record = self._note(
                key, raw.rstrip("\r\n").split(delimiter) if cells is None else cells, start
            )
            if record is not None:
                yield record

    def vanished(self) -> list[str]:
        """Ids of rows that were in ``before`` and are gone (not merely changed); call
        it once the records are read."""
        before, now = self.before, self.digests
        if before.keys() <= now.keys():
            return []
        return sorted({rid for key, rid in before.items() if key not in now} - self.changed - {""})

    def _note(self, key: bytes, cells: list[str], line: int) -> Record | None:
        """Note the digest of a row the cursor did not know (on ``line`` of the file);
        its record, if it has an id and no more cells than the header."""
        check = self.check
        record = self.layout.record(cells)
        problem = (
            check.unread(cells, line)
            if record is None
            else check.misshapen(cells, line, record.id)
            if len(cells) > check.width
            else None
        )
        if record is None or problem is not None:
            self.digests[key] = ""
            if problem is not None:
                self.problems.append(problem)
            return None
        self.digests[key] = record.id
        self.changed.add(record.id)
        return record

    def _known(self) -> set[str]:
        """The ids of the rows the cursor knew (worked out once, when first needed)."""
        if self._known_ids is None:
            self._known_ids = set(self.before.values()) - {""}
        return self._known_ids
