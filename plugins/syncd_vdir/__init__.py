"""The built-in ``vdir`` connector: a folder of ``.vcf`` files, one card per file.

This is the vdir storage layout khard, vdirsyncer and other address-book tools use::

    [connectors.cards]
    type = "vdir"
    path = "~/.contacts/personal"
"""

from __future__ import annotations

from syncd import hookimpl
from syncd.plugin.connector import Connector
from syncd_vdir.connector import VdirConnector, VdirSettings

__all__ = ["VdirConnector", "VdirSettings", "syncd_connectors"]


@hookimpl
def syncd_connectors() -> list[type[Connector]]:
    """Register the vdir connector."""
    return [VdirConnector]
