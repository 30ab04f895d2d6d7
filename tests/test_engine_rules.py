"""The engine's rules, one focused test each, run against two in-memory systems.

Every test asserts on what actually reached the systems (their rows and write counters),
on the run's counts and on the per-record run items, so it fails if its rule breaks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from conftest import make_config, systems
from syncd.config import Config
from syncd.engine import RunResult
from syncd.engine.intents import unpack
from syncd.engine_setup import runner_for
from syncd.plugin.connector import Create, ErrorKind, RecordError, WriteResult
from syncd.state import Store
from syncd_memory import MemoryConnector, MemorySystem

BASE: dict[str, Any] = {
    "mode": "export",
    "match": {"contact": ["email"]},
    "required": {"contact": ["email"]},
}


def setup(tmp_path: Path, **pair: Any) -> tuple[Config, MemorySystem, MemorySystem]:
    """A config for pair ``p`` (BASE overridden by ``pair``) and its two systems."""
    connectors = pair.pop("connectors", {})
    cfg = make_config(tmp_path, {**BASE, **pair}, **connectors)
    left, right = systems()
    return cfg, left, right


def run(cfg: Config, store: Store, **kwargs: Any) -> RunResult:
    return runner_for(cfg, store).run("p", **kwargs)


def items(store: Store, result: RunResult) -> list[dict[str, Any]]:
    assert result.run_id is not None
    return list(store.run_items(result.run_id))


def writes(system: MemorySystem) -> dict[str, int]:
    return dict(system.writes)


def delta(before: dict[str, int], system: MemorySystem) -> dict[str, int]:
    return {k: system.writes[k] - before[k] for k in before}


def right_id(store: Store, left_id: str, entity: str = "contact") -> str | None:
    binding = store.bindings_for("p", entity, "left", [left_id]).get(left_id)
    return binding.right_id if binding else None


def by_email(system: MemorySystem, email: str) -> list[str]:
    return [rid for rid, row in system.rows("contact").items() if row.get("email") == email]


# -- 1. incremental ---------------------------------------------------------------------


def test_incremental_second_run_updates_exactly_the_edited_record(
    tmp_path: Path, store: Store
) -> None:
    """Rule 1: after editing one record, the next (incremental) run updates exactly that
    record: one update, no creates."""
    cfg, left, right = setup(tmp_path)
    ids = [left.put("contact", {"email": f"c{i}@x.org", "phone": str(i)}) for i in range(5)]
    first = run(cfg, store)
    assert first.status == "ok" and first.counts["created"] == 5
    before = writes(right)

    left.edit("contact", ids[2], phone="222")
    second = run(cfg, store)

    assert delta(before, right) == {"create": 0, "update": 1, "delete": 0}
    assert second.counts["updated"] == 1 and second.counts["created"] == 0
    assert right.rows("contact")[right_id(store, ids[2])]["phone"] == "222"
    updated = [i for i in items(store, second) if i["action"] == "update"]
    assert [i["source_id"] for i in updated] == [ids[2]]
    assert json.loads(updated[0]["detail"]) == {"fields": ["phone"]}


# -- 2. full listing --------------------------------------------------------------------


FULL_LEFT = {"left": {"type": "memory", "system": "left", "incremental": False, "page_size": 2}}


def test_full_listing_diffs_by_hash_and_infers_deletions(tmp_path: Path, store: Store) -> None:
    """Rule 2: a source without a change feed (complete listings): a re-run without
    changes writes nothing, one edit makes one update, and a record missing from the
    complete listing is detected as deleted (propagated with deletes = "propagate")."""
    cfg, left, right = setup(tmp_path, deletes="propagate", connectors=FULL_LEFT)
    ids = [left.put("contact", {"email": f"c{i}@x.org", "phone": str(i)}) for i in range(5)]
    assert run(cfg, store).counts["created"] == 5
    before = writes(right)

    again = run(cfg, store)
    assert delta(before, right) == {"create": 0, "update": 0, "delete": 0}
    assert again.status == "ok" and sum(again.counts.values()) == 0

    left.edit("contact", ids[1], phone="111")
    edited = run(cfg, store)
    assert delta(before, right) == {"create": 0, "update": 1, "delete": 0}
    assert edited.counts["updated"] == 1
    assert right.rows("contact")[right_id(store, ids[1])]["phone"] == "111"

    gone = right_id(store, ids[3])
    left.remove("contact", ids[3])
    deleted = run(cfg, store)
    assert deleted.counts["deleted"] == 1
    assert delta(before, right) == {"create": 0, "update": 1, "delete": 1}
    assert gone not in right.rows("contact")
    assert right_id(store, ids[3]) is None
    assert [(i["action"], i["source_id"]) for i in items(store, deleted)] == [("delete", ids[3])]


def test_full_listing_deletion_with_deletes_ignore_keeps_target(
    tmp_path: Path, store: Store
) -> None:
    """Rule 2 (ignore): a deletion inferred from a complete listing is reported once as
    a skip and the target record stays."""
    cfg, left, right = setup(tmp_path, connectors=FULL_LEFT)
    ids = [left.put("contact", {"email": f"c{i}@x.org"}) for i in range(3)]
    run(cfg, store)
    target = right_id(store, ids[0])
    left.remove("contact", ids[0])

    result = run(cfg, store)
    assert result.counts["skipped"] == 1 and result.counts["deleted"] == 0
    assert target in right.rows("contact")
    [item] = items(store, result)
    assert item["action"] == "skip" and "deleted on left" in json.loads(item["detail"])["reason"]
    # reported once, not on every later run
    assert sum(run(cfg, store).counts.values()) == 0


# -- 3. bound records are updated -------------------------------------------------------


def test_bound_record_is_updated_never_created_again(tmp_path: Path, store: Store) -> None:
    """Rule 3: a bound record is updated in place, never created a second time, also
    in full runs."""
    cfg, left, right = setup(tmp_path)
    lid = left.put("contact", {"email": "a@x.org", "phone": "1"})
    run(cfg, store)
    rid = right_id(store, lid)
    for n in range(2, 5):
        left.edit("contact", lid, phone=str(n))
        result = run(cfg, store, full=n % 2 == 0)
        assert result.counts["created"] == 0 and result.counts["updated"] == 1
    assert list(right.rows("contact")) == [rid]
    assert right.rows("contact")[rid]["phone"] == "4"
    assert right.writes["create"] == 1


# -- 4. match keys normalise ------------------------------------------------------------


def test_match_keys_are_normalised(tmp_path: Path, store: Store) -> None:
    """Rule 4: e-mail match keys are trimmed and lower-cased: " Ann@X.org " binds to
    "ann@x.org" instead of creating a second record."""
    cfg, left, right = setup(tmp_path)
    rid = right.put("contact", {"email": "ann@x.org", "last_name": "Smith"})
    lid = left.put("contact", {"email": " Ann@X.org ", "first_name": "Ann"})

    result = run(cfg, store)

    assert right.writes["create"] == 0 and list(right.rows("contact")) == [rid]
    assert right_id(store, lid) == rid
    assert result.counts["bound"] == 1 and result.counts["created"] == 0
    [item] = items(store, result)
    assert (item["action"], item["outcome"], item["target_id"]) == ("bind", "ok", rid)
    assert right.rows("contact")[rid]["first_name"] == "Ann"


def test_company_names_are_case_folded_and_space_collapsed(tmp_path: Path, store: Store) -> None:
    """Rule 4 (names): company names match case-folded with white space collapsed."""
    cfg, left, right = setup(tmp_path, match={"company": ["name"]})
    rid = right.put("company", {"name": "acme  gmbh"})
    lid = left.put("company", {"name": " ACME GmbH"})
    result = run(cfg, store)
    assert result.counts["bound"] == 1 and right.writes["create"] == 0
    assert right_id(store, lid, "company") == rid


# -- 5. ambiguous match -----------------------------------------------------------------


def test_ambiguous_match_fails_that_record_only(tmp_path: Path, store: Store) -> None:
    """Rule 5: two candidates on the right are an "ambiguous match" error for that
    record (no guess, no create); the other records still sync; the run is partial."""
    cfg, left, right = setup(tmp_path)
    right.put("contact", {"email": "dup@x.org"})
    right.put("contact", {"email": "DUP@x.org "})
    amb = left.put("contact", {"email": "dup@x.org"})
    fine = [left.put("contact", {"email": f"ok{i}@x.org"}) for i in range(2)]

    result = run(cfg, store)

    assert result.status == "partial"
    assert result.counts["failed"] == 1 and result.counts["created"] == 2
    assert right_id(store, amb) is None
    assert all(right_id(store, i) for i in fine)
    assert len(right.rows("contact")) == 4
    [failed] = [i for i in items(store, result) if i["outcome"] == "failed"]
    assert failed["source_id"] == amb
    assert "ambiguous match" in failed["error"]


# -- 6. bound candidates ----------------------------------------------------------------


def test_a_bound_candidate_is_not_a_candidate(tmp_path: Path, store: Store) -> None:
    """Rule 6: a right record already bound is not a match candidate: a second left
    record with the same e-mail is created instead of bound to it (both across runs and
    within one page)."""
    cfg, left, right = setup(tmp_path)
    rid = right.put("contact", {"email": "same@x.org"})
    first = left.put("contact", {"email": "same@x.org"})
    assert run(cfg, store).counts["bound"] == 1
    assert right_id(store, first) == rid

    second = left.put("contact", {"email": "Same@x.org"})
    result = run(cfg, store)

    assert result.status == "ok"
    assert result.counts["created"] == 1 and result.counts["bound"] == 0
    assert right_id(store, second) not in (None, rid)
    assert right_id(store, first) == rid
    assert len(right.rows("contact")) == 2


def test_one_candidate_binds_only_one_record_of_a_page(tmp_path: Path, store: Store) -> None:
    """Rule 6 (same page): two left records matching one right record: one binds, the
    other is created; the right record is never bound twice."""
    cfg, left, right = setup(tmp_path)
    rid = right.put("contact", {"email": "same@x.org"})
    a = left.put("contact", {"email": "same@x.org"})
    b = left.put("contact", {"email": "SAME@x.org"})
    result = run(cfg, store)
    assert result.counts["bound"] == 1 and result.counts["created"] == 1
    assert {right_id(store, a), right_id(store, b)} >= {rid}
    assert right_id(store, a) != right_id(store, b)


# -- 7. required fields -----------------------------------------------------------------


def test_required_field_refuses_record_until_it_gains_it(tmp_path: Path, store: Store) -> None:
    """Rule 7: a record without the required e-mail is refused with an item naming the
    field, the rest syncs; while unchanged it is not tried again (even though a complete
    listing shows it every run); once it gains an e-mail it is synced."""
    cfg, left, right = setup(tmp_path, connectors=FULL_LEFT)
    bad = left.put("contact", {"first_name": "No", "last_name": "Mail"})
    good = [left.put("contact", {"email": f"g{i}@x.org"}) for i in range(3)]

    first = run(cfg, store)
    assert first.status == "partial"
    assert first.counts["failed"] == 1 and first.counts["created"] == 3
    [failed] = [i for i in items(store, first) if i["outcome"] == "failed"]
    assert failed["source_id"] == bad and failed["action"] == "refuse"
    assert "email" in failed["error"] and "required" in failed["error"]
    assert all(right_id(store, g) for g in good) and right_id(store, bad) is None

    before = writes(right)
    again = run(cfg, store)
    assert again.counts["failed"] == 0 and items(store, again) == []
    assert delta(before, right) == {"create": 0, "update": 0, "delete": 0}

    left.edit("contact", bad, email="found@x.org")
    fixed = run(cfg, store)
    assert fixed.status == "ok" and fixed.counts["created"] == 1
    rid = right_id(store, bad)
    assert rid and right.rows("contact")[rid]["email"] == "found@x.org"
    assert store.permanent_failures("p", "contact", "left", [bad]) == {}


# -- 8. filters -------------------------------------------------------------------------


def test_filter_keeps_private_records_out(tmp_path: Path, store: Store) -> None:
    """Rule 8: with filter private = false, private records never reach the target; a
    bound record that becomes private stops syncing and is not deleted on the target
    (even with deletes = "propagate" and complete listings)."""
    cfg, left, right = setup(
        tmp_path,
        deletes="propagate",
        filter={"contact": {"private": False}},
        connectors=FULL_LEFT,
    )
    secret = left.put("contact", {"email": "secret@x.org", "private": True})
    public = left.put("contact", {"email": "pub@x.org", "phone": "1", "private": False})
    unset = left.put("contact", {"email": "unset@x.org"})

    run(cfg, store)
    assert by_email(right, "secret@x.org") == []
    assert right_id(store, secret) is None
    assert right_id(store, public) and right_id(store, unset)

    rid = right_id(store, public)
    left.edit("contact", public, private=True, phone="2")
    before = writes(right)
    run(cfg, store)
    run(cfg, store, full=True)
    assert delta(before, right) == {"create": 0, "update": 0, "delete": 0}
    assert right.rows("contact")[rid]["phone"] == "1"
    left.edit("contact", secret, phone="9")
    run(cfg, store)
    assert by_email(right, "secret@x.org") == []


# -- 9. exclude -------------------------------------------------------------------------


def test_excluded_field_is_never_written(tmp_path: Path, store: Store) -> None:
    """Rule 9: an excluded field is written neither on create, nor on bind, nor on
    update."""
    cfg, left, right = setup(tmp_path, exclude={"contact": ["notes"]})
    right.put("contact", {"email": "m@x.org"})
    created = left.put("contact", {"email": "c@x.org", "notes": "secret", "phone": "1"})
    matched = left.put("contact", {"email": "m@x.org", "notes": "secret"})
    run(cfg, store)
    left.edit("contact", created, notes="more secret", phone="2")
    run(cfg, store)
    run(cfg, store, full=True)
    runner_for(cfg, store).run_record("p", "contact", "left", matched)

    rows = right.rows("contact")
    assert rows[right_id(store, created)]["phone"] == "2"
    assert all("notes" not in row for row in rows.values())


# -- 10. empty never overwrites ---------------------------------------------------------


def test_empty_value_never_overwrites_a_filled_one(tmp_path: Path, store: Store) -> None:
    """Rule 10: clearing a field on the left leaves the right's value."""
    cfg, left, right = setup(tmp_path)
    lid = left.put("contact", {"email": "a@x.org", "phone": "123", "title": "CEO"})
    run(cfg, store)
    rid = right_id(store, lid)

    left.edit("contact", lid, phone=None, title="  ")
    run(cfg, store)
    run(cfg, store, full=True)
    runner_for(cfg, store).run_record("p", "contact", "left", lid)

    assert right.rows("contact")[rid]["phone"] == "123"
    assert right.rows("contact")[rid]["title"] == "CEO"


