"""Running a write batch: one transaction per batch, narrowed down when the database
refuses a row, so that one bad row costs one error result instead of the batch."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, exc

from syncd.plugin.connector import ErrorKind, RecordError, WriteResult

from .database import Database, record_error

#: Most ids in one ``IN (...)`` list.
CHUNK = 500


@dataclass(slots=True)
class PendingRow:
    """One item of a batch on its way to the database: its position in the batch, id
    (as given and as the id column's value), column values and expected version."""

    index: int
    key: Any = None
    record_id: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    version: str | None = None


Statement = Callable[[Connection, Sequence[PendingRow]], dict[int, WriteResult]]


class Redo(Exception):
    """Raised by a fast statement when its result cannot be trusted row by row (a row
    changed or vanished meanwhile): the transaction is rolled back and the rows are
    written again with the exact, slower statement."""


def run_batch(
    db: Database, rows: Sequence[PendingRow], statement: Statement, exact: Statement | None = None
) -> dict[int, WriteResult]:
    """Run ``statement`` on all rows in one transaction; results by row index.

    If the database refuses a row, the transaction is rolled back and each half is
    tried on its own, down to single rows: one bad row among a thousand costs some
    twenty transactions, not a thousand. If ``statement`` raises :class:`Redo`, the
    rows are run again with ``exact``.
    """
    if not rows:
        return {}
    try:
        with db.begin() as conn:
            return statement(conn, rows)
    except Redo:
        if exact is None:
            raise
        return run_batch(db, rows, exact)
    except exc.DBAPIError as error:  # only record errors get past db.begin()
        if len(rows) == 1:
            return {rows[0].index: WriteResult(rows[0].record_id, error=record_error(error))}
    middle = len(rows) // 2
    return run_batch(db, rows[:middle], statement, exact) | run_batch(
        db, rows[middle:], statement, exact
    )


def invalid(record_id: str | None, message: str) -> WriteResult:
    """A result for a row whose values cannot be stored."""
    return WriteResult(id=record_id, error=RecordError(ErrorKind.INVALID, message))


def not_found(entity: str, record_id: str | None) -> WriteResult:
    """A result for a row that does not exist (or is soft-deleted)."""
    error = RecordError(ErrorKind.NOT_FOUND, f"{entity} {record_id} does not exist")
    return WriteResult(id=record_id, error=error)


def conflict(record_id: str | None) -> WriteResult:
    """A result for a row changed since the version the engine read."""
    error = RecordError(ErrorKind.CONFLICT, "changed since it was read", retryable=True)
    return WriteResult(id=record_id, error=error)
