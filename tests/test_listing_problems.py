"""A listing that could not read every record: the unreadable records fail alone, and
nothing is deleted on the strength of that listing (issue 17, items 5 and 7)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import make_config, systems
from syncd.engine import RunResult
from syncd.engine.screen import ListingScreen
from syncd.engine_setup import runner_for
from syncd.plugin.connector import Page, Record
from syncd.state import Store

PAIR: dict[str, Any] = {"mode": "export", "match": {"contact": ["email"]}, "deletes": "propagate"}
FULL_LEFT = {"left": {"type": "memory", "system": "left", "incremental": False, "page_size": 2}}


def run(tmp_path: Path, store: Store, **connectors: Any) -> RunResult:
    cfg = make_config(tmp_path, PAIR, **connectors)
    return runner_for(cfg, store).run("p")


def failed_items(store: Store, result: RunResult) -> list[dict[str, Any]]:
    assert result.run_id is not None
    return [i for i in store.run_items(result.run_id) if i["outcome"] == "failed"]


def test_an_unreadable_record_in_a_complete_listing_deletes_nothing(
    tmp_path: Path, store: Store
) -> None:
    """A record the listing cannot read is absent from it, like a deleted one: it is
    reported as a failed item and no deletion is inferred, until it reads again."""
    left, right = systems()
    ids = [left.put("contact", {"email": f"c{i}@x.org"}) for i in range(5)]
    assert run(tmp_path, store, **FULL_LEFT).counts["created"] == 5
    left.unreadable[("contact", ids[1])] = "a quoted cell runs to the end of the file"
    left.remove("contact", ids[3])

    damaged = run(tmp_path, store, **FULL_LEFT)

    assert damaged.status == "partial"
    assert damaged.counts["deleted"] == 0 and len(right.rows("contact")) == 5
    (item,) = failed_items(store, damaged)
    assert item["action"] == "read" and item["source_id"] == ids[1]
    assert "a quoted cell runs to the end of the file" in item["error"]
    assert f"contact {ids[1]}" in item["error"]

    del left.unreadable[("contact", ids[1])]
    mended = run(tmp_path, store, **FULL_LEFT)
    assert mended.status == "ok" and mended.counts["deleted"] == 1
    assert len(right.rows("contact")) == 4


def test_a_damaged_feed_keeps_its_cursor_and_its_deletions_for_the_next_run(
    tmp_path: Path, store: Store
) -> None:
    """In an incremental feed, a page with an unreadable record acts on no deletion
    and the cursor does not move past it: the next run lists the same changes again,
    so the deletion is carried out once the record reads."""
    left, right = systems()
    ids = [left.put("contact", {"email": f"c{i}@x.org"}) for i in range(3)]
    assert run(tmp_path, store).counts["created"] == 3
    left.remove("contact", ids[0])
    left.edit("contact", ids[1], phone="1")
    left.unreadable[("contact", ids[1])] = "truncated card"

    damaged = run(tmp_path, store)
    assert damaged.status == "partial" and damaged.counts["deleted"] == 0
    assert len(right.rows("contact")) == 3

    again = run(tmp_path, store)
    assert again.status == "partial" and len(failed_items(store, again)) == 1

    del left.unreadable[("contact", ids[1])]
    mended = run(tmp_path, store)
    assert mended.status == "ok"
    assert mended.counts["deleted"] == 1 and mended.counts["updated"] == 1
    assert len(right.rows("contact")) == 2


def test_a_warning_is_reported_and_the_record_still_syncs(tmp_path: Path, store: Store) -> None:
    """A record the connector read but distrusts is synced, with a warning item."""
    left, right = systems()
    rid = left.put("contact", {"email": "a@x.org"})
    left.suspect[("contact", rid)] = "a cell holds 40 line breaks"
    result = run(tmp_path, store)
    assert result.status == "ok" and result.counts["created"] == 1
    assert len(right.rows("contact")) == 1
    assert result.run_id is not None
    warned = [i for i in store.run_items(result.run_id) if i["outcome"] == "warning"]
    assert len(warned) == 1 and "40 line breaks" in warned[0]["detail"]


def test_records_without_an_id_or_listed_twice_fail_alone() -> None:
    """The screen refuses records with no id and ids listed twice (in one page, or
    across the pages of a complete listing); the others go on."""
    screen = ListingScreen("contact")

    def rec(rid: str) -> Record:
        return Record(rid, {"email": f"{rid}@x.org"})

    first = screen.page(Page(records=[rec("1"), rec(""), rec("2"), rec("2")], full=True))
    assert [r.id for r in first.records] == ["1"]
    assert [(op.source_id, op.reason) for op in first.ops] == [
        ("(no id)", "the record has no id"),
        ("2", "the listing holds this id more than once"),
        ("2", "the listing holds this id more than once"),
    ]
    second = screen.page(Page(records=[rec("3"), rec("1")], deleted=["9"], full=True))
    assert [r.id for r in second.records] == ["3"]
    assert [op.source_id for op in second.ops] == ["1"]
    assert list(second.deleted) == ["9"] and not screen.damaged

    clean = ListingScreen("contact").page(Page(records=[rec("1"), rec("2")], full=True))
    assert [r.id for r in clean.records] == ["1", "2"] and clean.ops == []


def test_a_retried_record_that_cannot_be_read_is_not_taken_for_deleted(
    tmp_path: Path, store: Store
) -> None:
    """A record whose last write failed is fetched again by id; ``get`` leaves out a
    record it cannot read, and that absence deletes nothing."""
    from syncd.plugin.connector import ErrorKind, RecordError

    left, right = systems()
    rid = left.put("contact", {"email": "a@x.org"})
    assert run(tmp_path, store, **FULL_LEFT).counts["created"] == 1
    (target,) = right.rows("contact")
    right.write_errors[target] = RecordError(ErrorKind.TRANSIENT, "busy", retryable=True)
    left.edit("contact", rid, phone="1")
    assert run(tmp_path, store, **FULL_LEFT).counts["failed"] == 1
    del right.write_errors[target]
    left.unreadable[("contact", rid)] = "truncated"

    result = run(tmp_path, store, **FULL_LEFT)
    assert result.counts["deleted"] == 0 and target in right.rows("contact")

    del left.unreadable[("contact", rid)]
    mended = run(tmp_path, store, **FULL_LEFT)
    assert mended.counts["updated"] == 1 and right.rows("contact")[target]["phone"] == "1"


def test_a_full_run_takes_no_unreadable_target_record_for_deleted(
    tmp_path: Path, store: Store
) -> None:
    """A full run looks for bound records deleted on the receiving side; one that side
    cannot read is not one of them (it would be created again: a duplicate)."""
    left, right = systems()
    left.put("contact", {"email": "a@x.org"})
    pair = {**PAIR, "recreate_deleted": True}
    cfg = make_config(tmp_path, pair)
    assert runner_for(cfg, store).run("p").counts["created"] == 1
    (target,) = right.rows("contact")
    right.unreadable[("contact", target)] = "not a vCard"

    result = runner_for(cfg, store).run("p", full=True)
    assert result.counts["created"] == 0 and len(right.rows("contact")) == 1
