"""The state store on SQLite and on a real PostgreSQL: schema by Alembic, bulk
queries, one transaction per batch, and hand-made bindings checked for clashes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from syncd.errors import UserError
from syncd.state import BindingRow, Store
from syncd.state.queries import Queries
from syncd.state.rows import BINDING_VALUES, COUNTS, BatchCommit


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


def item(source_id: str) -> dict[str, object]:
    """A run item of a create of ``source_id``."""
    return {
        "entity": "contact",
        "action": "create",
        "outcome": "ok",
        "source_side": "left",
        "source_id": source_id,
        "target_id": None,
        "error": None,
        "detail": None,
    }


def a_bound_and_a_clash(store: Store) -> tuple[int, BatchCommit]:
    """A run with contact a bound, and a batch that binds x, then a again (which the
    unique index refuses), and moves the cursor."""
    run_id = store.start_run("p", "cli", "export", False)
    store.commit("p", run_id, BatchCommit(new_bindings=[BindingRow(None, "contact", "a", "b")]))
    clash = BatchCommit(
        new_bindings=[BindingRow(None, "contact", "x", "y"), BindingRow(None, "contact", "a", "z")],
        items=[item("x")],
        cursors={("left", "contact"): "99"},
    )
    return run_id, clash


def test_a_failing_batch_leaves_nothing_half_written(any_store: Store) -> None:
    run_id, clash = a_bound_and_a_clash(any_store)
    with pytest.raises(Exception):  # noqa: B017 - the database's own integrity error
        any_store.commit("p", run_id, clash)
    assert any_store.bindings_for("p", "contact", "left", ["x"]) == {}
    assert any_store.cursor("p", "left", "contact") is None


def test_run_items_come_back_as_recorded_and_plain_ones_share_a_row(any_store: Store) -> None:
    """Every item comes back in order, whatever the store packs: runs of items of
    one kind and one detail take one row between them, items with an error a row
    each."""
    run_id = any_store.start_run("p", "cli", "export", False)

    def one(i: int, **changes: object) -> dict[str, object]:
        return {**item(f"s{i}"), "target_id": f"t{i}", **changes}

    items = [
        *(one(i) for i in range(300)),
        one(300, outcome="failed", error="invalid: no"),
        *(one(i) for i in range(301, 400)),
        *(one(i, action="bind") for i in range(400, 450)),
        one(450, action="skip", outcome="skipped", detail='{"reason": "r"}'),
        one(451, action="update"),
        *(one(i, entity="company", target_id=None) for i in range(452, 460)),
        *(one(i, action="update", detail='{"fields": ["phone"]}') for i in range(460, 470)),
        *(one(i, action="update", detail='{"note": "é \\"q\\""}') for i in range(470, 475)),
    ]
    # the engine gives plain items as tuples (PlainItem): mixed with dicts here
    names = ("entity", "action", "outcome", "source_side", "source_id", "target_id")
    given = [
        tuple(i[k] for k in names) if n % 3 and i["error"] is None and not i["detail"] else i
        for n, i in enumerate(items)
    ]
    any_store.commit("p", run_id, BatchCommit(items=given))
    assert [
        {k: v for k, v in i.items() if k != "run_id"} for i in any_store.run_items(run_id)
    ] == items
    with any_store.engine.connect() as conn:
        stored = conn.execute(
            text("SELECT count(*) FROM run_item WHERE run_id = :r"), {"r": run_id}
        )
        assert stored.scalar_one() == 9


def test_a_run_is_recorded_whole_from_start_to_finish(any_store: Store) -> None:
    """The per-run statements (plain SQL, see syncd/state/queries.py) round-trip every
    value they write: the stamp, the flag, the counts, the error."""
    run_id = any_store.start_run("p", "cli", "export", True)
    assert [r["id"] for r in any_store.running("p")] == [run_id]
    any_store.finish_run(run_id, "partial", {"created": 3, "failed": 1}, "boom")
    assert any_store.running("p") == []
    (run,) = any_store.runs("p")
    assert (run["status"], run["full"], run["created"], run["failed"], run["error"]) == (
        "partial",
        True,
        3,
        1,
        "boom",
    )
    assert run["ended_at"] >= run["started_at"]


def test_a_run_starts_where_inserts_return_nothing(state_url: str) -> None:
    """Before SQLite 3.35 an INSERT cannot return the new id: the row id is read."""
    store = Store(state_url)
    dialect = store.engine.dialect
    first = store.start_run("p", "cli", "export", False)
    dialect.insert_returning = False
    store.queries = Queries(dialect, ("id", *BINDING_VALUES), COUNTS)
    assert not store.queries.returning
    assert store.start_run("q", "cli", "export", False) == first + 1
    store.close()


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


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, state_url: str) -> str:
    return state_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")


def schema_of(url: str) -> tuple[str | None, list[object]]:
    """The store's revision and how its schema differs from the models (Alembic's
    autogenerate comparison: tables, columns, types, nullability, keys, indexes)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    engine = create_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
        revision = context.get_current_revision()
    engine.dispose()
    return revision, differences


def test_a_new_store_built_from_the_models_equals_one_built_by_the_migrations(
    empty_url: str, tmp_path: Path
) -> None:
    from alembic import command

    from syncd.state.migrate import HEAD, alembic_config, upgrade

    engine = create_engine(empty_url)
    upgrade(engine)  # an empty database: built from the models and stamped
    engine.dispose()
    assert schema_of(empty_url) == (HEAD, [])

    migrated_url = f"sqlite:///{tmp_path / 'migrated.db'}"
    migrated = create_engine(migrated_url)
    cfg = alembic_config()
    with migrated.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
    migrated.dispose()
    assert schema_of(migrated_url) == (HEAD, [])


def test_a_database_with_other_tables_gets_syncds_tables_beside_them(state_url: str) -> None:
    engine = create_engine(state_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE contacts (id INTEGER PRIMARY KEY, name TEXT)"))
        conn.execute(text("INSERT INTO contacts (name) VALUES ('kept')"))
    engine.dispose()
    store = Store(state_url)
    assert store.runs() == []
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM contacts")).scalar() == "kept"
    store.close()


def test_the_known_schema_head_is_the_newest_migration() -> None:
    """The store skips Alembic when the schema is at ``HEAD``: it must be the newest
    migration script, or a new migration would never run."""
    from alembic.script import ScriptDirectory

    from syncd.state.migrate import HEAD, alembic_config

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD
