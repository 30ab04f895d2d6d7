"""Failure isolation of plugins, through real entry points: throwaway distributions
(a ``dist-info`` with ``entry_points.txt``) on ``PYTHONPATH``, found by the real
``syncd`` command exactly as installed plugins are."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import SYNCD

GOOD = """
from syncd import hookimpl
from syncd_memory import MemoryConnector

class Other(MemoryConnector):
    type = "other"

@hookimpl
def syncd_connectors():
    return [Other]
"""

PLUGINS = {
    # package name: (entry point name, module source)
    "syncd-broken-import": ("brokenimport", "import no_such_module_xyz\n"),
    "syncd-raises": (
        "raises",
        "from syncd import hookimpl\n\n@hookimpl\ndef syncd_connectors():\n"
        "    raise RuntimeError('cannot reach the licence server')\n",
    ),
    "syncd-takes-csv": (
        "takescsv",
        "from syncd import hookimpl\nfrom syncd_memory import MemoryConnector\n\n"
        "class Csv(MemoryConnector):\n    type = 'csv'\n\n"
        "@hookimpl\ndef syncd_connectors():\n    return [Csv]\n",
    ),
    "syncd-from-the-future": ("future", "SYNCD_API = 99\n" + GOOD.replace('"other"', '"fut"')),
    "syncd-good": ("other", GOOD),
}


def install(site: Path, package: str, entry: str, source: str) -> None:
    module = f"mod_{entry}"
    (site / f"{module}.py").write_text(source)
    info = site / f"{package.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[syncd]\n{entry} = {module}\n")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir()
    for package, (entry, source) in PLUGINS.items():
        install(site, package, entry, source)
    return {**os.environ, "PYTHONPATH": str(site)}


def syncd(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SYNCD, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_broken_plugins_are_reported_with_package_and_reason(env: dict[str, str]) -> None:
    done = syncd(env, "plugins", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    failures = {f["package"]: f["reason"] for f in report["failures"]}
    assert "ModuleNotFoundError" in failures["syncd-broken-import"]
    assert "cannot reach the licence server" in failures["syncd-raises"]
    assert "already provided by syncd" in failures["syncd-takes-csv"]
    assert "needs syncd plugin API 99" in failures["syncd-from-the-future"]
    types = {t["type"]: t["package"] for t in report["connectors"]}
    # the rest keeps working: the built-ins keep their types, the good plugin is there
    assert types["csv"] == "syncd" and types["other"] == "syncd-good"
    assert "fut" not in types

    text = syncd(env, "plugins")
    assert "plugin raises (syncd-raises) failed" in text.stderr


def test_only_the_pairs_that_use_a_broken_type_fail(env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "syncd.toml"
    config.write_text(
        """
[daemon]
state = "sqlite:///state.db"

[connectors.a]
type = "memory"

[connectors.b]
type = "other"

[connectors.x]
type = "raises"

[pairs.ab]
left = "a"
right = "b"

[pairs.ax]
left = "a"
right = "x"
"""
    )
    done = syncd(env, "--config", str(config), "sync", "ab")
    assert done.returncode == 0, done.stderr

    broken = syncd(env, "--config", str(config), "sync", "ax", "--json")
    assert broken.returncode == 1
    report = json.loads(broken.stdout)
    assert report["status"] == "failed"
    assert "syncd-raises" in report["error"] and "licence server" in report["error"]

    checked = syncd(env, "--config", str(config), "check", "--json")
    assert checked.returncode == 1
    by_name = {c["connector"]: c for c in json.loads(checked.stdout)["connectors"]}
    assert by_name["a"]["ok"] and by_name["b"]["ok"]
    assert not by_name["x"]["ok"] and "licence server" in by_name["x"]["error"]

    # a type nobody provides is still a configuration error naming the key
    config.write_text(config.read_text().replace('type = "raises"', 'type = "nosuch"'))
    typo = syncd(env, "--config", str(config), "sync", "ab")
    assert typo.returncode == 2 and "connectors.x.type" in typo.stderr


def test_the_builtin_plugins_load_without_pytest() -> None:
    """A production install has no pytest: every built-in plugin (the memory one
    included, which lives in ``syncd.testing``) must load without it."""
    code = (
        "import sys; sys.modules['pytest'] = None\n"
        "from syncd.plugin.manager import load_registry\n"
        "registry = load_registry()\n"
        "assert not registry.failures, registry.failures\n"
        "assert 'memory' in registry.connectors\n"
        "from syncd.testing import MemoryConnector\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
