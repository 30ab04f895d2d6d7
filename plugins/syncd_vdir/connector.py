"""The ``vdir`` connector: one vCard per ``.vcf`` file, the file name is the id."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from syncd.connector import (
    ConfigurationError,
    Connector,
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
from syncd.entities import CONTACT, normalize_key
from syncd_vcard import CONTACT_FIELDS, VCardError, card_fields, new_card, patch_card
from syncd_vdir.folder import file_version, snapshot, snapshot_digest, write_atomic


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
    Settings: ClassVar[type[ConnectorSettings]] = VdirSettings
    batch_size: ClassVar[int] = 500
    client_ids: ClassVar[bool] = True

    settings: VdirSettings

    def __init__(self, name: str, settings: ConnectorSettings, base_dir: Path) -> None:
        super().__init__(name, settings, base_dir)
        self.directory = base_dir / Path(self.settings.path).expanduser()

    def open(self) -> None:
        """A missing folder is a configuration error (never created: a misspelt path
        must not read as "every card was deleted")."""
        if not self.directory.is_dir():
            raise ConfigurationError(
                f"{self.name}: folder {self.directory} does not exist (create it or fix 'path')"
            )

    def entities(self) -> Collection[str]:
        """An address book holds contacts only."""
        return (CONTACT,)

    def fields(self, entity: str) -> Collection[str]:
        """The contact fields a vCard carries (``company`` is the company's name)."""
        self._check_entity(entity)
        return CONTACT_FIELDS

    # -- reads ------------------------------------------------------------------------

    def changes(self, entity: str, cursor: str | None, *, full: bool = False) -> Iterator[Page]:
        """List every card; when the folder's stat snapshot equals ``cursor`` (and not
        ``full``) yield one empty page having read no file."""
        self._check_entity(entity)
        versions = snapshot(self.directory, self.settings.suffix)
        token = snapshot_digest(versions, self.settings.suffix)
        if not full and cursor == token:
            yield Page(cursor=cursor)
            return
        ids = sorted(versions)
        size = self.settings.page_size
        if not ids:
            yield Page(cursor=token, full=True)
            return
        for start in range(0, len(ids), size):
            chunk = ids[start : start + size]
            last = start + size >= len(ids)
            records = [r for rid in chunk if (r := self._read(rid)) is not None]
            yield Page(records=records, cursor=token if last else None, full=True)

    def get(self, entity: str, ids: Sequence[str]) -> dict[str, Record]:
        """Read the named cards; missing or unreadable files are absent."""
        self._check_entity(entity)
        found = {}
        for rid in ids:
            record = self._read(rid)
            if record is not None:
                found[rid] = record
        return found

    def find(self, entity: str, field: str, keys: Collection[str]) -> Mapping[str, list[Record]]:
        """Find cards by a normalised field value (reads every card)."""
        self._check_entity(entity)
        wanted = {key for key in keys if key}
        if not wanted or field not in CONTACT_FIELDS:
            return {}
        found: dict[str, list[Record]] = {}
        for rid in sorted(snapshot(self.directory, self.settings.suffix)):
            record = self._read(rid)
            if record is None:
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
        results = []
        for item in items:
            path = self._path(item.key)
            if path.exists():
                results.append(WriteResult(id=item.key, version=file_version(path.stat())))
                continue
            version = write_atomic(path, new_card(item.key, item.fields))
            results.append(WriteResult(id=item.key, version=version))
        return results

    def update(self, entity: str, items: Sequence[Update]) -> list[WriteResult]:
        """Patch cards; a card changed since the version the engine read is a
        retryable conflict and is not written."""
        self._check_entity(entity)
        return [self._update_one(item) for item in items]

    def delete(self, entity: str, items: Sequence[Delete]) -> list[WriteResult]:
        """Remove card files; a file already gone counts as deleted, one changed since
        the version the engine read is a retryable conflict."""
        self._check_entity(entity)
        results = []
        for item in items:
            path = self._path(item.id)
            try:
                current = file_version(path.stat())
            except FileNotFoundError:
                results.append(WriteResult(id=item.id))
                continue
            if item.version is not None and item.version != current:
                results.append(WriteResult(id=item.id, error=_conflict(item.id)))
                continue
            path.unlink(missing_ok=True)
            results.append(WriteResult(id=item.id))
        return results

    # -- internals --------------------------------------------------------------------

    def _check_entity(self, entity: str) -> None:
        if entity != CONTACT:
            raise ConfigurationError(f"{self.name}: a vdir address book serves contacts only")

    def _path(self, rid: str) -> Path:
        return self.directory / f"{rid}{self.settings.suffix}"

    def _read(self, rid: str) -> Record | None:
        """One card as a record, or None if the file is gone or not a vCard."""
        path = self._path(rid)
        try:
            version = file_version(path.stat())
            text = path.read_text(encoding="utf-8")
            return Record(id=rid, fields=card_fields(text), version=version)
        except (FileNotFoundError, VCardError, UnicodeDecodeError):
            return None

    def _update_one(self, item: Update) -> WriteResult:
        path = self._path(item.id)
        try:
            current = file_version(path.stat())
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            error = RecordError(ErrorKind.NOT_FOUND, f"card {item.id} does not exist")
            return WriteResult(id=item.id, error=error)
        if item.version is not None and item.version != current:
            return WriteResult(id=item.id, error=_conflict(item.id))
        try:
            patched = patch_card(text, item.fields)
        except VCardError as exc:
            return WriteResult(id=item.id, error=RecordError(ErrorKind.INVALID, str(exc)))
        return WriteResult(id=item.id, version=write_atomic(path, patched))


def _conflict(rid: str) -> RecordError:
    return RecordError(ErrorKind.CONFLICT, f"card {rid} changed since it was read", retryable=True)
