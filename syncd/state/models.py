"""The state store's tables.

The schema is created and upgraded by Alembic (``syncd/migrations``); these models are
its single description. JSON payloads (snapshots, counts, details) are stored as text
so the same schema works on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Table, Text, UniqueConstraint
from sqlmodel import Column, Field, SQLModel


class PairState(SQLModel, table=True):
    """Runtime state of a pair that outlives processes: paused, requested runs."""

    __tablename__ = "pair_state"

    pair: str = Field(primary_key=True, max_length=200)
    paused: bool = False
    run_requested_at: datetime | None = None
    run_request_full: bool = False
    next_fire_at: datetime | None = None
    #: A rate-limited system asked for a pause: no scheduled run starts before this.
    not_before: datetime | None = None
    owner: str | None = Field(default=None, max_length=200)


class CursorRow(SQLModel, table=True):
    """Where the next run reads one side's changes of one entity from."""

    __tablename__ = "cursor"

    pair: str = Field(primary_key=True, max_length=200)
    side: str = Field(primary_key=True, max_length=8)
    entity: str = Field(primary_key=True, max_length=40)
    value: str | None = Field(default=None, sa_column=Column(Text))
    updated_at: datetime


class Binding(SQLModel, table=True):
    """Two records, one on each side, that are the same thing, with what each side
    looked like when they were last in step (snapshot, hash, version)."""

    __tablename__ = "binding"
    __table_args__ = (
        UniqueConstraint("pair", "entity", "left_id", name="uq_binding_left"),
        UniqueConstraint("pair", "entity", "right_id", name="uq_binding_right"),
    )

    id: int | None = Field(default=None, primary_key=True)
    pair: str = Field(max_length=200)
    entity: str = Field(max_length=40)
    left_id: str = Field(max_length=255)
    right_id: str = Field(max_length=255)
    left_hash: str | None = Field(default=None, max_length=40)
    right_hash: str | None = Field(default=None, max_length=40)
    left_data: str | None = Field(default=None, sa_column=Column(Text))
    right_data: str | None = Field(default=None, sa_column=Column(Text))
    left_version: str | None = Field(default=None, max_length=255)
    right_version: str | None = Field(default=None, max_length=255)
    left_deleted: bool = False
    right_deleted: bool = False
    updated_at: datetime


class Run(SQLModel, table=True):
    """One run of a pair, with its counts and outcome."""

    __tablename__ = "run"
    __table_args__ = (Index("ix_run_pair_id", "pair", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    pair: str = Field(max_length=200)
    trigger: str = Field(max_length=20)
    mode: str = Field(max_length=10)
    full: bool = False
    status: str = Field(max_length=12)
    started_at: datetime
    ended_at: datetime | None = None
    created: int = 0
    updated: int = 0
    deleted: int = 0
    bound: int = 0
    skipped: int = 0
    failed: int = 0
    conflicts: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text))
    pid: int | None = None
    host: str | None = Field(default=None, max_length=255)


class RunItem(SQLModel, table=True):
    """What a run did with one record: the action, the outcome and any error."""

    __tablename__ = "run_item"
    __table_args__ = (Index("ix_run_item_run", "run_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int
    entity: str = Field(max_length=40)
    action: str = Field(max_length=12)
    outcome: str = Field(max_length=8)
    source_side: str = Field(max_length=8)
    source_id: str | None = Field(default=None, max_length=255)
    target_id: str | None = Field(default=None, max_length=255)
    error: str | None = Field(default=None, sa_column=Column(Text))
    detail: str | None = Field(default=None, sa_column=Column(Text))


class Intent(SQLModel, table=True):
    """A create about to be sent. Written before the create and removed with the
    binding it produced, so a crash in between is resolved on the next run."""

    __tablename__ = "intent"
    __table_args__ = (Index("ix_intent_pair", "pair", "entity"),)

    key: str = Field(primary_key=True, max_length=64)
    pair: str = Field(max_length=200)
    entity: str = Field(max_length=40)
    target_side: str = Field(max_length=8)
    source_id: str = Field(max_length=255)
    source_data: str = Field(sa_column=Column(Text, nullable=False))
    target_data: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime


class Retry(SQLModel, table=True):
    """A record whose last sync failed. Retryable failures are fetched again at the
    next run; permanent ones wait until the record's content (``hash``) changes."""

    __tablename__ = "retry"

    pair: str = Field(primary_key=True, max_length=200)
    entity: str = Field(primary_key=True, max_length=40)
    side: str = Field(primary_key=True, max_length=8)
    record_id: str = Field(primary_key=True, max_length=255)
    permanent: bool = False
    hash: str | None = Field(default=None, max_length=40)
    attempts: int = 1
    error: str | None = Field(default=None, sa_column=Column(Text))
    updated_at: datetime


class Heartbeat(SQLModel, table=True):
    """A live daemon process, refreshed every few seconds."""

    __tablename__ = "heartbeat"

    node: str = Field(primary_key=True, max_length=255)
    pid: int
    version: str = Field(max_length=40)
    started_at: datetime
    seen_at: datetime


class ConnectorState(SQLModel, table=True):
    """One key of a connector's own durable store (a rotated token, a sync token the
    system hands out): what a connector opened with a context keeps between runs."""

    __tablename__ = "connector_state"

    connector: str = Field(primary_key=True, max_length=200)
    key: str = Field(primary_key=True, max_length=200)
    #: None only inside the transaction that inserted the row to lock the key
    #: (:mod:`syncd.state.connector_state`); never seen as a value.
    value: str | None = Field(default=None, sa_column=Column(Text))
    updated_at: datetime


# The tables, for SQLAlchemy Core statements (the store's bulk and per-run queries).
BINDING: Table = Binding.__table__  # type: ignore[attr-defined]
CURSOR: Table = CursorRow.__table__  # type: ignore[attr-defined]
RUN: Table = Run.__table__  # type: ignore[attr-defined]
RUN_ITEM: Table = RunItem.__table__  # type: ignore[attr-defined]
INTENT: Table = Intent.__table__  # type: ignore[attr-defined]
RETRY: Table = Retry.__table__  # type: ignore[attr-defined]
PAIR_STATE: Table = PairState.__table__  # type: ignore[attr-defined]
HEARTBEAT: Table = Heartbeat.__table__  # type: ignore[attr-defined]
CONNECTOR_STATE: Table = ConnectorState.__table__  # type: ignore[attr-defined]
