"""Write intents: what a batch of creates is about to send, committed before it is sent.

One intent row covers a whole batch (a JSON list with an entry per create), so a batch
of a thousand creates costs one insert and one delete in the state store, not two
thousand. An entry keeps the create's idempotency key, the source record's id, the
source snapshot and what was sent (omitted when it equals the snapshot), which is what
:meth:`_EntityRun.resolve_intents` needs to find and bind the record a crashed run
created.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from syncd.engine.records import new_key

#: ``target_data`` of a row that holds a batch (older rows hold one create each).
BATCH = "batch"
#: A string as a JSON string literal (the C encoder itself: ids and keys are strings).
_key = json.encoder.encode_basestring  # type: ignore[attr-defined]


def pack(
    entity: str, target_side: str, creates: Sequence[tuple[str, str, str, str | None]]
) -> dict[str, Any]:
    """One intent row for ``creates``: (key, source id, source snapshot, sent fields
    or None when they equal the snapshot), the snapshots already serialised."""
    entries = ",".join(
        f'{{"k":{_key(key)},"s":{_key(source_id)},"d":{source},"t":{sent or "null"}}}'
        for key, source_id, source, sent in creates
    )
    return {
        "key": new_key(),
        "entity": entity,
        "target_side": target_side,
        "source_id": "",
        "source_data": f"[{entries}]",
        "target_data": BATCH,
    }


def unpack(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One dict per create from intent rows: ``key`` (the create's idempotency key),
    ``row`` (the intent row to drop once settled), ``target_side``, ``source_id``,
    ``source_data`` and ``target_data`` (both as fields)."""
    result = []
    for row in rows:
        if row["target_data"] != BATCH:
            result.append(
                {
                    "key": row["key"],
                    "row": row["key"],
                    "target_side": row["target_side"],
                    "source_id": row["source_id"],
                    "source_data": json.loads(row["source_data"]),
                    "target_data": json.loads(row["target_data"]),
                }
            )
            continue
        for entry in json.loads(row["source_data"]):
            source = entry["d"]
            result.append(
                {
                    "key": entry["k"],
                    "row": row["key"],
                    "target_side": row["target_side"],
                    "source_id": entry["s"],
                    "source_data": source,
                    "target_data": source if entry["t"] is None else entry["t"],
                }
            )
    return result
