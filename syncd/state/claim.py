"""Claiming a pair for a run: one run per pair at a time, across processes.

The check for a running run and the insert of the new one happen in one transaction
that serialises every claimer of the same pair: on SQLite it begins with
``BEGIN IMMEDIATE`` (the database's write lock); on PostgreSQL and MariaDB it locks
the pair's ``pair_state`` row with ``SELECT ... FOR UPDATE`` (inserting the row
first if the pair has none). Two ``syncd sync`` processes, two daemons, or a daemon
and a CLI run cannot both pass the check. A run still marked running whose process
on this host is gone was interrupted: it is closed as such and the claim goes on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from syncd.errors import UserError
from syncd.state.connect import IMMEDIATE
from syncd.state.models import PAIR_STATE, RUN
from syncd.state.queries import Queries


class AlreadyRunning(UserError):
    """A live process is running the pair: this run does not start."""


def process_alive(pid: int) -> bool:
    """True when a process ``pid`` exists on this host."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim(
    engine: Engine,
    queries: Queries,
    values: dict[str, Any],
    alive: Callable[[int], bool] = process_alive,
) -> int:
    """Insert the run described by ``values`` (its ``pair``, ``host``, ...) unless a
    live run of the pair exists; returns the new run's id.

    Raises :class:`AlreadyRunning` naming the live run. Runs of the pair still
    marked running on this host whose process is gone are marked interrupted."""
    pair, host = values["pair"], values["host"]
    with locked(engine, pair) as conn:
        stale = []
        for run in conn.execute(queries.running, {"pair": pair}).mappings():
            if run["host"] != host:
                continue
            if run["pid"] and alive(run["pid"]):
                raise AlreadyRunning(
                    f"pair {pair} is already running (run {run['id']}, pid {run['pid']})"
                )
            stale.append(run["id"])
        if stale:
            conn.execute(interrupt(stale, values["started_at"]))
        result = conn.execute(queries.start_run, values)
        return int(result.scalar_one() if queries.returning else result.lastrowid)


def interrupt(run_ids: list[int], stamp: Any) -> Any:
    """The statement closing runs whose process died before it could close them."""
    return (
        update(RUN)
        .where(RUN.c.id.in_(run_ids), RUN.c.status == "running")
        .values(status="interrupted", ended_at=stamp, error="the process was stopped")
    )


@contextmanager
def locked(engine: Engine, pair: str) -> Iterator[Connection]:
    """A transaction holding the lock that serialises the claims of ``pair``;
    committed when the block ends, rolled back if it raises."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.execution_options(**{IMMEDIATE: True})
            with conn.begin():
                yield conn
            return
        # READ COMMITTED: what the lock's previous holder committed is seen (MariaDB's
        # REPEATABLE READ could read from an older snapshot)
        conn.execution_options(isolation_level="READ COMMITTED")
        with conn.begin():
            conn.execute(ensure_pair_state(engine.dialect.name, pair))
            row = select(PAIR_STATE.c.pair).where(PAIR_STATE.c.pair == pair)
            conn.execute(row.with_for_update())
            yield conn


def ensure_pair_state(dialect: str, pair: str) -> Any:
    """An insert of ``pair``'s ``pair_state`` row that does nothing if it exists."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(PAIR_STATE).values(pair=pair).on_conflict_do_nothing()
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(PAIR_STATE).values(pair=pair).on_conflict_do_nothing()
    if dialect == "mysql":
        return insert(PAIR_STATE).values(pair=pair).prefix_with("IGNORE")
    raise NotImplementedError(f"the state store does not support {dialect}")
