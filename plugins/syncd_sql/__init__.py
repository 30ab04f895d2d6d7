"""The built-in ``sql`` connector: contacts and companies in SQL tables.

Registered through the ``syncd`` entry-point group like any third-party plugin.
"""

from __future__ import annotations

from syncd import hookimpl
from syncd.plugin.connector import Connector

from .connector import SqlConnector
from .settings import SqlEntitySettings, SqlSettings

__all__ = ["SqlConnector", "SqlEntitySettings", "SqlSettings", "syncd_connectors"]


@hookimpl
def syncd_connectors() -> list[type[Connector]]:
    """Register the sql connector."""
    return [SqlConnector]
