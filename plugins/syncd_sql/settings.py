"""Settings of the ``sql`` connector, as users write them in the configuration file."""

from __future__ import annotations

from pydantic import ConfigDict, Field, field_validator

from syncd.entities import CANONICAL_FIELDS, is_entity
from syncd.kit.secrets import Secret
from syncd.plugin.connector import ConnectorSettings


class SqlEntitySettings(ConnectorSettings):
    """Where one entity type lives: its table, key columns and field mapping.

    ``fields`` maps canonical (or custom) field names to native columns; canonical
    fields left out map to a column of the same name when the table has one.
    ``created_key`` names a text column where each new row gets the key syncd created
    it under, so that a create interrupted by a crash is found again by that key.
    """

    table: str = Field(min_length=1)
    id: str = Field(default="id", min_length=1)
    updated_at: str | None = None
    deleted: str | None = None
    created_key: str | None = None
    fields: dict[str, str] = Field(default_factory=dict)


class SqlSettings(ConnectorSettings):
    """Settings of a ``sql`` connector: the database URL (a secret, since it may carry
    a password), the tables per entity, and paging / watermark tuning."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    url: Secret
    # ``schema`` would shadow a BaseModel attribute, hence the alias.
    schema_: str | None = Field(default=None, alias="schema")
    page_size: int = Field(default=1000, ge=1)
    overlap: float = Field(default=0, ge=0)
    entities: dict[str, SqlEntitySettings] = Field(min_length=1)

    @field_validator("entities")
    @classmethod
    def _known_entities(cls, value: dict[str, SqlEntitySettings]) -> dict[str, SqlEntitySettings]:
        unknown = [name for name in value if not is_entity(name)]
        if unknown:
            known = ", ".join(CANONICAL_FIELDS)
            raise ValueError(f"unknown entity type(s) {', '.join(unknown)} (known: {known})")
        return value
