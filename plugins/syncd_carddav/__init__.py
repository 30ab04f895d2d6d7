"""The built-in ``carddav`` connector: one CardDAV address book (RFC 6352, RFC 6578)."""

from __future__ import annotations

from syncd import hookimpl
from syncd.plugin.connector import Connector
from syncd_carddav.connector import CardDavConnector, CardDavSettings

__all__ = ["CardDavConnector", "CardDavSettings", "syncd_connectors"]


@hookimpl
def syncd_connectors() -> list[type[Connector]]:
    """Register the carddav connector."""
    return [CardDavConnector]
