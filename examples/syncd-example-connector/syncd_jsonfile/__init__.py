"""An example syncd connector: each entity is one JSON file holding a list of records.

It is small on purpose and complete: settings validated by pydantic, a change feed from
a cursor (a sequence number kept in the file), deletions in the feed, versions for
optimistic writes, per-record errors, idempotency keys as ids. Copy it to start your
own connector, and keep its conformance test passing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from syncd import hookimpl
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
from syncd.entities import CANONICAL_FIELDS, normalize_key

SYNCD_API = 1  # the syncd plugin API this package is written against


class JsonFileSettings(ConnectorSettings):
    """``path``: the folder; one ``<entity>.json`` file per entity type."""

    path: str
    entities: list[str] = ["contact"]
    page_size: int = 100


class JsonFileConnector(Connector):
    """Records in ``<path>/<entity>.json``: ``{"seq": n, "records": {id: {...}},
    "log": [[seq, id], ...]}``. The log is the change feed; a deleted record stays in
    the log with no record behind it."""

    type: ClassVar[str] = "jsonfile"
    Settings: ClassVar[type[ConnectorSettings]] = JsonFileSettings
    batch_size: ClassVar[int] = 100
    client_ids: ClassVar[bool] = True

    settings: JsonFileSettings

    def open(self) -> None:
        """Check the folder exists (a misspelt path must not read as "no records")."""
        if not self._folder().is_dir():
            raise ConfigurationError(f"{self.name}: folder {self._folder()} does not exist")

    def entities(self) -> Collection[str]:
        return tuple(self.settings.entities)

    def incremental(self, entity: str) -> bool:
        return True

    def fields(self, entity: str) -> Collection[str]:
        return CANONICAL_FIELDS[entity]

    # -- reads --------------------------------------------------------------------------

    def changes(self, entity: str, cursor: str | None, *, full: bool = False) -> Iterator[Page]:
        data = self._load(entity)
        if cursor is None or full:
            ids = list(data["records"])
            yield from self._pages(data, ids, [], full=True)
            return
        since = int(cursor)
        touched = list(dict.fromkeys(rid for seq, rid in data["log"] if seq > since))
        live = [rid for rid in touched if rid in data["records"]]
        gone = [rid for rid in touched if rid not in data["records"]]
        yield from self._pages(data, live, gone, full=False)

    def _pages(
        self, data: dict[str, Any], ids: list[str], gone: list[str], *, full: bool
    ) -> Iterator[Page]:
        size = self.settings.page_size
        for start in range(0, max(len(ids), 1), size):
            chunk = ids[start : start + size]
            last = start + size >= len(ids)
            yield Page(
                records=[self._record(data, rid) for rid in chunk],
                deleted=gone if last else [],
                cursor=str(data["seq"]) if last else None,
                full=full,
            )

    def get(self, entity: str, ids: Sequence[str]) -> dict[str, Record]:
        data = self._load(entity)
        return {rid: self._record(data, rid) for rid in ids if rid in data["records"]}

    def find(self, entity: str, field: str, keys: Collection[str]) -> Mapping[str, list[Record]]:
        data = self._load(entity)
        found: dict[str, list[Record]] = {}
        for rid, fields in data["records"].items():
            key = normalize_key(field, fields.get(field))
            if key in keys:
                found.setdefault(key, []).append(self._record(data, rid))
        return found

    # -- writes -------------------------------------------------------------------------

    def create(self, entity: str, items: Sequence[Create]) -> list[WriteResult]:
        data = self._load(entity)
        results = []
        for item in items:
            if item.key not in data["records"]:
                data["records"][item.key] = self._known(entity, item.fields)
                self._touch(data, item.key)
            results.append(WriteResult(id=item.key, version=self._version(data, item.key)))
        self._save(entity, data)
        return results

    def update(self, entity: str, items: Sequence[Update]) -> list[WriteResult]:
        data = self._load(entity)
        results = []
        for item in items:
            if item.id not in data["records"]:
                error = RecordError(ErrorKind.NOT_FOUND, f"{entity} {item.id} does not exist")
                results.append(WriteResult(id=item.id, error=error))
                continue
            if item.version is not None and item.version != self._version(data, item.id):
                error = RecordError(ErrorKind.CONFLICT, "changed since it was read", True)
                results.append(WriteResult(id=item.id, error=error))
                continue
            data["records"][item.id].update(self._known(entity, item.fields))
            self._touch(data, item.id)
            results.append(WriteResult(id=item.id, version=self._version(data, item.id)))
        self._save(entity, data)
        return results

    def delete(self, entity: str, items: Sequence[Delete]) -> list[WriteResult]:
        data = self._load(entity)
        for item in items:
            if data["records"].pop(item.id, None) is not None:
                self._touch(data, item.id)
        self._save(entity, data)
        return [WriteResult(id=item.id) for item in items]

    # -- the file -----------------------------------------------------------------------

    def _folder(self) -> Path:
        return self.base_dir / self.settings.path

    def _file(self, entity: str) -> Path:
        return self._folder() / f"{entity}.json"

    def _load(self, entity: str) -> dict[str, Any]:
        try:
            return json.loads(self._file(entity).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"seq": 0, "records": {}, "log": []}

    def _save(self, entity: str, data: dict[str, Any]) -> None:
        path = self._file(entity)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data), encoding="utf-8")
        os.replace(temporary, path)  # atomic: a crash leaves the old file or the new one

    @staticmethod
    def _touch(data: dict[str, Any], rid: str) -> None:
        data["seq"] += 1
        data["log"].append([data["seq"], rid])

    @staticmethod
    def _version(data: dict[str, Any], rid: str) -> str:
        return str(max(seq for seq, logged in data["log"] if logged == rid))

    def _record(self, data: dict[str, Any], rid: str) -> Record:
        return Record(id=rid, fields=dict(data["records"][rid]), version=self._version(data, rid))

    def _known(self, entity: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in fields.items() if k in self.fields(entity)}


@hookimpl
def syncd_connectors() -> list[type[Connector]]:
    """Register the ``jsonfile`` connector type."""
    return [JsonFileConnector]
