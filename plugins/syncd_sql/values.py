"""Conversions between canonical values and a column's own python type.

Canonical values are strings (booleans for boolean fields). Databases want their own
types back (PostgreSQL refuses ``'5'`` for an integer column), so writes coerce each
value to the column's python type.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from sqlalchemy import Column

from syncd.entities import canonical_value, to_bool


class CoercionError(ValueError):
    """A value cannot be stored in a column; the message names the column."""


def python_type(column: Column[Any]) -> type | None:
    """The python type of a column's values, or None when SQLAlchemy cannot tell."""
    try:
        return column.type.python_type
    except NotImplementedError:
        return None


def is_aware(column: Column[Any]) -> bool:
    """True for a timestamp column that stores a time zone."""
    return bool(getattr(column.type, "timezone", False))


# -- canonical -> column --------------------------------------------------------------


def to_column(value: Any, column: Column[Any]) -> Any:
    """Coerce a canonical value to ``column``'s python type; raise
    :class:`CoercionError` naming the column when it cannot be done."""
    return column_writer(column)(value)


@lru_cache(maxsize=1024)
def column_writer(column: Column[Any]) -> Callable[[Any], Any]:
    """:func:`to_column` for one column, with the column's type looked up once: what
    a table keeps per column, since it runs for every value written."""
    kind = python_type(column)
    convert = _CONVERTERS.get(kind) if kind is not None else None

    def failed(value: Any, exc: Exception) -> CoercionError:
        type_name = kind.__name__ if kind else "?"
        return CoercionError(f"column {column.name}: cannot store {value!r} as {type_name} ({exc})")

    if kind is str:

        def write_text(value: Any) -> Any:
            if value is None or type(value) is str:
                return value
            try:
                return _text(value, column)
            except (ValueError, TypeError, ArithmeticError) as exc:
                raise failed(value, exc) from None

        return write_text

    def write(value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if convert is None:
            return value
        try:
            return convert(value, column)
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise failed(value, exc) from None

    return write


def _text(value: Any, _column: Column[Any]) -> str:
    if isinstance(value, str):
        return value
    return canonical_value("", value) or ""


def _integer(value: Any, _column: Column[Any]) -> int:
    if type(value) is str and value.isdigit() and value.isascii():  # the usual id text
        return int(value)
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        number = Decimal(text)
        if number != number.to_integral_value():
            raise ValueError("not a whole number") from None
        return int(number)


def _float(value: Any, _column: Column[Any]) -> float:
    return float(value if isinstance(value, int | float) else str(value).strip())


def _decimal(value: Any, _column: Column[Any]) -> Decimal:
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError("not a number") from None
    if not number.is_finite():
        raise ValueError("not a finite number")
    return number


def _boolean(value: Any, _column: Column[Any]) -> bool | None:
    return to_bool(value)


def _date(value: Any, _column: Column[Any]) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        return datetime.fromisoformat(text).date()


def _datetime(value: Any, column: Column[Any]) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    else:
        moment = datetime.fromisoformat(str(value).strip())
    if is_aware(column):
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _time(value: Any, _column: Column[Any]) -> time:
    return value if isinstance(value, time) else time.fromisoformat(str(value).strip())


def _uuid(value: Any, _column: Column[Any]) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value).strip())


def _bytes(value: Any, _column: Column[Any]) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


_CONVERTERS: dict[type, Callable[[Any, Column[Any]], Any]] = {
    str: _text,
    int: _integer,
    float: _float,
    Decimal: _decimal,
    bool: _boolean,
    date: _date,
    datetime: _datetime,
    time: _time,
    uuid.UUID: _uuid,
    bytes: _bytes,
}


# -- column -> canonical --------------------------------------------------------------


def read_value(field: str, value: Any) -> Any:
    """The canonical form of a native value; a boolean field holding text that is no
    boolean reads as empty rather than failing the whole listing."""
    try:
        return canonical_value(field, value)
    except ValueError:
        return None


def read_text(field: str, value: Any) -> Any:
    """:func:`read_value` for a field that is not boolean, quick for text values."""
    if type(value) is str:
        return value if value.strip() else None
    if type(value) is int:  # an id column (a company reference): canonical_value's answer
        return str(value)
    return read_value(field, value)
