"""Two-way sync rules, one focused test each, against two in-memory systems.

Each test checks what reached both systems, the run's counts and its items, so it
fails if its rule breaks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from conftest import make_config, systems
from syncd.config import Config
from syncd.engine import RunResult
from syncd.engine_setup import runner_for
from syncd.state import Store
from syncd.state.store import BatchCommit
from syncd_memory import MemoryConnector, MemorySystem

BASE: dict[str, Any] = {"mode": "two-way", "match": {"contact": ["email"]}}


def setup(tmp_path: Path, **pair: Any) -> tuple[Config, MemorySystem, MemorySystem]:
    cfg = make_config(tmp_path, {**BASE, **pair})
    left, right = systems()
    return cfg, left, right


def run(cfg: Config, store: Store, **kwargs: Any) -> RunResult:
    result = runner_for(cfg, store).run("p", **kwargs)
    assert result.status == "ok", result.summary()
    return result


def total(system: MemorySystem) -> int:
    return sum(system.writes.values())


def quiet_run(cfg: Config, store: Store, *systems_: MemorySystem) -> None:
    """Another run with no outside edits writes nothing to either system."""
    before = [total(s) for s in systems_]
    again = run(cfg, store)
    assert [total(s) for s in systems_] == before, again.summary()
    assert again.counts["created"] == again.counts["updated"] == 0


def items(store: Store, result: RunResult, action: str | None = None) -> list[dict[str, Any]]:
    assert result.run_id is not None
    got = [
        {**i, "detail": json.loads(i["detail"]) if i["detail"] else {}}
        for i in store.run_items(result.run_id)
    ]
    return [i for i in got if action is None or i["action"] == action]


def only(system: MemorySystem, entity: str = "contact") -> dict[str, Any]:
    rows = list(system.rows(entity).values())
    assert len(rows) == 1, rows
    return rows[0]


def synced_pair(
    tmp_path: Path, store: Store, **pair: Any
) -> tuple[Config, MemorySystem, MemorySystem, str, str]:
    """One contact created on the left and synced to the right."""
    cfg, left, right = setup(tmp_path, **pair)
    lid = left.put("contact", {"email": "ada@x.org", "first_name": "Ada", "phone": "1"})
    run(cfg, store)
    (rid,) = right.rows("contact")
    return cfg, left, right, lid, rid


def test_new_records_on_both_sides_are_created_on_the_other(tmp_path: Path, store: Store) -> None:
    cfg, left, right = setup(tmp_path)
    left.put("contact", {"email": "a@x.org", "first_name": "A"})
    right.put("contact", {"email": "b@x.org", "first_name": "B"})
    first = run(cfg, store)
    assert first.counts["created"] == 2
    emails = {"a@x.org", "b@x.org"}
    assert {r["email"] for r in left.rows("contact").values()} == emails
    assert {r["email"] for r in right.rows("contact").values()} == emails
    quiet_run(cfg, store, left, right)


def test_matching_new_records_on_both_sides_are_bound_not_both_created(
    tmp_path: Path, store: Store
) -> None:
    """A new record on each side with the same e-mail: bound, and each side gains the
    fields only the other had."""
    cfg, left, right = setup(tmp_path)
    left.put("contact", {"email": "Ada@X.org", "first_name": "Ada"})
    right.put("contact", {"email": "ada@x.org", "phone": "555"})
    first = run(cfg, store)
    assert first.counts["created"] == 0 and first.counts["bound"] == 1
    assert only(left)["phone"] == "555"
    assert only(right)["first_name"] == "Ada"
    quiet_run(cfg, store, left, right)


def test_change_on_one_side_goes_to_the_other_and_does_not_echo(
    tmp_path: Path, store: Store
) -> None:
    cfg, left, right, _lid, rid = synced_pair(tmp_path, store)
    right.edit("contact", rid, phone="2")
    before_left, before_right = dict(left.writes), dict(right.writes)
    second = run(cfg, store)
    assert only(left)["phone"] == "2"
    assert second.counts["updated"] == 1
    assert left.writes["update"] == before_left["update"] + 1
    assert right.writes == before_right  # nothing travels back
    quiet_run(cfg, store, left, right)


def test_different_fields_changed_on_each_side_both_survive(tmp_path: Path, store: Store) -> None:
    cfg, left, right, lid, rid = synced_pair(tmp_path, store)
    left.edit("contact", lid, first_name="Augusta")
    right.edit("contact", rid, phone="2")
    second = run(cfg, store)
    assert second.counts["conflicts"] == 0
    for system in (left, right):
        row = only(system)
        assert (row["first_name"], row["phone"]) == ("Augusta", "2")
    quiet_run(cfg, store, left, right)


def _conflict(tmp_path: Path, store: Store, rule: str, first: str) -> tuple[Any, ...]:
    """Both sides change the phone; ``first`` is edited earlier than the other."""
    cfg, left, right, lid, rid = synced_pair(tmp_path, store, conflict=rule)
    edits = [(left, lid, "from-left"), (right, rid, "from-right")]
    if first == "right":
        edits.reverse()
    for system, rid_, value in edits:
        system.edit("contact", rid_, phone=value)
    result = run(cfg, store)
    phones = (only(left)["phone"], only(right)["phone"])
    quiet_run(cfg, store, left, right)
    return result, phones


def test_conflict_left_wins(tmp_path: Path, store: Store) -> None:
    result, phones = _conflict(tmp_path, store, "left", first="left")
    assert phones == ("from-left", "from-left")
    assert result.counts["conflicts"] == 1
    (item,) = items(store, result, "conflict")
    assert item["outcome"] == "resolved"
    assert item["detail"] == {
        "field": "phone",
        "left": "from-left",
        "right": "from-right",
        "winner": "left",
        "why": "conflict = left",
    }


def test_conflict_right_wins(tmp_path: Path, store: Store) -> None:
    result, phones = _conflict(tmp_path, store, "right", first="right")
    assert phones == ("from-right", "from-right")
    (item,) = items(store, result, "conflict")
    assert item["detail"]["winner"] == "right"


def test_conflict_newest_wins_by_modification_time(tmp_path: Path, store: Store) -> None:
    result, phones = _conflict(tmp_path, store, "newest", first="left")
    assert phones == ("from-right", "from-right")
    (item,) = items(store, result, "conflict")
    assert item["detail"]["why"] == "newest: right was modified later"


def test_conflict_newest_wins_left_when_left_is_newer(tmp_path: Path, store: Store) -> None:
    _result, phones = _conflict(tmp_path, store, "newest", first="right")
    assert phones == ("from-left", "from-left")


def test_same_change_on_both_sides_is_not_a_conflict(tmp_path: Path, store: Store) -> None:
    cfg, left, right, lid, rid = synced_pair(tmp_path, store)
    left.edit("contact", lid, phone="9")
    right.edit("contact", rid, phone="9")
    before = total(left) + total(right)
    result = run(cfg, store)
    assert result.counts["conflicts"] == 0
    assert total(left) + total(right) == before


def test_a_clear_does_not_clear_the_other_side_by_default(tmp_path: Path, store: Store) -> None:
    cfg, left, right, lid, _rid = synced_pair(tmp_path, store)
    left.edit("contact", lid, phone=None)
    run(cfg, store)
    assert only(right)["phone"] == "1"
    assert only(left)["phone"] is None  # and it does not come back either
    quiet_run(cfg, store, left, right)


def test_clears_propagate_when_the_pair_says_so(tmp_path: Path, store: Store) -> None:
    cfg, left, right, _lid, rid = synced_pair(tmp_path, store, clears="propagate")
    right.edit("contact", rid, phone=None)
    run(cfg, store)
    assert only(left)["phone"] is None
    quiet_run(cfg, store, left, right)


def test_a_clear_against_an_edit_keeps_the_edit(tmp_path: Path, store: Store) -> None:
    cfg, left, right, lid, rid = synced_pair(tmp_path, store, conflict="left")
    left.edit("contact", lid, phone=None)
    right.edit("contact", rid, phone="7")
    result = run(cfg, store)
    assert only(left)["phone"] == "7" and only(right)["phone"] == "7"
    assert result.counts["conflicts"] == 0
    quiet_run(cfg, store, left, right)


def test_deletes_propagate_both_ways(tmp_path: Path, store: Store) -> None:
    cfg, left, right = setup(tmp_path, deletes="propagate")
    a = left.put("contact", {"email": "a@x.org"})
    right.put("contact", {"email": "b@x.org"})
    run(cfg, store)
    b_on_left = next(i for i, r in left.rows("contact").items() if r["email"] == "b@x.org")
    a_on_right = next(i for i, r in right.rows("contact").items() if r["email"] == "a@x.org")
    left.remove("contact", a)
    right.remove("contact", next(i for i in right.rows("contact") if i != a_on_right))
    result = run(cfg, store)
    assert result.counts["deleted"] == 2
    assert left.rows("contact") == {} and right.rows("contact") == {}
    assert b_on_left not in left.rows("contact")
    quiet_run(cfg, store, left, right)


def test_deletes_ignored_keep_the_other_side_and_do_not_recreate(
    tmp_path: Path, store: Store
) -> None:
    cfg, left, right, _lid, rid = synced_pair(tmp_path, store, deletes="ignore")
    right.remove("contact", rid)
    run(cfg, store)
    assert len(left.rows("contact")) == 1 and right.rows("contact") == {}
    quiet_run(cfg, store, left, right)


def test_delete_against_edit_the_edit_wins_and_is_not_recreated(
    tmp_path: Path, store: Store
) -> None:
    """Deleted on the right, edited on the left, recreate_deleted = false: the left
    keeps its edit, nothing is deleted or created, and the item says why; later edits
    do not bring the record back either."""
    cfg, left, right, lid, rid = synced_pair(tmp_path, store, deletes="propagate")
    right.remove("contact", rid)
    left.edit("contact", lid, phone="2")
    result = run(cfg, store)
    assert only(left)["phone"] == "2" and right.rows("contact") == {}
    assert result.counts["deleted"] == 0 and result.counts["created"] == 0
    reasons = [i["detail"]["reason"] for i in items(store, result, "skip")]
    assert any("deleted on right" in r for r in reasons), reasons
    left.edit("contact", lid, phone="3")
    run(cfg, store)
    assert right.rows("contact") == {}


def test_delete_against_edit_recreates_with_recreate_deleted(tmp_path: Path, store: Store) -> None:
    """Deleted on the left, edited on the right, recreate_deleted = true: the record is
    created again on the left with the right's edit, and bound to it."""
    cfg, left, right, lid, rid = synced_pair(
        tmp_path, store, deletes="propagate", recreate_deleted=True
    )
    left.remove("contact", lid)
    right.edit("contact", rid, phone="2")
    result = run(cfg, store)
    assert result.counts["created"] == 1 and result.counts["deleted"] == 0
    row = only(left)
    assert (row["email"], row["phone"]) == ("ada@x.org", "2")
    assert only(right)["phone"] == "2"
    quiet_run(cfg, store, left, right)


