"""The csv connector, through the public connector API only."""

from __future__ import annotations

import codecs
import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from syncd.plugin.connector import (
    ConfigurationError,
    Create,
    Delete,
    ErrorKind,
    ListingProblem,
    Page,
    Update,
)
from syncd.plugin.manager import load_registry
from syncd_csv import CsvConnector, CsvSettings, index

CONTACTS = "Id,Email,CompanyId,Loyalty Tier,first_name,private,Internal\r\n"


def settings(**overrides: Any) -> dict[str, Any]:
    """Settings as a user writes them: contacts with explicit, custom and implicit
    fields, companies with the id column only."""
    data: dict[str, Any] = {
        "path": "books",
        "entities": {
            "contact": {
                "file": "contacts.csv",
                "id": "Id",
                "fields": {"email": "Email", "company": "CompanyId", "loyalty": "Loyalty Tier"},
            },
            "company": {"file": "companies.csv", "id": "Id"},
        },
    }
    data.update(overrides)
    return data


def connector(tmp_path: Path, **overrides: Any) -> CsvConnector:
    """An opened connector on ``tmp_path/books`` (the directory is created)."""
    (tmp_path / "books").mkdir(exist_ok=True)
    parsed = CsvSettings.model_validate(settings(**overrides), context={"base_dir": tmp_path})
    conn = CsvConnector("books", parsed, base_dir=tmp_path)
    conn.open()
    return conn


def write(tmp_path: Path, text: str, name: str = "contacts.csv", bom: bool = False) -> Path:
    """Write a CSV file byte for byte (no newline translation)."""
    path = tmp_path / "books" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes((codecs.BOM_UTF8 if bom else b"") + text.encode())
    return path


def listing(conn: CsvConnector, entity: str = "contact", cursor: str | None = None) -> list[Page]:
    """Every page of one listing."""
    return list(conn.changes(entity, cursor))


def records(conn: CsvConnector, entity: str = "contact") -> dict[str, dict[str, Any]]:
    """Id -> fields of every listed record."""
    return {r.id: r.fields for page in listing(conn, entity) for r in page.records}


def snapshot(path: Path) -> tuple[int, int, bytes]:
    """What tells a rewrite apart from an untouched file."""
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns, path.read_bytes()


# -- registration and settings ---------------------------------------------------------


def test_registered_through_the_entry_point() -> None:
    assert load_registry().connectors["csv"].cls is CsvConnector


@pytest.mark.parametrize(
    "overrides",
    [
        {"colour": "blue"},
        {"entities": {"contact": {"file": "c.csv", "id": "Id", "sheet": 1}}},
        {"entities": {"invoice": {"file": "i.csv", "id": "Id"}}},
        {"entities": {"contact": {"file": "c.csv", "id": "Id", "fields": {"email": "Id"}}}},
        {"delimiter": ";;"},
    ],
)
def test_bad_settings_are_rejected(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CsvSettings.model_validate(settings(**overrides))


# -- reads -----------------------------------------------------------------------------


def test_listing_is_paged_complete_and_cursor_on_last_page(tmp_path: Path) -> None:
    write(tmp_path, CONTACTS + "".join(f"{i},p{i}@x.org,,,,,\r\n" for i in range(5)))
    pages = listing(connector(tmp_path, page_size=2))
    assert [len(p.records) for p in pages] == [2, 2, 1]
    assert all(p.full for p in pages)
    assert [p.cursor is None for p in pages] == [True, True, False]
    assert [r.id for p in pages for r in p.records] == ["0", "1", "2", "3", "4"]


def test_exact_multiple_of_page_size_has_no_empty_trailing_page(tmp_path: Path) -> None:
    write(tmp_path, CONTACTS + "1,a@x.org\r\n2,b@x.org\r\n")
    pages = listing(connector(tmp_path, page_size=2))
    assert [len(p.records) for p in pages] == [2]
    assert pages[0].cursor is not None


def test_mapped_custom_implicit_and_unmapped_columns(tmp_path: Path) -> None:
    write(tmp_path, CONTACTS + "1,ann@x.org,c7,gold,Ann,yes,secret\r\n2,,,,  ,,\r\n")
    conn = connector(tmp_path)
    assert set(conn.fields("contact")) == {"email", "company", "loyalty", "first_name", "private"}
    assert records(conn) == {
        "1": {
            "email": "ann@x.org",
            "company": "c7",
            "loyalty": "gold",
            "first_name": "Ann",
            "private": True,
        },
        "2": dict.fromkeys(["email", "company", "loyalty", "first_name", "private"]),
    }
    record = listing(conn)[0].records[0]
    assert record.version and record.modified_at is None


def test_unchanged_file_is_not_read_again(tmp_path: Path) -> None:
    path = write(tmp_path, CONTACTS + "1,a@x.org\r\n")
    conn = connector(tmp_path)
    cursor = listing(conn)[-1].cursor
    before = path.stat()
    with open(path, "r+b") as f:  # same size, same inode, same mtime: invisible to the token
        f.seek(len(CONTACTS) + 2)
        f.write(b"b")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))

    assert listing(conn, cursor=cursor) == [Page(cursor=cursor)]
    full = list(conn.changes("contact", cursor, full=True))
    assert full[0].records[0].fields["email"] == "b@x.org"


