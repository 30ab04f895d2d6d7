"""Field transforms: named functions of one value that a pair applies to a field.

Plugins provide them through the ``syncd_transforms`` hook; a pair names them per
field in its configuration (``[pairs.NAME.transforms.contact] phone = "e164:GB"``).
A transform runs on the values read from *either* side before anything is compared,
so both sides' values are compared, merged and written in the transformed form.
It must therefore be idempotent (``f(f(x)) == f(x)``) and leave a value it cannot
handle as it is; it receives a non-empty value and the argument after the colon in
the configuration (None without one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TransformFunction = Callable[[Any, str | None], Any]


@dataclass(frozen=True, slots=True)
class Transform:
    """A named transform. ``check`` validates the argument at configuration load
    (raise ValueError with a readable message)."""

    name: str
    function: TransformFunction
    description: str
    check: Callable[[str | None], None] | None = None

    def bind(self, argument: str | None) -> Callable[[Any], Any]:
        """The transform with its argument, as the engine applies it."""
        if self.check is not None:
            self.check(argument)
        function = self.function
        return lambda value: function(value, argument)


def split_spec(spec: str) -> tuple[str, str | None]:
    """``"e164:GB"`` -> ``("e164", "GB")``; ``"title"`` -> ``("title", None)``."""
    name, sep, argument = spec.partition(":")
    return name.strip(), (argument.strip() or None) if sep else None
