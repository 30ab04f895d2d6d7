"""The product end to end through the ``syncd`` command on real files and databases:
the demo configuration (SQLite CRM -> CSV accounting folder)."""

from __future__ import annotations

import csv
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cli_helpers import demo_copy, syncd
from syncd.config import load_config
from syncd.state import Store
from syncd.state.rows import now


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return demo_copy(tmp_path)


def customers(config: Path) -> list[dict[str, str]]:
    with (config.parent / "demo" / "books" / "customers.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def crm(config: Path) -> sqlite3.Connection:
    return sqlite3.connect(config.parent / "demo" / "crm.db")


def test_demo_sync_exports_binds_refuses_and_filters(demo: Path) -> None:
    result = syncd("sync", "crm-books", "--json", config=demo)
    assert result.code == 1, result.err  # one record is refused: exit 1 by contract
    run = result.json()
    assert run["status"] == "partial"
    assert run["counts"]["bound"] == 1 and run["counts"]["failed"] == 1
    rows = customers(demo)
    emails = sorted(r["Email"].strip().lower() for r in rows)
    assert emails == ["ann@acme.example", "bob.baker@globex.example", "cleo@initech.example"]
    bob = next(r for r in rows if r["CustomerId"] == "C-1001")
    assert bob["Balance"] == "120.50"  # an unknown column survives
    assert bob["Phone"] == "+44 20 7946 0001"  # the empty cell was filled
    ann = next(r for r in rows if r["Name"] == "Ann")
    assert ann["Company"] == "Acme Corporation"  # no company file: the reference is a name
    shown = syncd("show", str(run["run_id"]), "--json", config=demo).json()
    refused = [i for i in shown["items"] if i["outcome"] == "failed"]
    assert refused[0]["source_id"] == "4"
    assert "missing required field(s): email" in refused[0]["error"]


def test_second_run_carries_only_what_changed(demo: Path) -> None:
    syncd("sync", "crm-books", config=demo)
    books = demo.parent / "demo" / "books" / "customers.csv"
    before = books.stat().st_mtime_ns
    again = syncd("sync", "crm-books", "--json", config=demo)
    assert again.code == 0, again.err
    assert again.json()["counts"] == dict.fromkeys(again.json()["counts"], 0)
    assert books.stat().st_mtime_ns == before  # nothing changed: the file is not rewritten
    with crm(demo) as db:
        db.execute(
            "UPDATE contacts SET phone = '+1 555 9999', updated_at = datetime('now', '+1 minute')"
            " WHERE id = 3"
        )
    third = syncd("sync", "crm-books", "--json", config=demo).json()
    assert third["counts"]["updated"] == 1 and third["counts"]["created"] == 0
    cleo = next(r for r in customers(demo) if r["Name"] == "Cleo")
    assert cleo["Phone"] == "+1 555 9999"


def test_dry_run_writes_nothing(demo: Path) -> None:
    result = syncd("sync", "crm-books", "--dry-run", "--json", config=demo)
    assert result.json()["run_id"] is None
    assert {i["action"] for i in result.json()["items"]} >= {"create", "bind"}
    assert len(customers(demo)) == 1
    assert syncd("history", "--json", config=demo).json() == []


def test_history_status_and_bindings(demo: Path, tmp_path: Path) -> None:
    syncd("sync", "crm-books", config=demo)
    history = syncd("history", "crm-books", "--json", config=demo).json()
    assert [h["status"] for h in history] == ["partial"]
    status = syncd("status", "--json", config=demo).json()["pairs"][0]
    assert status["pair"] == "crm-books" and status["last_run"]["id"] == history[0]["id"]
    assert status["bindings"] == {"company": 0, "contact": 3} or status["bindings"]["contact"] == 3
    listed = syncd("bindings", "list", "crm-books", "--entity", "contact", "--json", config=demo)
    assert {b["left_id"] for b in listed.json()} == {"1", "2", "3"}
    assert syncd("bindings", "unlink", "crm-books", "contact", "--left", "2", config=demo).code == 0
    relink = syncd("bindings", "link", "crm-books", "contact", "2", "C-1001", config=demo)
    assert relink.code == 0, relink.err
    clash = syncd("bindings", "link", "crm-books", "contact", "5", "C-1001", config=demo)
    assert clash.code == 2 and "already bound" in clash.err
    pairs_file = tmp_path / "pairs.csv"
    pairs_file.write_text("left_id,right_id\n5,X-5\n", encoding="utf-8")
    imported = syncd("bindings", "import", "crm-books", "contact", str(pairs_file), config=demo)
    assert imported.code == 0 and "imported 1" in imported.out


def test_sync_record_pushes_one_record(demo: Path) -> None:
    syncd("sync", "crm-books", config=demo)
    path = demo.parent / "demo" / "books" / "customers.csv"
    text = path.read_text(encoding="utf-8").replace("+1 555 0101", "+1 000")
    path.write_text(text, encoding="utf-8")
    result = syncd("sync-record", "crm-books", "contact", "--left", "1", "--json", config=demo)
    assert result.code == 0, result.err
    ann = next(r for r in customers(demo) if r["Name"] == "Ann")
    assert ann["Phone"] == "+1 555 0101"
    wrong_side = syncd("sync-record", "crm-books", "contact", "--right", "C-1001", config=demo)
    assert wrong_side.code == 2 and "export" in wrong_side.err


def test_pause_and_resume_are_shown_in_status(demo: Path) -> None:
    assert syncd("pause", "crm-books", config=demo).code == 0
    assert syncd("status", "--json", config=demo).json()["pairs"][0]["paused"] is True
    assert syncd("resume", "--all", config=demo).code == 0
    assert syncd("status", "--json", config=demo).json()["pairs"][0]["paused"] is False


def test_status_shows_a_rate_limit_wait_while_it_lasts(
    demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 36: the wait a rate-limited system asked for is in ``syncd status``."""
    monkeypatch.setenv("COLUMNS", "200")
    assert syncd("sync", "crm-books", config=demo).code in (0, 1)
    assert syncd("status", "--json", config=demo).json()["pairs"][0]["not_before"] is None
    store = Store(load_config(demo).state_url)
    wait = (now() + timedelta(minutes=30)).replace(microsecond=0)
    try:
        store.set_not_before("crm-books", wait)
    finally:
        store.close()
    shown = syncd("status", "--json", config=demo).json()["pairs"][0]["not_before"]
    assert datetime.fromisoformat(shown).replace(tzinfo=UTC) == wait
    text = syncd("status", config=demo).out
    assert f"not before {wait.strftime('%Y-%m-%d %H:%M:%S')}" in text


def test_plugins_lists_builtin_connectors_with_their_package() -> None:
    listed = syncd("plugins", "--json").json()
    types = {c["type"]: c["package"] for c in listed["connectors"]}
    assert types["csv"] == "syncd" and types["sql"] == "syncd" and types["memory"] == "syncd"


def test_check_reaches_every_connector(demo: Path) -> None:
    result = syncd("check", "--json", config=demo)
    assert result.code == 0, result.out + result.err
    assert all(c["ok"] for c in result.json()["connectors"])
    (demo.parent / "demo" / "crm.db").unlink()
    broken = syncd("check", "--json", config=demo)
    assert broken.code == 1
    assert not next(c for c in broken.json()["connectors"] if c["connector"] == "crm")["ok"]


def test_a_broken_config_is_one_line_with_exit_2(demo: Path) -> None:
    demo.write_text(demo.read_text().replace('mode = "export"', 'mode = "both"'))
    result = syncd("sync", "crm-books", config=demo)
    assert result.code == 2
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    assert "pairs.crm-books.mode" in result.err and str(demo) in result.err


def test_unknown_pair_and_bad_usage_exit_2(demo: Path) -> None:
    unknown = syncd("sync", "nope", config=demo)
    assert unknown.code == 2 and "no pair named 'nope'" in unknown.err
    assert syncd("sync", config=demo).code == 2
    assert syncd("show", "999", config=demo).code == 2


def test_an_empty_configuration_is_refused_by_run_check_and_sync(tmp_path: Path) -> None:
    default_store = Path("/var/lib/syncd/state.db")
    existed = default_store.exists()
    config = tmp_path / "syncd.toml"
    config.write_text("")
    for command in (["check"], ["sync", "any"], ["run"]):
        result = syncd(*command, config=config, timeout=30)
        assert result.code == 2, (command, result.err)
        assert result.err.count("\n") == 1 and "no connectors configured" in result.err
    assert existed or not default_store.exists(), "an empty configuration created a store"


def test_check_says_which_state_store_it_would_use_and_creates_none(demo: Path) -> None:
    text = demo.read_text().replace("sqlite:///demo/state/state.db", "sqlite:///new/state.db")
    demo.write_text(text)
    store = demo.parent / "new" / "state.db"
    result = syncd("check", "--json", config=demo)
    assert result.code == 0, result.err
    state = result.json()["state"]
    assert state["ok"] and state["url"] == f"sqlite:///{store}"
    assert "does not exist yet" in state["detail"]
    assert not store.parent.exists()
    text_output = syncd("check", config=demo).out
    assert f"state store sqlite:///{store}: does not exist yet" in text_output
    assert syncd("sync", "crm-books", config=demo).code == 1  # the demo's refused contact
    assert "state store" in syncd("check", config=demo).out and store.exists()
    (demo.parent / "blocker").write_text("a file where a folder must be")
    demo.write_text(text.replace("sqlite:///new/state.db", "sqlite:///blocker/state.db"))
    blocked = syncd("check", "--json", config=demo)
    assert blocked.code == 1 and not blocked.json()["state"]["ok"]
    assert "is not a directory" in blocked.json()["state"]["detail"]
