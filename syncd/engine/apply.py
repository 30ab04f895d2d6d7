"""Applying planned operations: write through the target connector in batches, then
record bindings, snapshots, item outcomes and cursors in one state-store transaction.

Creates are preceded by committed *intents*, so a process killed between the create
and the commit leaves a trace the next run resolves instead of creating again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from syncd.engine.intents import pack
from syncd.engine.plan import Flow, Op
from syncd.engine.ports import (
    BIND,
    CREATE,
    DELETE,
    FAILED,
    HOLD,
    REFUSE,
    SKIP,
    SNAPSHOT,
    SUSPECT,
    UNREADABLE,
    UPDATE,
    WAIT,
    Side,
)
from syncd.engine.records import dump, fingerprint, new_key, patched, snapshot_patched
from syncd.engine.writeahead import expected_snapshots
from syncd.engine.writeahead import pack as pack_updates
from syncd.kit.jsontext import encoder
from syncd.plugin.connector import (
    Connector,
    Create,
    Delete,
    ErrorKind,
    RecordError,
    Update,
    WriteResult,
)
from syncd.state.rows import BatchCommit, BindingRow

ItemSink = Callable[[dict[str, Any]], None]
#: A run item's detail as JSON.
_detail = encoder()


class Applier:
    """Carries out one batch of operations for a :class:`Flow` and records them."""

    def __init__(
        self,
        flow: Flow,
        run_id: int,
        counts: Counter[str],
        *,
        dry_run: bool = False,
        clear_retries: bool = True,
        on_item: ItemSink | None = None,
        intent_fields: Sequence[str] | None = None,
    ) -> None:
        """``intent_fields``: the fields whose sent values a create's intent keeps, to
        find the record again (the match fields); None for a target that takes the
        create's key as the new record's id."""
        self.flow = flow
        self.run_id = run_id
        self.counts = counts
        self.dry_run = dry_run
        self.clear_retries = clear_retries
        self.on_item = on_item
        self.intent_fields = intent_fields

    def apply(
        self,
        ops: Sequence[Op],
        cursors: dict[tuple[str, str], str] | None = None,
        done_intents: Sequence[str] = (),
    ) -> None:
        """Write ``ops`` to the target, flush it, and commit the outcome with
        ``cursors`` (which must only cover changes planned into ``ops``)."""
        commit = BatchCommit(cursors=dict(cursors or {}), done_intents=list(done_intents))
        # planned creates, then updates whose target turned out gone (added by _updates;
        # collected before the updates so such an op is not created twice)
        creates: list[Op] = [op for op in ops if op.kind is CREATE]
        self._deletes(commit, [op for op in ops if op.kind is DELETE])
        if self.flow.two_way and not self.dry_run:
            self._write_ahead(commit, ops)
        wrote_back = self._back_updates(
            commit,
            [op for op in ops if op.back and (op.kind is UPDATE or op.kind is BIND)],
        )
        self._updates(
            commit,
            [op for op in ops if op.send and (op.kind is UPDATE or op.kind is BIND)],
            creates,
        )
        self._creates(commit, creates)
        for op in ops:
            self._settle(commit, op)
        if self.dry_run:
            return
        self.flow.target.flush()
        if wrote_back:
            self.flow.source.flush()
        self.flow.store.commit(self.flow.pair, self.run_id, commit)

    # -- writes -------------------------------------------------------------------------

    def _write_ahead(self, commit: BatchCommit, ops: Sequence[Op]) -> None:
        """Two-way: commit what the batch's updates of bound records are about to
        write and the snapshots it will record, so that a crash before the batch's
        commit does not make them look like edits at the next run (see
        :mod:`syncd.engine.writeahead`)."""
        updates = [
            op
            for op in ops
            if (op.kind is UPDATE or op.kind is SNAPSHOT) and op.binding is not None
        ]
        if not updates:
            return
        flow = self.flow
        for op in updates:
            expected_snapshots(flow, op)
        row = pack_updates(flow, updates)
        flow.store.add_intents(flow.pair, [row])
        commit.done_intents.append(row["key"])

    def _call(
        self, method: str, ops: Sequence[Op], items: list[Any], on: Connector | None = None
    ) -> list[WriteResult]:
        """Send ``items`` to the target (or ``on``) in the connector's batch size."""
        if self.dry_run:
            return [WriteResult(id=op.target_id or "(new)") for op in ops]
        connector = on or self.flow.target
        size = max(1, connector.batch_size)
        write = getattr(connector, method)
        results: list[WriteResult] = []
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            got = write(ops[0].entity, chunk)
            if len(got) != len(chunk):
                raise RuntimeError(
                    f"connector {connector.name!r} returned {len(got)} results "
                    f"for {len(chunk)} {method}s"
                )
            results.extend(got)
        return results

    def _deletes(self, commit: BatchCommit, ops: list[Op]) -> None:
        if not ops:
            return
        side = self.flow.target_side
        items = [
            Delete(op.target_id or "", op.binding.get("version", side)) for op in ops if op.binding
        ]
        for op, result in zip(ops, self._call("delete", ops, items), strict=True):
            if result.ok and op.binding is not None:
                commit.dropped_bindings.append(op.binding.id or 0)
                self._item(commit, op, "delete", "ok")
                self.counts["deleted"] += 1
            else:
                self._fail(commit, op, "delete", result.error)

    def _back_updates(self, commit: BatchCommit, ops: list[Op]) -> bool:
        """Two-way: write what the source lacks back onto it, read at the version the
        merge saw. A record whose write-back fails is not written forward either; it
        is retried as a whole on a later run."""
        if not ops:
            return False
        items = [Update(op.source_id, op.back, op.source_version) for op in ops]
        for op, result in zip(ops, self._call("update", ops, items, self.flow.source), strict=True):
            if result.ok:
                op.source_fields = patched(op.source_fields or {}, op.back)
                op.source_serial, op.source_hash = op.source_snapshot or (None, None)
                op.source_version = result.version or op.source_version
                self._item(commit, op, "update", "ok", {"fields": sorted(op.back)}, reverse=True)
                self.counts["updated"] += 1
            else:
                self._fail(commit, op, "update", result.error, reverse=True)
        return True

    def _updates(self, commit: BatchCommit, ops: list[Op], creates: list[Op]) -> None:
        if not ops:
            return
        # two-way updates are optimistic: written at the version the merge read
        versioned = self.flow.two_way
        items = [
            Update(op.target_id or "", op.send, op.target_version if versioned else None)
            for op in ops
        ]
        for op, result in zip(ops, self._call("update", ops, items), strict=True):
            if result.ok:
                op.target_version = result.version or op.target_version
                if op.kind is UPDATE:
                    self._item(commit, op, "update", "ok", {"fields": sorted(op.send)})
                    self.counts["updated"] += 1
                    self._bind_update(commit, op)
                continue
            error = result.error
            if error and error.kind == ErrorKind.NOT_FOUND:
                self._target_gone(commit, op, creates)
            else:
                op.kind = FAILED
                self._fail(commit, op, "update", error)

    def _target_gone(self, commit: BatchCommit, op: Op, creates: list[Op]) -> None:
        flow = self.flow
        if (flow.recreate_deleted or op.kind is BIND) and flow.may_create:
            op.kind = CREATE
            op.target_snapshot = None
            op.send = {k: v for k, v in (op.source_fields or {}).items() if v is not None}
            op.key = op.key or new_key()
            creates.append(op)
            return
        op.kind = SKIP
        op.reason = f"deleted on {flow.target_side} (recreate_deleted = false)"
        if op.binding is not None:
            op.binding.set("deleted", flow.target_side, True)

    def _creates(self, commit: BatchCommit, ops: list[Op]) -> None:
        if not ops:
            return
        flow = self.flow
        for op in ops:
            op.key = op.key or new_key()
        if not self.dry_run:
            intent = self._create_intent(ops)
            flow.store.add_intents(flow.pair, [intent])
            commit.done_intents.append(intent["key"])
        items = [Create(op.key or "", op.send) for op in ops]
        duplicates: list[tuple[Op, RecordError]] = []
        for op, result in zip(ops, self._call("create", ops, items), strict=True):
            error = result.error
            if result.ok and result.id:
                op.target_id = result.id
                op.target_version = result.version
                if op.binding is None:
                    self._bind_fresh(commit, op, *self._sent_snapshot(op))
                else:
                    self._bind_create(commit, op)
                self._item(commit, op, "create", "ok")
                self.counts["created"] += 1
            elif error and error.kind == ErrorKind.DUPLICATE and error.existing_id:
                op.target_id = error.existing_id
                duplicates.append((op, error))
            else:
                op.kind = FAILED
                self._fail(commit, op, "create", error)
        self._duplicates(commit, duplicates)

    def _create_intent(self, ops: list[Op]) -> dict[str, Any]:
        """The intent row of a batch of creates (see :mod:`syncd.engine.intents`). Where
        the target marks how far its records go, the mark is taken now, before any
        create is sent, with what recognises each create's record after it; else the
        sent match values, to find the records by."""
        flow, entity = self.flow, ops[0].entity
        mark = None if flow.target.client_ids else flow.target.create_mark(entity)
        hashes = [op.source_hash or fingerprint(self._source_serial(op)) for op in ops]
        if mark is not None:
            names: dict[tuple[str, ...], int] = {}
            pairs = zip(ops, hashes, strict=True)
            creates: list[tuple[str, str, str, dict[str, Any] | None]] = [
                (op.key or "", op.source_id, digest, None) for op, digest in pairs
            ]
            sent = [
                (self._sent_snapshot(op)[1], names.setdefault(tuple(op.send), len(names)))
                for op in ops
            ]
            return pack(entity, flow.target_side, creates, mark, sent, list(names))
        match = self.intent_fields
        creates = [
            (
                op.key or "",
                op.source_id,
                digest,
                {f: op.send[f] for f in match if op.send.get(f) is not None} if match else None,
            )
            for op, digest in zip(ops, hashes, strict=True)
        ]
        return pack(entity, flow.target_side, creates)

    def _duplicates(self, commit: BatchCommit, found: list[tuple[Op, RecordError]]) -> None:
        """Bind creates refused as duplicates to the record that already exists and,
        with ``update_existing``, bring its fields in line (as for a match). A record
        already bound to another one is not bound twice: that create fails."""
        if not found:
            return
        flow = self.flow
        side = flow.target_side
        ids = [op.target_id or "" for op, _ in found]
        taken = set(flow.store.bindings_for(flow.pair, found[0][0].entity, side, ids))
        taken.update(b.id_on(side) for b in commit.new_bindings + commit.changed_bindings)
        binds: list[Op] = []
        for op, error in found:
            own = op.binding is not None and op.binding.id_on(side) == op.target_id
            if op.target_id in taken and not own:
                message = f"{error.message} ({side} {op.target_id} is bound to another record)"
                self._fail(commit, op, "create", RecordError(ErrorKind.DUPLICATE, message))
                continue
            taken.add(op.target_id or "")
            op.kind = BIND
            op.target_fields = {}
            op.detail = {"note": f"already existed: {error.message}"}
            if not flow.update_existing:
                op.send = {}
            binds.append(op)
        gone: list[Op] = []
        self._updates(commit, [op for op in binds if op.send], gone)
        for op in gone:
            message = f"duplicate of {op.entity} {op.target_id}, which does not exist"
            self._fail(commit, op, "create", RecordError(ErrorKind.NOT_FOUND, message, True))

    # -- bookkeeping --------------------------------------------------------------------

    def _settle(self, commit: BatchCommit, op: Op) -> None:
        """Record what the writes above did not: binds, snapshots, refusals, skips,
        and the conflicts a two-way merge settled."""
        if op.conflicts and op.kind is not FAILED:
            self._conflicts(commit, op)
        if op.kind is BIND:
            self._bind_new(commit, op)
            self._item(commit, op, "bind", "ok", {"fields": sorted(op.send)} if op.send else None)
            self.counts["bound"] += 1
        elif (op.kind is SNAPSHOT or op.kind is UPDATE) and not op.send and op.binding is not None:
            self._snapshot_source(op.binding, op)
            commit.changed_bindings.append(op.binding)
            self._cleared(commit, op)
        elif op.kind is REFUSE:
            self._fail(commit, op, "refuse", RecordError(ErrorKind.INVALID, op.reason or ""))
        elif op.kind is HOLD:
            # retried each run, so each run reports it, until a person settles it
            error = RecordError(ErrorKind.DUPLICATE, op.reason or "", retryable=True)
            self._fail(commit, op, "create", error)
        elif op.kind is WAIT:
            self.counts["skipped"] += 1
        elif op.kind is UNREADABLE:
            self._item(commit, op, "read", "failed", error=f"{ErrorKind.INVALID}: {op.reason}")
            self.counts["failed"] += 1
        elif op.kind is SUSPECT:
            self._item(commit, op, "read", "warning", {"warning": op.reason})
        elif op.kind is SKIP:
            if op.binding is not None:
                if op.source_fields is not None:
                    self._snapshot_source(op.binding, op)
                commit.changed_bindings.append(op.binding)
            self._item(commit, op, "skip", "skipped")
            self.counts["skipped"] += 1
            self._cleared(commit, op)

    def _conflicts(self, commit: BatchCommit, op: Op) -> None:
        for conflict in op.conflicts:
            self._item(commit, op, "conflict", "resolved", conflict.describe())
        self.counts["conflicts"] += len(op.conflicts)

    @staticmethod
    def _sent_serial(op: Op) -> str:
        """A create's fields as sent, serialised once for its intent and snapshot."""
        if op.send_serial is None:
            op.send_serial = dump(op.send)
        return op.send_serial

    @staticmethod
    def _source_serial(op: Op) -> str:
        if op.source_serial is None:
            op.source_serial = dump(op.source_fields or {})
        return op.source_serial

    def _snapshot_source(self, binding: BindingRow, op: Op) -> None:
        side = self.flow.source_side
        data = self._source_serial(op)
        binding.snapshot(side, data, op.source_hash or fingerprint(data), op.source_version)

    def _snapshot_target(
        self, binding: BindingRow, fields: dict[str, Any], version: str | None
    ) -> None:
        """Record the target's snapshot."""
        side = self.flow.target_side
        data = dump(fields)
        binding.snapshot(side, data, fingerprint(data), version)

    def _bind_update(self, commit: BatchCommit, op: Op) -> None:
        binding = op.binding
        if binding is None:
            return
        self._snapshot_source(binding, op)
        if op.target_snapshot is not None:
            data, digest = op.target_snapshot
            binding.snapshot(self.flow.target_side, data, digest, op.target_version)
        else:
            merged = snapshot_patched(binding.data_on(self.flow.target_side), op.send)
            self._snapshot_target(binding, merged, op.target_version)
        commit.changed_bindings.append(binding)
        self._cleared(commit, op)

    def _bind_create(self, commit: BatchCommit, op: Op) -> None:
        """Bind a bound record's re-created counterpart: it holds exactly what was sent."""
        binding = op.binding
        assert binding is not None
        binding.set("id", self.flow.target_side, op.target_id)
        binding.set("data", self.flow.target_side, None)
        self._bind_update(commit, op)

    def _sent_snapshot(self, op: Op) -> tuple[str, str]:
        """A create's fields as sent, serialised, and their hash: the source's own when
        it sent them as they are (the common create), else serialised once."""
        if op.send_serial is None and op.send == op.source_fields:
            serial = self._source_serial(op)
            return serial, op.source_hash or fingerprint(serial)
        serial = self._sent_serial(op)
        if op.send_hash is None:
            op.send_hash = fingerprint(serial)
        return serial, op.send_hash

    def _bind_new(self, commit: BatchCommit, op: Op) -> None:
        """Bind ``op``'s source record to the target record it matched (or an
        interrupted create made), whose fields are now its own with what was sent."""
        target_fields = patched(op.target_fields or {}, op.send)
        if op.binding is None:
            serial = dump(target_fields)
            self._bind_fresh(commit, op, serial, fingerprint(serial))
            return
        # a bound record whose target was deleted, bound to its re-created record
        binding = op.binding
        binding.set("id", self.flow.target_side, op.target_id or "")
        commit.changed_bindings.append(binding)
        self._snapshot_source(binding, op)
        self._snapshot_target(binding, target_fields, op.target_version)
        self._cleared(commit, op)

    def _bind_fresh(self, commit: BatchCommit, op: Op, target_data: str, target_hash: str) -> None:
        """A new binding, both snapshots given (built whole: this runs for every
        record a first run creates)."""
        source_data = self._source_serial(op)
        source_hash = op.source_hash or fingerprint(source_data)
        source = (op.source_id, op.source_version, source_data, source_hash)
        target = (op.target_id or "", op.target_version, target_data, target_hash)
        left, right = (source, target) if self.flow.source_side == Side.LEFT else (target, source)
        # positional: id, entity, ids, hashes, data, versions (left, right each)
        commit.new_bindings.append(
            BindingRow(
                None,
                op.entity,
                left[0],
                right[0],
                left[3],
                right[3],
                left[2],
                right[2],
                left[1],
                right[1],
            )
        )
        self._cleared(commit, op)

    def _cleared(self, commit: BatchCommit, op: Op) -> None:
        if self.clear_retries:
            commit.clear_retry(op.entity, self.flow.source_side, op.source_id)

    def _fail(
        self,
        commit: BatchCommit,
        op: Op,
        action: str,
        error: RecordError | None,
        *,
        reverse: bool = False,
    ) -> None:
        error = error or RecordError(ErrorKind.TRANSIENT, "the connector gave no reason", True)
        op.kind = FAILED
        message = f"{error.kind}: {error.message}"
        self._item(commit, op, action, "failed", error=message, reverse=reverse)
        self.counts["failed"] += 1
        commit.retries.append(
            {
                "entity": op.entity,
                "side": self.flow.source_side,
                "record_id": op.source_id,
                "permanent": not error.retryable,
                "hash": op.source_hash,
                "attempts": 1,
                "error": message,
            }
        )

    def _item(
        self,
        commit: BatchCommit,
        op: Op,
        action: str,
        outcome: str,
        detail: dict[str, Any] | None = None,
        error: str | None = None,
        *,
        reverse: bool = False,
    ) -> None:
        """Record a run item; ``reverse`` for a two-way write-back onto the source."""
        merged = {**op.detail, **detail} if op.detail and detail else op.detail or detail
        if op.reason and outcome == "skipped":
            merged = {**(merged or {}), "reason": op.reason}
        flow = self.flow
        side = flow.target_side if reverse else flow.source_side
        source_id = op.target_id if reverse else op.source_id
        target_id = op.source_id if reverse else op.target_id
        if not merged and error is None and self.on_item is None:
            # most items of a large run: kept as a tuple until the commit packs them
            commit.items.append((op.entity, action, outcome, side, source_id, target_id))
            return
        item = {
            "entity": op.entity,
            "action": action,
            "outcome": outcome,
            "source_side": side,
            "source_id": source_id,
            "target_id": target_id,
            "error": error,
            "detail": _detail(merged) if merged else None,
        }
        commit.items.append(item)
        if self.on_item is not None:
            self.on_item(item)
