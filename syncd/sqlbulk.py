"""The connector kit's :mod:`syncd.kit.sqlbulk` under its plugin API 1 name: plugins written
for it import from here and keep working. New code imports :mod:`syncd.kit.sqlbulk`."""

from syncd.kit.sqlbulk import (
    MAX_ROWS,
    execute_many,
    insert_rows,
    insert_tuples,
    update_rows,
    update_tuples,
)

__all__ = [
    "MAX_ROWS",
    "execute_many",
    "insert_rows",
    "insert_tuples",
    "update_rows",
    "update_tuples",
]
