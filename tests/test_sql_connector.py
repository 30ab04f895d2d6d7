"""Tests of the ``sql`` connector through its public API, against SQLite always and
against PostgreSQL / MariaDB when ``SYNCD_TEST_POSTGRES_URL`` / ``SYNCD_TEST_MYSQL_URL``
name a database. The databases are shared, so every test uses its own tables."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from syncd.plugin.connector import (
    AuthError,
    ConfigurationError,
    Connector,
    Create,
    CursorExpiredError,
    Delete,
    ErrorKind,
    Page,
    UnavailableError,
    Update,
)
from syncd.plugin.manager import load_registry

SERVER_URLS = {"postgresql": "SYNCD_TEST_POSTGRES_URL", "mysql": "SYNCD_TEST_MYSQL_URL"}
T0 = datetime(2024, 1, 1, 12, 0, 0)


def connector_class() -> type[Connector]:
    """The registered ``sql`` connector type."""
    return load_registry().connectors["sql"].cls


@dataclass
class World:
    """The database as other programs see it: tables to edit behind the connector."""

    url: str
    engine: sa.Engine
    metadata: sa.MetaData
    contacts: sa.Table
    companies: sa.Table
    base_dir: Path

    def insert(self, table: sa.Table, *rows: dict[str, Any]) -> list[str]:
        """Insert rows directly; return their ids as strings."""
        with self.engine.begin() as conn:
            return [str(conn.execute(table.insert(), row).inserted_primary_key[0]) for row in rows]

    def row(self, table: sa.Table, row_id: str) -> Any:
        """A row as stored, or None."""
        with self.engine.connect() as conn:
            return conn.execute(table.select().where(table.c.id == int(row_id))).first()

    def edit(self, table: sa.Table, row_id: str, **values: Any) -> None:
        """Change a row directly."""
        with self.engine.begin() as conn:
            conn.execute(table.update().where(table.c.id == int(row_id)).values(**values))

    def table(self, *columns: sa.Column[Any]) -> sa.Table:
        """One more table, dropped with the others."""
        table = sa.Table(f"extra_{uuid.uuid4().hex[:10]}", self.metadata, *columns)
        table.create(self.engine)
        return table

    def connector(self, **overrides: Any) -> Connector:
        """A connector over this world's tables; ``overrides`` replace settings."""
        contact = {
            "table": self.contacts.name,
            "id": "id",
            "updated_at": "updated_at",
            "deleted": "is_deleted",
            "fields": {"email": "email_address", "company": "company_id", "loyalty": "loyalty"},
        }
        company = {"table": self.companies.name}
        raw: dict[str, Any] = {
            "url": self.url,
            "entities": {"contact": contact, "company": company},
        }
        raw.update(overrides)
        cls = connector_class()
        settings = cls.Settings.model_validate(raw, context={"base_dir": self.base_dir})
        return cls("crm", settings, self.base_dir)


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """Fresh contact and company tables in one backend, dropped afterwards."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'crm.db'}"
    else:
        variable = SERVER_URLS[request.param]
        url = os.environ.get(variable, "")
        if not url:
            pytest.skip(f"set {variable} to test against {request.param}")
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    suffix = uuid.uuid4().hex[:10]
    companies = sa.Table(
        f"companies_{suffix}",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100)),
        sa.Column("city", sa.String(100)),
    )
    contacts = sa.Table(
        f"contacts_{suffix}",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email_address", sa.String(200)),
        sa.Column("first_name", sa.String(100)),
        sa.Column("last_name", sa.String(100), nullable=False),
        sa.Column("phone", sa.String(50), unique=True),
        sa.Column("private", sa.Boolean),
        sa.Column("company_id", sa.Integer),
        sa.Column("loyalty", sa.Integer),
        sa.Column("internal", sa.String(50)),
        sa.Column("updated_at", sa.DateTime),
        sa.Column("is_deleted", sa.Boolean),
    )
    metadata.create_all(engine)
    try:
        yield World(url, engine, metadata, contacts, companies, tmp_path)
    finally:
        metadata.drop_all(engine)
        engine.dispose()


def contact_row(last_name: str, stamp: datetime | None = T0, **values: Any) -> dict[str, Any]:
    """A contacts row with the NOT NULL column filled."""
    return {"last_name": last_name, "updated_at": stamp, **values}


def read_all(pages: Iterator[Page]) -> list[Page]:
    """Consume a listing."""
    return list(pages)


def ids_of(pages: list[Page]) -> list[str]:
    """Record ids of a listing, in order."""
    return [record.id for page in pages for record in page.records]


# -- registration and configuration ---------------------------------------------------


def test_sql_connector_is_registered() -> None:
    assert connector_class().type == "sql"
    assert connector_class().batch_size == 1000


def test_fields_are_explicit_mappings_plus_same_name_canonical_columns(world: World) -> None:
    with world.connector() as conn:
        assert set(conn.entities()) == {"contact", "company"}
        assert set(conn.fields("contact")) == {
            "email",
            "company",
            "loyalty",
            "first_name",
            "last_name",
            "phone",
            "private",
        }
        assert set(conn.fields("company")) == {"name", "city"}
        assert conn.incremental("contact")
        assert not conn.incremental("company")


def test_missing_table_is_a_configuration_error_naming_it(world: World) -> None:
    conn = world.connector(entities={"company": {"table": "no_such_table_x"}})
    with pytest.raises(ConfigurationError, match="no_such_table_x"):
        conn.open()


@pytest.mark.parametrize("role", ["id", "updated_at", "deleted", "fields"])
def test_missing_column_is_a_configuration_error_naming_it(world: World, role: str) -> None:
    spec: dict[str, Any] = {"table": world.companies.name}
    spec[role] = {"name": "no_such_column"} if role == "fields" else "no_such_column"
    conn = world.connector(entities={"company": spec})
    with pytest.raises(ConfigurationError) as caught:
        conn.open()
    assert "no_such_column" in str(caught.value)
    assert world.companies.name in str(caught.value)
    assert "'crm'" in str(caught.value)


def test_relative_sqlite_path_and_env_url_are_resolved(tmp_path: Path, monkeypatch: Any) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'rel.db'}")
    with engine.begin() as db:
        db.exec_driver_sql("CREATE TABLE orgs (id INTEGER PRIMARY KEY, name TEXT)")
        db.exec_driver_sql("INSERT INTO orgs (name) VALUES ('Acme')")
    engine.dispose()
    monkeypatch.setenv("CRM_URL", "sqlite:///rel.db")
    cls = connector_class()
    raw = {"url": {"env": "CRM_URL"}, "entities": {"company": {"table": "orgs"}}}
    settings = cls.Settings.model_validate(raw, context={"base_dir": tmp_path})
    with cls("crm", settings, tmp_path) as conn:
        assert [r.fields["name"] for r in conn.get("company", ["1"]).values()] == ["Acme"]
        # A hand-written key column (nullable to SQLite) still takes multi-row inserts.
        created = conn.create("company", [Create("a", {"name": "B"}), Create("b", {"name": "C"})])
    assert [r.id for r in created] == ["2", "3"]


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://postgres:s3cret@127.0.0.1:1/test",
        "mysql+pymysql://root:s3cret@127.0.0.1:1/test",
    ],
)
def test_unreachable_server_is_unavailable_without_password(tmp_path: Path, url: str) -> None:
    cls = connector_class()
    raw = {"url": url, "entities": {"company": {"table": "orgs"}}}
    conn = cls("crm", cls.Settings.model_validate(raw), tmp_path)
    with pytest.raises(UnavailableError) as caught:
        conn.open()
    message = str(caught.value)
    assert "s3cret" not in message
    assert "127.0.0.1" in message


def test_refused_credentials_are_an_auth_error_without_password(tmp_path: Path) -> None:
    server = os.environ.get(SERVER_URLS["mysql"], "")
    if not server:
        pytest.skip(f"set {SERVER_URLS['mysql']} to test refused credentials")
    url = sa.make_url(server).set(password="s3cret-wrong").render_as_string(hide_password=False)
    cls = connector_class()
    raw = {"url": url, "entities": {"company": {"table": "orgs"}}}
    conn = cls("crm", cls.Settings.model_validate(raw), tmp_path)
    with pytest.raises(AuthError) as caught:
        conn.open()
    assert "s3cret" not in str(caught.value)


def test_malformed_url_is_a_configuration_error_without_password(tmp_path: Path) -> None:
    cls = connector_class()
    raw = {"url": "nonsense://user:s3cret@host/db", "entities": {"company": {"table": "t"}}}
    conn = cls("crm", cls.Settings.model_validate(raw), tmp_path)
    with pytest.raises(ConfigurationError) as caught:
        conn.open()
    assert "s3cret" not in str(caught.value)


# -- listings ---------------------------------------------------------------------------


def test_full_listing_is_complete_ordered_and_skips_soft_deleted(world: World) -> None:
    ids = world.insert(
        world.contacts,
        *(contact_row(f"L{i}", T0 + timedelta(seconds=i)) for i in range(5)),
        contact_row("Gone", is_deleted=True),
    )
    with world.connector(page_size=2) as conn:
        pages = read_all(conn.changes("contact", None))
    assert ids_of(pages) == ids[:5]
    assert all(page.full for page in pages)
    assert [page.cursor is None for page in pages] == [True, True, False]
    first = pages[0].records[0]
    assert first.version == str(T0)
    assert first.modified_at == T0.replace(tzinfo=UTC)
    assert first.fields["last_name"] == "L0"


def test_full_flag_and_tables_without_stamp_list_everything(world: World) -> None:
    world.insert(world.companies, {"name": "Acme"}, {"name": "Beta"})
    world.insert(world.contacts, contact_row("A"))
    with world.connector() as conn:
        cursor = read_all(conn.changes("contact", None))[-1].cursor
        again = read_all(conn.changes("contact", cursor, full=True))
        companies = read_all(conn.changes("company", None))
        resumed = read_all(conn.changes("company", companies[-1].cursor))
    assert len(ids_of(again)) == 1 and again[0].full
    assert len(ids_of(resumed)) == 2 and all(page.full for page in resumed)
    assert ids_of(companies) == ids_of(resumed)


def test_a_view_is_read_like_a_table(world: World) -> None:
    """A view has no primary key to reflect: its configured id column serves."""
    ids = world.insert(world.companies, {"name": "Acme", "city": "Berlin"}, {"name": "Beta"})
    view = f"v_{world.companies.name}"
    with world.engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE VIEW {view} AS SELECT id, name, city FROM {world.companies.name}"
            " WHERE city IS NOT NULL"
        )
    try:
        with world.connector(entities={"company": {"table": view}}) as conn:
            pages = read_all(conn.changes("company", None))
    finally:
        with world.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP VIEW {view}")
    assert ids_of(pages) == ids[:1]
    assert pages[0].records[0].fields["city"] == "Berlin"


def test_incremental_keyset_paging_keeps_ties_across_page_boundaries(world: World) -> None:
    world.insert(world.contacts, contact_row("old"))
    with world.connector(page_size=2) as conn:
        cursor = read_all(conn.changes("contact", None))[-1].cursor
        t1 = T0 + timedelta(seconds=10)
        tied = world.insert(world.contacts, *(contact_row(f"T{i}", t1) for i in range(5)))
        later = world.insert(world.contacts, contact_row("later", t1 + timedelta(seconds=1)))
        pages = read_all(conn.changes("contact", cursor))
        assert ids_of(pages) == tied + later
        assert not any(page.full for page in pages)
        assert all(page.cursor for page in pages)
        # Resuming inside the tie loses nothing and repeats nothing.
        resumed = read_all(conn.changes("contact", pages[0].cursor))
        assert ids_of(resumed) == tied[2:] + later
        quiet = read_all(conn.changes("contact", pages[-1].cursor))
    assert ids_of(quiet) == []
    assert quiet[-1].cursor == pages[-1].cursor
    assert json.loads(pages[-1].cursor)  # a JSON string


def test_unreadable_cursor_expires(world: World) -> None:
    foreign = json.dumps({"v": 1, "ts": ["i", 5], "id": ["s", "x"]})
    with world.connector() as conn:
        for cursor in ("not a cursor", foreign):
            with pytest.raises(CursorExpiredError):
                read_all(conn.changes("contact", cursor))


def test_epoch_stamp_and_text_soft_delete_columns(world: World) -> None:
    table = world.table(
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50)),
        sa.Column("changed", sa.BigInteger),
        sa.Column("gone", sa.String(5)),
    )
    (old,) = world.insert(table, {"name": "old", "changed": 1_000, "gone": "no"})
    spec = {"table": table.name, "updated_at": "changed", "deleted": "gone"}
    with world.connector(entities={"company": spec}) as conn:
        cursor = read_all(conn.changes("company", None))[-1].cursor
        created = conn.create("company", [Create("k", {"name": "new"})])[0]
        deleted = conn.delete("company", [Delete(old)])[0]
        pages = read_all(conn.changes("company", cursor))
    assert created.version and abs(int(created.version) - datetime.now(UTC).timestamp()) < 60
    assert deleted.ok
    assert [r.id for p in pages for r in p.records] == [created.id]
    assert [i for p in pages for i in p.deleted] == [old]
    assert pages[-1].records[0].version == created.version


def test_text_stamps_read_as_moments_in_utc_unless_they_say_otherwise(world: World) -> None:
    """A stamp kept as text (SQLite's usual way) is a moment in UTC when it names no
    offset, and keeps the offset it names; a bare date is midnight UTC."""
    table = world.table(
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50)),
        sa.Column("changed", sa.String(40)),
    )
    stamps = {
        "2026-01-01 10:00:00": datetime(2026, 1, 1, 10, tzinfo=UTC),
        " 2026-01-01T10:00:00.123456 ": datetime(2026, 1, 1, 10, 0, 0, 123456, tzinfo=UTC),
        "2026-01-01T10:00:00+02:00": datetime(2026, 1, 1, 8, tzinfo=UTC),
        "2026-01-01T10:00:00Z": datetime(2026, 1, 1, 10, tzinfo=UTC),
        "2026-01-01": datetime(2026, 1, 1, tzinfo=UTC),
        "not a time": None,
    }
    ids = world.insert(table, *({"name": text, "changed": text} for text in stamps))
    spec = {"table": table.name, "updated_at": "changed"}
    with world.connector(entities={"company": spec}) as conn:
        records = conn.get("company", ids)
    read = {records[i].fields["name"]: records[i].modified_at for i in ids}
    assert read == stamps


def test_overlap_rereads_recent_rows(world: World) -> None:
    ids = world.insert(
        world.contacts, contact_row("a"), contact_row("b", T0 + timedelta(seconds=5))
    )
    with world.connector(overlap=10) as conn:
        cursor = read_all(conn.changes("contact", None))[-1].cursor
        assert ids_of(read_all(conn.changes("contact", cursor))) == ids
    with world.connector(overlap=2) as conn:
        assert ids_of(read_all(conn.changes("contact", cursor))) == ids[1:]


def test_soft_deleted_rows_appear_as_deletions_in_incremental_reads(world: World) -> None:
    kept, gone = world.insert(world.contacts, contact_row("keep"), contact_row("gone"))
    with world.connector() as conn:
        cursor = read_all(conn.changes("contact", None))[-1].cursor
        result = conn.delete("contact", [Delete(gone)])
        pages = read_all(conn.changes("contact", cursor))
        assert conn.get("contact", [kept, gone]).keys() == {kept}
    assert result[0].ok and result[0].id == gone
    assert [i for page in pages for i in page.deleted] == [gone]
    assert ids_of(pages) == []
    stored = world.row(world.contacts, gone)
    assert stored.is_deleted and stored.updated_at > T0


def test_hard_delete_and_already_gone_succeed(world: World) -> None:
    (acme,) = world.insert(world.companies, {"name": "Acme"})
    with world.connector() as conn:
        results = conn.delete("company", [Delete(acme), Delete("999999"), Delete("x")])
        assert all(r.ok for r in results)
        assert conn.get("company", [acme]) == {}
    assert world.row(world.companies, acme) is None


# -- get and find -----------------------------------------------------------------------


def test_get_returns_live_rows_and_ignores_unknown_ids(world: World) -> None:
    a, b = world.insert(
        world.contacts,
        contact_row("A", email_address="a@x.org", company_id=7, private=True, loyalty=3),
        contact_row("B", is_deleted=True),
    )
    with world.connector() as conn:
        found = conn.get("contact", [a, b, "424242", "not-a-number"])
    assert list(found) == [a]
    fields = found[a].fields
    assert fields["email"] == "a@x.org"
    assert fields["company"] == "7"
    assert fields["loyalty"] == "3"
    assert fields["private"] is True
    assert fields["first_name"] is None
    assert "internal" not in fields


def test_find_matches_normalised_values_with_several_candidates(world: World) -> None:
    one, two, _ = world.insert(
        world.contacts,
        contact_row("A", email_address="  Ann@Example.COM"),
        contact_row("B", email_address="ann@example.com"),
        contact_row("C", email_address="bob@example.com"),
    )
    world.insert(world.contacts, contact_row("D", email_address="ann@example.com", is_deleted=True))
    with world.connector() as conn:
        found = conn.find("contact", "email", ["ann@example.com", "nobody@example.com"])
        by_name = conn.find("contact", "last_name", ["c"])
    assert list(found) == ["ann@example.com"]
    assert sorted(r.id for r in found["ann@example.com"]) == sorted([one, two])
    assert [r.fields["last_name"] for r in by_name["c"]] == ["C"]


# -- writes -----------------------------------------------------------------------------


def test_create_returns_database_ids_and_versions(world: World) -> None:
    items = [
        Create("k1", {"last_name": "One", "email": "one@x.org", "company": "5", "loyalty": "2"}),
        Create("k2", {"last_name": "Two", "private": True, "unknown_field": "ignored"}),
    ]
    before = datetime.now(UTC) - timedelta(seconds=2)
    with world.connector() as conn:
        results = conn.create("contact", items)
        assert all(r.ok for r in results)
        ids = [r.id for r in results]
        assert all(i is not None and i.isdigit() for i in ids) and len(set(ids)) == 2
        found = conn.get("contact", ids)
    assert [found[i].fields["last_name"] for i in ids] == ["One", "Two"]
    assert found[ids[0]].fields["company"] == "5"
    assert found[ids[1]].fields["private"] is True
    for result in results:
        record = found[result.id]
        assert record.version == result.version
        assert record.modified_at is not None and record.modified_at >= before
    assert world.row(world.contacts, ids[0]).loyalty == 2


def test_update_writes_only_given_columns_and_bumps_the_stamp(world: World) -> None:
    (row_id,) = world.insert(
        world.contacts, contact_row("Old", first_name="Ann", email_address="ann@x.org")
    )
    with world.connector() as conn:
        result = conn.update("contact", [Update(row_id, {"first_name": "Anna", "junk": "x"})])
        record = conn.get("contact", [row_id])[row_id]
    assert result[0].ok and result[0].id == row_id
    assert result[0].version == record.version != str(T0)
    assert record.fields["first_name"] == "Anna"
    assert record.fields["last_name"] == "Old"
    assert record.fields["email"] == "ann@x.org"
    assert world.row(world.contacts, row_id).updated_at > T0


def test_update_of_missing_row_is_not_found_and_spares_the_rest(world: World) -> None:
    gone, live = world.insert(
        world.contacts, contact_row("Gone", is_deleted=True), contact_row("L")
    )
    batch = [
        Update("987654", {"first_name": "X"}),
        Update("abc", {}),
        Update(gone, {"title": "x"}),
        Update(live, {"first_name": "Kept"}),
    ]
    with world.connector() as conn:
        results = conn.update("contact", batch)
        record = conn.get("contact", [live])[live]
    kinds = [r.error.kind if r.error else None for r in results]
    assert kinds == [ErrorKind.NOT_FOUND] * 3 + [None]
    assert record.fields["first_name"] == "Kept" and record.version == results[3].version


def test_update_with_stale_version_is_a_retryable_conflict(world: World) -> None:
    (row_id,) = world.insert(world.contacts, contact_row("A"))
    with world.connector() as conn:
        version = conn.get("contact", [row_id])[row_id].version
        world.edit(world.contacts, row_id, first_name="Other", updated_at=T0 + timedelta(hours=1))
        stale = conn.update("contact", [Update(row_id, {"first_name": "Mine"}, version)])
        current = conn.get("contact", [row_id])[row_id].version
        fresh = conn.update("contact", [Update(row_id, {"first_name": "Mine"}, current)])
        record = conn.get("contact", [row_id])[row_id]
    assert stale[0].error is not None
    assert stale[0].error.kind == ErrorKind.CONFLICT and stale[0].error.retryable
    assert fresh[0].ok and record.fields["first_name"] == "Mine"


def test_one_bad_row_fails_alone(world: World) -> None:
    (taken,) = world.insert(world.contacts, contact_row("T", phone="555"))
    items = [
        Create("a", {"last_name": "Good1"}),
        Create("b", {"first_name": "No last name"}),
        Create("c", {"last_name": "Dup", "phone": "555"}),
        Create("d", {"last_name": "Good2"}),
    ]
    with world.connector() as conn:
        results = conn.create("contact", items)
        good = conn.get("contact", [r.id for r in results if r.ok])
        updates = conn.update("contact", [Update(taken, {"last_name": None})])
    assert [r.ok for r in results] == [True, False, False, True]
    assert results[1].error and results[1].error.kind == ErrorKind.INVALID
    assert not results[1].error.retryable and "last_name" in results[1].error.message
    assert results[2].error and results[2].error.kind == ErrorKind.DUPLICATE
    assert sorted(r.fields["last_name"] for r in good.values()) == ["Good1", "Good2"]
    assert updates[0].error and updates[0].error.kind == ErrorKind.INVALID


def test_values_are_coerced_to_the_column_type(world: World) -> None:
    (row_id,) = world.insert(world.contacts, contact_row("A"))
    with world.connector() as conn:
        ok = conn.update("contact", [Update(row_id, {"loyalty": "42", "company": " 7 "})])
        bad = conn.create("contact", [Create("x", {"last_name": "B", "loyalty": "seven"})])
        record = conn.get("contact", [row_id])[row_id]
    assert ok[0].ok
    assert record.fields["loyalty"] == "42" and record.fields["company"] == "7"
    assert bad[0].error and bad[0].error.kind == ErrorKind.INVALID
    assert "loyalty" in bad[0].error.message
