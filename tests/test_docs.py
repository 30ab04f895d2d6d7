"""The documentation is kept true by tests, as datasette keeps its own.

Every list checked here is derived from the code, never written out: the hooks of the
plugin contract, every configuration key of the daemon, of a pair and of each built-in
connector's settings (nested models included), every command and option of the
``syncd`` command line, and every rule number a test cites. Each check names what is
missing; each has a companion test that removes one item from the docs and sees the
check report it, so a check that could never fail would itself fail.
"""

from __future__ import annotations

import re
import tomllib
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main
from pydantic import BaseModel

from syncd.cli.app import app
from syncd.config import DaemonConfig, PairConfig, parse_config
from syncd.errors import UserError
from syncd.plugin.manager import default_registry, make_manager

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TESTS = ROOT / "tests"
CONFIGURATION = "docs/configuration.md"
PLUGINS = "docs/plugins.md"
RULES = "docs/rules.md"
#: the distribution whose connectors and transforms are built in
BUILT_IN = "syncd"

Pages = dict[str, str]

_ROW = re.compile(r"^\s*\|([^|\n\\]*(?:\\.[^|\n\\]*)*)\|", re.MULTILINE)
_CODE = re.compile(r"`([^`]+)`")
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$", re.MULTILINE)
_RULE_CITED = re.compile(r"\bRule (\d+)\b")
_RULE_HEADING = re.compile(r"^#{2,4}\s+Rule (\d+)\b", re.MULTILINE)


def read_pages() -> Pages:
    """The README and every page under docs/, by path relative to the repository."""
    pages = {"README.md": (ROOT / "README.md").read_text(encoding="utf-8")}
    for path in sorted(DOCS.rglob("*.md")):
        pages[path.relative_to(ROOT).as_posix()] = path.read_text(encoding="utf-8")
    return pages


def table_rows(text: str) -> Iterator[tuple[str, str]]:
    """(first cell, whole line) of every Markdown table row."""
    for match in _ROW.finditer(text):
        line_end = text.find("\n", match.start())
        line = text[match.start() : line_end if line_end >= 0 else len(text)]
        yield match.group(1), line


def documented_keys(text: str) -> set[str]:
    """Keys a page documents: names in backticks in the first cell of a table row."""
    return {code for cell, _line in table_rows(text) for code in _CODE.findall(cell)}


def sections(text: str) -> Iterator[tuple[str, str]]:
    """(heading, body up to the next heading of the same or a higher level)."""
    headings = list(_HEADING.finditer(text))
    for i, heading in enumerate(headings):
        level = len(heading.group(1))
        end = len(text)
        for later in headings[i + 1 :]:
            if len(later.group(1)) <= level:
                end = later.start()
                break
        yield heading.group(2), text[heading.end() : end]


# -- hooks ------------------------------------------------------------------------------


def hooks() -> dict[str, list[str]]:
    """Every hook of the plugin contract and the names of its arguments."""
    pm = make_manager()
    found = {}
    for name, caller in vars(pm.hook).items():
        spec = getattr(caller, "spec", None)
        if spec is not None:
            found[name] = list(spec.argnames)
    return found


def missing_hooks(pages: Pages) -> list[str]:
    """Hooks without a heading of their own in docs/plugins.md, or whose section does
    not name one of their arguments."""
    text = pages.get(PLUGINS, "")
    missing = []
    for name, args in sorted(hooks().items()):
        bodies = [body for heading, body in sections(text) if re.search(rf"\b{name}\b", heading)]
        if not bodies:
            missing.append(f"hook {name}: no heading in {PLUGINS}")
            continue
        missing += [
            f"hook {name}: argument {arg!r} not described in its section of {PLUGINS}"
            for arg in args
            if not any(re.search(rf"\b{arg}\b", body) for body in bodies)
        ]
    return missing


# -- configuration keys -----------------------------------------------------------------


def _models_in(annotation: object) -> Iterator[type[BaseModel]]:
    """The pydantic models an annotation holds (``dict[str, M]``, ``M | None``, ...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in typing.get_args(annotation):
        yield from _models_in(arg)


def model_keys(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(dotted path, key as written in TOML) of every field of ``model``, recursively
    into nested models (a mapping of models contributes ``NAME`` to the path)."""
    for name, info in model.model_fields.items():
        key = info.alias or name
        path = f"{prefix}{key}"
        yield path, key
        for nested in _models_in(info.annotation):
            mapping = typing.get_origin(info.annotation) in (dict, typing.Mapping)
            yield from model_keys(nested, f"{path}.NAME." if mapping else f"{path}.")