def test_a_changed_file_yields_only_changed_rows_and_vanished_ids(tmp_path: Path) -> None:
    """The cursor keeps a digest per row: after edits, only the edited and added rows
    come back, deleted ids are reported, and the pages are not complete listings."""
    path = write(tmp_path, CONTACTS + "1,a@x.org\r\n2,b@x.org\r\n3,c@x.org\r\n")
    conn = connector(tmp_path)
    cursor = listing(conn)[-1].cursor
    path.write_bytes((CONTACTS + "1,a@x.org\r\n2,B2@x.org\r\n4,d@x.org\r\n").encode())
    pages = listing(conn, cursor=cursor)
    assert [r.id for p in pages for r in p.records] == ["2", "4"]
    assert [i for p in pages for i in p.deleted] == ["3"]
    assert not any(p.full for p in pages)
    again = pages[-1].cursor
    assert again not in (None, cursor)
    assert listing(conn, cursor=again) == [Page(cursor=again)]
    # a full listing ignores the digests
    full = list(conn.changes("contact", again, full=True))
    assert [r.id for p in full for r in p.records] == ["1", "2", "4"] and full[-1].full


def test_a_deleted_file_reports_every_row_deleted(tmp_path: Path) -> None:
    path = write(tmp_path, CONTACTS + "1,a@x.org\r\n2,b@x.org\r\n")
    conn = connector(tmp_path)
    cursor = listing(conn)[-1].cursor
    path.unlink()
    pages = listing(conn, cursor=cursor)
    assert [i for p in pages for i in p.deleted] == ["1", "2"]


def test_a_changed_mapping_lists_everything_again(tmp_path: Path) -> None:
    write(tmp_path, CONTACTS + "1,a@x.org\r\n")
    cursor = listing(connector(tmp_path))[-1].cursor
    remapped = settings()
    remapped["entities"]["contact"]["fields"]["title"] = "Internal"
    parsed = CsvSettings.model_validate(remapped)
    pages = listing(CsvConnector("books", parsed, base_dir=tmp_path), cursor=cursor)
    assert [r.id for p in pages for r in p.records] == ["1"]


def test_a_file_that_does_not_exist_yet(tmp_path: Path) -> None:
    conn = connector(tmp_path)
    assert listing(conn) == [Page(cursor=listing(conn)[0].cursor, full=True)]
    assert conn.get("contact", ["x"]) == {}
    assert conn.find("contact", "email", ["a@x.org"]) == {}
    assert set(conn.fields("contact")) == {"email", "company", "loyalty"}

    conn.create("contact", [Create("k1", {"email": "a@x.org", "loyalty": None})])
    conn.flush()
    path = tmp_path / "books" / "contacts.csv"
    assert path.read_bytes() == b"Id,Email,CompanyId,Loyalty Tier\r\nk1,a@x.org,,\r\n"


def test_an_empty_file_is_an_empty_table(tmp_path: Path) -> None:
    write(tmp_path, "")
    pages = listing(connector(tmp_path))
    assert len(pages) == 1 and pages[0].records == [] and pages[0].full


