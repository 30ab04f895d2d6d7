"""Settling creates that an interrupted run sent without recording their outcome.

A create is preceded by a committed intent (see :mod:`syncd.engine.intents`). When a
run finds intents still open, the process that wrote them died between sending the
creates and committing their bindings. For each one, the record that was created is
found (by the key it was created under, where the target takes the key as its id, or
else by the sent match values) and bound; an intent whose create never arrived is
simply forgotten, and the record is created again by the page loop.
"""

from __future__ import annotations

from typing import Any

from syncd.connector import Connector, Record
from syncd.engine.plan import Flow, Op
from syncd.engine.records import dump, fingerprint
from syncd.engine.references import ReferenceTranslator
from syncd.engine.rules import EntityRules
from syncd.entities import DEFAULT_MATCH, normalize_key


def match_fields(rules: EntityRules) -> tuple[str, ...]:
    """The fields an unbound record of ``rules``' entity is matched on, in order."""
    return tuple(rules.match or DEFAULT_MATCH.get(rules.entity, ()))


class InterruptedCreates:
    """Plans the binding of the records interrupted creates made, for one entity type
    in one direction."""

    def __init__(
        self, flow: Flow, rules: EntityRules, back: ReferenceTranslator, reference: bool
    ) -> None:
        """``back`` translates the target's company references into the source's;
        ``reference`` says whether the entity has one."""
        self.flow = flow
        self.rules = rules
        self.back = back
        self.reference = reference

    def bindings(self, intents: list[dict[str, Any]]) -> list[Op]:
        """Bind operations for the records that ``intents`` (unpacked) created."""
        flow, entity = self.flow, self.rules.entity
        bound = flow.store.bindings_for(
            flow.pair, entity, flow.source_side, [i["source_id"] for i in intents]
        )
        # a bound source with an open intent was being re-created (recreate_deleted):
        # settle it only if its bound record is still gone
        targets = [b.id_on(flow.target_side) for b in bound.values()]
        live = flow.target.get(entity, targets) if targets else {}
        created: dict[str, Record] = {}
        if flow.target.client_ids:
            # the records were created under the intents' keys: fetch them in bulk
            created = self._get(flow.target, [i["key"] for i in intents])
        sources = self._get(
            flow.source, [i["source_id"] for i in intents if i["source_data"] is None]
        )
        ops: list[Op] = []
        for intent in intents:
            binding = bound.get(intent["source_id"])
            if binding is not None and binding.id_on(flow.target_side) in live:
                continue
            match = created.get(intent["key"]) if flow.target.client_ids else self._matched(intent)
            if match is None:
                continue
            op = Op("bind", entity, intent["source_id"], binding, target_id=match.id)
            target_fields = self.rules.select(match.fields)
            op.source_fields = self._source_snapshot(intent, sources, target_fields)
            op.target_fields = {**target_fields, **intent["sent"]}
            op.target_version = match.version
            op.detail = {"note": "resolved a create interrupted in an earlier run"}
            ops.append(op)
        return ops

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
        if self.reference and fields.get("company"):
            company = self.back.translate([fields["company"]]).get(fields["company"])
            if company is None:
                del fields["company"]
            else:
                fields["company"] = company
        return fields

    def _matched(self, intent: dict[str, Any]) -> Record | None:
        """The one unbound record on the target that matches what an intent sent."""
        flow, entity = self.flow, self.rules.entity
        sent = intent["sent"]
        for key_field in match_fields(self.rules):
            key = normalize_key(key_field, sent.get(key_field))
            if not key:
                continue
            candidates = flow.target.find(entity, key_field, {key}).get(key, [])
            taken = flow.store.bindings_for(
                flow.pair, entity, flow.target_side, [c.id for c in candidates]
            )
            free = [c for c in candidates if c.id not in taken]
            if len(free) == 1:
                return free[0]
        return None
