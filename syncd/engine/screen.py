"""Screening a change listing before it is planned: records the connector could not
read, records without an id, and ids listed twice.

A listing that silently lost a record looks like one in which the record was deleted.
So a page's :class:`~syncd.plugin.connector.ListingProblem` entries become failed run items,
and from the first unreadable record on, the listing is treated as damaged: it
deletes nothing (neither the ids the connector reports deleted nor those inferred
from absence) and its cursor stays where it was, so the next run lists the same
changes again and reports the problem again until it is mended. A record without an
id, or whose id the listing holds twice, cannot be told from another: each such
record fails alone and the rest of the page goes on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from syncd.engine.plan import Op
from syncd.engine.ports import SUSPECT, UNREADABLE
from syncd.plugin.connector import ListingProblem, Page, Record


@dataclass
class Screened:
    """One page as the planner should see it, and the failed or warned items it
    gave rise to."""

    records: Sequence[Record]
    deleted: Sequence[str]
    ops: list[Op] = field(default_factory=list)


class ListingScreen:
    """Screens the pages of one listing of one entity type, in order."""

    def __init__(self, entity: str) -> None:
        self.entity = entity
        #: True once a record of the listing could not be read
        self.damaged = False
        #: ids of the complete-listing pages so far (an id twice there is a duplicate)
        self.listed: set[str] = set()

    def page(self, page: Page) -> Screened:
        """The records and deletions of ``page`` that may be planned, and an item for
        every problem found in it."""
        ops = [self._problem(p) for p in page.problems]
        if any(not p.warning for p in page.problems):
            self.damaged = True
        records: Sequence[Record] = page.records
        ids = [r.id for r in records]
        distinct = set(ids)
        earlier = self.listed if page.full else _NONE
        if len(distinct) != len(ids) or not all(ids) or not earlier.isdisjoint(distinct):
            records = self._without_bad_ids(records, earlier, ops)
        if page.full:
            self.listed.update(distinct)
        deleted: Sequence[str] = () if self.damaged else page.deleted
        return Screened(records, deleted, ops)

    def _problem(self, problem: ListingProblem) -> Op:
        op = _failed(self.entity, problem.id or problem.where, f"{problem.where}: {problem.reason}")
        if problem.warning:
            op.kind = SUSPECT
        return op

    def _without_bad_ids(
        self, records: Sequence[Record], earlier: AbstractSet[str], ops: list[Op]
    ) -> list[Record]:
        """``records`` less those without an id or whose id the listing holds more than
        once (in this page, or in an ``earlier`` page); a failed item for each."""
        counts = Counter(r.id for r in records)
        kept: list[Record] = []
        for record in records:
            rid = record.id
            if not rid:
                ops.append(_failed(self.entity, "(no id)", "the record has no id"))
            elif counts[rid] > 1 or rid in earlier:
                ops.append(_failed(self.entity, rid, "the listing holds this id more than once"))
            else:
                kept.append(record)
        return kept


_NONE: frozenset[str] = frozenset()


def _failed(entity: str, record_id: str, reason: str) -> Op:
    """An item that fails a record the planner never sees."""
    op = Op(UNREADABLE, entity, record_id)
    op.reason = reason
    return op
