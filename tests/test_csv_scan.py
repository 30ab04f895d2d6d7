"""Finding CSV rows by id: the block-wise pass for plain files (``scan_plain``) must
note exactly what the line-by-line pass (``scan_lines``) notes, or decline the file.

The connector's update and delete tests cover what the connector does with the rows
and byte spans found; here generated files (any line endings, BOM, quotes, non-ASCII,
blank and one-cell lines, duplicate ids, no final line break, blocks cut anywhere)
compare the two passes directly.
"""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import syncd_csv.files as files_module
from syncd_csv.changes import ChangeListing
from syncd_csv.files import encode_each, encode_rows, open_source
from syncd_csv.layout import resolve_layout
from syncd_csv.scan import Found, scan, scan_lines, scan_plain
from syncd_csv.settings import CsvEntitySettings

IDS = st.sampled_from(["a1", "b2", "c3", "d4", "", "é5", "6"])
CELLS = st.text(alphabet='xyz ,;é"\t0', max_size=4)
ENDINGS = st.sampled_from(["\n", "\r\n", "\r"])
PLAIN_IDS = st.sampled_from(["a1", "b2", "c3", "d4", "", "6"])
PLAIN_CELLS = st.text(alphabet="xyz 0", max_size=4)


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[bytes, str]:
    """A CSV file's bytes (header ``Id<d>Name<d>Note``) and its delimiter."""
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    ending = draw(ENDINGS)
    # half of the files are plain (the block pass takes them), half may hold anything
    plain = draw(st.booleans())
    ids, cells = (PLAIN_IDS, PLAIN_CELLS) if plain else (IDS, CELLS)
    kinds = ["row", "row", "row", "blank", "one-cell"]
    lines = [delimiter.join(["Id", "Name", "Note"])]
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(kinds))
        if kind == "blank":
            lines.append("")
        elif kind == "one-cell":
            lines.append(draw(ids))
        else:
            row = [draw(ids), *draw(st.lists(cells, min_size=1, max_size=3))]
            lines.append(delimiter.join(row))
    if draw(st.integers(0, 4)) == 0:  # now and then, line breaks of every kind mixed
        endings = [draw(ENDINGS) for _ in lines]
        text = "".join(line + end for line, end in zip(lines, endings, strict=True))
    else:
        text = ending.join(lines) + (ending if draw(st.booleans()) else "")
    bom = codecs.BOM_UTF8 if draw(st.booleans()) else b""
    return bom + text.encode(), delimiter


def passes(path: Path, delimiter: str, wanted: set[str]) -> tuple[Found | None, Found]:
    """What ``scan_plain`` notes (None: it declined) and what ``scan_lines`` notes."""
    noted: list[Found | None] = []
    for method in ("plain", "lines"):
        with open_source(path, delimiter) as source:
            assert source is not None
            found = Found(source.token)
            if method == "lines":
                scan_lines(source, 0, wanted, found)
            elif not scan_plain(source, wanted, found):
                assert found == Found(source.token)  # declined: nothing noted
                found = None
            noted.append(found)
    plain, lines = noted
    assert lines is not None
    return plain, lines


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    file=csv_files(),
    wanted=st.sets(IDS, min_size=1, max_size=4),
    block=st.sampled_from([1, 2, 7, 64, 1 << 20]),
)
@example(file=(b"Id,Name,Note\r\na1\r\nb2,", ","), wanted={"a1"}, block=1)  # a one-cell row
@example(file=(b"Id,Name\na1,x\rb2,y\nc3\n\nd4,z", ","), wanted={"b2", "c3", "d4"}, block=64)
def test_the_block_pass_finds_what_the_line_pass_finds(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    file: tuple[bytes, str],
    wanted: set[str],
    block: int,
) -> None:
    data, delimiter = file
    path = tmp_path / "rows.csv"
    path.write_bytes(data)
    monkeypatch.setattr(files_module, "BLOCK", block)
    plain, lines = passes(path, delimiter, wanted)
    if plain is not None:
        assert (plain.rows, plain.spans, plain.missing) == (lines.rows, lines.spans, lines.missing)
        for rid, span in lines.spans.items():
            if span is not None:
                start, length = span
                row = data[start : start + length].decode().rstrip("\r\n")
                assert row.split(delimiter)[0] == rid


