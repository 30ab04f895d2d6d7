"""The csv connector's cursor format (row digests and ids), through encode and decode."""

from __future__ import annotations

import base64
import zlib

from hypothesis import example, given
from hypothesis import strategies as st

from syncd_csv.digests import DIGEST_SIZE, PACKED, PREFIX, QUOTED, RowDigests

IDS = st.text(alphabet=st.sampled_from(["a", "7", "|", "\n", "\0", "é", " "]), max_size=4)
ROWS = st.dictionaries(st.binary(min_size=DIGEST_SIZE, max_size=DIGEST_SIZE), IDS, max_size=20)


@given(rows=ROWS)
@example(rows={b"\0" * DIGEST_SIZE: ""})  # one row without an id
@example(rows={b"\1" * DIGEST_SIZE: "a|b", b"\2" * DIGEST_SIZE: ""})
@example(rows={b"\3" * DIGEST_SIZE: "\n"})  # a line break alone
def test_a_cursor_gives_back_its_rows_in_order(rows: dict[bytes, str]) -> None:
    """Every digest and id comes back in order, whatever the ids hold; ids that plain
    lines can carry are written as plain lines, the others as JSON."""
    cursor = RowDigests("1-2-3-tag", rows).encode()
    decoded = RowDigests.decode(cursor)
    assert decoded is not None
    assert decoded.stamp == "1-2-3-tag" == RowDigests.stamp_of(cursor)
    assert list(decoded.rows.items()) == list(rows.items())
    plain = not any("\n" in rid or "\0" in rid for rid in rows.values())
    assert cursor.startswith(PREFIX if plain else QUOTED)


def test_a_cursor_of_the_packed_format_written_before_still_reads() -> None:
    """Cursors stored by earlier versions (ids compressed) keep working."""
    rows = {b"a" * DIGEST_SIZE: "1", b"b" * DIGEST_SIZE: "", b"c" * DIGEST_SIZE: "x|y"}
    ids = base64.b64encode(zlib.compress("\n".join(rows.values()).encode(), 1)).decode()
    digests = base64.b64encode(b"".join(rows)).decode()
    cursor = f"{PACKED}9-9-9-tag|{ids}|{digests}"
    decoded = RowDigests.decode(cursor)
    assert decoded is not None and decoded.rows == rows
    assert RowDigests.stamp_of(cursor) == "9-9-9-tag"


def test_a_cursor_that_does_not_add_up_reads_as_none() -> None:
    """A damaged cursor means "list everything once", not an error or wrong ids."""
    good = RowDigests("s", {b"a" * DIGEST_SIZE: "1", b"b" * DIGEST_SIZE: "2"}).encode()
    assert RowDigests.decode(good.rsplit("\n", 1)[0]) is None  # an id short
    assert RowDigests.decode("rows1|whatever") is None
    assert RowDigests.decode(f"{PREFIX}s|not base64!|1") is None
    assert RowDigests.decode(f"{PREFIX}s|YWJj|1") is None  # 3 bytes: no whole digest
    assert RowDigests.decode(f'{QUOTED}s|{good.split("|")[2]}|"12"') is None
    assert RowDigests.decode(None) is None
