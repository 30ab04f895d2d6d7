"""Snapshot serialisation: the quick path through json's C encoder gives exactly what
``json.dumps(sort_keys=True)`` gives, so stored snapshots and their hashes do not
change with it."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from syncd.engine.records import dump, new_key, new_keys, patched, replaced, snapshot_patched
from syncd.entities import is_empty
from syncd.kit.jsontext import decode, encoder

values = st.none() | st.booleans() | st.text() | st.integers() | st.floats(allow_nan=False)
nested = st.recursive(
    values,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
)


@settings(max_examples=500, deadline=None)
@given(fields=st.dictionaries(st.text(), values))
def test_dump_is_sorted_compact_json(fields: dict[str, Any]) -> None:
    expected = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert dump(fields) == expected
    assert json.loads(dump(fields)) == fields


@settings(max_examples=300, deadline=None)
@given(value=nested, sort_keys=st.booleans(), compact=st.booleans())
def test_the_built_once_encoders_write_what_json_dumps_writes(
    value: Any, sort_keys: bool, compact: bool
) -> None:
    """Run-item details and packed id lists go through the same encoders."""
    separators = (",", ":") if compact else (", ", ": ")
    expected = json.dumps(value, sort_keys=sort_keys, separators=separators, ensure_ascii=False)
    assert encoder(sort_keys=sort_keys, compact=compact)(value) == expected


@settings(max_examples=300, deadline=None)
@given(value=nested, space=st.sampled_from(["", " ", "\n"]))
def test_decoding_reads_what_json_loads_reads(value: Any, space: str) -> None:
    text = f"{space}{json.dumps(value)}{space}"
    assert decode(text) == json.loads(text)


@settings(max_examples=300, deadline=None)
@given(
    snapshot=st.dictionaries(st.sampled_from("abcd"), values),
    changes=st.dictionaries(st.sampled_from("abcde"), values | st.sampled_from(["", " "])),
)
def test_patching_a_snapshot_is_patching_its_fields(
    snapshot: dict[str, Any], changes: dict[str, Any]
) -> None:
    """A stored snapshot holds no empty value; patched on, it is what patched() gives."""
    snapshot = {name: value for name, value in snapshot.items() if not is_empty(value)}
    assert snapshot_patched(snapshot, changes) == patched(snapshot, changes)


def test_keys_are_unique_hex_and_in_the_order_they_were_made() -> None:
    """Create keys become record ids and state-store index keys: 32 hex digits, never
    repeated, and each one sorts after every key made before it (even within the
    same microsecond), so new bindings go to the end of the index."""
    keys = [key for _ in range(200) for key in (*new_keys(50), new_key())]
    assert all(len(key) == 32 and int(key, 16) >= 0 for key in keys)
    assert len(set(keys)) == len(keys)
    assert keys == sorted(keys)


#: Texts rich in what JSON must escape, to try to fake a key inside a value.
tricky = st.text(alphabet='company":,{}\\"\u00e9\n x', max_size=12) | st.text(max_size=8)


@settings(max_examples=500, deadline=None)
@given(fields=st.dictionaries(tricky, tricky | values), old=tricky, new=tricky)
@example(fields={"x": '"company":"a"'}, old="a", new="b")
def test_replacing_one_value_in_a_snapshot_is_serialising_anew(
    fields: dict[str, Any], old: str, new: str
) -> None:
    """A create's snapshot is the source's with its company translated; replacing
    the value in the serialised text must give what serialising anew gives."""
    before = {**fields, "company": old}
    assert replaced(dump(before), "company", old, new) == dump({**before, "company": new})


def test_replacing_a_value_that_is_no_string_is_declined() -> None:
    serial = dump({"company": 5, "name": "a"})
    assert replaced(serial, "company", 5, "6") is None
    assert replaced(serial, "name", "a", None) is None
