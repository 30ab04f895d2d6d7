"""The ``syncd`` command line.

Every command takes ``--config``. Operator mistakes are printed as one line on stderr
(no traceback unless ``--debug``) with the exit codes of the contract: 0 ok, 1 finished
but some records failed, 2 bad usage or configuration, 3 the daemon is needed.
"""

from __future__ import annotations

import gc
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer

from syncd import __version__, reporting
from syncd.cli.bindings import bindings_app
from syncd.cli.context import ConfigOption, Context, JsonOption, ctx_of, one_side
from syncd.cli.daemon import register as register_daemon_commands
from syncd.cli.progress import run_with_progress
from syncd.cli.render import counts_text, err, print_json, table, when
from syncd.engine import PairRunner, RunResult
from syncd.engine_setup import runner_for
from syncd.errors import UserError
from syncd.plugin.context import ConnectorContext
from syncd.plugin.manager import default_registry
from syncd.redact import redacted_output
from syncd.state import Store
from syncd.state.errors import StoreError
from syncd.state.probe import probe_state

app = typer.Typer(
    name="syncd",
    help="Keep contacts and companies in step between business systems.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(bindings_app, name="bindings")
register_daemon_commands(app)


@app.callback()
def main_options(
    ctx: typer.Context,
    config: ConfigOption = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress.")] = False,
) -> None:
    """Keep contacts and companies in step between business systems."""
    ctx.obj = Context(config, debug, verbose)


def _finish(result: RunResult, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                "run_id": result.run_id,
                "pair": result.pair,
                "status": result.status,
                "counts": result.counts,
                "error": result.error,
                "seconds": round(result.seconds, 3),
                **({"items": result.items} if result.run_id is None else {}),
            }
        )
    else:
        print(result.summary())
        if result.counts.get("failed") and result.run_id:
            err.print(f"see the failed records with: syncd show {result.run_id}")
    raise typer.Exit(result.exit_code)


