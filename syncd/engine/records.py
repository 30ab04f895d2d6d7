"""Snapshots of records: a stable serialisation, its hash, and field differences."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from syncd.entities import is_empty

_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def dump(fields: Mapping[str, Any]) -> str:
    """Serialise canonical fields the same way every time (the stored snapshot)."""
    return _encode(fields)


def fingerprint(serialised: str) -> str:
    """A short hash of a serialised snapshot: equal content, equal hash."""
    return hashlib.blake2b(serialised.encode(), digest_size=12).hexdigest()


def changed_fields(current: Mapping[str, Any], before: Mapping[str, Any]) -> dict[str, Any]:
    """Fields whose value differs from the snapshot (a field absent before counts as
    empty, so a newly mapped field is sent once it has a value)."""
    return {name: value for name, value in current.items() if before.get(name) != value}


def without_empty(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Drop empty values: an empty value never overwrites a filled one."""
    return {name: value for name, value in fields.items() if not is_empty(value)}
