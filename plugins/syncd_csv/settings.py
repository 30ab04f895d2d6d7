"""Settings of the ``csv`` connector, as users write them in ``[connectors.NAME]``."""

from __future__ import annotations

from collections import Counter

from pydantic import Field, field_validator, model_validator

from syncd.entities import CANONICAL_FIELDS, is_entity
from syncd.plugin.connector import ConnectorSettings


class CsvEntitySettings(ConnectorSettings):
    """Where one entity type lives: its file, its id column and its field mapping.

    ``fields`` maps a canonical (or custom) field name to a column. Canonical fields
    left out map to a column of the same name when the header has one; custom fields
    are only synced when mapped here.
    """

    file: str = Field(min_length=1)
    id: str = Field(min_length=1)
    fields: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_field_per_column(self) -> CsvEntitySettings:
        """A column written by two fields (or by a field and the id) would be ambiguous."""
        columns = list(self.fields.values())
        if self.id in columns:
            raise ValueError(f"the id column {self.id!r} cannot also be mapped to a field")
        twice = sorted(column for column, count in Counter(columns).items() if count > 1)
        if twice:
            raise ValueError(f"columns mapped to more than one field: {', '.join(twice)}")
        if any(not column for column in columns):
            raise ValueError("a field cannot be mapped to an empty column name")
        return self


class CsvSettings(ConnectorSettings):
    """Settings of the csv connector: a directory (relative to the configuration
    file's folder) holding one CSV file per entity type."""

    path: str = Field(min_length=1)
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    page_size: int = Field(default=1000, ge=1)
    entities: dict[str, CsvEntitySettings] = Field(min_length=1)

    @field_validator("delimiter")
    @classmethod
    def _usable_delimiter(cls, value: str) -> str:
        """The quote character and line breaks cannot separate fields."""
        if value in {'"', "\r", "\n"}:
            raise ValueError(f"{value!r} cannot be used as a delimiter")
        return value

    @field_validator("entities")
    @classmethod
    def _known_entities(cls, value: dict[str, CsvEntitySettings]) -> dict[str, CsvEntitySettings]:
        """Only canonical entity types can be synced, each from a file of its own."""
        unknown = sorted(name for name in value if not is_entity(name))
        if unknown:
            known = ", ".join(CANONICAL_FIELDS)
            raise ValueError(f"unknown entity type {', '.join(unknown)} (known: {known})")
        files = Counter(spec.file for spec in value.values())
        shared = sorted(name for name, count in files.items() if count > 1)
        if shared:
            raise ValueError(f"each entity needs a file of its own: {', '.join(shared)}")
        return value