def test_record_that_leaves_the_filter_stops_syncing_and_is_not_deleted(
    tmp_path: Path, store: Store
) -> None:
    cfg, left, right, lid, rid = synced_pair(
        tmp_path, store, filter={"contact": {"private": False}}, deletes="propagate"
    )
    right.edit("contact", rid, private=True, phone="secret")
    run(cfg, store)
    assert only(left)["phone"] == "1"
    left.edit("contact", lid, phone="2")
    run(cfg, store)
    assert only(right)["phone"] == "secret"
    assert len(left.rows("contact")) == 1


def test_excluded_fields_do_not_travel_in_either_direction(tmp_path: Path, store: Store) -> None:
    cfg, left, right, lid, rid = synced_pair(tmp_path, store, exclude={"contact": ["notes"]})
    left.edit("contact", lid, notes="left note")
    right.edit("contact", rid, notes="right note")
    run(cfg, store)
    assert only(left)["notes"] == "left note" and only(right)["notes"] == "right note"


def test_company_references_are_translated_both_ways(tmp_path: Path, store: Store) -> None:
    cfg, left, right = setup(tmp_path)
    acme = left.put("company", {"name": "Acme"})
    left.put("contact", {"email": "a@x.org", "company": acme})
    globex_r = right.put("company", {"name": "Globex"})
    right.put("contact", {"email": "b@x.org", "company": globex_r})
    run(cfg, store)
    right_names = {cid: r["name"] for cid, r in right.rows("company").items()}
    left_names = {cid: r["name"] for cid, r in left.rows("company").items()}
    by_email_r = {r["email"]: right_names[r["company"]] for r in right.rows("contact").values()}
    by_email_l = {r["email"]: left_names[r["company"]] for r in left.rows("contact").values()}
    assert by_email_r == by_email_l == {"a@x.org": "Acme", "b@x.org": "Globex"}
    # a contact moved to another company on the right follows on the left
    b_right = next(i for i, r in right.rows("contact").items() if r["email"] == "b@x.org")
    acme_r = next(i for i, n in right_names.items() if n == "Acme")
    right.edit("contact", b_right, company=acme_r)
    run(cfg, store)
    b_left = next(r for r in left.rows("contact").values() if r["email"] == "b@x.org")
    assert b_left["company"] == acme
    quiet_run(cfg, store, left, right)