def test_missing_directory_is_a_configuration_error(tmp_path: Path) -> None:
    parsed = CsvSettings.model_validate(settings(path="nowhere"))
    conn = CsvConnector("books", parsed, base_dir=tmp_path)
    with pytest.raises(ConfigurationError, match="nowhere"):
        conn.open()
    with pytest.raises(ConfigurationError):
        conn.check()
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("header", ["Key,Email,CompanyId,Loyalty Tier\r\n", "Id,Email\r\n"])
def test_header_that_does_not_fit_is_a_configuration_error(tmp_path: Path, header: str) -> None:
    write(tmp_path, header + "1,a@x.org\r\n")
    with pytest.raises(ConfigurationError, match=r"contacts\.csv"):
        connector(tmp_path)


def test_a_file_that_is_not_utf8_is_a_configuration_error(tmp_path: Path) -> None:
    path = write(tmp_path, CONTACTS)
    path.write_bytes(path.read_bytes() + "1,zoë@x.org\r\n".encode("latin-1"))
    with pytest.raises(ConfigurationError, match="UTF-8"):
        listing(connector(tmp_path))


def test_get_by_id(tmp_path: Path) -> None:
    write(tmp_path, CONTACTS + "1,a@x.org\r\n2,b@x.org\r\n3,c@x.org\r\n")
    found = connector(tmp_path).get("contact", ["3", "1", "9"])
    assert {rid: r.fields["email"] for rid, r in found.items()} == {"1": "a@x.org", "3": "c@x.org"}


def test_find_normalises_and_returns_every_candidate(tmp_path: Path) -> None:
    write(tmp_path, CONTACTS + "1, Ann@X.org \r\n2,bob@x.org\r\n3,ann@x.org\r\n")
    found = connector(tmp_path).find("contact", "email", ["ann@x.org", "zed@x.org"])
    assert list(found) == ["ann@x.org"]
    assert sorted(r.id for r in found["ann@x.org"]) == ["1", "3"]


def test_find_sees_flushed_creates_and_outside_edits(tmp_path: Path) -> None:
    path = write(tmp_path, CONTACTS + "1,a@x.org\r\n")
    conn = connector(tmp_path)
    assert conn.find("contact", "email", ["new@x.org"]) == {}
    conn.create("contact", [Create("k1", {"email": "New@x.org"})])
    conn.flush()
    assert [r.id for r in conn.find("contact", "email", ["new@x.org"])["new@x.org"]] == ["k1"]
    with open(path, "ab") as f:
        f.write(b"2,out@x.org\r\n")
    assert [r.id for r in conn.find("contact", "email", ["out@x.org"])["out@x.org"]] == ["2"]


