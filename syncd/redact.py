"""The last line of defence for secrets: every secret the configuration resolves is
remembered, and the process's stdout and stderr (CLI output, logs, error lines) are
written with each of them replaced by ``***``.

Messages are meant to mask secrets where they are made (:func:`syncd.kit.dburl.mask_url`,
pydantic's ``SecretStr``); this catches what a library or a mistake lets through.
Secrets shorter than :data:`MIN_LENGTH` are not searched for: replacing every "ab" in
the output would wreck it and protect little.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from syncd.kit.dburl import MASK, split_url, url_secrets

MIN_LENGTH = 4

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()


def remember(value: str) -> None:
    """Remember a secret: a URL's password and secret query values, or the whole
    value when it is not a URL."""
    global _secrets
    pieces = url_secrets(value) if split_url(value) is not None else [value]
    fresh = {p for p in pieces if len(p) >= MIN_LENGTH} - set(_secrets)
    if fresh:
        with _lock:
            # longest first, so a secret containing another is masked whole
            _secrets = tuple(sorted({*_secrets, *fresh}, key=len, reverse=True))


def scrub(text: str) -> str:
    """``text`` with every remembered secret replaced by ``***``."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class RedactingStream:
    """A text stream that writes through to another with secrets scrubbed."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        """Write ``text`` scrubbed; returns the length given, as streams do."""
        self._stream.write(scrub(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        """Write each line scrubbed."""
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def redacted_output() -> Iterator[None]:
    """Scrub everything written to ``sys.stdout`` and ``sys.stderr`` inside."""
    saved = sys.stdout, sys.stderr
    sys.stdout = RedactingStream(saved[0])
    sys.stderr = RedactingStream(saved[1])
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
