"""The engine runs on its ports alone: a pair's rules built by hand (no configuration),
connectors opened by a plain callable, and a state store the engine may use only
through the methods :class:`~syncd.engine.ports.SyncState` lists."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import systems
from syncd.engine import PairRunner
from syncd.engine.ports import OpKind, PairRules, Side, SyncState
from syncd.state import Store
from syncd.testing.memory import MemoryConnector, MemorySettings

#: The methods the protocol lists: everything else of the store is out of bounds.
PORT_METHODS = {
    name
    for name, member in vars(SyncState).items()
    if inspect.isfunction(member) and not name.startswith("_")
}


class OnlyPorts:
    """A state store that refuses every attribute the protocol does not list, and
    notes which of the listed ones the engine used."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.used: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        if name not in PORT_METHODS:
            raise AssertionError(f"the engine used store.{name}, which SyncState does not list")
        self.used.add(name)
        return getattr(self._store, name)


def opener(tmp_path: Path) -> Callable[[str], MemoryConnector]:
    """Open the memory connector of the system with the given name."""

    def open_connector(name: str, pair: str) -> MemoryConnector:
        return MemoryConnector(name, MemorySettings(system=name), tmp_path)

    return open_connector


def test_a_two_way_pair_runs_on_rules_and_ports_alone(tmp_path: Path) -> None:
    left, right = systems()
    acme = left.put("company", {"name": "Acme"})
    ann = left.put("contact", {"email": "ann@x.org", "company": acme, "first_name": "Ann"})
    bob = right.put("contact", {"email": "bob@x.org", "first_name": "Bob"})
    rules = PairRules(
        name="p",
        left="left",
        right="right",
        mode="two-way",
        entities=("company", "contact"),
        deletes="propagate",
        match={"contact": ("email",), "company": ("name",)},
        transforms={"contact": {"first_name": str.upper}},
    )
    state = OnlyPorts(Store(f"sqlite:///{tmp_path / 'state.db'}"))
    pairs = {"p": rules}
    runner = PairRunner(pairs.__getitem__, opener(tmp_path), state)

    first = runner.run("p")
    assert (first.status, first.error) == ("ok", None)
    on_right = {r["email"]: r for r in right.rows("contact").values()}
    on_left = {r["email"]: r for r in left.rows("contact").values()}
    # the reference was translated, the transform applied, both directions synced
    assert [r["name"] for r in right.rows("company").values()] == ["Acme"]
    assert on_right["ann@x.org"]["company"] in right.rows("company")
    assert on_right["ann@x.org"]["first_name"] == "ANN"
    assert on_left["bob@x.org"]["first_name"] == "BOB"

    left.remove("contact", ann)
    right.edit("contact", bob, first_name="Robert")
    second = runner.run("p", full=True)
    assert second.status == "ok"
    assert "ann@x.org" not in {r["email"] for r in right.rows("contact").values()}
    assert {r["first_name"] for r in left.rows("contact").values()} == {"ROBERT"}
    assert second.counts["deleted"] == 1
    assert {"start_run", "finish_run", "commit", "bindings_for", "cursor"} <= state.used


def test_sides_and_kinds_are_their_strings() -> None:
    assert (Side.LEFT.other, Side.RIGHT.other) == (Side.RIGHT, Side.LEFT)
    assert Side.LEFT == "left" and Side("right") is Side.RIGHT
    assert json.dumps({Side.LEFT: [OpKind.CREATE, OpKind.SKIP]}) == '{"left": ["create", "skip"]}'
    assert f"{Side.RIGHT}_hash" == "right_hash"
