"""Planning: what to do with each change read from the source side.

The planner turns a page of source records (and deleted ids) into operations:
bind to an existing record, create, update the changed fields, delete, refuse, or skip
with a reason. It reads bindings and candidates in bulk per page and never writes;
:mod:`syncd.engine.apply` carries the operations out.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from syncd.connector import Connector, Record
from syncd.engine.records import changed_fields, dump, fingerprint, without_empty
from syncd.engine.references import ReferenceTranslator
from syncd.engine.rules import EntityRules
from syncd.entities import REFERENCES, normalize_key
from syncd.state import BindingRow, Store


@dataclass(slots=True)
class Op:
    """One planned operation on the target side, and what to record about it."""

    kind: str
    entity: str
    source_id: str
    binding: BindingRow | None = None
    target_id: str | None = None
    send: dict[str, Any] = field(default_factory=dict)
    source_fields: dict[str, Any] | None = None
    source_version: str | None = None
    target_fields: dict[str, Any] | None = None
    target_version: str | None = None
    reason: str | None = None
    key: str | None = None
    source_hash: str | None = None
    detail: dict[str, Any] | None = None


@dataclass
class Flow:
    """One direction of a pair: where changes are read and where they are written."""

    pair: str
    store: Store
    source: Connector
    target: Connector
    source_side: str
    target_side: str
    update_existing: bool = True
    recreate_deleted: bool = False
    propagate_deletes: bool = False
    may_create: bool = True


class Planner:
    """Plans pages of changes of one entity type for one :class:`Flow`."""

    def __init__(self, flow: Flow, rules: EntityRules, translator: ReferenceTranslator) -> None:
        self.flow = flow
        self.rules = rules
        self.translator = translator
        self.reference = REFERENCES.get((rules.entity, "company")) and "company" in rules.fields
        #: Target ids bound by operations not yet committed (no double binding).
        self.claimed: set[str] = set()
        self.check_failures = True

    # -- entry points -------------------------------------------------------------------

    def plan(
        self, records: Sequence[Record], deleted: Sequence[str], *, force: bool = False
    ) -> list[Op]:
        """Plan a page: records read from the source and ids deleted there."""
        flow, entity = self.flow, self.rules.entity
        ids = [r.id for r in records] + list(deleted)
        bindings = flow.store.bindings_for(flow.pair, entity, flow.source_side, ids)
        failures: dict[str, str | None] = {}
        if self.check_failures and records:
            failures = flow.store.permanent_failures(
                flow.pair, entity, flow.source_side, [r.id for r in records]
            )
        ops: list[Op] = []
        unbound: list[tuple[Record, dict[str, Any], str]] = []
        # forced: the bound targets as they are now (None: not looked up)
        actual = self._current_targets(bindings) if force else None
        for record in records:
            if not self.rules.passes(record.fields):
                continue
            fields = self.rules.select(record.fields)
            serial = dump(fields)
            digest = fingerprint(serial)
            binding = bindings.get(record.id)
            side = flow.source_side
            if (
                not force
                and binding is not None
                and binding.get("hash", side) == digest
                and not binding.get("deleted", side)
            ):
                continue
            if failures.get(record.id, "") == digest:
                ops.append(self._op("wait", record, fields, digest, binding))
                continue
            missing = self.rules.missing(fields)
            if missing:
                reason = f"missing required field(s): {', '.join(missing)}"
                ops.append(self._op("refuse", record, fields, digest, binding, reason))
            elif binding is None:
                unbound.append((record, fields, digest))
            else:
                ops.append(self._plan_bound(record, fields, digest, binding, actual))
        ops.extend(self._plan_unbound(unbound))
        ops.extend(self._plan_deleted(deleted, bindings))
        self._translate(ops)
        return ops

    # -- bound records ------------------------------------------------------------------

    def _current_targets(self, bindings: dict[str, BindingRow]) -> dict[str, Record]:
        ids = [b.id_on(self.flow.target_side) for b in bindings.values()]
        return self.flow.target.get(self.rules.entity, ids) if ids else {}

    def _plan_bound(
        self,
        record: Record,
        fields: dict[str, Any],
        digest: str,
        binding: BindingRow,
        actual: dict[str, Record] | None,
    ) -> Op:
        flow = self.flow
        target_id = binding.id_on(flow.target_side)
        binding.set("deleted", flow.source_side, False)
        gone = binding.get("deleted", flow.target_side) or (
            actual is not None and target_id not in actual
        )
        if gone:
            if flow.recreate_deleted and flow.may_create:
                op = self._op("create", record, fields, digest, binding)
                op.key = uuid.uuid4().hex
                return op
            binding.set("deleted", flow.target_side, True)
            reason = f"deleted on {flow.target_side} (recreate_deleted = false)"
            return self._op("skip", record, fields, digest, binding, reason)
        if actual is not None:
            before = actual[target_id].fields
            send = without_empty({k: v for k, v in fields.items() if before.get(k) != v})
        else:
            send = without_empty(changed_fields(fields, binding.data_on(flow.source_side)))
        if not flow.update_existing:
            send = {}
        op = self._op("update" if send else "snapshot", record, fields, digest, binding)
        op.target_id = target_id
        op.send = send
        return op

    # -- unbound records: match, else create --------------------------------------------

    def _plan_unbound(self, unbound: list[tuple[Record, dict[str, Any], str]]) -> list[Op]:
        if not unbound:
            return []
        flow, entity = self.flow, self.rules.entity
        ops: list[Op] = []
        remaining = unbound
        for key_field in self.rules.match:
            keyed = {
                r.id: normalize_key(key_field, fields.get(key_field)) for r, fields, _ in remaining
            }
            wanted = {k for k in keyed.values() if k}
            if not wanted:
                continue
            found = flow.target.find(entity, key_field, wanted)
            candidate_ids = [c.id for cands in found.values() for c in cands]
            taken = flow.store.bindings_for(flow.pair, entity, flow.target_side, candidate_ids)
            still: list[tuple[Record, dict[str, Any], str]] = []
            for record, fields, digest in remaining:
                key = keyed[record.id]
                candidates = [
                    c
                    for c in found.get(key or "", [])
                    if c.id not in taken and c.id not in self.claimed
                ]
                if len(candidates) == 1:
                    ops.append(self._bind(record, fields, digest, candidates[0]))
                elif len(candidates) > 1:
                    listed = ", ".join(sorted(c.id for c in candidates)[:5])
                    reason = (
                        f"ambiguous match: {key_field} {key!r} matches {len(candidates)} "
                        f"{entity} records on {flow.target_side} ({listed})"
                    )
                    ops.append(self._op("refuse", record, fields, digest, None, reason))
                else:
                    still.append((record, fields, digest))
            remaining = still
        for record, fields, digest in remaining:
            if flow.may_create:
                op = self._op("create", record, fields, digest, None)
                op.key = uuid.uuid4().hex
            else:
                reason = f"no match, and creating on {flow.target_side} is not allowed"
                op = self._op("skip", record, fields, digest, None, reason)
            ops.append(op)
        return ops

    def _bind(self, record: Record, fields: dict[str, Any], digest: str, match: Record) -> Op:
        self.claimed.add(match.id)
        op = self._op("bind", record, fields, digest, None)
        op.target_id = match.id
        op.target_fields = dict(match.fields)
        op.target_version = match.version
        if self.flow.update_existing:
            op.send = without_empty({k: v for k, v in fields.items() if match.fields.get(k) != v})
        return op

    # -- deletions ----------------------------------------------------------------------

    def _plan_deleted(self, deleted: Sequence[str], bindings: dict[str, BindingRow]) -> list[Op]:
        flow = self.flow
        ops = []
        for source_id in deleted:
            binding = bindings.get(source_id)
            if binding is None or binding.get("deleted", flow.source_side):
                continue
            op = Op(
                "delete", self.rules.entity, source_id, binding, binding.id_on(flow.target_side)
            )
            if not flow.propagate_deletes or binding.get("deleted", flow.target_side):
                op.kind = "skip"
                op.reason = (
                    f"deleted on {flow.source_side}; kept on {flow.target_side} (deletes = ignore)"
                )
                binding.set("deleted", flow.source_side, True)
            ops.append(op)
        return ops

    # -- references ---------------------------------------------------------------------

    def _translate(self, ops: list[Op]) -> None:
        if not self.reference:
            return
        values = [op.send["company"] for op in ops if op.send.get("company")]
        if not values:
            return
        mapping = self.translator.translate(values)
        for op in ops:
            value = op.send.get("company")
            if not value:
                continue
            translated = mapping.get(value)
            if translated is None:
                del op.send["company"]
                if op.source_fields is not None:
                    op.source_fields["company"] = None
                    op.source_hash = None
                op.detail = {"note": f"company {value!r} is not synced yet; reference left out"}
            else:
                op.send["company"] = translated

    def _op(
        self,
        kind: str,
        record: Record,
        fields: dict[str, Any],
        digest: str,
        binding: BindingRow | None,
        reason: str | None = None,
    ) -> Op:
        return Op(
            kind=kind,
            entity=self.rules.entity,
            source_id=record.id,
            binding=binding,
            target_id=binding.id_on(self.flow.target_side) if binding else None,
            send=without_empty(fields) if kind == "create" else {},
            source_fields=fields,
            source_version=record.version,
            source_hash=digest,
            reason=reason,
        )
