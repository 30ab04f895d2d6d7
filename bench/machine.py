"""How fast this machine runs Python right now, printed by the benchmarks.

Our targets are in seconds and records per second, but the machines we measure on
differ (and a shared one differs from minute to minute) by a factor of two or more.
Every benchmark prints this figure beside its own, so that figures from different
sessions can be compared, and a slow day is told from a slow change.
"""

from __future__ import annotations

import json
import mmap
import statistics
import time

#: What :func:`python_speed` gave on the machine of the session that added it
#: (2026-11-29: 0.55-0.73 s, while the first-run figures in that session's note
#: were taken). The machine of the sessions before was about 2.8x faster by the
#: benchmarks themselves; this figure makes such a difference visible from now on.
REFERENCE_SECONDS = 0.60


def _workload() -> int:
    """A fixed mix of what a sync does per record: dicts, strings, JSON."""
    encode = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
    total = 0
    for i in range(100_000):
        record = {"first_name": f"First{i}", "last_name": f"Last{i}", "email": f"p{i}@x.org"}
        selected = {k: v for k, v in record.items() if v and v.strip()}
        total += len(encode(selected)) + len(record["email"].lower().split("@"))
    return total


def python_speeds(rounds: int = 5) -> list[float]:
    """Seconds for the fixed workload, once per round."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        _workload()
        times.append(time.perf_counter() - started)
    return times


def python_speed(rounds: int = 5) -> float:
    """Seconds for the fixed workload, the best of ``rounds`` (the machine's speed
    when least disturbed)."""
    return min(python_speeds(rounds))


def describe() -> str:
    """One line for a benchmark's output: the best round, which is the machine's
    speed, and the median, which shows how much others disturb it right now (the
    loop fits in a CPU's caches, so a machine slowed by its neighbours' memory or
    disk traffic can still show its usual best)."""
    times = python_speeds()
    seconds = min(times)
    factor = seconds / REFERENCE_SECONDS
    return (
        f"machine: calibration loop {seconds:.3f}s, median {statistics.median(times):.3f}s "
        f"({factor:.2f}x the time it took when calibrated; higher is slower)"
    )


def parallel() -> str:
    """One line on how much a second process adds: the workload run by two processes
    at once, against one alone. Two real cores do twice the work; two hyperthreads
    of one core (or a throttled share) much less, and that bounds what any second
    thread or process of syncd could win."""
    from concurrent.futures import ProcessPoolExecutor

    alone = python_speed(rounds=3)
    with ProcessPoolExecutor(2) as pool:
        together = max(pool.map(python_speed, [3, 3]))
    # a shared machine's speed drifts: one alone is timed before and after
    alone = min(alone, python_speed(rounds=3))
    return (
        f"machine: two processes at once take {together / alone:.2f}x the time of one "
        f"alone, so two do {2 * alone / together:.2f}x the work of one"
    )


def page_cache_cost(folder: str | None = None, megabytes: int = 16) -> float:
    """Microseconds per page to write a new file of ``megabytes`` in ``folder`` (no
    ``fsync``: only the page cache is measured), the file then removed.

    A kernel gives a new file pages it recently freed in about a microsecond each.
    Our machines behave like virtual machines whose memory the host backs lazily and
    takes back once the guest has freed it a while: a page that is new to the host costs a
    host page fault as well, several microseconds more. Every file a run writes pays
    that price or not by what the machine did in the seconds before, and a CSV
    re-run that rewrites a 13 MB file pays it 3,300 times."""
    import os
    import tempfile

    data = b"x" * (megabytes << 20)
    with tempfile.NamedTemporaryFile(dir=folder) as out:
        started = time.perf_counter()
        os.write(out.fileno(), data)
        seconds = time.perf_counter() - started
    return seconds / (len(data) // mmap.PAGESIZE) * 1e6


def describe_memory(folder: str | None = None) -> str:
    """One line on what a new file's pages cost right now (see
    :func:`page_cache_cost`)."""
    return f"machine: a new file's page cache costs {page_cache_cost(folder):.2f} us a page"


def byte_compile_project() -> None:
    """Byte-compile syncd's own modules, as pip does for every package it installs.

    The project is installed in editable mode, whose modules Python compiles when it
    first imports them and caches, unless ``PYTHONDONTWRITEBYTECODE`` forbids the
    cache (it is set on our machines). Then every ``syncd`` process compiles a hundred
    modules again, some 0.2 s, which the tools it is compared with (vdirsyncer,
    installed by pip with its bytecode) never pay. Writing the cache explicitly is
    allowed either way."""
    import compileall
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    for folder in ("syncd", "plugins"):
        compileall.compile_dir(str(root / folder), quiet=1)


if __name__ == "__main__":
    print(describe())
    print(describe_memory())
