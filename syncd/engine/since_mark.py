"""Recognising the records interrupted creates made among those the target created
after the mark their intent took (see :meth:`syncd.plugin.connector.Connector.create_mark`).

A record created after the mark is a create's record when its fields hold exactly the
values the create sent: the same hash over the same field names. Records other writers
created meanwhile do not count unless they are identical to what a create sent, and
then either is as good a match as the other. Identical creates are paired with
identical records one to one. A create whose record is not among them was not carried
out: everything created after the mark was looked at.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from syncd.engine.records import dump, fingerprint
from syncd.plugin.connector import Record

#: (field names sent, hash of the values sent)
Trace = tuple[tuple[str, ...], str]


def recognise(
    intents: list[dict[str, Any]],
    pages: Iterable[list[Record]],
    taken: Callable[[list[str]], set[str]],
) -> dict[str, Record]:
    """The records of ``intents`` (unpacked, of one mark) among ``pages`` of records
    created after it, by create key; ``taken`` gives the ids among a page's that are
    bound already (never a create's record)."""
    waiting: dict[Trace, list[str]] = {}
    for intent in intents:
        trace = (intent["sent_names"], intent["sent_hash"])
        waiting.setdefault(trace, []).append(intent["key"])
    names = {trace[0] for trace in waiting}
    found: dict[str, Record] = {}
    for page in pages:
        bound = taken([record.id for record in page])
        for record in page:
            if record.id in bound:
                continue
            for fields in names:
                keys = waiting.get((fields, _hash(record, fields)))
                if keys:
                    found[keys.pop()] = record
                    break
        if not any(waiting.values()):
            break
    return found


def _hash(record: Record, names: tuple[str, ...]) -> str:
    """The hash of ``record``'s values of ``names``, as a create's sent values hash;
    "" when one of them is empty (a create sends no empty value)."""
    values = record.fields
    sent = {}
    for name in names:
        value = values.get(name)
        if value is None or (type(value) is str and not value.strip()):
            return ""
        sent[name] = value
    return fingerprint(dump(sent))
