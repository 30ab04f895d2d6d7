"""The connector contract: what the engine asks of every system it syncs.

A connector knows one system and nothing about sync rules. It maps native records to
canonical fields (see :mod:`syncd.entities`), lists changes since an opaque cursor,
fetches and finds records, and writes in batches with a result per record. Record
problems are *returned* as :class:`RecordError`; only problems that stop the whole run
(the system is down, the credentials are wrong) are *raised* as :class:`ConnectorError`.
"""

from __future__ import annotations

import builtins
import enum
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict

from syncd.plugin.context import ConnectorContext


@dataclass(slots=True)
class Record:
    """One record as the connector read it.

    ``fields`` holds canonical field names and canonical values; a reference field
    (``contact.company``) holds the *native id* of the referenced record in the same
    system, or a name where the system has no record type for it.
    ``version`` (ETag, row version, modification stamp) lets the engine recognise its
    own writes; ``modified_at`` lets it settle "newest wins" conflicts.
    """

    id: str
    fields: dict[str, Any]
    version: str | None = None
    modified_at: datetime | None = None


@dataclass(slots=True)
class ListingProblem:
    """A record a listing could not read, or read but distrusts.

    ``where`` locates it for a person (``contacts.csv line 120``, a card's file name),
    ``reason`` says what is wrong, ``id`` is the record's id where it could still be
    told. An unreadable record (``warning`` false) is not in the page's records: the
    engine reports it as a failed item and infers no deletion from the listing, since
    the record may be one of those that seem to be missing. A ``warning`` is about a
    record that *is* in the page (a quoted cell that swallowed many line breaks): it
    is reported and the record is synced as read.
    """

    where: str
    reason: str
    id: str | None = None
    warning: bool = False


@dataclass(slots=True)
class Page:
    """One page of a change listing.

    ``cursor`` is where a later listing resumes after this page (opaque to the engine);
    ``None`` means "not resumable here", and the engine keeps the previous cursor.
    ``full`` says the listing this page belongs to is a complete snapshot of the live
    records: only then may the engine infer a deletion from a record's absence.
    ``problems`` lists the records the page could not read (see
    :class:`ListingProblem`); one unreadable record makes the listing incomplete.
    """

    records: list[Record] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    cursor: str | None = None
    full: bool = False
    problems: list[ListingProblem] = field(default_factory=list)


class ErrorKind(enum.StrEnum):
    """Why a single record could not be written."""

    INVALID = "invalid"
    CONFLICT = "conflict"
    DUPLICATE = "duplicate"
    NOT_FOUND = "not_found"
    TRANSIENT = "transient"


@dataclass(slots=True)
class RecordError:
    """A per-record failure. ``retryable`` errors are tried again on later runs;
    permanent ones wait until the record changes. A duplicate error may name the
    record that already exists (``existing_id``) so the engine can bind to it."""

    kind: ErrorKind
    message: str
    retryable: bool = False
    existing_id: str | None = None


@dataclass(slots=True)
class WriteResult:
    """The outcome of writing one record: its id and new version, or an error."""

    id: str | None = None
    version: str | None = None
    error: RecordError | None = None

    @property
    def ok(self) -> bool:
        """True when the write succeeded."""
        return self.error is None


@dataclass(slots=True)
class Create:
    """A record to create. ``key`` is the idempotency key of the engine's write intent;
    a connector with ``client_ids`` uses it as the new record's id."""

    key: str
    fields: dict[str, Any]


@dataclass(slots=True)
class Update:
    """Changed fields to write onto an existing record, read at ``version``."""

    id: str
    fields: dict[str, Any]
    version: str | None = None


@dataclass(slots=True)
class Delete:
    """A record to delete, read at ``version``."""

    id: str
    version: str | None = None


class ConnectorError(Exception):
    """A problem that stops the run for this pair (not a single record's problem).
    The run fails; ``retryable`` says whether the next scheduled run may succeed
    unaided or an operator must act first."""

    retryable = True


class UnavailableError(ConnectorError):
    """The system cannot be reached or answered with a server error; try again later."""


class AuthError(ConnectorError):
    """The credentials were refused; an operator must act."""

    retryable = False


class RateLimitedError(ConnectorError):
    """The system asks us to slow down; ``retry_after`` seconds if it said. The run
    ends early as ``partial`` and no scheduled run of the pair starts before then."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CursorExpiredError(ConnectorError):
    """The cursor is no longer valid; the engine lists everything instead (once)."""


class ConfigurationError(ConnectorError):
    """The connector's settings do not fit the system (missing table, column, file)."""

    retryable = False


class ConnectorSettings(BaseModel):
    """Base for a connector's settings model: unknown keys are an error, so a
    misspelt setting is reported instead of silently ignored."""

    model_config = ConfigDict(extra="forbid")


