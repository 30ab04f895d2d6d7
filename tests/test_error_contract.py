"""The connector contract's run-level errors, kept by the engine and the daemon: an
expired cursor becomes a full listing, a rate limit ends a run early and holds the
pair's schedule until the system's ``retry_after``, and a run-stopping error says
whether it is tried again. Run against in-memory systems through the engine's API and
an in-process daemon."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from conftest import make_config, systems
from syncd.config import Config
from syncd.daemon.service import Daemon
from syncd.engine import RunResult
from syncd.engine_setup import runner_for
from syncd.plugin.connector import AuthError, Page
from syncd.state import Store
from syncd.state.store import now
from syncd_memory import MemoryConnector, MemorySystem

SMALL_PAGES = {"type": "memory", "system": "left", "page_size": 2}


def setup(tmp_path: Path, **pair: Any) -> tuple[Config, MemorySystem, MemorySystem]:
    """An export pair ``p`` of contacts, left listed in pages of two."""
    base: dict[str, Any] = {"mode": "export", "entities": ["contact"]}
    base["match"] = {"contact": ["email"]}
    cfg = make_config(tmp_path, {**base, **pair}, left=SMALL_PAGES)
    left, right = systems()
    return cfg, left, right


def run(cfg: Config, store: Store, **kwargs: Any) -> RunResult:
    return runner_for(cfg, store).run("p", **kwargs)


def emails(system: MemorySystem) -> list[str]:
    return sorted(row["email"] for row in system.rows("contact").values())


def add(system: MemorySystem, count: int, start: int = 0) -> list[str]:
    return [system.put("contact", {"email": f"c{i}@x.org"}) for i in range(start, start + count)]


# -- rule 35: an expired cursor ----------------------------------------------------------


def test_an_expired_cursor_lists_everything_once_and_infers_deletions(
    tmp_path: Path, store: Store
) -> None:
    """Rule 35: when the change feed says its cursor expired (here after one page),
    the engine lists every record instead: changes are synced, a record missing from
    that complete listing is taken for deleted, and the run records the relisting."""
    cfg, left, right = setup(tmp_path, deletes="propagate")
    ids = add(left, 6)
    assert run(cfg, store).status == "ok" and len(right.rows("contact")) == 6

    left.edit("contact", ids[1], email="renamed@x.org")
    left.remove("contact", ids[4])
    left.expire_cursor, left.expire_after = 1, 1
    with capture_logs() as logs:
        result = run(cfg, store)

    assert result.status == "ok", result.error
    assert result.counts["updated"] == 1 and result.counts["deleted"] == 1
    assert emails(right) == sorted(
        ["c0@x.org", "renamed@x.org", "c2@x.org", "c3@x.org", "c5@x.org"]
    )
    assert result.run_id is not None
    relists = [i for i in store.run_items(result.run_id) if i["action"] == "relist"]
    assert [(i["entity"], i["source_side"], i["outcome"]) for i in relists] == [
        ("contact", "left", "ok")
    ]
    assert "cursor expired" in json.loads(relists[0]["detail"])["reason"]
    expired = [e for e in logs if e["event"] == "cursor.expired"]
    assert [(e["side"], e["entity"], e["connector"]) for e in expired] == [
        ("left", "contact", "left")
    ]
    again = run(cfg, store)
    assert again.status == "ok" and sum(again.counts.values()) == 0


def test_a_second_expiry_fails_the_run_and_loses_nothing(tmp_path: Path, store: Store) -> None:
    """Rule 35: the full listing is tried once; when it expires too the run fails with
    the reason, and the next run syncs the change."""
    cfg, left, right = setup(tmp_path)
    ids = add(left, 3)
    run(cfg, store)
    left.edit("contact", ids[0], email="new@x.org")
    left.expire_cursor = 2

    failed = run(cfg, store)
    assert failed.status == "failed"
    assert failed.error is not None and failed.error.startswith("CursorExpiredError:")
    assert "new@x.org" not in emails(right)

    later = run(cfg, store)
    assert later.status == "ok" and later.counts["updated"] == 1
    assert "new@x.org" in emails(right)


def test_a_dry_run_reports_the_relisting(tmp_path: Path, store: Store) -> None:
    """Rule 35: a dry run says it would list everything, and writes nothing."""
    cfg, left, right = setup(tmp_path)
    add(left, 2)
    run(cfg, store)
    add(left, 1, start=10)
    left.expire_cursor = 1
    result = run(cfg, store, dry_run=True)
    assert result.status == "ok" and result.counts["created"] == 1
    assert [i["action"] for i in result.items if i["action"] == "relist"] == ["relist"]
    assert len(right.rows("contact")) == 2


# -- rule 36: a rate limit ----------------------------------------------------------------


def test_a_rate_limited_source_ends_the_run_early_keeping_what_was_read(
    tmp_path: Path, store: Store
) -> None:
    """Rule 36: a source that rate-limits after two pages ends the run as ``partial``
    with the reason and the time to resume; what was read before is written and
    committed, no record failed, and the next run goes on without duplicates."""
    cfg, left, right = setup(tmp_path)
    add(left, 4)
    run(cfg, store)
    add(left, 10, start=100)
    left.rate_limit_after, left.retry_after = 2, 90.0

    before = now()
    limited = run(cfg, store)
    assert limited.status == "partial" and limited.counts["failed"] == 0
    assert limited.counts["created"] == 4
    assert limited.error is not None
    assert limited.error.startswith("rate limited by left; resuming after ")
    wait = store.not_before("p")
    assert wait is not None and limited.not_before == wait
    assert before + timedelta(seconds=89) <= wait <= now() + timedelta(seconds=91)
    assert wait.strftime("%H:%M:%S UTC") in limited.error
    assert len(right.rows("contact")) == 8
    assert store.retries("p", "contact", "left") == []

    left.rate_limit_after = None
    rest = run(cfg, store)
    assert rest.status == "ok" and rest.counts["created"] == 6
    assert emails(right) == emails(left)


def test_a_rate_limited_target_without_retry_after_waits_for_the_schedule(
    tmp_path: Path, store: Store
) -> None:
    """Rule 36: a target that rate-limits its writes without saying for how long ends
    the run as ``partial``, names itself, fails no record and sets no wait."""
    cfg, left, right = setup(tmp_path)
    add(left, 3)
    right.rate_limit_after, right.retry_after = 0, None
    limited = run(cfg, store)
    assert limited.status == "partial" and limited.counts["failed"] == 0
    assert limited.error == "rate limited by right; resuming at the next scheduled run"
    assert limited.not_before is None and store.not_before("p") is None
    assert store.retries("p", "contact", "left") == []

    right.rate_limit_after = None
    assert run(cfg, store).counts["created"] == 3


# -- rule 37: errors that stop a run -------------------------------------------------------


def test_a_run_stopping_error_says_whether_it_is_tried_again(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 37: a retryable connector error (the system is down) fails the run with a
    reason saying the next scheduled run tries again; a permanent one (credentials
    refused) says an operator must act. Neither sets a wait."""
    cfg, left, _right = setup(tmp_path)
    add(left, 1)
    left.down = True
    down = run(cfg, store)
    assert down.status == "failed" and down.error is not None
    assert down.error.startswith("UnavailableError:")
    assert down.error.endswith("(tried again at the next scheduled run)")
    left.down = False

    def refused(
        self: MemoryConnector, entity: str, cursor: str | None, **kw: Any
    ) -> Iterator[Page]:
        raise AuthError("credentials refused")

    monkeypatch.setattr(MemoryConnector, "changes", refused)
    auth = run(cfg, store)
    assert auth.status == "failed"
    assert auth.error == (
        "AuthError: credentials refused (an operator must act; the next scheduled run tries again)"
    )
    assert store.not_before("p") is None


