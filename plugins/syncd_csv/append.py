"""Appending rows to a CSV file in place, all or nothing, through a small journal.

Replacing a file to add rows would copy the whole file on every flush, so a large
first export would cost the square of its size. An append writes only the new bytes,
and a journal beside the file makes it atomic across crashes:

1. ``.NAME.append`` is written with the file's current size and the bytes to add,
   then made durable. Until it is complete the file itself is untouched.
2. If the file is still the version the flush read (see :mod:`.guard`), the bytes
   are written at that offset and the file is made durable; else the journal is
   removed and nothing is written.
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

from syncd.kit.files import PRIVATE_MODE, fsync_directory, write_bytes
from syncd_csv.guard import FileChanged, FileToken, file_token, locked, same_version

_MAGIC = b"syncd-csv-append 1"


def journal_path(path: Path) -> Path:
    """Where the journal of ``path`` lives."""
    return path.with_name(f".{path.name}.append")


def append_bytes(path: Path, data: bytes, expect: FileToken) -> None:
    """Append ``data`` to ``path`` atomically, provided the file is still the version
    ``expect`` stamps when the bytes are about to be written (else
    :class:`~syncd_csv.guard.FileChanged`, with the file untouched)."""
    if expect is None:  # there is no file to append to any more
        raise FileChanged(path)
    size = expect[1]
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
    try:
        _apply(path, size, data, expect)
    except FileChanged:
        os.unlink(journal)
        raise
    os.unlink(journal)


def recover(path: Path) -> None:
    """Finish or drop an append that a crash interrupted (a no-op without one), holding
    the file's write lock (see :mod:`.guard`)."""
    journal = journal_path(path)
    if not journal.exists():
        return
    with locked(path, path.name):
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


def _apply(path: Path, size: int, data: bytes, expect: FileToken = None) -> None:
    """Write ``data`` at offset ``size``: after checking the file is the version
    ``expect`` stamps (an append), or cutting it back to ``size`` first (a replay,
    which rewrites whatever part of ``data`` the interrupted append wrote)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        if expect is None:
            os.ftruncate(fd, size)
        elif file_token(os.fstat(fd)) != expect:
            raise FileChanged(path)
        else:
            same_version(path, expect)  # the name still leads to the file opened
        os.lseek(fd, size, os.SEEK_SET)
        write_bytes(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
