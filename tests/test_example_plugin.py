"""The example third-party connector in ``examples/syncd-example-connector``, installed
the way a user installs a plugin (pip, entry point in group ``syncd``), found by the
real ``syncd`` command, used by a pair, and passing the conformance suite.

pip installs it into a folder of its own (``--target``, offline, no dependencies:
syncd itself is already installed), which the commands get on ``PYTHONPATH``: the
entry point is found from the installed package's metadata, as for any plugin.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import ROOT, SYNCD

EXAMPLE = ROOT / "examples" / "syncd-example-connector"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a process that has the example package installed."""
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(EXAMPLE),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TMPDIR": str(build)},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (target / "syncd_jsonfile").is_dir()
    return {**os.environ, "PYTHONPATH": str(target)}


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SYNCD, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_syncd_plugins_lists_the_installed_connector(installed: dict[str, str]) -> None:
    done = run(installed, "plugins", "--json")
    assert done.returncode == 0, done.stderr
    listed = {t["type"]: t for t in json.loads(done.stdout)["connectors"]}
    assert listed["jsonfile"]["package"] == "syncd-example-connector"
    assert listed["jsonfile"]["version"] == "0.1.0"
    assert {"csv", "sql", "memory"} <= set(listed)


def test_a_pair_using_it_syncs(installed: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "books").mkdir()
    (tmp_path / "books" / "contacts.csv").write_text(
        "Id,Email,Name\r\n1,ann@example.com,Ann\r\n2,bob@example.com,Bob\r\n"
    )
    (tmp_path / "json").mkdir()
    config = tmp_path / "syncd.toml"
    config.write_text(
        """
[daemon]
state = "sqlite:///state.db"

[connectors.books]
type = "csv"
path = "books"
  [connectors.books.entities.contact]
  file = "contacts.csv"
  id = "Id"
  [connectors.books.entities.contact.fields]
  email = "Email"
  first_name = "Name"

[connectors.store]
type = "jsonfile"
path = "json"

[pairs.books-json]
left = "books"
right = "store"
mode = "two-way"
entities = ["contact"]
"""
    )
    done = run(installed, "--config", str(config), "sync", "books-json", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["counts"]["created"] == 2
    saved = json.loads((tmp_path / "json" / "contact.json").read_text())
    assert sorted(r["email"] for r in saved["records"].values()) == [
        "ann@example.com",
        "bob@example.com",
    ]
    again = run(installed, "--config", str(config), "sync", "books-json", "--json")
    assert json.loads(again.stdout)["counts"]["updated"] == 0


def test_the_example_passes_the_conformance_suite(installed: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
        capture_output=True,
        text=True,
        env=installed,
        timeout=300,
        check=False,
        cwd=EXAMPLE,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout and "failed" not in done.stdout
