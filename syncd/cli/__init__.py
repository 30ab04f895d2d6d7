"""The ``syncd`` command line: the typer app (:mod:`~syncd.cli.app`), one module per
command group, and what the commands share (options, output, progress)."""

from syncd.cli.app import app, main

__all__ = ["app", "main"]