# -- 11. only changed fields ------------------------------------------------------------


def test_only_changed_fields_are_written(tmp_path: Path, store: Store) -> None:
    """Rule 11: a left edit of phone sends only phone, so a manual edit of title on the
    right survives."""
    cfg, left, right = setup(tmp_path)
    lid = left.put("contact", {"email": "a@x.org", "phone": "1", "title": "Dev"})
    run(cfg, store)
    rid = right_id(store, lid)
    right.edit("contact", rid, title="Boss")

    left.edit("contact", lid, phone="2")
    result = run(cfg, store)

    assert right.rows("contact")[rid] == {"email": "a@x.org", "phone": "2", "title": "Boss"}
    [item] = items(store, result)
    assert json.loads(item["detail"]) == {"fields": ["phone"]}


# -- 12. update_existing ----------------------------------------------------------------


def test_update_existing_false_creates_once_and_never_updates(tmp_path: Path, store: Store) -> None:
    """Rule 12: with update_existing = false a record is created once and never updated
    afterwards; a matched record is bound without writing to it."""
    cfg, left, right = setup(tmp_path, update_existing=False)
    mid = right.put("contact", {"email": "m@x.org", "phone": "old"})
    lid = left.put("contact", {"email": "a@x.org", "phone": "1"})
    matched = left.put("contact", {"email": "m@x.org", "phone": "new"})
    first = run(cfg, store)
    assert first.counts["created"] == 1 and first.counts["bound"] == 1
    rid = right_id(store, lid)
    assert right_id(store, matched) == mid

    left.edit("contact", lid, phone="2")
    left.edit("contact", matched, phone="newer")
    run(cfg, store)
    run(cfg, store, full=True)

    assert right.writes == {"create": 1, "update": 0, "delete": 0}
    assert right.rows("contact")[rid]["phone"] == "1"
    assert right.rows("contact")[mid]["phone"] == "old"


