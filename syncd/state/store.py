"""The state store's queries.

The engine's hot path asks for bindings a page at a time (one IN-list statement) and
records the outcome of a batch in one transaction of bulk statements (executemany), so
a run costs a few statements per page, not a round trip per record. The CLI reads and
writes the same tables: it controls the daemon only through this store.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, TypeVar

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from syncd.errors import UserError
from syncd.kit.jsontext import decode
from syncd.kit.sqlbulk import insert_rows, insert_tuples, update_tuples
from syncd.state.claim import claim, ensure_pair_state, interrupt
from syncd.state.connect import make_engine
from syncd.state.errors import INTEGRITY, StoreError, from_dbapi, translated
from syncd.state.items import PlainItem, pack_items, unpack_items
from syncd.state.migrate import check_current, upgrade
from syncd.state.models import (
    BINDING,
    HEARTBEAT,
    INTENT,
    PAIR_STATE,
    RETRY,
    RUN,
    RUN_ITEM,
)
from syncd.state.queries import Queries

CHUNK = 500

COUNTS = ("created", "updated", "deleted", "bound", "skipped", "failed", "conflicts")


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def other(side: str) -> str:
    """The opposite side."""
    return "right" if side == "left" else "left"


@dataclass(slots=True)
class BindingRow:
    """A binding as the engine works with it (a plain object, not an ORM instance)."""

    id: int | None
    entity: str
    left_id: str
    right_id: str
    left_hash: str | None = None
    right_hash: str | None = None
    left_data: str | None = None
    right_data: str | None = None
    left_version: str | None = None
    right_version: str | None = None
    left_deleted: bool = False
    right_deleted: bool = False
    #: set when a side's record id changed (a re-created record): only then does
    #: the store rewrite the ids, whose unique indexes make that ten times dearer
    moved: bool = field(default=False, compare=False)

    def id_on(self, side: str) -> str:
        """The bound record's id on ``side``."""
        return self.left_id if side == "left" else self.right_id

    def data_on(self, side: str) -> dict[str, Any]:
        """The last synced snapshot of ``side`` (canonical fields)."""
        raw = self.left_data if side == "left" else self.right_data
        return decode(raw) if raw else {}

    def get(self, attr: str, side: str) -> Any:
        """Read ``left_<attr>`` or ``right_<attr>``."""
        return getattr(self, f"{side}_{attr}")

    def set(self, attr: str, side: str, value: Any) -> None:
        """Write ``left_<attr>`` or ``right_<attr>``."""
        if attr == "id":
            self.moved = True
        setattr(self, f"{side}_{attr}", value)

    def snapshot(self, side: str, data: str, digest: str | None, version: str | None) -> None:
        """Record ``side``'s record as synced now: its serialised fields, their hash,
        its version, not deleted (one call for what an update sets per record)."""
        if side == "left":
            self.left_data, self.left_hash, self.left_version = data, digest, version
            self.left_deleted = False
        else:
            self.right_data, self.right_hash, self.right_version = data, digest, version
            self.right_deleted = False

    def values(self) -> dict[str, Any]:
        """Column values for an insert or update."""
        return dict(zip(BINDING_VALUES, _binding_values(self), strict=True))


#: The columns of a binding row that :class:`BindingRow` holds, but its id.
BINDING_VALUES = (
    "entity",
    "left_id",
    "right_id",
    *(
        f"{side}_{name}"
        for name in ("hash", "data", "version", "deleted")
        for side in ("left", "right")
    ),
)
#: The columns of both sides' snapshots.
BINDING_SNAPSHOT = BINDING_VALUES[3:]
#: A binding's values in :data:`BINDING_VALUES` order (one C call per row).
_binding_values = attrgetter(*BINDING_VALUES)
_binding_snapshot = attrgetter(*BINDING_SNAPSHOT)

_BINDING_COLUMNS = [BINDING.c.id, *(BINDING.c[k] for k in BINDING_VALUES)]