class Connector(ABC):
    """Base class for connectors. Subclass it, set the class attributes, implement
    the methods, and return the class from the ``syncd_connectors`` hook.

    The engine opens a connector for one run (``with connector:``), so per-run caches
    live on the instance and are dropped by :meth:`close`. Before opening it, the
    engine gives it a :class:`~syncd.plugin.context.ConnectorContext` (plugin API 2),
    which the connector reads as :attr:`context`.
    """

    #: The ``type`` name used in configuration.
    type: ClassVar[str] = ""
    #: The pydantic model that validates this connector's settings.
    Settings: ClassVar[builtins.type[ConnectorSettings]] = ConnectorSettings
    #: Most records per create / update / delete call.
    batch_size: ClassVar[int] = 500
    #: True when :meth:`create` uses the idempotency key as the new record's id, so an
    #: interrupted create is found again with :meth:`get`.
    client_ids: ClassVar[bool] = False

    def __init__(self, name: str, settings: ConnectorSettings, base_dir: Path) -> None:
        self.name = name
        self.settings = settings
        self.base_dir = base_dir

    _context: ConnectorContext | None = None

    # -- lifecycle --------------------------------------------------------------------

    def with_context(self, context: ConnectorContext) -> Self:
        """Give the connector the context it is opened with; returns the connector,
        for ``with connector.with_context(context):``. Called before :meth:`open`."""
        self._context = context
        return self

    @property
    def context(self) -> ConnectorContext:
        """The context this connector was opened with (plugin API 2): its own durable
        store, a bound logger, the clock. Raises if it was given none (a test that
        opens a connector itself passes one made with
        :meth:`ConnectorContext.create <syncd.plugin.context.ConnectorContext.create>`)."""
        if self._context is None:
            name = getattr(self, "name", type(self).__name__)
            raise RuntimeError(
                f"connector {name} was opened without a context: call"
                " with_context(ConnectorContext.create(name)) before opening it"
            )
        return self._context

    def open(self) -> None:
        """Prepare for a run (connect, load indexes). Called once before any read."""

    def close(self) -> None:
        """Release resources and per-run caches. Called once after the run."""

    def __enter__(self) -> Connector:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def check(self) -> None:
        """Reach the system and verify the configured entities exist; raise
        :class:`ConnectorError` with a readable reason if not."""
        with self:
            for entity in self.entities():
                self.get(entity, [])

    # -- capabilities -----------------------------------------------------------------

    @abstractmethod
    def entities(self) -> Collection[str]:
        """The canonical entity types this instance serves."""

    def incremental(self, entity: str) -> bool:
        """True when :meth:`changes` with a cursor returns only what changed since;
        False when every listing is complete and the engine diffs by hash."""
        return False

    @abstractmethod
    def fields(self, entity: str) -> Collection[str]:
        """The canonical (and custom) fields this instance maps for ``entity``."""

    # -- reads ------------------------------------------------------------------------

    @abstractmethod
    def changes(self, entity: str, cursor: str | None, *, full: bool = False) -> Iterator[Page]:
        """Yield pages of records changed since ``cursor`` (all of them when ``cursor``
        is None or ``full`` is true), and of ids deleted since, if the system can tell."""

    @abstractmethod
    def get(self, entity: str, ids: Sequence[str]) -> dict[str, Record]:
        """Fetch records by id; ids that do not exist are absent from the result."""

    @abstractmethod
    def find(self, entity: str, field: str, keys: Collection[str]) -> Mapping[str, list[Record]]:
        """Find records whose ``field``, normalised with
        :func:`syncd.entities.normalize_key`, equals one of ``keys``.

        Returns normalised key -> matching records (keys without a match absent)."""

    # -- writes -----------------------------------------------------------------------

    @abstractmethod
    def create(self, entity: str, items: Sequence[Create]) -> list[WriteResult]:
        """Create records; one result per item, in order."""

    @abstractmethod
    def update(self, entity: str, items: Sequence[Update]) -> list[WriteResult]:
        """Write the given fields onto existing records; one result per item, in order.
        A missing record is a ``NOT_FOUND`` error result."""

    @abstractmethod
    def delete(self, entity: str, items: Sequence[Delete]) -> list[WriteResult]:
        """Delete records; one result per item, in order. Deleting a record that is
        already gone succeeds."""

    # -- finding interrupted creates again ----------------------------------------------
    #
    # A run killed after the target created records and before the state store recorded
    # them leaves the creates' intents open. The next run asks these methods, in this
    # order, to find the records they made; a connector implements those it can.

    def created(self, entity: str, keys: Sequence[str]) -> dict[str, Record] | None:
        """The records that creates with idempotency keys ``keys`` made, by key, found
        by a trace of the key the connector wrote with each (the key as the record's
        id with :attr:`client_ids`, an external-id or marker column). A key absent from
        the answer made no record. None: this connector keeps no such trace.
        With ``keys`` empty, answers ``{}`` or None without reading anything."""
        if self.client_ids:
            return self.get(entity, keys) if keys else {}
        return None

    def create_mark(self, entity: str) -> str | None:
        """Asked before each batch of creates: an opaque mark of the records that
        exist now, such that :meth:`created_since` can later list every record created
        after it. None (the default): this system cannot tell which records are newer
        than a moment (its ids are not ordered, say), or :meth:`created` needs none."""
        return None

    def created_since(self, entity: str, mark: str) -> Iterator[list[Record]] | None:
        """Pages of the live records created after ``mark`` (from :meth:`create_mark`),
        by anyone; the engine recognises its own among them by the values it sent.
        None (the default): this connector cannot tell."""
        return None

    def flush(self) -> None:
        """Make every write so far durable. The engine calls it before it records the
        outcome of a batch in the state store; connectors that write through need not
        override it."""
