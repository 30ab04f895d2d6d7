"""Writing a batch's outcome while the engine goes on: a write-behind of depth one.

A large run spends a quarter of its time inside the state store's inserts, where the
database driver runs without the GIL. Handing the batch commit to one worker thread
lets the engine read and plan the next page on the other core meanwhile.

Order and crash safety stay those of a synchronous commit: a thread's next use of
the store waits for its commit first (and raises that commit's error, if it failed).
So the engine never reads state older than what it wrote, and the next batch's
intents and writes reach the systems only after the previous batch is recorded. A
process killed while a commit is behind is a process killed before that commit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor


class WriteBehind:
    """At most one unfinished write per calling thread, run on a shared worker.

    The pending write is kept per calling thread: in the daemon, pairs run on
    scheduler threads that share one store, and each must wait for (and hear of the
    failure of) its own write only."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    def submit(self, write: Callable[[], None]) -> None:
        """Start ``write`` on the worker after this thread's previous write."""
        self.wait()
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="syncd-store")
            executor = self._executor
        self._local.pending = executor.submit(write)

    def wait(self) -> None:
        """Block until this thread's pending write is done; raise its error."""
        pending: Future[None] | None = getattr(self._local, "pending", None)
        if pending is None:
            return
        self._local.pending = None
        pending.result()

    def close(self) -> None:
        """Finish this thread's write and stop the worker."""
        try:
            self.wait()
        finally:
            with self._lock:
                executor, self._executor = self._executor, None
            if executor is not None:
                executor.shutdown(wait=True)
