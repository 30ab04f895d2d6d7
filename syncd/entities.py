"""Canonical entity types and their fields.

Every connector maps its native records to these canonical fields, so the engine can
compare and merge records from systems that name things differently. A field name
outside these lists is a *custom* field: it takes part in a pair only where both
connectors map it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

#: An entity type's name.
Entity = Literal["company", "contact"]

CONTACT: Final = "contact"
COMPANY: Final = "company"

#: Entity types in dependency order: a contact may refer to a company.
ENTITY_ORDER: tuple[Entity, ...] = (COMPANY, CONTACT)

CANONICAL_FIELDS: dict[str, tuple[str, ...]] = {
    CONTACT: (
        "first_name",
        "last_name",
        "email",
        "phone",
        "mobile",
        "fax",
        "title",
        "company",
        "private",
        "notes",
    ),
    COMPANY: (
        "name",
        "phone",
        "email",
        "website",
        "street",
        "city",
        "region",
        "postal_code",
        "country",
        "account_manager",
        "kind",
    ),
}

#: Fields whose values are booleans; every other canonical value is a string.
BOOLEAN_FIELDS: frozenset[str] = frozenset({"private"})

#: Fields that refer to a record of another entity type: (entity, field) -> target entity.
REFERENCES: dict[tuple[str, str], str] = {(CONTACT, "company"): COMPANY}

#: The field that names a record of an entity, used when a reference must become a name.
NAME_FIELD: dict[str, str] = {COMPANY: "name", CONTACT: "email"}

#: Match keys used to resolve interrupted creates when a pair configures none.
DEFAULT_MATCH: dict[str, tuple[str, ...]] = {CONTACT: ("email",), COMPANY: ("name",)}

_TRUE = frozenset({"1", "true", "yes", "y", "on", "t"})
_FALSE = frozenset({"0", "false", "no", "n", "off", "f", ""})


def is_entity(name: str) -> bool:
    """Tell whether ``name`` is a canonical entity type."""
    return name in CANONICAL_FIELDS


def to_bool(value: Any) -> bool | None:
    """Read a boolean the way spreadsheets and databases write them; None stays None."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return None if text == "" else False
    raise ValueError(f"not a boolean: {value!r}")


def canonical_value(field: str, value: Any) -> Any:
    """Bring a native value into canonical form.

    Canonical values are strings (or booleans for boolean fields); an empty or blank
    value is ``None``, so that "empty" means the same thing in every system.
    """
    if value is None:
        return None
    if field in BOOLEAN_FIELDS:
        return to_bool(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = value if isinstance(value, str) else _format_scalar(value)
    return text if text.strip() else None


def _format_scalar(value: Any) -> str:
    isoformat = getattr(value, "isoformat", None)
    if isoformat is not None:
        return str(isoformat())
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def canonical_fields(entity: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Apply :func:`canonical_value` to every field of a record."""
    return {name: canonical_value(name, value) for name, value in values.items()}


def normalize_key(field: str, value: Any) -> str | None:
    """Normalise a value for matching: e-mail lower-cased and trimmed, other text
    case-folded with white space collapsed. Empty values never match anything."""
    if value is None:
        return None
    text = str(value)
    key = text.strip().lower() if field == "email" else " ".join(text.split()).casefold()
    return key or None


def is_empty(value: Any) -> bool:
    """Tell whether a canonical value counts as empty (never overwrites a filled one)."""
    return value is None or (isinstance(value, str) and not value.strip())
