"""Snapshot serialisation: the quick path through json's C encoder gives exactly what
``json.dumps(sort_keys=True)`` gives, so stored snapshots and their hashes do not
change with it."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.engine.records import dump

values = st.none() | st.booleans() | st.text() | st.integers() | st.floats(allow_nan=False)


@settings(max_examples=500, deadline=None)
@given(fields=st.dictionaries(st.text(), values))
def test_dump_is_sorted_compact_json(fields: dict[str, Any]) -> None:
    expected = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert dump(fields) == expected
    assert json.loads(dump(fields)) == fields
