"""Configuration: TOML on disk to validated models.

Every mistake becomes a :class:`ConfigError` whose message is one readable line naming
the file and the key (or the line, for TOML syntax), so the CLI can print it without a
traceback and exit with code 2.
"""

from __future__ import annotations

import builtins
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from syncd.entities import CANONICAL_FIELDS, ENTITY_ORDER, Entity
from syncd.errors import UserError
from syncd.kit.dburl import check_database_url, mask_url, normalise_url
from syncd.kit.secrets import check_secret_spec, read_secret
from syncd.plugin.connector import ConfigurationError, Connector
from syncd.plugin.manager import Registry, default_registry
from syncd.plugin.transforms import split_spec
from syncd.redact import remember

DEFAULT_PATH = Path("/etc/syncd/syncd.toml")

Side = Literal["left", "right"]
Scalar = str | int | float | bool


class ConfigError(UserError):
    """The configuration is invalid; the message names the file and the key or line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class DaemonConfig(_Strict):
    """The ``[daemon]`` table. ``state`` is a URL, or a secret form (``{ env }``,
    ``{ file }``, ``{ credential }``) read only when the state store is opened."""

    state: str | dict[str, str] = "sqlite:////var/lib/syncd/state.db"
    log_format: Literal["auto", "json", "console"] = "auto"

    @field_validator("state", mode="before")
    @classmethod
    def _state(cls, value: Any) -> Any:
        if isinstance(value, dict):
            check_secret_spec(value)
        elif not isinstance(value, str):
            raise ValueError(
                'a database URL, { env = "VAR" }, { file = "path" } or { credential = "name" }'
            )
        return value


_DURATION = re.compile(r"(\d+)\s*(d|h|m|s)")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> int:
    """Seconds in a duration such as ``90s``, ``15m``, ``2h30m`` or ``1d``."""
    compact = text.replace(" ", "").lower()
    parts = _DURATION.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"{text!r} is not a duration like 30s, 15m, 2h or 1d")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError("a schedule interval must be longer than zero")
    return seconds


def _both_sides() -> list[Side]:
    return ["left", "right"]


class PairConfig(_Strict):
    """One ``[pairs.NAME]`` table: two connectors and the rules that sync them."""

    name: str = ""
    left: str
    right: str
    mode: Literal["export", "import", "two-way"] = "export"
    entities: list[Entity] = Field(default_factory=lambda: list(ENTITY_ORDER))
    every: str | None = None
    cron: str | None = None
    #: a second schedule whose runs are full reconciles (``--full``), e.g. nightly
    full_cron: str | None = None
    conflict: Literal["left", "right", "newest"] = "left"
    update_existing: bool = True
    recreate_deleted: bool = False
    deletes: Literal["ignore", "propagate"] = "ignore"
    clears: Literal["keep", "propagate"] = "keep"
    create_in: list[Side] = Field(default_factory=_both_sides)
    match: dict[Entity, list[str]] = Field(default_factory=dict)
    required: dict[Entity, list[str]] = Field(default_factory=dict)
    filter: dict[Entity, dict[str, Scalar]] = Field(default_factory=dict)
    exclude: dict[Entity, list[str]] = Field(default_factory=dict)
    #: entity -> field -> transform spec (``"e164:GB"``), applied to both sides' values
    transforms: dict[Entity, dict[str, str]] = Field(default_factory=dict)

    @field_validator("every")
    @classmethod
    def _every(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("cron", "full_cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            from apscheduler.triggers.cron import CronTrigger

            try:
                CronTrigger.from_crontab(value)
            except ValueError as exc:
                raise ValueError(f"{value!r} is not a crontab expression: {exc}") from None
        return value

    @field_validator("entities")
    @classmethod
    def _entities(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("an entity is listed twice")
        if value != [e for e in ENTITY_ORDER if e in value]:
            raise ValueError("companies must come before contacts (contacts refer to them)")
        return value

    @model_validator(mode="after")
    def _schedule(self) -> PairConfig:
        if self.every and self.cron:
            raise ValueError("give either 'every' or 'cron', not both")
        if self.left == self.right:
            raise ValueError("left and right must be different connectors")
        return self

    @property
    def interval_seconds(self) -> int | None:
        """The ``every`` schedule in seconds, if any."""
        return parse_duration(self.every) if self.every else None

    @property
    def schedule_text(self) -> str | None:
        """The pair's schedule in words, None when it runs only when asked."""
        parts = []
        if self.every:
            parts.append(f"every {self.every}")
        if self.cron:
            parts.append(f"cron {self.cron}")
        if self.full_cron:
            parts.append(f"full: cron {self.full_cron}")
        return ", ".join(parts) or None

    def sources(self) -> list[Side]:
        """The sides whose changes this pair reads, per its mode."""
        by_mode: dict[str, list[Side]] = {
            "export": ["left"],
            "import": ["right"],
            "two-way": ["left", "right"],
        }
        return by_mode[self.mode]


