"""The systemd unit: checked by ``systemd-analyze verify`` where it exists.

``verify`` reports many mistakes ("Unknown key ..., ignoring") on stderr and still
exits 0, so any output at all fails the test.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import ROOT

UNIT = ROOT / "systemd" / "syncd.service"


def verify(unit_text: str, folder: Path) -> subprocess.CompletedProcess[str]:
    unit = folder / "syncd.service"
    # the unit names the installed command; point it at this environment's
    unit.write_text(
        unit_text.replace("/opt/syncd/bin/syncd", str(Path(sys.executable).parent / "syncd"))
    )
    return subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def analyze() -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")


@pytest.mark.usefixtures("analyze")
def test_the_unit_verifies_without_a_single_complaint(tmp_path: Path) -> None:
    done = verify(UNIT.read_text(), tmp_path)
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), done.stderr


@pytest.mark.usefixtures("analyze")
def test_the_check_catches_a_misspelt_key(tmp_path: Path) -> None:
    done = verify(UNIT.read_text().replace("ProtectClock=", "ProtectClok="), tmp_path)
    assert "ProtectClok" in done.stderr  # verify still exits 0 here: output is the signal


def test_the_unit_is_what_the_readme_promises() -> None:
    text = UNIT.read_text()
    for line in (
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "WatchdogSec=",
        "StateDirectory=syncd",
        "ConfigurationDirectory=syncd",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "User=syncd",
    ):
        assert line in text, line
