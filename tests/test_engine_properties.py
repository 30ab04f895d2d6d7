"""Property tests of the engine: random edits on the left, runs of an export pair, and
the invariants that must hold after every run (no duplicates, nothing missing, a
fixed point).

By default each machine runs 30 examples of up to 20 steps. For a deep run:

    HYPOTHESIS_PROFILE=deep .venv/bin/pytest tests/test_engine_properties.py
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar
from unittest import mock

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from conftest import make_config, systems
from syncd.engine_setup import runner_for
from syncd.entities import canonical_fields, is_empty, normalize_key
from syncd.state import Store
from syncd_memory import MemoryConnector, reset_memory_systems

settings.register_profile(
    "engine", max_examples=30, stateful_step_count=20, deadline=None, print_blob=True
)
settings.register_profile(
    "deep", max_examples=500, stateful_step_count=40, deadline=None, print_blob=True
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "engine")
SETTINGS = settings.get_profile(PROFILE if PROFILE in ("engine", "deep") else "engine")

#: Few distinct e-mails (some differing only in case and spaces), so records collide.
EMAILS = st.sampled_from(["a@x.org", "A@x.org ", "b@x.org", "c@x.org", "d@x.org", " R@x.org"])
#: E-mails of records made by hand on the right, which left records may match.
RIGHT_EMAILS = st.sampled_from(["r@x.org", "R@X.org", "d@x.org"])
MAYBE_EMAIL = st.one_of(st.none(), EMAILS)
TEXT = st.sampled_from(["1", "2", "Ann", "Bob", "CEO", "n\u00f8te"])
#: Fields the left fills at random (e-mail and private are handled on their own).
LEFT_FIELDS = ("first_name", "last_name", "phone", "title", "notes")
#: Fields someone may edit by hand on the right (where the left leaves them empty).
RIGHT_FIELDS = ("first_name", "last_name", "phone", "mobile", "fax", "title", "notes")
PRIVATE = st.sampled_from([None, False, True])


class ExportMachine(RuleBasedStateMachine):
    """Export left -> right, match and required on e-mail, private contacts filtered
    out, an incremental source with small pages and batches, deletes propagated."""

    LEFT: ClassVar[dict[str, Any]] = {
        "type": "memory",
        "system": "left",
        "incremental": True,
        "page_size": 3,
    }
    PAIR: ClassVar[dict[str, Any]] = {
        "mode": "export",
        "match": {"contact": ["email"]},
        "required": {"contact": ["email"]},
        "filter": {"contact": {"private": False}},
        "deletes": "propagate",
    }

    def __init__(self) -> None:
        super().__init__()
        reset_memory_systems()
        self.batch = mock.patch.object(MemoryConnector, "batch_size", 2)
        self.batch.start()
        self.tmp = Path(tempfile.mkdtemp(prefix="syncd-props-"))
        self.cfg = make_config(self.tmp, self.PAIR, left=self.LEFT)
        self.left, self.right = systems()
        self.store = Store(self.cfg.state_url)
        self.runner = runner_for(self.cfg, self.store)
        #: Left records that qualified at some run (each must be created exactly once,
        #: unless it matched a record made by hand on the right).
        self.synced: set[str] = set()
        #: Right records made by hand, and the left records ever bound to one of them.
        self.handmade: set[str] = set()
        self.matched: set[str] = set()
        #: Hand edits on the right: (right id, field) -> value.
        self.manual: dict[tuple[str, str], str] = {}

    def teardown(self) -> None:
        self.batch.stop()
        self.store.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
        reset_memory_systems()

    # -- helpers ------------------------------------------------------------------------

    def live(self) -> list[str]:
        return sorted(self.left.rows("contact"))

    def pick(self, index: int) -> str:
        ids = self.live()
        return ids[index % len(ids)]

    def fields(self, left_id: str) -> dict[str, Any]:
        return canonical_fields("contact", self.left.rows("contact")[left_id])

    def qualifies(self, left_id: str) -> bool:
        fields = self.fields(left_id)
        return fields.get("private") is not True and not is_empty(fields.get("email"))

    def bindings(self) -> dict[str, str]:
        return {b.left_id: b.right_id for b in self.store.iter_bindings("p", "contact")}

    # -- edits on the left --------------------------------------------------------------

    @rule(
        email=MAYBE_EMAIL,
        private=PRIVATE,
        values=st.fixed_dictionaries({}, optional=dict.fromkeys(LEFT_FIELDS, TEXT)),
    )
    def create(self, email: str | None, private: bool | None, values: dict[str, str]) -> None:
        fields: dict[str, Any] = dict(values)
        if email is not None:
            fields["email"] = email
        if private is not None:
            fields["private"] = private
        self.left.put("contact", fields)

    @precondition(lambda self: self.left.rows("contact"))
    @rule(index=st.integers(0, 50), field=st.sampled_from(LEFT_FIELDS), value=TEXT)
    def update(self, index: int, field: str, value: str) -> None:
        self.left.edit("contact", self.pick(index), **{field: value})

    @precondition(lambda self: self.left.rows("contact"))
    @rule(index=st.integers(0, 50), email=MAYBE_EMAIL, private=PRIVATE)
    def update_key_fields(self, index: int, email: str | None, private: bool | None) -> None:
        self.left.edit("contact", self.pick(index), email=email, private=private)

    @precondition(lambda self: self.left.rows("contact"))
    @rule(index=st.integers(0, 50), field=st.sampled_from(LEFT_FIELDS))
    def clear_field(self, index: int, field: str) -> None:
        self.left.edit("contact", self.pick(index), **{field: None})

    @precondition(lambda self: self.left.rows("contact"))
    @rule(index=st.integers(0, 50))
    def delete(self, index: int) -> None:
        self.left.remove("contact", self.pick(index))

    # -- edits by hand on the right -----------------------------------------------------

    @precondition(lambda self: self.right.rows("contact"))
    @rule(index=st.integers(0, 50), field=st.sampled_from(RIGHT_FIELDS), value=TEXT)
    def edit_right(self, index: int, field: str, value: str) -> None:
        bound = self.bindings()
        owners = {r: left for left, r in bound.items()}
        ids = sorted(self.right.rows("contact"))
        right_id = ids[index % len(ids)]
        left_id = owners.get(right_id)
        if left_id in self.left.rows("contact") and not is_empty(self.fields(left_id).get(field)):
            return  # the left fills this field: a hand edit here is not in scope
        self.right.edit("contact", right_id, **{field: value})
        self.manual[(right_id, field)] = value

    @rule(email=RIGHT_EMAILS, value=TEXT)
    def create_right(self, email: str, value: str) -> None:
        """A record made by hand on the right, never ambiguous: no other unbound right
        record has the same e-mail."""
        bound = set(self.bindings().values())
        key = normalize_key("email", email)
        for right_id, row in self.right.rows("contact").items():
            if right_id not in bound and normalize_key("email", row.get("email")) == key:
                return
        right_id = self.right.put("contact", {"email": email, "title": value})
        self.handmade.add(right_id)
        self.manual[(right_id, "title")] = value

    # -- runs ---------------------------------------------------------------------------

    @rule(full=st.booleans())
    def run(self, full: bool) -> None:
        filled = {
            right_id: {f for f, v in row.items() if not is_empty(v)}
            for right_id, row in self.right.rows("contact").items()
        }
        result = self.runner.run("p", full=full)
        assert result.status in ("ok", "partial"), result.error
        self.synced.update(i for i in self.live() if self.qualifies(i))
        self.matched.update(
            left for left, right in self.bindings().items() if right in self.handmade
        )
        # an empty value never overwrites a filled one
        for right_id, row in self.right.rows("contact").items():
            emptied = {f for f in filled.get(right_id, ()) if is_empty(row.get(f))}
            assert not emptied, f"{right_id} lost {emptied}"
        self.check_after_run()

        before = dict(self.right.writes)
        again = self.runner.run("p")
        assert again.status in ("ok", "partial"), again.error
        assert self.right.writes == before, "a second run wrote again"
        assert again.counts["created"] == again.counts["updated"] == 0
        assert again.counts["deleted"] == again.counts["bound"] == 0
        assert self.left.writes == {"create": 0, "update": 0, "delete": 0}

    def check_after_run(self) -> None:
        bound = self.bindings()
        rows = self.right.rows("contact")
        # no right record is bound twice
        assert len(set(bound.values())) == len(bound)
        for left_id in self.live():
            if not self.qualifies(left_id):
                continue
            # every qualifying left record is bound to exactly one live right record
            assert left_id in bound, f"{left_id} is not bound"
            right = rows.get(bound[left_id])
            assert right is not None, f"{left_id} is bound to a deleted record"
            # ... which has every non-empty value of the left record
            for field, value in self.fields(left_id).items():
                if not is_empty(value):
                    assert right.get(field) == value, (left_id, field, value, right)
        # hand edits on the right survive while the left leaves the field empty
        owners = {r: left for left, r in bound.items()}
        for (right_id, field), value in list(self.manual.items()):
            left_id = owners.get(right_id)
            if right_id not in rows:
                del self.manual[(right_id, field)]
            elif left_id in self.left.rows("contact") and self.fields(left_id).get(field):
                del self.manual[(right_id, field)]  # the left filled it since
            else:
                assert rows[right_id].get(field) == value, (right_id, field, value)
        # no duplicates: one creation per left record that ever qualified and did not
        # match a hand-made record; every record syncd created is bound
        assert self.right.writes["create"] == len(self.synced - self.matched)
        assert set(rows) - self.handmade <= set(bound.values())
        if self.PAIR.get("deletes") == "propagate":
            assert set(bound) <= set(self.live()), "a deleted left record is still bound"
        else:
            assert len(bound) == len(self.synced)
            assert self.right.writes["delete"] == 0
        assert self.store.open_intents("p", "contact") == []


class FullListingMachine(ExportMachine):
    """The same with a source that has no change feed (complete listings, hash diffs,
    deletions inferred from absence) and deletes ignored."""

    LEFT: ClassVar[dict[str, Any]] = {
        "type": "memory",
        "system": "left",
        "incremental": False,
        "page_size": 2,
    }
    PAIR: ClassVar[dict[str, Any]] = {**ExportMachine.PAIR, "deletes": "ignore"}


TestExportIncremental = ExportMachine.TestCase
TestExportIncremental.settings = SETTINGS
TestExportFullListing = FullListingMachine.TestCase
TestExportFullListing.settings = SETTINGS
