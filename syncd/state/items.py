"""Run items as the state store keeps them.

A run records what it did with every record (``syncd show``). Most of a large run's
items say only "created, ok": kept as a row each, a first run of 100,000 creates spent
8 % of its time inserting them. So consecutive plain items of one kind are kept as one
row listing their records' ids, and read back one by one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

#: ``detail`` of a run-item row that stands for several records (see :func:`pack_items`)
_RECORDS = '{"packed_records":'


def pack_items(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run items as rows to store: consecutive items that say only "this record was
    created / updated / bound" (no error, no detail) and share their entity, action,
    outcome and side become one row listing their records' ids in ``detail`` (a
    batch's creates: one row, not one per record). :func:`unpack_items` gives the
    items back."""
    rows: list[dict[str, Any]] = []
    kind: tuple[Any, ...] | None = None
    records: list[list[Any]] = []

    def close() -> None:
        if len(records) == 1:
            rows[-1]["source_id"], rows[-1]["target_id"] = records[0]
            rows[-1]["detail"] = None
        elif records:
            rows[-1]["detail"] = _RECORDS + json.dumps(records, ensure_ascii=False) + "}"

    for item in items:
        if item["error"] is not None or item["detail"] is not None:
            close()
            records, kind = [], None
            rows.append(item)
            continue
        key = (item["entity"], item["action"], item["outcome"], item["source_side"])
        if key != kind:
            close()
            records, kind = [], key
            rows.append({**item, "source_id": None, "target_id": None})
        records.append([item["source_id"], item["target_id"]])
    close()
    return rows


def unpack_items(row: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The run items a stored row stands for (one, or those :func:`pack_items`
    listed in it), without the row's own id."""
    row.pop("id", None)
    detail = row["detail"]
    if row["source_id"] is not None or not detail or not detail.startswith(_RECORDS):
        yield row
        return
    for source_id, target_id in json.loads(detail)["packed_records"]:
        yield {**row, "source_id": source_id, "target_id": target_id, "detail": None}
