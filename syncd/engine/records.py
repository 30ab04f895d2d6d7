"""Snapshots of records: a stable serialisation, its hash, and field differences."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from syncd.entities import is_empty

_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def dump(fields: Mapping[str, Any]) -> str:
    """Serialise canonical fields the same way every time (the stored snapshot)."""
    return _encode(fields)


def new_key() -> str:
    """A fresh random key (128 bits as 32 hex digits) for a create or an intent."""
    return os.urandom(16).hex()


def new_keys(count: int) -> list[str]:
    """``count`` fresh keys like :func:`new_key`, from one read of the random source."""
    text = os.urandom(16 * count).hex()
    return [text[start : start + 32] for start in range(0, 32 * count, 32)]


def fingerprint(serialised: str) -> str:
    """A short hash of a serialised snapshot: equal content, equal hash."""
    return hashlib.blake2b(serialised.encode(), digest_size=12).hexdigest()


def changed_fields(current: Mapping[str, Any], before: Mapping[str, Any]) -> dict[str, Any]:
    """Fields whose value differs from the snapshot. A field absent on either side
    counts as empty: a newly mapped field is sent once it has a value, and a field
    that disappeared comes out as ``None`` (a clear)."""
    changed = {name: value for name, value in current.items() if before.get(name) != value}
    for name in before.keys() - current.keys():
        if before[name] is not None:
            changed[name] = None
    return changed


def without_empty(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Drop empty values: an empty value never overwrites a filled one."""
    return {name: value for name, value in fields.items() if not is_empty(value)}


def patched(fields: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` after writing ``changes`` onto them, in snapshot form (a cleared
    field is absent, as :meth:`EntityRules.select` leaves it)."""
    merged = {**fields, **changes}
    return {name: value for name, value in merged.items() if not is_empty(value)}
