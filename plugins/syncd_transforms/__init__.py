"""Built-in field transforms, registered through the ``syncd`` entry-point group like
any plugin's: ``e164`` (phone numbers in E.164 form, with the ``phonenumbers`` library)
and ``title`` (names in title case)."""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any

from syncd import hookimpl
from syncd.plugin.transforms import Transform


def _phonenumbers() -> ModuleType:
    """phonenumbers, imported on first use: registering the transform should not cost
    every ``syncd`` command its import."""
    import phonenumbers

    return phonenumbers


def to_e164(value: Any, region: str | None) -> Any:
    """A phone number as ``+CCNNNN``. ``region`` (e.g. ``GB``) is the country assumed
    for numbers written without a country code; a text that is no valid number is
    left as it is."""
    if not isinstance(value, str):
        return value
    phonenumbers = _phonenumbers()
    try:
        number = phonenumbers.parse(value, region.upper() if region else None)
    except phonenumbers.NumberParseException:
        return value
    if not phonenumbers.is_valid_number(number):
        return value
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def check_region(region: str | None) -> None:
    """A region argument must be a country phonenumbers knows."""
    if region is not None and region.upper() not in _phonenumbers().SUPPORTED_REGIONS:
        raise ValueError(f"{region!r} is not a country code such as GB, US or DE")


def to_title(value: Any, _argument: str | None) -> Any:
    """Each word capitalised, the rest lower case, spaces collapsed: ``ann-marie
    o'neil`` becomes ``Ann-Marie O'Neil`` (a one-letter prefix before an apostrophe
    counts as a word; ``don't`` stays ``Don't``)."""
    if not isinstance(value, str):
        return value
    text = " ".join(value.split()).lower()
    text = _WORD_START.sub(lambda m: m.group(1) + m.group(2).upper(), text)
    return _NAME_PREFIX.sub(lambda m: m.group(1) + "'" + m.group(2).upper(), text)


_WORD_START = re.compile(r"(^|[\s-])(\w)")
_NAME_PREFIX = re.compile(r"(?:(?<=^)|(?<=[\s-]))(\w)'(\w)")


@hookimpl
def syncd_transforms() -> list[Transform]:
    """Register the built-in transforms."""
    return [
        Transform(
            "e164",
            to_e164,
            "phone numbers to E.164 (+4420...); e164:GB assumes GB for local numbers",
            check_region,
        ),
        Transform("title", to_title, "names to title case (ann o'neil -> Ann O'Neil)"),
    ]
