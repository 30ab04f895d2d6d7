"""What the csv connector writes reads back as written, and new files are private.

The round trip goes through every write path (a new file, an append, a splice, a
row-by-row rewrite) with arbitrary text, in files of every line terminator. Its
budget is small by default; ``HYPOTHESIS_PROFILE=deep`` runs it long.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from syncd.plugin.connector import Create, Update
from syncd_csv import CsvConnector, CsvSettings, append

DEEP = os.environ.get("HYPOTHESIS_PROFILE") == "deep"
FIELDS = {"email": "Email", "first_name": "First", "notes": "Notes"}
#: Any text, with the characters CSV gives a meaning to drawn often.
TEXT = st.text(
    st.one_of(st.sampled_from('\r\n",; '), st.characters(exclude_categories=("Cs",))),
    max_size=10,
)
VALUES = st.fixed_dictionaries({field: TEXT for field in FIELDS})


def connector(root: Path) -> CsvConnector:
    """An opened connector on ``root/books`` with contacts in ``contacts.csv``."""
    (root / "books").mkdir(exist_ok=True)
    parsed = CsvSettings.model_validate(
        {
            "path": "books",
            "entities": {"contact": {"file": "contacts.csv", "id": "Id", "fields": FIELDS}},
        },
        context={"base_dir": root},
    )
    conn = CsvConnector("books", parsed, base_dir=root)
    conn.open()
    return conn


def read_back(root: Path) -> dict[str, dict[str, Any]]:
    """Every record of a full listing by a fresh connector: id -> fields."""
    conn = connector(root)
    try:
        pages = list(conn.changes("contact", None))
    finally:
        conn.close()
    assert not [problem for page in pages for problem in page.problems]
    return {record.id: record.fields for page in pages for record in page.records}


def as_read(values: dict[str, str]) -> dict[str, str | None]:
    """What a record written with ``values`` reads back as: a blank cell is no value."""
    return {field: value if value.strip() else None for field, value in values.items()}


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """Run the block with ``mask`` as the process's umask."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@settings(max_examples=2000 if DEEP else 40, deadline=None)
@given(
    terminator=st.sampled_from(["\r\n", "\n", "\r", None]),
    created=st.lists(VALUES, min_size=1, max_size=4),
    updated=st.lists(VALUES, max_size=4),
    outside_edit=st.booleans(),
)
@example(
    terminator="\n",
    created=[{"email": "a\rb", "first_name": "x", "notes": ""}],
    updated=[],
    outside_edit=False,
)
@example(
    terminator="\r",
    created=[{"email": "a\nb", "first_name": "", "notes": ""}],
    updated=[],
    outside_edit=False,
)
@example(
    terminator="\n",
    created=[{"email": "a", "first_name": "x", "notes": ""}],
    updated=[{"email": "b\r", "first_name": "\rc", "notes": "\r"}],
    outside_edit=True,
)
def test_what_is_written_reads_back_the_same(
    terminator: str | None,
    created: list[dict[str, str]],
    updated: list[dict[str, str]],
    outside_edit: bool,
) -> None:
    """Creates (into a new file, or appended to one with ``terminator``), then updates
    (spliced in, or rewritten row by row when the file was edited in between) read
    back as the values written."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / "books" / "contacts.csv"
        conn = connector(root)
        if terminator is not None:
            path.write_bytes(
                terminator.join(["Id,Email,First,Notes", "o,other@x.org,,"]).encode()
                + terminator.encode()
            )
            conn.close()
            conn.open()
        keys = [f"k{n}" for n in range(len(created))]
        assert all(
            r.ok
            for r in conn.create(
                "contact", [Create(k, v) for k, v in zip(keys, created, strict=True)]
            )
        )
        conn.flush()
        expected = {key: as_read(values) for key, values in zip(keys, created, strict=True)}
        assert {k: v for k, v in read_back(root).items() if k != "o"} == expected
        changes = list(zip(keys, updated, strict=False))
        got = conn.get("contact", [key for key, _ in changes])
        items = [Update(key, values, got[key].version) for key, values in changes]
        assert all(r.ok for r in conn.update("contact", items))
        if outside_edit:
            with path.open("ab") as handle:
                handle.write(b"p,outside@x.org,,\n")
        conn.flush()
        conn.close()
        for key, values in changes:
            expected[key] = as_read(values)
        found = read_back(root)
        assert {k: v for k, v in found.items() if k not in ("o", "p")} == expected
        assert ("p" in found) == outside_edit


def test_a_bare_carriage_return_is_quoted_in_a_file_of_line_feeds(tmp_path: Path) -> None:
    path = tmp_path / "books" / "contacts.csv"
    path.parent.mkdir()
    path.write_bytes(b"Id,Email,First,Notes\n")
    conn = connector(tmp_path)
    conn.create("contact", [Create("k", {"email": "k@x.org", "notes": "one\rtwo"})])
    conn.flush()
    assert path.read_bytes().endswith(b'k,k@x.org,,"one\rtwo"\n')
    assert read_back(tmp_path) == {
        "k": {"email": "k@x.org", "first_name": None, "notes": "one\rtwo"}
    }


def test_files_syncd_creates_are_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "books" / "contacts.csv"
    with umask(0o022):
        conn = connector(tmp_path)
        conn.create("contact", [Create("k", {"email": "k@x.org"})])
        conn.flush()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with umask(0o277):  # would leave even the owner without write access
        (tmp_path / "books" / "contacts.csv").unlink()
        conn.create("contact", [Create("k2", {"email": "k2@x.org"})])
        conn.flush()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_append_journal_is_owner_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "books" / "contacts.csv"
    path.parent.mkdir()
    path.write_bytes(b"Id,Email,First,Notes\r\n")
    path.chmod(0o644)
    modes: list[int] = []
    real_apply = append._apply

    def spy(*args: Any, **kwargs: Any) -> None:
        modes.append(stat.S_IMODE(append.journal_path(path).stat().st_mode))
        real_apply(*args, **kwargs)

    monkeypatch.setattr(append, "_apply", spy)
    with umask(0o022):
        conn = connector(tmp_path)
        conn.create("contact", [Create("k", {"email": "k@x.org"})])
        conn.flush()
    assert modes == [0o600]
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # appended in place: its own mode


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o600])
def test_a_replaced_file_keeps_its_mode(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "books" / "contacts.csv"
    path.parent.mkdir()
    path.write_bytes(b"Id,Email,First,Notes\r\n1,a@x.org,,\r\n")
    path.chmod(mode)
    inode = path.stat().st_ino
    with umask(0o022):
        conn = connector(tmp_path)
        assert conn.update("contact", [Update("1", {"first_name": "Al"})])[0].ok
        conn.flush()
    assert path.stat().st_ino != inode  # replaced, not written in place
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert read_back(tmp_path)["1"]["first_name"] == "Al"