def test_find_across_many_flushes_with_index_merges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Created rows flushed batch after batch are found by every key, and keys never
    written are not, while the index folds its recent keys into its sorted part."""
    monkeypatch.setattr(index, "_MERGE_AT", 4)
    write(tmp_path, CONTACTS + "1,first@x.org\r\n")
    conn = connector(tmp_path)
    assert conn.find("contact", "email", ["none@x.org"]) == {}
    for batch in range(6):
        emails = [f"p{batch}.{i}@x.org" for i in range(7)]
        conn.create(
            "contact", [Create(f"k{batch}.{i}", {"email": e}) for i, e in enumerate(emails)]
        )
        conn.flush()
        assert conn.find("contact", "email", [f"p{batch}.9@x.org", "none@x.org"]) == {}
        found = conn.find("contact", "email", ["first@x.org", *emails])
        assert sorted(found) == sorted(["first@x.org", *emails])
    assert (
        conn.find("contact", "email", [f"p{b}.{i}@x.org" for b in range(7, 9) for i in range(9)])
        == {}
    )


# -- writes ----------------------------------------------------------------------------


def test_create_uses_the_key_as_id_and_appends(tmp_path: Path) -> None:
    write(tmp_path, CONTACTS + "1,a@x.org,,,,,keep\r\n")
    conn = connector(tmp_path)
    fields = {"email": "b@x.org", "private": False, "first_name": None, "shoe_size": "44"}
    [result] = conn.create("contact", [Create("f00d", fields)])
    assert result.ok and result.id == "f00d"
    conn.flush()
    lines = (tmp_path / "books" / "contacts.csv").read_text().splitlines()
    assert lines[1:] == ["1,a@x.org,,,,,keep", "f00d,b@x.org,,,,false,"]
    [record] = conn.get("contact", ["f00d"]).values()
    assert record.version == result.version


def test_append_to_a_file_without_final_line_break(tmp_path: Path) -> None:
    path = write(tmp_path, "Id,Email,CompanyId,Loyalty Tier\n1,a@x.org,,")
    conn = connector(tmp_path)
    conn.create("contact", [Create("k", {"email": "b@x.org"})])
    conn.flush()
    assert path.read_text() == "Id,Email,CompanyId,Loyalty Tier\n1,a@x.org,,\nk,b@x.org,,\n"


def test_update_changes_given_fields_and_keeps_the_rest(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        CONTACTS + "1,a@x.org,c1,gold,Ann,,x\r\n2,b@x.org,c2,,Bob,,y\r\n3,c@x.org,,,,,z\r\n",
    )
    conn = connector(tmp_path)
    [result] = conn.update("contact", [Update("2", {"email": "B@x.org", "private": True})])
    assert result.ok
    conn.flush()
    assert path.read_text().splitlines()[1:] == [
        "1,a@x.org,c1,gold,Ann,,x",
        "2,B@x.org,c2,,Bob,true,y",
        "3,c@x.org,,,,,z",
    ]
    assert conn.get("contact", ["2"])["2"].version == result.version


def test_update_of_a_missing_record_is_not_found(tmp_path: Path) -> None:
    write(tmp_path, CONTACTS + "1,a@x.org\r\n")
    conn = connector(tmp_path)
    [result] = conn.update("contact", [Update("9", {"email": "x@x.org"})])
    assert result.error is not None and result.error.kind is ErrorKind.NOT_FOUND


def test_update_at_a_stale_version_is_a_retryable_conflict(tmp_path: Path) -> None:
    write(tmp_path, CONTACTS + "1,a@x.org\r\n")
    conn = connector(tmp_path)
    version = listing(conn)[0].records[0].version
    stale, fresh = conn.update(
        "contact",
        [Update("1", {"email": "b@x.org"}, "0" * 16), Update("1", {"email": "c@x.org"}, version)],
    )
    assert stale.error is not None and stale.error.kind is ErrorKind.CONFLICT
    assert stale.error.retryable
    assert fresh.ok


def test_results_account_for_writes_not_yet_flushed(tmp_path: Path) -> None:
    write(tmp_path, CONTACTS + "1,a@x.org\r\n")
    conn = connector(tmp_path)
    [created] = conn.create("contact", [Create("k", {"email": "k@x.org"})])
    [updated] = conn.update("contact", [Update("k", {"loyalty": "gold"}, created.version)])
    assert updated.ok and updated.version != created.version
    assert conn.delete("contact", [Delete("1")])[0].ok
    [gone] = conn.update("contact", [Update("1", {"email": "z@x.org"})])
    assert gone.error is not None and gone.error.kind is ErrorKind.NOT_FOUND
    conn.flush()
    assert list(records(conn)) == ["k"]
    assert records(conn)["k"]["loyalty"] == "gold"


def test_delete_is_idempotent(tmp_path: Path) -> None:
    write(tmp_path, CONTACTS + "1,a@x.org\r\n2,b@x.org\r\n")
    conn = connector(tmp_path)
    assert all(r.ok for r in conn.delete("contact", [Delete("1"), Delete("9")]))
    conn.flush()
    assert list(records(conn)) == ["2"]
    assert conn.delete("contact", [Delete("1")])[0].ok


def test_delete_at_a_stale_version_is_a_retryable_conflict(tmp_path: Path) -> None:
    write(tmp_path, CONTACTS + "1,a@x.org\r\n")
    conn = connector(tmp_path)
    version = listing(conn)[0].records[0].version
    [stale] = conn.delete("contact", [Delete("1", "0" * 16)])
    assert stale.error is not None and stale.error.kind is ErrorKind.CONFLICT
    assert stale.error.retryable
    assert conn.delete("contact", [Delete("1", version)])[0].ok


def test_a_full_buffer_is_flushed_without_waiting(tmp_path: Path) -> None:
    path = write(tmp_path, CONTACTS)
    conn = connector(tmp_path)
    conn.create("contact", [Create(f"k{i}", {}) for i in range(CsvConnector.batch_size)])
    assert len(path.read_text().splitlines()) == CsvConnector.batch_size + 1


def test_flush_replaces_the_file_atomically(tmp_path: Path) -> None:
    path = write(tmp_path, CONTACTS + "1,a@x.org\r\n")
    conn = connector(tmp_path)
    inode = path.stat().st_ino
    conn.update("contact", [Update("1", {"email": "b@x.org"})])
    conn.flush()
    assert path.stat().st_ino != inode
    assert sorted(os.listdir(path.parent)) == [".contacts.csv.lock", "contacts.csv"]


def test_a_run_that_writes_nothing_leaves_files_untouched(tmp_path: Path) -> None:
    path = write(tmp_path, CONTACTS + "1,a@x.org\r\n")
    before = snapshot(path)
    conn = connector(tmp_path)
    listing(conn)
    conn.get("contact", ["1"])
    conn.find("contact", "email", ["a@x.org"])
    conn.flush()
    conn.delete("contact", [Delete("gone")])  # already gone: nothing to rewrite
    conn.flush()
    conn.create("contact", [Create("k", {"email": "k@x.org"})])
    conn.close()  # unflushed writes are discarded
    assert snapshot(path) == before
    assert sorted(os.listdir(path.parent)) == [".contacts.csv.lock", "contacts.csv"]


def test_bom_and_line_terminator_are_kept(tmp_path: Path) -> None:
    path = write(tmp_path, "Id,Email,CompanyId,Loyalty Tier\n1,a@x.org,,\n", bom=True)
    conn = connector(tmp_path)
    assert records(conn)["1"]["email"] == "a@x.org"
    conn.update("contact", [Update("1", {"loyalty": "gold"})])
    conn.flush()
    assert (
        path.read_bytes() == codecs.BOM_UTF8 + b"Id,Email,CompanyId,Loyalty Tier\n1,a@x.org,,gold\n"
    )


def test_another_delimiter(tmp_path: Path) -> None:
    path = write(tmp_path, "Id;Email;CompanyId;Loyalty Tier\n1;a,b@x.org;;\n")
    conn = connector(tmp_path, delimiter=";")
    assert records(conn)["1"]["email"] == "a,b@x.org"
    conn.update("contact", [Update("1", {"loyalty": "x;y"})])
    conn.flush()
    assert path.read_text() == 'Id;Email;CompanyId;Loyalty Tier\n1;a,b@x.org;;"x;y"\n'


def test_quoting_stays_minimal_and_round_trips(tmp_path: Path) -> None:
    path = write(tmp_path, CONTACTS)
    conn = connector(tmp_path)
    conn.create("contact", [Create("k", {"email": 'a "b", c', "loyalty": "two\nlines"})])
    conn.flush()
    assert path.read_bytes().endswith(b'k,"a ""b"", c",,"two\nlines",,,\r\n')
    assert records(conn)["k"]["loyalty"] == "two\nlines"


# -- rows read as raw text: quoted, multi-line and odd rows ------------------------------

ODD_ROWS = (
    CONTACTS
    + '1,"quoted@x.org",,"two\r\nlines, and a comma",Ann\r\n'
    + '2,b"c@x.org,,plain,Bob\r\n'  # a quote inside an unquoted cell is literal
    + '"3","c@x.org",,"say ""hi""",Cy\r\n'
    + ",no-id@x.org,,,\r\n"
    + "\r\n"
    + "5,e@x.org,,last,Eve"  # no final line break
)


