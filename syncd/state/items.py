"""Run items as the state store keeps them.

A run records what it did with every record (``syncd show``). Most of a large run's
items say only "created, ok": kept as a row each, a first run of 100,000 creates spent
8 % of its time inserting them. So consecutive items of one kind (and one detail, such
as the fields an update wrote) are kept as one row listing their records' ids, and
read back one by one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from operator import itemgetter
from typing import Any

from syncd.kit.jsontext import encoder

#: ``detail`` of a run-item row that stands for several records (see :func:`pack_items`)
_RECORDS = '{"packed_records":'
#: A list of ids as JSON.
_list = encoder(compact=True)


#: A run item that says only "this record was created / updated / bound": (entity,
#: action, outcome, source side, source id, target id), the form the engine gives
#: most items in.
PlainItem = tuple[str, str, str, str, "str | None", "str | None"]

#: What the items packed into one row share.
_SHARED = ("entity", "action", "outcome", "source_side", "detail")
_shared = itemgetter(*_SHARED)
#: A string as a JSON string literal (the C encoder's own function).
_string = json.encoder.encode_basestring


def pack_items(items: Sequence[dict[str, Any] | PlainItem]) -> list[dict[str, Any]]:
    """Run items as rows to store: consecutive items without an error that share
    their entity, action, outcome, side and detail (a batch's creates; the updates of
    one field) become one row listing their records' ids in ``detail``, with the
    detail they share. :func:`unpack_items` gives the items back."""
    rows: list[dict[str, Any]] = []
    kind: tuple[Any, ...] | None = None
    records: list[tuple[Any, Any]] = []

    def close() -> None:
        row = rows[-1]
        if len(records) == 1:
            row["source_id"], row["target_id"] = records[0]
        elif records:
            shared = row["detail"]
            extra = "" if shared is None else f',"detail":{_string(shared)}'
            row["detail"] = f"{_RECORDS}{_list(records)}{extra}}}"

    for item in items:
        if isinstance(item, tuple):
            key = (*item[:4], None)
            ids = item[4:]
        elif item["error"] is not None:
            if kind is not None:
                close()
            records, kind = [], None
            rows.append(item)
            continue
        else:
            key = _shared(item)
            ids = (item["source_id"], item["target_id"])
        if key != kind:
            if kind is not None:
                close()
            records, kind = [], key
            entity, action, outcome, side, detail = key
            rows.append(
                {
                    "entity": entity,
                    "action": action,
                    "outcome": outcome,
                    "source_side": side,
                    "source_id": None,
                    "target_id": None,
                    "error": None,
                    "detail": detail,
                }
            )
        records.append(ids)
    if kind is not None:
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
    packed = json.loads(detail)
    shared = packed.get("detail")
    for source_id, target_id in packed["packed_records"]:
        yield {**row, "source_id": source_id, "target_id": target_id, "detail": shared}
