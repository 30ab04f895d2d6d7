"""The direct vCard writer against vobject: every card it writes reads back (through
vobject) exactly as a card vobject itself built from the same fields."""

from __future__ import annotations

from typing import Any

import vobject
from hypothesis import example, given, settings
from hypothesis import strategies as st

from syncd_vcard import card_fields, new_card
from syncd_vcard.mapping import CONTACT_FIELDS, apply_fields, vobject_fields
from syncd_vcard.writer import fold


def vobject_card(uid: str, fields: dict[str, Any]) -> str:
    """The card vobject builds from ``fields`` (the reference)."""
    card = vobject.vCard()
    card.add("version").value = "3.0"
    card.add("uid").value = uid
    apply_fields(card, fields)
    return str(card.serialize())


text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x85")
    | st.sampled_from([",", ";", "\\", "\n", ":", "é", "漢", "😀"]),
    max_size=120,
)
contact = st.dictionaries(st.sampled_from(CONTACT_FIELDS), st.none() | text)


@settings(max_examples=300, deadline=None)
@given(uid=st.from_regex(r"[a-z0-9-]{1,40}", fullmatch=True), fields=contact)
@example(uid="u", fields=dict.fromkeys(CONTACT_FIELDS, "a;b,c\\d\ne:f"))
@example(uid="u", fields={"notes": "é" * 80, "company": " ", "email": None})
def test_written_cards_read_back_as_vobject_built_ones(uid: str, fields: dict[str, Any]) -> None:
    written = new_card(uid, fields)
    expected = vobject_fields(vobject_card(uid, fields))
    assert vobject_fields(written) == expected
    assert card_fields(written) == expected
    assert all(len(line.encode()) <= 75 for line in written.split("\r\n"))


def test_folding_never_splits_a_character() -> None:
    line = "NOTE:" + "é" * 100
    folded = fold(line)
    assert all(len(part.encode()) <= 75 for part in folded.split("\r\n"))
    assert folded.replace("\r\n ", "").removesuffix("\r\n") == line
