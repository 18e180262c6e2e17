"""The names of 0.25's observer filter language, ``iii.filter`` (``iii-filter`` v1;
sdk_surface.md §2). Only the empty filter is implemented: the language belongs to observe,
which this SDK does not speak yet (docs/sdk.md "Observe").

>>> compile_filter({}).matches({"input": {"amount": 750}})
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

__all__ = ["MATCH_ALL", "CompiledFilter", "FilterError", "FilterErrorCode", "compile_filter"]

FilterErrorCode = Literal["INVALID_FILTER", "INVALID_FILTER_PATH"]


class FilterError(ValueError):
    """A filter the language rejects: ``code`` (``INVALID_FILTER``) and ``message``."""

    def __init__(self, code: FilterErrorCode, message: str) -> None:
        super().__init__(code, message)
        self.code: FilterErrorCode = code
        self.message = message

    def __str__(self) -> str:
        return self.message


class CompiledFilter:
    """A validated filter: ``source`` (the filter as JSON), ``match_all`` (it is ``{}``),
    ``roots`` (the document roots it reads). ``matches(doc)`` never raises.

    Raises ``FilterError`` for a filter that is not a JSON object and ``NotImplementedError``
    for any non-empty one (see the module docstring).
    """

    __slots__ = ("match_all", "roots", "source")

    def __init__(self, src: Any, trusted: bool = False) -> None:
        if not isinstance(src, Mapping):
            raise FilterError("INVALID_FILTER", "a filter is a JSON object")
        if src:
            raise NotImplementedError(
                "iii-filter v1 expressions are not implemented by this SDK yet (docs/sdk.md); "
                "only {} (match every call) is"
            )
        self.source: dict[str, Any] = {}
        self.match_all = True
        self.roots: frozenset[str] = frozenset()

    def matches(self, doc: Mapping[str, Any]) -> bool:
        """Whether ``doc`` (``{input?, output?, error?, caller?, metadata?}``) matches."""
        return self.match_all

    def __repr__(self) -> str:
        return f"CompiledFilter({self.source!r})"


def compile_filter(src: Any, *, trusted: bool = False) -> CompiledFilter:
    """Validate and compile ``src``; see :class:`CompiledFilter` for what raises."""
    return CompiledFilter(src, trusted)


#: The filter that matches every document (``{}``).
MATCH_ALL = CompiledFilter({})
