"""The connector conformance suite: what the engine relies on, as pytest tests.

A connector author subclasses :class:`ConnectorConformance` in a test module and
provides one fixture, ``connector``: an *opened* connector to an empty test system
that serves ``contact`` records with at least ``email``, ``first_name`` and ``phone``::

    import pytest
    from syncd.testing import ConnectorConformance

    class TestMyConnector(ConnectorConformance):
        @pytest.fixture
        def connector(self, tmp_path):
            with MyConnector("t", MySettings(...), tmp_path) as conn:
                yield conn

Every test writes through the connector's own API and flushes, so the suite needs
nothing else. The suite is versioned with the plugin API
(:data:`syncd.plugin.hookspecs.API_VERSION`): a test added later is one more thing the engine
relies on.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from syncd.entities import normalize_key
from syncd.plugin.connector import (
    Connector,
    Create,
    CursorExpiredError,
    Delete,
    ErrorKind,
    Page,
    Record,
    Update,
)

ENTITY = "contact"


def listing(connector: Connector, cursor: str | None = None, full: bool = False) -> list[Page]:
    """Every page of one listing."""
    return list(connector.changes(ENTITY, cursor, full=full))


def last_cursor(pages: list[Page]) -> str | None:
    """The cursor a listing ends at (the last page that carried one)."""
    cursor = None
    for page in pages:
        if page.cursor is not None:
            cursor = page.cursor
    return cursor


def records_of(pages: list[Page]) -> dict[str, Record]:
    """The records of a listing by id (an id listed twice keeps its later record)."""
    return {record.id: record for page in pages for record in page.records}


class ConnectorConformance:
    """Tests every connector must pass. Override the ``connector`` fixture; override
    ``page_size`` if listing more than that many records is slow for your system."""

    #: Records created for the paging test (more than one page for most connectors).
    page_records: int = 250
    #: Fields every record the suite creates carries besides its own, for systems
    #: that insist on some (a NOT NULL column, say).
    base_fields: ClassVar[dict[str, Any]] = {}
    #: True: check that a cursor the connector cannot use raises CursorExpiredError or
    #: lists everything (rule 34). Set it in new suites; it is off by default so that
    #: connectors written before the check keep passing.
    check_unusable_cursor: ClassVar[bool] = False

    @pytest.fixture
    def connector(self) -> Iterator[Connector]:
        """An opened connector to an empty system (override this)."""
        raise NotImplementedError("override the 'connector' fixture in your test class")
        yield  # pragma: no cover

    # -- helpers ------------------------------------------------------------------------

    def create(self, connector: Connector, *records: dict[str, Any]) -> list[str]:
        """Create records, flush, return their ids (failing on any error)."""
        items = [Create(uuid.uuid4().hex, {**self.base_fields, **fields}) for fields in records]
        results = connector.create(ENTITY, items)
        connector.flush()
        assert len(results) == len(items), "one result per item"
        errors = [r.error for r in results if not r.ok]
        assert not errors, f"creates failed: {errors}"
        return [r.id or "" for r in results]

    # -- the contract -------------------------------------------------------------------

    def test_serves_contacts_with_basic_fields(self, connector: Connector) -> None:
        assert ENTITY in connector.entities()
        assert {"email", "first_name", "phone"} <= set(connector.fields(ENTITY))

    def test_created_records_come_back_as_given(self, connector: Connector) -> None:
        fields = {"email": "ann@example.com", "first_name": "Ann", "phone": "+1 555 0101"}
        (rid,) = self.create(connector, fields)
        assert rid, "a created record has an id"
        got = connector.get(ENTITY, [rid])
        assert set(got) == {rid}
        for name, value in fields.items():
            assert got[rid].fields.get(name) == value, name

    def test_get_leaves_out_unknown_ids(self, connector: Connector) -> None:
        (rid,) = self.create(connector, {"email": "a@example.com"})
        got = connector.get(ENTITY, [rid, "no-such-id-123"])
        assert set(got) == {rid}
        assert connector.get(ENTITY, []) == {}

    def test_a_first_listing_returns_every_record_and_a_cursor(self, connector: Connector) -> None:
        ids = self.create(connector, {"email": "a@example.com"}, {"email": "b@example.com"})
        pages = listing(connector)
        assert set(records_of(pages)) == set(ids)
        assert last_cursor(pages) is not None, "a listing ends with a cursor"

    def test_a_listing_from_a_cursor_returns_later_changes(self, connector: Connector) -> None:
        first, second = self.create(
            connector, {"email": "a@example.com"}, {"email": "b@example.com"}
        )
        cursor = last_cursor(listing(connector))
        (result,) = connector.update(ENTITY, [Update(second, {"first_name": "Bo"})])
        connector.flush()
        assert result.ok, result.error
        later = listing(connector, cursor)
        changed = records_of(later)
        assert second in changed and changed[second].fields.get("first_name") == "Bo"
        assert first not in changed or changed[first].fields.get("first_name") is None
        assert last_cursor(later) is not None

    def test_a_cursor_it_cannot_use_expires_or_lists_everything(self, connector: Connector) -> None:
        """A cursor the connector cannot resume from (another system's, a forgotten
        server token) raises :class:`CursorExpiredError`, on which the engine lists
        everything (rule 34), or gives a complete listing itself: any other error
        would fail every run until a person resets the cursor."""
        if not self.check_unusable_cursor:
            pytest.skip("set check_unusable_cursor = True to check expired cursors")
        (rid,) = self.create(connector, {"email": "a@example.com"})
        try:
            pages = listing(connector, "syncd-conformance: not a cursor this connector made")
        except CursorExpiredError:
            return
        assert all(page.full for page in pages), "not an expiry: the listing must be complete"
        assert rid in records_of(pages)

    def test_an_unchanged_system_lists_nothing_new(self, connector: Connector) -> None:
        """A listing may repeat records (the engine tolerates seeing a record twice,
        e.g. rows that share the cursor's timestamp), but never reports a change or a
        deletion that did not happen."""
        (rid,) = self.create(connector, {"email": "a@example.com", "first_name": "A"})
        pages = listing(connector)
        cursor = last_cursor(pages)
        again = listing(connector, cursor)
        assert not any(page.deleted for page in again)
        for record in records_of(again).values():
            assert record.fields == records_of(pages)[rid].fields

    def test_deletions_are_reported(self, connector: Connector) -> None:
        keep, gone = self.create(connector, {"email": "a@example.com"}, {"email": "b@example.com"})
        cursor = last_cursor(listing(connector))
        (result,) = connector.delete(ENTITY, [Delete(gone)])
        connector.flush()
        assert result.ok, result.error
        later = listing(connector, cursor)
        deleted = {i for page in later for i in page.deleted}
        complete = all(page.full for page in later)
        assert gone in deleted or (complete and gone not in records_of(later)), (
            "a deletion is reported in the feed, or the listing is complete without it"
        )
        assert connector.get(ENTITY, [gone]) == {}
        assert keep in connector.get(ENTITY, [keep])

    def test_deleting_a_missing_record_succeeds(self, connector: Connector) -> None:
        (rid,) = self.create(connector, {"email": "a@example.com"})
        connector.delete(ENTITY, [Delete(rid)])
        connector.flush()
        (again,) = connector.delete(ENTITY, [Delete(rid)])
        connector.flush()
        assert again.ok, again.error

    def test_updating_a_missing_record_is_a_not_found_result(self, connector: Connector) -> None:
        (rid,) = self.create(connector, {"email": "a@example.com"})
        connector.delete(ENTITY, [Delete(rid)])
        connector.flush()
        (result,) = connector.update(ENTITY, [Update(rid, {"first_name": "X"})])
        assert result.error is not None, "an error result, not an exception"
        assert result.error.kind == ErrorKind.NOT_FOUND

    def test_one_bad_item_fails_alone(self, connector: Connector) -> None:
        good, gone = self.create(connector, {"email": "a@example.com"}, {"email": "b@example.com"})
        connector.delete(ENTITY, [Delete(gone)])
        connector.flush()
        results = connector.update(
            ENTITY, [Update(gone, {"first_name": "X"}), Update(good, {"first_name": "Y"})]
        )
        connector.flush()
        assert [r.ok for r in results] == [False, True]
        assert connector.get(ENTITY, [good])[good].fields.get("first_name") == "Y"

    def test_versions_change_on_update_and_stale_writes_are_refused(
        self, connector: Connector
    ) -> None:
        (rid,) = self.create(connector, {"email": "a@example.com"})
        before = connector.get(ENTITY, [rid])[rid].version
        if before is None:
            pytest.skip("this connector keeps no record versions")
        (result,) = connector.update(ENTITY, [Update(rid, {"first_name": "A"}, before)])
        connector.flush()
        assert result.ok, result.error
        after = connector.get(ENTITY, [rid])[rid].version
        assert after != before, "an update changes the version"
        assert result.version in (None, after), "the write reports the version it made"
        (stale,) = connector.update(ENTITY, [Update(rid, {"first_name": "B"}, before)])
        connector.flush()
        assert stale.error is not None and stale.error.kind == ErrorKind.CONFLICT
        assert stale.error.retryable
        assert connector.get(ENTITY, [rid])[rid].fields.get("first_name") == "A"

    def test_only_the_given_fields_are_written(self, connector: Connector) -> None:
        (rid,) = self.create(connector, {"email": "a@example.com", "phone": "1"})
        connector.update(ENTITY, [Update(rid, {"first_name": "Ann"})])
        connector.flush()
        fields = connector.get(ENTITY, [rid])[rid].fields
        assert (fields.get("first_name"), fields.get("phone")) == ("Ann", "1")

    def test_unknown_fields_are_ignored(self, connector: Connector) -> None:
        fields = {**self.base_fields, "email": "a@example.com", "no_such_field_x": "?"}
        (result,) = connector.create(ENTITY, [Create("k-unknown", fields)])
        connector.flush()
        assert result.ok, result.error

    def test_find_matches_normalised_keys(self, connector: Connector) -> None:
        (rid,) = self.create(connector, {"email": " Ann@Example.COM "})
        key = normalize_key("email", "ann@example.com")
        assert key is not None
        found = connector.find(ENTITY, "email", {key, "nobody@example.com"})
        assert [r.id for r in found.get(key, [])] == [rid]
        assert "nobody@example.com" not in found

    def test_client_ids_find_an_interrupted_create_again(self, connector: Connector) -> None:
        if not connector.client_ids:
            pytest.skip("this connector lets the system choose ids")
        fields = {**self.base_fields, "email": "a@example.com"}
        (result,) = connector.create(ENTITY, [Create("intent-key-1", fields)])
        connector.flush()
        assert result.id == "intent-key-1"
        assert "intent-key-1" in connector.get(ENTITY, ["intent-key-1"])

    def test_created_finds_records_by_their_create_key(self, connector: Connector) -> None:
        if connector.created(ENTITY, []) is None:
            pytest.skip("this connector keeps no trace of create keys")
        fields = {**self.base_fields, "email": "a@example.com"}
        (result,) = connector.create(ENTITY, [Create("intent-key-2", fields)])
        connector.flush()
        found = connector.created(ENTITY, ["intent-key-2", "intent-key-never-sent"])
        assert found is not None and set(found) == {"intent-key-2"}
        assert found["intent-key-2"].id == result.id

    def test_records_created_after_a_mark_are_listed_since_it(self, connector: Connector) -> None:
        (before,) = self.create(connector, {"email": "before@example.com"})
        mark = connector.create_mark(ENTITY)
        if mark is None:
            pytest.skip("this connector gives no create mark")
        after = self.create(connector, {"email": "a@example.com"}, {"email": "b@example.com"})
        pages = connector.created_since(ENTITY, mark)
        assert pages is not None, "a connector that gives marks lists records since them"
        since = {record.id: record for page in pages for record in page}
        assert set(since) == set(after), "exactly the records created after the mark"
        assert before not in since
        assert since[after[1]].fields.get("email") == "b@example.com"

    def test_listings_page_without_losing_or_repeating_records(self, connector: Connector) -> None:
        count = self.page_records
        batch = max(1, min(connector.batch_size, 100))
        ids: list[str] = []
        for start in range(0, count, batch):
            ids += self.create(
                connector,
                *({"email": f"p{i}@example.com"} for i in range(start, min(count, start + batch))),
            )
        pages = listing(connector)
        listed = [record.id for page in pages for record in page.records]
        assert sorted(listed) == sorted(ids), "every record exactly once"

    def test_batches_return_one_result_per_item_in_order(self, connector: Connector) -> None:
        items = [
            Create(f"order-{i}", {**self.base_fields, "email": f"o{i}@example.com"})
            for i in range(5)
        ]
        results = connector.create(ENTITY, items)
        connector.flush()
        assert len(results) == 5
        got = connector.get(ENTITY, [r.id or "" for r in results])
        assert [got[r.id or ""].fields.get("email") for r in results] == [
            f"o{i}@example.com" for i in range(5)
        ]
