"""File-system helpers shared by the connectors that write files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from syncd.kit.files import WRITE_CHUNK, write_bytes


@pytest.mark.parametrize(
    "size", [0, 1, WRITE_CHUNK - 1, WRITE_CHUNK, WRITE_CHUNK + 1, 3 * WRITE_CHUNK + 5]
)
def test_write_bytes_writes_everything_in_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    """Every byte arrives in order, and no single write hands the kernel more than
    WRITE_CHUNK bytes, even when the kernel takes less than it was given."""
    data = bytes(index % 251 for index in range(size))
    sizes: list[int] = []
    real_write = os.write

    def short_write(fd: int, chunk: bytes | memoryview) -> int:
        sizes.append(len(chunk))
        # take a little less than offered, as a pipe or a signal can make it do
        return real_write(fd, chunk[: max(1, len(chunk) - 7)])

    monkeypatch.setattr(os, "write", short_write)
    path = tmp_path / "out"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        write_bytes(fd, data)
    finally:
        os.close(fd)
    monkeypatch.undo()
    assert path.read_bytes() == data
    assert all(0 < offered <= WRITE_CHUNK for offered in sizes)
    assert (not data) == (not sizes)
