"""Appending rows to a CSV file in place, all or nothing, through a small journal.

Replacing a file to add rows would copy the whole file on every flush, so a large
first export would cost the square of its size. An append writes only the new bytes,
and a journal beside the file makes it atomic across crashes:

1. ``.NAME.append`` is written with the file's current size and the bytes to add,
   then made durable. Until it is complete the file itself is untouched.
2. The bytes are written at that offset and the file is made durable.
3. The journal is removed.

:func:`recover` finishes an interrupted append before the file is read or written
again: a complete journal is replayed (truncate to the recorded size, write the
bytes again: the same result however far step 2 got) if the file still ends with a
part of those bytes, and dropped otherwise (an incomplete journal never touched the
file; a file changed since by someone else is left as it is).
Readers that open the file during step 2 may see part of the new rows; syncd's own
reads never do, since they recover first.
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path

from syncd.fsutil import PRIVATE_MODE, fsync_directory, write_bytes

_MAGIC = b"syncd-csv-append 1"


def journal_path(path: Path) -> Path:
    """Where the journal of ``path`` lives."""
    return path.with_name(f".{path.name}.append")


def append_bytes(path: Path, size: int, data: bytes) -> None:
    """Append ``data`` to ``path``, whose current size is ``size``, atomically."""
    journal = journal_path(path)
    header = b"%s %d %d\n" % (_MAGIC, size, len(data))
    fd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_MODE)
    try:
        os.fchmod(fd, PRIVATE_MODE)
        os.write(fd, header)
        write_bytes(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_directory(path.parent)
    _apply(path, size, data)
    os.unlink(journal)


def recover(path: Path) -> None:
    """Finish or drop an append that a crash interrupted (a no-op without one)."""
    journal = journal_path(path)
    try:
        content = journal.read_bytes()
    except FileNotFoundError:
        return
    header, _, data = content.partition(b"\n")
    parts = header.split(b" ")
    complete = (
        len(parts) == 4
        and b" ".join(parts[:2]) == _MAGIC
        and parts[2].isdigit()
        and parts[3].isdigit()
        and len(data) == int(parts[3])
    )
    if complete and _ours(path, int(parts[2]), data):
        _apply(path, int(parts[2]), data)
    with suppress(FileNotFoundError):
        os.unlink(journal)


def _ours(path: Path, size: int, data: bytes) -> bool:
    """True when the file is ``size`` bytes followed by a prefix of ``data``: the state
    an interrupted append leaves, and no other."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            end = handle.tell()
            if not size <= end <= size + len(data):
                return False
            handle.seek(size)
            return handle.read() == data[: end - size]
    except FileNotFoundError:
        return False


def _apply(path: Path, size: int, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        os.lseek(fd, size, os.SEEK_SET)
        write_bytes(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
