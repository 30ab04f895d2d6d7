"""The built-in ``csv`` connector: contacts and companies kept in CSV files.

Registered through the ``syncd`` entry-point group like any third-party plugin::

    [connectors.books]
    type = "csv"
    path = "books"
      [connectors.books.entities.contact]
      file = "contacts.csv"
      id = "Id"
      [connectors.books.entities.contact.fields]
      email = "Email"
"""

from __future__ import annotations

from syncd import hookimpl
from syncd.plugin.connector import Connector
from syncd_csv.connector import CsvConnector
from syncd_csv.settings import CsvEntitySettings, CsvSettings

__all__ = ["CsvConnector", "CsvEntitySettings", "CsvSettings", "syncd_connectors"]


@hookimpl
def syncd_connectors() -> list[type[Connector]]:
    """Register the csv connector."""
    return [CsvConnector]
