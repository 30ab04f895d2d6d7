"""Translating references (a contact's company) from one side's ids to the other's.

Both sides keep companies: the company binding maps the id. Only the source keeps
companies: the reference becomes the company's name. Only the target keeps companies:
the name is looked up there. Neither: the name passes through.
"""

from __future__ import annotations

from collections.abc import Iterable

from syncd.engine.ports import Side, SyncState
from syncd.entities import COMPANY, NAME_FIELD, normalize_key
from syncd.plugin.connector import Connector


class ReferenceTranslator:
    """Maps referenced company values from the source side to the target side."""

    def __init__(
        self,
        store: SyncState,
        pair: str,
        source: Connector,
        target: Connector,
        source_side: Side,
        target_side: Side,
    ) -> None:
        #: the entity references point to
        self.entity = COMPANY
        self.store = store
        self.pair = pair
        self.source = source
        self.target = target
        self.source_side = source_side
        self.target_side = target_side
        self.source_has = COMPANY in source.entities()
        self.target_has = COMPANY in target.entities()
        #: Company bindings found so far: they do not change while one entity type
        #: syncs in one direction (companies sync first), so each is looked up once.
        self._bound: dict[str, str] = {}

    def translate(self, values: Iterable[str]) -> dict[str, str | None]:
        """Source value -> target value, or None where it cannot be translated yet."""
        wanted = sorted({v for v in values if v})
        if not wanted:
            return {}
        if self.source_has and self.target_has:
            return self._by_binding(wanted)
        if self.source_has:
            return self._to_names(wanted)
        if self.target_has:
            return self._from_names(wanted)
        return {value: value for value in wanted}

    def _by_binding(self, ids: list[str]) -> dict[str, str | None]:
        known = self._bound
        unknown = [i for i in ids if i not in known]
        if unknown:
            bound = self.store.bindings_for(self.pair, COMPANY, self.source_side, unknown)
            for source_id, binding in bound.items():
                if not binding.get("deleted", self.target_side):
                    known[source_id] = binding.id_on(self.target_side)
        return {source_id: known.get(source_id) for source_id in ids}

    def _to_names(self, ids: list[str]) -> dict[str, str | None]:
        field = NAME_FIELD[COMPANY]
        bound = self.store.bindings_for(self.pair, COMPANY, self.source_side, ids)
        names = {i: b.data_on(self.source_side).get(field) for i, b in bound.items()}
        unknown = [i for i in ids if not names.get(i)]
        if unknown:
            fetched = self.source.get(COMPANY, unknown)
            names.update({i: r.fields.get(field) for i, r in fetched.items()})
        return {i: names.get(i) for i in ids}

    def _from_names(self, names: list[str]) -> dict[str, str | None]:
        field = NAME_FIELD[COMPANY]
        keys = {name: normalize_key(field, name) for name in names}
        found = self.target.find(COMPANY, field, {k for k in keys.values() if k})
        result: dict[str, str | None] = {}
        for name, key in keys.items():
            candidates = found.get(key or "", [])
            result[name] = candidates[0].id if len(candidates) == 1 else None
        return result
