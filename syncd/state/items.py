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
#: A list as JSON (the C encoder, made once: the lists hold strings and None only).
_list = json.JSONEncoder(ensure_ascii=False, check_circular=False, separators=(",", ":")).encode


#: A run item that says only "this record was created / updated / bound": (entity,
#: action, outcome, source side, source id, target id), the form the engine gives
#: most items in.
PlainItem = tuple[str, str, str, str, str, "str | None"]

_FIELDS = ("entity", "action", "outcome", "source_side", "source_id", "target_id")


def pack_items(items: Sequence[dict[str, Any] | PlainItem]) -> list[dict[str, Any]]:
    """Run items as rows to store: consecutive items that say only "this record was
    created / updated / bound" (a :data:`PlainItem`, or a dict with no error and no
    detail) and share their entity, action, outcome and side become one row listing
    their records' ids in ``detail`` (a batch's creates: one row, not one per
    record). :func:`unpack_items` gives the items back."""
    rows: list[dict[str, Any]] = []
    kind: tuple[Any, ...] | None = None
    records: list[tuple[Any, Any]] = []

    def close() -> None:
        if len(records) == 1:
            rows[-1]["source_id"], rows[-1]["target_id"] = records[0]
            rows[-1]["detail"] = None
        elif records:
            rows[-1]["detail"] = _RECORDS + _list(records) + "}"

    for item in items:
        if type(item) is not tuple:
            if item["error"] is not None or item["detail"] is not None:
                close()
                records, kind = [], None
                rows.append(item)
                continue
            item = tuple(item[name] for name in _FIELDS)
        key = item[:4]
        if key != kind:
            close()
            records, kind = [], key
            entity, action, outcome, side = key
            rows.append(
                {
                    "entity": entity,
                    "action": action,
                    "outcome": outcome,
                    "source_side": side,
                    "source_id": None,
                    "target_id": None,
                    "error": None,
                    "detail": None,
                }
            )
        records.append(item[4:])
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
