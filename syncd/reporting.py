"""Plain data about pairs, daemons, runs and their items, computed from a configuration
and a state store.

The CLI prints what these functions return (``syncd status``, ``history``, ``show``,
``trigger --wait``); a web page or a metrics endpoint can serve the same data. Nothing
here prints or formats text, and nothing writes to the store.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, NotRequired, TypedDict, cast

from syncd.config import Config
from syncd.daemon.service import ALIVE_SECONDS
from syncd.state import Store
from syncd.state.rows import COUNTS, aware, now


class Run(TypedDict):
    """One run as the state store keeps it: what started it, its outcome and counts."""

    id: int
    pair: str
    trigger: str
    mode: str
    full: bool
    status: str
    started_at: datetime
    ended_at: datetime | None
    created: int
    updated: int
    deleted: int
    bound: int
    skipped: int
    failed: int
    conflicts: int
    error: str | None
    pid: int | None
    host: str | None


class Item(TypedDict):
    """What a run did with one record; ``detail`` is the parsed detail, if any."""

    id: int
    run_id: int
    entity: str
    action: str
    outcome: str
    source_side: str
    source_id: str | None
    target_id: str | None
    error: str | None
    detail: dict[str, Any] | None


class RunDetail(Run):
    """One run with every record's outcome (``syncd show``)."""

    items: list[Item]


class RunSummary(TypedDict):
    """A finished run in brief (``syncd trigger --wait``)."""

    id: int
    pair: str
    status: str
    error: str | None
    counts: dict[str, int]


class DaemonInfo(TypedDict):
    """A daemon whose heartbeat is recent: where it runs and since when."""

    node: str
    pid: int
    version: str
    since: datetime
    seen_at: datetime


class DaemonStatus(TypedDict):
    """Whether a daemon runs, and the most recently seen one's particulars if so."""

    alive: bool
    node: NotRequired[str]
    pid: NotRequired[int]
    version: NotRequired[str]
    since: NotRequired[datetime]


class PairStatus(TypedDict):
    """One pair's line of ``syncd status`` (also its ``--json`` object).

    ``next_run`` is known only while a daemon runs; ``not_before`` is set while a
    rate-limited system's wait lasts (no scheduled run starts before it)."""

    pair: str
    left: str
    right: str
    mode: str
    schedule: str | None
    paused: bool
    running: bool
    next_run: datetime | None
    not_before: datetime | None
    last_run: Run | None
    bindings: dict[str, int]


class Status(TypedDict):
    """``syncd status``: the daemon and every configured pair."""

    daemon: DaemonStatus
    pairs: list[PairStatus]


def daemons(store: Store) -> list[DaemonInfo]:
    """The daemons alive now (a heartbeat within ``ALIVE_SECONDS``), the most
    recently seen first."""
    alive = sorted(store.daemons(ALIVE_SECONDS), key=lambda d: d["seen_at"], reverse=True)
    return [
        {
            "node": d["node"],
            "pid": d["pid"],
            "version": d["version"],
            "since": d["started_at"],
            "seen_at": d["seen_at"],
        }
        for d in alive
    ]


def daemon_status(store: Store) -> DaemonStatus:
    """Whether a daemon is alive and, if so, the most recently seen one."""
    alive = daemons(store)
    if not alive:
        return {"alive": False}
    d = alive[0]
    return {
        "alive": True,
        "node": d["node"],
        "pid": d["pid"],
        "version": d["version"],
        "since": d["since"],
    }


def pair_statuses(
    config: Config, store: Store, *, daemon_alive: bool, at: datetime | None = None
) -> list[PairStatus]:
    """Every configured pair's state, in the configuration's order.

    ``daemon_alive`` says whether the stored next fire times are current (a stopped
    daemon's are not); ``at`` is the time a rate-limit wait is compared with (now)."""
    moment = at or now()
    states = store.pair_states()
    rows: list[PairStatus] = []
    for name, pair in config.pairs.items():
        last = history(store, name, 1)
        state = states.get(name, {})
        wait = state.get("not_before")
        rows.append(
            {
                "pair": name,
                "left": pair.left,
                "right": pair.right,
                "mode": pair.mode,
                "schedule": pair.schedule_text,
                "paused": bool(state.get("paused")),
                "running": bool(store.running(name)),
                "next_run": state.get("next_fire_at") if daemon_alive else None,
                "not_before": aware(wait) if wait is not None and aware(wait) > moment else None,
                "last_run": last[0] if last else None,
                "bindings": store.count_bindings(name),
            }
        )
    return rows


def status(config: Config, store: Store, at: datetime | None = None) -> Status:
    """The daemon and every pair (``syncd status``)."""
    daemon = daemon_status(store)
    return {
        "daemon": daemon,
        "pairs": pair_statuses(config, store, daemon_alive=daemon["alive"], at=at),
    }


def history(store: Store, pair: str | None = None, limit: int = 20) -> list[Run]:
    """The newest ``limit`` runs, of ``pair`` or of every pair, newest first."""
    return cast(list[Run], store.runs(pair, limit))


def run_seconds(run: Run) -> float | None:
    """How long a run took; None while it runs."""
    if not run["ended_at"]:
        return None
    return (run["ended_at"] - run["started_at"]).total_seconds()


def run_detail(store: Store, run_id: int) -> RunDetail | None:
    """One run and every record's outcome in the order recorded, or None if there is
    no such run."""
    run = store.run(run_id)
    if run is None:
        return None
    items = [
        cast(Item, {**i, "detail": json.loads(i["detail"]) if i["detail"] else None})
        for i in store.run_items(run_id)
    ]
    return cast(RunDetail, {**run, "items": items})


def finished_run(store: Store, pair: str, trigger: str, since: datetime) -> Run | None:
    """The first run of ``pair`` started by ``trigger`` at or after ``since`` that has
    finished, if any (what ``syncd trigger --wait`` waits for)."""
    for run in store.runs_since(pair, trigger, since):
        if run["status"] != "running":
            return cast(Run, run)
    return None


def run_summary(run: Run) -> RunSummary:
    """A run's id, pair, outcome, error and counts."""
    return {
        "id": run["id"],
        "pair": run["pair"],
        "status": run["status"],
        "error": run["error"],
        "counts": {k: cast(dict[str, int], run)[k] for k in COUNTS},
    }
