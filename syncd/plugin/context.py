"""The context a connector is opened with (plugin API 2).

Before the engine opens a connector for a run (and before ``syncd check`` reaches
it), it hands the connector a :class:`ConnectorContext` with
:meth:`~syncd.plugin.connector.Connector.with_context`; the connector reads it as
``self.context``. The context holds:

- ``store``: a small durable key-value store of the connector's own, kept in syncd's
  state store (rotated OAuth2 refresh tokens, a sync token the system hands out);
  :meth:`ConnectorStore.update` changes a key atomically across processes;
- ``log``: a structlog logger bound with the pair and the connector's name;
- ``clock``: a callable returning the current time, timezone-aware UTC (tests pass a
  fake one);
- ``http``: the HTTP client factory; None until syncd's HTTP kit provides it.

Plugin API 1 connectors ignore the context and keep working unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from syncd.logging import get_logger

#: The longest key a connector may store a value under.
MAX_KEY = 200

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time, timezone-aware UTC: the clock a real run uses."""
    return datetime.now(UTC)


class ConnectorState(Protocol):
    """Where connector values live: the state store
    (:class:`~syncd.state.connector_state.ConnectorStateStore`) or :class:`MemoryState`."""

    def connector_value(self, connector: str, key: str) -> str | None: ...

    def put_connector_value(self, connector: str, key: str, value: str) -> None: ...

    def delete_connector_value(self, connector: str, key: str) -> None: ...

    def update_connector_value(
        self, connector: str, key: str, change: Callable[[str | None], str | None]
    ) -> str | None: ...


class ConnectorStore:
    """One connector's durable key-value store: text values under text keys, kept
    between runs and processes. Each connector instance (``[connectors.NAME]``) has
    its own, so two instances of one type never read each other's tokens."""

    def __init__(self, state: ConnectorState, connector: str) -> None:
        self._state = state
        self.connector = connector

    def get(self, key: str) -> str | None:
        """The value stored under ``key``; None if there is none."""
        return self._state.connector_value(self.connector, _checked(key))

    def put(self, key: str, value: str) -> None:
        """Store ``value`` under ``key`` (durably, at once), replacing any value."""
        if not isinstance(value, str):
            raise TypeError(f"connector store values are text, not {type(value).__name__}")
        self._state.put_connector_value(self.connector, _checked(key), value)

    def delete(self, key: str) -> None:
        """Forget ``key``; nothing happens if it has no value."""
        self._state.delete_connector_value(self.connector, _checked(key))

    def update(self, key: str, change: Callable[[str | None], str | None]) -> str | None:
        """Replace the value under ``key`` with ``change(current value or None)``, in
        one transaction holding the key's lock: another process updating the same key
        waits, then sees this value. A None result deletes the key; if ``change``
        raises, nothing changes. Returns the new value.

        Rotate a refresh token inside ``change`` (ask the system for a new one
        there), so that two processes never both spend the same token."""
        return self._state.update_connector_value(self.connector, _checked(key), change)


def _checked(key: str) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY:
        raise ValueError(f"a connector store key is text of 1 to {MAX_KEY} characters")
    return key


class MemoryState:
    """Connector values held in memory, for tests and for a connector opened outside
    a run: nothing is kept when the process ends."""

    def __init__(self) -> None:
        self._values: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def connector_value(self, connector: str, key: str) -> str | None:
        """The value stored under ``key``; None if there is none."""
        return self._values.get((connector, key))

    def put_connector_value(self, connector: str, key: str, value: str) -> None:
        """Store ``value`` under ``key``."""
        with self._lock:
            self._values[(connector, key)] = value

    def delete_connector_value(self, connector: str, key: str) -> None:
        """Forget ``key``."""
        with self._lock:
            self._values.pop((connector, key), None)

    def update_connector_value(
        self, connector: str, key: str, change: Callable[[str | None], str | None]
    ) -> str | None:
        """Replace the value under ``key`` with ``change(value)``, under a lock."""
        with self._lock:
            new = change(self._values.get((connector, key)))
            if new is None:
                self._values.pop((connector, key), None)
            else:
                self._values[(connector, key)] = new
            return new


@dataclass(frozen=True, slots=True)
class ConnectorContext:
    """What a connector is given when it is opened (plugin API 2): see the module
    docs."""

    store: ConnectorStore
    log: structlog.stdlib.BoundLogger
    clock: Clock = utc_now
    #: The HTTP client factory: None until syncd's HTTP kit provides it.
    http: Any = None

    @classmethod
    def create(
        cls,
        connector: str,
        state: ConnectorState | None = None,
        *,
        pair: str | None = None,
        clock: Clock = utc_now,
    ) -> ConnectorContext:
        """The context of the connector instance named ``connector``, keeping its
        values in ``state`` (in memory when None: for tests), logging with the
        connector's name and, during a run, the ``pair``'s."""
        log = get_logger("syncd.connector").bind(connector=connector)
        if pair is not None:
            log = log.bind(pair=pair)
        return cls(ConnectorStore(state or MemoryState(), connector), log, clock)
