"""Writing a new vCard 3.0 directly as text.

A new card holds only what syncd maps, so it needs none of vobject's generality, and
building it through vobject costs more than everything else a create does (about
0.2 ms a card). The text follows RFC 2426: values escaped (backslash, comma,
semicolon, line break), structured values (N, ORG) split on unescaped semicolons,
lines folded at 75 octets. The tests check every card it writes against vobject:
read back, it gives the same fields as a card vobject would have built.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from syncd.entities import is_empty

_TEL_TYPES = (("phone", "work"), ("mobile", "cell"), ("fax", "fax"))


_SPECIAL = re.compile(r"[\\,;\r\n]")


def escape(value: str) -> str:
    """A text value with RFC 2426's escapes."""
    if not _SPECIAL.search(value):
        return value
    return (
        value.replace("\\", "\\\\")
        .replace(",", "\\,")
        .replace(";", "\\;")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def fold(line: str) -> str:
    """A content line folded at 75 octets (continuations start with a space), never
    inside a UTF-8 sequence, with its CRLF."""
    if len(line) <= 75 and line.isascii():
        return line + "\r\n"
    data = line.encode()
    if len(data) <= 75:
        return line + "\r\n"
    parts: list[bytes] = []
    limit = 75
    while len(data) > limit:
        cut = limit
        while cut > 0 and (data[cut] & 0xC0) == 0x80:  # a continuation byte
            cut -= 1
        parts.append(data[:cut])
        data = data[cut:]
        limit = 74  # the leading space takes one octet
    parts.append(data)
    return "\r\n ".join(part.decode() for part in parts) + "\r\n"


def _text(value: Any) -> str:
    return "" if is_empty(value) else str(value)


def display_name(fields: Mapping[str, Any]) -> str:
    """FN: the first and last name, else the e-mail, else the company."""
    name = " ".join(text for key in ("first_name", "last_name") if (text := _text(fields.get(key))))
    return name or _text(fields.get("email")) or _text(fields.get("company"))


def write_card(uid: str, fields: Mapping[str, Any]) -> str:
    """A new vCard 3.0 with ``uid`` and the filled ones of ``fields``."""
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"UID:{escape(uid)}"]
    family, given = _text(fields.get("last_name")), _text(fields.get("first_name"))
    lines.append(f"N:{escape(family)};{escape(given)};;;")
    lines.append(f"FN:{escape(display_name(fields))}")
    if email := _text(fields.get("email")):
        lines.append(f"EMAIL:{escape(email)}")
    for field, kind in _TEL_TYPES:
        if number := _text(fields.get(field)):
            lines.append(f"TEL;TYPE={kind}:{escape(number)}")
    if title := _text(fields.get("title")):
        lines.append(f"TITLE:{escape(title)}")
    if note := _text(fields.get("notes")):
        lines.append(f"NOTE:{escape(note)}")
    if company := _text(fields.get("company")):
        lines.append(f"ORG:{escape(company)}")
    lines.append("END:VCARD")
    return "".join(fold(line) for line in lines)
