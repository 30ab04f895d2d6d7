"""The ``csv`` connector: one UTF-8 CSV file per entity type in a directory."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from hashlib import blake2b
from pathlib import Path
from typing import ClassVar

from syncd.plugin.connector import (
    ConfigurationError,
    Connector,
    ConnectorError,
    ConnectorSettings,
    Create,
    Delete,
    ErrorKind,
    Page,
    Record,
    RecordError,
    Update,
    WriteResult,
)
from syncd_csv.changes import ChangeListing
from syncd_csv.digests import RowDigests
from syncd_csv.files import (
    CsvSource,
    FileToken,
    file_token,
    open_source,
    stat_file,
)
from syncd_csv.flush import apply_pending
from syncd_csv.guard import (
    FileChanged,
    FileChangedError,
    lock_open_file,
    locked,
    same_version,
)
from syncd_csv.index import KeyIndex
from syncd_csv.layout import Layout, resolve_layout, row_version
from syncd_csv.pending import PendingWrites
from syncd_csv.scan import Found, scan
from syncd_csv.settings import CsvEntitySettings, CsvSettings

#: How often a flush reads a file again that changed while it was being written.
FLUSH_ATTEMPTS = 3


class CsvConnector(Connector):
    """A directory of CSV files, one per entity type, with a header row each.

    * The cursor stamps the file's (mtime, size, inode) and keeps a digest of every
      row (see :mod:`syncd_csv.digests`): an unchanged file is not read again, and a
      changed one yields only its changed rows and vanished ids. Without a cursor (or
      with ``full``) the listing is complete.
    * A record's ``version`` is a hash of its row's cells; ``modified_at`` is unknown.
    * New records take the engine's idempotency key as id (``client_ids``).
    * Writes are buffered and applied by :meth:`flush`, all or nothing per file:
      creates alone are appended in place through a journal, other writes replace the
      file atomically, keeping row order, untouched rows' bytes and columns it does
      not map (see :mod:`syncd_csv.flush`). Reads see the files as last flushed.
      Writes still pending at :meth:`close` are discarded: the engine flushes before
      it commits, so that is what a crash would do too.
    * A missing file is an empty table, created on the first write; a missing
      directory is a :class:`ConfigurationError` (never created: a misspelt ``path``
      must not read as "every record was deleted").
    """

    type: ClassVar[str] = "csv"
    Settings = CsvSettings
    # One flush rewrites a whole file, so flushes must be rare.
    batch_size: ClassVar[int] = 10_000
    client_ids: ClassVar[bool] = True

    settings: CsvSettings

    def __init__(self, name: str, settings: ConnectorSettings, base_dir: Path) -> None:
        super().__init__(name, settings, base_dir)
        self.directory = base_dir / Path(self.settings.path).expanduser()
        self._layouts: dict[str, Layout] = {}
        self._pending: dict[str, PendingWrites] = {}
        self._indexes: dict[tuple[str, str], KeyIndex] = {}
        #: Rows read by id (get, update, delete) from the current version of each
        #: file: writes that follow a get need not read the file again, and the flush
        #: knows where the rows it changes sit.
        self._found: dict[str, Found] = {}

    # -- lifecycle --------------------------------------------------------------------

    def open(self) -> None:
        """Check the directory exists and every existing file's header fits the
        settings, so a misconfiguration is reported before anything is synced."""
        self.close()
        if not self.directory.is_dir():
            missing = f"{self.name}: directory {self.directory} does not exist"
            raise ConfigurationError(f"{missing} (create it or fix 'path')")
        for entity in self.entities():
            self._layout(entity)

    def close(self) -> None:
        """Drop the per-run caches and discard unflushed writes."""
        self._layouts.clear()
        self._pending.clear()
        self._indexes.clear()
        self._found.clear()

    # -- capabilities -----------------------------------------------------------------

    def entities(self) -> Collection[str]:
        """The entity types configured under ``entities``."""
        return tuple(self.settings.entities)

    def fields(self, entity: str) -> Collection[str]:
        """The fields mapped for ``entity``, including canonical fields whose name is a
        column of the file's header."""
        return tuple(self._layout(entity).columns)

    # -- reads ------------------------------------------------------------------------

    def changes(self, entity: str, cursor: str | None, *, full: bool = False) -> Iterator[Page]:
        """The records changed since ``cursor``: nothing at all when the file is
        unchanged; the changed rows and the vanished ids (by row digests) when it
        changed; a complete listing without a cursor or when ``full``."""
        if not full and RowDigests.stamp_of(cursor) == self._current_cursor(entity):
            yield Page(cursor=cursor)
            return
        previous = None if full else RowDigests.decode(cursor)
        with self._read(entity) as (source, layout):
            if source is None:
                empty = RowDigests(self._cursor(entity, None), {}).encode()
                gone = sorted(previous.ids()) if previous else []
                yield Page(deleted=gone, cursor=empty, full=previous is None)
                return
            stamp = self._cursor(entity, source.token)
            if (
                previous is not None
                and previous.stamp.rsplit("-", 1)[-1] != stamp.rsplit("-", 1)[-1]
            ):
                previous = None  # another mapping: its digests say nothing of these records
            listing = ChangeListing(
                layout, source, previous.rows if previous is not None else {}, self._shown(entity)
            )
            yield from self._pages(
                listing,
                lambda: RowDigests(stamp, listing.digests).encode(),
                deleted=listing.vanished if previous is not None else None,
            )

    def get(self, entity: str, ids: Sequence[str]) -> dict[str, Record]:
        """Fetch records by id with one pass over the file (stops when all are found)."""
        layout, rows = self._scan(entity, ids)
        found = {rid: layout.record(row) for rid, row in rows.items()}
        return {rid: record for rid, record in found.items() if record is not None}

    def find(self, entity: str, field: str, keys: Collection[str]) -> Mapping[str, list[Record]]:
        """Find records by a normalised field value. A per-run index of the field's
        values answers misses without reading the file; hits cost one pass."""
        wanted = {key for key in keys if key}
        if not wanted or field not in self._layout(entity).columns:
            return {}
        index = self._key_index(entity, field)
        if not index.any_of(wanted):
            return {}
        found: dict[str, list[Record]] = {}
        with self._read(entity) as (source, layout):
            if source is None or field not in layout.columns:
                return {}
            for row in source.rows:
                key = layout.key(field, row)
                if key in wanted and (record := layout.record(row)) is not None:
                    found.setdefault(key, []).append(record)
        return found

    # -- writes -----------------------------------------------------------------------

    def create(self, entity: str, items: Sequence[Create]) -> list[WriteResult]:
        """Buffer new rows with the create keys as ids. A key already pending is the
        same write intent again and returns the same result."""
        layout = self._layout(entity)
        pending = self._pending_for(entity, layout)
        results = []
        for item in items:
            cells = pending.creates.get(item.key)
            if cells is None:
                cells = pending.creates[item.key] = layout.new_row(item.key, item.fields)
            results.append(WriteResult(item.key, row_version(cells)))
        self._bound(entity)
        return results

    def update(self, entity: str, items: Sequence[Update]) -> list[WriteResult]:
        """Buffer changed cells of existing rows, checking existence and version
        against the file plus the writes still pending."""
        pending = self._pending.get(entity)
        known = pending.creates.keys() | pending.deletes if pending else set()
        layout, rows = self._scan(entity, [item.id for item in items if item.id not in known])
        pending = self._pending_for(entity, layout)
        updated = self._found[entity].updated  # the version _scan just read
        results = [self._update_one(entity, pending, layout, rows, updated, item) for item in items]
        self._bound(entity)
        return results

    def delete(self, entity: str, items: Sequence[Delete]) -> list[WriteResult]:
        """Buffer deletions; a row already gone counts as deleted. A row changed since
        the version the engine read is a retryable conflict."""
        pending = self._pending.get(entity)
        known = pending.creates.keys() | pending.deletes if pending else set()
        check = [item.id for item in items if item.version is not None and item.id not in known]
        layout, rows = self._scan(entity, check)
        pending = self._pending_for(entity, layout)
        results = []
        for item in items:
            cells = pending.creates.get(item.id)
            if cells is None and item.id in rows and item.id not in pending.deletes:
                cells = pending.current(rows[item.id], layout)
                pending.saw(item.id, rows[item.id])
            if _stale(item.version, cells):
                results.append(WriteResult(id=item.id, error=_conflict(entity, item.id)))
                continue
            pending.delete(item.id)
            results.append(WriteResult(id=item.id))
        self._bound(entity)
        return results

    def flush(self) -> None:
        """Apply the pending writes, replacing each touched file atomically."""
        for entity in list(self._pending):
            self._flush_entity(entity)

    # -- internals --------------------------------------------------------------------

    def _spec(self, entity: str) -> CsvEntitySettings:
        try:
            return self.settings.entities[entity]
        except KeyError:
            raise ConfigurationError(f"{self.name}: entity {entity!r} is not configured") from None

    def _path(self, entity: str) -> Path:
        return self.directory / self._spec(entity).file

    def _shown(self, entity: str) -> str:
        """An entity's file as the settings name it, for messages (``books/contacts.csv``)."""
        return str(Path(self.settings.path) / self._spec(entity).file)

    def _cursor(self, entity: str, token: FileToken) -> str:
        """The cursor for one version of a file; it also covers the settings that
        shape records, so a changed mapping is listed again."""
        spec = self._spec(entity)
        shape = repr((spec.id, sorted(spec.fields.items()), self.settings.delimiter))
        tag = blake2b(shape.encode(), digest_size=4).hexdigest()
        stamp = "none" if token is None else "-".join(map(str, token))
        return f"{stamp}-{tag}"

    def _current_cursor(self, entity: str) -> str:
        return self._cursor(entity, file_token(stat_file(self._path(entity))))

    @contextmanager
    def _read(self, entity: str) -> Iterator[tuple[CsvSource | None, Layout]]:
        """Open an entity's file and resolve its header (refreshing the cached layout)."""
        path = self._path(entity)
        with open_source(path, self.settings.delimiter) as source:
            header = source.header if source is not None else None
            layout = resolve_layout(entity, self._spec(entity), header, path)
            self._layouts[entity] = layout
            yield source, layout

    def _layout(self, entity: str) -> Layout:
        if entity not in self._layouts:
            with self._read(entity):
                pass
        return self._layouts[entity]

    def _pages(
        self,
        listing: ChangeListing,
        cursor: Callable[[], str],
        deleted: Callable[[], list[str]] | None = None,
    ) -> Iterator[Page]:
        """Cut the listing's records into pages: complete-listing pages, or (with
        ``deleted``) pages of changes, each with the problems noted while its records
        were read. Only the last page carries the cursor and the deletions, both
        known once every row has been read; a listing with rows it could not read
        has neither, and is not complete (the engine then keeps the old cursor, and
        the next run reads the file again)."""
        size = self.settings.page_size
        complete = deleted is None
        problems = listing.problems
        reported = 0
        page: list[Record] = []
        for record in listing.records():
            if len(page) == size:
                yield Page(records=page, full=complete, problems=problems[reported:])
                reported = len(problems)
                page = []
            page.append(record)
        sound = listing.sound
        yield Page(
            records=page,
            deleted=deleted() if deleted is not None and sound else [],
            cursor=cursor() if sound else None,
            full=complete and sound,
            problems=problems[reported:],
        )

    def _scan(self, entity: str, ids: Iterable[str]) -> tuple[Layout, dict[str, list[str]]]:
        """The raw rows of ``ids`` (first match), read in one pass over the file unless
        earlier passes over the same version of it found them already."""
        wanted = set(ids)
        found = self._found.get(entity)
        token = file_token(stat_file(self._path(entity)))
        if found is None or found.token != token:
            found = self._found[entity] = Found(token)
        if wanted and not found.covers(wanted):
            with self._read(entity) as (source, layout):
                if source is None:
                    found.missing |= wanted
                else:
                    if source.token != found.token:
                        found = self._found[entity] = Found(source.token)
                    scan(source, layout.id_col, wanted - found.rows.keys() - found.missing, found)
        rows = found.rows
        return self._layout(entity), {rid: rows[rid] for rid in wanted if rid in rows}

    def _key_index(self, entity: str, field: str) -> KeyIndex:
        """The index of ``field``'s values, built on first use and rebuilt when the file
        changed other than through our own flushes."""
        index = self._indexes.get((entity, field))
        if index is None or index.token != file_token(stat_file(self._path(entity))):
            with self._read(entity) as (source, layout):
                index = self._indexes[(entity, field)] = KeyIndex.build(source, layout, field)
        return index

    def _pending_for(self, entity: str, layout: Layout) -> PendingWrites:
        pending = self._pending.get(entity)
        if pending is None:
            pending = self._pending[entity] = PendingWrites(layout.header)
        pending.relayout(layout.header)
        return pending

    def _bound(self, entity: str) -> None:
        """Flush an entity whose buffer is full, so memory stays bounded even if the
        engine writes more than a batch between flushes."""
        if len(self._pending.get(entity, ())) >= self.batch_size:
            self._flush_entity(entity)

    def _update_one(
        self,
        entity: str,
        pending: PendingWrites,
        layout: Layout,
        rows: dict[str, list[str]],
        updated: dict[str, list[str]],
        item: Update,
    ) -> WriteResult:
        """Check one update against the file and the pending writes, then buffer it
        (and note the row's new cells in ``updated`` for the flush)."""
        rid = item.id
        cells = pending.creates.get(rid)
        if cells is None:
            # rows holds the file rows of ids that no pending create or delete covers
            if rid not in rows:
                missing = RecordError(ErrorKind.NOT_FOUND, f"{entity} {rid} does not exist")
                return WriteResult(id=rid, error=missing)
            cells = pending.current(rows[rid], layout)
            pending.saw(rid, rows[rid])
        if _stale(item.version, cells):
            return WriteResult(id=rid, error=_conflict(entity, rid))
        changes = layout.changes(item.fields)
        for col, cell in changes.items():
            cells[col] = cell
        if rid not in pending.creates:
            pending.update(rid, changes, layout)
            updated[rid] = cells
        return WriteResult(id=rid, version=row_version(cells))

    def _flush_entity(self, entity: str) -> None:
        """Write an entity's pending writes into the file as it is now, under its lock
        (see :mod:`.guard`). A file that changes while it is being written is read
        again and the writes planned anew, a few times; then the flush fails as
        retryable, having written nothing."""
        pending = self._pending.get(entity)
        if not pending:
            self._pending.pop(entity, None)
            return
        path = self._path(entity)
        shown = self._shown(entity)
        for _ in range(FLUSH_ATTEMPTS):
            try:
                with locked(path, shown), self._read(entity) as (source, layout):
                    before = source.token if source is not None else None
                    if source is not None:
                        lock_open_file(source.fileno(), shown)
                    same_version(path, before)
                    written = apply_pending(
                        path,
                        source,
                        layout,
                        pending,
                        self.settings.delimiter,
                        self._found.get(entity),
                    )
                after = file_token(stat_file(path))
                break
            except FileChanged:
                continue
            except OSError as exc:
                raise ConnectorError(f"{self.name}: cannot write {path}: {exc}") from exc
        else:
            raise FileChangedError(
                f"{shown} changed while syncd was writing it; the run will try again"
            )
        del self._pending[entity]
        self._update_indexes(entity, layout, before, after, written)

    def _update_indexes(
        self,
        entity: str,
        layout: Layout,
        before: FileToken,
        after: FileToken,
        written: list[list[str]],
    ) -> None:
        """Carry the find indexes over to the flushed file, or drop the ones that were
        built from another version of it than the one just rewritten."""
        for (name, field), index in list(self._indexes.items()):
            if name != entity:
                continue
            if index.token != before or field not in layout.columns:
                del self._indexes[(name, field)]
            else:
                index.add(layout, field, written, after)


def _stale(version: str | None, cells: list[str] | None) -> bool:
    """True when the engine read a version and the row's current one differs."""
    return version is not None and cells is not None and version != row_version(cells)


def _conflict(entity: str, rid: str) -> RecordError:
    return RecordError(ErrorKind.CONFLICT, f"{entity} {rid} changed since it was read", True)