@dataclass(frozen=True, slots=True)
class ConnectorConfig:
    """A named connector instance with its validated settings."""

    name: str
    type: str
    cls: builtins.type[Connector] | None
    settings: Any
    #: why the connector cannot be used (its plugin failed to load), or None
    unavailable: str | None = None

    def create(self, base_dir: Path) -> Connector:
        """A fresh connector instance (no I/O happens until it is opened). A connector
        whose plugin is broken raises :class:`ConfigurationError`, which fails the
        runs of the pairs that use it and nothing else."""
        if self.cls is None or self.unavailable:
            raise ConfigurationError(f"connector {self.name!r}: {self.unavailable}")
        return self.cls(self.name, self.settings, base_dir)


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated configuration."""

    path: Path
    daemon: DaemonConfig
    connectors: dict[str, ConnectorConfig]
    pairs: dict[str, PairConfig]
    #: pair -> entity -> field -> the transform bound to its argument
    transforms: dict[str, dict[str, dict[str, Callable[[Any], Any]]]] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        """The folder relative paths in the configuration are taken from."""
        return self.path.parent

    @property
    def state_url(self) -> str:
        """The state store's SQLAlchemy URL: its secret read, relative SQLite paths made
        absolute, checked usable; a :class:`ConfigError` naming ``daemon.state``
        otherwise. Read each time it is asked for, so a rotated secret is picked up."""
        return state_url(self.daemon.state, self.path)

    @property
    def state_shown(self) -> str:
        """The state store as messages may show it: the URL with its password masked,
        or where its secret comes from when that cannot be read."""
        try:
            return mask_url(self.state_url)
        except ConfigError:
            return _spec_text(self.daemon.state)

    def require_pairs(self) -> None:
        """Raise a :class:`ConfigError` saying what is missing when there is nothing
        to sync: commands that run pairs refuse an empty configuration."""
        if not self.connectors:
            raise ConfigError(
                f"{self.path}: no connectors configured (add a [connectors.NAME] table "
                'with a type, e.g. type = "sql", and a [pairs.NAME] table using two)'
            )
        if not self.pairs:
            raise ConfigError(
                f"{self.path}: no pairs configured (add a [pairs.NAME] table with "
                "left = and right = naming two connectors)"
            )

    def pair(self, name: str) -> PairConfig:
        """A pair by name, or a UserError naming the pairs that exist."""
        try:
            return self.pairs[name]
        except KeyError:
            known = ", ".join(sorted(self.pairs)) or "none"
            raise UserError(f"{self.path}: no pair named {name!r} (pairs: {known})") from None

    def connector(self, name: str) -> Connector:
        """A fresh instance of the named connector."""
        return self.connectors[name].create(self.base_dir)


def config_path(explicit: str | os.PathLike[str] | None) -> Path:
    """The configuration file to use: ``--config``, else ``$SYNCD_CONFIG``, else the
    system default."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("SYNCD_CONFIG")
    return Path(env) if env else DEFAULT_PATH


def load_config(path: Path, registry: Registry | None = None) -> Config:
    """Read, parse and validate a configuration file."""
    registry = registry or default_registry()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a configuration file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}: not UTF-8 text: byte 0x{raw[exc.start]:02x} at offset {exc.start} "
            f"(line {line}); save the file as UTF-8"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, path.absolute(), registry)


def state_url(spec: str | dict[str, str], path: Path) -> str:
    """The state store URL ``spec`` (the ``daemon.state`` value of the configuration
    file ``path``) names: read, normalised and checked; its secrets remembered."""
    try:
        text = read_secret(spec, path.parent) if isinstance(spec, dict) else spec
        url = normalise_url(text, path.parent)
        check_database_url(url)
    except ValueError as exc:
        raise ConfigError(f"{path}: daemon.state: {exc}") from None
    remember(url)
    return url


def _spec_text(spec: str | dict[str, str]) -> str:
    if isinstance(spec, dict):
        ((kind, name),) = spec.items()
        return f"the URL in {kind} {name}"
    return mask_url(spec)