def test_rows_with_quotes_line_breaks_and_no_id_are_read_like_the_csv_module(
    tmp_path: Path,
) -> None:
    write(tmp_path, ODD_ROWS)
    found = records(connector(tmp_path))
    assert sorted(found) == ["1", "2", "3", "5"]
    problems = [problem for page in listing(connector(tmp_path)) for problem in page.problems]
    assert problems == [
        ListingProblem("books/contacts.csv line 6", "the row has no id (column 'Id')")
    ]
    assert found["1"]["loyalty"] == "two\r\nlines, and a comma"
    assert found["2"]["email"] == 'b"c@x.org'
    assert found["3"]["loyalty"] == 'say "hi"'
    assert found["5"]["first_name"] == "Eve"
    assert set(connector(tmp_path).get("contact", ["1", "3", "5"])) == {"1", "3", "5"}


def test_edits_among_odd_rows_yield_only_the_edited_records(tmp_path: Path) -> None:
    odd_rows = ODD_ROWS.replace(",no-id@x.org,,,\r\n", "")  # a problem: no cursor
    path = write(tmp_path, odd_rows)
    conn = connector(tmp_path)
    cursor = listing(conn)[-1].cursor
    edited = odd_rows.replace("two\r\nlines", "two\r\nedited lines").replace("Cy", "Cyd")
    path.write_bytes(edited.replace("2,b", "9,b").encode())
    pages = listing(conn, cursor=cursor)
    assert sorted(r.id for p in pages for r in p.records) == ["1", "3", "9"]
    assert [i for p in pages for i in p.deleted] == ["2"]
    assert listing(conn, cursor=pages[-1].cursor) == [Page(cursor=pages[-1].cursor)]