# -- the daemon ---------------------------------------------------------------------------


def _runs(store: Store) -> list[dict[str, Any]]:
    return [r for r in reversed(store.runs("p")) if r["status"] != "running"]


def _wait_for(store: Store, count: int, seconds: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done = _runs(store)
        if len(done) >= count:
            return done
        time.sleep(0.1)
    return _runs(store)


def test_the_daemon_starts_no_scheduled_run_before_the_wait(tmp_path: Path) -> None:
    """Rule 36: a pair scheduled every second whose system rate-limits it for three
    seconds is not run again by its schedule before then, and is after."""
    cfg, left, right = setup(tmp_path, every="1s")
    add(left, 2)
    left.rate_limit_after, left.retry_after = 0, 3.0
    daemon = Daemon(tmp_path / "syncd.toml", cfg)
    store = Store(cfg.state_url)
    try:
        daemon.scheduler.apply(cfg)
        daemon.scheduler.start()
        first = _wait_for(store, 1, 10.0)
        assert [r["status"] for r in first] == ["partial"]
        wait = store.not_before("p")
        assert wait is not None
        left.rate_limit_after = None
        # the schedule fires about twice during the wait and starts nothing
        while now() < wait - timedelta(seconds=0.3):
            time.sleep(0.1)
        assert len(_runs(store)) == 1
        later = _wait_for(store, 2, 10.0)
        assert [r["status"] for r in later[:2]] == ["partial", "ok"]
        started: datetime = later[1]["started_at"]
        assert started.replace(tzinfo=wait.tzinfo) >= wait
        assert len(right.rows("contact")) == 2
    finally:
        daemon.stop()
        daemon.scheduler.shutdown()
        daemon.pool.shutdown(wait=True)
        daemon.store.close()
        store.close()


def test_the_wait_survives_a_restart_and_a_trigger_by_hand_may_run(
    tmp_path: Path, store: Store
) -> None:
    """Rule 36: the wait is kept in the state store, so a new daemon holds the pair's
    scheduled runs too; a run a person asks for (``syncd trigger``) still starts."""
    cfg, left, right = setup(tmp_path)
    add(left, 1)
    store.set_not_before("p", now() + timedelta(minutes=10))
    daemon = Daemon(tmp_path / "syncd.toml", cfg)
    try:
        assert daemon.submit("p", False, "schedule") is False
        assert daemon.submit("p", False, "trigger") is True
        daemon._running["p"].result(timeout=10)
    finally:
        daemon.pool.shutdown(wait=True)
        daemon.store.close()
    assert [r["trigger"] for r in store.runs("p")] == ["trigger"]
    assert len(right.rows("contact")) == 1
