"""Wiring the engine to the configuration: a pair's rules built from its validated
configuration, and a :class:`~syncd.engine.PairRunner` over a configuration and a
state store. It lives outside the engine so the engine never imports the
configuration (see :mod:`syncd.engine.ports`)."""

from __future__ import annotations

from types import MappingProxyType

from syncd.config import Config, PairConfig
from syncd.engine.ports import PairRules, Side
from syncd.engine.runner import PairRunner, Progress, StopCheck
from syncd.plugin.connector import Connector
from syncd.plugin.context import ConnectorContext
from syncd.state import Store


def pair_rules(config: Config, pair: PairConfig) -> PairRules:
    """The engine's view of ``pair``: its settings and its bound transforms."""
    return PairRules(
        name=pair.name,
        left=pair.left,
        right=pair.right,
        mode=pair.mode,
        entities=tuple(pair.entities),
        update_existing=pair.update_existing,
        recreate_deleted=pair.recreate_deleted,
        deletes=pair.deletes,
        clears=pair.clears,
        conflict=pair.conflict,
        create_in=frozenset(Side(side) for side in pair.create_in),
        match=MappingProxyType({e: tuple(v) for e, v in pair.match.items()}),
        required=MappingProxyType({e: tuple(v) for e, v in pair.required.items()}),
        filter=MappingProxyType({e: MappingProxyType(dict(v)) for e, v in pair.filter.items()}),
        exclude=MappingProxyType({e: frozenset(v) for e, v in pair.exclude.items()}),
        transforms=MappingProxyType(
            {e: MappingProxyType(dict(t)) for e, t in config.transforms.get(pair.name, {}).items()}
        ),
    )


def runner_for(
    config: Config,
    store: Store,
    progress: Progress | None = None,
    should_stop: StopCheck | None = None,
) -> PairRunner:
    """A runner of ``config``'s pairs against ``store``: pairs looked up by name (an
    unknown name is a one-line :class:`~syncd.errors.UserError`), connectors opened
    fresh from the configuration for each run."""

    def open_connector(name: str, pair: str) -> Connector:
        # plugin API 2: the connector gets its context (durable values, a logger
        # bound with the pair and its name); API 1 connectors ignore it
        context = ConnectorContext.create(name, store, pair=pair)
        return config.connector(name).with_context(context)

    return PairRunner(
        lambda name: pair_rules(config, config.pair(name)),
        open_connector,
        store,
        progress=progress,
        should_stop=should_stop,
    )
