"""The columns that describe a row's state rather than its data: the modification
stamp and the soft-delete flag.

The stamp column gets "now" in its own type on every write, and its values become
record versions, modification times and watermarks. The soft-delete flag is read the
same way in SQL and in python: NULL, false, zero or a "no"-like text is live.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, ColumnElement, false, func, or_

from .values import is_aware, python_type

#: Texts a soft-delete text column holds for a live row (compared trimmed, lower-cased).
LIVE_TEXTS: tuple[str, ...] = ("", "0", "false", "no", "n", "off", "f")

#: Types a modification-stamp column may have.
STAMP_TYPES: tuple[type, ...] = (datetime, int, float, Decimal, str)


# -- modification stamps --------------------------------------------------------------


def stamp_now(column: Column[Any]) -> Any:
    """The current time in the stamp column's own type, at the precision the column keeps, so the
    version returned by a write equals the one a later read sees."""
    kind = python_type(column)
    now = datetime.now(UTC)
    if kind is datetime:
        now = _truncate(now, _fraction_digits(column))
        return now if is_aware(column) else now.replace(tzinfo=None)
    if kind is int:
        return int(now.timestamp())
    if kind is float:
        return now.timestamp()
    if kind is Decimal:
        scale = getattr(column.type, "scale", None) or 0
        return Decimal(f"{now.timestamp():.{scale}f}")
    return now.isoformat()


def _fraction_digits(column: Column[Any]) -> int:
    # MySQL / MariaDB keep whole seconds unless the column declares fsp.
    fsp = getattr(column.type, "fsp", None)
    if hasattr(column.type, "fsp"):
        return int(fsp or 0)
    precision = getattr(column.type, "precision", None)
    return 6 if precision is None else int(precision)


def _truncate(moment: datetime, digits: int) -> datetime:
    if digits >= 6:
        return moment
    step = 10 ** (6 - max(digits, 0))
    return moment.replace(microsecond=moment.microsecond // step * step)


def version_of(stamp: Any) -> str | None:
    """A record version from a stamp value; aware times in UTC so the text does not
    depend on the session's time zone."""
    if stamp is None:
        return None
    if isinstance(stamp, datetime) and stamp.tzinfo is not None:
        stamp = stamp.astimezone(UTC)
    return str(stamp)


def modified_at(stamp: Any) -> datetime | None:
    """A stamp value as an aware datetime (naive values are taken as UTC), or None."""
    try:
        if isinstance(stamp, str):  # SQLite's usual stamp: parsed, then as a datetime
            text = stamp.strip()
            # a naive stamp read as UTC in one parse (datetime.replace(tzinfo=...)
            # costs four times the parse, and this runs for every row read); a stamp
            # with an offset fails it, and a bare date comes out naive
            try:
                moment = datetime.fromisoformat(text + "+00:00")
            except ValueError:
                moment = datetime.fromisoformat(text)
            if moment.tzinfo is not None:
                return moment
            stamp = moment
        if isinstance(stamp, datetime):
            return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
        if isinstance(stamp, date):
            return datetime.combine(stamp, time(), UTC)
        if isinstance(stamp, int | float | Decimal) and not isinstance(stamp, bool):
            return datetime.fromtimestamp(float(stamp), UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def rewind(stamp: Any, seconds: float) -> Any:
    """A stamp value moved ``seconds`` into the past (for the watermark overlap)."""
    if not seconds:
        return stamp
    if isinstance(stamp, datetime):
        return stamp - timedelta(seconds=seconds)
    if isinstance(stamp, date):
        return stamp - timedelta(days=math.ceil(seconds / 86400))
    if isinstance(stamp, bool):
        return stamp
    if isinstance(stamp, int):
        return stamp - math.ceil(seconds)
    if isinstance(stamp, float):
        return stamp - seconds
    if isinstance(stamp, Decimal):
        return stamp - Decimal(str(seconds))
    if isinstance(stamp, str):
        return _rewind_text(stamp, seconds)
    return stamp


def _rewind_text(stamp: str, seconds: float) -> str:
    try:
        moment = datetime.fromisoformat(stamp.strip())
    except ValueError:
        return stamp
    sep = stamp[10] if len(stamp) > 10 and stamp[10] in " T" else "T"
    return (moment - timedelta(seconds=seconds)).isoformat(sep=sep)


# -- soft deletion --------------------------------------------------------------------


def is_deleted(value: Any) -> bool:
    """Whether a soft-delete column's value marks the row deleted (truthy)."""
    if value is None:
        return False
    if isinstance(value, str):
        return value.strip().lower() not in LIVE_TEXTS
    if isinstance(value, bool | int | float | Decimal):
        return bool(value)
    return True


def live_clause(column: Column[Any]) -> ColumnElement[bool]:
    """SQL that is true for rows the soft-delete column marks live; the same rule as
    :func:`is_deleted`, so reads in SQL and in python agree."""
    kind = python_type(column)
    if kind is bool:
        return or_(column.is_(None), column == false())
    if kind in (int, float, Decimal):
        return or_(column.is_(None), column == 0)
    if kind is str:
        return or_(column.is_(None), func.lower(func.trim(column)).in_(LIVE_TEXTS))
    return column.is_(None)


def deleted_marker(column: Column[Any]) -> Any:
    """The value that marks a row deleted, in the column's type."""
    kind = python_type(column)
    if kind is bool:
        return True
    if kind in (int, float, Decimal):
        return kind(1)
    if kind is str:
        return "1"
    if kind is date:
        return datetime.now(UTC).date()
    return stamp_now(column)


def live_marker(column: Column[Any]) -> Any:
    """The value a new row gets in the soft-delete column (None: leave it to the
    database), so a NOT NULL flag column without default still accepts inserts."""
    kind = python_type(column)
    if kind is bool:
        return False
    if kind in (int, float, Decimal):
        return kind(0)
    return None
