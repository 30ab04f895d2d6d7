"""syncd: keeps contacts and companies in step between business systems."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from syncd.plugin.hookspecs import hookimpl

try:
    __version__ = version("syncd")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__", "hookimpl"]
