"""Plugin API 2 end to end: a plugin installed through a real entry point whose
connector keeps a value in its own store across ``syncd sync`` runs, and reads it
(read-only) in ``syncd check``."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from cli_helpers import SYNCD

PLUGIN = """
from syncd import hookimpl
from syncd_memory import MemoryConnector

SYNCD_API = 2

class Counting(MemoryConnector):
    type = "counting"

    def open(self):
        super().open()
        self.context.store.update("opened", lambda old: str(int(old or 0) + 1))

    def check(self):
        self.context.log.warning("counting.checked", opened=self.context.store.get("opened"))

@hookimpl
def syncd_connectors():
    return [Counting]
"""

CONFIG = """
[daemon]
state = "sqlite:///state.db"
log_format = "json"

[connectors.a]
type = "memory"

[connectors.b]
type = "counting"

[pairs.ab]
left = "a"
right = "b"
"""


def install(site: Path, package: str, entry: str, source: str) -> None:
    """A throwaway distribution of one module with a ``syncd`` entry point."""
    module = f"mod_{entry}"
    (site / f"{module}.py").write_text(source)
    info = site / f"{package.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[syncd]\n{entry} = {module}\n")


def test_an_api_2_plugin_keeps_its_values_between_commands(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    install(site, "syncd-counting", "counting", PLUGIN)
    env = {**os.environ, "PYTHONPATH": str(site)}
    config = tmp_path / "syncd.toml"
    config.write_text(CONFIG)

    def syncd(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SYNCD, "--config", str(config), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    for _ in range(2):
        done = syncd("sync", "ab")
        assert done.returncode == 0, done.stderr
    checked = syncd("check", "--json")
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["ok"] is True
    events = [json.loads(line) for line in checked.stderr.splitlines() if line.startswith("{")]
    seen = [e for e in events if e.get("event") == "counting.checked"]
    assert len(seen) == 1, checked.stderr
    assert (seen[0]["opened"], seen[0]["connector"]) == ("2", "b")
