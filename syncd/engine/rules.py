"""A pair's field rules for one entity type: which fields take part, filters,
required fields and match keys."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from syncd.engine.ports import PairRules
from syncd.entities import BOOLEAN_FIELDS, Entity, is_empty


@dataclass(frozen=True, slots=True)
class EntityRules:
    """How one entity type is synced in one pair."""

    entity: str
    fields: frozenset[str]
    filters: tuple[tuple[str, Any], ...]
    required: tuple[str, ...]
    match: tuple[str, ...]
    #: (field, transform) pairs applied to every value read, from either side
    transforms: tuple[tuple[str, Callable[[Any], Any]], ...] = ()

    def select(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Keep only the filled fields that take part in this pair, transformed where
        the pair says so. An empty value and a missing one are the same thing, so
        they snapshot and hash the same."""
        keep = self.fields
        # is_empty, inlined: this runs for every field of every record read
        selected = {
            name: value
            for name, value in values.items()
            if name in keep and value is not None and (type(value) is not str or value.strip())
        }
        for name, transform in self.transforms:
            if name in selected:
                value = transform(selected[name])
                if is_empty(value):  # a value a transform emptied is no value either
                    del selected[name]
                else:
                    selected[name] = value
        return selected

    def passes(self, values: Mapping[str, Any]) -> bool:
        """True when the record meets every filter (``private = false`` and so on)."""
        for name, wanted in self.filters:
            value = values.get(name)
            if value is None and name in BOOLEAN_FIELDS:
                value = False
            if isinstance(wanted, bool) or value is None:
                if value != wanted:
                    return False
            elif str(value) != str(wanted):
                return False
        return True

    def missing(self, values: Mapping[str, Any]) -> list[str]:
        """Required fields that are empty on this record."""
        return [name for name in self.required if is_empty(values.get(name))]


def entity_rules(
    pair: PairRules,
    entity: Entity,
    left_fields: Collection[str],
    right_fields: Collection[str],
) -> EntityRules:
    """The rules of ``pair`` for ``entity``: fields both sides map, less excluded ones,
    with the pair's transforms (bound by the configuration) for that entity."""
    excluded = pair.exclude.get(entity, frozenset())
    fields = (set(left_fields) & set(right_fields)) - excluded
    filters = pair.filter.get(entity, {})
    # a filter needs its field even when it is not synced, so it is read on the source
    return EntityRules(
        entity=entity,
        fields=frozenset(fields),
        filters=tuple(filters.items()),
        required=tuple(pair.required.get(entity, ())),
        match=tuple(pair.match.get(entity, ())),
        transforms=tuple(pair.transforms.get(entity, {}).items()),
    )
