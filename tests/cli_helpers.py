"""Running the real ``syncd`` command in a subprocess, as users and scripts do."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SYNCD = str(Path(sys.executable).parent / "syncd")


@dataclass
class Result:
    """A finished ``syncd`` invocation."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """stdout parsed as the one JSON document ``--json`` promises."""
        return json.loads(self.out)


def syncd(*args: str, config: Path | None = None, timeout: float = 120) -> Result:
    """Run ``syncd [--config CONFIG] ARGS`` and capture its output."""
    argv = [SYNCD, *(["--config", str(config)] if config else []), *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    return Result(done.returncode, done.stdout, done.stderr)


def demo_copy(tmp_path: Path) -> Path:
    """A fresh copy of the demo configuration and data; returns the config path."""
    etc = tmp_path / "etc"
    shutil.copytree(ROOT / "etc", etc, ignore=shutil.ignore_patterns("state", "books", "crm.db"))
    subprocess.run(
        [sys.executable, str(etc / "demo" / "make_demo.py")], check=True, capture_output=True
    )
    return etc / "syncd.toml"
