"""Output for the CLI: rich tables on a terminal, one JSON document with ``--json``."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def print_json(document: Any) -> None:
    """Print one JSON document on stdout."""
    print(json.dumps(document, default=_default, ensure_ascii=False, indent=2))


def when(value: datetime | None) -> str:
    """A timestamp as a short readable text."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print a table on stdout."""
    grid = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
    for column in columns:
        grid.add_column(column)
    for row in rows:
        grid.add_row(*("-" if cell is None else str(cell) for cell in row))
    out.print(grid)


def counts_text(run: Mapping[str, Any]) -> str:
    """A run's non-zero counts, e.g. ``3 created, 1 failed``."""
    keys = ("created", "updated", "deleted", "bound", "skipped", "failed", "conflicts")
    parts = [f"{run[k]} {k}" for k in keys if run.get(k)]
    return ", ".join(parts) or "no changes"
