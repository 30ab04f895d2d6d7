"""Map vCard text to canonical contact fields and back: reads of plain cards directly
(:mod:`syncd_vcard.reader`), other reads and every patch through vobject, new cards
as text (:mod:`syncd_vcard.writer`)."""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

from syncd.entities import is_empty
from syncd_vcard.reader import quick_fields, tel_field, text_value
from syncd_vcard.writer import write_card

if TYPE_CHECKING:
    from vobject.base import Component, ContentLine


def _vobject() -> ModuleType:
    """vobject, imported on first use: it takes a tenth of a second, which every
    ``syncd`` command would pay just because the vCard connectors are registered."""
    import vobject
    import vobject.vcard

    return vobject


#: The canonical contact fields a vCard carries.
CONTACT_FIELDS: tuple[str, ...] = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "mobile",
    "fax",
    "title",
    "company",
    "notes",
)

_FIELD_TEL_TYPE = {"phone": "work", "mobile": "cell", "fax": "fax"}
_SIMPLE = {"title": "title", "notes": "note"}


class VCardError(ValueError):
    """A card that cannot be read, cannot hold the values given, or cannot be written
    back. Its message is one line without any of the card's content: it goes into the
    run history as that card's error."""


#: vobject's messages that name no card content: what a card holds too many or too
#: few of.
_COUNTED = re.compile(r"(?:cannot contain more than|must contain at least) \d+ [A-Za-z0-9-]+$")
#: The property name in vobject's rendering of a content line (``<NAME{params}value>``).
_LINE_NAME = re.compile(r"<([A-Za-z0-9-]{1,40})[{]")


def _reason(exc: BaseException) -> str:
    """What vobject found wrong, in one line and without the card's content (vobject's
    own messages quote the offending line)."""
    vobject = _vobject()
    message = str(getattr(exc, "msg", "")) if isinstance(exc, vobject.base.VObjectError) else ""
    line = getattr(exc, "lineNumber", None)
    at = f" (line {line})" if isinstance(line, int) else ""
    if isinstance(exc, vobject.base.ParseError):
        if "was never closed" in message:
            return "the card is cut short: it has no END:VCARD"
        if "wasn't closed" in message:
            return f"a component is not closed{at}"
        if "never opened" in message:
            return f"an END has no BEGIN{at}"
        if "transformToNative" in message:
            return f"a value cannot be decoded{at}"
        return f"a line is not a vCard content line{at}"
    if isinstance(exc, vobject.base.ValidateError):
        counted = _COUNTED.search(message)
        return f"the card {counted.group(0)}" if counted else f"the card is not valid{at}"
    if isinstance(exc, vobject.base.NativeError):
        return f"a value cannot be encoded{at}"
    if "has a group" in message:
        found = _LINE_NAME.match(message)
        name = found.group(1) if found else "a"
        return f"the {name} property has a group prefix, which vCard does not allow there"
    if "Double quotes" in message:
        return "a parameter value holds a double quote"
    if isinstance(exc, binascii.Error):
        return "a base64 value cannot be decoded"
    if isinstance(exc, UnicodeError):
        return "a value cannot be decoded in its charset"
    if isinstance(exc, LookupError):
        return "a parameter names an unknown encoding or charset"
    return f"vobject cannot process it ({type(exc).__name__})"


def parse(text: str) -> Component:
    """Parse one vCard; raise :class:`VCardError` with a readable reason."""
    try:
        card = _vobject().readOne(text)
    except Exception as exc:  # vobject raises several unrelated exception types
        raise VCardError(f"not a vCard: {_reason(exc)}") from None
    if card.name != "VCARD":
        raise VCardError("not a vCard: it holds another kind of component")
    return card


def _types(line: ContentLine) -> set[str]:
    """TYPE parameters, lower-cased, comma lists split (vCard 4.0 writes TYPE="a,b")."""
    found: set[str] = set()
    for value in line.params.get("TYPE", []):
        found.update(part.strip().lower() for part in str(value).split(",") if part.strip())
    return found