# -- 13. recreate_deleted ---------------------------------------------------------------


def test_recreate_deleted_true_creates_again(tmp_path: Path, store: Store) -> None:
    """Rule 13 (true): a bound record deleted on the right is created again on the next
    change of the left record, and in a full run even without a change."""
    cfg, left, right = setup(tmp_path, recreate_deleted=True)
    a = left.put("contact", {"email": "a@x.org", "phone": "1"})
    b = left.put("contact", {"email": "b@x.org", "phone": "1"})
    run(cfg, store)
    old_a, old_b = right_id(store, a), right_id(store, b)
    assert old_a and old_b
    right.remove("contact", old_a)
    right.remove("contact", old_b)

    left.edit("contact", a, phone="2")
    changed = run(cfg, store)
    assert changed.counts["created"] == 1
    new_a = right_id(store, a)
    assert new_a not in (None, old_a)
    assert right.rows("contact")[new_a] == {"email": "a@x.org", "phone": "2"}
    assert by_email(right, "b@x.org") == []

    full = run(cfg, store, full=True)
    assert full.counts["created"] == 1
    new_b = right_id(store, b)
    assert new_b not in (None, old_b)
    assert right.rows("contact")[new_b] == {"email": "b@x.org", "phone": "1"}
    assert len(right.rows("contact")) == 2
    assert sum(run(cfg, store, full=True).counts.values()) == 0