@dataclass(frozen=True)
class KeySource:
    """A configuration model and the pages that may document its keys."""

    label: str
    model: type[BaseModel]
    pages: tuple[str, ...]


def built_in_connectors() -> dict[str, type]:
    """Connector type -> class, for the connectors this distribution ships."""
    return {
        name: kind.cls
        for name, kind in default_registry().connectors.items()
        if kind.package == BUILT_IN
    }


def key_sources() -> list[KeySource]:
    """The daemon's, a pair's and every built-in connector's settings models."""
    sources = [
        KeySource("[daemon]", DaemonConfig, (CONFIGURATION,)),
        KeySource("[pairs.NAME]", PairConfig, (CONFIGURATION,)),
    ]
    for name, cls in sorted(built_in_connectors().items()):
        page = f"docs/connectors/{name}.md"
        sources.append(KeySource(f"connector {name}", cls.Settings, (page, CONFIGURATION)))
    return sources


def missing_keys(pages: Pages) -> list[str]:
    """Configuration keys that no table of their pages documents."""
    missing = []
    for source in key_sources():
        documented = set().union(*(documented_keys(pages.get(p, "")) for p in source.pages))
        missing += [
            f"{source.label}: key {path!r} not documented in {' or '.join(source.pages)}"
            for path, key in model_keys(source.model)
            if key not in documented
        ]
    return missing


def missing_connector_pages(pages: Pages) -> list[str]:
    """Built-in connector types without a page of their own."""
    return [
        f"connector {name}: no page docs/connectors/{name}.md"
        for name in sorted(built_in_connectors())
        if f"docs/connectors/{name}.md" not in pages
    ]


def built_in_transforms() -> list[str]:
    """Names of the field transforms this distribution ships."""
    return sorted(
        name for name, kind in default_registry().transforms.items() if kind.package == BUILT_IN
    )


def missing_transforms(pages: Pages) -> list[str]:
    """Built-in transforms that the configuration page's tables do not document."""
    documented = documented_keys(pages.get(CONFIGURATION, ""))
    return [
        f"transform {name!r} not documented in {CONFIGURATION}"
        for name in built_in_transforms()
        if not any(re.match(rf"{re.escape(name)}(?![\w-])", code) for code in documented)
    ]


# -- the command line -------------------------------------------------------------------


def commands() -> dict[str, Any]:
    """Every visible command and sub-command of ``syncd``, by its path (``bindings
    list``); groups are included, their sub-commands follow. (Typer's commands are
    click's, vendored by newer typer releases: they are walked by their attributes.)"""
    found: dict[str, Any] = {}

    def walk(group: Any, prefix: str) -> None:
        for name, command in group.commands.items():
            if command.hidden:
                continue
            path = f"{prefix}{name}"
            found[path] = command
            if _is_group(command):
                walk(command, f"{path} ")

    walk(typer.main.get_command(app), "")
    return found


def _is_group(command: Any) -> bool:
    return isinstance(getattr(command, "commands", None), dict)


def _options(command: Any) -> list[Any]:
    """The visible options of a command (not its arguments)."""
    return [p for p in command.params if p.param_type_name == "option" and not p.hidden]


def global_options() -> list[str]:
    """The long options of ``syncd`` itself (given before or after a command)."""
    return [_long(p) for p in _options(typer.main.get_command(app))]


def _long(option: Any) -> str:
    return max(option.opts, key=len)


def command_rows(pages: Pages) -> dict[str, list[str]]:
    """Command path -> the table rows that document it: a row whose first cell holds
    `` `syncd PATH ...` `` (words up to the first argument or option)."""
    rows: dict[str, list[str]] = {}
    for text in pages.values():
        for cell, line in table_rows(text):
            for code in _CODE.findall(cell):
                words = code.split()
                if not words or words[0] != "syncd":
                    continue
                path = []
                for word in words[1:]:
                    if not re.fullmatch(r"[a-z][a-z0-9-]*", word):
                        break
                    path.append(word)
                rows.setdefault(" ".join(path), []).append(line)
    return rows


