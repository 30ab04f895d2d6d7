"""Instructions per record of a first export, counted by valgrind (callgrind).

Wall-clock figures on a shared machine move by 15 % from one minute to the next, and
machines differ by a factor of two or more, so a small change cannot be judged by
them. Instruction counts repeat to a fraction of a percent (with a fixed hash seed):
this script builds the export benchmark's data at N contacts (default 10,000), runs
``syncd sync to-sql`` under callgrind twice, subtracts the second run (nothing to do:
start-up, the sync path's imports, the reads that find nothing) from the first and
prints instructions per record. Compare the figure
before and after a change; it is no target in itself.

    apt-get install valgrind            # if missing
    python bench/bench_instructions.py --n 10000
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_export import COMPANIES, SYNCD, build
from machine import byte_compile_project


def instructions(argv: list[str], cwd: Path) -> int:
    """Instructions a command executes, by callgrind."""
    out = cwd / "callgrind.out"
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"{' '.join(argv)} failed under valgrind:\n{done.stderr[-2000:]}")
    out.unlink(missing_ok=True)
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="contacts")
    n = parser.parse_args().n
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    byte_compile_project()
    with tempfile.TemporaryDirectory(prefix="syncd-bench-instr-") as tmp:
        folder = Path(tmp)
        build(folder, n)
        sync = [SYNCD, "--config", str(folder / "syncd.toml"), "sync", "to-sql", "--json"]
        # the state store is created first, outside the count, as a user's first
        # command would; then the first run, then the same run again with nothing to do
        subprocess.run([*sync[:3], "status"], cwd=folder, capture_output=True, check=True)
        run = instructions(sync, folder)
        startup = instructions(sync, folder)
    records = n + COMPANIES
    print(f"first export to SQLite, N = {n:,} contacts + {COMPANIES:,} companies")
    print(
        f"  first run: {run / 1e6:,.0f} M instructions; "
        f"no-change re-run (start-up and imports): {startup / 1e6:,.0f} M"
    )
    print(f"  per record: {(run - startup) / records:,.0f} instructions")


if __name__ == "__main__":
    sys.exit(main())
