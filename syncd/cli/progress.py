"""A progress display for runs started from a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from syncd.cli.render import err

T = TypeVar("T")
ProgressCallback = Callable[[str, int], None]


def run_with_progress(body: Callable[[ProgressCallback | None], T], *, enabled: bool) -> T:
    """Call ``body`` with a progress callback that shows records read per entity on
    stderr, when stderr is a terminal; otherwise with ``None``."""
    if not (enabled and sys.stderr.isatty()):
        return body(None)
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed:,} records read"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def advance(entity: str, count: int) -> None:
            if entity not in tasks:
                tasks[entity] = bar.add_task(entity, total=None)
            bar.advance(tasks[entity], count)

        return body(advance)
