"""Reading the canonical fields of a plain vCard directly from its text.

vobject builds a whole object tree for every card: about 0.2 ms a card on a quick
machine, more than everything else a sync does with it, and the floor of every
listing. Most cards are plain: unfolded or folded lines of ``NAME;PARAM=value:value``
with backslash escapes, nothing encoded. :func:`quick_fields` reads those directly,
with vobject's exact semantics (its splitting of structured and list values, its
unescaping, which lines it takes when a property repeats), and returns ``None`` for
anything else (quoted or encoded parameters, vCard 2.1 quoted-printable, nested
components, stray carriage returns, unusual escapes, text outside the card), which
the caller then hands to vobject. The tests compare it with vobject on generated
cards: where it answers, it answers what vobject reads.
"""

from __future__ import annotations

import re
from typing import Any

#: vobject's unfolding: a line break followed by a space or a tab is removed, in one
#: pass from the left (with line breaks already made LF).
_FOLD = re.compile(r"\n[ \t]")
#: A content line as vobject accepts it, without quoted parameter values (those go to
#: vobject): group, name, parameters, value.
_LINE = re.compile(
    r"^(?:[A-Za-z0-9_-]+\.)?([A-Za-z0-9_-]+)((?:;[A-Za-z0-9_-]+(?:=[^\";:\n]*)?)*):(.*)$",
    re.MULTILINE,
)
#: Parameters that change how a value is decoded: left to vobject.
_ENCODED = re.compile(r"ENCODING|QUOTED-PRINTABLE|BASE64|CHARSET", re.IGNORECASE)
#: vobject's escapable characters for list values.
_TEXT_ESCAPES = '\\;,Nn"'
#: Which TEL type goes to which field; a TEL with none of these is a phone.
TEL_FIELDS = (("cell", "mobile"), ("fax", "fax"))
_SIMPLE = {"EMAIL": "email", "TITLE": "title", "NOTE": "notes"}
_MAPPED = {"TEL", "N", "ORG", *_SIMPLE}


class _Fallback(Exception):
    """The card needs vobject."""


def quick_fields(text: str, names: tuple[str, ...]) -> dict[str, Any] | None:
    """Canonical contact fields (``names``, None where the card lacks one) of a plain
    vCard, or None when the card is not plain and must be read by vobject."""
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            return None
    if "\n " in text or "\n\t" in text:
        text = _FOLD.sub("", text)
    lines = _LINE.findall(text)
    # every line must be one vobject reads (an empty line is skipped by both)
    raw = text.split("\n")
    if len(lines) != len(raw) - raw.count(""):
        return None
    try:
        return _read(lines, names)
    except _Fallback:
        return None


def _read(lines: list[tuple[str, str, str]], names: tuple[str, ...]) -> dict[str, Any]:
    fields: dict[str, Any] = dict.fromkeys(names)
    seen: set[str] = set()
    if not lines or lines[0][0].upper() != "BEGIN" or lines[0][2].upper() != "VCARD":
        raise _Fallback
    for name, params, value in lines[1:]:
        name = name.upper()
        if params and _ENCODED.search(params):
            raise _Fallback
        if name not in _MAPPED:
            if name == "END":
                if value.upper() != "VCARD" or params:
                    raise _Fallback
                return fields
            if name in ("BEGIN", "PROFILE"):
                raise _Fallback
        elif name == "TEL":
            _tel(fields, value, params)
        elif name in seen:
            continue
        elif name in _SIMPLE:
            seen.add(name)
            fields[_SIMPLE[name]] = text_value(_values(value)[0])
        elif name == "N":
            seen.add(name)
            parts = _structured(value)
            fields["last_name"] = text_value(parts[0])
            fields["first_name"] = text_value(parts[1]) if len(parts) > 1 else None
        else:  # ORG
            seen.add(name)
            fields["company"] = text_value(_structured(value)[0])
    raise _Fallback  # no END: vobject says why


def tel_field(types: set[str]) -> str:
    """The contact field a TEL line with these (lower-cased) types fills."""
    for kind, name in TEL_FIELDS:
        if kind in types:
            return name
    return "phone"


def text_value(value: Any) -> str | None:
    """A property value as a field value: a list joined with commas, blank as None."""
    if isinstance(value, list):
        value = ",".join(str(part) for part in value)
    text = str(value).strip() if value is not None else ""
    return text or None


def _tel(fields: dict[str, Any], value: str, params: str) -> None:
    field = tel_field(_types(params)) if params else "phone"
    if fields[field] is None:
        number = text_value(_values(value)[0])
        if number and number[:4].lower() == "tel:":  # vCard 4.0 VALUE=uri
            number = number[4:]
        fields[field] = number


def _types(params: str) -> set[str]:
    """The values of TYPE parameters, lower-cased (vobject's ``params["TYPE"]``; a
    parameter without ``=`` is a vCard 2.1 singleton, which is not a TYPE)."""
    found: set[str] = set()
    for param in params.split(";"):
        key, equals, values = param.partition("=")
        if equals and key.upper() == "TYPE":
            if "=" in values:  # vobject stops reading the values at a second "="
                raise _Fallback
            found.update(part.strip().lower() for part in values.split(",") if part.strip())
    return found


def _values(value: str, separator: str = ",", escapes: str = _TEXT_ESCAPES) -> list[str]:
    """vobject's ``stringToTextValues``: split on unescaped ``separator`` and undo the
    escapes of ``escapes`` (``\\n`` is a line break; other escapes stay as written).
    A trailing empty value is dropped; an empty string is one empty value."""
    if "\\" not in value:
        parts = value.split(separator)
        if len(parts) > 1 and not parts[-1]:
            parts.pop()
        return parts
    results: list[str] = []
    current: list[str] = []
    chars = iter(value)
    for char in chars:
        if char == "\\":
            escaped = next(chars, None)
            if escaped is None:
                raise _Fallback  # vobject keeps a trailing backslash in its own way
            if escaped in escapes:
                current.append("\n" if escaped in "nN" else escaped)
            else:
                current.append("\\" + escaped)
        elif char == separator:
            results.append("".join(current))
            current = []
        else:
            current.append(char)
    if current or not results:
        results.append("".join(current))
    return results


def _structured(value: str) -> list[str | list[str]]:
    """vobject's ``splitFields`` (N, ORG): components split on unescaped semicolons,
    each a string, or a list where it holds unescaped commas."""
    parts: list[str | list[str]] = []
    for part in _values(value, ";", ";"):
        items = _values(part)
        parts.append(items[0] if len(items) == 1 else items)
    return parts
