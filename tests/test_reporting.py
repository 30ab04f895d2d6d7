"""``syncd.reporting`` through its API: what it says about pairs, daemons, runs and
their items after real runs of in-memory systems on a real state store."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from conftest import make_config, systems
from syncd import reporting
from syncd.config import Config
from syncd.engine_setup import runner_for
from syncd.plugin.connector import ErrorKind, RecordError
from syncd.state import Store
from syncd.state.rows import now

PAIR: dict[str, Any] = {
    "mode": "export",
    "entities": ["contact"],
    "match": {"contact": ["email"]},
    "every": "1h",
}


def setup(tmp_path: Path, **pair: Any) -> Config:
    return make_config(tmp_path, {**PAIR, **pair})


def add(count: int, start: int = 0) -> list[str]:
    left, _ = systems()
    return [left.put("contact", {"email": f"c{i}@x.org"}) for i in range(start, start + count)]


def test_a_pair_never_run_is_reported_from_its_configuration(tmp_path: Path, store: Store) -> None:
    cfg = setup(tmp_path)
    report = reporting.status(cfg, store)
    assert report["daemon"] == {"alive": False}
    assert report["pairs"] == [
        {
            "pair": "p",
            "left": "left",
            "right": "right",
            "mode": "export",
            "schedule": "every 1h",
            "paused": False,
            "running": False,
            "next_run": None,
            "not_before": None,
            "last_run": None,
            "bindings": {},
        }
    ]


def test_status_gives_the_last_run_its_counts_the_bindings_and_pauses(
    tmp_path: Path, store: Store
) -> None:
    cfg = setup(tmp_path)
    add(3)
    first = runner_for(cfg, store).run("p")
    add(1, start=10)
    second = runner_for(cfg, store).run("p")
    store.set_paused(["p"], True)

    (pair,) = reporting.pair_statuses(cfg, store, daemon_alive=False)
    last = pair["last_run"]
    assert last is not None and last["id"] == second.run_id != first.run_id
    assert (last["status"], last["created"], last["failed"]) == ("ok", 1, 0)
    assert pair["bindings"] == {"contact": 4}
    assert pair["paused"] is True and pair["running"] is False


def test_a_run_in_progress_is_shown_running(tmp_path: Path, store: Store) -> None:
    cfg = setup(tmp_path)
    run_id = store.start_run("p", "schedule", "export", False)
    (pair,) = reporting.pair_statuses(cfg, store, daemon_alive=False)
    assert pair["running"] is True
    store.finish_run(run_id, "ok", {})
    (pair,) = reporting.pair_statuses(cfg, store, daemon_alive=False)
    assert pair["running"] is False


def test_the_next_run_is_known_only_while_a_daemon_beats(tmp_path: Path, store: Store) -> None:
    cfg = setup(tmp_path)
    fire = now() + timedelta(minutes=5)
    store.set_next_fire({"p": fire}, "node-a")
    assert reporting.status(cfg, store)["pairs"][0]["next_run"] is None

    started = now()
    store.beat("node-a", 41, "1.0", started)
    store.beat("node-b", 42, "1.1", started)
    assert [d["node"] for d in reporting.daemons(store)] == ["node-b", "node-a"]
    report = reporting.status(cfg, store)
    assert report["daemon"] == {
        "alive": True,
        "node": "node-b",
        "pid": 42,
        "version": "1.1",
        "since": reporting.daemons(store)[0]["since"],
    }
    shown = report["pairs"][0]["next_run"]
    assert shown is not None and shown.replace(tzinfo=fire.tzinfo) == fire

    store.forget_daemon("node-a")
    store.forget_daemon("node-b")
    assert reporting.daemons(store) == []
    assert reporting.status(cfg, store)["pairs"][0]["next_run"] is None


def test_a_rate_limit_wait_is_reported_while_it_lasts(tmp_path: Path, store: Store) -> None:
    """Rule 36: the wait a rate-limited system asked for is shown until it is over."""
    cfg = setup(tmp_path)
    left, _ = systems()
    add(2)
    left.rate_limit_after, left.retry_after = 0, 120.0
    limited = runner_for(cfg, store).run("p")
    assert limited.status == "partial" and limited.not_before is not None

    (pair,) = reporting.pair_statuses(cfg, store, daemon_alive=False)
    assert pair["not_before"] == limited.not_before
    later = limited.not_before + timedelta(seconds=1)
    (pair,) = reporting.pair_statuses(cfg, store, daemon_alive=False, at=later)
    assert pair["not_before"] is None


def test_history_is_newest_first_limited_and_per_pair(tmp_path: Path, store: Store) -> None:
    cfg = setup(tmp_path)
    ids = []
    for i in range(3):
        add(1, start=i)
        ids.append(runner_for(cfg, store).run("p").run_id)
    assert [r["id"] for r in reporting.history(store, "p", 2)] == ids[::-1][:2]
    assert [r["id"] for r in reporting.history(store)] == ids[::-1]
    assert reporting.history(store, "other") == []
    seconds = [reporting.run_seconds(r) for r in reporting.history(store)]
    assert all(s is not None and s >= 0 for s in seconds)

    open_run = store.start_run("p", "manual", "export", False)
    newest = reporting.history(store, "p", 1)[0]
    assert newest["id"] == open_run and reporting.run_seconds(newest) is None


def test_run_detail_gives_every_item_its_error_and_parsed_detail(
    tmp_path: Path, store: Store
) -> None:
    cfg = setup(tmp_path)
    left, right = systems()
    first, _ = add(2)
    assert runner_for(cfg, store).run("p").status == "ok"
    left.edit("contact", first, phone="1")
    (target,) = [i for i, row in right.rows("contact").items() if row["email"] == "c0@x.org"]
    right.write_errors[target] = RecordError(ErrorKind.INVALID, "refused")
    add(1, start=10)
    left.expire_cursor = 1
    result = runner_for(cfg, store).run("p")
    assert result.run_id is not None and result.counts["failed"] == 1

    detail = reporting.run_detail(store, result.run_id)
    assert detail is not None
    assert (detail["id"], detail["pair"], detail["status"]) == (result.run_id, "p", "partial")
    relist = [i for i in detail["items"] if i["action"] == "relist"]
    assert [i["detail"] for i in relist] == [
        {"reason": "the cursor expired: every record is listed instead"}
    ]
    failed = [i for i in detail["items"] if i["outcome"] == "failed"]
    assert [(i["source_id"], i["target_id"]) for i in failed] == [(first, target)]
    assert failed[0]["error"] is not None and "refused" in failed[0]["error"]
    assert reporting.run_detail(store, result.run_id + 100) is None


def test_finished_run_waits_for_the_run_to_close_and_sums_it_up(
    tmp_path: Path, store: Store
) -> None:
    setup(tmp_path)
    since = now() - timedelta(seconds=1)
    assert reporting.finished_run(store, "p", "trigger", since) is None
    run_id = store.start_run("p", "trigger", "export", False)
    assert reporting.finished_run(store, "p", "trigger", since) is None
    store.finish_run(run_id, "partial", {"created": 2, "failed": 1}, "one refused")
    assert reporting.finished_run(store, "p", "schedule", since) is None
    finished = reporting.finished_run(store, "p", "trigger", since)
    assert finished is not None
    assert reporting.run_summary(finished) == {
        "id": run_id,
        "pair": "p",
        "status": "partial",
        "error": "one refused",
        "counts": {
            "created": 2,
            "updated": 0,
            "deleted": 0,
            "bound": 0,
            "skipped": 0,
            "failed": 1,
            "conflicts": 0,
        },
    }