def test_recreate_deleted_false_leaves_it_deleted(tmp_path: Path, store: Store) -> None:
    """Rule 13 (false): a bound record deleted on the right is not created again, on a
    change or in a full run; a skip item says why."""
    cfg, left, right = setup(tmp_path, recreate_deleted=False)
    a = left.put("contact", {"email": "a@x.org", "phone": "1"})
    b = left.put("contact", {"email": "b@x.org", "phone": "1"})
    run(cfg, store)
    right.remove("contact", right_id(store, a))
    right.remove("contact", right_id(store, b))

    left.edit("contact", a, phone="2")
    changed = run(cfg, store)
    full = run(cfg, store, full=True)

    assert right.rows("contact") == {}
    assert right.writes["create"] == 2
    for result, source in ((changed, a), (full, b)):
        assert result.counts["created"] == 0 and result.counts["skipped"] == 1
        [item] = items(store, result)
        assert item["action"] == "skip" and item["source_id"] == source
        assert "recreate_deleted = false" in json.loads(item["detail"])["reason"]


# -- 14. deletes ------------------------------------------------------------------------


def test_deletes_propagate(tmp_path: Path, store: Store) -> None:
    """Rule 14 (propagate): deleting on the left deletes on the right and drops the
    binding."""
    cfg, left, right = setup(tmp_path, deletes="propagate")
    a = left.put("contact", {"email": "a@x.org"})
    b = left.put("contact", {"email": "b@x.org"})
    run(cfg, store)
    ra, rb = right_id(store, a), right_id(store, b)
    left.remove("contact", a)

    result = run(cfg, store)

    assert result.counts["deleted"] == 1
    assert list(right.rows("contact")) == [rb]
    assert ra not in right.rows("contact")
    assert right_id(store, a) is None
    assert store.bindings_for("p", "contact", "right", [ra]) == {}
    [item] = items(store, result)
    assert (item["action"], item["outcome"], item["target_id"]) == ("delete", "ok", ra)


def test_deletes_ignore(tmp_path: Path, store: Store) -> None:
    """Rule 14 (ignore): deleting on the left leaves the right record; a skip item says
    so."""
    cfg, left, right = setup(tmp_path, deletes="ignore")
    a = left.put("contact", {"email": "a@x.org"})
    run(cfg, store)
    ra = right_id(store, a)
    left.remove("contact", a)

    result = run(cfg, store)

    assert ra in right.rows("contact") and right.writes["delete"] == 0
    assert result.counts["skipped"] == 1 and result.counts["deleted"] == 0
    [item] = items(store, result)
    assert item["action"] == "skip" and item["source_id"] == a
    assert "deletes = ignore" in json.loads(item["detail"])["reason"]


# -- 15. create_in ----------------------------------------------------------------------


def test_create_in_limits_where_records_are_created(tmp_path: Path, store: Store) -> None:
    """Rule 15: create_in = ["left"] in export mode creates nothing on the right (a skip
    item explains), while matching records are still bound."""
    cfg, left, right = setup(tmp_path, create_in=["left"])
    mid = right.put("contact", {"email": "m@x.org"})
    new = left.put("contact", {"email": "new@x.org"})
    matched = left.put("contact", {"email": "m@x.org"})

    result = run(cfg, store)

    assert right.writes["create"] == 0 and list(right.rows("contact")) == [mid]
    assert right_id(store, matched) == mid and right_id(store, new) is None
    assert result.counts["skipped"] == 1 and result.counts["bound"] == 1
    [skip] = [i for i in items(store, result) if i["action"] == "skip"]
    assert skip["source_id"] == new
    assert "creating on right is not allowed" in json.loads(skip["detail"])["reason"]


# -- 16. companies and references -------------------------------------------------------


