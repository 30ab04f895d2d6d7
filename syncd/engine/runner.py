"""Running a pair: resolve interrupted creates, retry failed records, stream changes
page by page through the planner and the applier, infer deletions from complete
listings, and record the run with its counts."""

from __future__ import annotations

import json
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from syncd.engine.apply import Applier
from syncd.engine.held import held_row
from syncd.engine.intents import unpack
from syncd.engine.merge import ConflictRule
from syncd.engine.plan import Flow, Op, Planner
from syncd.engine.ports import (
    CREATE,
    DELETE,
    SIDES,
    SKIP,
    OpenConnector,
    PairLookup,
    PairRules,
    Side,
    SyncState,
)
from syncd.engine.references import ReferenceTranslator
from syncd.engine.resolve import InterruptedCreates, match_fields
from syncd.engine.rules import EntityRules, entity_rules
from syncd.engine.screen import ListingScreen
from syncd.engine.writeahead import InterruptedUpdates, is_updates
from syncd.entities import Entity
from syncd.errors import UserError
from syncd.logging import get_logger
from syncd.plugin.connector import (
    Connector,
    ConnectorError,
    CursorExpiredError,
    Page,
    RateLimitedError,
    Record,
)
from syncd.state.errors import StoreError
from syncd.state.rows import COUNTS, BatchCommit, now

Progress = Callable[[str, int], None]
StopCheck = Callable[[], str | None]
log = get_logger("syncd.engine")

#: Why a dry run creates nothing for a record with an open intent.
DRY_RUN_HOLD = "an earlier run was interrupted while creating this record; the next run settles it"

#: Records planned before the batch is applied even when few of them need writes,
#: so cursors advance steadily through long runs of unchanged records.
MAX_PENDING_RECORDS = 5000


class StopRequested(Exception):
    """Raised between batches when the runner's stop check asks the run to end early."""


@dataclass
class RunResult:
    """What a run did: its id, status, counts and (for dry runs) every item."""

    run_id: int | None
    pair: str
    status: str
    counts: dict[str, int]
    error: str | None = None
    seconds: float = 0.0
    items: list[dict[str, Any]] = field(default_factory=list)
    #: A rate-limited system's wait: no scheduled run of the pair starts before it.
    not_before: datetime | None = None

    @property
    def exit_code(self) -> int:
        """0 when every record went through, 1 otherwise (the CLI's contract)."""
        return 0 if self.status == "ok" else 1

    def summary(self) -> str:
        """One line: the counts, or the reason the run failed."""
        parts = ", ".join(f"{self.counts.get(k, 0)} {k}" for k in COUNTS)
        name = f"run {self.run_id}" if self.run_id else "dry run"
        text = f"{name} of {self.pair}: {self.status}: {parts} in {self.seconds:.1f}s"
        if self.error:
            text += f": {self.error}"
        return text


