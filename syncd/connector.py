"""The connector contract under its plugin API 1 name: plugins written for it import
from here and keep working. New code imports :mod:`syncd.plugin.connector`."""

from syncd.plugin.connector import (
    AuthError,
    ConfigurationError,
    Connector,
    ConnectorError,
    ConnectorSettings,
    Create,
    CursorExpiredError,
    Delete,
    ErrorKind,
    ListingProblem,
    Page,
    RateLimitedError,
    Record,
    RecordError,
    UnavailableError,
    Update,
    WriteResult,
)

__all__ = [
    "AuthError",
    "ConfigurationError",
    "Connector",
    "ConnectorError",
    "ConnectorSettings",
    "Create",
    "CursorExpiredError",
    "Delete",
    "ErrorKind",
    "ListingProblem",
    "Page",
    "RateLimitedError",
    "Record",
    "RecordError",
    "UnavailableError",
    "Update",
    "WriteResult",
]
