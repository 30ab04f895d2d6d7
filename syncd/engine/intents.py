"""Write intents: what a batch of creates is about to send, committed before it is sent.

One intent row covers a whole batch (a JSON list with an entry per create), so a batch
of a thousand creates costs one insert and one delete in the state store, not two
thousand. An entry keeps what :mod:`syncd.engine.resolve` needs to find and bind the
record a crashed run created, and no more: the create's idempotency key
(``k``), the source record's id (``s``) and snapshot hash (``h``), and, for a target
that chooses its own ids, the sent values of the match fields (``m``) to find the
record by. The snapshots themselves are not written: the source record is read again
when an intent is resolved (see there). Rows written by earlier versions, which held
the whole snapshots, are still read.

Where the target can list the records created after a mark (see
:meth:`syncd.plugin.connector.Connector.create_mark`), the row also keeps the mark taken
before the batch (``w``), and each entry how to recognise its record among those:
the names of the fields it sent (``f``, an index into the row's list of field-name
lists ``n``) and the hash of the values sent (``v``; absent when it is ``h``, as for
a record sent as it was read). The row's ``source_data`` is then an object holding
``w``, ``n`` and the entries (``c``) instead of the bare list of entries.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from syncd.engine.held import HELD
from syncd.engine.records import dump, new_key

#: ``target_data`` of a row that holds a batch (older rows hold one create each).
BATCH = "batch"
#: A string as a JSON string literal (the C encoder itself: ids and keys are strings).
_key = json.encoder.encode_basestring


def pack(
    entity: str,
    target_side: str,
    creates: Sequence[tuple[str, str, str, Mapping[str, Any] | None]],
    mark: str | None = None,
    sent: Sequence[tuple[str, int]] = (),
    names: Sequence[Sequence[str]] = (),
) -> dict[str, Any]:
    """One intent row for ``creates``: (key, source id, source snapshot hash, the
    sent match values or None when the target takes the key as the new id).
    With the target's create ``mark``: ``sent`` holds per create the hash of the
    values sent and the index in ``names`` of the names of the fields sent (and the
    match values are not kept: the mark finds the records)."""
    if mark is None:
        entries = ",".join(
            f'{{"k":{_key(key)},"s":{_key(source_id)},"h":"{digest}"}}'
            if match is None
            else f'{{"k":{_key(key)},"s":{_key(source_id)},"h":"{digest}","m":{dump(match)}}}'
            for key, source_id, digest, match in creates
        )
        data = f"[{entries}]"
    else:
        entries = ",".join(
            f'{{"k":{_key(key)},"s":{_key(source_id)},"h":"{digest}","f":{index}}}'
            if sent_hash == digest
            else f'{{"k":{_key(key)},"s":{_key(source_id)},"h":"{digest}","f":{index},'
            f'"v":"{sent_hash}"}}'
            for (key, source_id, digest, _), (sent_hash, index) in zip(creates, sent, strict=True)
        )
        listed = json.dumps([list(n) for n in names])
        data = f'{{"w":{_key(mark)},"n":{listed},"c":[{entries}]}}'
    return {
        "key": new_key(),
        "entity": entity,
        "target_side": target_side,
        "source_id": "",
        "source_data": data,
        "target_data": BATCH,
    }


def unpack(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One dict per create from intent rows: ``key`` (the create's idempotency key),
    ``row`` (the intent row to drop once settled), ``target_side``, ``source_id``,
    ``source_hash`` and ``sent`` (the sent values known: the match fields' or, from
    an older row, all of them). An older row's entry also has the whole
    ``source_data``; a current one has None there, and the source is read again.
    Entries of a row with a create mark also have ``mark`` (else None), and
    ``sent_names`` and ``sent_hash`` (see :func:`pack`); ``held`` says the entry waits
    for a person (see :mod:`syncd.engine.held`)."""
    result = []
    for row in rows:
        if row["target_data"] not in (BATCH, HELD):  # one create, snapshots whole
            source = json.loads(row["source_data"])
            sent = json.loads(row["target_data"])
            result.append(_entry(row, row["key"], row["source_id"], source, None, sent))
            continue
        data = json.loads(row["source_data"])
        traced = isinstance(data, dict)
        for entry in data["c"] if traced else data:
            source = entry.get("d")  # only in older rows, with "t" (None: sent as is)
            sent = entry.get("m") or entry.get("t") or source or {}
            item = _entry(row, entry["k"], entry["s"], source, entry.get("h"), sent)
            item["held"] = row["target_data"] == HELD
            if traced:
                item["mark"] = data["w"]
                item["sent_names"] = tuple(data["n"][entry["f"]])
                item["sent_hash"] = entry.get("v", entry.get("h"))
            result.append(item)
    return result


def _entry(
    row: dict[str, Any],
    key: str,
    source_id: str,
    source_data: dict[str, Any] | None,
    source_hash: str | None,
    sent: dict[str, Any],
) -> dict[str, Any]:
    return {
        "key": key,
        "row": row["key"],
        "target_side": row["target_side"],
        "source_id": source_id,
        "source_data": source_data,
        "source_hash": source_hash,
        "sent": sent,
        "mark": None,
        "held": False,
    }
