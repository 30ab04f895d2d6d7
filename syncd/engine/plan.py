"""Planning: what to do with each change read from the source side.

The planner turns a page of source records (and deleted ids) into operations:
bind to an existing record, create, update the changed fields, delete, refuse, or skip
with a reason. It reads bindings and candidates in bulk per page and never writes;
:mod:`syncd.engine.apply` carries the operations out.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from syncd.engine.merge import Conflict, ConflictRule, Merge, merge_records
from syncd.engine.ports import (
    BIND,
    CREATE,
    DELETE,
    HOLD,
    REFUSE,
    SKIP,
    SNAPSHOT,
    UPDATE,
    WAIT,
    OpKind,
    Side,
    SyncState,
)
from syncd.engine.records import (
    changed_fields,
    dump,
    fingerprint,
    new_key,
    new_keys,
    replaced,
    without_empty,
)
from syncd.engine.references import ReferenceTranslator
from syncd.engine.rules import EntityRules
from syncd.entities import REFERENCES, normalize_key
from syncd.plugin.connector import Connector, Record
from syncd.state.rows import BindingRow


@dataclass(slots=True)
class Op:
    """One planned operation on the target side, and what to record about it."""

    kind: OpKind
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
    #: ``source_fields`` serialised (None once they are changed after planning)
    source_serial: str | None = None
    #: a create's ``send`` serialised, once it is (for its intent and snapshot)
    send_serial: str | None = None
    #: the hash of ``send_serial``, once it is taken
    send_hash: str | None = None
    detail: dict[str, Any] | None = None
    #: two-way: fields to write back onto the source record, and the conflicts settled
    back: dict[str, Any] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)
    #: two-way updates: each side's snapshot (serialised, hash) once the writes land,
    #: computed before writing for the write-ahead record (see engine.writeahead)
    target_snapshot: tuple[str, str] | None = None
    source_snapshot: tuple[str, str] | None = None


@dataclass
class Flow:
    """One direction of a pair: where changes are read and where they are written."""

    pair: str
    store: SyncState
    source: Connector
    target: Connector
    source_side: Side
    target_side: Side
    update_existing: bool = True
    recreate_deleted: bool = False
    propagate_deletes: bool = False
    may_create: bool = True
    #: two-way pairs merge with the other side's current record instead of overwriting
    two_way: bool = False
    conflict: ConflictRule = field(default_factory=lambda: ConflictRule(Side.LEFT))

    @property
    def clears(self) -> bool:
        """True when a cleared field is written to the other side (``clears = "propagate"``)."""
        return self.conflict.clears


#: a binding's snapshot hash and deleted flag on each side (read for every record)
_HASH_ON = {Side.LEFT: attrgetter("left_hash"), Side.RIGHT: attrgetter("right_hash")}
_DELETED_ON = {Side.LEFT: attrgetter("left_deleted"), Side.RIGHT: attrgetter("right_deleted")}


def reference_field(entity: str, names: Collection[str]) -> str | None:
    """The field of ``entity`` that refers to a record of another entity, when it is
    among ``names`` (the fields the pair syncs); None otherwise."""
    for (owner, name), _target in REFERENCES.items():
        if owner == entity and name in names:
            return name
    return None


class Planner:
    """Plans pages of changes of one entity type for one :class:`Flow`."""

    def __init__(
        self,
        flow: Flow,
        rules: EntityRules,
        translator: ReferenceTranslator,
        back_translator: ReferenceTranslator | None = None,
    ) -> None:
        """``back_translator`` maps references the other way, for two-way write-backs."""
        self.flow = flow
        self.rules = rules
        self.translator = translator
        self.back_translator = back_translator
        #: the field of this entity that refers to a record of another entity (the
        #: contact's company), when the pair syncs it; None otherwise
        self.reference = reference_field(rules.entity, rules.fields)
        #: Target ids bound by operations not yet committed (no double binding).
        self.claimed: set[str] = set()
        self.check_failures = True
        #: serialised snapshots of the page being planned, by their hash
        self.serials: dict[str, str] = {}
        #: Set by the page loop when the pair had no binding of this entity as it began:
        #: the ids planned so far, the only ones that can have been bound since.
        self.fresh: set[str] | None = None
        #: Records an interrupted create may have made already, held for a person
        #: (source id -> why; see syncd.engine.held): never created, reported as
        #: failed the first time a run comes to them.
        self.held: dict[str, str] = {}
        self.held_reported: set[str] = set()

    # -- entry points -------------------------------------------------------------------

    def plan(
        self, records: Sequence[Record], deleted: Sequence[str], *, force: bool = False
    ) -> list[Op]:
        """Plan a page: records read from the source and ids deleted there."""
        flow, entity = self.flow, self.rules.entity
        ids = [r.id for r in records] + list(deleted)
        bindings = self._bindings(ids)
        failures: dict[str, str | None] = {}
        if self.check_failures and records:
            failures = flow.store.permanent_failures(
                flow.pair, entity, flow.source_side, [r.id for r in records]
            )
        ops: list[Op] = []
        unbound: list[tuple[Record, dict[str, Any], str]] = []
        bound: list[tuple[Record, dict[str, Any], str, BindingRow]] = []
        side = flow.source_side
        rules = self.rules
        # looked up once: this loop runs for every record read
        passes = rules.passes if rules.filters else None
        missing_of = rules.missing if rules.required else None
        select = rules.select
        hash_of, deleted_of = _HASH_ON[side], _DELETED_ON[side]
        held = self.held
        for record in records:
            if passes is not None and not passes(record.fields):
                continue
            fields = select(record.fields)
            serial = dump(fields)
            digest = fingerprint(serial)
            binding = bindings.get(record.id)
            if (
                not force
                and binding is not None
                and hash_of(binding) == digest
                and not deleted_of(binding)
            ):
                continue
            if failures.get(record.id, "") == digest:
                ops.append(self._op(WAIT, record, fields, digest, binding))
                continue
            if held and record.id in held:
                if record.id not in self.held_reported:
                    self.held_reported.add(record.id)
                    ops.append(self._op(HOLD, record, fields, digest, binding, held[record.id]))
                continue
            missing = missing_of(fields) if missing_of is not None else None
            if missing:
                reason = f"missing required field(s): {', '.join(missing)}"
                ops.append(self._op(REFUSE, record, fields, digest, binding, reason))
            elif binding is None:
                unbound.append((record, fields, digest))
                self.serials[digest] = serial
            else:
                bound.append((record, fields, digest, binding))
                self.serials[digest] = serial
        # the bound records' counterparts as they are now (None: not looked up)
        actual = None
        if force or flow.two_way:
            looked_up = [b for *_, b in bound]
            if flow.two_way:
                looked_up += [bindings[i] for i in deleted if i in bindings]
            actual = self._current_targets(looked_up)
        across = self._across([fields for _, fields, *_ in bound + unbound])
        for record, fields, digest, binding in bound:
            ops.append(self._plan_bound(record, fields, digest, binding, actual, across))
        ops.extend(self._plan_unbound(unbound, across))
        ops.extend(self._plan_deleted(deleted, bindings, actual))
        self._translate(ops)
        self.serials.clear()
        return ops

    def _bindings(self, ids: list[str]) -> dict[str, BindingRow]:
        """The bindings of source records ``ids``, not looked up when none can exist."""
        flow = self.flow
        if self.fresh is not None:
            again = [i for i in ids if i in self.fresh]
            self.fresh.update(ids)
            ids = again
        if not ids:
            return {}
        return flow.store.bindings_for(flow.pair, self.rules.entity, flow.source_side, ids)

    # -- bound records ------------------------------------------------------------------

    def _current_targets(self, bindings: Sequence[BindingRow]) -> dict[str, Record]:
        ids = [b.id_on(self.flow.target_side) for b in bindings]
        return self.flow.target.get(self.rules.entity, ids) if ids else {}

    def _across(self, records: Sequence[dict[str, Any]]) -> dict[str, str | None]:
        """Two-way: source reference values translated to the target's, so values can
        be compared across sides."""
        if not (self.flow.two_way and self.reference):
            return {}
        ref = self.reference
        return self.translator.translate(f[ref] for f in records if f.get(ref))

    def _plan_bound(
        self,
        record: Record,
        fields: dict[str, Any],
        digest: str,
        binding: BindingRow,
        actual: dict[str, Record] | None,
        across: dict[str, str | None],
    ) -> Op:
        flow = self.flow
        target_id = binding.id_on(flow.target_side)
        binding.set("deleted", flow.source_side, False)
        gone = binding.get("deleted", flow.target_side) or (
            actual is not None and target_id not in actual
        )
        if gone:
            if flow.recreate_deleted and flow.may_create:
                op = self._op(CREATE, record, fields, digest, binding)
                op.key = new_key()
                return op
            binding.set("deleted", flow.target_side, True)
            reason = f"deleted on {flow.target_side} (recreate_deleted = false)"
            return self._op(SKIP, record, fields, digest, binding, reason)
        if flow.two_way and actual is not None:
            return self._plan_merge(record, fields, digest, binding, actual[target_id], across)
        # ``fields`` hold no empty value (see EntityRules.select): only a field the
        # source cleared comes out empty, as None, and only when clears propagate
        if actual is not None:
            send = changed_fields(fields, actual[target_id].fields, clears=False)
        else:
            send = changed_fields(fields, binding.data_on(flow.source_side), clears=flow.clears)
        if not flow.update_existing:
            send = {}
        op = self._op(UPDATE if send else SNAPSHOT, record, fields, digest, binding)
        op.target_id = target_id
        op.send = send
        return op

    # -- two-way: merge with the other side ---------------------------------------------

    def _plan_merge(
        self,
        record: Record,
        fields: dict[str, Any],
        digest: str,
        binding: BindingRow,
        target: Record,
        across: dict[str, str | None],
    ) -> Op:
        """A bound record changed on the source: three-way merge it with the target's
        current record against both snapshots; write each side what it lacks."""
        flow = self.flow
        if not self.rules.passes(target.fields):
            reason = f"left the filter on {flow.target_side}; no longer synced"
            op = self._op(SKIP, record, fields, digest, binding, reason)
            op.source_fields = None
            return op
        target_fields = self.rules.select(target.fields)
        merge = self._merge(
            fields,
            binding.data_on(flow.source_side),
            target_fields,
            binding.data_on(flow.target_side),
            record,
            target,
            across,
        )
        # the target's snapshot is now what was just read; the writes go on top of it
        serial = dump(target_fields)
        binding.set("data", flow.target_side, serial)
        binding.set("hash", flow.target_side, fingerprint(serial))
        binding.set("version", flow.target_side, target.version)
        op = self._op(UPDATE, record, fields, digest, binding)
        op.target_id = target.id
        op.target_version = target.version
        if flow.update_existing:
            op.send = merge.to(flow.target_side)
            op.back = merge.to(flow.source_side)
            op.conflicts = merge.conflicts
        if not (op.send or op.back):
            op.kind = SNAPSHOT
        return op

    def _merge(
        self,
        source_now: dict[str, Any],
        source_base: dict[str, Any],
        target_now: dict[str, Any],
        target_base: dict[str, Any],
        source: Record,
        target: Record,
        across: dict[str, str | None],
        *,
        matched: bool = False,
    ) -> Merge:
        flow = self.flow
        # a new match has no common ancestor: merge against nothing, never clearing
        rule = ConflictRule(flow.conflict.rule, clears=False) if matched else flow.conflict
        comparable = dict(source_now)
        ref = self.reference
        if ref and comparable.get(ref):
            comparable[ref] = across.get(comparable[ref])
        mine = (source_now, source_base, source.modified_at)
        theirs = (target_now, target_base, target.modified_at)
        left, right = (mine, theirs) if flow.source_side == Side.LEFT else (theirs, mine)
        # the source's values, references translated, compare with the target's
        key = "left_in_right_terms" if flow.source_side == Side.LEFT else "right_in_left_terms"
        return merge_records(
            self.rules.fields,
            left[0],
            left[1],
            right[0],
            right[1],
            rule=rule,
            left_time=left[2],
            right_time=right[2],
            **{key: comparable},
        )

    # -- unbound records: match, else create --------------------------------------------

    def _plan_unbound(
        self, unbound: list[tuple[Record, dict[str, Any], str]], across: dict[str, str | None]
    ) -> list[Op]:
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
            taken = (
                flow.store.bindings_for(flow.pair, entity, flow.target_side, candidate_ids)
                if candidate_ids
                else {}
            )
            still: list[tuple[Record, dict[str, Any], str]] = []
            for record, fields, digest in remaining:
                key = keyed[record.id]
                candidates = [
                    c
                    for c in found.get(key or "", [])
                    if c.id not in taken and c.id not in self.claimed
                ]
                if len(candidates) == 1:
                    ops.append(self._bind(record, fields, digest, candidates[0], across))
                elif len(candidates) > 1:
                    listed = ", ".join(sorted(c.id for c in candidates)[:5])
                    reason = (
                        f"ambiguous match: {key_field} {key!r} matches {len(candidates)} "
                        f"{entity} records on {flow.target_side} ({listed})"
                    )
                    ops.append(self._op(REFUSE, record, fields, digest, None, reason))
                else:
                    still.append((record, fields, digest))
            remaining = still
        keys = new_keys(len(remaining)) if flow.may_create else []
        for index, (record, fields, digest) in enumerate(remaining):
            if flow.may_create:
                op = self._op(CREATE, record, fields, digest, None)
                op.key = keys[index]
            else:
                reason = f"no match, and creating on {flow.target_side} is not allowed"
                op = self._op(SKIP, record, fields, digest, None, reason)
            ops.append(op)
        return ops

    def _bind(
        self,
        record: Record,
        fields: dict[str, Any],
        digest: str,
        match: Record,
        across: dict[str, str | None],
    ) -> Op:
        self.claimed.add(match.id)
        op = self._op(BIND, record, fields, digest, None)
        op.target_id = match.id
        op.target_fields = dict(match.fields)
        op.target_version = match.version
        if self.flow.two_way:
            target_fields = self.rules.select(match.fields)
            op.target_fields = target_fields
            if self.flow.update_existing:
                merge = self._merge(
                    fields, {}, target_fields, {}, record, match, across, matched=True
                )
                op.send = merge.to(self.flow.target_side)
                op.back = merge.to(self.flow.source_side)
                op.conflicts = merge.conflicts
            return op
        if self.flow.update_existing:
            op.send = without_empty({k: v for k, v in fields.items() if match.fields.get(k) != v})
        return op

    # -- deletions ----------------------------------------------------------------------

    def _plan_deleted(
        self,
        deleted: Sequence[str],
        bindings: dict[str, BindingRow],
        actual: dict[str, Record] | None,
    ) -> list[Op]:
        flow = self.flow
        ops = []
        for source_id in deleted:
            binding = bindings.get(source_id)
            if binding is None or binding.get("deleted", flow.source_side):
                continue
            if flow.two_way and actual is not None:
                settled = self._deleted_two_way(source_id, binding, actual)
                if settled is not None:
                    ops.append(settled)
                    continue
            op = Op(
                DELETE,
                self.rules.entity,
                source_id,
                binding,
                binding.id_on(flow.target_side),
            )
            if not flow.propagate_deletes or binding.get("deleted", flow.target_side):
                op.kind = SKIP
                op.reason = (
                    f"deleted on {flow.source_side}; kept on {flow.target_side} (deletes = ignore)"
                )
                binding.set("deleted", flow.source_side, True)
            ops.append(op)
        return ops

    def _deleted_two_way(
        self, source_id: str, binding: BindingRow, actual: dict[str, Record]
    ) -> Op | None:
        """Two-way: a record deleted on the source whose counterpart is gone too, or
        was changed since the last sync (the change wins: it is kept, and the record
        comes back on the source only with ``recreate_deleted``, when the change is
        read from the other side). None: an ordinary delete."""
        flow = self.flow
        target_id = binding.id_on(flow.target_side)
        current = actual.get(target_id)
        binding.set("deleted", flow.source_side, True)
        op = Op(SKIP, self.rules.entity, source_id, binding, target_id)
        if current is None or binding.get("deleted", flow.target_side):
            binding.set("deleted", flow.target_side, True)
            op.reason = "deleted on both sides"
            return op
        binding.set("version", flow.target_side, current.version)
        digest = fingerprint(dump(self.rules.select(current.fields)))
        if digest == binding.get("hash", flow.target_side):
            binding.set("deleted", flow.source_side, False)
            return None
        op.reason = (
            f"deleted on {flow.source_side} but changed on {flow.target_side} since the "
            f"last sync: the change wins and {flow.target_side} keeps the record"
        )
        # the changed counterpart is read from the other side's feed and settled there
        binding.set("hash", flow.target_side, None)
        return op

    # -- references ---------------------------------------------------------------------

    def _translate(self, ops: list[Op]) -> None:
        ref = self.reference
        if not ref:
            return
        for op in self._map_references(ops, "send", self.translator, ref):
            # not sent: the snapshot must not claim it was, so it is tried again
            if op.source_fields is not None:
                op.source_fields.pop(ref, None)
                op.source_hash = op.source_serial = None
        for op in ops:
            # a create sends the source's fields with its company translated: where
            # the id differs, what it sends is the source's serialisation so changed
            if op.kind is not CREATE or op.source_serial is None or not op.source_fields:
                continue
            company, sent = op.source_fields.get(ref), op.send.get(ref)
            if sent != company:
                op.send_serial = replaced(op.source_serial, ref, company, sent)
        if self.back_translator is not None:
            # two-way write-backs carry the target's references: map them to the source's
            self._map_references(ops, "back", self.back_translator, ref)

    @staticmethod
    def _map_references(
        ops: list[Op], attr: str, translator: ReferenceTranslator, ref: str
    ) -> list[Op]:
        """Translate the reference ``ref`` in each op's ``send`` or ``back`` fields;
        leave out (and note) the ones that cannot be translated yet and return their
        ops."""
        values = [getattr(op, attr)[ref] for op in ops if getattr(op, attr).get(ref)]
        if not values:
            return []
        mapping = translator.translate(values)
        dropped = []
        for op in ops:
            fields = getattr(op, attr)
            value = fields.get(ref)
            if not value:
                continue
            translated = mapping.get(value)
            if translated is None:
                del fields[ref]
                op.detail = {
                    "note": f"{translator.entity} {value!r} is not synced yet; reference left out"
                }
                dropped.append(op)
            else:
                fields[ref] = translated
        return dropped

    def _op(
        self,
        kind: OpKind,
        record: Record,
        fields: dict[str, Any],
        digest: str,
        binding: BindingRow | None,
        reason: str | None = None,
    ) -> Op:
        # positional (in Op's field order), as this runs for every record planned:
        # kind, entity, source_id, binding, target_id, send (planned fields hold no
        # empty values, see EntityRules.select), source_fields, source_version,
        # target_fields, target_version, reason, key, source_hash, source_serial
        return Op(
            kind,
            self.rules.entity,
            record.id,
            binding,
            binding.id_on(self.flow.target_side) if binding else None,
            dict(fields) if kind is CREATE else {},
            fields,
            record.version,
            None,
            None,
            reason,
            None,
            digest,
            self.serials.get(digest),
        )