def listed(path: Path, delimiter: str, plain: bool, before: dict[bytes, str]) -> tuple:
    """What one digest pass yields and notes: records, digests (in order), changed ids."""
    with open_source(path, delimiter) as source:
        assert source is not None
        spec = CsvEntitySettings(file=path.name, id="Id", fields={"name": "Name"})
        layout = resolve_layout("contact", spec, source.header, path)
        listing = ChangeListing(layout, source, before)
        records = list(listing.plain() if plain else listing.lines())
    return records, list(listing.digests.items()), listing.changed


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    file=csv_files(),
    known=st.lists(st.booleans(), max_size=14),
    block=st.sampled_from([1, 2, 7, 64, 1 << 20]),
)
@example(file=(b"Id,Name,Note\ra1,x\rb2,y\r", ","), known=[True, False], block=7)
def test_the_block_digests_match_the_line_digests(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    file: tuple[bytes, str],
    known: list[bool],
    block: int,
) -> None:
    """On a file without quotes, the block pass hashes every row as the line pass
    does, and yields and notes the same records, whichever rows the cursor knew."""
    data, delimiter = file
    path = tmp_path / "rows.csv"
    path.write_bytes(data)
    with open_source(path, delimiter) as source:
        assert source is not None
        if source.holds_quote():
            return
    monkeypatch.setattr(files_module, "BLOCK", block)
    _, everything, _ = listed(path, delimiter, False, {})
    before = {key: rid for (key, rid), keep in zip(everything, known, strict=False) if keep}
    assert listed(path, delimiter, True, before) == listed(path, delimiter, False, before)


def test_a_plain_file_takes_the_block_pass(tmp_path: Path) -> None:
    rows = "".join(f"id{i},Name {i},note\r\n" for i in range(5000))
    path = tmp_path / "rows.csv"
    path.write_bytes(("Id,Name,Note\r\n" + rows).encode())
    plain, lines = passes(path, ",", {"id7", "id4999", "nope"})
    assert plain is not None
    assert plain.rows["id4999"] == ["id4999", "Name 4999", "note"]
    assert plain.missing == {"nope"}
    assert (plain.rows, plain.spans) == (lines.rows, lines.spans)
    with open_source(path, ",") as source:
        assert source is not None
        found = Found(source.token)
        scan(source, 0, {"id7"}, found)
    assert found.spans == {"id7": lines.spans["id7"]}


ROWS = st.lists(
    st.lists(st.text(alphabet='ab ,;\t|"\r\n\x00é', max_size=4), min_size=1, max_size=4),
    max_size=5,
)


@settings(max_examples=600)
@given(
    rows=ROWS,
    delimiter=st.sampled_from([",", ";", "\t", "|", " "]),
    terminator=st.sampled_from(["\r\n", "\n", "\r"]),
)
@example(rows=[[""]], delimiter=",", terminator="\r\n")  # the csv module quotes it
@example(rows=[["a", "b"], ["c"]], delimiter=",", terminator="\n")  # a one-cell row
@example(rows=[["a\rb", "c"]], delimiter=",", terminator="\n")  # a bare CR, LF file
@example(rows=[["a\nb", "c"]], delimiter=",", terminator="\r")  # a bare LF, CR file
def test_rows_are_encoded_as_the_csv_module_writes_them(
    rows: list[list[str]], delimiter: str, terminator: str
) -> None:
    """Rows are quoted as the csv module quotes them for CRLF files (a cell holding
    either line break is quoted, whatever the file's terminator), end with the file's
    terminator, and read back as the very rows."""
    expected = ""
    for row in rows:
        out = io.StringIO(newline="")
        csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerow(row)
        expected += out.getvalue()[:-2] + terminator
    text = encode_rows(rows, delimiter, terminator)
    assert text == expected
    assert list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)) == rows
    each = encode_each(rows, delimiter, terminator)
    assert each == [encode_rows([row], delimiter, terminator) for row in rows]
