"""Watermark cursors: the (updated_at, id) of the last row read, as a JSON string.

Each value is stored with a type tag, so a datetime comes back a datetime and an int an
int: the keyset query compares them with the columns, and PostgreSQL refuses to
compare a timestamp with text.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

_VERSION = 1


@dataclass(frozen=True, slots=True)
class Watermark:
    """Where an incremental listing resumes: after the row with this (stamp, id).
    An empty watermark (both None) means "from the beginning"."""

    stamp: Any = None
    id: Any = None

    @property
    def empty(self) -> bool:
        """True when nothing has been read yet."""
        return self.stamp is None


def encode(mark: Watermark) -> str:
    """Serialise a watermark as a compact, type-tagged JSON string."""
    body = {"v": _VERSION, "ts": _tag(mark.stamp), "id": _tag(mark.id)}
    return json.dumps(body, separators=(",", ":"))


def decode(text: str) -> Watermark:
    """Parse a cursor written by :func:`encode`; raise ValueError for anything else."""
    try:
        body = json.loads(text)
        if not isinstance(body, dict) or body.get("v") != _VERSION:
            raise ValueError("unknown cursor format")
        return Watermark(_untag(body["ts"]), _untag(body["id"]))
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"malformed cursor: {exc}") from None


_ENCODERS: list[tuple[type, str, Callable[[Any], Any]]] = [
    # bool before int, datetime before date: isinstance would take the base class.
    (bool, "b", bool),
    (int, "i", int),
    (float, "f", float),
    (Decimal, "d", str),
    (datetime, "dt", datetime.isoformat),
    (date, "da", date.isoformat),
    (time, "t", time.isoformat),
    (uuid.UUID, "u", str),
    (bytes, "x", bytes.hex),
    (str, "s", str),
]

_DECODERS: dict[str, Callable[[Any], Any]] = {
    "b": bool,
    "i": int,
    "f": float,
    "d": Decimal,
    "dt": datetime.fromisoformat,
    "da": date.fromisoformat,
    "t": time.fromisoformat,
    "u": uuid.UUID,
    "x": bytes.fromhex,
    "s": str,
}


def _tag(value: Any) -> list[Any] | None:
    if value is None:
        return None
    for kind, tag, convert in _ENCODERS:
        if isinstance(value, kind):
            return [tag, convert(value)]
    return ["s", str(value)]


def _untag(item: Any) -> Any:
    if item is None:
        return None
    tag, value = item
    if tag not in _DECODERS:
        raise ValueError(f"unknown value tag {tag!r}")
    return _DECODERS[tag](value)
