"""The ``memory`` connector: a system of record that lives in the process.

It is what the engine's tests and plugin authors' tests sync against, and it can be
named in a configuration (``type = "memory"``) for experiments. Every instance with the
same ``system`` name in one process shares one :class:`MemorySystem`, so a test can
edit "the outside world" between runs with the same calls a user's CRM would make.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from syncd.entities import CANONICAL_FIELDS, canonical_fields, normalize_key
from syncd.plugin.connector import (
    Connector,
    ConnectorSettings,
    Create,
    CursorExpiredError,
    Delete,
    ErrorKind,
    ListingProblem,
    Page,
    RateLimitedError,
    Record,
    RecordError,
    UnavailableError,
    Update,
    WriteResult,
)

_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
#: One clock for every system in the process, so modification times compare across
#: systems as wall-clock times would ("newest wins").
_CLOCK = itertools.count(1)


class MemorySystem:
    """An in-memory store of records with a change log, versions and modification
    times, plus switches to make it fail the way real systems do."""

    def __init__(self, name: str = "memory", entities: Collection[str] = ("company", "contact")):
        self.name = name
        self.entities = tuple(entities)
        self.tables: dict[str, dict[str, dict[str, Any]]] = {e: {} for e in self.entities}
        self.versions: dict[tuple[str, str], int] = {}
        self.modified: dict[tuple[str, str], datetime] = {}
        self.log: list[tuple[int, str, str]] = []
        self.seq = 0
        self._ids = itertools.count(1)
        #: While True, every call raises :class:`UnavailableError`.
        self.down = False
        #: The next this many calls of ``changes`` raise :class:`CursorExpiredError`
        #: (after yielding ``expire_after`` pages), as an expired sync token would.
        self.expire_cursor = 0
        self.expire_after = 0
        #: Pages listings may still yield before the system rate-limits us; at 0 every
        #: call raises :class:`RateLimitedError` with ``retry_after``. None: no limit.
        self.rate_limit_after: int | None = None
        self.retry_after: float | None = 60.0
        #: Record id (or create key) -> error returned instead of writing it.
        self.write_errors: dict[str, RecordError] = {}
        #: (entity, record id) -> why the record cannot be read: listings report it as a
        #: :class:`ListingProblem` instead of listing it.
        self.unreadable: dict[tuple[str, str], str] = {}
        #: (entity, record id) -> why a listing distrusts the record: it is listed, with
        #: a warning :class:`ListingProblem`.
        self.suspect: dict[tuple[str, str], str] = {}
        #: Counts of records written per operation, for "the second run writes nothing".
        self.writes: dict[str, int] = {"create": 0, "update": 0, "delete": 0}

    # -- edits made by "the outside world" ----------------------------------------------

    def put(self, entity: str, fields: Mapping[str, Any], id: str | None = None) -> str:
        """Create or replace a record, as a user of the system would; return its id."""
        rid = id or f"{self.name[:1]}{next(self._ids)}"
        self.tables[entity][rid] = dict(fields)
        self._touch(entity, rid)
        return rid

    def edit(self, entity: str, id: str, **fields: Any) -> None:
        """Change some fields of a record (None clears a field)."""
        self.tables[entity][id].update(fields)
        self._touch(entity, id)

    def remove(self, entity: str, id: str) -> None:
        """Delete a record."""
        del self.tables[entity][id]
        self._touch(entity, id)

    def rows(self, entity: str) -> dict[str, dict[str, Any]]:
        """The live records of an entity type: id -> fields."""
        return self.tables[entity]

    def _touch(self, entity: str, rid: str) -> None:
        self.seq += 1
        self.log.append((self.seq, entity, rid))
        key = (entity, rid)
        self.versions[key] = self.versions.get(key, 0) + 1
        self.modified[key] = _EPOCH + timedelta(seconds=next(_CLOCK))

    def record(self, entity: str, rid: str) -> Record:
        """The connector's view of one live record."""
        key = (entity, rid)
        return Record(
            id=rid,
            fields=canonical_fields(entity, self.tables[entity][rid]),
            version=str(self.versions[key]),
            modified_at=self.modified[key],
        )


_SYSTEMS: dict[str, MemorySystem] = {}


def memory_system(name: str, entities: Collection[str] = ("company", "contact")) -> MemorySystem:
    """The process-wide system called ``name``, created on first use."""
    if name not in _SYSTEMS:
        _SYSTEMS[name] = MemorySystem(name, entities)
    return _SYSTEMS[name]


def reset_memory_systems() -> None:
    """Forget every memory system (between tests)."""
    _SYSTEMS.clear()


class MemorySettings(ConnectorSettings):
    """Settings of the memory connector."""

    system: str = ""
    entities: list[str] = ["company", "contact"]
    incremental: bool = True
    page_size: int = 100


class MemoryConnector(Connector):
    """A connector to a :class:`MemorySystem`: incremental change feed by sequence
    number (or full listings when ``incremental = false``), versions and modification
    times on every record, per-record errors on request."""

    type: ClassVar[str] = "memory"
    Settings = MemorySettings
    batch_size: ClassVar[int] = 50

    settings: MemorySettings

    def __init__(self, name: str, settings: ConnectorSettings, base_dir: Path) -> None:
        super().__init__(name, settings, base_dir)
        self.system = memory_system(self.settings.system or name, self.settings.entities)

    def _alive(self) -> None:
        if self.system.down:
            raise UnavailableError(f"memory system {self.system.name!r} is down")
        if self.system.rate_limit_after == 0:
            raise RateLimitedError(
                f"memory system {self.system.name!r} is rate limiting",
                retry_after=self.system.retry_after,
            )

    def _metered(self, pages: Iterator[Page]) -> Iterator[Page]:
        """``pages`` as the system's switches let them through: a cursor that expires
        after some pages, a rate limit that starts after some pages."""
        expire = self.system.expire_cursor > 0
        if expire:
            self.system.expire_cursor -= 1
        for served, page in enumerate(pages):
            if expire and served >= self.system.expire_after:
                raise CursorExpiredError(f"memory system {self.system.name!r}: cursor expired")
            self._alive()
            if self.system.rate_limit_after is not None:
                self.system.rate_limit_after -= 1
            yield page
        if expire:
            raise CursorExpiredError(f"memory system {self.system.name!r}: cursor expired")

    def entities(self) -> Collection[str]:
        return self.system.entities

    def incremental(self, entity: str) -> bool:
        return self.settings.incremental

    def fields(self, entity: str) -> Collection[str]:
        return CANONICAL_FIELDS[entity]

    def changes(self, entity: str, cursor: str | None, *, full: bool = False) -> Iterator[Page]:
        self._alive()
        yield from self._metered(self._pages(entity, cursor, full))

    def _pages(self, entity: str, cursor: str | None, full: bool) -> Iterator[Page]:
        size = self.settings.page_size
        if cursor is None or full or not self.settings.incremental:
            end = str(self.system.seq)
            ids = sorted(self.system.tables[entity])
            if not ids:
                yield Page(cursor=end, full=True)
            for start in range(0, len(ids), size):
                chunk = ids[start : start + size]
                last = start + size >= len(ids)
                page = Page(cursor=end if last else None, full=True)
                self._list(page, entity, chunk)
                yield page
            return
        since = int(cursor) if cursor.isdigit() else -1
        if not 0 <= since <= self.system.seq:
            raise CursorExpiredError(f"memory system {self.system.name!r}: not its cursor")
        latest: dict[str, int] = {}
        for seq, ent, rid in self.system.log[since:]:
            if ent == entity:
                latest[rid] = seq
        ordered = sorted(latest.items(), key=lambda item: item[1])
        if not ordered:
            yield Page(cursor=str(self.system.seq))
            return
        for start in range(0, len(ordered), size):
            changed = ordered[start : start + size]
            page = Page(cursor=str(changed[-1][1]))
            if start + size >= len(ordered):
                page.cursor = str(self.system.seq)
            live = [rid for rid, _ in changed if rid in self.system.tables[entity]]
            page.deleted.extend(rid for rid, _ in changed if rid not in self.system.tables[entity])
            self._list(page, entity, live)
            yield page

    def _list(self, page: Page, entity: str, ids: Sequence[str]) -> None:
        """Put the records ``ids`` on ``page``, the unreadable ones as problems."""
        for rid in ids:
            reason = self.system.unreadable.get((entity, rid))
            if reason is not None:
                page.problems.append(ListingProblem(f"{entity} {rid}", reason, rid))
                continue
            page.records.append(self.system.record(entity, rid))
            doubt = self.system.suspect.get((entity, rid))
            if doubt is not None:
                page.problems.append(ListingProblem(f"{entity} {rid}", doubt, rid, warning=True))

    def get(self, entity: str, ids: Sequence[str]) -> dict[str, Record]:
        self._alive()
        table = self.system.tables[entity]
        unreadable = self.system.unreadable
        return {
            i: self.system.record(entity, i)
            for i in ids
            if i in table and (entity, i) not in unreadable
        }

    def find(self, entity: str, field: str, keys: Collection[str]) -> Mapping[str, list[Record]]:
        self._alive()
        wanted = set(keys)
        found: dict[str, list[Record]] = {}
        for rid, row in self.system.tables[entity].items():
            key = normalize_key(field, row.get(field))
            if key in wanted:
                found.setdefault(key, []).append(self.system.record(entity, rid))
        return found

    def create(self, entity: str, items: Sequence[Create]) -> list[WriteResult]:
        self._alive()
        results = []
        for item in items:
            error = self.system.write_errors.get(item.key)
            if error:
                results.append(WriteResult(error=error))
                continue
            rid = self.system.put(entity, {k: v for k, v in item.fields.items() if v is not None})
            self.system.writes["create"] += 1
            results.append(WriteResult(id=rid, version=str(self.system.versions[(entity, rid)])))
        return results

    def update(self, entity: str, items: Sequence[Update]) -> list[WriteResult]:
        self._alive()
        results = []
        for item in items:
            error = self.system.write_errors.get(item.id)
            current = self.system.versions.get((entity, item.id))
            if error:
                results.append(WriteResult(id=item.id, error=error))
            elif item.id not in self.system.tables[entity]:
                missing = RecordError(ErrorKind.NOT_FOUND, f"{entity} {item.id} does not exist")
                results.append(WriteResult(id=item.id, error=missing))
            elif item.version is not None and item.version != str(current):
                stale = RecordError(ErrorKind.CONFLICT, "changed since it was read", True)
                results.append(WriteResult(id=item.id, error=stale))
            else:
                self.system.edit(entity, item.id, **item.fields)
                self.system.writes["update"] += 1
                version = str(self.system.versions[(entity, item.id)])
                results.append(WriteResult(id=item.id, version=version))
        return results

    def delete(self, entity: str, items: Sequence[Delete]) -> list[WriteResult]:
        self._alive()
        results = []
        for item in items:
            error = self.system.write_errors.get(item.id)
            if error:
                results.append(WriteResult(id=item.id, error=error))
                continue
            if item.id in self.system.tables[entity]:
                self.system.remove(entity, item.id)
                self.system.writes["delete"] += 1
            results.append(WriteResult(id=item.id))
        return results