def _lines(card: Component, prop: str) -> list[ContentLine]:
    """The card's ``prop`` lines, the list itself (empty when it has none). A vCard's
    properties are content lines; vobject's types allow any child there."""
    return cast("list[ContentLine]", card.contents.get(prop, []))


def _tel_field(line: ContentLine) -> str:
    return tel_field(_types(line))


def card_uid(text: str) -> str | None:
    """The card's UID, if it has one."""
    card = parse(text)
    return text_value(card.uid.value) if "uid" in card.contents else None


def card_fields(text: str) -> dict[str, Any]:
    """Canonical contact fields of a card; fields the card lacks are None. A plain
    card is read directly (see :mod:`syncd_vcard.reader`), any other through vobject."""
    fields = quick_fields(text, CONTACT_FIELDS)
    return fields if fields is not None else vobject_fields(text)


def vobject_fields(text: str) -> dict[str, Any]:
    """Canonical contact fields of a card as read through vobject (the reference
    :func:`card_fields` agrees with)."""
    card = parse(text)
    try:
        return fields_of(card)
    except Exception as exc:  # a value vobject parsed into a shape the mapping lacks
        raise VCardError(f"cannot read the card's fields: {_reason(exc)}") from None


def fields_of(card: Component) -> dict[str, Any]:
    """Canonical contact fields of a parsed card; fields the card lacks are None."""
    fields: dict[str, Any] = dict.fromkeys(CONTACT_FIELDS)
    if "n" in card.contents:
        name = card.n.value
        if isinstance(name, _vobject().vcard.Name):
            fields["first_name"] = text_value(name.given)
            fields["last_name"] = text_value(name.family)
        else:
            parts = str(name).split(";")
            fields["last_name"] = text_value(parts[0])
            fields["first_name"] = text_value(parts[1]) if len(parts) > 1 else None
    if "email" in card.contents:
        fields["email"] = text_value(_lines(card, "email")[0].value)
    for line in _lines(card, "tel"):
        field = _tel_field(line)
        if fields[field] is None:
            value = text_value(line.value)
            if value and value.lower().startswith("tel:"):  # vCard 4.0 VALUE=uri
                value = value[4:]
            fields[field] = value
    for field, prop in _SIMPLE.items():
        if prop in card.contents:
            fields[field] = text_value(_lines(card, prop)[0].value)
    if "org" in card.contents:
        org = card.org.value
        fields["company"] = text_value(org[0] if isinstance(org, list) and org else org)
    return fields


def _text(value: Any) -> str:
    """A value as card text, its line breaks made LF (the writer's escape turns CR and
    CRLF into a line break too; vobject would write a bare CR as it is, and a bare CR
    splits the line when the card is read)."""
    return str(value).replace("\r\n", "\n").replace("\r", "\n")


def _set_single(card: Component, prop: str, value: Any) -> None:
    """Set the first ``prop`` line (adding one if needed); an empty value removes it."""
    lines = _lines(card, prop)
    if is_empty(value):
        for line in list(lines):
            card.remove(line)
        return
    if lines:
        lines[0].value = _text(value)
    else:
        card.add(prop).value = _text(value)


def _set_tel(card: Component, field: str, value: Any) -> None:
    lines = [line for line in _lines(card, "tel") if _tel_field(line) == field]
    if is_empty(value):
        for line in lines:
            card.remove(line)
        return
    if lines:
        lines[0].value = _text(value)
        return
    line = card.add("tel")
    line.value = _text(value)
    line.params["TYPE"] = [_FIELD_TEL_TYPE[field]]


def _set_name(card: Component, first: Any, last: Any) -> None:
    given = "" if is_empty(first) else _text(first)
    family = "" if is_empty(last) else _text(last)
    if "n" in card.contents:
        name = card.n.value
        if isinstance(name, _vobject().vcard.Name):
            name.given, name.family = given, family
        else:
            card.n.value = _vobject().vcard.Name(family=family, given=given)
    else:
        card.add("n").value = _vobject().vcard.Name(family=family, given=given)


