"""Secret settings: a literal, ``{ env = "VAR" }``, ``{ file = "path" }`` or
``{ credential = "name" }`` (a systemd credential: ``LoadCredential=name:...`` in the
unit puts it in ``$CREDENTIALS_DIRECTORY``).

Connector settings models annotate secret fields with :data:`Secret`. The value is
resolved while the configuration is validated and kept as a pydantic ``SecretStr``, so
it prints as ``**********`` in reprs, logs and error messages; it is also remembered
by :mod:`syncd.redact`, which masks it in everything the process prints. The state
store's URL (``daemon.state``) takes the same forms through :func:`read_secret`, read
only when the store is opened.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, SecretStr, ValidationInfo

from syncd.kit.dburl import normalise_url
from syncd.redact import remember


def resolve_secret(value: Any, info: ValidationInfo) -> Any:
    """Turn ``{env=...}`` / ``{file=...}`` / ``{credential=...}`` into the secret's
    text; pass literals on. Either way the secret is remembered, so no output of this
    process shows it (:mod:`syncd.redact`)."""
    if isinstance(value, dict):
        value = read_secret(value, Path((info.context or {}).get("base_dir", ".")))
    if isinstance(value, str):
        remember(value)
    return value


def read_secret(spec: dict[str, Any], base_dir: Path) -> str:
    """The text of a secret given as ``{ env = "VAR" }``, ``{ file = "path" }``
    (relative to ``base_dir``) or ``{ credential = "name" }``; ``ValueError`` with
    the reason when it cannot be read."""
    check_secret_spec(spec)
    ((kind, name),) = spec.items()
    if kind == "env":
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set")
        return os.environ[name]
    if kind == "file":
        path = base_dir / name
        try:
            return path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read secret file {path}: {_reason(exc)}") from None
    folder = os.environ.get("CREDENTIALS_DIRECTORY")
    if not folder:
        raise ValueError(
            "CREDENTIALS_DIRECTORY is not set (a credential needs LoadCredential= "
            "in the systemd unit)"
        )
    path = Path(folder) / name
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read credential {path}: {_reason(exc)}") from None


def check_secret_spec(spec: dict[str, Any]) -> None:
    """Raise ``ValueError`` unless ``spec`` is one of the secret forms."""
    if len(spec) != 1 or set(spec) - _FORMS or not isinstance(next(iter(spec.values())), str):
        raise ValueError(
            'a secret is a string, { env = "VAR" }, { file = "path" } or { credential = "name" }'
        )


_FORMS = {"env", "file", "credential"}


def _reason(exc: OSError | UnicodeDecodeError) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text (byte {exc.start})"
    return exc.strerror or type(exc).__name__


Secret = Annotated[SecretStr, BeforeValidator(resolve_secret)]
"""A settings field type for passwords, tokens and URLs that may carry credentials."""


def resolve_sqlite_url(url: str, base_dir: Path) -> str:
    """A configured database URL as SQLAlchemy must read it: relative SQLite paths
    taken from ``base_dir`` (the configuration file's folder), ``postgres://``
    accepted, a password holding ``@`` encoded (see :func:`syncd.kit.dburl.normalise_url`,
    which this name is kept for)."""
    return normalise_url(url, base_dir)
