"""Fault injection for tests: run the ``syncd`` command with a SIGKILL arranged just
before its Nth state-store batch commit.

``python tests/faults.py --kill-before-commit N [--target-side SIDE] -- ARGS...`` runs
``syncd ARGS...`` in this process; the Nth call of :meth:`syncd.state.store.Store.commit`
that records a non-empty batch (counting only batches written to ``SIDE`` when given)
kills the process with SIGKILL before anything of that batch reaches the state store,
so every connector write of the batch has happened and none of its outcome is
recorded: the moment a crash between the target's commit and the state commit leaves.
The exit status is then -9, as for a kill from outside.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any


def arm(before_commit: int, target_side: str | None = None) -> None:
    """Make the ``before_commit``-th non-empty batch commit kill the process."""
    from syncd.state.store import Store

    original = Store.commit
    seen = 0

    def commit(self: Store, pair: str, run_id: int, batch: Any) -> None:
        nonlocal seen
        if not batch.empty() and _writes_to(batch, target_side):
            seen += 1
            if seen == before_commit:
                sys.stdout.flush()
                sys.stderr.flush()
                os.kill(os.getpid(), signal.SIGKILL)
        original(self, pair, run_id, batch)

    Store.commit = commit  # type: ignore[method-assign]


def _writes_to(batch: Any, side: str | None) -> bool:
    if side is None:
        return True
    source = "right" if side == "left" else "left"
    return any(_source_side(item) == source for item in batch.items)


def _source_side(item: Any) -> str:
    return item[3] if isinstance(item, tuple) else item["source_side"]


def main() -> None:
    """Parse the fault to arrange, then run ``syncd`` with the rest of the arguments."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kill-before-commit", type=int, required=True, metavar="N")
    parser.add_argument("--target-side", choices=("left", "right"))
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    args = options.args[1:] if options.args[:1] == ["--"] else options.args
    arm(options.kill_before_commit, options.target_side)
    from syncd.cli.app import main as syncd_main

    syncd_main(args)


if __name__ == "__main__":
    main()