def parse_config(data: dict[str, Any], path: Path, registry: Registry) -> Config:
    """Validate parsed TOML; ``path`` names the file in error messages and anchors
    relative paths."""
    unknown = sorted(set(data) - {"daemon", "connectors", "pairs"})
    if unknown:
        expected = "expected daemon, connectors, pairs"
        raise ConfigError(f"{path}: {unknown[0]}: unknown table ({expected})")
    daemon = _validate(path, "daemon", DaemonConfig, data.get("daemon", {}))
    if isinstance(daemon.state, str):
        state_url(daemon.state, path)  # a literal URL is checked now; a secret when used
    connectors = {
        name: _connector(path, name, raw, registry)
        for name, raw in _table(path, "connectors", data).items()
    }
    pairs = {}
    transforms = {}
    for name, raw in _table(path, "pairs", data).items():
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: pairs.{name}: must be a table")
        pair = _validate(path, f"pairs.{name}", PairConfig, {**raw, "name": name})
        _check_pair(path, pair, connectors)
        pairs[name] = pair
        transforms[name] = _transforms(path, pair, registry)
    return Config(path, daemon, connectors, pairs, transforms)


def _transforms(
    path: Path, pair: PairConfig, registry: Registry
) -> dict[str, dict[str, Callable[[Any], Any]]]:
    """The pair's transforms looked up and bound; unknown names and bad arguments are
    errors naming the key."""
    bound: dict[str, dict[str, Callable[[Any], Any]]] = {}
    for entity, fields in pair.transforms.items():
        where = f"{path}: pairs.{pair.name}.transforms.{entity}"
        _check_fields(where, entity, list(fields))
        for name, spec in fields.items():
            kind, argument = split_spec(spec)
            found = registry.transforms.get(kind)
            if found is None:
                known = ", ".join(sorted(registry.transforms)) or "none"
                raise ConfigError(f"{where}.{name}: unknown transform {kind!r} (known: {known})")
            try:
                bound.setdefault(entity, {})[name] = found.transform.bind(argument)
            except ValueError as exc:
                raise ConfigError(f"{where}.{name}: {exc}") from None
    return bound


def _table(path: Path, key: str, data: dict[str, Any]) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {key}: must be a table")
    return value


M = TypeVar("M", bound=BaseModel)


def _validate(path: Path, prefix: str, model: type[M], raw: Any, base_dir: Path | None = None) -> M:
    try:
        return model.model_validate(raw, context={"base_dir": base_dir or path.parent})
    except ValidationError as exc:
        raise ConfigError(_describe(path, prefix, exc)) from None


def _describe(path: Path, prefix: str, exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    loc = ".".join(str(p) for p in (prefix, *first["loc"]) if p != "")
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{path}: {loc}: {message}{more}"


def _connector(path: Path, name: str, raw: Any, registry: Registry) -> ConnectorConfig:
    prefix = f"connectors.{name}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: {prefix}: must be a table")
    settings = dict(raw)
    type_name = settings.pop("type", None)
    if not isinstance(type_name, str):
        raise ConfigError(f'{path}: {prefix}.type: missing (the connector type, e.g. "sql")')
    try:
        kind = registry.connector(type_name)
    except KeyError as exc:
        if registry.broken(type_name) is not None:
            # only the pairs that use this connector fail, with the plugin's reason
            return ConnectorConfig(name, type_name, None, settings, unavailable=exc.args[0])
        raise ConfigError(f"{path}: {prefix}.type: {exc.args[0]}") from None
    validated = _validate(path, prefix, kind.cls.Settings, settings)
    return ConnectorConfig(name, type_name, kind.cls, validated)


def _check_pair(path: Path, pair: PairConfig, connectors: dict[str, ConnectorConfig]) -> None:
    prefix = f"{path}: pairs.{pair.name}"
    for side in ("left", "right"):
        name = getattr(pair, side)
        if name not in connectors:
            known = ", ".join(sorted(connectors)) or "none"
            raise ConfigError(f"{prefix}.{side}: no connector named {name!r} (connectors: {known})")
        if connectors[name].unavailable:
            continue
        served = connectors[name].create(path.parent).entities()
        missing = [e for e in pair.entities if e not in served and e != "company"]
        if missing:
            raise ConfigError(
                f"{prefix}.entities: connector {name!r} has no {missing[0]!r} entity configured"
            )
    for key in ("match", "required", "exclude"):
        for entity, fields in getattr(pair, key).items():
            _check_fields(f"{prefix}.{key}.{entity}", entity, fields)
    for entity, rules in pair.filter.items():
        _check_fields(f"{prefix}.filter.{entity}", entity, list(rules))


def _check_fields(where: str, entity: str, fields: list[str]) -> None:
    for name in fields:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ConfigError(f"{where}: {name!r} is not a field name")
        if name == "company" and entity == "company":
            raise ConfigError(f"{where}: companies have no company field")
    if entity not in CANONICAL_FIELDS:
        raise ConfigError(f"{where}: unknown entity {entity!r}")