def missing_commands(pages: Pages) -> list[str]:
    """Commands without a row in a command table (a group counts as documented when
    its sub-commands are), and options missing from their command's row."""
    rows = command_rows(pages)
    everywhere = "\n".join(pages.values())
    missing = [
        f"global option {option} of syncd not documented"
        for option in global_options()
        if not re.search(rf"`[^`]*{re.escape(option)}\b", everywhere)
    ]
    shared = set(global_options())
    for path, command in sorted(commands().items()):
        if _is_group(command):
            continue
        if path not in rows:
            missing.append(f"command 'syncd {path}' has no row in the README's command table")
            continue
        for param in _options(command):
            option = _long(param)
            if option in shared:
                continue
            if not any(re.search(rf"{re.escape(option)}\b", line) for line in rows[path]):
                missing.append(f"command 'syncd {path}': option {option} not in its row")
    return missing


# -- rules ------------------------------------------------------------------------------


def cited_rules() -> dict[int, list[str]]:
    """Rule number -> the test files that cite it as "Rule N"."""
    cited: dict[int, list[str]] = {}
    for path in sorted(TESTS.glob("*.py")):
        if path.name == Path(__file__).name:
            continue
        for number in set(_RULE_CITED.findall(path.read_text(encoding="utf-8"))):
            cited.setdefault(int(number), []).append(path.name)
    return cited


def documented_rules(pages: Pages) -> list[int]:
    """The rule numbers of docs/rules.md's headings, in the order they appear."""
    return [int(n) for n in _RULE_HEADING.findall(pages.get(RULES, ""))]


def missing_rules(pages: Pages) -> list[str]:
    """Rules cited by a test with no heading in docs/rules.md."""
    documented = set(documented_rules(pages))
    return [
        f"Rule {number} (cited in {', '.join(files)}) has no heading in {RULES}"
        for number, files in sorted(cited_rules().items())
        if number not in documented
    ]


# -- the checks -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pages() -> Pages:
    return read_pages()


def _report(missing: list[str]) -> str:
    return "missing from the docs:\n  " + "\n  ".join(missing)


def test_every_hook_is_documented(pages: Pages) -> None:
    missing = missing_hooks(pages)
    assert not missing, _report(missing)


def test_every_configuration_key_is_documented(pages: Pages) -> None:
    missing = missing_connector_pages(pages) + missing_keys(pages) + missing_transforms(pages)
    assert not missing, _report(missing)


def test_every_command_and_option_is_documented(pages: Pages) -> None:
    missing = missing_commands(pages)
    assert not missing, _report(missing)


def test_every_cited_rule_is_documented(pages: Pages) -> None:
    missing = missing_rules(pages)
    assert not missing, _report(missing)


def test_rules_are_numbered_once_in_order(pages: Pages) -> None:
    numbers = documented_rules(pages)
    assert numbers == list(range(1, len(numbers) + 1)), f"{RULES}: rule headings {numbers}"


def test_readme_stays_a_landing_page(pages: Pages) -> None:
    lines = pages["README.md"].count("\n")
    assert lines <= 250, f"README.md has {lines} lines: move reference text to docs/"


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped,
    spaces as hyphens."""
    return {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        for _level, heading in _HEADING.findall(_without_code(text))
    }


def _without_code(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)


def test_links_between_pages_resolve(pages: Pages) -> None:
    broken = []
    for page, text in pages.items():
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", text):
            if "://" in target or target.startswith("mailto:"):
                continue
            path = (ROOT / page).parent.joinpath(target) if target else ROOT / page
            if not path.exists():
                broken.append(f"{page}: link to {target}")
            elif anchor and path.suffix == ".md" and anchor not in anchors(path.read_text()):
                broken.append(f"{page}: link to {target}#{anchor}: no such heading")
    assert not broken, "broken links:\n  " + "\n  ".join(broken)


# -- examples ---------------------------------------------------------------------------

_TOML_BLOCK = re.compile(r"^```toml\n(.*?)^```", re.MULTILINE | re.DOTALL)


def complete_examples(pages: Pages) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(page, number, parsed TOML) of every example that is a configuration on its
    own: each connector names its type and each pair its sides (fragments that only
    show a few keys are left out)."""
    for page, text in pages.items():
        for number, block in enumerate(_TOML_BLOCK.findall(text), 1):
            data = tomllib.loads(block)
            connectors = data.get("connectors", {})
            pairs = data.get("pairs", {})
            if not connectors:
                continue
            if all("type" in c for c in connectors.values()) and all(
                "left" in p for p in pairs.values()
            ):
                yield page, number, data


