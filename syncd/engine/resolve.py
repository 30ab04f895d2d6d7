"""Settling creates that an interrupted run sent without recording their outcome.

A create is preceded by a committed intent (see :mod:`syncd.engine.intents`). When a
run finds intents still open, the process that wrote them died between sending the
creates and committing their bindings. For each one, the record that was created is
found and bound, by the first way the target offers:

1. :meth:`~syncd.plugin.connector.Connector.created_since`: among the records created after
   the mark the intent took (where the target gave one), by the values the create
   sent (see :mod:`syncd.engine.since_mark`);
2. :meth:`~syncd.plugin.connector.Connector.created`: by the create's key, which the target
   kept (as the id, where syncd chooses ids, or in a marker column);
3. by the sent match-key values: one free record that matches is the one.

A create the first two ways do not find was not carried out, nor one whose match-key
values find nothing: its intent is forgotten, and the record is created again by the
page loop. A create the match keys cannot settle (no value to find it by, or several
records that match) may exist or not: it is held for a person (see
:mod:`syncd.engine.held`), never created again on a guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from syncd.engine.held import reason
from syncd.engine.plan import Flow, Op
from syncd.engine.ports import BIND
from syncd.engine.records import dump, fingerprint
from syncd.engine.references import ReferenceTranslator
from syncd.engine.rules import EntityRules
from syncd.engine.since_mark import recognise
from syncd.entities import DEFAULT_MATCH, normalize_key
from syncd.plugin.connector import Connector, Record


def match_fields(rules: EntityRules) -> tuple[str, ...]:
    """The fields an unbound record of ``rules``' entity is matched on, in order."""
    return tuple(rules.match or DEFAULT_MATCH.get(rules.entity, ()))


@dataclass
class Resolution:
    """What settling a set of interrupted creates came to: the binds to apply, and the
    creates held for a person (source id -> the reason a person reads)."""

    binds: list[Op] = field(default_factory=list)
    held: dict[str, str] = field(default_factory=dict)
    #: the held intents (unpacked), to keep
    held_intents: list[dict[str, Any]] = field(default_factory=list)


