"""Secret settings: a literal, ``{ env = "VAR" }``, ``{ file = "path" }`` or
``{ credential = "name" }`` (a systemd credential: ``LoadCredential=name:...`` in the
unit puts it in ``$CREDENTIALS_DIRECTORY``).

Connector settings models annotate secret fields with :data:`Secret`. The value is
resolved while the configuration is validated and kept as a pydantic ``SecretStr``, so
it prints as ``**********`` in reprs, logs and error messages.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, SecretStr, ValidationInfo


def resolve_secret(value: Any, info: ValidationInfo) -> Any:
    """Turn ``{env=...}`` / ``{file=...}`` into the secret's text; pass literals on."""
    if not isinstance(value, dict):
        return value
    keys = set(value)
    if keys == {"env"}:
        name = str(value["env"])
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set")
        return os.environ[name]
    if keys == {"file"}:
        base = Path((info.context or {}).get("base_dir", "."))
        path = base / str(value["file"])
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read secret file {path}: {exc.strerror}") from None
    if keys == {"credential"}:
        folder = os.environ.get("CREDENTIALS_DIRECTORY")
        if not folder:
            raise ValueError(
                "CREDENTIALS_DIRECTORY is not set (a credential needs LoadCredential= "
                "in the systemd unit)"
            )
        path = Path(folder) / str(value["credential"])
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read credential {path}: {exc.strerror}") from None
    raise ValueError(
        'a secret is a string, { env = "VAR" }, { file = "path" } or { credential = "name" }'
    )


Secret = Annotated[SecretStr, BeforeValidator(resolve_secret)]
"""A settings field type for passwords, tokens and URLs that may carry credentials."""


def resolve_sqlite_url(url: str, base_dir: Path) -> str:
    """Make a relative SQLite path in a SQLAlchemy URL relative to ``base_dir``
    (the configuration file's folder) instead of the process's working directory."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return url
    rest = url[len(prefix) :]
    if not rest or rest.startswith("/") or rest.startswith(":memory:"):
        return url
    path, sep, query = rest.partition("?")
    return f"{prefix}{(base_dir / path).resolve()}{sep}{query}"