def test_create_in_limits_creation_per_side(tmp_path: Path, store: Store) -> None:
    cfg, left, right = setup(tmp_path, create_in=["left"])
    left.put("contact", {"email": "a@x.org"})
    right.put("contact", {"email": "b@x.org"})
    result = run(cfg, store)
    assert result.counts["created"] == 1
    assert [r["email"] for r in right.rows("contact").values()] == ["b@x.org"]
    assert {r["email"] for r in left.rows("contact").values()} == {"a@x.org", "b@x.org"}


def test_failed_write_back_is_retried_and_nothing_is_lost(tmp_path: Path, store: Store) -> None:
    """The left's write fails once: neither side's snapshot moves, and the next run
    brings both edits across."""
    from syncd.plugin.connector import ErrorKind, RecordError

    cfg, left, right, lid, rid = synced_pair(tmp_path, store)
    left.edit("contact", lid, first_name="Augusta")
    right.edit("contact", rid, phone="2")
    left.write_errors[lid] = RecordError(ErrorKind.TRANSIENT, "busy", retryable=True)
    failed = runner_for(cfg, store).run("p")
    assert failed.status == "partial" and failed.counts["failed"] >= 1
    del left.write_errors[lid]
    run(cfg, store)
    for system in (left, right):
        row = only(system)
        assert (row["first_name"], row["phone"]) == ("Augusta", "2")
    quiet_run(cfg, store, left, right)