def test_a_rewrite_copies_untouched_rows_byte_for_byte(tmp_path: Path) -> None:
    """Only the updated row is written anew (with minimal quoting); every other row,
    including superfluous quotes and the missing final line break, keeps its bytes."""
    path = write(tmp_path, ODD_ROWS)
    conn = connector(tmp_path)
    version = conn.get("contact", ["3"])["3"].version
    assert conn.update("contact", [Update("3", {"first_name": "Cyd"}, version)])[0].ok
    conn.create("contact", [Create("k", {"email": "k@x.org"})])
    conn.flush()
    expected = ODD_ROWS.replace('"3","c@x.org",,"say ""hi""",Cy', '3,c@x.org,,"say ""hi""",Cyd,,')
    assert path.read_bytes().decode() == expected + "\r\nk,k@x.org,,,,,\r\n"
    assert records(conn)["3"]["first_name"] == "Cyd"


def test_a_file_with_carriage_return_line_breaks(tmp_path: Path) -> None:
    path = write(tmp_path, CONTACTS.replace("\r\n", "\r") + "1,a@x.org\r2,b@x.org\r")
    conn = connector(tmp_path)
    cursor = listing(conn)[-1].cursor
    assert sorted(records(conn)) == ["1", "2"]
    version = conn.get("contact", ["2"])["2"].version
    assert conn.update("contact", [Update("2", {"email": "c@x.org"}, version)])[0].ok
    conn.flush()
    assert path.read_bytes().endswith(b"\r1,a@x.org\r2,c@x.org,,,,,\r")
    assert [r.id for p in listing(conn, cursor=cursor) for r in p.records] == ["2"]


# -- appends: in place, all or nothing --------------------------------------------------


def test_creates_are_appended_in_place(tmp_path: Path) -> None:
    """A flush of creates only adds bytes at the end (same inode, nothing copied) and
    leaves no journal behind."""
    path = write(tmp_path, CONTACTS + "1,a@x.org\r\n")
    inode = path.stat().st_ino
    conn = connector(tmp_path)
    conn.create("contact", [Create("k", {"email": "k@x.org"})])
    conn.flush()
    assert path.stat().st_ino == inode
    assert path.read_bytes() == (CONTACTS + "1,a@x.org\r\nk,k@x.org,,,,,\r\n").encode()
    assert sorted(p.name for p in path.parent.iterdir()) == [".contacts.csv.lock", "contacts.csv"]


def interrupted_append(monkeypatch: pytest.MonkeyPatch, conn: CsvConnector, part: int) -> None:
    """Flush a create, dying after ``part`` bytes of it reached the file itself."""
    from syncd_csv import append

    def die(path: Path, size: int, data: bytes, *_: object) -> None:
        with path.open("r+b") as handle:
            handle.seek(size)
            handle.write(data[:part])
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(append, "_apply", die)
    conn.create("contact", [Create("k", {"email": "k@x.org"})])
    with pytest.raises(KeyboardInterrupt):
        conn.flush()
    monkeypatch.undo()


@pytest.mark.parametrize("part", [0, 5])
def test_an_interrupted_append_is_finished_before_the_next_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, part: int
) -> None:
    path = write(tmp_path, CONTACTS + "1,a@x.org\r\n")
    interrupted_append(monkeypatch, connector(tmp_path), part)
    assert (tmp_path / "books" / ".contacts.csv.append").exists()
    assert sorted(records(connector(tmp_path))) == ["1", "k"]
    assert path.read_bytes() == (CONTACTS + "1,a@x.org\r\nk,k@x.org,,,,,\r\n").encode()
    assert not (tmp_path / "books" / ".contacts.csv.append").exists()


