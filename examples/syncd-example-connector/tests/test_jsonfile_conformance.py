"""The example connector passes syncd's conformance suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from syncd_jsonfile import JsonFileConnector, JsonFileSettings

from syncd.testing import ConnectorConformance


class TestJsonFileConnector(ConnectorConformance):
    @pytest.fixture
    def connector(self, tmp_path: Path) -> Iterator[JsonFileConnector]:
        (tmp_path / "data").mkdir()
        settings = JsonFileSettings(path="data", page_size=40)
        with JsonFileConnector("example", settings, tmp_path) as conn:
            yield conn