class InterruptedCreates:
    """Plans the binding of the records interrupted creates made, for one entity type
    in one direction."""

    def __init__(
        self, flow: Flow, rules: EntityRules, back: ReferenceTranslator, reference: str | None
    ) -> None:
        """``back`` translates the target's company references into the source's;
        ``reference`` is the entity's field that holds one, if it has one."""
        self.flow = flow
        self.rules = rules
        self.back = back
        self.reference = reference

    def resolve(self, intents: list[dict[str, Any]]) -> Resolution:
        """Settle ``intents`` (unpacked): bind the records they made, hold those that
        cannot be told; the rest were not carried out."""
        flow, entity = self.flow, self.rules.entity
        bound = flow.store.bindings_for(
            flow.pair, entity, flow.source_side, [i["source_id"] for i in intents]
        )
        # a bound source with an open intent was being re-created (recreate_deleted):
        # settle it only if its bound record is still gone
        targets = [b.id_on(flow.target_side) for b in bound.values()]
        live = flow.target.get(entity, targets) if targets else {}
        pending = [
            i
            for i in intents
            if (b := bound.get(i["source_id"])) is None or b.id_on(flow.target_side) not in live
        ]
        result = Resolution()
        created = self._found(pending, result)
        sources = self._get(
            flow.source, [i["source_id"] for i in pending if i["source_data"] is None]
        )
        for intent in pending:
            match = created.get(intent["key"])
            if match is None:
                continue
            binding = bound.get(intent["source_id"])
            op = Op(BIND, entity, intent["source_id"], binding, target_id=match.id)
            target_fields = self.rules.select(match.fields)
            op.source_fields = self._source_snapshot(intent, sources, target_fields)
            op.target_fields = {**target_fields, **intent["sent"]}
            op.target_version = match.version
            op.detail = {"note": "resolved a create interrupted in an earlier run"}
            result.binds.append(op)
        self._release_gone(result, sources)
        return result

    @staticmethod
    def _release_gone(result: Resolution, sources: dict[str, Record]) -> None:
        """Hold nothing for a source record deleted since: nothing is to be created."""
        gone = {
            i["source_id"]
            for i in result.held_intents
            if i["source_data"] is None and i["source_id"] not in sources
        }
        if gone:
            result.held_intents = [i for i in result.held_intents if i["source_id"] not in gone]
            result.held = {k: v for k, v in result.held.items() if k not in gone}

    def _found(self, intents: list[dict[str, Any]], result: Resolution) -> dict[str, Record]:
        """The records ``intents`` made, by create key, each found by the first way the
        target offers; holds in ``result`` those that cannot be told. An intent that
        took a mark is looked for since it (a marker column, when there is one, makes
        the target give no mark: one found here was configured since)."""
        flow, entity = self.flow, self.rules.entity
        found: dict[str, Record] = {}
        marks: dict[str, list[dict[str, Any]]] = {}
        rest: list[dict[str, Any]] = []
        for intent in intents:
            if intent["mark"] is None:
                rest.append(intent)
            else:
                marks.setdefault(intent["mark"], []).append(intent)
        for mark, marked in marks.items():
            pages = flow.target.created_since(entity, mark)
            if pages is None:
                rest.extend(marked)
            else:
                found.update(recognise(marked, pages, self._bound_targets))
        by_key = self._by_key([i["key"] for i in rest])
        if by_key is not None:
            return found | by_key
        claimed = {record.id for record in found.values()}
        for intent in rest:
            match = self._matched(intent, claimed, result)
            if match is not None:
                claimed.add(match.id)
                found[intent["key"]] = match
        return found

    def _by_key(self, keys: list[str]) -> dict[str, Record] | None:
        """The target's answer to :meth:`~syncd.plugin.connector.Connector.created`, asked a
        thousand keys at a time."""
        found: dict[str, Record] = {}
        for start in range(0, len(keys), 1000):
            chunk = self.flow.target.created(self.rules.entity, keys[start : start + 1000])
            if chunk is None:
                return None
            found.update(chunk)
        return found

    def _bound_targets(self, ids: list[str]) -> set[str]:
        flow = self.flow
        return set(flow.store.bindings_for(flow.pair, self.rules.entity, flow.target_side, ids))

    def _get(self, connector: Connector, ids: list[str]) -> dict[str, Record]:
        """Records of ``ids`` (those that exist), fetched a thousand at a time."""
        found: dict[str, Record] = {}
        for start in range(0, len(ids), 1000):
            found.update(connector.get(self.rules.entity, ids[start : start + 1000]))
        return found

    def _source_snapshot(
        self,
        intent: dict[str, Any],
        sources: dict[str, Record],
        target_fields: dict[str, Any],
    ) -> dict[str, Any]:
        """The source snapshot an interrupted create sent: the intent's own (an older
        row), else the source record as it is now if its hash is still the intent's;
        else (it changed since) the created record's fields in source terms, so that
        the change is sent on as a change."""
        if intent["source_data"] is not None:
            return intent["source_data"]
        record = sources.get(intent["source_id"])
        if record is not None:
            fields = self.rules.select(record.fields)
            if fingerprint(dump(fields)) == intent["source_hash"]:
                return fields
        fields = dict(target_fields)
        ref = self.reference
        if ref and fields.get(ref):
            company = self.back.translate([fields[ref]]).get(fields[ref])
            if company is None:
                del fields[ref]
            else:
                fields[ref] = company
        return fields

    def _matched(
        self, intent: dict[str, Any], claimed: set[str], result: Resolution
    ) -> Record | None:
        """The one free record on the target that matches what an intent sent. None
        if none matches (the create was not carried out), or if it cannot be told:
        then the intent is held in ``result``."""
        flow, entity = self.flow, self.rules.entity
        sent = intent["sent"]
        keyed: list[str] = []
        several: list[str] = []
        for key_field in match_fields(self.rules):
            key = normalize_key(key_field, sent.get(key_field))
            if not key:
                continue
            keyed.append(key_field)
            candidates = flow.target.find(entity, key_field, {key}).get(key, [])
            taken = flow.store.bindings_for(
                flow.pair, entity, flow.target_side, [c.id for c in candidates]
            )
            free = [c for c in candidates if c.id not in taken and c.id not in claimed]
            if len(free) == 1:
                return free[0]
            if free:
                listed = ", ".join(sorted(c.id for c in free)[:5])
                several.append(f"{len(free)} records match its {key_field}: {listed}")
        if several:
            self._hold(intent, "; ".join(several), result)
        elif not keyed:
            names = ", ".join(match_fields(self.rules)) or "match key"
            self._hold(intent, f"it has no {names} to find it by", result)
        return None

    def _hold(self, intent: dict[str, Any], why: str, result: Resolution) -> None:
        flow = self.flow
        result.held[intent["source_id"]] = reason(
            flow.pair,
            self.rules.entity,
            flow.source_side,
            intent["source_id"],
            flow.target_side,
            why,
        )
        result.held_intents.append(intent)
