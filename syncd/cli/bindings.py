"""``syncd bindings``: list, link, unlink and bulk-import bindings of a pair."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer

from syncd.cli.context import ConfigOption, ctx_of, one_side
from syncd.cli.render import print_json, table
from syncd.engine.held import held_keys
from syncd.entities import is_entity
from syncd.errors import UserError
from syncd.state import Store
from syncd.state.rows import other

bindings_app = typer.Typer(
    help="Which record on one side is which on the other.", no_args_is_help=True
)


def _open(
    ctx: typer.Context,
    config: Path | None,
    pair: str,
    entity: str | None,
    *,
    readonly: bool = False,
) -> Store:
    c = ctx_of(ctx)
    c.config(config).pair(pair)
    if entity is not None and not is_entity(entity):
        raise UserError(f"unknown entity {entity!r} (contact or company)")
    return c.store(config, readonly=readonly)


@bindings_app.command("list")
def list_bindings(
    ctx: typer.Context,
    pair: Annotated[str, typer.Argument(help="The pair.")],
    entity: Annotated[str | None, typer.Option("--entity", help="contact or company.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    config: ConfigOption = None,
) -> None:
    """Every binding of PAIR: left id, right id, and whether a side was deleted."""
    store = _open(ctx, config, pair, entity, readonly=True)
    rows = [
        {
            "entity": b.entity,
            "left_id": b.left_id,
            "right_id": b.right_id,
            "left_deleted": b.left_deleted,
            "right_deleted": b.right_deleted,
        }
        for b in store.iter_bindings(pair, entity)
    ]
    if as_json:
        print_json(rows)
        return
    table(
        None,
        ["entity", "left id", "right id", "note"],
        (
            [
                r["entity"],
                r["left_id"],
                r["right_id"],
                "deleted on left"
                if r["left_deleted"]
                else "deleted on right"
                if r["right_deleted"]
                else "",
            ]
            for r in rows
        ),
    )


@bindings_app.command("link")
def link(
    ctx: typer.Context,
    pair: Annotated[str, typer.Argument(help="The pair.")],
    entity: Annotated[str, typer.Argument(help="contact or company.")],
    left_id: Annotated[str, typer.Argument(help="The record's id on the left.")],
    right_id: Annotated[str, typer.Argument(help="The record's id on the right.")],
    config: ConfigOption = None,
) -> None:
    """Bind two existing records by hand (run `syncd sync PAIR --full` to bring them in step)."""
    store = _open(ctx, config, pair, entity)
    store.link(pair, entity, [(left_id, right_id)])
    print(f"linked {entity} {left_id} <-> {right_id}")


@bindings_app.command("unlink")
def unlink(
    ctx: typer.Context,
    pair: Annotated[str, typer.Argument(help="The pair.")],
    entity: Annotated[str, typer.Argument(help="contact or company.")],
    left: Annotated[str | None, typer.Option("--left", help="The record's id on the left.")] = None,
    right: Annotated[str | None, typer.Option("--right", help="Its id on the right.")] = None,
    config: ConfigOption = None,
) -> None:
    """Remove one binding; neither record is changed."""
    side, record_id = one_side(left, right)
    store = _open(ctx, config, pair, entity)
    removed = store.unlink(pair, entity, side, record_id)
    if removed is None:
        raise UserError(f"{entity} {side} id {record_id!r} is not bound in pair {pair}")
    print(f"unlinked {entity} {removed.left_id} <-> {removed.right_id}")


@bindings_app.command("release")
def release(
    ctx: typer.Context,
    pair: Annotated[str, typer.Argument(help="The pair.")],
    entity: Annotated[str, typer.Argument(help="contact or company.")],
    left: Annotated[str | None, typer.Option("--left", help="The record's id on the left.")] = None,
    right: Annotated[str | None, typer.Option("--right", help="Its id on the right.")] = None,
    config: ConfigOption = None,
) -> None:
    """Let the next run create a record held after an interrupted create, once you
    have made sure the other side has no record made for it (else link the two)."""
    side, record_id = one_side(left, right)
    store = _open(ctx, config, pair, entity)
    keys = held_keys(store.open_intents(pair, entity), other(side), record_id)
    if not keys:
        raise UserError(f"{entity} {side} id {record_id!r} is not held in pair {pair}")
    store.drop_intents(keys)
    print(f"released {entity} {side} id {record_id}: the next run creates it")


@bindings_app.command("import")
def import_bindings(
    ctx: typer.Context,
    pair: Annotated[str, typer.Argument(help="The pair.")],
    entity: Annotated[str, typer.Argument(help="contact or company.")],
    file: Annotated[Path, typer.Argument(help="A CSV file with columns left_id,right_id.")],
    config: ConfigOption = None,
) -> None:
    """Bind many existing records from a CSV file (all or nothing)."""
    store = _open(ctx, config, pair, entity)
    pairs = read_id_pairs(file)
    count = store.link(pair, entity, pairs)
    print(f"imported {count} {entity} bindings")


def read_id_pairs(file: Path) -> list[tuple[str, str]]:
    """Read ``left_id,right_id`` rows; errors name the file and the line."""
    try:
        handle = file.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise UserError(f"{file}: cannot read: {exc.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"left_id", "right_id"} <= set(reader.fieldnames):
            raise UserError(f"{file}: the header must name the columns left_id and right_id")
        pairs = []
        for row in reader:
            left, right = (row.get("left_id") or "").strip(), (row.get("right_id") or "").strip()
            if not left or not right:
                raise UserError(
                    f"{file}: line {reader.line_num}: left_id and right_id are both needed"
                )
            pairs.append((left, right))
    return pairs
