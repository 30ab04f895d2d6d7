"""Write-ahead records of two-way updates, and settling the ones a crash left open.

In a two-way pair an update written to one side comes back in that side's change feed
at the next run, where the stored snapshot recognises it as syncd's own echo. A
process killed after the write and before the state commit that records the new
snapshots leaves the old ones: the echo then looks like a person's edit and, if the
record was edited again on the other side, like a conflict that the pair's rule may
settle against that edit.

So before a two-way batch that settles bound records is written, one intent row of
its own kind (``target_data`` is :data:`UPDATES`) is committed with an entry per
updated (or only snapshotted) record: the source and target ids (``s``, ``t``), the
fields sent to the target (``w``) and written back onto the source (``b``), and the
snapshots the batch's commit gives each side (``T``, ``S``: serialised as the binding
holds them, which the batch computes anyway). The batch's own commit drops the row
with the bindings it records. A row still open at the next run is settled by
:class:`InterruptedUpdates` before either side's changes are read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from syncd.engine.plan import Flow, Op
from syncd.engine.records import dump, fingerprint, new_key, patched, snapshot_patched
from syncd.engine.rules import EntityRules
from syncd.entities import is_empty
from syncd.plugin.connector import Connector, Record
from syncd.state.rows import BatchCommit, BindingRow

#: ``target_data`` of an intent row that records updates (create intents hold others).
UPDATES = "updates"
#: A string as a JSON string literal (ids are strings).
_key = json.encoder.encode_basestring
#: What a settled write's run item says.
NOTE = {"note": "written by an interrupted run; recorded now"}


def is_updates(row: dict[str, Any]) -> bool:
    """True for an intent row that records updates rather than creates."""
    return row["target_data"] == UPDATES


def expected_snapshots(flow: Flow, op: Op) -> None:
    """Set ``op.target_snapshot`` and ``op.source_snapshot``: the serialised snapshot
    and hash each side holds once the op's writes land (computed here, before the
    writes, and recorded by the applier after them)."""
    binding = op.binding
    assert binding is not None
    if op.send:
        data = dump(snapshot_patched(binding.data_on(flow.target_side), op.send))
        op.target_snapshot = (data, fingerprint(data))
    if op.back:
        data = dump(patched(op.source_fields or {}, op.back))
        op.source_snapshot = (data, fingerprint(data))


def pack(flow: Flow, ops: Sequence[Op]) -> dict[str, Any]:
    """One intent row for the two-way ``ops`` of a batch that settle a bound record
    (updates, and snapshots that write nothing), their snapshots computed with
    :func:`expected_snapshots`, to be committed before any of them is written."""
    side = flow.target_side
    entries = []
    for op in ops:
        binding = op.binding
        assert binding is not None
        if op.target_snapshot is not None:
            target = op.target_snapshot[0]
        else:
            target = binding.get("data", side) or "{}"
        if op.source_snapshot is not None:
            source = op.source_snapshot[0]
        else:
            if op.source_serial is None:
                op.source_serial = dump(op.source_fields or {})
            source = op.source_serial
        text = f'{{"s":{_key(op.source_id)},"t":{_key(op.target_id or "")}'
        if op.send:
            text += f',"w":{dump(op.send)}'
        if op.back:
            text += f',"b":{dump(op.back)}'
        entries.append(f'{text},"T":{target},"S":{source}}}')
    return {
        "key": new_key(),
        "entity": ops[0].entity,
        "target_side": side,
        "source_id": "",
        "source_data": f"[{','.join(entries)}]",
        "target_data": UPDATES,
    }


class InterruptedUpdates:
    """Settles the open update records of one entity type in one direction: where the
    writes landed, the binding gets the snapshots a completed commit would have left,
    so the writes are no change at the next read and later edits are."""

    def __init__(self, flow: Flow, rules: EntityRules) -> None:
        self.flow = flow
        self.rules = rules

    def settle(self, rows: Iterable[dict[str, Any]], commit: BatchCommit) -> int:
        """Add to ``commit`` the bindings the entries of ``rows`` (update intent rows
        of this direction, oldest first) settle, a run item per write found, and the
        rows themselves as done. Returns the number of writes found.

        An entry whose writes all landed (each written side holds every written
        value; an entry that writes nothing is settled as it is) gives both sides the
        snapshots the batch's commit would have recorded: what changed since is a
        change. Otherwise each side still takes those snapshots, which hold the values
        the merge read from it, except for the written fields that are not there (the
        write never landed, or a person changed the field since): those keep both
        sides' old snapshot values, so they are merged again as they would have been.
        Keeping a whole side's old snapshot instead would forget what the merge read
        there, and a field that a person then set back to its old value would look
        unchanged while the other side holds the value syncd wrote from it.
        """
        flow, entity = self.flow, self.rules.entity
        entries: list[dict[str, Any]] = []
        for row in rows:
            entries.extend(json.loads(row["source_data"]))
            commit.done_intents.append(row["key"])
        if not entries:
            return 0
        bindings = flow.store.bindings_for(
            flow.pair, entity, flow.source_side, list({e["s"] for e in entries})
        )
        sources = _get(flow.source, entity, [e["s"] for e in entries if e["s"] in bindings])
        targets = _get(flow.target, entity, [e["t"] for e in entries if e["s"] in bindings])
        changed: dict[int, BindingRow] = {}
        found = 0
        for entry in entries:
            binding = bindings.get(entry["s"])
            if binding is None or binding.id_on(flow.target_side) != entry["t"]:
                continue
            sides = (
                (flow.target_side, targets.get(entry["t"]), entry.get("w") or {}, entry["T"]),
                (flow.source_side, sources.get(entry["s"]), entry.get("b") or {}, entry["S"]),
            )
            there = [self._there(record, written) for _, record, written, _ in sides]
            missing: set[str] = set()
            for (_, _, written, _), held in zip(sides, there, strict=True):
                missing.update(name for name in written if name not in held)
            for index, (side, record, _, snapshot) in enumerate(sides):
                self._snapshot(
                    binding, side, record, _kept(snapshot, binding.data_on(side), missing)
                )
                if there[index]:
                    found += 1
                    self._item(
                        commit, entry, sorted(there[index]), reverse=side == flow.source_side
                    )
            changed[id(binding)] = binding
        commit.changed_bindings.extend(changed.values())
        return found

    def _there(self, record: Record | None, written: dict[str, Any] | None) -> dict[str, Any]:
        """The fields of ``written`` that ``record`` holds with the written value."""
        if not written or record is None:
            return {}
        fields = self.rules.select(record.fields)
        return {
            name: value
            for name, value in written.items()
            if fields.get(name) == (None if is_empty(value) else value)
        }

    def _snapshot(
        self, binding: BindingRow, side: str, record: Record | None, fields: dict[str, Any]
    ) -> None:
        """Record ``fields`` as ``side``'s snapshot; the version is the record's where
        it is exactly that snapshot still, else the binding's stays."""
        data = dump(fields)
        digest = fingerprint(data)
        version, deleted = binding.get("version", side), binding.get("deleted", side)
        if record is not None and fingerprint(dump(self.rules.select(record.fields))) == digest:
            version = record.version
        binding.snapshot(side, data, digest, version)
        binding.set("deleted", side, deleted)

    def _item(
        self, commit: BatchCommit, entry: dict[str, Any], fields: list[str], *, reverse: bool
    ) -> None:
        flow = self.flow
        side, source_id, target_id = (
            (flow.target_side, entry["t"], entry["s"])
            if reverse
            else (flow.source_side, entry["s"], entry["t"])
        )
        commit.items.append(
            {
                "entity": self.rules.entity,
                "action": "update",
                "outcome": "ok",
                "source_side": side,
                "source_id": source_id,
                "target_id": target_id,
                "error": None,
                "detail": dump({**NOTE, "fields": fields}),
            }
        )


def _kept(snapshot: dict[str, Any], old: dict[str, Any], names: set[str]) -> dict[str, Any]:
    """``snapshot`` with the fields ``names`` as the ``old`` snapshot holds them."""
    if not names:
        return snapshot
    kept = {name: value for name, value in snapshot.items() if name not in names}
    kept.update((name, old[name]) for name in names if name in old)
    return kept


def _get(connector: Connector, entity: str, ids: list[str]) -> dict[str, Record]:
    """Records of ``ids`` (those that exist), fetched a thousand at a time."""
    unique = list(dict.fromkeys(ids))
    found: dict[str, Record] = {}
    for start in range(0, len(unique), 1000):
        found.update(connector.get(entity, unique[start : start + 1000]))
    return found
