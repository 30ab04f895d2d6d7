"""The engine's state of a pair: cursors, bindings with their snapshots, the batch
commit that records a batch's outcome in one transaction, write intents and the
retry queue."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, func, select

from syncd.errors import UserError
from syncd.kit.sqlbulk import insert_rows, insert_tuples, update_else_insert, update_tuples
from syncd.state.errors import INTEGRITY, StoreError, translated
from syncd.state.items import pack_items
from syncd.state.models import BINDING, INTENT, RETRY, RUN_ITEM
from syncd.state.queries import Queries
from syncd.state.rows import (
    BINDING_COLUMNS,
    BINDING_SNAPSHOT,
    BINDING_VALUES,
    BatchCommit,
    BindingRow,
    binding_snapshot,
    binding_values,
    chunks,
    now,
)


@translated
class BindingsStore:
    """Cursors, bindings, batch commits, intents and retries of pairs."""

    engine: Engine
    queries: Queries

    def cursor(self, pair: str, side: str, entity: str) -> str | None:
        """The saved cursor of one side's entity, or None before the first run."""
        values = {"pair": pair, "side": side, "entity": entity}
        with self.engine.connect() as conn:
            return conn.execute(self.queries.cursor_value, values).scalar_one_or_none()

    def bindings_for(
        self, pair: str, entity: str, side: str, ids: Iterable[str]
    ) -> dict[str, BindingRow]:
        """Bindings whose ``side`` id is one of ``ids``, keyed by that id."""
        wanted = list(dict.fromkeys(ids))
        stmt = self.queries.bindings_by[side]
        found: dict[str, BindingRow] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(wanted):
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
                stmt = select(*BINDING_COLUMNS).where(BINDING.c.pair == pair, BINDING.c.id > last)
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
                for chunk in chunks(rows):
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

    def commit(self, pair: str, run_id: int, batch: BatchCommit) -> None:
        """Record one batch's outcome in a single transaction."""
        if batch.empty():
            return
        stamp = now()
        with self.engine.begin() as conn:
            for chunk in chunks(batch.dropped_bindings):
                conn.execute(delete(BINDING).where(BINDING.c.id.in_(chunk)))
            stamped = {"updated_at": stamp}
            changed = batch.changed_bindings
            # a binding whose ids stayed (nearly all) is updated in its snapshots only
            for columns, values, bindings in (
                (BINDING_VALUES, binding_values, [b for b in changed if b.moved]),
                (BINDING_SNAPSHOT, binding_snapshot, [b for b in changed if not b.moved]),
            ):
                rows = [(*values(b), b.id) for b in bindings]
                update_tuples(conn, BINDING, columns, "id", rows, stamped)
            if batch.new_bindings:
                rows = [binding_values(b) for b in batch.new_bindings]
                constants = {"pair": pair, "updated_at": stamp}
                insert_tuples(conn, BINDING, BINDING_VALUES, rows, constants)
            insert_rows(conn, RUN_ITEM, pack_items(batch.items), {"run_id": run_id})
            for keys in chunks(batch.done_intents):
                conn.execute(delete(INTENT).where(INTENT.c.key.in_(keys)))
            self._write_retries(conn, pair, batch, stamp)
            for (side, entity), value in batch.cursors.items():
                self._save_cursor(conn, pair, side, entity, value, stamp)

    def _write_retries(self, conn: Any, pair: str, batch: BatchCommit, stamp: datetime) -> None:
        cleared = dict(batch.cleared)
        for retry in batch.retries:
            cleared.setdefault((retry["entity"], retry["side"]), set()).add(retry["record_id"])
        for (entity, side), ids in cleared.items():
            for chunk in chunks(sorted(ids)):
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
        update_else_insert(conn, self.queries.cursor_update, self.queries.cursor_insert, values)

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
            for chunk in chunks(keys):
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
            for chunk in chunks(ids):
                stmt = select(RETRY.c.record_id, RETRY.c.hash).where(
                    RETRY.c.pair == pair,
                    RETRY.c.entity == entity,
                    RETRY.c.side == side,
                    RETRY.c.permanent.is_(True),
                    RETRY.c.record_id.in_(chunk),
                )
                found.update({rid: digest for rid, digest in conn.execute(stmt)})
        return found
