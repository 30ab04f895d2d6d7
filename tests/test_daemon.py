"""The daemon end to end: real ``syncd run`` processes on the demo configuration with
one-second schedules, controlled through the real CLI and signals, observed through
the state store, its log and a real NOTIFY_SOCKET."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cli_helpers import SYNCD, demo_copy, syncd
from syncd.config import load_config
from syncd.state import Store

SECRET = "s3cr3t-Pa55word"


class Daemon:
    """A ``syncd run`` process and what it logged."""

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.log_path = config.parent / "daemon.log"
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [SYNCD, "--config", str(config), "run"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        self.store = Store(load_config(config).state_url)

    def text(self) -> str:
        return self.log_path.read_text()

    def runs(self, pair: str = "crm-books", trigger: str | None = None) -> list[dict[str, Any]]:
        runs = self.store.runs(pair, 1000)
        return [r for r in runs if trigger is None or r["trigger"] == trigger]

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=20)
        self.log.close()
        self.store.close()
        return code


def until(check: Callable[[], Any], timeout: float = 15, what: str = "condition") -> Any:
    """Poll ``check`` until it is truthy (bounded wait)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    config = demo_copy(tmp_path)
    config.write_text(config.read_text().replace('every = "20s"', 'every = "1s"'))
    return config


@pytest.fixture
def daemon(demo: Path) -> Iterator[Daemon]:
    d = Daemon(demo)
    yield d
    if d.proc.poll() is None:
        d.proc.kill()
        d.proc.wait()


def test_scheduled_runs_pause_resume_trigger_and_clean_stop(daemon: Daemon, demo: Path) -> None:
    until(lambda: len(daemon.runs(trigger="schedule")) >= 2, what="two scheduled runs")
    shown = syncd("status", "--json", config=demo).json()
    assert shown["daemon"]["alive"] and shown["daemon"]["pid"] == daemon.proc.pid
    (pair,) = shown["pairs"]
    assert pair["schedule"] == "every 1s" and pair["next_run"] and not pair["paused"]

    assert syncd("pause", "crm-books", config=demo).code == 0
    time.sleep(1.5)  # a run that was already going finishes
    paused_at = len(daemon.runs())
    time.sleep(3.5)  # several intervals
    assert len(daemon.runs()) == paused_at, "a paused pair ran"
    assert '"reason": "paused"' in daemon.text()

    assert syncd("resume", "crm-books", config=demo).code == 0
    until(lambda: len(daemon.runs()) > paused_at, what="a run after resume")

    waited = syncd("trigger", "crm-books", "--wait", config=demo)
    assert waited.code == 0, waited.err
    assert waited.out.startswith("run ") and "of crm-books: ok" in waited.out
    assert daemon.runs(trigger="trigger")

    assert daemon.stop() == 0
    after = Store(load_config(demo).state_url)
    assert after.daemons(60) == []  # the heartbeat is removed on the way out
    assert not [r for r in after.runs("crm-books", 1000) if r["status"] == "running"]
    after.close()
    assert "daemon.stop" in daemon.text()


def test_trigger_without_a_daemon_exits_3_and_suggests_sync(demo: Path) -> None:
    done = syncd("trigger", "crm-books", config=demo)
    assert done.code == 3
    assert "syncd sync crm-books" in done.err and "Traceback" not in done.err


def test_trigger_wait_exits_with_the_runs_exit_code(demo: Path) -> None:
    # no schedule: the pair runs only when asked
    demo.write_text(re.sub(r"(?m)^every = .*\n", "", demo.read_text()))
    daemon = Daemon(demo)
    try:
        until(lambda: daemon.store.daemons(5), what="the daemon's heartbeat")
        first = syncd("trigger", "crm-books", "--wait", config=demo)
        # the demo has a contact without the required e-mail: the run is partial
        assert first.code == 1 and ": partial: " in first.out
        again = syncd("trigger", "crm-books", "--wait", "--json", config=demo)
        assert again.code == 0 and again.json()["status"] == "ok"
        assert [r["trigger"] for r in daemon.runs()] == ["trigger", "trigger"]
    finally:
        assert daemon.stop() == 0


