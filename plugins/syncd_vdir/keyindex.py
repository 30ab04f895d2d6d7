"""A compact search index: normalised field value -> ids of the cards holding it."""

from __future__ import annotations

from collections.abc import Collection


class KeyIndex:
    """Ids by normalised value. Most values (e-mail addresses) belong to one card, so
    a lone id is kept as a plain string and only shared values get a set: a first
    sync indexes every card it writes, and a set per card would double the memory a
    large folder costs."""

    __slots__ = ("_ids",)

    def __init__(self) -> None:
        self._ids: dict[str, str | set[str]] = {}

    def add(self, key: str, rid: str) -> None:
        """Note that card ``rid`` holds ``key``."""
        found = self._ids.get(key)
        if found is None:
            self._ids[key] = rid
        elif isinstance(found, str):
            if found != rid:
                self._ids[key] = {found, rid}
        else:
            found.add(rid)

    def ids(self, key: str) -> Collection[str]:
        """The cards noted as holding ``key`` (a card may have changed since)."""
        found = self._ids.get(key)
        if found is None:
            return ()
        return (found,) if isinstance(found, str) else found
