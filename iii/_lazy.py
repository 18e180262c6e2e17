"""Names a module re-exports from a module that imports it (``iii.types`` re-exports ``III``
from ``iii.client``, which imports ``iii.types``): resolved on first attribute access (PEP 562),
so importing either module first works and no import cycle forms."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    module_name: str, names: Mapping[str, tuple[str, str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module's ``__getattr__`` and ``__dir__`` for ``names``: ``{name: (module, attribute)}``.

    ``__getattr__`` imports ``module`` on first use, caches the value in the module's globals
    and raises ``AttributeError`` for any other name, as a missing attribute does.
    """

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        source, attribute = names[name]
        value = getattr(importlib.import_module(source), attribute)
        setattr(importlib.import_module(module_name), name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(importlib.import_module(module_name)), *names})

    return __getattr__, __dir__