@dataclass
class BatchCommit:
    """Everything one batch changes in the store, written in one transaction."""

    new_bindings: list[BindingRow] = field(default_factory=list)
    changed_bindings: list[BindingRow] = field(default_factory=list)
    dropped_bindings: list[int] = field(default_factory=list)
    #: run items: dicts, or the plain ones as :data:`~syncd.state.items.PlainItem`
    items: list[dict[str, Any] | PlainItem] = field(default_factory=list)
    done_intents: list[str] = field(default_factory=list)
    retries: list[dict[str, Any]] = field(default_factory=list)
    cleared: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    cursors: dict[tuple[str, str], str] = field(default_factory=dict)

    def clear_retry(self, entity: str, side: str, record_id: str) -> None:
        """Forget an earlier failure of a record that has now been handled."""
        self.cleared.setdefault((entity, side), set()).add(record_id)

    def empty(self) -> bool:
        """True when there is nothing to write."""
        return not (
            self.new_bindings
            or self.changed_bindings
            or self.dropped_bindings
            or self.items
            or self.done_intents
            or self.retries
            or self.cleared
            or self.cursors
        )


T = TypeVar("T")


def _chunks(values: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


@translated
class Store:
    """All reads and writes of syncd's state, for one pair at a time or for the CLI.

    Database errors are raised as :class:`~syncd.state.errors.StoreError` (one line,
    no SQL or record values). A ``readonly`` store writes nothing, not even a schema
    upgrade: a schema older than this syncd is refused with a one-line error."""

    def __init__(self, url: str, *, migrate: bool = True, readonly: bool = False) -> None:
        self.url = url
        self.readonly = readonly
        self.engine: Engine = make_engine(url, readonly=readonly)
        try:
            self.queries = Queries(self.engine.dialect, ("id", *BINDING_VALUES), COUNTS)
            if readonly:
                check_current(self.engine, self.shown_url)
            elif migrate:
                upgrade(self.engine)
        except DBAPIError as exc:
            self.engine.dispose()
            reason = from_dbapi(exc, self.engine.dialect.name).reason
            raise UserError(f"cannot open the state store {self.shown_url}: {reason}") from None

    @property
    def shown_url(self) -> str:
        """The store's URL without its password, for messages."""
        return make_url(self.url).render_as_string(hide_password=True)

    def close(self) -> None:
        """Release the store's connections."""
        self.engine.dispose()

    # -- cursors ----------------------------------------------------------------------

    def cursor(self, pair: str, side: str, entity: str) -> str | None:
        """The saved cursor of one side's entity, or None before the first run."""
        values = {"pair": pair, "side": side, "entity": entity}
        with self.engine.connect() as conn:
            return conn.execute(self.queries.cursor_value, values).scalar_one_or_none()

    # -- bindings ---------------------------------------------------------------------

    def bindings_for(
        self, pair: str, entity: str, side: str, ids: Iterable[str]
    ) -> dict[str, BindingRow]:
        """Bindings whose ``side`` id is one of ``ids``, keyed by that id."""
        wanted = list(dict.fromkeys(ids))
        stmt = self.queries.bindings_by[side]
        found: dict[str, BindingRow] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(wanted):
                values = {"pair": pair, "entity": entity, "ids": chunk}
                for row in conn.execute(stmt, values):
                    binding = BindingRow(*row)
                    found[binding.id_on(side)] = binding
        return found

    def iter_bindings(
        self, pair: str, entity: str | None = None, chunk: int = 2000
    ) -> Iterator[BindingRow]:
        """Every binding of a pair (optionally of one entity), streamed in id order."""
        last = 0
        with self.engine.connect() as conn:
            while True:
                stmt = select(*_BINDING_COLUMNS).where(BINDING.c.pair == pair, BINDING.c.id > last)
                if entity:
                    stmt = stmt.where(BINDING.c.entity == entity)
                rows = conn.execute(stmt.order_by(BINDING.c.id).limit(chunk)).all()
                if not rows:
                    return
                for row in rows:
                    yield BindingRow(*row)
                last = rows[-1][0]

    def has_bindings(self, pair: str, entity: str) -> bool:
        """True when the pair has bound any record of ``entity``."""
        values = {"pair": pair, "entity": entity}
        with self.engine.connect() as conn:
            return conn.execute(self.queries.has_bindings, values).first() is not None

    def count_bindings(self, pair: str) -> dict[str, int]:
        """Bindings per entity type."""
        stmt = (
            select(BINDING.c.entity, func.count())
            .where(BINDING.c.pair == pair)
            .group_by(BINDING.c.entity)
        )
        with self.engine.connect() as conn:
            return {entity: count for entity, count in conn.execute(stmt)}

    def link(self, pair: str, entity: str, pairs: Sequence[tuple[str, str]]) -> int:
        """Bind existing records by hand (``bindings link`` / ``import``), all or none.

        An id that is already bound, or listed twice, is refused with the reason."""
        lefts = [left for left, _ in pairs]
        rights = [right for _, right in pairs]
        for side, ids in (("left", lefts), ("right", rights)):
            seen: set[str] = set()
            for record_id in ids:
                if record_id in seen:
                    raise UserError(f"{side} id {record_id!r} is listed twice")
                seen.add(record_id)
            taken = self.bindings_for(pair, entity, side, ids)
            if taken:
                record_id, binding = next(iter(taken.items()))
                raise UserError(
                    f"{entity} {side} id {record_id!r} is already bound "
                    f"({binding.left_id} <-> {binding.right_id}); unlink it first"
                )
        stamp = now()
        rows = [
            {
                **BindingRow(None, entity, left, right).values(),
                "pair": pair,
                "updated_at": stamp,
            }
            for left, right in pairs
        ]
        try:
            with self.engine.begin() as conn:
                for chunk in _chunks(rows):
                    conn.execute(BINDING.insert(), list(chunk))
        except StoreError as exc:
            if exc.kind != INTEGRITY:
                raise
            raise UserError("a record is already bound (changed concurrently); try again") from None
        return len(rows)

    def unlink(self, pair: str, entity: str, side: str, record_id: str) -> BindingRow | None:
        """Remove the binding of one record; returns what was removed."""
        found = self.bindings_for(pair, entity, side, [record_id]).get(record_id)
        if found is not None:
            with self.engine.begin() as conn:
                conn.execute(delete(BINDING).where(BINDING.c.id == found.id))
        return found

    # -- batches ----------------------------------------------------------------------

    def commit(self, pair: str, run_id: int, batch: BatchCommit) -> None:
        """Record one batch's outcome in a single transaction."""
        if batch.empty():
            return
        stamp = now()
        with self.engine.begin() as conn:
            for chunk in _chunks(batch.dropped_bindings):
                conn.execute(delete(BINDING).where(BINDING.c.id.in_(chunk)))
            stamped = {"updated_at": stamp}
            changed = batch.changed_bindings
            # a binding whose ids stayed (nearly all) is updated in its snapshots only
            for columns, values, bindings in (
                (BINDING_VALUES, _binding_values, [b for b in changed if b.moved]),
                (BINDING_SNAPSHOT, _binding_snapshot, [b for b in changed if not b.moved]),
            ):
                rows = [(*values(b), b.id) for b in bindings]
                update_tuples(conn, BINDING, columns, "id", rows, stamped)
            if batch.new_bindings:
                rows = [_binding_values(b) for b in batch.new_bindings]
                constants = {"pair": pair, "updated_at": stamp}
                insert_tuples(conn, BINDING, BINDING_VALUES, rows, constants)
            insert_rows(conn, RUN_ITEM, pack_items(batch.items), {"run_id": run_id})
            for chunk in _chunks(batch.done_intents):
                conn.execute(delete(INTENT).where(INTENT.c.key.in_(chunk)))
            self._write_retries(conn, pair, batch, stamp)
            for (side, entity), value in batch.cursors.items():
                self._save_cursor(conn, pair, side, entity, value, stamp)

    def _write_retries(self, conn: Any, pair: str, batch: BatchCommit, stamp: datetime) -> None:
        cleared = dict(batch.cleared)
        for retry in batch.retries:
            cleared.setdefault((retry["entity"], retry["side"]), set()).add(retry["record_id"])
        for (entity, side), ids in cleared.items():
            for chunk in _chunks(sorted(ids)):
                conn.execute(
                    delete(RETRY).where(
                        RETRY.c.pair == pair,
                        RETRY.c.entity == entity,
                        RETRY.c.side == side,
                        RETRY.c.record_id.in_(chunk),
                    )
                )
        if batch.retries:
            rows = [{**r, "pair": pair, "updated_at": stamp} for r in batch.retries]
            conn.execute(RETRY.insert(), rows)

    def _save_cursor(
        self, conn: Any, pair: str, side: str, entity: str, value: str, stamp: datetime
    ) -> None:
        values = {"pair": pair, "side": side, "entity": entity, "value": value, "updated_at": stamp}
        done = conn.execute(self.queries.cursor_update, values)
        if done.rowcount == 0:
            conn.execute(self.queries.cursor_insert, values)

    # -- intents and retries ----------------------------------------------------------

    def add_intents(self, pair: str, intents: Sequence[dict[str, Any]]) -> None:
        """Record creates about to be sent, committed before they are sent."""
        if not intents:
            return
        stamp = now()
        with self.engine.begin() as conn:
            conn.execute(
                INTENT.insert(), [{**i, "pair": pair, "created_at": stamp} for i in intents]
            )

    def open_intents(self, pair: str, entity: str) -> list[dict[str, Any]]:
        """Creates of an earlier run whose outcome was never recorded."""
        values = {"pair": pair, "entity": entity}
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(self.queries.open_intents, values)]

    def drop_intents(self, keys: Sequence[str]) -> None:
        """Forget intents that turned out never to have been carried out."""
        with self.engine.begin() as conn:
            for chunk in _chunks(keys):
                conn.execute(delete(INTENT).where(INTENT.c.key.in_(chunk)))

    def retries(self, pair: str, entity: str, side: str) -> list[str]:
        """Ids of records whose last attempt failed with a retryable error."""
        values = {"pair": pair, "entity": entity, "side": side, "permanent": False}
        with self.engine.connect() as conn:
            return list(conn.execute(self.queries.retry_ids, values).scalars())

    def permanent_failures_exist(self, pair: str, entity: str, side: str) -> bool:
        """True when some record of this pair, entity and side failed permanently."""
        values = {"pair": pair, "entity": entity, "side": side, "permanent": True}
        with self.engine.connect() as conn:
            return conn.execute(self.queries.retry_exists, values).first() is not None

    def permanent_failures(
        self, pair: str, entity: str, side: str, ids: Sequence[str]
    ) -> dict[str, str | None]:
        """For records among ``ids`` that failed permanently: id -> content hash then."""
        found: dict[str, str | None] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(ids):
                stmt = select(RETRY.c.record_id, RETRY.c.hash).where(
                    RETRY.c.pair == pair,
                    RETRY.c.entity == entity,
                    RETRY.c.side == side,
                    RETRY.c.permanent.is_(True),
                    RETRY.c.record_id.in_(chunk),
                )
                found.update({rid: digest for rid, digest in conn.execute(stmt)})
        return found

    # -- runs -------------------------------------------------------------------------

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

    # -- pair control -----------------------------------------------------------------

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
        return _aware(value) if value is not None else None

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

    # -- daemons ----------------------------------------------------------------------

    def beat(self, node: str, pid: int, version: str, started_at: datetime) -> None:
        """Record that the daemon ``node`` is alive now."""
        values = {"pid": pid, "version": version, "started_at": started_at, "seen_at": now()}
        with self.engine.begin() as conn:
            done = conn.execute(update(HEARTBEAT).where(HEARTBEAT.c.node == node).values(**values))
            if done.rowcount == 0:
                conn.execute(HEARTBEAT.insert().values(node=node, **values))

    def forget_daemon(self, node: str) -> None:
        """Remove a daemon's heartbeat as it stops."""
        with self.engine.begin() as conn:
            conn.execute(delete(HEARTBEAT).where(HEARTBEAT.c.node == node))

    def daemons(self, fresh_seconds: float) -> list[dict[str, Any]]:
        """Daemons whose heartbeat is newer than ``fresh_seconds``."""
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(select(HEARTBEAT))]
        cutoff = now().timestamp() - fresh_seconds
        return [r for r in rows if _aware(r["seen_at"]).timestamp() >= cutoff]

    def runs_since(self, pair: str, trigger: str, since: datetime) -> list[dict[str, Any]]:
        """Runs of ``pair`` with ``trigger`` started at or after ``since``."""
        stmt = (
            select(RUN)
            .where(RUN.c.pair == pair, RUN.c.trigger == trigger, RUN.c.started_at >= since)
            .order_by(RUN.c.id)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]


def _aware(stamp: datetime) -> datetime:
    """A stored time as timezone-aware UTC (SQLite hands back naive times)."""
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)