def test_the_readme_worked_example(tmp_path: Path, store: Store) -> None:
    """The worked example of docs/rules.md (rule 26), exactly."""
    cfg, left, right = setup(tmp_path, conflict="right")
    ann = {"email": "ann@x.org", "phone": "100", "title": "CFO", "last_name": "Archer"}
    lid = left.put("contact", ann)
    run(cfg, store)
    (rid,) = right.rows("contact")
    left.edit("contact", lid, phone="111", title="CEO")
    right.edit("contact", rid, title="Chief Executive", last_name=None)
    result = run(cfg, store)
    assert only(left) == {**ann, "phone": "111", "title": "Chief Executive"}
    assert only(right)["phone"] == "111" and only(right)["title"] == "Chief Executive"
    assert only(right)["last_name"] is None
    (conflict,) = items(store, result, "conflict")
    assert conflict["detail"]["left"] == "CEO" and conflict["detail"]["winner"] == "right"
    quiet_run(cfg, store, left, right)


def test_newest_without_modification_times_lets_left_win() -> None:
    from syncd.engine.merge import ConflictRule, merge_records

    merged = merge_records(
        {"phone"},
        {"phone": "L"},
        {"phone": "0"},
        {"phone": "R"},
        {"phone": "0"},
        rule=ConflictRule("newest"),
        left_time=None,
        right_time=None,
    )
    assert merged.to_right == {"phone": "L"} and merged.to_left == {}
    assert merged.conflicts[0].why == "newest: left has no modification time, so left wins"


def test_one_way_clears_propagate_only_when_asked(tmp_path: Path, store: Store) -> None:
    for clears, expected in (("keep", "1"), ("propagate", None)):
        from syncd_memory import reset_memory_systems

        reset_memory_systems()
        folder = tmp_path / clears
        folder.mkdir()
        cfg, left, right = setup(folder, mode="export", clears=clears)
        lid = left.put("contact", {"email": "a@x.org", "phone": "1"})
        one = Store(cfg.state_url)
        run(cfg, one)
        left.edit("contact", lid, phone=None)
        run(cfg, one)
        assert only(right)["phone"] == expected, clears
        one.close()


# -- a crash between the writes and the state commit -----------------------------------


class Crash(Exception):
    """Stands for a process killed at the state commit."""