def test_configuration_examples_are_valid(
    pages: Pages, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every complete configuration example in the docs loads, with its secrets
    provided as it says (environment variables, files, systemd credentials)."""
    examples = list(complete_examples(pages))
    assert any(page == "README.md" for page, _n, _d in examples), "README: no example"
    (tmp_path / "credentials").mkdir()
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "credentials"))
    bad = []
    for page, number, data in examples:
        text = repr(data)
        for name in re.findall(r"\{'env': '([^']+)'\}", text):
            monkeypatch.setenv(name, "sqlite:///secret.db")
        for name in re.findall(r"\{'credential': '([^']+)'\}", text):
            (tmp_path / "credentials" / name).write_text("secret", encoding="utf-8")
        for name in re.findall(r"\{'file': '([^']+)'\}", text):
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text("sqlite:///secret.db", encoding="utf-8")
        try:
            parse_config(data, tmp_path / "syncd.toml", default_registry())
        except UserError as exc:
            bad.append(f"{page}, TOML example {number}: {exc}")
    assert not bad, "invalid configuration examples:\n  " + "\n  ".join(bad)


# -- the checks can fail ----------------------------------------------------------------


def _without_lines(pages: Pages, pattern: str) -> Pages:
    """The pages with every line matching ``pattern`` removed."""
    line = re.compile(rf"^.*{pattern}.*\n?", re.MULTILINE)
    return {page: line.sub("", text) for page, text in pages.items()}


def test_a_hook_removed_from_the_docs_is_reported(pages: Pages) -> None:
    name = sorted(hooks())[-1]
    cut = _without_lines(pages, rf"^#+ .*\b{name}\b")
    assert any(f"hook {name}:" in m for m in missing_hooks(cut))


@pytest.mark.parametrize("which", ["first", "nested"])
def test_a_key_removed_from_the_docs_is_reported(pages: Pages, which: str) -> None:
    sources = key_sources()
    if which == "first":
        source, (path, key) = sources[0], next(model_keys(sources[0].model))
    else:
        source, path, key = next(
            (s, p, k) for s in sources for p, k in model_keys(s.model) if ".NAME." in p
        )
    cut = _without_lines(pages, rf"^\s*\|[^|]*`{re.escape(key)}`")
    assert f"{source.label}: key {path!r}" in "\n".join(missing_keys(cut))


def test_a_transform_removed_from_the_docs_is_reported(pages: Pages) -> None:
    name = built_in_transforms()[0]
    cut = _without_lines(pages, rf"^\s*\|[^|]*`{re.escape(name)}(?![\w-])")
    assert f"transform {name!r}" in "\n".join(missing_transforms(cut))


def test_a_connector_page_removed_is_reported(pages: Pages) -> None:
    name = sorted(built_in_connectors())[0]
    cut = {p: t for p, t in pages.items() if p != f"docs/connectors/{name}.md"}
    assert f"connector {name}: no page" in "\n".join(missing_connector_pages(cut))


def test_a_command_removed_from_the_docs_is_reported(pages: Pages) -> None:
    path = sorted(p for p, c in commands().items() if not _is_group(c))[-1]
    cut = _without_lines(pages, rf"^\s*\|[^|]*`syncd {re.escape(path)}\b")
    assert f"command 'syncd {path}' has no row" in "\n".join(missing_commands(cut))


def test_an_option_removed_from_the_docs_is_reported(pages: Pages) -> None:
    shared = set(global_options())
    path, option = next(
        (path, _long(p))
        for path, command in sorted(commands().items())
        for p in _options(command)
        if _long(p) not in shared
    )
    rows = command_rows(pages)[path]
    cut = {
        page: "\n".join(
            line.replace(option, "") if line in rows else line for line in text.split("\n")
        )
        for page, text in pages.items()
    }
    assert f"command 'syncd {path}': option {option}" in "\n".join(missing_commands(cut))


def test_a_rule_removed_from_the_docs_is_reported(pages: Pages) -> None:
    number = max(cited_rules())
    cut = _without_lines(pages, rf"^#+\s+Rule {number}\b")
    assert f"Rule {number} " in "\n".join(missing_rules(cut))
