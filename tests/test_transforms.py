"""Field transforms: the built-in ``e164`` and ``title``, applied by pairs to values
from either side, and validated with the configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import make_config, systems
from syncd.config import ConfigError
from syncd.engine.rules import EntityRules
from syncd.engine_setup import runner_for
from syncd.plugin.manager import default_registry
from syncd.state import Store
from syncd_transforms import to_e164, to_title

TRANSFORMS = {"contact": {"phone": "e164:GB", "first_name": "title"}}


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("020 7946 0000", "GB", "+442079460000"),
        ("+1 (415) 555-0100", None, "+14155550100"),
        ("+442079460000", "GB", "+442079460000"),  # idempotent
        ("call me maybe", "GB", "call me maybe"),  # not a number: left as it is
        ("020 7946 0000", None, "020 7946 0000"),  # local number, no region: as it is
    ],
)
def test_e164(raw: str, region: str | None, expected: str) -> None:
    assert to_e164(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("ann-marie  o'neil", "Ann-Marie O'Neil"), ("ADA", "Ada"), ("Ada", "Ada")],
)
def test_title(raw: str, expected: str) -> None:
    assert to_title(raw, None) == expected
    assert to_title(expected, None) == expected


def test_built_ins_are_registered_like_plugins() -> None:
    found = default_registry().transforms
    assert {"e164", "title"} <= set(found)
    assert found["e164"].package == "syncd"


def test_a_pair_applies_transforms_to_both_sides_and_settles(tmp_path: Path) -> None:
    cfg = make_config(
        tmp_path,
        {"mode": "two-way", "match": {"contact": ["email"]}, "transforms": TRANSFORMS},
    )
    left, right = systems()
    left.put("contact", {"email": "a@x.org", "phone": "020 7946 0000", "first_name": "ann"})
    right.put("contact", {"email": "b@x.org", "phone": "+1 415 555 0100", "first_name": "BOB"})
    store = Store(cfg.state_url)
    runner = runner_for(cfg, store)
    assert runner.run("p").status == "ok"
    on_right = {r["email"]: r for r in right.rows("contact").values()}
    on_left = {r["email"]: r for r in left.rows("contact").values()}
    assert (on_right["a@x.org"]["phone"], on_right["a@x.org"]["first_name"]) == (
        "+442079460000",
        "Ann",
    )
    assert (on_left["b@x.org"]["phone"], on_left["b@x.org"]["first_name"]) == (
        "+14155550100",
        "Bob",
    )
    # the sources keep their own spelling, and nothing travels again
    assert on_left["a@x.org"]["phone"] == "020 7946 0000"
    before = dict(left.writes), dict(right.writes)
    again = runner.run("p")
    assert (dict(left.writes), dict(right.writes)) == before, again.summary()
    store.close()


@pytest.mark.parametrize(
    ("transforms", "message"),
    [
        ({"contact": {"phone": "e165"}}, "unknown transform 'e165' (known: e164, title"),
        ({"contact": {"phone": "e164:XX"}}, "'XX' is not a country code"),
        ({"contact": {"ph one": "e164"}}, "is not a field name"),
    ],
)
def test_bad_transforms_are_named_in_the_configuration(
    tmp_path: Path, transforms: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        make_config(tmp_path, {"transforms": transforms})
    assert "pairs.p.transforms.contact" in str(info.value) and message in str(info.value)


def test_a_value_a_transform_empties_is_no_value() -> None:
    """Empty never overwrites: a transform that leaves nothing of a value (a
    third-party one, say) takes the field out, as an empty value read would."""
    rules = EntityRules(
        "contact",
        frozenset({"email", "title", "phone"}),
        (),
        (),
        ("email",),
        (("title", lambda value: value.replace("n/a", "")), ("phone", str.strip)),
    )
    selected = rules.select({"email": "a@x.org", "title": "n/a", "phone": " 1 "})
    assert selected == {"email": "a@x.org", "phone": "1"}