def _display_name(card: Component) -> str:
    fields = fields_of(card)
    parts = [fields.get("first_name"), fields.get("last_name")]
    name = " ".join(str(part) for part in parts if part)
    return name or str(fields.get("email") or fields.get("company") or "")


def patch_card(text: str, fields: Mapping[str, Any]) -> str:
    """Write ``fields`` onto the card ``text`` and return the new card text; every
    property not named by a mapped field is kept as it was.

    The new text is read back before it is returned: it holds the values written
    (as :func:`card_fields` reads them: trimmed, blank as None) and every other mapped
    field as it was. Any problem, with the card as read or with writing these values
    onto it, raises :class:`VCardError` and nothing else: it is that card's error."""
    card = parse(text)
    try:
        before = fields_of(card)
        apply_fields(card, fields)
        patched = str(card.serialize())
    except Exception as exc:  # vobject raises several unrelated exception types
        raise VCardError(f"cannot write the card back: {_reason(exc)}") from None
    _check_written(patched, {**before, **expected_fields(fields)})
    return patched


def new_card(uid: str, fields: Mapping[str, Any]) -> str:
    """A new vCard 3.0 with ``uid`` and ``fields`` (written directly as text, see
    :mod:`syncd_vcard.writer`); :class:`VCardError` when a value cannot be written
    as UTF-8 (a lone surrogate)."""
    try:
        text = write_card(uid, fields)
        text.encode()
    except UnicodeEncodeError:
        raise VCardError(_UNENCODABLE) from None
    return text


def expected_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The mapped ones of ``fields`` as a card written with them reads them back:
    text trimmed, a blank value None."""
    return {
        field: None if is_empty(value) else text_value(_text(value))
        for field, value in fields.items()
        if field in CONTACT_FIELDS
    }


_UNENCODABLE = "a value holds a character UTF-8 cannot encode"


def _check_written(text: str, expected: Mapping[str, Any]) -> None:
    """Refuse a patched card that does not read back as ``expected``: vobject would
    have written a card other than the one meant."""
    try:
        text.encode()
    except UnicodeEncodeError:
        raise VCardError(_UNENCODABLE) from None
    try:
        got = card_fields(text)  # as vobject reads it (see tests/test_vcard_reader.py)
    except VCardError as exc:
        raise VCardError(f"the patched card would not read back: {exc}") from None
    wrong = sorted(field for field, value in expected.items() if got.get(field) != value)
    if wrong:
        raise VCardError(f"written back, the card would not read {', '.join(wrong)} as meant")


def apply_fields(card: Component, fields: Mapping[str, Any]) -> None:
    """Write ``fields`` onto a parsed card (FN follows the name), keeping the rest."""
    if "first_name" in fields or "last_name" in fields:
        current = fields_of(card)
        first = fields.get("first_name", current.get("first_name"))
        last = fields.get("last_name", current.get("last_name"))
        _set_name(card, first, last)
    if "email" in fields:
        _set_single(card, "email", fields["email"])
    for field in ("phone", "mobile", "fax"):
        if field in fields:
            _set_tel(card, field, fields[field])
    for field, prop in _SIMPLE.items():
        if field in fields:
            _set_single(card, prop, fields[field])
    if "company" in fields:
        value = fields["company"]
        lines = _lines(card, "org")
        if is_empty(value):
            for line in list(lines):
                card.remove(line)
        elif lines and isinstance(lines[0].value, list) and lines[0].value:
            lines[0].value = [_text(value), *lines[0].value[1:]]  # keep the org units
        elif lines:
            # types-vobject types a line's value as str; an ORG line's is a list
            lines[0].value = [_text(value)]  # type: ignore[assignment]
        else:
            card.add("org").value = [_text(value)]
    if "n" not in card.contents:
        card.add("n").value = _vobject().vcard.Name()
    display = _display_name(card)
    if "fn" in card.contents:
        card.fn.value = display
    else:
        card.add("fn").value = display
