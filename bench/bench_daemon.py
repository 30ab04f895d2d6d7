"""Daemon benchmark: how fast a trigger starts a run, and what an idle daemon costs.

1. Trigger-to-start latency: a real ``syncd run`` with one on-demand pair (SQLite ->
   CSV, a few records); 20 times, write a run request to the state store (what
   ``syncd trigger`` does) and measure until the run's recorded start. Prints the
   median and the worst. Target: median under 1 s.
2. Idle CPU: a real ``syncd run`` with 50 pairs scheduled every minute (memory
   connectors, nothing to sync); after the first round of runs, the process's CPU
   time over a window (default 60 s) as a share of one core. Target: under 1%.

    python bench/bench_daemon.py
    python bench/bench_daemon.py --window 30
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC
from pathlib import Path

from syncd.state import Store

SYNCD = str(Path(sys.executable).parent / "syncd")
TICKS = os.sysconf("SC_CLK_TCK")

ONE_PAIR = """
[daemon]
state = "sqlite:///state.db"
log_format = "json"

[connectors.crm]
type = "sql"
url = "sqlite:///crm.db"
  [connectors.crm.entities.contact]
  table = "contacts"
  updated_at = "updated_at"

[connectors.books]
type = "csv"
path = "books"
  [connectors.books.entities.contact]
  file = "contacts.csv"
  id = "Id"
  [connectors.books.entities.contact.fields]
  email = "Email"

[pairs.p]
left = "crm"
right = "books"
"""


def start(folder: Path) -> subprocess.Popen[bytes]:
    """``syncd run`` on the folder's config, once its heartbeat shows."""
    proc = subprocess.Popen(
        [SYNCD, "--config", str(folder / "syncd.toml"), "run"],
        stdout=subprocess.DEVNULL,
        stderr=open(folder / "daemon.log", "wb"),  # noqa: SIM115 - lives as long as the daemon
    )
    store = Store(f"sqlite:///{folder / 'state.db'}")
    deadline = time.monotonic() + 30
    while not store.daemons(5):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit(f"the daemon did not start; see {folder / 'daemon.log'}")
        time.sleep(0.1)
    store.close()
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)


def trigger_latency(rounds: int) -> list[float]:
    """Seconds from a run request to the run's start, ``rounds`` times."""
    with tempfile.TemporaryDirectory(prefix="syncd-bench-daemon-") as tmp:
        folder = Path(tmp)
        (folder / "syncd.toml").write_text(ONE_PAIR)
        (folder / "books").mkdir()
        with sqlite3.connect(folder / "crm.db") as db:
            db.execute(
                "CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT, updated_at TEXT)"
            )
            db.executemany(
                "INSERT INTO contacts VALUES (?, ?, '2026-01-01 00:00:00')",
                ((i, f"p{i}@example.com") for i in range(1, 11)),
            )
        proc = start(folder)
        store = Store(f"sqlite:///{folder / 'state.db'}")
        latencies = []
        try:
            for _ in range(rounds):
                asked = store.request_run("p", False)
                deadline = time.monotonic() + 30
                while True:
                    runs = store.runs_since("p", "trigger", asked)
                    if runs and runs[0]["status"] != "running":
                        break
                    if time.monotonic() > deadline:
                        raise SystemExit("a triggered run did not start within 30 s")
                    time.sleep(0.01)
                started = runs[0]["started_at"].replace(tzinfo=UTC)
                latencies.append((started - asked).total_seconds())
        finally:
            store.close()
            stop(proc)
    return latencies


def idle_cpu(pairs: int, window: float) -> float:
    """The daemon's CPU time over ``window`` seconds, as a share of one core."""
    with tempfile.TemporaryDirectory(prefix="syncd-bench-idle-") as tmp:
        folder = Path(tmp)
        lines = ['[daemon]\nstate = "sqlite:///state.db"\nlog_format = "json"\n']
        for i in range(pairs):
            lines.append(
                f'[connectors.l{i}]\ntype = "memory"\nsystem = "l{i}"\n'
                f'[connectors.r{i}]\ntype = "memory"\nsystem = "r{i}"\n'
                f'[pairs.p{i}]\nleft = "l{i}"\nright = "r{i}"\nevery = "1m"\n'
            )
        (folder / "syncd.toml").write_text("\n".join(lines))
        proc = start(folder)
        try:
            time.sleep(5)  # the first round of runs, at start
            before = cpu_seconds(proc.pid)
            began = time.monotonic()
            time.sleep(window)
            used = cpu_seconds(proc.pid) - before
            elapsed = time.monotonic() - began
        finally:
            stop(proc)
    return used / elapsed


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="triggers to time")
    parser.add_argument("--pairs", type=int, default=50, help="pairs for the idle figure")
    parser.add_argument("--window", type=float, default=60.0, help="idle seconds measured")
    args = parser.parse_args()
    latencies = trigger_latency(args.rounds)
    median = statistics.median(latencies)
    verdict = "ok" if median < 1 else "MISSED"
    print(
        f"trigger to start, {args.rounds} triggers: median {median * 1000:.0f} ms, "
        f"worst {max(latencies) * 1000:.0f} ms (target median < 1 s: {verdict})"
    )
    share = idle_cpu(args.pairs, args.window)
    verdict = "ok" if share < 0.01 else "MISSED"
    print(
        f"idle daemon, {args.pairs} pairs every minute, over {args.window:.0f}s: "
        f"{share:.2%} of one core (target < 1%: {verdict})"
    )


if __name__ == "__main__":
    main()
