"""Malformed cards and odd values against the vCard mapping (issue 17, item 8): reading
a card, patching one and writing a new one either give a card that reads back with the
values meant, or raise :class:`VCardError` (which the connectors turn into that card's
own error), never anything else, and its message is one line free of card content.

The default budget is small; for a deep run:

    HYPOTHESIS_PROFILE=deep .venv/bin/pytest tests/test_vcard_fuzz.py
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_vcard_reader import ODD_PARAMS, PLAIN_PARAMS, card_text

from syncd_vcard import VCardError, card_fields, new_card, patch_card
from syncd_vcard.mapping import CONTACT_FIELDS, vobject_fields

DEEP = os.environ.get("HYPOTHESIS_PROFILE") == "deep"
EXAMPLES = 5000 if DEEP else 150
FUZZ = settings(max_examples=EXAMPLES, deadline=None)

GOOD = new_card("u-1", {"first_name": "Ann", "last_name": "Lee", "email": "ann@x.example",
                        "mobile": "1", "company": "Lee AB", "notes": "two\nlines"})  # fmt: skip

#: Text as values may hold it: escapes, line breaks of every kind, control characters,
#: characters outside the BMP and a lone surrogate (which UTF-8 cannot encode).
value_text = st.text(
    alphabet=st.characters(codec=None, exclude_categories=())
    | st.sampled_from([",", ";", "\\", "\r", "\n", ":", '"', "\x85", "\u2028", "\ud800"]),
    max_size=12,
)
values = st.none() | value_text | st.integers() | st.booleans()
contact = st.dictionaries(st.sampled_from(CONTACT_FIELDS), values, max_size=5)


@st.composite
def damaged_card(draw: st.DrawFn) -> str:
    """A card syncd wrote, then cut short, or with a line inserted or removed."""
    lines = GOOD.split("\r\n")
    how = draw(st.sampled_from(["cut", "insert", "remove"]))
    if how == "cut":
        return GOOD[: draw(st.integers(0, len(GOOD)))]
    at = draw(st.integers(0, len(lines) - 1))
    if how == "remove":
        return "\r\n".join(lines[:at] + lines[at + 1 :])
    odd = ["item1.UID:x", "N:A;B", "BEGIN:VCARD", "END:VCARD", "junk", "BEGIN:X",
           "FN;ENCODING=b:!!", "PHOTO;ENCODING=b:x", 'TEL;TYPE="a:1', "VERSION:2.1",
           "item1.ORG;TYPE=cell:a\\n,b", "ORG:"]  # fmt: skip
    return "\r\n".join([*lines[:at], draw(st.sampled_from(odd)), *lines[at:]])


cards = card_text(PLAIN_PARAMS + ODD_PARAMS, odd=True) | damaged_card() | st.text(max_size=80)


def meant(value: Any) -> str | None:
    """How a written value reads back: line breaks made LF, trimmed, blank as None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return str(value).replace("\r\n", "\n").replace("\r", "\n").strip() or None


def assert_one_line(error: VCardError) -> None:
    message = str(error)
    assert message and "\n" not in message and "\r" not in message, message


@FUZZ
@given(text=cards, fields=contact)
@example(text=GOOD.replace("UID:", "item1.UID:"), fields={"title": "CEO"})
@example(text=GOOD.replace("N:", "N:X;Y;;;\r\nN:"), fields={"title": "CEO"})
@example(text="BEGIN:VCARD\nVERSION:2.1\nORG:\nitem1.ORG;type=CELL:a\\n,b\nEND:VCARD\n", fields={})
@example(text=GOOD.replace("FN:", "FN;ENCODING=b:"), fields={"mobile": None})
@example(text=GOOD, fields={"notes": "a\rb", "title": "x\r\ny"})
@example(text=GOOD, fields={"email": "\ud800"})
def test_patch_card_writes_the_values_or_raises_vcard_error(
    text: str, fields: dict[str, Any]
) -> None:
    try:
        patched = patch_card(text, fields)
    except VCardError as exc:
        assert_one_line(exc)
        return
    patched.encode()  # UTF-8 can write it
    before = vobject_fields(text)
    after = vobject_fields(patched)
    assert after == {field: meant(fields[field]) if field in fields else before[field]
                     for field in CONTACT_FIELDS}  # fmt: skip
    assert card_fields(patched) == after


@FUZZ
@given(text=cards)
def test_reading_a_card_gives_its_fields_or_raises_vcard_error(text: str) -> None:
    try:
        fields = card_fields(text)
    except VCardError as exc:
        assert_one_line(exc)
        return
    assert set(fields) == set(CONTACT_FIELDS)


@FUZZ
@given(fields=contact)
@example(fields={"notes": "a\rb\r\nc", "company": "x;y,z"})
@example(fields={"email": "a\ud800"})
def test_new_card_holds_the_values_or_raises_vcard_error(fields: dict[str, Any]) -> None:
    try:
        text = new_card("k-1", fields)
    except VCardError as exc:
        assert_one_line(exc)
        assert any(isinstance(v, str) and _surrogate(v) for v in fields.values())
        return
    text.encode()
    assert vobject_fields(text) == {f: meant(fields.get(f)) for f in CONTACT_FIELDS}


def _surrogate(text: str) -> bool:
    return any("\ud800" <= char <= "\udfff" for char in text)


SECRET = "Zq7Secret"


@pytest.mark.parametrize(
    "text",
    [
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:{SECRET}\r\nEMAIL:{SECRET}@x",
        f"BEGIN:VCARD\r\nVERSION:3.0\r\n{SECRET} has no colon\r\nEND:VCARD\r\n",
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nBEGIN:{SECRET}\r\nEND:VCARD\r\n",
        f"BEGIN:{SECRET}\r\nEND:{SECRET}\r\n",
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nEND:{SECRET}\r\nEND:VCARD\r\n",
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nitem1.UID:{SECRET}\r\nFN:{SECRET}\r\nEND:VCARD\r\n",
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nN:{SECRET};;;;\r\nN:{SECRET}\r\nEND:VCARD\r\n",
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN;ENCODING=b:{SECRET}!\r\nEND:VCARD\r\n",
    ],
)
def test_a_card_error_quotes_none_of_the_card(text: str) -> None:
    """The reason goes into the run history: it names what is wrong, never a value."""
    with pytest.raises(VCardError) as failed:
        patch_card(text, {"title": "x"})
    assert SECRET.lower() not in str(failed.value).lower()
    assert_one_line(failed.value)
