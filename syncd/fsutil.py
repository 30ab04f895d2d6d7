"""The connector kit's :mod:`syncd.kit.files` under its plugin API 1 name: plugins written
for it import from here and keep working. New code imports :mod:`syncd.kit.files`."""

from syncd.kit.files import (
    PRIVATE_MODE,
    WRITE_CHUNK,
    chunks,
    fsync_directory,
    write_bytes,
)

__all__ = [
    "PRIVATE_MODE",
    "WRITE_CHUNK",
    "chunks",
    "fsync_directory",
    "write_bytes",
]
