"""The conformance suite of ``syncd.testing`` run against the built-in connectors, the
way a plugin author runs it against theirs (see docs/plugins.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from test_carddav_connector import connector as carddav_connector
from test_carddav_connector import radicale  # noqa: F401 - the fixture
from test_csv_connector import connector as csv_connector
from test_sql_connector import World, world  # noqa: F401 - the fixture
from test_vdir_connector import connector as vdir_connector

from syncd.plugin.connector import Connector
from syncd.testing import ConnectorConformance, MemoryConnector, MemorySettings

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestCollectionWarning")


class TestMemoryConnector(ConnectorConformance):
    check_unusable_cursor = True

    @pytest.fixture
    def connector(self, tmp_path: Path) -> Iterator[Connector]:
        settings = MemorySettings(system="conformance", page_size=40)
        with MemoryConnector("memory", settings, tmp_path) as conn:
            yield conn


class TestMemoryConnectorWithoutFeed(ConnectorConformance):
    check_unusable_cursor = True

    @pytest.fixture
    def connector(self, tmp_path: Path) -> Iterator[Connector]:
        settings = MemorySettings(system="conformance", page_size=40, incremental=False)
        with MemoryConnector("memory", settings, tmp_path) as conn:
            yield conn


class TestCsvConnector(ConnectorConformance):
    check_unusable_cursor = True

    @pytest.fixture
    def connector(self, tmp_path: Path) -> Iterator[Connector]:
        fields = {"email": "Email", "first_name": "First", "phone": "Phone"}
        entities = {"contact": {"file": "contacts.csv", "id": "Id", "fields": fields}}
        conn = csv_connector(tmp_path, page_size=40, entities=entities)
        yield conn
        conn.close()


class TestSqlConnector(ConnectorConformance):
    check_unusable_cursor = True
    base_fields: ClassVar[dict[str, Any]] = {"last_name": "Tester"}  # NOT NULL in the test table

    @pytest.fixture
    def connector(self, world: World) -> Iterator[Connector]:  # noqa: F811
        with world.connector(page_size=40) as conn:
            yield conn

    def test_versions_change_on_update_and_stale_writes_are_refused(
        self,
        connector: Connector,
        world: World,  # noqa: F811
    ) -> None:
        if world.url.startswith("mysql"):
            pytest.skip(
                "the test table's DATETIME keeps whole seconds, so two writes in one second "
                "share a version (see docs/connectors/sql.md: use DATETIME(6))"
            )
        super().test_versions_change_on_update_and_stale_writes_are_refused(connector)


class TestVdirConnector(ConnectorConformance):
    check_unusable_cursor = True

    page_records = 60

    @pytest.fixture
    def connector(self, tmp_path: Path) -> Iterator[Connector]:
        conn = vdir_connector(tmp_path)
        yield conn
        conn.close()


class TestCardDavConnector(ConnectorConformance):
    check_unusable_cursor = True

    page_records = 30  # Radicale creates cards slowly as a collection grows

    @pytest.fixture
    def connector(self, radicale: str, tmp_path: Path) -> Iterator[Connector]:  # noqa: F811
        conn = carddav_connector(radicale, tmp_path)
        yield conn
        conn.close()
