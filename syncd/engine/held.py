"""Interrupted creates that need a person: the record may or may not exist on the
target, and nothing can tell which (no match-key value to find it by, or several
records that match).

Such a create is never sent again on a guess. Its intent entry is kept as an intent
row of its own (``target_data`` :data:`HELD`), looked at again by every run, which
reports the record as a failed item with what a person can do, and creates nothing
for it, until the person acts:

- ``syncd bindings link`` of the record and the one the create made: the next run
  finds the record bound and forgets the intent;
- ``syncd bindings release``: no record was made (or a new one is wanted anyway);
  the intent is dropped and the next run creates the record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from syncd.engine.ports import Side
from syncd.engine.records import new_key

#: ``target_data`` of an intent row that holds one create waiting for a person.
HELD = "held"


def held_row(entity: str, intent: dict[str, Any]) -> dict[str, Any]:
    """An intent row holding ``intent`` (one unpacked create) for a person; it is read
    back by :func:`syncd.engine.intents.unpack` like a batch of one."""
    entry: dict[str, Any] = {
        "k": intent["key"],
        "s": intent["source_id"],
        "h": intent["source_hash"],
        "m": intent["sent"],
    }
    if intent.get("source_data") is not None:
        entry["d"] = intent["source_data"]
    return {
        "key": new_key(),
        "entity": entity,
        "target_side": intent["target_side"],
        "source_id": intent["source_id"],
        "source_data": json.dumps([entry], separators=(",", ":")),
        "target_data": HELD,
    }


def held_keys(rows: Iterable[dict[str, Any]], target_side: str, source_id: str) -> list[str]:
    """Keys of the held intent rows of one source record, among intent ``rows``."""
    return [
        row["key"]
        for row in rows
        if row["target_data"] == HELD
        and row["target_side"] == target_side
        and row["source_id"] == source_id
    ]


def reason(
    pair: str, entity: str, source_side: str, source_id: str, target_side: str, why: str
) -> str:
    """What a person reads about a held create: what happened and both ways out."""
    other = f"{target_side.upper()}_ID"
    ids = f"{source_id} {other}" if source_side == Side.LEFT else f"{other} {source_id}"
    return (
        f"needs a person: an earlier run was interrupted while creating this {entity} on "
        f"{target_side}, and it may exist there already ({why}); if it does, link it with "
        f"`syncd bindings link {pair} {entity} {ids}`, else let the next run create it "
        f"with `syncd bindings release {pair} {entity} --{source_side} {source_id}`"
    )
