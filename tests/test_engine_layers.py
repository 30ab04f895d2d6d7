"""The engine depends only on its ports: no module under syncd/engine/ imports the
configuration or the concrete state store (issue 18, docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import syncd.engine

ENGINE = Path(syncd.engine.__file__).parent

#: Modules the engine must not import. ``syncd.state`` itself re-exports the store;
#: the plain data in ``syncd.state.rows`` (and ``syncd.state.errors``) is allowed.
FORBIDDEN = ("syncd.config", "syncd.state.store")
FORBIDDEN_EXACT = ("syncd.state",)


def imported_modules(source: str) -> list[str]:
    """Every module an engine module's ``source`` imports, relative imports made
    absolute (a module directly under syncd/engine/, so one dot is syncd.engine)."""
    package = ["syncd", "engine"]
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append(module)
            # ``from syncd import config`` imports the module syncd.config
            found.extend(f"{module}.{alias.name}" for alias in node.names)
    return found


def forbidden(module: str) -> bool:
    """True when importing ``module`` brings the configuration or the store in."""
    if module in FORBIDDEN_EXACT:
        return True
    return any(module == name or module.startswith(name + ".") for name in FORBIDDEN)


def engine_modules() -> list[Path]:
    return sorted(ENGINE.rglob("*.py"))


@pytest.mark.parametrize("path", engine_modules(), ids=lambda p: p.name)
def test_engine_module_imports_neither_config_nor_store(path: Path) -> None:
    bad = [module for module in imported_modules(path.read_text()) if forbidden(module)]
    assert not bad, f"{path.name} imports {bad}: the engine must depend on its ports only"


def test_the_check_sees_every_way_of_importing() -> None:
    source = (
        "import syncd.config\n"
        "from syncd.state.store import Store\n"
        "from syncd.state import Store\n"
        "from syncd import config\n"
        "from .. import config\n"
        "from ..state.store import Store\n"
        "from syncd.state.rows import BindingRow\n"
        "from .ports import SyncState\n"
    )
    assert [m for m in imported_modules(source) if forbidden(m)] == [
        "syncd.config",
        "syncd.state.store",
        "syncd.state.store.Store",
        "syncd.state",
        "syncd.config",
        "syncd.config",
        "syncd.state.store",
        "syncd.state.store.Store",
    ]


def test_the_engine_has_modules_to_check() -> None:
    assert {p.name for p in engine_modules()} >= {"runner.py", "plan.py", "ports.py"}
