"""How the CLI steers the daemon through the store: pauses, run requests, next fire
times, and the daemons' heartbeats."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam, delete, select, update

from syncd.kit.sqlbulk import update_else_insert
from syncd.state.claim import ensure_pair_state
from syncd.state.errors import translated
from syncd.state.models import HEARTBEAT, PAIR_STATE
from syncd.state.queries import Queries
from syncd.state.rows import aware, now


@translated
class ControlStore:
    """Pair flags, run requests, next fire times and daemon heartbeats."""

    engine: Engine
    queries: Queries

    def pair_states(self) -> dict[str, dict[str, Any]]:
        """Persisted runtime state of every pair that has any."""
        with self.engine.connect() as conn:
            return {r.pair: dict(r._mapping) for r in conn.execute(select(PAIR_STATE))}

    def set_paused(self, pairs: Sequence[str], paused: bool) -> None:
        """Pause or resume pairs; survives restarts."""
        with self.engine.begin() as conn:
            for pair in pairs:
                self._set_state(conn, pair, paused=paused)

    def request_run(self, pair: str, full: bool) -> datetime:
        """Ask the running daemon for a run of ``pair`` (``syncd trigger``)."""
        stamp = now()
        self._upsert_state(pair, run_requested_at=stamp, run_request_full=full)
        return stamp

    def take_requests(self) -> list[tuple[str, bool]]:
        """The pairs whose run was requested, each request cleared as it is taken
        (a request made meanwhile is not lost: it carries another time)."""
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(
                    PAIR_STATE.c.pair,
                    PAIR_STATE.c.run_requested_at,
                    PAIR_STATE.c.run_request_full,
                ).where(PAIR_STATE.c.run_requested_at.is_not(None))
            ).all()
            taken = []
            for pair, stamp, full in rows:
                done = conn.execute(
                    update(PAIR_STATE)
                    .where(PAIR_STATE.c.pair == pair, PAIR_STATE.c.run_requested_at == stamp)
                    .values(run_requested_at=None, run_request_full=False)
                )
                if done.rowcount:
                    taken.append((pair, bool(full)))
        return taken

    def is_paused(self, pair: str) -> bool:
        """True when ``pair`` is paused."""
        with self.engine.connect() as conn:
            value = conn.execute(
                select(PAIR_STATE.c.paused).where(PAIR_STATE.c.pair == pair)
            ).scalar()
        return bool(value)

    def set_not_before(self, pair: str, at: datetime | None) -> None:
        """Start no scheduled run of ``pair`` before ``at`` (the wait a rate-limited
        system asked for); survives restarts. None lifts it."""
        self._upsert_state(pair, not_before=at)

    def not_before(self, pair: str) -> datetime | None:
        """The earliest time a scheduled run of ``pair`` may start, if one was set."""
        with self.engine.connect() as conn:
            value = conn.execute(
                select(PAIR_STATE.c.not_before).where(PAIR_STATE.c.pair == pair)
            ).scalar()
        return aware(value) if value is not None else None

    def set_next_fire(self, times: dict[str, datetime | None], owner: str) -> None:
        """Record when the daemon ``owner`` will next run each pair (one transaction)."""
        with self.engine.begin() as conn:
            for pair, stamp in times.items():
                self._set_state(conn, pair, next_fire_at=stamp, owner=owner)

    def _upsert_state(self, pair: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            self._set_state(conn, pair, **values)

    def _set_state(self, conn: Any, pair: str, **values: Any) -> None:
        """Set columns of ``pair``'s runtime state, creating its row if it has none (a
        claim may create it at the same moment: the insert gives way)."""
        conn.execute(ensure_pair_state(self.engine.dialect.name, pair))
        conn.execute(update(PAIR_STATE).where(PAIR_STATE.c.pair == pair).values(**values))

    def beat(self, node: str, pid: int, version: str, started_at: datetime) -> None:
        """Record that the daemon ``node`` is alive now."""
        values = {"pid": pid, "version": version, "started_at": started_at, "seen_at": now()}
        change = update(HEARTBEAT).where(HEARTBEAT.c.node == bindparam("key")).values(**values)
        add = HEARTBEAT.insert().values(node=bindparam("key"), **values)
        with self.engine.begin() as conn:
            update_else_insert(conn, change, add, {"key": node})

    def forget_daemon(self, node: str) -> None:
        """Remove a daemon's heartbeat as it stops."""
        with self.engine.begin() as conn:
            conn.execute(delete(HEARTBEAT).where(HEARTBEAT.c.node == node))

    def daemons(self, fresh_seconds: float) -> list[dict[str, Any]]:
        """Daemons whose heartbeat is newer than ``fresh_seconds``."""
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(select(HEARTBEAT))]
        cutoff = now().timestamp() - fresh_seconds
        return [r for r in rows if aware(r["seen_at"]).timestamp() >= cutoff]
