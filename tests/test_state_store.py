"""The state store on SQLite and on a real PostgreSQL: schema by Alembic, bulk
queries, one transaction per batch, and hand-made bindings checked for clashes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import inspect

from syncd.errors import UserError
from syncd.state import BindingRow, Store
from syncd.state.store import BatchCommit


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, state_url: str) -> Iterator[Store]:
    url = state_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    store = Store(url)
    yield store
    store.close()


def test_schema_is_created_by_alembic_and_upgrading_twice_is_harmless(any_store: Store) -> None:
    tables = set(inspect(any_store.engine).get_table_names())
    assert {"binding", "cursor", "run", "run_item", "intent", "retry", "pair_state"} <= tables
    assert "alembic_version" in tables
    again = Store(any_store.url)
    assert again.runs() == []
    again.close()


def test_a_batch_commits_bindings_items_and_cursor_together(any_store: Store) -> None:
    run_id = any_store.start_run("p", "cli", "export", False)
    batch = BatchCommit(
        new_bindings=[BindingRow(None, "contact", f"l{i}", f"r{i}") for i in range(1200)],
        items=[
            {
                "entity": "contact",
                "action": "create",
                "outcome": "ok",
                "source_side": "left",
                "source_id": "l1",
                "target_id": "r1",
                "error": None,
                "detail": None,
            }
        ],
        cursors={("left", "contact"): "42"},
    )
    any_store.commit("p", run_id, batch)
    found = any_store.bindings_for("p", "contact", "left", [f"l{i}" for i in range(0, 1200, 7)])
    assert len(found) == len(range(0, 1200, 7))
    assert found["l7"].right_id == "r7"
    assert any_store.cursor("p", "left", "contact") == "42"
    assert len(list(any_store.run_items(run_id))) == 1


def test_a_failing_batch_leaves_nothing_half_written(any_store: Store) -> None:
    run_id = any_store.start_run("p", "cli", "export", False)
    any_store.commit("p", run_id, BatchCommit(new_bindings=[BindingRow(None, "contact", "a", "b")]))
    clash = BatchCommit(
        new_bindings=[BindingRow(None, "contact", "x", "y"), BindingRow(None, "contact", "a", "z")],
        cursors={("left", "contact"): "99"},
    )
    with pytest.raises(Exception):  # noqa: B017 - the database's own integrity error
        any_store.commit("p", run_id, clash)
    assert any_store.bindings_for("p", "contact", "left", ["x"]) == {}
    assert any_store.cursor("p", "left", "contact") is None


def test_link_refuses_an_id_that_is_already_bound(any_store: Store) -> None:
    any_store.link("p", "contact", [("1", "A")])
    with pytest.raises(UserError, match="already bound"):
        any_store.link("p", "contact", [("2", "B"), ("3", "A")])
    assert any_store.bindings_for("p", "contact", "left", ["2"]) == {}
    with pytest.raises(UserError, match="listed twice"):
        any_store.link("p", "contact", [("4", "C"), ("4", "D")])


def test_pause_is_persisted(any_store: Store) -> None:
    any_store.set_paused(["p"], True)
    assert Store(any_store.url).pair_states()["p"]["paused"] is True
    any_store.set_paused(["p"], False)
    assert any_store.pair_states()["p"]["paused"] is False


def test_the_known_schema_head_is_the_newest_migration() -> None:
    """The store skips Alembic when the schema is at ``HEAD``: it must be the newest
    migration script, or a new migration would never run."""
    from alembic.script import ScriptDirectory

    from syncd.state.migrate import HEAD, alembic_config

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD
