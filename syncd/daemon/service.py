"""The daemon: ``syncd run``, what systemd starts.

It schedules one job per pair (:mod:`syncd.daemon.scheduler`), runs pairs in worker threads
(one run per pair at a time), and obeys the state store, which is how the CLI talks to
it: paused pairs start no run (and a run in progress stops after its current batch),
``syncd trigger`` requests are picked up within a second. It writes a heartbeat and
each pair's next fire time for ``syncd status``, talks to systemd (READY, WATCHDOG,
STATUS, STOPPING), reloads its configuration on SIGHUP (refusing a broken one) and on
SIGTERM starts nothing new, lets running runs commit their current batch, and exits 0.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import FrameType

from syncd import __version__
from syncd.config import Config, ConfigError, load_config
from syncd.daemon.notify import Notifier, watchdog_interval
from syncd.engine_setup import runner_for
from syncd.errors import UserError
from syncd.logging import get_logger
from syncd.plugin.manager import default_registry
from syncd.state import Store
from syncd.state.errors import StoreError
from syncd.state.rows import now

log = get_logger("syncd.daemon")

#: Seconds between two looks at the state store (trigger requests, heartbeat).
POLL_SECONDS = 0.5
#: Seconds between heartbeats; a daemon not seen for ``ALIVE_SECONDS`` is gone.
BEAT_SECONDS = 1.0
ALIVE_SECONDS = 5.0
#: Most runs going at once.
WORKERS = 4


class Daemon:
    """One daemon process serving the pairs of one configuration file."""

    def __init__(self, path: Path, config: Config) -> None:
        self.path = path
        self.config = config
        self.store = Store(config.state_url)
        self.node = socket.gethostname()
        self.pid = os.getpid()
        self.started_at = now()
        self.notifier = Notifier()
        # imported here: APScheduler is the daemon's alone, not every command's
        from syncd.daemon.scheduler import PairScheduler

        self.scheduler = PairScheduler(self._fire)
        self.pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="syncd-run")
        self.stopping = threading.Event()
        self._reload = False
        self._lock = threading.Lock()
        self._running: dict[str, Future[None]] = {}
        #: requested runs that waited for a run of the same pair to end: pair -> full
        self._waiting: dict[str, bool] = {}
        self._last_status = ""
        self._published: dict[str, object] = {}

    # -- lifecycle ----------------------------------------------------------------------

    def serve(self) -> int:
        """Run until SIGTERM or SIGINT; the process's exit code."""
        self._signals()
        self.scheduler.apply(self.config)
        self.scheduler.start()
        self._beat()
        self._publish_next_fire()
        log.info(
            "daemon.start",
            pid=self.pid,
            version=__version__,
            config=str(self.path),
            pairs=sorted(self.config.pairs),
        )
        for failure in default_registry().failures:
            log.warning(
                "plugin.failed",
                plugin=failure.plugin,
                package=failure.package,
                reason=failure.reason,
            )
        self.notifier.ready(self._status_line())
        watchdog = watchdog_interval()
        last_beat = last_ping = time.monotonic()
        while not self.stopping.is_set():
            self._reap()
            clock = time.monotonic()
            try:
                if self._reload:
                    self._reload = False
                    self.reload()
                self._take_requests()
                if clock - last_beat >= BEAT_SECONDS:
                    last_beat = clock
                    self._beat()
                    self._publish_next_fire()
            except StoreError as exc:  # a failing state store fails runs, not the daemon
                log.error("daemon.store_failed", error=str(exc))
            if watchdog is not None and clock - last_ping >= watchdog:
                self.notifier.watchdog()
                last_ping = clock
            self._report_status()
            self.stopping.wait(POLL_SECONDS)
        return self._shutdown()

    def stop(self, reason: str = "asked to stop") -> None:
        """Start nothing new; runs in progress stop after their current batch."""
        if not self.stopping.is_set():
            log.info("daemon.stopping", reason=reason)
            self.stopping.set()

    def reload(self) -> bool:
        """Load the configuration file again; keep the old one if the new one is broken."""
        self.notifier.reloading()
        try:
            fresh = load_config(self.path)
            fresh.require_pairs()
        except Exception as exc:  # whatever is wrong with the new file, the old one stays
            error = str(exc) if isinstance(exc, ConfigError) else f"{type(exc).__name__}: {exc}"
            log.error("config.reload_refused", error=error, kept="the previous configuration")
            self.notifier.send("READY=1", "STATUS=reload refused: configuration is invalid")
            return False
        if (fresh.daemon.state, fresh.base_dir) != (self.config.daemon.state, self.config.base_dir):
            log.warning("config.state_changed", note="a new state store takes a restart")
        with self._lock:
            self.config = fresh
        changes = self.scheduler.apply(fresh)
        self._publish_next_fire()
        log.info("config.reloaded", pairs=sorted(fresh.pairs), **changes)
        self.notifier.send("READY=1", f"STATUS={self._status_line()}")
        return True

    def _signals(self) -> None:
        def terminate(signum: int, _frame: FrameType | None) -> None:
            self.stop(signal.Signals(signum).name)

        def hangup(_signum: int, _frame: FrameType | None) -> None:
            self._reload = True

        signal.signal(signal.SIGTERM, terminate)
        signal.signal(signal.SIGINT, terminate)
        signal.signal(signal.SIGHUP, hangup)

    def _shutdown(self) -> int:
        self.notifier.stopping()
        self.scheduler.shutdown()
        running = sorted(name for name, f in self._running.items() if not f.done())
        if running:
            log.info("daemon.waiting", runs=running, note="each stops after its current batch")
        self.pool.shutdown(wait=True)
        try:
            self.store.forget_daemon(self.node)
        except StoreError as exc:  # the heartbeat then ages out
            log.error("daemon.store_failed", error=str(exc))
        self.store.close()
        log.info("daemon.stop", pid=self.pid)
        return 0

    # -- runs ---------------------------------------------------------------------------

    def _fire(self, pair: str, full: bool) -> None:
        """A schedule fired (called from the scheduler's thread)."""
        self.submit(pair, full, "schedule")

    def submit(self, pair: str, full: bool, trigger: str) -> bool:
        """Start a run of ``pair`` unless the daemon is stopping, the pair is paused
        or already running (a requested run then waits for it; a scheduled one is
        skipped, as a missed fire time would be). A scheduled run is also skipped
        while a rate-limited system's wait lasts (the pair's ``not_before``)."""
        with self._lock:
            if self.stopping.is_set():
                return False
            config = self.config
            if pair not in config.pairs:
                log.warning("run.unknown_pair", pair=pair, trigger=trigger)
                return False
            current = self._running.get(pair)
            if current is not None and not current.done():
                if trigger == "trigger":
                    self._waiting[pair] = self._waiting.get(pair, False) or full
                else:
                    log.info("run.skipped", pair=pair, trigger=trigger, reason="still running")
                return False
            try:
                paused = self.store.is_paused(pair)
                # a rate-limited system's wait holds scheduled runs; a person's may go
                wait = self.store.not_before(pair) if trigger == "schedule" else None
            except StoreError as exc:
                log.error("run.skipped", pair=pair, trigger=trigger, error=str(exc))
                return False
            if paused:
                log.info("run.skipped", pair=pair, trigger=trigger, reason="paused")
                return False
            if wait is not None and wait > now():
                log.info(
                    "run.skipped",
                    pair=pair,
                    trigger=trigger,
                    reason="rate limited",
                    not_before=wait.isoformat(),
                )
                return False
            self._running[pair] = self.pool.submit(self._run, config, pair, full, trigger)
            return True

    def _run(self, config: Config, pair: str, full: bool, trigger: str) -> None:
        runner = runner_for(config, self.store, should_stop=lambda: self._stop_reason(pair))
        try:
            runner.run(pair, trigger=trigger, full=full)
        except UserError as exc:
            log.warning("run.refused", pair=pair, trigger=trigger, error=str(exc))
        except StoreError as exc:  # the store failed before or after the run proper
            log.error("run.failed", pair=pair, trigger=trigger, error=str(exc))
        except Exception as exc:  # a run's failure must never take the daemon down
            log.exception("run.crashed", pair=pair, trigger=trigger, error=repr(exc))

    def _stop_reason(self, pair: str) -> str | None:
        if self.stopping.is_set():
            return "the daemon is stopping"
        if self.store.is_paused(pair):
            return "the pair was paused"
        return None

    def _take_requests(self) -> None:
        for pair, full in self.store.take_requests():
            log.info("run.requested", pair=pair, full=full)
            self.submit(pair, full, "trigger")
        for pair, full in list(self._waiting.items()):
            current = self._running.get(pair)
            if current is None or current.done():
                del self._waiting[pair]
                self.submit(pair, full, "trigger")

    def _reap(self) -> None:
        with self._lock:
            for pair, future in list(self._running.items()):
                if future.done():
                    del self._running[pair]

    # -- what the CLI and systemd see ---------------------------------------------------

    def _beat(self) -> None:
        self.store.beat(self.node, self.pid, __version__, self.started_at)

    def _publish_next_fire(self) -> None:
        """Write the pairs' next fire times that changed since last written."""
        times = dict.fromkeys(self.config.pairs)
        times.update(self.scheduler.next_fire_times())
        changed = {k: v for k, v in times.items() if self._published.get(k, ...) != v}
        if changed:
            self.store.set_next_fire(changed, owner=f"{self.node}:{self.pid}")
            self._published.update(changed)

    def _status_line(self) -> str:
        running = sorted(name for name, f in self._running.items() if not f.done())
        if running:
            return f"running: {', '.join(running)}"
        scheduled = len(self.scheduler.next_fire_times())
        return f"idle; {len(self.config.pairs)} pairs, {scheduled} scheduled"

    def _report_status(self) -> None:
        line = self._status_line()
        if line != self._last_status:
            self._last_status = line
            self.notifier.status(line)