def test_an_incomplete_journal_is_dropped_and_the_file_kept(tmp_path: Path) -> None:
    original = CONTACTS + "1,a@x.org\r\n"
    path = write(tmp_path, original)
    journal = tmp_path / "books" / ".contacts.csv.append"
    journal.write_bytes(b"syncd-csv-append 1 %d 40\nk,k@x" % len(original))
    assert sorted(records(connector(tmp_path))) == ["1"]
    assert path.read_bytes() == original.encode() and not journal.exists()


def test_a_journal_is_not_replayed_over_a_file_someone_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, CONTACTS + "1,a@x.org\r\n")
    interrupted_append(monkeypatch, connector(tmp_path), 5)
    edited = CONTACTS + "1,a@x.org\r\n2,someone@else.org\r\n"
    path.write_bytes(edited.encode())
    assert sorted(records(connector(tmp_path))) == ["1", "2"]
    assert path.read_bytes() == edited.encode()


# -- rewrites that copy byte ranges around the rows they change --------------------------


def test_updates_and_deletes_among_non_ascii_rows_with_a_bom(tmp_path: Path) -> None:
    """Byte offsets, not character counts: rows after multi-byte text are found."""
    text = CONTACTS + "1,zoë@x.org,,Ünïcödé,Zoë\r\n2,b@x.org,,,Bob\r\n3,c@x.org,,,Cy\r\n"
    path = write(tmp_path, text, bom=True)
    conn = connector(tmp_path)
    assert conn.update("contact", [Update("2", {"first_name": "Bøb"})])[0].ok
    assert conn.delete("contact", [Delete("3")])[0].ok
    conn.flush()
    expected = text.replace("2,b@x.org,,,Bob", "2,b@x.org,,,Bøb,,")
    expected = expected.replace("3,c@x.org,,,Cy\r\n", "")
    assert path.read_bytes() == codecs.BOM_UTF8 + expected.encode()


def test_deleting_the_unterminated_last_row_and_creating_one(tmp_path: Path) -> None:
    path = write(tmp_path, CONTACTS + "1,a@x.org\r\n2,b@x.org")
    conn = connector(tmp_path)
    assert conn.update("contact", [Update("1", {"first_name": "Al"})])[0].ok
    assert conn.delete("contact", [Delete("2", conn.get("contact", ["2"])["2"].version)])[0].ok
    conn.create("contact", [Create("k", {"email": "k@x.org"})])
    conn.flush()
    assert path.read_bytes() == (CONTACTS + "1,a@x.org,,,Al,,\r\nk,k@x.org,,,,,\r\n").encode()


def test_rows_sharing_an_id_are_all_rewritten(tmp_path: Path) -> None:
    """A malformed file with one id twice: every row with it changes, as a row by row
    rewrite would do."""
    path = write(tmp_path, CONTACTS + "1,a@x.org\r\n2,b@x.org\r\n1,dup@x.org\r\n")
    conn = connector(tmp_path)
    assert conn.update("contact", [Update("1", {"first_name": "One"})])[0].ok
    conn.flush()
    lines = path.read_text().splitlines()
    assert lines[1].endswith(",One,,") and lines[3].endswith(",One,,")
    assert lines[3].startswith("1,dup@x.org")


def test_a_file_edited_between_update_and_flush_is_rewritten_row_by_row(tmp_path: Path) -> None:
    path = write(tmp_path, CONTACTS + "1,a@x.org\r\n2,b@x.org\r\n")
    conn = connector(tmp_path)
    assert conn.update("contact", [Update("2", {"first_name": "Bo"})])[0].ok
    path.write_bytes((CONTACTS + "0,new@x.org\r\n1,a@x.org\r\n2,b@x.org\r\n").encode())
    conn.flush()
    expected = CONTACTS + "0,new@x.org\r\n1,a@x.org\r\n2,b@x.org,,,Bo,,\r\n"
    assert path.read_bytes() == expected.encode()


