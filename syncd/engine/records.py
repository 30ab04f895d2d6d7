"""Snapshots of records: a stable serialisation, its hash, and field differences."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

from syncd.entities import is_empty
from syncd.kit.jsontext import encoder

_dump = encoder(sort_keys=True, compact=True)


def dump(fields: Mapping[str, Any]) -> str:
    """Serialise canonical fields the same way every time (the stored snapshot)."""
    return _dump(fields if type(fields) is dict else dict(fields))


#: A string as :func:`dump` writes it (the C encoder's own function).
_string = json.encoder.encode_basestring


def replaced(serial: str, name: str, old: Any, new: Any) -> str | None:
    """What :func:`dump` gives for the fields ``serial`` holds with ``name``'s value
    ``old`` changed to ``new``, without serialising them again (a created contact's
    snapshot differs from the source's only by its translated company). None unless
    both values are strings.

    Exact because a string value escapes its quotes: the text ``"name":"old"`` can
    only be that field's key and value."""
    if type(old) is not str or type(new) is not str:
        return None
    key = f"{_string(name)}:"
    before = key + _string(old)
    if serial.count(before) != 1:
        return None
    return serial.replace(before, key + _string(new))


def new_key() -> str:
    """A fresh key for a create or an intent: see :func:`new_keys`."""
    return new_keys(1)[0]


_last_stamp = 0
_stamp_lock = threading.Lock()


def new_keys(count: int) -> list[str]:
    """``count`` fresh keys of 32 hex digits, ordered by creation time (as UUIDv7
    is): 13 digits of a microsecond count that no two keys of this process share,
    then 76 random bits.

    A create's key becomes the new record's id on systems where syncd chooses the
    id (csv, vdir, CardDAV), and so a key of the state store's index on bound ids.
    Random keys land all over that index, and a first run of 100,000 such
    bindings took three times as long to insert as keys that each land at its end.
    The random part keeps keys of different processes and machines apart."""
    global _last_stamp
    with _stamp_lock:
        first = max(time.time_ns() // 1000, _last_stamp + 1)
        _last_stamp = first + count - 1
    text = os.urandom(10 * count).hex()
    return [f"{first + index:013x}{text[20 * index : 20 * index + 19]}" for index in range(count)]


def fingerprint(serialised: str) -> str:
    """A short hash of a serialised snapshot: equal content, equal hash."""
    return hashlib.blake2b(serialised.encode(), digest_size=12).hexdigest()


def changed_fields(
    current: Mapping[str, Any], before: Mapping[str, Any], *, clears: bool = True
) -> dict[str, Any]:
    """Fields whose value differs from the snapshot. A field absent on either side
    counts as empty: a newly mapped field is sent once it has a value, and a field
    that disappeared comes out as ``None`` (a clear) unless ``clears`` is false."""
    changed = {name: value for name, value in current.items() if before.get(name) != value}
    if not clears:
        return changed
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


def snapshot_patched(snapshot: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`patched` for a stored snapshot, which holds no empty value already:
    only the ``changes`` are checked (this runs for every record a run updates)."""
    merged = dict(snapshot)
    for name, value in changes.items():
        if is_empty(value):
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged
