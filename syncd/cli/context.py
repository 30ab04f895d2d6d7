"""What every CLI command shares: the options, the configuration and the state store."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import make_url

from syncd.config import Config, config_path, load_config
from syncd.errors import UserError
from syncd.logging import configure_logging
from syncd.state import Store
from syncd.state.connect import sqlite_path

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Configuration file (default: $SYNCD_CONFIG or /etc/syncd/syncd.toml).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


class Context:
    """What a command needs: the configuration and the state store, opened on demand."""

    def __init__(self, config: Path | None, debug: bool, verbose: bool) -> None:
        self.config_file = config
        self.debug = debug
        self.verbose = verbose
        self._config: Config | None = None
        self._store: Store | None = None
        self._readonly = False

    def config(self, override: Path | None = None) -> Config:
        """The validated configuration."""
        if self._config is None:
            self._config = load_config(config_path(override or self.config_file))
            level = logging.INFO if self.verbose else logging.WARNING
            configure_logging(self._config.daemon.log_format, level)
        return self._config

    def store(self, override: Path | None = None, *, readonly: bool = False) -> Store:
        """The state store named by the configuration; ``readonly`` for commands that
        only look (they then work for a user who may read the store but not write it,
        and never upgrade its schema). A missing SQLite store is created as before."""
        if self._store is None or (self._readonly and not readonly):
            if self._store is not None:
                self._store.close()
            url = self.config(override).state_url
            self._readonly = readonly and store_exists(url)
            self._store = Store(url, readonly=self._readonly)
        return self._store


def store_exists(url: str) -> bool:
    """False only for a SQLite store whose file does not exist yet."""
    path = sqlite_path(make_url(url))
    return path is None or path.exists()


def ctx_of(click_ctx: typer.Context) -> Context:
    """The command's :class:`Context`."""
    return click_ctx.ensure_object(Context)


def one_side(left: str | None, right: str | None) -> tuple[str, str]:
    """Which side an option pair names: exactly one of --left and --right."""
    if (left is None) == (right is None):
        raise UserError("give exactly one of --left ID or --right ID")
    return ("left", left) if left is not None else ("right", right or "")
