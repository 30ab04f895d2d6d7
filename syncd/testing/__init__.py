"""A kit for connector authors: an in-memory connector and the conformance suite.

- :class:`MemoryConnector` / :class:`MemorySystem` (also ``type = "memory"`` in a
  configuration): a system that lives in the process, for tests and experiments; edit
  "the outside world" with :meth:`MemorySystem.put`, ``edit`` and ``remove``.
- :class:`ConnectorConformance`: subclass it in your tests and provide a
  ``connector`` fixture; see ``docs/plugins.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from syncd.testing.memory import (
    MemoryConnector,
    MemorySettings,
    MemorySystem,
    memory_system,
    reset_memory_systems,
)

__all__ = [
    "ConnectorConformance",
    "MemoryConnector",
    "MemorySettings",
    "MemorySystem",
    "memory_system",
    "reset_memory_systems",
]

if TYPE_CHECKING:
    from syncd.testing.conformance import ConnectorConformance


def __getattr__(name: str) -> Any:
    # The conformance suite needs pytest, which a production install does not have:
    # it is imported when asked for, so the memory connector works without it.
    if name == "ConnectorConformance":
        from syncd.testing.conformance import ConnectorConformance

        return ConnectorConformance
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