def test_companies_first_and_references_translated(tmp_path: Path, store: Store) -> None:
    """Rule 16: companies are synced before contacts and a contact's company is the
    right id of the bound company."""
    cfg, left, right = setup(tmp_path)
    right.put("company", {"name": "Padding"})  # right ids differ from left ids
    acme = left.put("company", {"name": "Acme"})
    ann = left.put("contact", {"email": "ann@acme.org", "company": acme})

    result = run(cfg, store)

    assert result.status == "ok"
    racme = right_id(store, acme, "company")
    assert racme and racme != acme
    assert right.rows("company")[racme]["name"] == "Acme"
    assert right.rows("contact")[right_id(store, ann)]["company"] == racme

    other = left.put("company", {"name": "Other"})
    left.edit("contact", ann, company=other)
    run(cfg, store)
    assert right.rows("contact")[right_id(store, ann)]["company"] == right_id(
        store, other, "company"
    )


def test_reference_becomes_name_without_companies_on_target(tmp_path: Path, store: Store) -> None:
    """Rule 16 (no companies on the right): the reference becomes the company's name."""
    cfg, left, right = setup(
        tmp_path,
        connectors={"right": {"type": "memory", "system": "right", "entities": ["contact"]}},
    )
    assert right.entities == ("contact",)
    acme = left.put("company", {"name": "Acme Corp"})
    ann = left.put("contact", {"email": "ann@acme.org", "company": acme})

    result = run(cfg, store)

    assert result.status == "ok"
    assert right.rows("contact")[right_id(store, ann)]["company"] == "Acme Corp"


# -- 17. import -------------------------------------------------------------------------


def test_import_mode_syncs_right_to_left(tmp_path: Path, store: Store) -> None:
    """Rule 17: import mode reads the right side and writes the left; the right is never
    written."""
    cfg, left, right = setup(tmp_path, mode="import")
    rid = right.put("contact", {"email": "r@x.org", "phone": "1"})
    left.put("contact", {"email": "l@x.org"})

    result = run(cfg, store)
    assert result.status == "ok" and result.counts["created"] == 1
    binding = store.bindings_for("p", "contact", "right", [rid])[rid]
    assert left.rows("contact")[binding.left_id] == {"email": "r@x.org", "phone": "1"}

    right.edit("contact", rid, phone="2")
    run(cfg, store)
    assert left.rows("contact")[binding.left_id]["phone"] == "2"
    assert right.writes == {"create": 0, "update": 0, "delete": 0}
    assert by_email(right, "l@x.org") == []


# -- 18. cursor -------------------------------------------------------------------------


