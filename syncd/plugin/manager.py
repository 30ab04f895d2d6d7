"""The plugin manager: loads every module in the ``syncd`` entry-point group.

Built-in connectors are registered through the same entry-point group as third-party
ones, so the path a plugin author takes is the one syncd itself uses. A plugin that
fails to import or to register is recorded with its reason instead of taking the rest
of syncd down.
"""

from __future__ import annotations

import importlib.metadata as md
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from types import ModuleType
from typing import cast

import pluggy

from syncd.plugin import hookspecs
from syncd.plugin.connector import Connector
from syncd.plugin.transforms import Transform

GROUP = "syncd"


@dataclass(frozen=True, slots=True)
class ConnectorType:
    """A connector type and where it comes from."""

    name: str
    cls: type[Connector]
    plugin: str
    package: str
    version: str


@dataclass(frozen=True, slots=True)
class TransformType:
    """A field transform and where it comes from."""

    transform: Transform
    plugin: str
    package: str
    version: str


@dataclass(frozen=True, slots=True)
class PluginFailure:
    """A plugin that could not be loaded, and why."""

    plugin: str
    package: str
    reason: str


@dataclass
class Registry:
    """Every connector type found, and every plugin that failed to load."""

    connectors: dict[str, ConnectorType] = field(default_factory=dict)
    transforms: dict[str, TransformType] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)

    def broken(self, type_name: str) -> PluginFailure | None:
        """The failure of the plugin that would have provided ``type_name``, if any
        (plugins are named after the type they provide, as entry points)."""
        return next((f for f in self.failures if f.plugin == type_name), None)

    def connector(self, type_name: str) -> ConnectorType:
        """Look a connector type up; the KeyError names the types that exist."""
        try:
            return self.connectors[type_name]
        except KeyError:
            failed = [f for f in self.failures if f.plugin == type_name]
            if failed:
                raise KeyError(
                    f"connector type {type_name!r} is unavailable: plugin {failed[0].plugin}"
                    f" ({failed[0].package}) failed to load: {failed[0].reason}"
                ) from None
            known = ", ".join(sorted(self.connectors)) or "none"
            raise KeyError(f"unknown connector type {type_name!r} (known: {known})") from None


def make_manager() -> pluggy.PluginManager:
    """A plugin manager that knows syncd's hook specifications."""
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    return pm


def _dist_of(ep: md.EntryPoint) -> tuple[str, str]:
    dist = ep.dist
    if dist is None:
        return "unknown", ""
    return dist.metadata["Name"] or "unknown", dist.version or ""


def _register(pm: pluggy.PluginManager, name: str, module: ModuleType) -> None:
    needed = getattr(module, "SYNCD_API", None)
    if needed is not None and (not isinstance(needed, int) or needed > hookspecs.API_VERSION):
        raise IncompatiblePlugin(
            f"needs syncd plugin API {needed!r}, this syncd provides "
            f"{hookspecs.API_VERSION}: upgrade syncd or use an older release of the plugin"
        )
    pm.register(module, name=name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError:
        pm.unregister(module)
        raise


def load_registry(extra: dict[str, ModuleType] | None = None) -> Registry:
    """Load every plugin of the entry-point group (plus ``extra`` modules, for tests)
    and collect their connector types."""
    registry = Registry()
    pm = make_manager()
    origins: dict[str, tuple[str, str]] = {}
    for ep in sorted(md.entry_points(group=GROUP), key=lambda e: e.name):
        package, version = _dist_of(ep)
        if pm.has_plugin(ep.name):
            continue
        try:
            module = ep.load()
            _register(pm, ep.name, module)
        except Exception as exc:  # a broken plugin must not take syncd down
            registry.failures.append(PluginFailure(ep.name, package, _reason(exc)))
            continue
        origins[ep.name] = (package, version)
    for name, module in (extra or {}).items():
        _register(pm, name, module)
        origins[name] = (name, "")
    for impl in pm.hook.syncd_connectors.get_hookimpls():
        package, version = origins.get(impl.plugin_name, ("unknown", ""))
        try:
            # a plugin's hook may return anything: each entry is checked below
            classes = cast("Iterable[object] | None", impl.function())
        except Exception as exc:
            registry.failures.append(PluginFailure(impl.plugin_name, package, _reason(exc)))
            continue
        for cls in classes or []:
            _add_connector(registry, cls, impl.plugin_name, package, version)
    for impl in pm.hook.syncd_transforms.get_hookimpls():
        package, version = origins.get(impl.plugin_name, ("unknown", ""))
        try:
            # a plugin's hook may return anything: each entry is checked below
            transforms = cast("Iterable[object] | None", impl.function())
        except Exception as exc:
            registry.failures.append(PluginFailure(impl.plugin_name, package, _reason(exc)))
            continue
        for transform in transforms or []:
            _add_transform(registry, transform, impl.plugin_name, package, version)
    return registry


def _add_transform(
    registry: Registry, transform: object, plugin: str, package: str, version: str
) -> None:
    if not isinstance(transform, Transform) or not transform.name:
        reason = f"{transform!r} is not a syncd.plugin.transforms.Transform with a name"
        registry.failures.append(PluginFailure(plugin, package, reason))
        return
    taken = registry.transforms.get(transform.name)
    if taken is not None:
        reason = f"transform {transform.name!r} is already provided by {taken.package}"
        registry.failures.append(PluginFailure(plugin, package, reason))
        return
    registry.transforms[transform.name] = TransformType(transform, plugin, package, version)


def _add_connector(
    registry: Registry, cls: object, plugin: str, package: str, version: str
) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Connector)) or not cls.type:
        reason = f"{cls!r} is not a Connector subclass with a type name"
        registry.failures.append(PluginFailure(plugin, package, reason))
        return
    taken = registry.connectors.get(cls.type)
    if taken is not None:
        reason = f"connector type {cls.type!r} is already provided by {taken.package}"
        registry.failures.append(PluginFailure(plugin, package, reason))
        return
    registry.connectors[cls.type] = ConnectorType(cls.type, cls, plugin, package, version)


class IncompatiblePlugin(Exception):
    """A plugin needs a newer plugin API than this syncd provides."""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, IncompatiblePlugin):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


@cache
def default_registry() -> Registry:
    """The registry of installed plugins, loaded once per process."""
    return load_registry()