def test_a_row_updated_twice_before_a_flush_gets_both_updates(tmp_path: Path) -> None:
    """The flush writes the cells the updates worked out; a second update of a row
    builds on the first, also when the file changed in between."""
    path = write(tmp_path, CONTACTS + "1,a@x.org\r\n2,b@x.org\r\n")
    conn = connector(tmp_path)
    assert conn.update("contact", [Update("2", {"first_name": "Bo"})])[0].ok
    assert conn.update("contact", [Update("2", {"loyalty": "gold"})])[0].ok
    conn.flush()
    assert (records(conn)["2"]["first_name"], records(conn)["2"]["loyalty"]) == ("Bo", "gold")
    path.write_bytes((CONTACTS + "1,a@x.org\r\n2,b@x.org\r\n").encode())
    assert conn.update("contact", [Update("2", {"first_name": "Bo"})])[0].ok
    assert conn.update("contact", [Update("1", {"first_name": "Al"})])[0].ok
    path.write_bytes((CONTACTS + "1,a@x.org\r\n2,b@y.org\r\n").encode())  # edited meanwhile
    assert conn.update("contact", [Update("2", {"loyalty": "gold"})])[0].ok
    conn.flush()
    rows = records(conn)
    assert rows["2"]["email"] == "b@y.org"
    assert (rows["2"]["first_name"], rows["2"]["loyalty"]) == ("Bo", "gold")
    assert rows["1"]["first_name"] == "Al"


def test_a_splice_larger_than_a_write_chunk(tmp_path: Path) -> None:
    """Updates spread over a file of three write chunks, and creates that together
    exceed one, land byte for byte where they belong."""
    from syncd.kit.files import WRITE_CHUNK

    rows = [f"{n},person{n}@example.org,c{n % 7}" for n in range(6000)]
    text = CONTACTS + "".join(row + "\r\n" for row in rows)
    assert len(text) > 2 * WRITE_CHUNK
    path = write(tmp_path, text)
    conn = connector(tmp_path)
    changed = ["1", "2999", "5999"]
    got = conn.get("contact", changed)
    updates = [Update(rid, {"email": f"new{rid}@x.org"}, got[rid].version) for rid in changed]
    assert all(result.ok for result in conn.update("contact", updates))
    creates = [Create(f"k{n}", {"email": f"k{n}@example.org"}) for n in range(5000)]
    assert all(result.ok for result in conn.create("contact", creates))
    conn.flush()
    for rid in changed:
        rows[int(rid)] = f"{rid},new{rid}@x.org,c{int(rid) % 7},,,,"
    expected = CONTACTS + "".join(row + "\r\n" for row in rows)
    expected += "".join(f"k{n},k{n}@example.org,,,,,\r\n" for n in range(5000))
    assert len(expected) - len(text) > WRITE_CHUNK
    assert path.read_bytes().decode() == expected


@pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="the system has no posix_fadvise")
def test_a_splice_releases_the_old_versions_cache_as_it_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old file's cached pages are dropped, in steps, over its whole length, so a
    rewrite holds one file's worth of page cache; the new content is unaffected."""
    rows = [f"{n},person{n}@example.org,c{n % 7}" for n in range(100_000)]
    text = CONTACTS + "".join(row + "\r\n" for row in rows)
    path = write(tmp_path, text)
    old_inode = path.stat().st_ino
    conn = connector(tmp_path)
    changed = ["10", "50000", "99990"]
    got = conn.get("contact", changed)
    updates = [Update(rid, {"email": f"new{rid}@x.org"}, got[rid].version) for rid in changed]
    assert all(result.ok for result in conn.update("contact", updates))
    advice: list[tuple[int, int, int]] = []
    real_advise = os.posix_fadvise

    def spy(fd: int, offset: int, length: int, what: int) -> None:
        if os.fstat(fd).st_ino == old_inode:
            advice.append((offset, length, what))
        real_advise(fd, offset, length, what)

    monkeypatch.setattr(os, "posix_fadvise", spy)
    conn.flush()
    assert {what for *_, what in advice} == {os.POSIX_FADV_DONTNEED}
    assert len(advice) > 1  # in steps as the copy passes, not once at the end
    position = 0
    for offset, length, _ in advice:
        assert offset == position and length > 0
        position += length
    assert position == len(text)
    for rid in changed:
        rows[int(rid)] = f"{rid},new{rid}@x.org,c{int(rid) % 7},,,,"
    assert path.read_bytes().decode() == CONTACTS + "".join(row + "\r\n" for row in rows)
