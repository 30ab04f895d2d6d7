"""Writing files and making the changes durable, for connectors that write files."""

from __future__ import annotations

import os
from collections.abc import Iterator

#: Bytes handed to the kernel in one ``write``: 64 KiB. Measured on our machines
#: (2026-12-05, rewriting a 13 MB CSV file): 8 KiB writes took 8.5 ms, from the
#: number of calls; 64 KiB writes 4.5 ms every time; 256 KiB and 1 MiB writes 3-5 ms
#: one time and 24-28 ms the next (presumably because the kernel backs a large write
#: with larger blocks of page cache, which our virtual machines' host is slow to hand
#: out when it has not backed them yet; see bench/README.md, *Memory*).
WRITE_CHUNK = 1 << 16

#: The mode of files syncd creates that hold records: owner only, whatever the umask.
PRIVATE_MODE = 0o600


def chunks(data: bytes) -> Iterator[memoryview]:
    """``data`` in pieces of at most :data:`WRITE_CHUNK` bytes, without copying."""
    view = memoryview(data)
    for start in range(0, len(view), WRITE_CHUNK):
        yield view[start : start + WRITE_CHUNK]


def write_bytes(fd: int, data: bytes) -> None:
    """Write all of ``data`` to the file descriptor ``fd``, :data:`WRITE_CHUNK` bytes
    at a time (and the rest of a piece the kernel took only part of)."""
    for piece in chunks(data):
        while piece:
            piece = piece[os.write(fd, piece) :]


def fsync_directory(directory: str | os.PathLike[str]) -> None:
    """Make a rename or a new file in ``directory`` durable (where the file system
    can sync a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a directory; the rename still holds
        pass
    finally:
        os.close(fd)
