"""The ``vdir`` connector: one vCard per ``.vcf`` file, the file name is the id."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from syncd.entities import CONTACT, normalize_key
from syncd.kit.listing import ListingCursor
from syncd.plugin.connector import (
    ConfigurationError,
    Connector,
    ConnectorSettings,
    Create,
    Delete,
    ErrorKind,
    ListingProblem,
    Page,
    Record,
    RecordError,
    Update,
    WriteResult,
)
from syncd_vcard import CONTACT_FIELDS, VCardError, card_fields, new_card, patch_card
from syncd_vdir.folder import file_version, read_file, snapshot, write_all
from syncd_vdir.keyindex import KeyIndex


class VdirSettings(ConnectorSettings):
    """Settings of the vdir connector: the folder (relative to the configuration
    file's folder), the card files' suffix and the listing page size."""

    path: str = Field(min_length=1)
    suffix: str = Field(default=".vcf", min_length=1)
    page_size: int = Field(default=1000, ge=1)


class VdirConnector(Connector):
    """A vdir address book folder serving ``contact`` records.

    * A record's id is its file name without the suffix; its version is the file's
      modification time and size.
    * Listings are complete snapshots. The cursor is a digest of the folder's stat
      snapshot, so a run over an unchanged folder only stats files and reads none.
    * Writes go straight to disk, each file replaced atomically; updates patch the
      card as read, so properties syncd does not map survive.
    * New cards take the engine's idempotency key as file name and UID (``client_ids``).
    """

    type: ClassVar[str] = "vdir"
    Settings = VdirSettings
    batch_size: ClassVar[int] = 500
    client_ids: ClassVar[bool] = True

    settings: VdirSettings

    def __init__(self, name: str, settings: ConnectorSettings, base_dir: Path) -> None:
        super().__init__(name, settings, base_dir)
        self.directory = base_dir / Path(self.settings.path).expanduser()
        self._dir = str(self.directory)
        #: field -> normalised value -> card ids, per run (see _key_index)
        self._indexes: dict[str, KeyIndex] = {}
        self._index_stamp: int | None = None

    def open(self) -> None:
        """A missing folder is a configuration error (never created: a misspelt path
        must not read as "every card was deleted")."""
        if not self.directory.is_dir():
            raise ConfigurationError(
                f"{self.name}: folder {self.directory} does not exist (create it or fix 'path')"
            )

    def close(self) -> None:
        """Forget the per-run search indexes."""
        self._indexes.clear()
        self._index_stamp = None

    def entities(self) -> Collection[str]:
        """An address book holds contacts only."""
        return (CONTACT,)

    def fields(self, entity: str) -> Collection[str]:
        """The contact fields a vCard carries (``company`` is the company's name)."""
        self._check_entity(entity)
        return CONTACT_FIELDS

    # -- reads ------------------------------------------------------------------------

    def changes(self, entity: str, cursor: str | None, *, full: bool = False) -> Iterator[Page]:
        """The cards changed since ``cursor``. The cursor keeps every file's version
        (modification time and size), so an unchanged folder yields one empty page
        having read no file, and a changed one yields only the new and changed cards
        and the ids of removed ones. Without a cursor (or with ``full``) every card."""
        self._check_entity(entity)
        listed = self._listing(cursor, full)
        if listed is None:
            yield Page(cursor=cursor)
            return
        ids, deleted, packed, complete = listed
        size = self.settings.page_size
        if not ids:
            yield Page(deleted=deleted, cursor=packed, full=complete)
            return
        for start in range(0, len(ids), size):
            chunk = ids[start : start + size]
            last = start + size >= len(ids)
            records: list[Record] = []
            problems: list[ListingProblem] = []
            for rid in chunk:
                read = self._read(rid)
                if isinstance(read, Record):
                    records.append(read)
                elif isinstance(read, ListingProblem):
                    problems.append(read)
            yield Page(
                records=records,
                deleted=deleted if last else [],
                cursor=packed if last else None,
                full=complete,
                problems=problems,
            )

    def _listing(
        self, cursor: str | None, full: bool
    ) -> tuple[list[str], list[str], str, bool] | None:
        """Stat the folder against ``cursor``: (ids to read, ids gone, the new cursor,
        whether all were listed), or None when nothing changed. The listing itself is
        not kept: a large first sync peaks at its end, with every card written."""
        now = ListingCursor.of(snapshot(self._dir, self.settings.suffix), self.settings.suffix)
        if not full and ListingCursor.digest_of(cursor) == now.digest:
            return None
        before = None if full else ListingCursor.decode(cursor)
        ids, deleted = now.since(before)
        return ids, deleted, now.encode(), before is None

    def get(self, entity: str, ids: Sequence[str]) -> dict[str, Record]:
        """Read the named cards; missing or unreadable files are absent (a listing
        reports the unreadable ones)."""
        self._check_entity(entity)
        found = {}
        for rid in ids:
            record = self._read(rid)
            if isinstance(record, Record):
                found[rid] = record
        return found

    def find(self, entity: str, field: str, keys: Collection[str]) -> Mapping[str, list[Record]]:
        """Find cards by a normalised field value. The first search of a field reads
        every card once to index it; later ones read only the candidates."""
        self._check_entity(entity)
        wanted = {key for key in keys if key}
        if not wanted or field not in CONTACT_FIELDS:
            return {}
        index = self._key_index(field)
        candidates = sorted({rid for key in wanted for rid in index.ids(key)})
        found: dict[str, list[Record]] = {}
        for rid in candidates:
            record = self._read(rid)
            if not isinstance(record, Record):
                continue
            key = normalize_key(field, record.fields.get(field))
            if key in wanted:
                found.setdefault(key, []).append(record)
        return found

    # -- writes -----------------------------------------------------------------------

    def create(self, entity: str, items: Sequence[Create]) -> list[WriteResult]:
        """Write new cards named after the create keys. A file already there under the
        key is the same write intent again and is returned as created."""
        self._check_entity(entity)
        results: list[WriteResult | None] = []
        new: list[tuple[int, Create]] = []
        for item in items:
            try:
                stat = os.stat(self._path(item.key))
            except FileNotFoundError:
                new.append((len(results), item))
                results.append(None)
            else:
                results.append(WriteResult(id=item.key, version=file_version(stat)))
        writes: list[tuple[int, Create, str]] = []
        for index, item in new:
            try:
                writes.append((index, item, new_card(item.key, item.fields)))
            except VCardError as exc:
                results[index] = WriteResult(error=self._invalid(item.key, "create", exc))
        files = [(self._path(item.key), text) for _, item, text in writes]
        for (index, item, _), version in zip(writes, write_all(self._dir, files), strict=True):
            self._indexed(item.key, item.fields)
            results[index] = WriteResult(id=item.key, version=version)
        self._folder_written()
        return [result for result in results if result is not None]

    def update(self, entity: str, items: Sequence[Update]) -> list[WriteResult]:
        """Patch cards; a card changed since the version the engine read is a
        retryable conflict and is not written."""
        self._check_entity(entity)
        results: list[WriteResult | None] = []
        writes: list[tuple[int, Update, str]] = []
        for item in items:
            checked = self._patched(item)
            if isinstance(checked, WriteResult):
                results.append(checked)
            else:
                writes.append((len(results), item, checked))
                results.append(None)
        versions = write_all(self._dir, [(self._path(item.id), text) for _, item, text in writes])
        for (index, item, _), version in zip(writes, versions, strict=True):
            self._indexed(item.id, item.fields)
            results[index] = WriteResult(id=item.id, version=version)
        self._folder_written()
        return [result for result in results if result is not None]

    def delete(self, entity: str, items: Sequence[Delete]) -> list[WriteResult]:
        """Remove card files; a file already gone counts as deleted, one changed since
        the version the engine read is a retryable conflict."""
        self._check_entity(entity)
        results = []
        for item in items:
            path = self._path(item.id)
            try:
                current = file_version(os.stat(path))
            except FileNotFoundError:
                results.append(WriteResult(id=item.id))
                continue
            if item.version is not None and item.version != current:
                results.append(WriteResult(id=item.id, error=_conflict(item.id)))
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            results.append(WriteResult(id=item.id))
        self._folder_written()
        return results

    # -- internals --------------------------------------------------------------------

    def _check_entity(self, entity: str) -> None:
        if entity != CONTACT:
            raise ConfigurationError(f"{self.name}: a vdir address book serves contacts only")

    def _key_index(self, field: str) -> KeyIndex:
        """Normalised value of ``field`` -> ids of the cards holding it, built by
        reading every card once per run, and again when someone else changed the
        folder (its modification time moved other than by our own writes)."""
        stamp = self._folder_stamp()
        if stamp != self._index_stamp:
            self._indexes.clear()
            self._index_stamp = stamp
        index = self._indexes.get(field)
        if index is None:
            index = self._indexes[field] = KeyIndex()
            for rid in snapshot(self._dir, self.settings.suffix):
                record = self._read(rid)
                found = record.fields.get(field) if isinstance(record, Record) else None
                key = normalize_key(field, found)
                if key:
                    index.add(key, rid)
        return index

    def _indexed(self, rid: str, fields: Mapping[str, object]) -> None:
        """Note the values a write gave card ``rid`` in the indexes (stale entries of
        its old values only cost a read that finds no match)."""
        for field, index in self._indexes.items():
            if field in fields:
                key = normalize_key(field, fields[field])
                if key:
                    index.add(key, rid)

    def _folder_written(self) -> None:
        """Our own writes moved the folder's modification time: the indexes stay."""
        if self._indexes:
            self._index_stamp = self._folder_stamp()

    def _folder_stamp(self) -> int:
        return os.stat(self._dir).st_mtime_ns

    def _path(self, rid: str) -> str:
        return f"{self._dir}/{rid}{self.settings.suffix}"

    def _file(self, rid: str) -> str:
        return f"{rid}{self.settings.suffix}"

    def _read(self, rid: str) -> Record | ListingProblem | None:
        """One card as a record, None if the file is gone, or what keeps it from being
        read (one line naming the file, none of the card's content)."""
        try:
            found = read_file(self._path(rid))
            if found is None:
                return None
            data, version = found
            return Record(id=rid, fields=card_fields(_text(data)), version=version)
        except OSError as exc:
            reason = f"cannot read the file: {exc.strerror or type(exc).__name__}"
        except VCardError as exc:
            reason = str(exc)
        return ListingProblem(where=self._file(rid), reason=reason, id=rid)

    def _patched(self, item: Update) -> WriteResult | str:
        """The card text after ``item``, or the failed result when it cannot be done."""
        try:
            found = read_file(self._path(item.id))
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            error = RecordError(ErrorKind.INVALID, f"{self._file(item.id)}: cannot read: {reason}")
            return WriteResult(id=item.id, error=error)
        if found is None:
            error = RecordError(ErrorKind.NOT_FOUND, f"card {item.id} does not exist")
            return WriteResult(id=item.id, error=error)
        data, current = found
        if item.version is not None and item.version != current:
            return WriteResult(id=item.id, error=_conflict(item.id))
        try:
            return patch_card(_text(data), item.fields)
        except VCardError as exc:
            return WriteResult(id=item.id, error=self._invalid(item.id, "update", exc))

    def _invalid(self, rid: str, action: str, exc: VCardError) -> RecordError:
        """The permanent error of a card that cannot be read or written as asked."""
        return RecordError(ErrorKind.INVALID, f"{self._file(rid)}: cannot {action}: {exc}")


def _text(data: bytes) -> str:
    """A card file's text; :class:`VCardError` when it is not UTF-8."""
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        raise VCardError(f"not UTF-8 (byte {exc.start})") from None


def _conflict(rid: str) -> RecordError:
    return RecordError(ErrorKind.CONFLICT, f"card {rid} changed since it was read", retryable=True)
