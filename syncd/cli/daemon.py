"""The commands that start or talk to the daemon: ``run`` and ``trigger``."""

from __future__ import annotations

import logging
import time
from typing import Annotated

import typer

from syncd import reporting
from syncd.cli.context import ConfigOption, JsonOption, ctx_of
from syncd.cli.render import counts_text, print_json
from syncd.config import config_path
from syncd.daemon.service import POLL_SECONDS, Daemon
from syncd.errors import DaemonNotRunning
from syncd.logging import configure_logging


def run(ctx: typer.Context, config: ConfigOption = None) -> None:
    """The daemon, in the foreground (what systemd starts): runs every scheduled
    pair on its schedule and obeys pause, resume and trigger."""
    c = ctx_of(ctx)
    cfg = c.config(config)
    cfg.require_pairs()
    configure_logging(cfg.daemon.log_format, logging.DEBUG if c.debug else logging.INFO)
    path = config_path(config or c.config_file)
    raise typer.Exit(Daemon(path, cfg).serve())


def trigger(
    ctx: typer.Context,
    pair: Annotated[str, typer.Argument(help="The pair to run.")],
    full: Annotated[bool, typer.Option("--full", help="A full reconcile.")] = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the run; exit with its exit code.")
    ] = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Ask the running daemon to run PAIR now (it starts within about a second)."""
    c = ctx_of(ctx)
    cfg, store = c.config(config), c.store(config)
    name = cfg.pair(pair).name
    if not reporting.daemons(store):
        raise DaemonNotRunning(
            f"no syncd daemon is running for {cfg.path} (no recent heartbeat); "
            f"start it with 'syncd run', or run the pair here with 'syncd sync {name}'"
        )
    since = store.request_run(name, full)
    if not wait:
        if as_json:
            print_json({"pair": name, "requested": True, "full": full})
        else:
            print(f"requested a {'full ' if full else ''}run of {name}")
        return
    while (finished := reporting.finished_run(store, name, "trigger", since)) is None:
        if not reporting.daemons(store):
            raise DaemonNotRunning(f"the daemon stopped before the run of {name} finished")
        time.sleep(POLL_SECONDS / 2)
    code = 0 if finished["status"] == "ok" else 1
    if as_json:
        print_json(reporting.run_summary(finished))
    else:
        text = f"run {finished['id']} of {name}: {finished['status']}: {counts_text(finished)}"
        print(text + (f": {finished['error']}" if finished["error"] else ""))
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add the daemon commands to the CLI."""
    app.command("run")(run)
    app.command("trigger")(trigger)