def test_sighup_reloads_and_refuses_a_broken_configuration(daemon: Daemon, demo: Path) -> None:
    until(lambda: daemon.runs(), what="a first run")
    good = demo.read_text()
    extra = good.replace("[pairs.crm-books]", "[pairs.crm-books2]").split("[pairs.crm-books2]")
    demo.write_text(good + "\n[pairs.crm-copy]" + extra[1].replace("crm-books.", "crm-copy."))
    daemon.signal(signal.SIGHUP)
    until(lambda: daemon.runs("crm-copy"), what="a run of the added pair")
    assert '"event": "config.reloaded"' in daemon.text()

    demo.write_text(good.replace('mode = "export"', 'mode = "sideways"'))
    daemon.signal(signal.SIGHUP)
    until(lambda: "config.reload_refused" in daemon.text(), what="the refusal")
    assert "pairs.crm-books.mode" in daemon.text()
    # the previous configuration stays in force: both pairs keep running
    counts = len(daemon.runs("crm-copy")), len(daemon.runs())
    until(
        lambda: len(daemon.runs("crm-copy")) > counts[0] and len(daemon.runs()) > counts[1],
        what="runs after the refused reload",
    )
    assert daemon.proc.poll() is None
    assert daemon.stop() == 0


BROKEN_FILES: dict[str, Callable[[Path, str], None]] = {
    "not UTF-8": lambda path, good: path.write_bytes(good.encode() + b"# caf\xe9\n"),
    "not TOML": lambda path, good: path.write_text(good + "broken =\n"),
    "empty": lambda path, good: path.write_text(""),
    "a directory": lambda path, good: (path.unlink(), path.mkdir()),
}


def test_a_file_that_is_not_utf8_at_start_is_one_line_and_exit_2(demo: Path) -> None:
    BROKEN_FILES["not UTF-8"](demo, demo.read_text())
    done = syncd("run", config=demo, timeout=30)
    assert done.code == 2, done.err
    assert done.err.count("\n") == 1 and "internal" not in done.err
    assert f"{demo}: not UTF-8 text: byte 0xe9 at offset" in done.err


def test_sighup_refuses_every_kind_of_broken_file_and_keeps_running(
    daemon: Daemon, demo: Path
) -> None:
    until(lambda: daemon.runs(), what="a first run")
    good = demo.read_text()
    for number, (broken, make) in enumerate(sorted(BROKEN_FILES.items()), 1):
        make(demo, good)
        daemon.signal(signal.SIGHUP)
        until(
            lambda n=number: daemon.text().count("config.reload_refused") >= n,
            what=f"the refusal of a file that is {broken}",
        )
        assert daemon.proc.poll() is None, f"the daemon stopped on a file that is {broken}"
        if demo.is_dir():
            demo.rmdir()
        demo.write_text(good)
    refused = [line for line in daemon.text().splitlines() if "config.reload_refused" in line]
    assert "not UTF-8 text" in refused[sorted(BROKEN_FILES).index("not UTF-8")]
    assert "no connectors configured" in refused[sorted(BROKEN_FILES).index("empty")]
    # the old configuration stayed in force all along, and a good file is taken again
    count = len(daemon.runs())
    until(lambda: len(daemon.runs()) > count, what="runs after the refused reloads")
    demo.write_text(good.replace('every = "1s"', 'every = "2s"'))
    daemon.signal(signal.SIGHUP)
    until(lambda: "config.reloaded" in daemon.text(), what="the reload of a good file")
    assert daemon.stop() == 0


def test_a_dead_connector_fails_its_runs_not_the_daemon_and_no_secret_is_logged(
    demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = demo.read_text()
    text = text.replace('url = "sqlite:///demo/crm.db"', 'url = { env = "CRM_URL" }')
    demo.write_text(text)
    monkeypatch.setenv("CRM_URL", f"postgresql+psycopg://syncd:{SECRET}@127.0.0.1:1/crm")
    daemon = Daemon(demo)
    try:
        until(lambda: len(daemon.runs()) >= 2, what="two failed runs")
        runs = daemon.runs()
        assert all(r["status"] == "failed" for r in runs)
        assert runs[0]["error"] and "UnavailableError" in runs[0]["error"]
        assert daemon.proc.poll() is None
    finally:
        assert daemon.stop() == 0
    assert SECRET not in daemon.text()
    assert all(SECRET not in (r["error"] or "") for r in daemon.runs())


def test_systemd_notify_ready_and_stopping(demo: Path, tmp_path: Path) -> None:
    address = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(address)
    listener.settimeout(15)
    daemon = Daemon(demo, env={"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "1000000"})
    try:
        messages: list[str] = []

        def received(word: str) -> bool:
            while not any(word in m for m in messages):
                messages.append(listener.recv(4096).decode())
            return True

        received("READY=1")
        assert f"MAINPID={daemon.proc.pid}" in messages[0]
        received("WATCHDOG=1")
        daemon.signal(signal.SIGTERM)
        received("STOPPING=1")
    finally:
        assert daemon.stop() == 0
        listener.close()
