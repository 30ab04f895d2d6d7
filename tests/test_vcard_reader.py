"""The direct vCard reader against vobject: wherever it reads a card, it reads the
same fields as vobject; plain cards are always read directly, unusual ones never."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from syncd_vcard import VCardError, card_fields, new_card
from syncd_vcard.mapping import CONTACT_FIELDS, vobject_fields
from syncd_vcard.reader import quick_fields

NAMES = ["N", "FN", "EMAIL", "TEL", "TITLE", "NOTE", "ORG", "UID", "X-CUSTOM", "ADR", "URL"]
PLAIN_PARAMS = ["TYPE=cell", "type=CELL", "TYPE=fax", "TYPE=work,voice", "TYPE=home", "PREF=1",
                "TYPE=", "TYPE= cell", "TYPE=a,,fax", "VALUE=uri", "CELL", "X-A=b=c"]  # fmt: skip
ODD_PARAMS = [
    'TYPE="work,cell"',
    "TYPE=x=y,cell",
    "ENCODING=b",
    "QUOTED-PRINTABLE",
    "CHARSET=utf-8",
    ";",
    "=x",
]

value_chars = st.sampled_from([*list('ab ,;:\\nN"é漢\t'), "tel:", "\\n", "\\,", "\\;", "\\\\"])
values = st.lists(value_chars, max_size=12).map("".join)


@st.composite
def content_line(draw: st.DrawFn, params: list[str]) -> str:
    """One property line: optional group, name, parameters, value (unescaped text:
    it may hold any escape, valid or not)."""
    group = draw(st.sampled_from(["", "item1."]))
    name = draw(st.sampled_from(NAMES + [n.lower() for n in NAMES[:3]]))
    chosen = draw(st.lists(st.sampled_from(params), max_size=2))
    return group + name + "".join(";" + p for p in chosen) + ":" + draw(values)


@st.composite
def card_text(draw: st.DrawFn, params: list[str], odd: bool) -> str:
    """A card as some client might write it: any version, lines in any order,
    CRLF or LF, folded anywhere; ``odd`` adds text vobject may or may not accept."""
    lines = ["BEGIN:VCARD"]
    version = draw(st.sampled_from(["3.0", "4.0", "2.1", None]))
    if version:
        lines.append(f"VERSION:{version}")
    lines += draw(st.lists(content_line(params), max_size=8))
    if odd:
        lines += draw(st.lists(st.sampled_from(["BEGIN:VCARD", "junk", " x", ""]), max_size=2))
    lines.append("END:VCARD")
    if odd:
        lines.append(draw(st.sampled_from(["", "trailing: text", "END:VCARD"])))
    eol = draw(st.sampled_from(["\r\n", "\n"]))
    text = ""
    for line in lines:
        cut = draw(st.integers(0, len(line)))
        if 0 < cut < len(line) and draw(st.booleans()):
            line = line[:cut] + eol + draw(st.sampled_from([" ", "\t"])) + line[cut:]
        text += line + eol
    return text


def reference(text: str) -> dict[str, Any] | None:
    """What vobject reads, or None where it refuses the card."""
    try:
        return vobject_fields(text)
    except VCardError:
        return None


@settings(max_examples=1000, deadline=None)
@given(text=card_text(PLAIN_PARAMS + ODD_PARAMS, odd=True))
@example(text="BEGIN:VCARD\r\nVERSION:3.0\r\nN:a\\;b;c,d\r\nORG:x\\,y,z;u\r\nEND:VCARD\r\n")
@example(text="BEGIN:VCARD\nTEL;TYPE=fax;TYPE=cell:tel:1\nTEL:\nTEL:2\nEND:VCARD\n")
@example(text="BEGIN:VCARD\nTEL;TYPE=x=y,cell:1\nEND:VCARD\n")
@example(text="BEGIN:VCARD\nNOTE:a\\nb\\Nc\\:d\\\\\nEMAIL:x,y\nEND:VCARD\n")
@example(text="BEGIN:VCARD\nNOTE:trailing \\\nEND:VCARD\n")
def test_where_it_reads_a_card_it_reads_what_vobject_reads(text: str) -> None:
    quick = quick_fields(text, CONTACT_FIELDS)
    expected = reference(text)
    if quick is not None:
        assert expected is not None, "read a card vobject refuses"
        assert quick == expected
    if expected is not None:
        assert card_fields(text) == expected


@settings(max_examples=500, deadline=None)
@given(text=card_text(PLAIN_PARAMS, odd=False))
def test_plain_cards_are_read_directly(text: str) -> None:
    """Without quoted or encoded parameters a well-formed card never needs vobject
    (a value ending in a lone backslash aside)."""
    quick = quick_fields(text, CONTACT_FIELDS)
    if quick is None:
        assert _ends_in_lone_backslash(text), text
    else:
        assert quick == reference(text)


def _ends_in_lone_backslash(text: str) -> bool:
    unfolded = text.replace("\r\n", "\n").replace("\n ", "").replace("\n\t", "")
    for line in unfolded.split("\n"):
        value = line.partition(":")[2]
        if (len(value) - len(value.rstrip("\\"))) % 2:
            return True
    return False


@pytest.mark.parametrize(
    "text",
    [
        'BEGIN:VCARD\nVERSION:4.0\nTEL;TYPE="cell,voice":1\nEND:VCARD\n',
        "BEGIN:VCARD\nVERSION:2.1\nNOTE;ENCODING=QUOTED-PRINTABLE:a=3Db\nEND:VCARD\n",
        "BEGIN:VCARD\nAGENT:\nBEGIN:VCARD\nFN:x\nEND:VCARD\nEND:VCARD\n",
        "BEGIN:VCARD\rFN:x\rEND:VCARD\r",
        "FN:before\nBEGIN:VCARD\nEND:VCARD\n",
        "BEGIN:VCARD\nFN:no end\n",
        "BEGIN:VCALENDAR\nEND:VCALENDAR\n",
    ],
)
def test_unusual_cards_go_to_vobject(text: str) -> None:
    assert quick_fields(text, CONTACT_FIELDS) is None
    expected = reference(text)
    if expected is None:
        with pytest.raises(VCardError):
            card_fields(text)
    else:
        assert card_fields(text) == expected


def test_cards_syncd_writes_are_read_directly() -> None:
    fields = {"first_name": "Ann", "last_name": "Lee; Jr", "email": "a@x", "mobile": "1",
              "company": "Lee, Ek & Co", "notes": "two\nlines \\ here", "title": None}  # fmt: skip
    text = new_card("k-1", fields)
    quick = quick_fields(text, CONTACT_FIELDS)
    assert quick is not None
    assert quick == reference(text)
    assert quick["company"] == "Lee, Ek & Co" and quick["notes"] == "two\nlines \\ here"