@app.command()
def sync(
    ctx: typer.Context,
    pair: Annotated[str, typer.Argument(help="The pair to run.")],
    full: Annotated[
        bool, typer.Option("--full", help="List everything, not just changes.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan only; write nothing.")] = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Run PAIR once now, in this process, with a progress bar on a terminal."""
    c = ctx_of(ctx)
    c.config(config).require_pairs()
    runner = runner_for(c.config(config), c.store(config))
    result = run_with_progress(
        lambda progress: _run(runner, progress, pair, full, dry_run), enabled=not as_json
    )
    if dry_run and not as_json:
        for item in result.items:
            err.print(f"would {item['action']} {item['entity']} {item['source_id']}")
    _finish(result, as_json)


def _run(runner: PairRunner, progress: Any, pair: str, full: bool, dry_run: bool) -> RunResult:
    runner.progress = progress
    return runner.run(pair, full=full, dry_run=dry_run)


@app.command("sync-record")
def sync_record(
    ctx: typer.Context,
    pair: Annotated[str, typer.Argument(help="The pair.")],
    entity: Annotated[str, typer.Argument(help="contact or company.")],
    left: Annotated[str | None, typer.Option("--left", help="The record's id on the left.")] = None,
    right: Annotated[str | None, typer.Option("--right", help="Its id on the right.")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Sync one record now, whether or not it changed."""
    side, record_id = one_side(left, right)
    c = ctx_of(ctx)
    result = runner_for(c.config(config), c.store(config)).run_record(pair, entity, side, record_id)
    _finish(result, as_json)


@app.command()
def history(
    ctx: typer.Context,
    pair: Annotated[str | None, typer.Argument(help="Only this pair.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many runs.")] = 20,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """The newest runs with their outcome and counts."""
    c = ctx_of(ctx)
    if pair:
        c.config(config).pair(pair)
    runs = reporting.history(c.store(config, readonly=True), pair, limit)
    if as_json:
        print_json(runs)
        return
    table(
        None,
        ["run", "pair", "trigger", "started", "seconds", "status", "counts"],
        (
            [
                r["id"],
                r["pair"],
                r["trigger"] + (" full" if r["full"] else ""),
                when(r["started_at"]),
                _seconds(reporting.run_seconds(r)),
                r["status"],
                counts_text(r) + (f"; {r['error']}" if r["error"] else ""),
            ]
            for r in runs
        ),
    )


def _seconds(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}"


@app.command()
def show(
    ctx: typer.Context,
    run_id: Annotated[int, typer.Argument(help="The run's id (see syncd history).")],
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """One run: its counts and every record's outcome and error."""
    run = reporting.run_detail(ctx_of(ctx).store(config, readonly=True), run_id)
    if run is None:
        raise UserError(f"no run {run_id}")
    if as_json:
        print_json(run)
        return
    print(
        f"run {run['id']} of {run['pair']} ({run['trigger']}, {run['mode']}"
        f"{', full' if run['full'] else ''}): {run['status']}, {counts_text(run)}"
    )
    print(f"started {when(run['started_at'])}, ended {when(run['ended_at'])}")
    if run["error"]:
        print(f"error: {run['error']}")
    table(
        None,
        ["entity", "action", "outcome", "from", "source id", "target id", "error / detail"],
        (
            [
                i["entity"],
                i["action"],
                i["outcome"],
                i["source_side"],
                i["source_id"],
                i["target_id"],
                i["error"] or _detail(i["detail"]),
            ]
            for i in run["items"]
        ),
    )


def _detail(detail: dict[str, Any] | None) -> str:
    if not detail:
        return ""
    return "; ".join(
        f"{k}: {', '.join(v) if isinstance(v, list) else v}" for k, v in detail.items()
    )


@app.command()
def status(ctx: typer.Context, as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """Every pair: mode, schedule, paused, running, next and last run, counts,
    bindings, a rate-limit wait; and whether a daemon is running."""
    c = ctx_of(ctx)
    report = reporting.status(c.config(config), c.store(config, readonly=True))
    if as_json:
        print_json(report)
        return
    daemon = report["daemon"]
    if daemon["alive"]:
        print(
            f"daemon: running on {daemon['node']} (pid {daemon['pid']}, "
            f"version {daemon['version']}) since {when(daemon['since'])}"
        )
    else:
        print("daemon: not running (start it with 'syncd run')")
    table(
        None,
        [
            "pair",
            "mode",
            "schedule",
            "paused",
            "running",
            "next run",
            "last run",
            "result",
            "bindings",
        ],
        (
            [
                r["pair"],
                f"{r['left']} {_arrow(r['mode'])} {r['right']}",
                r["schedule"] or "on demand",
                "yes" if r["paused"] else "no",
                "yes" if r["running"] else "no",
                _next(r),
                _last(r["last_run"]),
                r["last_run"] and f"{r['last_run']['status']}: {counts_text(r['last_run'])}",
                ", ".join(f"{n} {e}" for e, n in sorted(r["bindings"].items())) or "0",
            ]
            for r in report["pairs"]
        ),
    )


def _next(pair: reporting.PairStatus) -> str:
    """The next run, and the rate-limit wait that holds scheduled runs till then."""
    parts = [when(pair["next_run"])] if pair["next_run"] else []
    if pair["not_before"]:
        parts.append(f"not before {when(pair['not_before'])}")
    return ", ".join(parts)


def _arrow(mode: str) -> str:
    return {"export": "->", "import": "<-"}.get(mode, "<->")


def _last(run: reporting.Run | None) -> str | None:
    return f"#{run['id']} {when(run['started_at'])}" if run else None


PairArgument = Annotated[str | None, typer.Argument(help="The pair.")]
AllOption = Annotated[bool, typer.Option("--all", help="Every pair.")]


def _set_paused(
    ctx: typer.Context, pair: str | None, all_pairs: bool, config: Path | None, paused: bool
) -> None:
    c = ctx_of(ctx)
    cfg = c.config(config)
    if all_pairs == bool(pair):
        raise UserError("give a PAIR or --all")
    names = list(cfg.pairs) if all_pairs else [cfg.pair(pair or "").name]
    c.store(config).set_paused(names, paused)
    print(f"{'paused' if paused else 'resumed'}: {', '.join(names)}")


@app.command()
def pause(
    ctx: typer.Context,
    pair: PairArgument = None,
    all_pairs: AllOption = False,
    config: ConfigOption = None,
) -> None:
    """Pause a pair (persisted): the daemon starts no run of it until resumed."""
    _set_paused(ctx, pair, all_pairs, config, True)


@app.command()
def resume(
    ctx: typer.Context,
    pair: PairArgument = None,
    all_pairs: AllOption = False,
    config: ConfigOption = None,
) -> None:
    """Resume a paused pair."""
    _set_paused(ctx, pair, all_pairs, config, False)


@app.command()
def plugins(as_json: JsonOption = False) -> None:
    """Connector types and field transforms, the package each comes from, and plugins
    that failed to load."""
    registry = default_registry()
    types = [
        {"type": t.name, "package": t.package, "version": t.version, "plugin": t.plugin}
        for t in sorted(registry.connectors.values(), key=lambda t: t.name)
    ]
    transforms = [
        {
            "transform": t.transform.name,
            "description": t.transform.description,
            "package": t.package,
            "version": t.version,
        }
        for t in sorted(registry.transforms.values(), key=lambda t: t.transform.name)
    ]
    failures = [
        {"plugin": f.plugin, "package": f.package, "reason": f.reason} for f in registry.failures
    ]
    if as_json:
        print_json({"connectors": types, "transforms": transforms, "failures": failures})
        return
    table(
        None,
        ["type", "package", "version"],
        ([t["type"], t["package"], t["version"]] for t in types),
    )
    table(
        None,
        ["transform", "what it does", "package"],
        ([t["transform"], t["description"], t["package"]] for t in transforms),
    )
    for failure in failures:
        err.print(f"plugin {failure['plugin']} ({failure['package']}) failed: {failure['reason']}")


def _readonly_store(url: str) -> Store | None:
    """The state store, opened so that nothing is written, for the connectors' own
    values during ``syncd check``; None when it has no current schema yet."""
    try:
        return Store(url, readonly=True)
    except (UserError, StoreError):
        return None


@app.command()
def check(ctx: typer.Context, as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """Validate the configuration, say which state store it uses (creating or
    changing nothing) and reach every connector."""
    c = ctx_of(ctx)
    cfg = c.config(config)
    cfg.require_pairs()
    state = probe_state(cfg.state_url)
    results = []
    store = _readonly_store(cfg.state_url) if state.ok else None
    for name in cfg.connectors:
        try:
            context = ConnectorContext.create(name, store)
            cfg.connector(name).with_context(context).check()
            results.append({"connector": name, "ok": True, "error": None})
        except Exception as exc:
            results.append(
                {"connector": name, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
            )
    if store is not None:
        store.close()
    ok = state.ok and all(r["ok"] for r in results)
    shown = cfg.state_shown
    if as_json:
        print_json(
            {
                "config": str(cfg.path),
                "state": {"url": shown, "ok": state.ok, "detail": state.detail},
                "connectors": results,
                "ok": ok,
            }
        )
    else:
        print(f"{cfg.path}: configuration is valid")
        print(f"state store {shown}: {state.detail}")
        for r in results:
            print(f"connector {r['connector']}: {'ok' if r['ok'] else r['error']}")
    raise typer.Exit(0 if ok else 1)


@app.command()
def version() -> None:
    """Print syncd's version."""
    print(__version__)


def tune_gc() -> None:
    """Make the cyclic garbage collector fit a sync process.

    A run allocates millions of short-lived, acyclic objects (records, fields,
    operations): with the default thresholds the collector runs every 700
    allocations and walks everything start-up created each time it reaches the
    oldest generation, a quarter of a large run's time. What start-up built is
    frozen (never walked again) and the youngest generation is collected every
    50,000 allocations, which costs little memory.
    """
    gc.freeze()
    gc.set_threshold(50_000, 50, 50)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``syncd`` console script: one error handler for all.

    Usage errors are handled by typer (exit 2); operator mistakes raised as
    :class:`UserError` and unexpected errors become one line on stderr. Everything
    the process prints passes :func:`syncd.redact.redacted_output`."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    tune_gc()
    with redacted_output():
        _main(args, debug)


def _main(args: list[str], debug: bool) -> None:
    try:
        app(args=args, prog_name="syncd")
    except UserError as exc:
        if debug:
            traceback.print_exc()
        print(f"syncd: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except StoreError as exc:
        if debug:
            traceback.print_exc()
        print(f"syncd: {exc}", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:
        if debug:
            traceback.print_exc()
        reason = f"{type(exc).__name__}: {exc}"
        print(f"syncd: internal error: {reason} (--debug shows more)", file=sys.stderr)
        sys.exit(1)
