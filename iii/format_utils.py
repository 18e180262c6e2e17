"""Type hints to JSON Schema, as ``register_function`` derives ``request_format`` /
``response_format`` when none is given (the official 0.25 ``iii.format_utils``;
sdk_surface.md §1b).

Schemas come from pydantic (models and any type pydantic understands) and carry a ``$schema``
header (JSON Schema draft 2020-12), as in 0.25. ``None`` means "no schema": no hint, ``Any``,
``None``, or a type pydantic cannot describe.

>>> python_type_to_format(int)
{'type': 'integer', '$schema': 'https://json-schema.org/draft/2020-12/schema'}
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from ._handlers import schema_of

__all__ = ["extract_request_format", "extract_response_format", "python_type_to_format"]

JSON_SCHEMA_DRAFT = "https://json-schema.org/draft/2020-12/schema"


def python_type_to_format(annotation: Any) -> dict[str, Any] | None:
    """The JSON Schema of ``annotation`` with a ``$schema`` header, or ``None``."""
    schema = schema_of(annotation)
    if schema is None:
        return None
    return {**schema, "$schema": JSON_SCHEMA_DRAFT}


def extract_request_format(func: Callable[..., Any] | Any) -> dict[str, Any] | None:
    """The schema of the first parameter's type hint; ``None`` without parameters or hint, or
    when ``func`` is not callable or its hints cannot be resolved."""
    hints = _hints(func)
    if hints is None:
        return None
    params = list(inspect.signature(func).parameters.values())
    if not params:
        return None
    return python_type_to_format(hints.get(params[0].name, inspect.Parameter.empty))


def extract_response_format(func: Callable[..., Any] | Any) -> dict[str, Any] | None:
    """The schema of the return type hint; ``None`` when there is none (as above)."""
    hints = _hints(func)
    if hints is None:
        return None
    return python_type_to_format(hints.get("return", inspect.Parameter.empty))


def _hints(func: Any) -> dict[str, Any] | None:
    if not callable(func):
        return None
    try:
        return typing.get_type_hints(func)
    except Exception:
        return None
