"""Where an entity's id and fields sit in a CSV header, and how rows become records."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from hashlib import blake2b
from pathlib import Path
from typing import Any

from syncd.entities import BOOLEAN_FIELDS, CANONICAL_FIELDS, canonical_value, normalize_key
from syncd.plugin.connector import ConfigurationError, Record
from syncd_csv.settings import CsvEntitySettings


def row_version(cells: Sequence[str]) -> str:
    """A short hash of a row's raw cells, so the engine recognises its own writes.

    Trailing empty cells do not count: ``a,b`` and ``a,b,`` hold the same data, and
    padding a short row on rewrite must not look like a change.
    """
    end = len(cells)
    while end and not cells[end - 1]:
        end -= 1
    data = "\x1f".join(cells if end == len(cells) else cells[:end])
    return blake2b(data.encode(), digest_size=8).hexdigest()


def read_cell(field: str, cell: str) -> Any:
    """A cell's canonical value; an empty cell is None. A boolean column holding
    text that is no boolean keeps the text rather than losing it."""
    try:
        return canonical_value(field, cell)
    except ValueError:
        return cell.strip() or None


def to_cell(value: Any) -> str:
    """A canonical value as a cell: None is empty, booleans are ``true``/``false``."""
    if type(value) is str:
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


@dataclass(frozen=True, slots=True)
class Layout:
    """An entity's file header resolved against its settings: the id column and the
    column of every mapped field (explicit mappings plus canonical fields whose name
    is a column)."""

    header: tuple[str, ...]
    id_col: int
    #: Field name -> column index.
    columns: dict[str, int]
    #: Column name -> index of its first occurrence in the header.
    positions: dict[str, int]
    #: (field, column index, is a boolean field) for every mapped field.
    plan: tuple[tuple[str, int, bool], ...]

    def record(self, row: list[str]) -> Record | None:
        """The record a data row holds; None for a row without an id."""
        if len(row) < len(self.header):
            row = self.padded(row)
        rid = row[self.id_col]
        if not rid.strip():
            return None
        # For text, canonical_value is "the cell, or None when blank"; inlined because
        # it runs for every cell of every listing.
        fields = {
            field: read_cell(field, row[col])
            if boolean
            else (row[col] if row[col].strip() else None)
            for field, col, boolean in self.plan
        }
        return Record(id=rid, fields=fields, version=row_version(row))

    def row_id(self, row: Sequence[str]) -> str | None:
        """The id cell of a row, None when the row is too short to have one."""
        return row[self.id_col] if len(row) > self.id_col else None

    def key(self, field: str, row: Sequence[str]) -> str | None:
        """A row's value of ``field`` normalised for matching (see ``normalize_key``)."""
        col = self.columns[field]
        cell = row[col] if col < len(row) else ""
        return normalize_key(field, read_cell(field, cell) if field in BOOLEAN_FIELDS else cell)

    def keys(self, field: str, rows: Iterable[Sequence[str]]) -> Iterator[str | None]:
        """:meth:`key` of each of ``rows``, in order (one lookup of the column)."""
        col = self.columns[field]
        if field in BOOLEAN_FIELDS:
            for row in rows:
                yield self.key(field, row)
            return
        for row in rows:
            yield normalize_key(field, row[col] if col < len(row) else "")

    def changes(self, fields: Mapping[str, Any]) -> dict[int, str]:
        """Column index -> new cell for the mapped ones of ``fields``; others are ignored."""
        return {
            col: to_cell(value)
            for field, value in fields.items()
            if (col := self.columns.get(field)) is not None
        }

    def new_row(self, rid: str, fields: Mapping[str, Any]) -> list[str]:
        """The cells of a new row with id ``rid``."""
        cells = [""] * len(self.header)
        cells[self.id_col] = rid
        columns = self.columns
        for field, value in fields.items():
            col = columns.get(field)
            if col is not None:
                cells[col] = value if type(value) is str else to_cell(value)
        return cells

    def padded(self, row: list[str]) -> list[str]:
        """A copy of ``row`` with at least as many cells as the header."""
        return row + [""] * (len(self.header) - len(row))


def resolve_layout(
    entity: str, spec: CsvEntitySettings, header: Sequence[str] | None, path: Path
) -> Layout:
    """Resolve ``spec`` against a file's header (None for a file without one, which
    gets the id column followed by the mapped columns).

    A header without the id column or without an explicitly mapped column is a
    :class:`ConfigurationError`: the settings do not fit the file.
    """
    if header is None:
        header = (spec.id, *spec.fields.values())
    positions: dict[str, int] = {}
    for index, name in enumerate(header):
        positions.setdefault(name, index)
    if spec.id not in positions:
        raise ConfigurationError(
            f"{path}: the header has no id column {spec.id!r} (columns: {_names(header)})"
        )
    columns: dict[str, int] = {}
    for field, column in spec.fields.items():
        if column not in positions:
            raise ConfigurationError(
                f"{path}: column {column!r} (mapped to {entity}.{field}) is not in the"
                f" header (columns: {_names(header)})"
            )
        columns[field] = positions[column]
    taken = {spec.id, *spec.fields.values()}
    for field in CANONICAL_FIELDS[entity]:
        if field not in columns and field in positions and field not in taken:
            columns[field] = positions[field]
    plan = tuple((field, col, field in BOOLEAN_FIELDS) for field, col in columns.items())
    return Layout(tuple(header), positions[spec.id], columns, positions, plan)


def _names(header: Sequence[str]) -> str:
    return ", ".join(repr(name) for name in header) or "none"
