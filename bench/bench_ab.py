"""Two commits side by side: first runs of ``bench_export.py``'s data through the
working tree's syncd and an earlier commit's, alternately, each on a fresh copy.

A shared machine's speed drifts by a factor of two within minutes (see
``machine.py``), so figures taken minutes apart cannot tell a 10 % change from the
drift; runs that alternate can. The earlier commit is checked out into a temporary
git worktree and run by this virtual environment's Python, with that worktree first
on ``sys.path`` instead of the editable install.

    python bench/bench_ab.py --rev fd05cc7                  # to-sql, 5 rounds
    python bench/bench_ab.py --rev HEAD~3 --pair to-csv --rounds 8 --n 20000
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_export import build
from machine import byte_compile_project, describe

ROOT = Path(__file__).resolve().parent.parent

#: Runs ``syncd`` from the worktree given as the first argument: the editable
#: install's finder is dropped so that the worktree's packages are the ones imported.
OLD_SYNCD = """
import sys
root = sys.argv.pop(1)
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f)]
sys.path[:0] = [root, root + "/plugins"]
import syncd
assert syncd.__file__.startswith(root), syncd.__file__
from syncd.cli import main
main()
"""


def first_run(folder: Path, pair: str, worktree: Path | None) -> float:
    """The seconds a first run of ``pair`` took in ``folder`` (its own report)."""
    args = ["--config", str(folder / "syncd.toml"), "sync", pair, "--json"]
    if worktree is None:
        command = [str(Path(sys.executable).parent / "syncd"), *args]
    else:
        command = [sys.executable, "-c", OLD_SYNCD, str(worktree), *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    report = json.loads(done.stdout) if done.stdout.strip() else {}
    if report.get("status") != "ok":
        raise SystemExit(f"run failed ({done.returncode}): {done.stderr[-800:]}")
    return float(report["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", required=True, help="the earlier commit")
    parser.add_argument("--pair", default="to-sql", choices=["to-sql", "to-csv"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=100_000, help="contacts")
    options = parser.parse_args()
    byte_compile_project()
    print(describe())
    times: dict[str, list[float]] = {options.rev: [], "working tree": []}
    with tempfile.TemporaryDirectory(prefix="syncd-ab-") as tmp:
        base, worktree = Path(tmp) / "base", Path(tmp) / "old"
        git = ["git", "-C", str(ROOT), "worktree"]
        subprocess.run([*git, "add", "--detach", "-q", str(worktree), options.rev], check=True)
        try:
            subprocess.run(
                [sys.executable, "-m", "compileall", "-q", str(worktree / "syncd"),
                 str(worktree / "plugins")],
                check=True,
            )  # fmt: skip
            base.mkdir()
            build(base, options.n)
            for round_ in range(options.rounds):
                for label, tree in ((options.rev, worktree), ("working tree", None)):
                    folder = Path(tmp) / f"run-{round_}-{len(times[label])}-{tree is None}"
                    shutil.copytree(base, folder)
                    times[label].append(first_run(folder, options.pair, tree))
                    shutil.rmtree(folder)
        finally:
            subprocess.run([*git, "remove", "--force", str(worktree)], check=False)
    print(f"{options.pair} first run, N = {options.n:,}, {options.rounds} alternating rounds")
    old, new = (statistics.mean(values) for values in times.values())
    for label, values in times.items():
        shown = " ".join(f"{v:.2f}" for v in values)
        print(f"  {label}: mean {statistics.mean(values):.2f}s ({shown})")
    print(f"  change: {new / old - 1:+.1%}")


if __name__ == "__main__":
    main()
