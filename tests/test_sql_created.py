"""The ``sql`` connector's ways of finding the rows interrupted creates made: by the
create key kept in a ``created_key`` column, or among the rows numbered above the
highest id before the batch (its create mark). Against SQLite always, PostgreSQL and
MariaDB when their URLs are set (see ``test_sql_connector``)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from test_sql_connector import World, contact_row, world  # noqa: F401  (a fixture)

from syncd.plugin.connector import ConfigurationError, Connector, Create, Record


def keyed_world(world: World) -> tuple[sa.Table, dict[str, Any]]:  # noqa: F811
    """A contacts table with a marker column, and the connector settings for it."""
    table = world.table(
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("first_name", sa.String(100)),
        sa.Column("email", sa.String(200)),
        sa.Column("syncd_key", sa.String(64)),
    )
    spec = {"table": table.name, "created_key": "syncd_key"}
    return table, {"entities": {"contact": spec}}


def collect(pages: Any) -> list[Record]:
    return [record for page in pages for record in page]


def test_a_marker_column_finds_rows_by_their_create_key(world: World) -> None:  # noqa: F811
    table, settings = keyed_world(world)
    creates = [Create(f"key-{i}", {"first_name": f"N{i}", "email": None}) for i in range(3)]
    with world.connector(**settings) as conn:
        results = conn.create("contact", creates)
        assert conn.create_mark("contact") is None  # the marker makes marks needless
        found = conn.created("contact", ["key-0", "key-2", "key-9"])
        assert conn.created("contact", []) == {}
    assert set(found) == {"key-0", "key-2"}
    assert found["key-0"].id == results[0].id and found["key-2"].id == results[2].id
    assert found["key-2"].fields["first_name"] == "N2"
    assert world.row(table, results[1].id or "").syncd_key == "key-1"


def test_the_create_key_column_is_checked(world: World) -> None:  # noqa: F811
    _, settings = keyed_world(world)
    spec = settings["entities"]["contact"]
    with pytest.raises(ConfigurationError, match="created_key"):
        world.connector(entities={"contact": {**spec, "fields": {"notes": "syncd_key"}}}).open()
    with pytest.raises(ConfigurationError, match="text column"):
        world.connector(entities={"contact": {**spec, "created_key": "id"}}).open()


def test_rows_created_since_a_mark_are_listed_by_anyone(world: World) -> None:  # noqa: F811
    before = world.insert(world.contacts, contact_row("Old"))
    with world.connector(page_size=2) as conn:
        assert conn.created("contact", ["k"]) is None  # no marker column
        mark = conn.create_mark("contact")
        assert mark == before[0]
        ours = conn.create("contact", [Create(f"k{i}", {"last_name": f"New{i}"}) for i in range(3)])
        theirs = world.insert(world.contacts, contact_row("Other"))
        gone = world.insert(world.contacts, contact_row("Gone", is_deleted=True))
        assert mark is not None
        since = collect(conn.created_since("contact", mark))
        assert conn.created_since("contact", "no number") is None
    assert [r.id for r in since] == [r.id for r in ours] + theirs
    assert gone[0] not in {r.id for r in since}
    assert since[0].fields["last_name"] == "New0"


def test_an_empty_table_marks_everything_to_come(world: World) -> None:  # noqa: F811
    with world.connector() as conn:
        mark = conn.create_mark("contact")
        assert mark == ""
        (result,) = conn.create("contact", [Create("k", {"last_name": "First"})])
        assert [r.id for r in collect(conn.created_since("contact", mark))] == [result.id]


def test_ids_without_an_order_give_no_mark(world: World) -> None:  # noqa: F811
    table = world.table(
        sa.Column("code", sa.String(40), primary_key=True),
        sa.Column("email", sa.String(200)),
    )
    with world.connector(entities={"contact": {"table": table.name, "id": "code"}}) as conn:
        assert conn.create_mark("contact") is None
        assert conn.created_since("contact", "") is None
        assert conn.created("contact", ["k"]) is None


def test_connectors_tell_nothing_by_default(world: World) -> None:  # noqa: F811
    """The contract's defaults: no mark, no listing since one, and ``created`` only
    where the key is the record's id."""

    class Plain(Connector):
        type = "plain"

        def entities(self) -> Any:
            return ("contact",)

        fields = changes = find = create = update = delete = entities  # type: ignore[assignment]

        def get(self, entity: str, ids: Any) -> dict[str, Record]:
            return {i: Record(i, {}) for i in ids if i == "a"}

    plain = Plain("p", Connector.Settings(), world.base_dir)
    assert plain.create_mark("contact") is None
    assert plain.created_since("contact", "1") is None
    assert plain.created("contact", ["a", "b"]) is None
    plain.client_ids = True
    assert set(plain.created("contact", ["a", "b"]) or {}) == {"a"}