class PairRunner:
    """Runs pairs against one state store.

    The runner knows pairs only through ``pairs`` (a pair's rules by its name) and
    opens their connectors through ``open_connector``; :func:`syncd.engine_setup.runner_for`
    builds one from a configuration."""

    def __init__(
        self,
        pairs: PairLookup,
        open_connector: OpenConnector,
        store: SyncState,
        progress: Progress | None = None,
        should_stop: StopCheck | None = None,
    ) -> None:
        """``should_stop`` is asked after every committed batch; a reason (such as
        "the pair was paused") ends the run there with status ``stopped``."""
        self.pairs = pairs
        self.open_connector = open_connector
        self.store = store
        self.progress = progress
        self.should_stop = should_stop

    # -- public -------------------------------------------------------------------------

    def run(
        self, pair_name: str, *, trigger: str = "cli", full: bool = False, dry_run: bool = False
    ) -> RunResult:
        """Run a pair once: every entity, each source side, incremental unless ``full``."""
        pair = self._pair(pair_name)
        return self._execute(pair, trigger, full, dry_run, lambda run: self._sync_all(run, full))

    def run_record(self, pair_name: str, entity: str, side: str, record_id: str) -> RunResult:
        """Sync one record now, whether or not it changed."""
        pair = self._pair(pair_name)
        if entity not in pair.entities:
            raise UserError(f"pair {pair.name} does not sync {entity} records")
        if side not in pair.sources:
            raise UserError(
                f"pair {pair.name} is {pair.mode}: {side} records are not read; "
                f"give --{pair.sources[0]} instead"
            )

        def one(run: _Run) -> None:
            flow = run.flows[Side(side)]
            run.settle_updates(entity)
            entity_run = run.entity(flow, entity)
            entity_run.resolve_intents()
            found = flow.source.get(entity, [record_id])
            if record_id in found:
                entity_run.process(list(found.values()), [], force=True)
            else:
                entity_run.process([], [record_id])

        return self._execute(pair, "record", False, False, one)

    # -- internals ----------------------------------------------------------------------

    def _pair(self, name: str) -> PairRules:
        return self.pairs(name)

    def _execute(
        self,
        pair: PairRules,
        trigger: str,
        full: bool,
        dry_run: bool,
        body: Callable[[_Run], None],
    ) -> RunResult:
        started = time.monotonic()
        run_id = None
        if not dry_run:
            run_id = self.store.start_run(pair.name, trigger, pair.mode, full)
        bound = log.bind(pair=pair.name, run_id=run_id, trigger=trigger, full=full)
        bound.info("run.start")
        counts: Counter[str] = Counter()
        result = RunResult(run_id, pair.name, "ok", {})
        opened: list[Connector] = []
        try:
            with ExitStack() as stack:
                left = stack.enter_context(self.open_connector(pair.left, pair.name))
                right = stack.enter_context(self.open_connector(pair.right, pair.name))
                opened += (left, right)
                run = _Run(self, pair, run_id or 0, left, right, counts, dry_run, result.items)
                body(run)
            result.status = "partial" if counts["failed"] else "ok"
        except StopRequested as exc:
            result.status = "stopped"
            result.error = f"stopped early: {exc}"
        except RateLimitedError as exc:
            self._rate_limited(result, exc, _raised_by(exc, opened), dry_run, bound)
        except ConnectorError as exc:
            result.status = "failed"
            result.error = f"{type(exc).__name__}: {exc}{_retry_note(exc)}"
        except StoreError as exc:
            result.status = "failed"
            result.error = str(exc)
        except Exception as exc:
            result.status = "failed"
            result.error = f"internal error: {type(exc).__name__}: {exc}"
            self._finish(result, counts, started, bound)
            raise
        self._finish(result, counts, started, bound)
        return result

    def _rate_limited(
        self,
        result: RunResult,
        exc: RateLimitedError,
        connector: Connector | None,
        dry_run: bool,
        bound: Any,
    ) -> None:
        """End a run a system rate-limited: what was committed stays, no record
        failed, and with the system's ``retry_after`` the pair waits that long before
        its next scheduled run (rule 36 in docs/rules.md)."""
        name = connector.name if connector is not None else "a connector"
        result.status = "partial"
        if exc.retry_after is None:
            result.error = f"rate limited by {name}; resuming at the next scheduled run"
        else:
            at = now() + timedelta(seconds=max(0.0, exc.retry_after))
            result.not_before = at
            result.error = f"rate limited by {name}; resuming after {_clock(at)}"
            if not dry_run:
                try:
                    self.store.set_not_before(result.pair, at)
                except StoreError as store_exc:
                    bound.error("run.wait_unrecorded", error=str(store_exc))
        bound.warning(
            "run.rate_limited",
            connector=name,
            retry_after=exc.retry_after,
            not_before=result.not_before.isoformat() if result.not_before else None,
        )

    def _finish(self, result: RunResult, counts: Counter[str], started: float, bound: Any) -> None:
        result.counts = {k: counts.get(k, 0) for k in COUNTS}
        result.seconds = time.monotonic() - started
        if result.run_id is not None:
            try:
                self.store.finish_run(result.run_id, result.status, result.counts, result.error)
            except StoreError as exc:
                # the next run of the pair marks this one interrupted
                bound.error("run.unrecorded", status=result.status, error=str(exc))
                result.status = "failed"
                result.error = (
                    f"{result.error + '; ' if result.error else ''}the run could not be"
                    f" recorded ({exc}): the next run marks it interrupted"
                )
        event = bound.error if result.status == "failed" else bound.info
        event(
            "run.finish",
            status=result.status,
            seconds=round(result.seconds, 3),
            error=result.error,
            **result.counts,
        )

    def _sync_all(self, run: _Run, full: bool) -> None:
        for entity in run.pair.entities:
            run.settle_updates(entity)
            for side in run.pair.sources:
                flow = run.flows[side]
                if entity not in flow.source.entities() or entity not in flow.target.entities():
                    continue
                entity_run = run.entity(flow, entity)
                entity_run.resolve_intents()
                entity_run.retry_failed()
                entity_run.read_changes(full)
                if full and not flow.two_way:
                    entity_run.check_target_deletions()