@contextmanager
def crash_before_writes_are_recorded(store: Store) -> Iterator[None]:
    """The first batch commit that records a write raises: the writes of its batch
    have landed, nothing of it is recorded (as after a SIGKILL at that moment)."""
    original = store.commit

    def commit(pair: str, run_id: int, batch: BatchCommit) -> None:
        if batch.items:
            raise Crash
        original(pair, run_id, batch)

    with mock.patch.object(store, "commit", commit), pytest.raises(Crash):
        yield


def test_a_write_back_killed_before_its_commit_is_not_taken_for_an_edit(
    tmp_path: Path, store: Store
) -> None:
    """A merge that writes both ways (left's phone to the right, right's title back to
    the left) is interrupted before its commit; the right's title is then edited
    again. Both writes are syncd's own: the second edit reaches the left, and no
    conflict is reported (with conflict = left, the left's echo would revert it)."""
    cfg, left, right, lid, rid = synced_pair(tmp_path, store, conflict="left")
    left.edit("contact", lid, phone="2")
    right.edit("contact", rid, title="CFO")
    with crash_before_writes_are_recorded(store):
        runner_for(cfg, store).run("p")
    assert (only(left)["title"], only(right)["phone"]) == ("CFO", "2")  # both landed
    right.edit("contact", rid, title="CEO")

    after = run(cfg, store)
    assert after.counts["conflicts"] == 0, after.summary()
    for side in (left, right):
        assert (only(side)["phone"], only(side)["title"]) == ("2", "CEO")
    settled = [i for i in items(store, after, "update") if "note" in i["detail"]]
    assert {i["source_side"] for i in settled} == {"left", "right"}
    assert store.open_intents("p", "contact") == []
    quiet_run(cfg, store, left, right)


def test_a_record_edited_again_after_an_interrupted_write_keeps_both_edits(
    tmp_path: Path, store: Store
) -> None:
    """The interrupted write landed on the left, then someone edited another field
    there: that edit is still an edit (it goes to the right), the written field is
    syncd's own (the right's next edit of it goes to the left, no conflict)."""
    cfg, left, right, lid, rid = synced_pair(tmp_path, store, conflict="left")
    right.edit("contact", rid, phone="2")
    with crash_before_writes_are_recorded(store):
        runner_for(cfg, store).run("p")
    assert only(left)["phone"] == "2"
    left.edit("contact", lid, first_name="Adele")
    right.edit("contact", rid, phone="3")

    after = run(cfg, store)
    assert after.counts["conflicts"] == 0, after.summary()
    for side in (left, right):
        assert (only(side)["phone"], only(side)["first_name"]) == ("3", "Adele")
    quiet_run(cfg, store, left, right)


def test_an_update_that_never_landed_is_sent_again(tmp_path: Path, store: Store) -> None:
    """The run dies after its write-ahead record and before the write: the next run
    finds nothing of it on the target and sends the change as an ordinary one."""
    cfg, left, right, _lid, rid = synced_pair(tmp_path, store)
    right.edit("contact", rid, phone="2")
    with mock.patch.object(MemoryConnector, "update", side_effect=Crash), pytest.raises(Crash):
        runner_for(cfg, store).run("p")
    assert only(left)["phone"] == "1"
    assert len(store.open_intents("p", "contact")) == 1

    after = run(cfg, store)
    assert after.counts["updated"] == 1 and only(left)["phone"] == "2"
    assert store.open_intents("p", "contact") == []
    quiet_run(cfg, store, left, right)


def test_a_field_read_from_the_side_a_partly_landed_write_went_to_stays_read(
    tmp_path: Path, store: Store
) -> None:
    """An interrupted merge sent the left's title to the right and wrote the right's
    phone back onto the left; afterwards a person set the right's title to something
    else (so the write there no longer shows) and the right's phone back to what it
    was before the crash. The right's phone was read as "2" by the merge: going back
    to "1" is an edit of the right, and it reaches the left."""
    cfg, left, right, lid, rid = synced_pair(tmp_path, store, conflict="left")
    left.edit("contact", lid, title="CFO")
    right.edit("contact", rid, phone="2")
    with crash_before_writes_are_recorded(store):
        runner_for(cfg, store).run("p")
    assert (only(left)["phone"], only(right)["title"]) == ("2", "CFO")  # both landed
    right.edit("contact", rid, phone="1", title="CEO")

    run(cfg, store)
    assert only(left)["phone"] == only(right)["phone"] == "1"
    assert only(left)["title"] == only(right)["title"]
    quiet_run(cfg, store, left, right)
