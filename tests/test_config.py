"""Configuration: every mistake is one line naming the file and the key or line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from syncd.config import ConfigError, load_config, parse_duration

GOOD = """
[daemon]
state = "sqlite:///state/state.db"

[connectors.a]
type = "memory"

[connectors.b]
type = "memory"

[pairs.ab]
left = "a"
right = "b"
mode = "export"
every = "15m"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "syncd.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path / "syncd.toml") in message
    return message


def test_a_valid_file_loads_and_relative_state_is_beside_it(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.pairs["ab"].interval_seconds == 900
    assert config.state_url == f"sqlite:///{tmp_path / 'state' / 'state.db'}"


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD + "broken =\n")
    assert "(at line 16" in message


def test_unknown_key_in_a_pair_is_named(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD + 'colour = "blue"\n')
    assert "pairs.ab.colour: unknown key" in message


def test_bad_mode_is_named_with_the_choices(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD.replace('mode = "export"', 'mode = "sideways"'))
    assert "pairs.ab.mode" in message and "two-way" in message


def test_unknown_connector_type_lists_known_types(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        GOOD.replace('type = "memory"\n\n[connectors.b]', 'type = "nope"\n\n[connectors.b]'),
    )
    assert "connectors.a.type: unknown connector type 'nope'" in message
    assert "memory" in message


def test_connector_settings_are_validated_by_the_connector(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        GOOD.replace(
            '[connectors.b]\ntype = "memory"', '[connectors.b]\ntype = "memory"\npage_size = "many"'
        ),
    )
    assert "connectors.b.page_size" in message


def test_pair_naming_a_missing_connector(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD.replace('right = "b"', 'right = "c"'))
    assert "pairs.ab.right: no connector named 'c'" in message


def test_schedule_is_validated(tmp_path: Path) -> None:
    assert "pairs.ab.every" in error_of(tmp_path, GOOD.replace('"15m"', '"soon"'))
    message = error_of(tmp_path, GOOD.replace('every = "15m"', 'cron = "61 * * * *"'))
    assert "pairs.ab.cron" in message


def test_entities_must_be_in_dependency_order(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD + 'entities = ["contact", "company"]\n')
    assert "pairs.ab.entities" in message and "companies must come before contacts" in message


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "absent.toml")


def test_durations() -> None:
    assert parse_duration("90s") == 90
    assert parse_duration("2h30m") == 9000
    assert parse_duration("1d") == 86400
    with pytest.raises(ValueError):
        parse_duration("5 minutes")


def test_full_cron_is_a_second_schedule_and_validated(tmp_path: Path) -> None:
    text = GOOD.replace('every = "15m"', 'every = "15m"\nfull_cron = "0 2 * * *"')
    pair = load_config(write(tmp_path, text)).pair("ab")
    assert pair.schedule_text == "every 15m, full: cron 0 2 * * *"
    from syncd.daemon.scheduler import pair_triggers

    jobs = pair_triggers(pair)
    assert [full for _, full in jobs.values()] == [False, True]
    bad = GOOD.replace('every = "15m"', 'full_cron = "0 25 * * *"')
    assert "pairs.ab.full_cron" in error_of(tmp_path, bad)


SQL = """
[daemon]
state = "sqlite:///state.db"

[connectors.a]
type = "sql"
url = { credential = "crm-url" }
  [connectors.a.entities.contact]
  table = "contacts"

[connectors.b]
type = "memory"

[pairs.ab]
left = "a"
right = "b"
"""