def _raised_by(exc: BaseException, connectors: Sequence[Connector]) -> Connector | None:
    """Which of ``connectors`` raised ``exc``: the one whose method is the innermost
    of them in its traceback (a connector raises from its own methods, or from
    helpers they call)."""
    found: Connector | None = None
    for frame, _line in traceback.walk_tb(exc.__traceback__):
        owner = frame.f_locals.get("self")
        for connector in connectors:
            if owner is connector:
                found = connector
    return found


def _retry_note(exc: ConnectorError) -> str:
    """What follows a run the connector error ended, for its reason line (rule 36)."""
    if exc.retryable:
        return " (tried again at the next scheduled run)"
    return " (an operator must act; the next scheduled run tries again)"


def _clock(at: datetime) -> str:
    """A time for a reason line: HH:MM:SS UTC, with the date when it is not today."""
    shown = at.strftime("%H:%M:%S UTC")
    return shown if at.date() == now().date() else f"{at:%Y-%m-%d} {shown}"


class _Run:
    """State shared by one run's entities: connectors, flows, counts."""

    def __init__(
        self,
        runner: PairRunner,
        pair: PairRules,
        run_id: int,
        left: Connector,
        right: Connector,
        counts: Counter[str],
        dry_run: bool,
        items: list[dict[str, Any]],
    ) -> None:
        self.runner = runner
        self.pair = pair
        self.run_id = run_id
        self.counts = counts
        self.dry_run = dry_run
        self.items = items
        connectors = {Side.LEFT: left, Side.RIGHT: right}
        self.flows = {
            side: Flow(
                pair=pair.name,
                store=runner.store,
                source=connectors[side],
                target=connectors[side.other],
                source_side=side,
                target_side=side.other,
                update_existing=pair.update_existing,
                recreate_deleted=pair.recreate_deleted,
                propagate_deletes=pair.deletes == "propagate",
                may_create=side.other in pair.create_in,
                two_way=pair.two_way,
                conflict=ConflictRule(pair.conflict, clears=pair.clears == "propagate"),
            )
            for side in SIDES
        }

    def settle_updates(self, entity: Entity) -> None:
        """Two-way: before either side's changes of ``entity`` are read, record the
        updates an interrupted run wrote without recording them, so they are not
        taken for edits (see :mod:`syncd.engine.writeahead`)."""
        if not self.pair.two_way or self.dry_run:
            return
        store = self.runner.store
        rows = [row for row in store.open_intents(self.pair.name, entity) if is_updates(row)]
        if not rows:
            return
        rows.sort(key=lambda row: (row["created_at"], row["key"]))
        commit = BatchCommit()
        found = 0
        for side in SIDES:
            flow = self.flows[side]
            mine = [row for row in rows if row["target_side"] == flow.target_side]
            if not mine:
                continue
            rules = self._rules(flow, entity)
            found += InterruptedUpdates(flow, rules).settle(mine, commit)
        self.counts["updated"] += found
        store.commit(self.pair.name, self.run_id, commit)
        log.info("updates.settled", pair=self.pair.name, entity=entity, writes=found)

    def _rules(self, flow: Flow, entity: Entity) -> EntityRules:
        return entity_rules(
            self.pair, entity, flow.source.fields(entity), flow.target.fields(entity)
        )

    def entity(self, flow: Flow, entity: Entity) -> _EntityRun:
        """The run of one entity type in one direction."""
        return _EntityRun(self, flow, self._rules(flow, entity))


class _EntityRun:
    """Syncs one entity type in one direction: the page loop and its batches."""

    def __init__(self, run: _Run, flow: Flow, rules: EntityRules) -> None:
        self.run = run
        self.flow = flow
        self.rules = rules
        self.entity = rules.entity
        store = flow.store
        translator = ReferenceTranslator(
            store, flow.pair, flow.source, flow.target, flow.source_side, flow.target_side
        )
        back = ReferenceTranslator(
            store, flow.pair, flow.target, flow.source, flow.target_side, flow.source_side
        )
        self.planner = Planner(flow, rules, translator, back if flow.two_way else None)
        self.interrupted = InterruptedCreates(flow, rules, back, self.planner.reference)
        retries = store.retries(flow.pair, self.entity, flow.source_side)
        self.retry_ids = retries
        self.has_failures = bool(
            retries or store.permanent_failures_exist(flow.pair, self.entity, flow.source_side)
        )
        self.planner.check_failures = self.has_failures
        on_item = run.items.append if run.dry_run else None
        self.applier = Applier(
            flow,
            run.run_id,
            run.counts,
            dry_run=run.dry_run,
            clear_retries=self.has_failures,
            on_item=on_item,
            intent_fields=None if flow.target.client_ids else match_fields(rules),
        )
        self.pending: list[Op] = []
        self.pending_ids: set[str] = set()
        self.pending_records = 0
        #: planned operations that write to the target, of those pending
        self.pending_writes = 0
        self.cursor: str | None = None

    # -- the page loop ------------------------------------------------------------------

    def read_changes(self, full: bool) -> None:
        """Stream the source's changes since its cursor (all records when ``full``).

        When the source says the cursor expired, list every record instead, once
        (a second expiry fails the run), and say so in the run (rule 34)."""
        try:
            self._read(full)
        except CursorExpiredError as exc:
            if full:
                raise
            self._cursor_expired(exc)
            self._read(True)

    def _cursor_expired(self, exc: CursorExpiredError) -> None:
        """Commit what was read before the expiry and record it as a run item."""
        flow = self.flow
        self.flush()
        log.warning(
            "cursor.expired",
            pair=flow.pair,
            side=flow.source_side,
            entity=self.entity,
            connector=flow.source.name,
            error=str(exc),
            note="listing every record instead",
        )
        detail = {"reason": "the cursor expired: every record is listed instead"}
        item: dict[str, Any] = {
            "entity": self.entity,
            "action": "relist",
            "outcome": "ok",
            "source_side": flow.source_side,
            "source_id": None,
            "target_id": None,
            "error": None,
            "detail": json.dumps(detail),
        }
        if self.run.dry_run:
            self.run.items.append(item)
        else:
            flow.store.commit(flow.pair, self.run.run_id, BatchCommit(items=[item]))

    def _pages(self, cursor: str | None, full: bool) -> Iterator[Page]:
        """The source's pages; when the source rate-limits us, what was read before
        is applied and committed with its cursor, then the limit ends the run."""
        pages = self.flow.source.changes(self.entity, cursor, full=full)
        while True:
            try:
                page = next(pages)
            except StopIteration:
                return
            except RateLimitedError:
                self.flush()
                raise
            yield page

    def _read(self, full: bool) -> None:
        flow = self.flow
        store = flow.store
        cursor = None if full else store.cursor(flow.pair, flow.source_side, self.entity)
        track = store.has_bindings(flow.pair, self.entity)
        self.planner.fresh = None if track else set()
        screen = ListingScreen(self.entity)
        complete = True
        threshold = max(1, flow.target.batch_size)
        for page in self._pages(cursor, full):
            complete = complete and page.full
            screened = screen.page(page)
            ids = [r.id for r in screened.records] + list(screened.deleted)
            if self.pending_ids.intersection(ids):
                self.flush()
            planned = self.planner.plan(screened.records, screened.deleted)
            self.pending.extend(screened.ops)
            self.pending.extend(planned)
            self.pending_writes += sum(
                1 for op in planned if op.send or (op.kind is CREATE or op.kind is DELETE)
            )
            self.pending_ids.update(ids)
            self.pending_records += len(ids) + len(screened.ops)
            if page.cursor is not None and not screen.damaged:
                self.cursor = page.cursor
            self._progress(len(ids))
            if self.pending_writes >= threshold or self.pending_records >= MAX_PENDING_RECORDS:
                self.flush()
        self.flush()
        self.planner.fresh = None
        if screen.damaged:
            self._damaged(flow.source_side, "no deletion inferred, cursor kept")
        elif complete and track:
            self._infer_deletions(screen.listed)

    def process(self, records: list[Record], deleted: list[str], *, force: bool = False) -> None:
        """Plan and apply records outside the change feed (retries, one record)."""
        self.pending.extend(self.planner.plan(records, deleted, force=force))
        self.flush()

    def flush(self) -> None:
        """Apply what is pending and commit it with the cursor reached so far."""
        cursors: dict[tuple[str, str], str] = {}
        if self.cursor is not None:
            cursors[(self.flow.source_side, self.entity)] = self.cursor
        if self.pending or cursors:
            self.applier.apply(self.pending, cursors)
        self.pending = []
        self.pending_ids = set()
        self.pending_records = 0
        self.pending_writes = 0
        self.cursor = None
        self.planner.claimed.clear()
        check = self.run.runner.should_stop
        reason = check() if check is not None else None
        if reason:
            raise StopRequested(reason)

    def _damaged(self, side: Side, consequence: str) -> None:
        """Log that a listing of ``side`` could not read every record, and what follows."""
        log.warning(
            "listing.damaged",
            pair=self.flow.pair,
            side=side,
            entity=self.entity,
            note=f"records could not be read: {consequence}",
        )

    def _progress(self, count: int) -> None:
        if self.run.runner.progress is not None:
            self.run.runner.progress(self.entity, count)

    # -- around the feed ----------------------------------------------------------------

    def retry_failed(self) -> None:
        """Fetch again the records whose last attempt failed with a retryable error."""
        ids = self.retry_ids
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            found = self.flow.source.get(self.entity, chunk)
            self.process(list(found.values()), [])
            self._not_found(i for i in chunk if i not in found)

    def _not_found(self, ids: Iterable[str]) -> None:
        """Forget the retries of records the source no longer gives. Their absence is
        no deletion: a record ``get`` cannot read is absent too, and deletions are
        told by the change feed or inferred from a complete, clean listing."""
        reason = "no longer found at the source; a deletion is taken from its listing"
        ops = [Op(SKIP, self.entity, record_id, reason=reason) for record_id in ids]
        if ops:
            self.pending.extend(ops)
            self.flush()

    def _infer_deletions(self, seen: set[str]) -> None:
        side = self.flow.source_side
        missing: list[str] = []
        for binding in self.flow.store.iter_bindings(self.flow.pair, self.entity):
            source_id = binding.id_on(side)
            if source_id not in seen and not binding.get("deleted", side):
                missing.append(source_id)
        for start in range(0, len(missing), 1000):
            self.process([], missing[start : start + 1000])

    def check_target_deletions(self) -> None:
        """In a full run, find bound records deleted on the receiving side and recreate
        them (``recreate_deleted``) or mark them deleted there."""
        flow = self.flow
        present: set[str] = set()
        screen = ListingScreen(self.entity)
        for page in flow.target.changes(self.entity, None, full=True):
            screen.page(page)
            present.update(r.id for r in page.records)
        if screen.damaged:
            self._damaged(flow.target_side, "no bound record there is taken for deleted")
            return
        gone = [
            b.id_on(flow.source_side)
            for b in flow.store.iter_bindings(flow.pair, self.entity)
            if b.id_on(flow.target_side) not in present and not b.get("deleted", flow.target_side)
        ]
        for start in range(0, len(gone), 500):
            found = flow.source.get(self.entity, gone[start : start + 500])
            self.process(list(found.values()), [], force=True)

    def resolve_intents(self) -> None:
        """Settle creates an interrupted run sent without recording their outcome: bind
        the record that was created, forget the intent if nothing was created, or hold
        the record for a person when it cannot be told (see :mod:`syncd.engine.held`)."""
        flow = self.flow
        rows = [
            row
            for row in flow.store.open_intents(flow.pair, self.entity)
            if row["target_side"] == flow.target_side and not is_updates(row)
        ]
        intents = unpack(rows)
        if not intents:
            return
        if self.run.dry_run:
            self.planner.held = {i["source_id"]: DRY_RUN_HOLD for i in intents}
            return
        resolution = self.interrupted.resolve(intents)
        kept = {i["row"] for i in resolution.held_intents if i["held"]}
        new_rows = [held_row(self.entity, i) for i in resolution.held_intents if not i["held"]]
        flow.store.add_intents(flow.pair, new_rows)
        done = [row["key"] for row in rows if row["key"] not in kept]
        self.applier.apply(resolution.binds, done_intents=done)
        self.planner.held = resolution.held
        # reported (by the planner) even when the listing does not bring them up
        self.retry_ids = list(dict.fromkeys([*self.retry_ids, *resolution.held]))
        log.info(
            "intents.resolved",
            pair=flow.pair,
            entity=self.entity,
            intents=len(intents),
            bound=len(resolution.binds),
            held=len(resolution.held),
        )
