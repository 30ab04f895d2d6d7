"""A kit for connector authors: an in-memory connector and the conformance suite.

- :class:`MemoryConnector` / :class:`MemorySystem` (also ``type = "memory"`` in a
  configuration): a system that lives in the process, for tests and experiments; edit
  "the outside world" with :meth:`MemorySystem.put`, ``edit`` and ``remove``.
- :class:`ConnectorConformance`: subclass it in your tests and provide a
  ``connector`` fixture; see ``docs/plugins.md``.
"""

from __future__ import annotations

from syncd.testing.conformance import ConnectorConformance
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
