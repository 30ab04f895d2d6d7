"""The per-run index that lets ``find`` answer misses without reading a file."""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left
from collections.abc import Iterable

from syncd_csv.files import CsvSource, FileToken
from syncd_csv.layout import Layout

#: Fewest recent hashes kept in a set before they are merged into the sorted array.
_MERGE_AT = 1 << 16


class KeyIndex:
    """Hashes of one field's normalised values in one version of a file.

    Only 64-bit hashes are kept, mostly in a sorted array (8 bytes a value instead of
    the ~80 a set of Python ints costs), so the index stays small on large files. A
    miss answers ``find`` at once; a hit (or a rare hash collision) costs one verifying
    pass over the file. Keys of rows changed or deleted by our own flushes stay
    behind; they only cost such a pass too.
    """

    def __init__(self, token: FileToken) -> None:
        #: The file version the index describes.
        self.token = token
        self._sorted = array("q")
        self._recent: set[int] = set()

    @classmethod
    def build(cls, source: CsvSource | None, layout: Layout, field: str) -> KeyIndex:
        """Index ``field`` in one pass over the rows of ``source`` (None: no file)."""
        if source is None:
            return cls(None)
        index = cls(source.token)
        if field in layout.columns:
            index._extend(layout, field, (row for row in source.rows if layout.row_id(row)))
        return index

    def add(self, layout: Layout, field: str, rows: Iterable[list[str]], token: FileToken) -> None:
        """Take in rows a flush wrote, which produced the file version ``token``."""
        self._extend(layout, field, rows)
        self.token = token

    def any_of(self, keys: Iterable[str]) -> bool:
        """Whether any of ``keys`` may be in the file (False: none of them is)."""
        values = {hash(key) for key in keys}
        if not self._recent.isdisjoint(values):
            return True
        ordered, size = self._sorted, len(self._sorted)
        for value in values:
            at = bisect_left(ordered, value)
            if at < size and ordered[at] == value:
                return True
        return False

    def _extend(self, layout: Layout, field: str, rows: Iterable[list[str]]) -> None:
        recent = self._recent
        for key in layout.keys(field, rows):
            if key is not None:
                recent.add(hash(key))
                if len(recent) >= _MERGE_AT and len(recent) >= len(self._sorted) // 8:
                    self._merge()

    def _merge(self) -> None:
        self._sorted = array("q", heapq.merge(self._sorted, sorted(self._recent)))
        self._recent.clear()
