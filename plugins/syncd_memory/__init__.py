"""The built-in ``memory`` connector plugin: registers :mod:`syncd.testing`'s
in-memory connector through the ``syncd`` entry-point group, like any plugin."""

from __future__ import annotations

from syncd import hookimpl
from syncd.plugin.connector import Connector
from syncd.testing.memory import (
    MemoryConnector,
    MemorySettings,
    MemorySystem,
    memory_system,
    reset_memory_systems,
)

__all__ = [
    "MemoryConnector",
    "MemorySettings",
    "MemorySystem",
    "memory_system",
    "reset_memory_systems",
    "syncd_connectors",
]


@hookimpl
def syncd_connectors() -> list[type[Connector]]:
    """Register the memory connector."""
    return [MemoryConnector]