def test_cursor_never_moves_past_unrecorded_outcome(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 18: when the target goes down in the middle of a run, the cursor stays at
    the last recorded batch: the next run syncs everything exactly once."""
    monkeypatch.setattr(MemoryConnector, "batch_size", 2)
    cfg, left, right = setup(
        tmp_path, connectors={"left": {"type": "memory", "system": "left", "page_size": 2}}
    )
    left.put("contact", {"email": "seed@x.org"})
    run(cfg, store)  # the incremental cursor now exists
    ids = [left.put("contact", {"email": f"c{i}@x.org"}) for i in range(11)]

    original = MemoryConnector.create

    def create_then_fail(self: MemoryConnector, entity: str, items: Sequence[Create]) -> Any:
        results = original(self, entity, items)
        if self.system is right and right.writes["create"] >= 5:
            right.down = True
        return results

    monkeypatch.setattr(MemoryConnector, "create", create_then_fail)
    failed = run(cfg, store)
    assert failed.status == "failed"
    assert "UnavailableError" in (failed.error or "")
    assert "down" in (failed.error or "")
    assert 1 < right.writes["create"] < 12

    right.down = False
    monkeypatch.setattr(MemoryConnector, "create", original)
    recovered = run(cfg, store)
    assert recovered.status == "ok"

    for i, lid in enumerate(ids):
        assert len(by_email(right, f"c{i}@x.org")) == 1
        assert right_id(store, lid) == by_email(right, f"c{i}@x.org")[0]
    assert len(right.rows("contact")) == 12
    assert right.writes["create"] == 12
    assert failed.counts["created"] + recovered.counts["created"] == 11


# -- 19. retries ------------------------------------------------------------------------


def _fail_create_once(monkeypatch: pytest.MonkeyPatch, email: str, error: RecordError) -> None:
    original = MemoryConnector.create
    failed: list[str] = []

    def create(self: MemoryConnector, entity: str, items: Sequence[Create]) -> Any:
        ok = [i for i in items if i.fields.get("email") != email or failed]
        done = iter(original(self, entity, ok))
        results = []
        for item in items:
            if any(item is i for i in ok):
                results.append(next(done))
            else:
                failed.append(item.key)
                results.append(WriteResult(error=error))
        return results

    monkeypatch.setattr(MemoryConnector, "create", create)


def test_retryable_errors_are_retried_without_a_change(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 19 (retryable): a create and an update that failed with a retryable error
    are tried again on the next run although the source did not change."""
    cfg, left, right = setup(tmp_path)
    busy = RecordError(ErrorKind.TRANSIENT, "busy", retryable=True)
    a = left.put("contact", {"email": "a@x.org", "phone": "1"})
    run(cfg, store)
    ra = right_id(store, a)
    assert ra

    _fail_create_once(monkeypatch, "b@x.org", busy)
    b = left.put("contact", {"email": "b@x.org"})
    left.edit("contact", a, phone="2")
    right.write_errors[ra] = busy
    first = run(cfg, store)
    assert first.status == "partial" and first.counts["failed"] == 2
    assert by_email(right, "b@x.org") == [] and right.rows("contact")[ra]["phone"] == "1"
    assert sorted(store.retries("p", "contact", "left")) == sorted([a, b])

    del right.write_errors[ra]
    second = run(cfg, store)
    assert second.status == "ok"
    assert second.counts["created"] == 1 and second.counts["updated"] == 1
    assert right.rows("contact")[ra]["phone"] == "2"
    assert len(by_email(right, "b@x.org")) == 1
    assert store.retries("p", "contact", "left") == []
    assert sum(run(cfg, store).counts.values()) == 0


def test_permanent_errors_wait_for_a_change(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 19 (permanent): a create and an update that failed permanently are not
    tried again while the record is unchanged (not even in a full run), and are once it
    changes."""
    cfg, left, right = setup(tmp_path)
    bad = RecordError(ErrorKind.INVALID, "rejected", retryable=False)
    a = left.put("contact", {"email": "a@x.org", "phone": "1"})
    run(cfg, store)
    ra = right_id(store, a)
    assert ra

    _fail_create_once(monkeypatch, "b@x.org", bad)
    b = left.put("contact", {"email": "b@x.org"})
    left.edit("contact", a, phone="2")
    right.write_errors[ra] = bad
    first = run(cfg, store)
    assert first.counts["failed"] == 2
    del right.write_errors[ra]

    before = writes(right)
    for full in (False, True):
        again = run(cfg, store, full=full)
        assert again.counts["failed"] == 0 and again.counts["updated"] == 0
    assert delta(before, right) == {"create": 0, "update": 0, "delete": 0}
    assert by_email(right, "b@x.org") == [] and right.rows("contact")[ra]["phone"] == "1"

    left.edit("contact", a, phone="3")
    left.edit("contact", b, phone="9")
    fixed = run(cfg, store)
    assert fixed.status == "ok"
    assert fixed.counts["created"] == 1 and fixed.counts["updated"] == 1
    assert right.rows("contact")[ra]["phone"] == "3"
    assert [right.rows("contact")[r]["phone"] for r in by_email(right, "b@x.org")] == ["9"]


# -- 20. crash safety -------------------------------------------------------------------


class Killed(Exception):
    """Stands for the process being killed."""


def run_killed(
    cfg: Config, store: Store, monkeypatch: pytest.MonkeyPatch, when: Callable[[Any], bool]
) -> None:
    """Run the pair "killed" at the first batch commit that ``when`` picks: what the
    connectors wrote stays, the batch's outcome is lost. The store commits again
    afterwards."""
    original = Store.commit

    def killed(self: Store, pair: str, run_id: int, batch: Any) -> None:
        if when(batch):
            raise Killed
        original(self, pair, run_id, batch)

    monkeypatch.setattr(Store, "commit", killed)
    with pytest.raises(Killed):
        run(cfg, store)
    monkeypatch.setattr(Store, "commit", original)


def test_interrupted_creates_are_bound_not_created_again(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 20: killed after the connector created records but before the outcome was
    committed, the next run binds the created records (resolving the intents) instead of
    creating duplicates, and no intent remains."""
    cfg, left, right = setup(tmp_path)
    ids = [left.put("contact", {"email": f"c{i}@x.org", "phone": str(i)}) for i in range(4)]

    run_killed(cfg, store, monkeypatch, lambda batch: bool(batch.new_bindings))
    assert right.writes["create"] == 4
    assert len(unpack(store.open_intents("p", "contact"))) == 4
    assert store.count_bindings("p") == {}

    result = run(cfg, store)

    assert result.status == "ok"
    assert right.writes["create"] == 4 and len(right.rows("contact")) == 4
    assert result.counts["bound"] == 4 and result.counts["created"] == 0
    for i, lid in enumerate(ids):
        assert right_id(store, lid) == by_email(right, f"c{i}@x.org")[0]
    assert store.open_intents("p", "contact") == []
    left.edit("contact", ids[0], phone="new")
    run(cfg, store)
    assert right.rows("contact")[right_id(store, ids[0])]["phone"] == "new"
    assert right.writes["create"] == 4


def test_interrupted_create_of_a_record_changed_since_sends_the_change(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 20 (changed since): a record edited between the interrupted create and the
    next run is bound to what was created, and only the edit is sent on: the bound
    snapshot is what the create sent (its company translated back), not the record
    as it is now, so no update is lost and nothing else is written."""
    cfg, left, right = setup(tmp_path)
    right.put("company", {"name": "Padding"})  # right ids differ from left ids
    acme = left.put("company", {"name": "Acme"})
    ids = [
        left.put("contact", {"email": f"c{i}@x.org", "phone": str(i), "company": acme})
        for i in range(3)
    ]
    run_killed(
        cfg,
        store,
        monkeypatch,
        lambda batch: any(b.entity == "contact" for b in batch.new_bindings),
    )
    left.edit("contact", ids[1], phone="new")

    result = run(cfg, store)

    assert result.status == "ok"
    assert result.counts["bound"] == 3 and result.counts["created"] == 0
    assert result.counts["updated"] == 1
    assert right.writes["create"] == 4  # the padding company, Acme, three contacts once
    row = right.rows("contact")[right_id(store, ids[1])]
    assert row["phone"] == "new" and row["company"] == right_id(store, acme, "company")
    [update] = [i for i in items(store, result) if i["action"] == "update"]
    assert update["source_id"] == ids[1] and json.loads(update["detail"]) == {"fields": ["phone"]}
    assert store.open_intents("p", "contact") == []
    before = writes(right)
    run(cfg, store)
    assert delta(before, right) == {"create": 0, "update": 0, "delete": 0}


def test_intents_written_by_an_earlier_version_are_resolved(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 20 (upgrade): an intent row in the older form, which held each create's
    whole snapshot, is still resolved by binding instead of creating again."""
    cfg, left, right = setup(tmp_path)
    lid = left.put("contact", {"email": "a@x.org", "phone": "1"})
    run_killed(cfg, store, monkeypatch, lambda batch: bool(batch.new_bindings))
    [row] = store.open_intents("p", "contact")
    [entry] = json.loads(row["source_data"])
    store.drop_intents([row["key"]])
    fields = {"email": "a@x.org", "phone": "1"}
    older = [{"k": entry["k"], "s": lid, "d": fields, "t": None}]
    store.add_intents("p", [{**row, "key": "older", "source_data": json.dumps(older)}])

    result = run(cfg, store)

    assert result.counts["bound"] == 1 and result.counts["created"] == 0
    assert right.writes["create"] == 1 and right_id(store, lid) == by_email(right, "a@x.org")[0]
    assert store.open_intents("p", "contact") == []


def test_interrupted_recreate_is_not_created_twice(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 20 (recreate): killed after re-creating a record deleted on the right, the
    next run binds the re-created record instead of creating it a third time."""
    cfg, left, right = setup(tmp_path, recreate_deleted=True)
    lid = left.put("contact", {"email": "a@x.org", "phone": "1"})
    run(cfg, store)
    right.remove("contact", right_id(store, lid))
    left.edit("contact", lid, phone="2")

    run_killed(cfg, store, monkeypatch, lambda batch: bool(batch.changed_bindings))
    assert right.writes["create"] == 2

    result = run(cfg, store)
    assert result.status == "ok"
    assert len(by_email(right, "a@x.org")) == 1
    assert right.writes["create"] == 2
    assert right_id(store, lid) == by_email(right, "a@x.org")[0]
    assert store.open_intents("p", "contact") == []


# -- 21. duplicate errors ---------------------------------------------------------------


def test_duplicate_error_binds_to_the_existing_record(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 21: a create refused as a duplicate naming the existing record binds to that
    record (and brings its fields in line) instead of failing."""
    cfg, left, right = setup(tmp_path, match={})
    existing = right.put("contact", {"email": "a@x.org", "phone": "old"})
    lid = left.put("contact", {"email": "a@x.org", "phone": "1", "title": "CEO"})
    duplicate = RecordError(ErrorKind.DUPLICATE, "e-mail taken", existing_id=existing)
    _fail_create_once(monkeypatch, "a@x.org", duplicate)

    result = run(cfg, store)

    assert result.status == "ok"
    assert result.counts["bound"] == 1 and result.counts["failed"] == 0
    assert right_id(store, lid) == existing
    assert list(right.rows("contact")) == [existing]
    assert right.rows("contact")[existing] == {"email": "a@x.org", "phone": "1", "title": "CEO"}
    assert store.open_intents("p", "contact") == []
    [item] = items(store, result)
    assert (item["action"], item["target_id"]) == ("bind", existing)

    left.edit("contact", lid, phone="2")
    run(cfg, store)
    assert right.rows("contact")[existing]["phone"] == "2"


# -- 22. dry run ------------------------------------------------------------------------


def test_dry_run_writes_nothing_but_reports(tmp_path: Path, store: Store) -> None:
    """Rule 22: a dry run writes nothing to either system nor to the state store (no
    run, binding, intent or cursor), yet reports the items it would have done."""
    cfg, left, right = setup(tmp_path)
    right.put("contact", {"email": "m@x.org"})
    left.put("contact", {"email": "m@x.org", "phone": "1"})
    left.put("contact", {"email": "new@x.org"})
    left.put("contact", {"first_name": "nomail"})
    snapshot = {name: dict(s.rows("contact")) for name, s in (("l", left), ("r", right))}

    result = runner_for(cfg, store).run("p", dry_run=True)

    assert result.run_id is None
    assert {name: s.rows("contact") for name, s in (("l", left), ("r", right))} == snapshot
    assert right.writes == left.writes == {"create": 0, "update": 0, "delete": 0}
    assert store.runs() == [] and store.count_bindings("p") == {}
    assert store.open_intents("p", "contact") == []
    assert store.cursor("p", "left", "contact") is None
    assert store.retries("p", "contact", "left") == []
    assert sorted(i["action"] for i in result.items) == ["bind", "create", "refuse"]
    assert result.counts["created"] == 1 and result.counts["bound"] == 1
    assert result.counts["failed"] == 1

    real = run(cfg, store)
    assert real.counts["created"] == 1 and real.counts["bound"] == 1


# -- 23. one record ---------------------------------------------------------------------


def test_run_record_syncs_an_unchanged_record(tmp_path: Path, store: Store) -> None:
    """Rule 23: run_record syncs one record although it did not change: a manual edit on
    the right is overwritten for the fields the left has (and only those)."""
    cfg, left, right = setup(tmp_path)
    lid = left.put("contact", {"email": "a@x.org", "phone": "1"})
    other = left.put("contact", {"email": "b@x.org", "phone": "1"})
    run(cfg, store)
    rid, rother = right_id(store, lid), right_id(store, other)
    right.edit("contact", rid, phone="manual", title="kept")
    right.edit("contact", rother, phone="manual")

    assert sum(run(cfg, store).counts.values()) == 0
    result = runner_for(cfg, store).run_record("p", "contact", "left", lid)

    assert result.status == "ok" and result.counts["updated"] == 1
    assert right.rows("contact")[rid] == {"email": "a@x.org", "phone": "1", "title": "kept"}
    assert right.rows("contact")[rother]["phone"] == "manual"
    [item] = items(store, result)
    assert (item["action"], item["source_id"]) == ("update", lid)
    assert json.loads(item["detail"]) == {"fields": ["phone"]}


def test_run_record_of_an_unbound_record_creates_it(tmp_path: Path, store: Store) -> None:
    """Rule 23 (unbound): run_record creates a record not synced yet, and recreates a
    bound one deleted on the right when recreate_deleted is on."""
    cfg, left, right = setup(tmp_path, recreate_deleted=True)
    lid = left.put("contact", {"email": "a@x.org"})
    assert runner_for(cfg, store).run_record("p", "contact", "left", lid).counts["created"] == 1
    right.remove("contact", right_id(store, lid))
    again = runner_for(cfg, store).run_record("p", "contact", "left", lid)
    assert again.counts["created"] == 1
    assert by_email(right, "a@x.org") == [right_id(store, lid)]


# -- 24. run history --------------------------------------------------------------------


def test_failed_records_carry_their_error_in_the_history(tmp_path: Path, store: Store) -> None:
    """Rule 24: the run history keeps every failed record with its error text, and the
    run's status and counts."""
    cfg, left, right = setup(tmp_path)
    right.put("contact", {"email": "two@x.org"})
    right.put("contact", {"email": "two@x.org"})
    nomail = left.put("contact", {"last_name": "X"})
    amb = left.put("contact", {"email": "two@x.org"})
    ok = left.put("contact", {"email": "ok@x.org"})
    rid = right.put("contact", {"email": "busy@x.org"})
    busy = left.put("contact", {"email": "busy@x.org", "phone": "1"})
    right.write_errors[rid] = RecordError(ErrorKind.TRANSIENT, "server busy", retryable=True)

    result = run(cfg, store)

    assert result.run_id is not None
    recorded = store.run(result.run_id)
    assert recorded is not None
    assert recorded["status"] == "partial" and recorded["failed"] == 3
    assert recorded["created"] == 1
    failed = {i["source_id"]: i for i in items(store, result) if i["outcome"] == "failed"}
    assert set(failed) == {nomail, amb, busy}
    assert failed[nomail]["error"] == "invalid: missing required field(s): email"
    assert failed[amb]["error"].startswith("invalid: ambiguous match: email 'two@x.org'")
    assert failed[busy]["error"] == "transient: server busy"
    assert all(i["entity"] == "contact" and i["source_side"] == "left" for i in failed.values())
    assert ok not in failed


def test_duplicate_of_an_already_bound_record_fails_only_that_record(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 21 (bound): a duplicate error naming a record already bound to another
    record does not bind it twice: that record fails, the run goes on."""
    cfg, left, _right = setup(tmp_path, match={})
    first = left.put("contact", {"email": "a@x.org"})
    run(cfg, store)
    taken = right_id(store, first)
    assert taken
    duplicate = RecordError(ErrorKind.DUPLICATE, "e-mail taken", existing_id=taken)
    _fail_create_once(monkeypatch, "A@x.org", duplicate)
    second = left.put("contact", {"email": "A@x.org"})
    other = left.put("contact", {"email": "b@x.org"})

    result = run(cfg, store)

    assert result.status == "partial" and result.counts["failed"] == 1
    assert right_id(store, second) is None and right_id(store, first) == taken
    assert right_id(store, other)
    [failed] = [i for i in items(store, result) if i["outcome"] == "failed"]
    assert failed["source_id"] == second and "e-mail taken" in failed["error"]


def test_duplicate_error_on_a_recreate_rebinds(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 21 (recreate): re-creating a record deleted on the right that turns out to
    exist under another id binds the left record to that one."""
    cfg, left, right = setup(tmp_path, recreate_deleted=True, match={})
    lid = left.put("contact", {"email": "a@x.org", "phone": "1"})
    run(cfg, store)
    right.remove("contact", right_id(store, lid))
    existing = right.put("contact", {"email": "a@x.org"})
    _fail_create_once(
        monkeypatch, "a@x.org", RecordError(ErrorKind.DUPLICATE, "taken", existing_id=existing)
    )
    left.edit("contact", lid, phone="2")

    result = run(cfg, store)

    assert result.status == "ok" and result.counts["bound"] == 1
    assert right_id(store, lid) == existing
    assert right.rows("contact") == {existing: {"email": "a@x.org", "phone": "2"}}


# -- stopping early ---------------------------------------------------------------------


def test_stop_check_ends_the_run_after_a_committed_batch(tmp_path: Path, store: Store) -> None:
    """A stop request (pause, SIGTERM) ends the run after the batch in hand is committed:
    what was written is bound, the rest follows on the next run without duplicates."""
    cfg, left, right = setup(tmp_path)
    for i in range(120):
        left.put("contact", {"email": f"c{i}@x.org"})
    asked: list[int] = []

    def stop() -> str | None:
        asked.append(1)
        return "the pair was paused" if len(asked) >= 2 else None

    first = runner_for(cfg, store, should_stop=stop).run("p")
    assert first.status == "stopped" and first.exit_code == 1
    assert first.error == "stopped early: the pair was paused"
    assert first.counts["created"] == 100 == len(right.rows("contact"))
    assert store.run(first.run_id)["status"] == "stopped"  # type: ignore[arg-type, index]

    second = run(cfg, store)
    assert second.status == "ok" and second.counts["created"] == 20
    assert len(right.rows("contact")) == 120
