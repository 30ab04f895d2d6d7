"""The per-field three-way merge of two-way sync.

For a bound pair of records the merge compares each side's current values with that
side's last synced snapshot (the common ancestor). A field changed on one side only
goes to the other side; a field changed on both sides to the same value needs nothing;
a field changed on both sides to different values is a *conflict*, settled by the
pair's rule and reported. Two records that were never synced (a new match) merge
against an empty ancestor: what one side has and the other lacks fills the gap, and
two different filled values are a conflict.

Empty values are special, as everywhere in syncd: unless the pair propagates clears,
a field cleared on one side is not cleared on the other, and in a conflict between a
cleared and a filled value the filled one wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from syncd.engine.ports import Side
from syncd.entities import is_empty

#: Sides of a pair, as the merge names them.
LEFT, RIGHT = Side.LEFT, Side.RIGHT


@dataclass(frozen=True, slots=True)
class Conflict:
    """A field changed on both sides to different values, and who won."""

    field: str
    left: Any
    right: Any
    winner: Side
    why: str

    def describe(self) -> dict[str, Any]:
        """The conflict as a run item shows it."""
        return {
            "field": self.field,
            "left": self.left,
            "right": self.right,
            "winner": self.winner,
            "why": self.why,
        }


@dataclass(slots=True)
class Merge:
    """What a merge decided: the fields to write to each side, and the conflicts."""

    to_left: dict[str, Any] = field(default_factory=dict)
    to_right: dict[str, Any] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)

    def to(self, side: Side) -> dict[str, Any]:
        """The fields to write to ``side``."""
        return self.to_left if side == LEFT else self.to_right


@dataclass(frozen=True, slots=True)
class ConflictRule:
    """A pair's rule for conflicts: ``left``, ``right`` or ``newest``.

    ``newest`` compares the two records' modification times; when either connector
    cannot tell a record's time, or both times are equal, left wins and the conflict
    says why.
    """

    rule: str
    clears: bool = False

    def winner(self, left_time: datetime | None, right_time: datetime | None) -> tuple[Side, str]:
        """The winning side and a short reason."""
        if self.rule in (LEFT, RIGHT):
            return Side(self.rule), f"conflict = {self.rule}"
        if left_time is None or right_time is None:
            missing = RIGHT if left_time is not None else LEFT
            return LEFT, f"newest: {missing} has no modification time, so left wins"
        if right_time > left_time:
            return RIGHT, "newest: right was modified later"
        if left_time > right_time:
            return LEFT, "newest: left was modified later"
        return LEFT, "newest: both modified at the same time, so left wins"


def merge_records(
    fields: frozenset[str] | set[str],
    left_now: Mapping[str, Any],
    left_base: Mapping[str, Any],
    right_now: Mapping[str, Any],
    right_base: Mapping[str, Any],
    *,
    rule: ConflictRule,
    left_time: datetime | None = None,
    right_time: datetime | None = None,
    left_in_right_terms: Mapping[str, Any] | None = None,
    right_in_left_terms: Mapping[str, Any] | None = None,
) -> Merge:
    """Merge two versions of one record field by field against their snapshots.

    Values are compared within one side (now against base). Across sides they are
    compared in one side's terms: give the left values with references translated to
    the right side's ids (``left_in_right_terms``) or the other way round; without
    either, values are compared as they are.
    """
    left_cmp = left_in_right_terms if left_in_right_terms is not None else left_now
    right_cmp = right_in_left_terms if right_in_left_terms is not None else right_now
    if left_in_right_terms is not None and right_in_left_terms is not None:
        raise ValueError("give the values of one side in the other's terms, not both")
    result = Merge()
    for name in sorted(fields):
        left_value, right_value = left_now.get(name), right_now.get(name)
        left_changed = left_value != left_base.get(name)
        right_changed = right_value != right_base.get(name)
        if not left_changed and not right_changed:
            continue
        if left_changed and not right_changed:
            _carry(result.to_right, name, left_value, rule.clears)
        elif right_changed and not left_changed:
            _carry(result.to_left, name, right_value, rule.clears)
        elif (
            left_cmp.get(name) == right_value
            if left_in_right_terms is not None
            else left_value == right_cmp.get(name)
        ):
            continue
        else:
            _settle(result, name, left_value, right_value, rule, left_time, right_time)
    return result


def _carry(target: dict[str, Any], name: str, value: Any, clears: bool) -> None:
    if clears or not is_empty(value):
        target[name] = value


def _settle(
    result: Merge,
    name: str,
    left_value: Any,
    right_value: Any,
    rule: ConflictRule,
    left_time: datetime | None,
    right_time: datetime | None,
) -> None:
    left_empty, right_empty = is_empty(left_value), is_empty(right_value)
    if left_empty and right_empty:
        return
    if not rule.clears and (left_empty or right_empty):
        # a clear against an edit: the filled value wins, it is not a conflict
        if left_empty:
            result.to_left[name] = right_value
        else:
            result.to_right[name] = left_value
        return
    winner, why = rule.winner(left_time, right_time)
    result.conflicts.append(Conflict(name, left_value, right_value, winner, why))
    if winner == LEFT:
        result.to_right[name] = left_value
    else:
        result.to_left[name] = right_value
