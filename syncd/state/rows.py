"""The plain data the state store deals in: bindings as the engine works with them,
a batch's changes, the run counts, and small helpers its modules share."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, TypeVar

from syncd.kit.jsontext import decode
from syncd.state.items import PlainItem
from syncd.state.models import BINDING

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
        return dict(zip(BINDING_VALUES, binding_values(self), strict=True))


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
binding_values = attrgetter(*BINDING_VALUES)
binding_snapshot = attrgetter(*BINDING_SNAPSHOT)

BINDING_COLUMNS = [BINDING.c.id, *(BINDING.c[k] for k in BINDING_VALUES)]


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


def chunks(values: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """``values`` in slices of ``size``: the IN-lists and row batches of one statement."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def aware(stamp: datetime) -> datetime:
    """A stored time as timezone-aware UTC (SQLite hands back naive times)."""
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)
