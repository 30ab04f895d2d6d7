"""JSON text for the values the engine stores by the thousand (snapshots, run-item
details, packed id lists), from json's C encoder built once per setting.

``json.dumps`` and ``JSONEncoder.encode`` build that encoder anew on every call,
which costs more than encoding a short snapshot or detail.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

_make_encoder = json.encoder.c_make_encoder  # type: ignore[attr-defined]


def encoder(*, sort_keys: bool = False, compact: bool = False) -> Callable[[Any], str]:
    """A function giving what ``json.dumps(value, ensure_ascii=False, ...)`` gives
    with these settings (``compact``: no spaces after ``,`` and ``:``). Values must
    not contain themselves: the check for circular references is left out."""
    separators = (",", ":") if compact else (", ", ": ")
    plain = json.JSONEncoder(
        sort_keys=sort_keys, separators=separators, ensure_ascii=False, check_circular=False
    )
    if _make_encoder is None:  # a Python without json's C speedups
        return plain.encode
    one_shot = _make_encoder(
        None,
        plain.default,
        json.encoder.encode_basestring,
        None,
        separators[1],
        separators[0],
        sort_keys,
        False,
        True,
    )

    def encode(value: Any) -> str:
        if type(value) is dict or type(value) is list:
            return "".join(one_shot(value, 0))
        return plain.encode(value)

    return encode


_scan_once = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[attr-defined]


def decode(text: str) -> Any:
    """The value of a JSON text, as ``json.loads`` gives it; read straight by json's
    scanner when the text has no white space around it (what :func:`encoder` writes),
    without the two regular-expression matches ``json.loads`` makes for that."""
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:
        return json.loads(text)  # white space first, or no JSON: json says which
    return value if end == len(text) else json.loads(text)
