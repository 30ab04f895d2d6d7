"""What the engine needs from the rest of syncd, and nothing more.

The engine imports neither the configuration nor the concrete state store: it is
given a pair's :class:`PairRules` (built from the configuration by
:mod:`syncd.engine_setup`), a way to open connectors by name, and a state store that
satisfies :class:`SyncState`. A second state backend, or a test double, only has to
provide the methods listed here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from syncd.entities import Entity
from syncd.plugin.connector import Connector
from syncd.state.rows import BatchCommit, BindingRow


class Side(StrEnum):
    """One end of a pair. Equal to its string, so stored rows and JSON are unchanged."""

    LEFT = "left"
    RIGHT = "right"

    @property
    def other(self) -> Side:
        """The opposite side."""
        return Side.RIGHT if self is Side.LEFT else Side.LEFT


#: Both sides, in the order the engine visits them.
SIDES: tuple[Side, Side] = (Side.LEFT, Side.RIGHT)


class OpKind(StrEnum):
    """What a planned operation does (the ``action`` of its run item)."""

    #: write a new record on the target and bind it
    CREATE = "create"
    #: write changed fields onto the bound target record
    UPDATE = "update"
    #: bind a source record to an existing target record
    BIND = "bind"
    #: record the source's snapshot; nothing to write
    SNAPSHOT = "snapshot"
    #: delete the bound target record
    DELETE = "delete"
    #: nothing to do, with the reason
    SKIP = "skip"
    #: the record breaks a rule of the pair (a required field is empty, ...)
    REFUSE = "refuse"
    #: held for a person: an interrupted create could not be told apart
    HOLD = "hold"
    #: unchanged since it failed permanently: counted as skipped until it changes
    WAIT = "wait"
    #: writing it failed (its reason and retryability in the run's items)
    FAILED = "failed"
    #: the source could not read the record
    UNREADABLE = "unreadable"
    #: the listing gave the record in a shape that looks damaged
    SUSPECT = "suspect"


#: The kinds as module constants: reading a member off an Enum class is a descriptor
#: call (about 80 ns), and the planner and the applier test a kind for every record.
CREATE = OpKind.CREATE
UPDATE = OpKind.UPDATE
BIND = OpKind.BIND
SNAPSHOT = OpKind.SNAPSHOT
DELETE = OpKind.DELETE
SKIP = OpKind.SKIP
REFUSE = OpKind.REFUSE
HOLD = OpKind.HOLD
WAIT = OpKind.WAIT
FAILED = OpKind.FAILED
UNREADABLE = OpKind.UNREADABLE
SUSPECT = OpKind.SUSPECT


class SyncState(Protocol):
    """The state-store methods the engine calls: bindings, cursors, intents,
    retries and the run record. :class:`syncd.state.Store` satisfies it."""

    def start_run(self, pair: str, trigger: str, mode: str, full: bool) -> int:
        """Claim ``pair`` and open a run record; returns its id."""
        ...

    def finish_run(
        self, run_id: int, status: str, counts: dict[str, int], error: str | None = None
    ) -> None:
        """Close a run record with its outcome and counts."""
        ...

    def set_not_before(self, pair: str, at: datetime | None) -> None:
        """No scheduled run of ``pair`` starts before ``at`` (a rate limit's wait)."""
        ...

    def cursor(self, pair: str, side: str, entity: str) -> str | None:
        """The saved cursor of one side's entity, or None before the first run."""
        ...

    def bindings_for(
        self, pair: str, entity: str, side: str, ids: Iterable[str]
    ) -> dict[str, BindingRow]:
        """Bindings whose ``side`` id is one of ``ids``, keyed by that id."""
        ...

    def iter_bindings(
        self, pair: str, entity: str | None = None, chunk: int = 2000
    ) -> Iterator[BindingRow]:
        """Every binding of a pair (optionally of one entity), streamed."""
        ...

    def has_bindings(self, pair: str, entity: str) -> bool:
        """True when the pair has bound any record of ``entity``."""
        ...

    def commit(self, pair: str, run_id: int, batch: BatchCommit) -> None:
        """Record one batch's outcome in a single transaction."""
        ...

    def add_intents(self, pair: str, intents: Sequence[dict[str, Any]]) -> None:
        """Record writes about to be sent, committed before they are sent."""
        ...

    def open_intents(self, pair: str, entity: str) -> list[dict[str, Any]]:
        """Writes of an earlier run whose outcome was never recorded."""
        ...

    def retries(self, pair: str, entity: str, side: str) -> list[str]:
        """Ids of records whose last attempt failed with a retryable error."""
        ...

    def permanent_failures_exist(self, pair: str, entity: str, side: str) -> bool:
        """True when some record of this pair, entity and side failed permanently."""
        ...

    def permanent_failures(
        self, pair: str, entity: str, side: str, ids: Sequence[str]
    ) -> dict[str, str | None]:
        """For records among ``ids`` that failed permanently: id -> content hash then."""
        ...


#: Opens the connector of a given name; the engine enters it as a context manager.
OpenConnector = Callable[[str, str], AbstractContextManager[Connector]]

#: field -> the transform (bound to its argument) applied to every value read
Transforms = Mapping[str, Callable[[Any], Any]]

_SOURCES: dict[str, tuple[Side, ...]] = {
    "export": (Side.LEFT,),
    "import": (Side.RIGHT,),
    "two-way": SIDES,
}


@dataclass(frozen=True, slots=True)
class PairRules:
    """One pair as the engine sees it: its connectors, what it syncs and how."""

    name: str
    left: str
    right: str
    mode: str = "export"
    entities: tuple[Entity, ...] = ()
    update_existing: bool = True
    recreate_deleted: bool = False
    deletes: str = "ignore"
    clears: str = "keep"
    conflict: str = "left"
    create_in: frozenset[Side] = frozenset(SIDES)
    match: Mapping[Entity, tuple[str, ...]] = field(default_factory=dict)
    required: Mapping[Entity, tuple[str, ...]] = field(default_factory=dict)
    filter: Mapping[Entity, Mapping[str, Any]] = field(default_factory=dict)
    exclude: Mapping[Entity, frozenset[str]] = field(default_factory=dict)
    transforms: Mapping[str, Transforms] = field(default_factory=dict)

    @property
    def sources(self) -> tuple[Side, ...]:
        """The sides whose changes this pair reads, per its mode."""
        return _SOURCES[self.mode]

    @property
    def two_way(self) -> bool:
        """True when both sides are read and merged."""
        return self.mode == "two-way"

    def connector(self, side: Side) -> str:
        """The name of the connector on ``side``."""
        return self.left if side == Side.LEFT else self.right


#: A pair's rules by its name; raises a :class:`~syncd.errors.UserError` for an
#: unknown name.
PairLookup = Callable[[str], PairRules]
