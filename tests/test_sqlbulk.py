"""Driver-level bulk inserts and updates (:mod:`syncd.kit.sqlbulk`) on every database
syncd supports, with column types that need converting (booleans and times on
SQLite), a quoted column name and a driver that only takes named parameters."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from syncd.kit.sqlbulk import execute_many, insert_rows, update_rows, update_tuples

URLS = {"postgresql": "SYNCD_TEST_POSTGRES_URL", "mysql": "SYNCD_TEST_MYSQL_URL"}
WHEN = datetime(2026, 11, 23, 6, 30, 15, 123456)


@pytest.fixture(params=["sqlite", "sqlite-named", "postgresql", "mysql"])
def table(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[sa.Engine, sa.Table]]:
    """A fresh table in one backend, dropped afterwards."""
    if request.param.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'bulk.db'}"
        style = {"paramstyle": "named"} if request.param == "sqlite-named" else {}
        engine = sa.create_engine(url, **style)
    else:
        url = os.environ.get(URLS[request.param], "")
        if not url:
            pytest.skip(f"set {URLS[request.param]} to test against {request.param}")
        engine = sa.create_engine(url)
    metadata = sa.MetaData()
    things = sa.Table(
        f"things_{uuid.uuid4().hex[:8]}",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(50)),
        sa.Column("order", sa.String(50)),  # a reserved word: must be quoted
        sa.Column("flag", sa.Boolean, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("run", sa.Integer),
    )
    metadata.create_all(engine)
    yield engine, things
    metadata.drop_all(engine)
    engine.dispose()


def rows_of(engine: sa.Engine, table: sa.Table) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        query = sa.select(table).order_by(table.c.id)
        return [tuple(row) for row in conn.execute(query)]


def at(moment: object) -> datetime:
    """MariaDB's DATETIME keeps whole seconds unless declared with fsp."""
    assert isinstance(moment, datetime)
    return moment.replace(microsecond=0)


def test_insert_rows_with_constants(table: tuple[sa.Engine, sa.Table]) -> None:
    engine, things = table
    rows = [
        {"id": 1, "name": "a", "order": "x", "flag": True},
        # the same keys in another order
        {"flag": False, "order": None, "name": "b", "id": 2},
    ]
    with engine.begin() as conn:
        insert_rows(conn, things, rows, {"at": WHEN, "run": 7})
        insert_rows(conn, things, [])
    got = rows_of(engine, things)
    assert [r[:4] + r[5:] for r in got] == [(1, "a", "x", True, 7), (2, "b", None, False, 7)]
    assert {at(r[4]) for r in got} == {at(WHEN)}


@pytest.mark.parametrize("as_tuples", [False, True])
def test_update_rows_by_key(table: tuple[sa.Engine, sa.Table], as_tuples: bool) -> None:
    engine, things = table
    with engine.begin() as conn:
        insert_rows(
            conn,
            things,
            [{"id": n, "name": f"n{n}", "order": "o", "flag": False} for n in (1, 2, 3)],
            {"at": WHEN, "run": 1},
        )
    later = datetime(2027, 1, 2, 3, 4, 5)
    with engine.begin() as conn:
        if as_tuples:
            rows = [("two", True, 2), ("three", False, 3)]
            update_tuples(conn, things, ("name", "flag"), "id", rows, {"at": later})
            update_tuples(conn, things, ("name",), "id", [])
        else:
            update_rows(
                conn,
                things,
                [{"name": "two", "flag": True, "id": 2}, {"id": 3, "flag": False, "name": "three"}],
                "id",
                {"at": later},
            )
            update_rows(conn, things, [], "id")
    got = {r[0]: r for r in rows_of(engine, things)}
    assert got[1][1:4] == ("n1", "o", False) and at(got[1][4]) == at(WHEN)
    assert got[2][1:4] == ("two", "o", True) and at(got[2][4]) == later
    assert got[3][1:4] == ("three", "o", False) and got[3][5] == 1


def test_execute_many_with_fixed_values_in_the_statement(
    table: tuple[sa.Engine, sa.Table],
) -> None:
    """Placeholders come from the rows; values written into the statement (here
    ``run = 1``) stay as they are; the result counts the rows matched."""
    engine, things = table
    with engine.begin() as conn:
        insert_rows(
            conn,
            things,
            [{"id": n, "name": f"n{n}", "flag": False, "run": n % 2} for n in (1, 2, 3)],
            {"at": WHEN},
        )
    statement = (
        sa.update(things)
        .where(things.c.id == sa.bindparam("key"), things.c.run == 1)
        .values(name=sa.bindparam("new"), flag=sa.bindparam("on"))
    )
    with engine.begin() as conn:
        rows = [{"key": n, "new": f"m{n}", "on": True} for n in (1, 2, 3)]
        assert execute_many(conn, statement, rows) == 2  # run = 1 holds for 1 and 3
    got = {r[0]: r[1:4] for r in rows_of(engine, things)}
    assert got == {1: ("m1", None, True), 2: ("n2", None, False), 3: ("m3", None, True)}


def test_insert_rows_beyond_one_statement(table: tuple[sa.Engine, sa.Table]) -> None:
    """More rows than one statement's parameter limit (SQLite writes many rows per
    statement) all land, each with its own values."""
    engine, things = table
    rows = [{"id": i, "name": f"n{i}", "order": None, "flag": i % 2 == 0} for i in range(12_001)]
    with engine.begin() as conn:
        insert_rows(conn, things, rows, {"at": WHEN, "run": 3})
    got = rows_of(engine, things)
    assert len(got) == 12_001
    assert [(r[0], r[1], r[3], r[5]) for r in got[::1000]] == [
        (i, f"n{i}", i % 2 == 0, 3) for i in range(0, 12_001, 1000)
    ]
