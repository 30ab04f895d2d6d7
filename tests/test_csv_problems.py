"""Rows the csv connector cannot read are reported, never silently left out of a
listing (issue 17, item 5): above all the stray quote that swallows the rows after it
into one cell, which once deleted 499 records on the other side of a pair."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import make_config, systems
from syncd.engine_setup import runner_for
from syncd.plugin.connector import ListingProblem, Page
from syncd.state import Store
from syncd_csv import CsvConnector, CsvSettings

HEADER = "Id,Email,First\r\n"
BOOKS: dict[str, Any] = {
    "type": "csv",
    "path": "books",
    "entities": {
        "contact": {
            "file": "contacts.csv",
            "id": "Id",
            "fields": {"email": "Email", "first_name": "First"},
        }
    },
}


def rows(count: int, start: int = 1) -> list[str]:
    """Plain rows ``n,p<n>@x.org,First<n>`` with their line breaks."""
    return [f"{n},p{n}@x.org,First{n}\r\n" for n in range(start, start + count)]


def write(root: Path, lines: list[str], header: str = HEADER) -> Path:
    path = root / "books" / "contacts.csv"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes((header + "".join(lines)).encode())
    return path


def connector(root: Path, **overrides: Any) -> CsvConnector:
    settings = {key: value for key, value in BOOKS.items() if key != "type"}
    settings.update(overrides)
    conn = CsvConnector(
        "books", CsvSettings.model_validate(settings, context={"base_dir": root}), base_dir=root
    )
    conn.open()
    return conn


def listing(root: Path, cursor: str | None = None, **overrides: Any) -> list[Page]:
    conn = connector(root, **overrides)
    try:
        return list(conn.changes("contact", cursor))
    finally:
        conn.close()


def problems(pages: list[Page]) -> list[ListingProblem]:
    return [problem for page in pages for problem in page.problems]


def ids(pages: list[Page]) -> list[str]:
    return [record.id for page in pages for record in page.records]


def stray(lines: list[str], index: int) -> list[str]:
    """``lines`` with a stray quote opening the e-mail cell of row ``index``."""
    changed = list(lines)
    rid, rest = changed[index].split(",", 1)
    changed[index] = f'{rid},"{rest}'
    return changed


def damaged(pages: list[Page]) -> None:
    """The listing does not pass for complete, says nothing is gone and gives no cursor."""
    last = pages[-1]
    assert not last.full and last.cursor is None and last.deleted == []


def test_a_stray_quote_with_no_other_quote_after_it(tmp_path: Path) -> None:
    write(tmp_path, stray(rows(500), 1))
    pages = listing(tmp_path)
    assert ids(pages) == ["1"]
    (problem,) = problems(pages)
    assert problem.where == "books/contacts.csv line 3" and problem.id == "2"
    assert "runs from here to the end of the file unclosed" in problem.reason
    assert not problem.warning
    damaged(pages)


def test_a_stray_quote_that_swallows_more_than_the_csv_modules_limit(tmp_path: Path) -> None:
    """The csv module refuses a cell over 128 KiB: the rows before it are listed, the
    problem is reported where the cell starts, and the listing stops there."""
    write(tmp_path, stray(rows(20_000), 1))
    pages = listing(tmp_path)
    assert ids(pages) == ["1"]
    (problem,) = problems(pages)
    assert problem.where == "books/contacts.csv line 3" and "field limit" in problem.reason
    damaged(pages)


def test_an_unclosed_quote_on_the_last_line(tmp_path: Path) -> None:
    write(tmp_path, [*rows(3), '4,"p4@x.org,First4'])
    pages = listing(tmp_path)
    assert ids(pages) == ["1", "2", "3"]
    assert [(p.where, p.id) for p in problems(pages)] == [("books/contacts.csv line 5", "4")]
    damaged(pages)


def test_a_stray_quote_that_runs_into_a_quoted_cell(tmp_path: Path) -> None:
    """The swallowing cell ends at the next quote, the opening quote of a proper cell,
    which is followed by text rather than a delimiter."""
    lines = stray(rows(500), 1)
    lines[399] = '400,"p400@x.org",First400\r\n'
    write(tmp_path, lines)
    pages = listing(tmp_path)
    assert ids(pages) == ["1", *map(str, range(401, 501))]
    (problem,) = problems(pages)
    assert (problem.where, problem.id) == ("books/contacts.csv line 3", "2")
    assert "does not close properly" in problem.reason
    damaged(pages)


def test_a_stray_quote_that_closes_cleanly_further_down(tmp_path: Path) -> None:
    """A quote at the end of a later cell closes the swallowing cell properly: the
    record has no more cells than the header, but its lines are rows of the file."""
    lines = stray(rows(500), 1)
    lines[299] = '300,p300@x.org,First300"\r\n'
    write(tmp_path, lines)
    pages = listing(tmp_path)
    assert ids(pages) == ["1", *map(str, range(301, 501))]
    (problem,) = problems(pages)
    assert (problem.where, problem.id) == ("books/contacts.csv line 3", "2")
    assert "look like rows of the file" in problem.reason
    damaged(pages)


def test_a_swallowed_row_the_last_listing_knew_in_a_two_column_file(tmp_path: Path) -> None:
    """With two columns any line with a comma has a row's shape, so shape alone says
    nothing; but a line inside the cell that starts with the id of a row the cursor
    knew is that row, swallowed."""
    two = "Id,Email\r\n"
    lines = [f"{n},p{n}@x.org\r\n" for n in range(1, 6)]
    contact = {"file": "contacts.csv", "id": "Id", "fields": {"email": "Email"}}
    write(tmp_path, lines, two)
    first = listing(tmp_path, entities={"contact": contact})
    assert not problems(first) and first[-1].cursor is not None
    lines[1] = '2,"p2@x.org\r\n'
    lines[3] = '4,p4@x.org"\r\n'
    write(tmp_path, lines, two)
    pages = listing(tmp_path, first[-1].cursor, entities={"contact": contact})
    assert [(p.where, p.id, p.warning) for p in problems(pages)] == [
        ("books/contacts.csv line 3", "2", False)
    ]
    assert ids(pages) == []  # 5 is unchanged, 3 and 4 are inside row 2's cell
    damaged(pages)


def test_a_cell_with_many_line_breaks_is_synced_with_a_warning(tmp_path: Path) -> None:
    notes = "\r\n".join(f"note line {n}" for n in range(25))
    write(tmp_path, [*rows(2), f'3,p3@x.org,"{notes}"\r\n', *rows(2, start=4)])
    pages = listing(tmp_path)
    assert ids(pages) == ["1", "2", "3", "4", "5"]
    assert pages[-1].full and pages[-1].cursor is not None
    (problem,) = problems(pages)
    assert (problem.where, problem.id, problem.warning) == ("books/contacts.csv line 4", "3", True)
    assert "24 line breaks" in problem.reason


def test_a_few_line_breaks_in_a_quoted_cell_are_no_problem(tmp_path: Path) -> None:
    write(tmp_path, [*rows(2), '3,p3@x.org,"Main St 1,\r\nFloor 2,\r\nBerlin"\r\n', *rows(1, 4)])
    pages = listing(tmp_path)
    assert ids(pages) == ["1", "2", "3", "4"] and problems(pages) == []
    assert pages[-1].full and pages[-1].cursor is not None


@pytest.mark.parametrize("quoted", [False, True], ids=["plain-file", "file-with-quotes"])
def test_rows_without_an_id_or_with_too_many_cells_are_reported_by_line(
    tmp_path: Path, quoted: bool
) -> None:
    """Whichever pass reads the file (the block pass of a file without quotes, or
    the line-at-a-time one), a row is reported at its line, also past the first
    block of the file; a blank row, and an empty cell after the last column, are not
    problems."""
    lines = rows(12_000)
    lines[8_998] = ",lost@x.org,Nobody\r\n"  # line 9000
    lines[10_998] = "11000,p@x.org,First,extra\r\n"  # line 11000
    lines[11_000] = "11002,p@x.org,First,\r\n"  # an empty extra cell: fine
    lines[5_000] = "\r\n"
    if quoted:
        lines[100] = '101,"p101@x.org",First101\r\n'
    write(tmp_path, lines)
    pages = listing(tmp_path)
    assert [(p.where, p.id, p.warning) for p in problems(pages)] == [
        ("books/contacts.csv line 9000", None, False),
        ("books/contacts.csv line 11000", "11000", False),
    ]
    assert problems(pages)[0].reason == "the row has no id (column 'Id')"
    assert problems(pages)[1].reason == "the row has 4 cells where the header has 3"
    assert len(ids(pages)) == 12_000 - 3 and "11002" in ids(pages)
    damaged(pages)


def test_line_numbers_count_the_lines_of_quoted_cells_and_of_the_header(
    tmp_path: Path,
) -> None:
    header = '"Id","Email",\r\n"First"\r\n'  # a header over two lines
    lines = ['1,"a\r\nb",x\r\n', "2,c@x.org,y\r\n", ",no-id@x.org,z\r\n"]
    write(tmp_path, lines, header)
    pages = listing(tmp_path, entities={"contact": {"file": "contacts.csv", "id": "Id"}})
    assert [p.where for p in problems(pages)] == ["books/contacts.csv line 6"]


# -- through the engine ----------------------------------------------------------------


def test_a_stray_quote_deletes_nothing_on_the_other_side(tmp_path: Path, store: Store) -> None:
    """Export from a CSV file with ``deletes = "propagate"``: a stray quote swallows
    499 rows, and the run deletes none of their records; it is partial, with a failed
    item naming the file and line. Mended, the file syncs with nothing deleted."""
    lines = rows(500)
    path = write(tmp_path, lines)
    pair = {
        "mode": "export",
        "left": "books",
        "deletes": "propagate",
        "match": {"contact": ["email"]},
    }
    cfg = make_config(tmp_path, pair, books=BOOKS)
    _, right = systems()
    first = runner_for(cfg, store).run("p")
    assert first.status == "ok" and first.counts["created"] == 500

    path.write_bytes((HEADER + "".join(stray(lines, 1))).encode())
    broken = runner_for(cfg, store).run("p")
    assert broken.status == "partial" and broken.counts["deleted"] == 0
    assert len(right.rows("contact")) == 500
    assert broken.run_id is not None
    failed = [i for i in store.run_items(broken.run_id) if i["outcome"] == "failed"]
    assert len(failed) == 1 and "books/contacts.csv line 3" in failed[0]["error"]
    again = runner_for(cfg, store).run("p")
    assert again.status == "partial" and again.counts["deleted"] == 0

    lines[3] = "4,p4@x.org,Renamed\r\n"
    path.write_bytes((HEADER + "".join(lines)).encode())
    mended = runner_for(cfg, store).run("p")
    assert mended.status == "ok" and mended.counts["deleted"] == 0
    assert mended.counts["updated"] == 1 and len(right.rows("contact")) == 500