def test_a_secret_from_a_systemd_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert "LoadCredential" in error_of(tmp_path, SQL)
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "crm-url").write_text("sqlite:///crm.db\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    url = load_config(write(tmp_path, SQL)).connectors["a"].settings.url
    assert url.get_secret_value() == "sqlite:///crm.db" and "crm.db" not in repr(url)


# -- broken files -------------------------------------------------------------------


def test_a_file_that_is_not_utf8_names_the_byte_offset_and_line(tmp_path: Path) -> None:
    path = tmp_path / "syncd.toml"
    path.write_bytes(GOOD.encode() + b"# caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    offset, line = len(GOOD.encode()) + 5, GOOD.count("\n") + 1
    assert message.startswith(f"{path}: not UTF-8 text: byte 0xe9 at offset {offset} (line {line})")
    assert "\n" not in message


def test_a_directory_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "syncd.toml").mkdir()
    with pytest.raises(ConfigError, match=r"syncd\.toml: is a directory"):
        load_config(tmp_path / "syncd.toml")


# -- daemon.state -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("not a url", "not a database URL"),
        ("sqlite//x.db", "not a database URL"),
        ("oracle+nope://u@h/db", "unknown database type 'oracle+nope'"),
        ("foo://x/y", "unknown database type 'foo'"),
        (
            "postgresql+psycopg2://u@h/db",
            "use postgresql+psycopg:// (pip install 'syncd[postgres]')",
        ),
        ("mysql+mysqldb://u@h/db", "use mysql+pymysql:// (pip install 'syncd[mysql]')"),
        ("postgresql+asyncpg://u@h/db", "asyncio driver"),
    ],
)
def test_a_state_url_that_cannot_work_is_an_error_naming_daemon_state(
    tmp_path: Path, url: str, reason: str
) -> None:
    message = error_of(tmp_path, GOOD.replace("sqlite:///state/state.db", url))
    assert "syncd.toml: daemon.state: " in message and reason in message


def test_a_missing_driver_names_the_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if syncd[postgres] were absent
    url = "postgresql+psycopg://syncd@127.0.0.1/syncd"
    message = error_of(tmp_path, GOOD.replace("sqlite:///state/state.db", url))
    assert "daemon.state: the database driver for postgresql+psycopg is not installed" in message
    assert "pip install 'syncd[postgres]'" in message


def test_postgres_urls_are_read_as_postgresql_with_psycopg(tmp_path: Path) -> None:
    url = "postgres://syncd:pw@127.0.0.1:5432/syncd"
    config = load_config(write(tmp_path, GOOD.replace("sqlite:///state/state.db", url)))
    assert config.state_url == "postgresql+psycopg://syncd:pw@127.0.0.1:5432/syncd"
    assert config.state_shown == "postgresql+psycopg://syncd:***@127.0.0.1:5432/syncd"


def test_the_state_store_url_may_be_a_secret_read_only_when_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "state-url").write_text("sqlite:///from-file.db\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "state").write_text("sqlite:///from-credential.db")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    monkeypatch.delenv("SYNCD_STATE", raising=False)
    forms = {
        '{ env = "SYNCD_STATE" }': "from-env.db",
        '{ file = "state-url" }': "from-file.db",
        '{ credential = "state" }': "from-credential.db",
    }
    for spec, name in forms.items():
        text = GOOD.replace('"sqlite:///state/state.db"', spec)
        config = load_config(write(tmp_path, text))  # nothing is read yet
        if "env" in spec:
            with pytest.raises(
                ConfigError, match=r"daemon\.state: environment variable SYNCD_STATE"
            ):
                _ = config.state_url
            monkeypatch.setenv("SYNCD_STATE", "sqlite:///from-env.db")
        assert config.state_url == f"sqlite:///{tmp_path / name}"


def test_a_state_secret_of_another_shape_is_refused(tmp_path: Path) -> None:
    text = GOOD.replace('"sqlite:///state/state.db"', '{ vault = "x" }')
    assert "daemon.state" in error_of(tmp_path, text)


def test_without_connectors_or_pairs_there_is_nothing_to_run(tmp_path: Path) -> None:
    empty = load_config(write(tmp_path, ""))
    with pytest.raises(ConfigError, match="no connectors configured"):
        empty.require_pairs()
    no_pairs = load_config(write(tmp_path, GOOD.split("[pairs.ab]")[0]))
    with pytest.raises(ConfigError, match=r"no pairs configured \(add a \[pairs.NAME\] table"):
        no_pairs.require_pairs()
    load_config(write(tmp_path, GOOD)).require_pairs()
