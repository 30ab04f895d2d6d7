"""Property test of two-way sync: random creates, edits, clears and deletes on both
sides between runs, many runs, and after every run the invariants of a careful sync:

- every live record is bound exactly once, to a live record or to a tombstone that
  the pair's delete rules explain; no duplicates are created;
- bound records agree on every field (one side may stay empty where it was cleared,
  unless the pair propagates clears);
- every field changed on both sides to different values resolves by the pair's rule;
- deletions follow ``deletes`` and ``recreate_deleted``, and an edit beats a delete;
- the next run writes nothing (a fixed point);
- a run that dies at a random state commit (its batch's writes done, none recorded),
  followed by a run to the end, leaves what one uninterrupted run would have.

The pair's rules themselves are drawn at random. By default 30 examples of up to 25
steps run; for a deep run:

    HYPOTHESIS_PROFILE=deep .venv/bin/pytest tests/test_two_way_properties.py
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any
from unittest import mock

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule
from test_engine_properties import SETTINGS

from conftest import make_config, systems
from syncd.engine_setup import runner_for
from syncd.entities import canonical_fields, is_empty
from syncd.state import Store
from syncd.state.store import BatchCommit
from syncd_memory import MemoryConnector, reset_memory_systems

EMAILS = [f"p{i}@x.org" for i in range(10)]
FIELDS = ("first_name", "phone", "title", "notes")
VALUE = st.sampled_from(["1", "2", "Ann", "Bob"])
SIDES = st.sampled_from(["left", "right"])
#: One edit: (action, side, which record, field, value); edits outnumber the rest.
EDIT = st.tuples(
    st.sampled_from(["edit"] * 5 + ["clear", "create", "delete"]),
    SIDES,
    st.integers(0, 50),
    st.sampled_from(FIELDS),
    VALUE,
)
Fields = dict[str, Any]


class Crash(Exception):
    """Stands for a process killed at a state commit."""


def _value(fields: Fields, name: str) -> Any:
    value = fields.get(name)
    return None if is_empty(value) else value


class TwoWayMachine(RuleBasedStateMachine):
    """Two memory systems with small pages and batches, synced both ways."""

    def __init__(self) -> None:
        super().__init__()
        reset_memory_systems()
        self.batch = mock.patch.object(MemoryConnector, "batch_size", 2)
        self.batch.start()
        self.tmp = Path(tempfile.mkdtemp(prefix="syncd-2way-"))
        self.left, self.right = systems()
        self.sides = {"left": self.left, "right": self.right}
        #: e-mails each side has used: a side never creates the same person twice
        self.used: dict[str, set[str]] = {"left": set(), "right": set()}
        #: the fields of every live record as the last run left it
        self.base: dict[str, dict[str, Fields]] = {"left": {}, "right": {}}

    @initialize(
        conflict=st.sampled_from(["left", "right", "newest"]),
        clears=st.sampled_from(["keep", "propagate"]),
        deletes=st.sampled_from(["ignore", "propagate"]),
        recreate=st.booleans(),
        incremental=st.sampled_from([(True, True), (False, True), (True, False)]),
    )
    def configure(
        self,
        conflict: str,
        clears: str,
        deletes: str,
        recreate: bool,
        incremental: tuple[bool, bool],
    ) -> None:
        self.rules = {
            "mode": "two-way",
            "entities": ["contact"],
            "match": {"contact": ["email"]},
            "conflict": conflict,
            "clears": clears,
            "deletes": deletes,
            "recreate_deleted": recreate,
        }
        connectors = {
            side: {"type": "memory", "system": side, "incremental": inc, "page_size": 3}
            for side, inc in zip(("left", "right"), incremental, strict=True)
        }
        self.cfg = make_config(self.tmp, self.rules, **connectors)
        self.store = Store(self.cfg.state_url)
        self.runner = runner_for(self.cfg, self.store)
        # a few people on each side, two of them on both, synced once
        for side, emails in (("left", EMAILS[:3]), ("right", EMAILS[2:5])):
            for number, email in enumerate(emails):
                self.used[side].add(email)
                self.sides[side].put("contact", {"email": email, "phone": str(number)})
        self.run()

    def teardown(self) -> None:
        self.batch.stop()
        if hasattr(self, "store"):
            self.store.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
        reset_memory_systems()

    # -- helpers ------------------------------------------------------------------------

    def rows(self, side: str) -> dict[str, dict[str, Any]]:
        return self.sides[side].rows("contact")

    def fields(self, side: str, rid: str) -> Fields:
        raw = canonical_fields("contact", self.rows(side)[rid])
        return {name: _value(raw, name) for name in (*FIELDS, "email")}

    def pick(self, side: str, index: int) -> str | None:
        ids = sorted(self.rows(side))
        return ids[index % len(ids)] if ids else None

    def changed(self, side: str, rid: str) -> bool:
        return rid in self.rows(side) and self.fields(side, rid) != self.base[side].get(rid)

    # -- edits on either side -----------------------------------------------------------

    @precondition(lambda self: hasattr(self, "runner"))
    @rule(edits=st.lists(EDIT, min_size=1, max_size=8))
    def edit_both_sides(self, edits: list[tuple[str, str, int, str, str | None]]) -> None:
        """A burst of edits between two runs: creates, edits, clears and deletes."""
        for action, side, index, field, value in edits:
            system = self.sides[side]
            if action == "create":
                email = EMAILS[index % len(EMAILS)]
                if email not in self.used[side]:
                    self.used[side].add(email)
                    system.put("contact", {"email": email, field: value})
                continue
            rid = self.pick(side, index)
            if rid is None:
                continue
            if action == "delete":
                system.remove("contact", rid)
            else:
                system.edit("contact", rid, **{field: None if action == "clear" else value})

    # -- runs ---------------------------------------------------------------------------

    @precondition(lambda self: hasattr(self, "runner"))
    @rule()
    def run(self) -> None:
        self.check_run()

    @precondition(lambda self: hasattr(self, "runner"))
    @rule(kill=st.integers(1, 8))
    def crash_then_run(self, kill: int) -> None:
        """A run that dies at its ``kill``-th state commit, then a run to the end,
        checked against the state before the crash."""
        self.check_run(lambda: self.crashed_run(kill))

    @precondition(lambda self: hasattr(self, "runner"))
    @rule(
        first=st.lists(EDIT, min_size=1, max_size=8),
        kill=st.integers(1, 4),
        edits=st.lists(EDIT, max_size=8),
    )
    def crash_edit_run(
        self,
        first: list[tuple[str, str, int, str, str | None]],
        kill: int,
        edits: list[tuple[str, str, int, str, str | None]],
    ) -> None:
        """Edits, a run that dies at its ``kill``-th state commit, the written fields
        edited again where their value came from, more edits, then a run to the end.
        What the crashed run wrote is its own: a field it brought in line and that
        is edited afterwards only on the side it was not written to ends with that
        edit on both sides (were the write taken for an edit of the other side, it
        would be a conflict the pair's rule could settle against it)."""
        self.edit_both_sides(first)
        before = {b.left_id: b for b in self.store.iter_bindings("p", "contact")}
        live = [
            (left_id, b.right_id)
            for left_id, b in before.items()
            if left_id in self.rows("left") and b.right_id in self.rows("right")
        ]
        start = {ids: (self.fields("left", ids[0]), self.fields("right", ids[1])) for ids in live}
        self.crashed_run(kill)
        # a person the crashed run copied to a side is that side's now: the edits
        # below must not create it there again (that duplicate would be the test's)
        for side in self.sides:
            self.used[side].update(self.fields(side, rid)["email"] for rid in self.rows(side))
        # (left id, right id, field) -> (the value written, the side written to)
        written: dict[tuple[str, str, str], tuple[Any, str]] = {}
        for (left_id, right_id), (was_l, was_r) in start.items():
            if left_id not in self.rows("left") or right_id not in self.rows("right"):
                continue
            now_l, now_r = self.fields("left", left_id), self.fields("right", right_id)
            for name in FIELDS:
                if was_l[name] != was_r[name] and now_l[name] == now_r[name]:
                    side = "left" if was_l[name] != now_l[name] else "right"
                    written[(left_id, right_id, name)] = (now_l[name], side)
        # the source of each write is edited again, then random edits follow
        for (left_id, right_id, name), (_, side) in written.items():
            source, rid = ("right", right_id) if side == "left" else ("left", left_id)
            self.sides[source].edit("contact", rid, **{name: "again"})
        self.edit_both_sides(edits)
        edited = {
            key: (self.fields("left", key[0]), self.fields("right", key[1]))
            for key in written
            if key[0] in self.rows("left") and key[1] in self.rows("right")
        }

        result = self.runner.run("p")
        assert result.status == "ok", result.summary()

        after = {b.left_id: b for b in self.store.iter_bindings("p", "contact")}
        self.check_bindings(after)
        self.check_fields(after, {}, {})
        clears = self.rules["clears"] == "propagate"
        for key, (now_l, now_r) in edited.items():
            left_id, right_id, name = key
            value, side = written[key]
            if left_id not in self.rows("left") or right_id not in self.rows("right"):
                continue
            mine, theirs = (now_l, now_r) if side == "left" else (now_r, now_l)
            if mine[name] != value or (theirs[name] is None and not clears):
                continue  # edited where it was written, or cleared: no one answer
            got = (self.fields("left", left_id)[name], self.fields("right", right_id)[name])
            assert got == (theirs[name], theirs[name]), (key, value, side, got)
        self.check_fixed_point()
        self.base = {
            side: {rid: self.fields(side, rid) for rid in self.rows(side)} for side in self.sides
        }
        for side in self.sides:
            self.used[side].update(f["email"] for f in self.base[side].values())

    def crashed_run(self, kill: int) -> None:
        """Run the pair with its ``kill``-th non-empty state commit raising, as a
        process killed there stops: the batch's writes are done, none recorded.
        Batches that create records are not interrupted here (interrupted creates
        have tests of their own)."""
        original = self.store.commit
        seen = 0

        def commit(pair: str, run_id: int, batch: BatchCommit) -> None:
            nonlocal seen
            if not batch.empty() and not _creates(batch):
                seen += 1
                if seen == kill:
                    raise Crash
            original(pair, run_id, batch)

        with mock.patch.object(self.store, "commit", commit), suppress(Crash):
            self.runner.run("p")

    def check_run(self, first: Callable[[], None] | None = None) -> None:
        """Run the pair (after ``first``, an interrupted run) and check the outcome
        against the records and bindings as they were before either."""
        before = {b.left_id: b for b in self.store.iter_bindings("p", "contact")}
        expected = self.expected_fields(before)
        deletions = self.deletions(before)
        modified = {
            side: {rid: s.modified[("contact", rid)] for rid in s.rows("contact")}
            for side, s in self.sides.items()
        }
        if first is not None:
            first()

        result = self.runner.run("p")
        assert result.status == "ok", result.summary()

        after = {b.left_id: b for b in self.store.iter_bindings("p", "contact")}
        self.check_bindings(after)
        self.check_fields(after, expected, modified)
        self.check_deletions(after, deletions)
        self.check_fixed_point()
        self.base = {
            side: {rid: self.fields(side, rid) for rid in self.rows(side)} for side in self.sides
        }
        for side in self.sides:
            self.used[side].update(f["email"] for f in self.base[side].values())

    # -- what the run must have done ------------------------------------------------------

    def expected_fields(self, bindings: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """For pairs live on both sides before the run: field -> the value both sides
        must hold afterwards (fields left divergent are not listed)."""
        clears = self.rules["clears"] == "propagate"
        expected: dict[str, dict[str, Any]] = {}
        for left_id, binding in bindings.items():
            right_id = binding.right_id
            if left_id not in self.rows("left") or right_id not in self.rows("right"):
                continue
            now_l, now_r = self.fields("left", left_id), self.fields("right", right_id)
            base_l = self.base["left"].get(left_id, {})
            base_r = self.base["right"].get(right_id, {})
            want: dict[str, Any] = {}
            for name in FIELDS:
                lv, rv = now_l[name], now_r[name]
                lc, rc = lv != base_l.get(name), rv != base_r.get(name)
                if lc and not rc and (clears or lv is not None):
                    want[name] = lv
                elif rc and not lc and (clears or rv is not None):
                    want[name] = rv
                elif lc and rc and lv != rv:
                    want[name] = ("conflict", lv, rv)
                elif lv == rv:
                    want[name] = lv
            expected[left_id] = want
        return expected

    def deletions(self, bindings: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
        """Bound pairs with one side deleted since the last run: (deleted side, the
        other side's id, left id, whether the other side changed)."""
        found = []
        for left_id, binding in bindings.items():
            ids = {"left": left_id, "right": binding.right_id}
            for side, other in (("left", "right"), ("right", "left")):
                gone = ids[side] not in self.rows(side) and not binding.get("deleted", side)
                if gone and ids[other] in self.rows(other) and not binding.get("deleted", other):
                    found.append((side, ids[other], left_id, self.changed(other, ids[other])))
        return found

    def check_bindings(self, after: dict[str, Any]) -> None:
        right_ids = [b.right_id for b in after.values()]
        assert len(set(right_ids)) == len(right_ids), "a right record is bound twice"
        for side in self.sides:
            bound = set(after) if side == "left" else set(right_ids)
            unbound = set(self.rows(side)) - bound
            assert not unbound, f"live {side} records not bound: {unbound}"
            emails = [self.fields(side, rid)["email"] for rid in self.rows(side)]
            assert len(set(emails)) == len(emails), f"duplicate on {side}: {sorted(emails)}"
        for left_id, binding in after.items():
            live_l = left_id in self.rows("left")
            live_r = binding.right_id in self.rows("right")
            if live_l and live_r:
                assert not binding.left_deleted and not binding.right_deleted
            # a live record bound to a vanished one must be a recorded tombstone
            if live_l and not live_r:
                assert binding.right_deleted, f"{left_id}: right gone, not recorded"
            if live_r and not live_l:
                assert binding.left_deleted, f"{binding.right_id}: left gone, not recorded"

    def check_fields(
        self,
        after: dict[str, Any],
        expected: dict[str, dict[str, Any]],
        modified: dict[str, dict[str, Any]],
    ) -> None:
        clears = self.rules["clears"] == "propagate"
        for left_id, binding in after.items():
            right_id = binding.right_id
            if left_id not in self.rows("left") or right_id not in self.rows("right"):
                continue
            now_l, now_r = self.fields("left", left_id), self.fields("right", right_id)
            for name in FIELDS:
                lv, rv = now_l[name], now_r[name]
                if clears:
                    assert lv == rv, (left_id, right_id, name, lv, rv)
                else:
                    assert lv == rv or lv is None or rv is None, (left_id, name, lv, rv)
            for name, want in expected.get(left_id, {}).items():
                if isinstance(want, tuple):
                    want = self.winner(want, clears, modified, left_id, right_id)
                assert (now_l[name], now_r[name]) == (want, want), (left_id, name, want)

    def winner(
        self,
        conflict: tuple[str, Any, Any],
        clears: bool,
        modified: dict[str, dict[str, Any]],
        left_id: str,
        right_id: str,
    ) -> Any:
        _, lv, rv = conflict
        if not clears and (lv is None or rv is None):
            return rv if lv is None else lv
        rule = self.rules["conflict"]
        if rule == "newest":
            later = modified["right"][right_id] > modified["left"][left_id]
            rule = "right" if later else "left"
        return lv if rule == "left" else rv

    def check_deletions(
        self, after: dict[str, Any], deletions: list[tuple[str, str, str, bool]]
    ) -> None:
        propagate = self.rules["deletes"] == "propagate"
        recreate = self.rules["recreate_deleted"]
        for side, other_id, _left_id, other_changed in deletions:
            other = "right" if side == "left" else "left"
            alive = other_id in self.rows(other)
            if other_changed:
                assert alive, f"{other} {other_id} was edited but deleted"
                partner = self.partner(after, other, other_id)
                if recreate:
                    assert partner in self.rows(side), f"{other_id} not recreated on {side}"
                else:
                    assert partner not in self.rows(side), f"{other_id} recreated on {side}"
            elif propagate:
                assert not alive, f"{other} {other_id} should have been deleted"
            else:
                assert alive, f"{other} {other_id} deleted though deletes = ignore"

    def partner(self, after: dict[str, Any], side: str, rid: str) -> str | None:
        for left_id, binding in after.items():
            if side == "left" and left_id == rid:
                return binding.right_id
            if side == "right" and binding.right_id == rid:
                return left_id
        return None

    def check_fixed_point(self) -> None:
        before = [dict(s.writes) for s in self.sides.values()]
        again = self.runner.run("p")
        assert again.status == "ok", again.summary()
        assert [dict(s.writes) for s in self.sides.values()] == before, again.summary()


def _creates(batch: BatchCommit) -> bool:
    """True when ``batch`` records a create."""
    return any(
        (item[1] if isinstance(item, tuple) else item["action"]) == "create" for item in batch.items
    )


TwoWayMachine.TestCase.settings = SETTINGS
test_two_way = TwoWayMachine.TestCase
