"""Runs and their items: claiming a pair for a run, closing it, and reading the
history back."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from syncd.state.claim import claim, interrupt
from syncd.state.errors import translated
from syncd.state.items import unpack_items
from syncd.state.models import RUN, RUN_ITEM
from syncd.state.queries import Queries
from syncd.state.rows import COUNTS, now


@translated
class RunsStore:
    """Runs of pairs and what each did to every record."""

    engine: Engine
    queries: Queries

    def start_run(self, pair: str, trigger: str, mode: str, full: bool) -> int:
        """Claim ``pair`` and open a run record; returns its id.

        Raises :class:`~syncd.state.claim.AlreadyRunning` while a live process runs
        the pair; see :mod:`syncd.state.claim` for how the claim is made atomic."""
        values = {
            "pair": pair,
            "trigger": trigger,
            "mode": mode,
            "full": full,
            "status": "running",
            "started_at": now(),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            **dict.fromkeys(COUNTS, 0),
        }
        return claim(self.engine, self.queries, values)

    def finish_run(
        self, run_id: int, status: str, counts: dict[str, int], error: str | None = None
    ) -> None:
        """Close a run record with its outcome and counts."""
        values: dict[str, Any] = {k: counts.get(k, 0) for k in COUNTS}
        values.update(id=run_id, status=status, ended_at=now(), error=error)
        with self.engine.begin() as conn:
            conn.execute(self.queries.finish_run, values)

    def running(self, pair: str) -> list[dict[str, Any]]:
        """Runs of a pair still marked running: their id, host and pid."""
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(self.queries.running, {"pair": pair})]

    def mark_interrupted(self, run_ids: Sequence[int]) -> None:
        """Close runs whose process died before it could close them."""
        if not run_ids:
            return
        with self.engine.begin() as conn:
            conn.execute(interrupt(list(run_ids), now()))

    def runs(self, pair: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """The newest runs, newest first."""
        stmt = select(RUN).order_by(RUN.c.id.desc()).limit(limit)
        if pair:
            stmt = stmt.where(RUN.c.pair == pair)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    def run(self, run_id: int) -> dict[str, Any] | None:
        """One run, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(RUN).where(RUN.c.id == run_id)).first()
        return dict(row._mapping) if row else None

    def run_items(self, run_id: int) -> Iterator[dict[str, Any]]:
        """Every item of a run, in the order they were recorded."""
        last = 0
        with self.engine.connect() as conn:
            while True:
                stmt = (
                    select(RUN_ITEM)
                    .where(RUN_ITEM.c.run_id == run_id, RUN_ITEM.c.id > last)
                    .order_by(RUN_ITEM.c.id)
                    .limit(2000)
                )
                rows = [dict(r._mapping) for r in conn.execute(stmt)]
                if not rows:
                    return
                last = rows[-1]["id"]
                for row in rows:
                    yield from unpack_items(row)

    def runs_since(self, pair: str, trigger: str, since: datetime) -> list[dict[str, Any]]:
        """Runs of ``pair`` with ``trigger`` started at or after ``since``."""
        stmt = (
            select(RUN)
            .where(RUN.c.pair == pair, RUN.c.trigger == trigger, RUN.c.started_at >= since)
            .order_by(RUN.c.id)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]
