"""Type hints to JSON Schema, as ``register_function`` derives ``request_format`` /
``response_format`` when none is given (the official 0.25 ``iii.format_utils``;
sdk_surface.md §1b).

Schemas come from pydantic (models and any type pydantic understands) and carry a ``$schema``
header (JSON Schema draft 2020-12), as in 0.25; as there, ``X | None`` of a typed ``X`` is
``{"type": [<type>, "null"]}`` and ``NoneType`` is ``{"type": "null"}``. ``None`` means "no
schema": no hint, ``Any``, or a type pydantic cannot describe.

>>> python_type_to_format(int)
{'type': 'integer', '$schema': 'https://json-schema.org/draft/2020-12/schema'}
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

from ._handlers import schema_of

__all__ = ["extract_request_format", "extract_response_format", "python_type_to_format"]

JSON_SCHEMA_DRAFT = "https://json-schema.org/draft/2020-12/schema"


def python_type_to_format(annotation: Any) -> dict[str, Any] | None:
    """The JSON Schema of ``annotation`` with a ``$schema`` header, or ``None``."""
    schema = _schema(annotation)
    if schema is None:
        return None
    return {**schema, "$schema": JSON_SCHEMA_DRAFT}


def _schema(annotation: Any) -> dict[str, Any] | None:
    if annotation is type(None):  # ``-> None`` as get_type_hints gives it
        return {"type": "null"}
    args = typing.get_args(annotation)
    if type(None) in args and len(args) == 2 and _is_union(annotation):
        inner = _schema(next(arg for arg in args if arg is not type(None)))
        if inner is not None and isinstance(inner.get("type"), str):
            return {**inner, "type": [inner["type"], "null"]}
    return schema_of(annotation)


def _is_union(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    return origin is typing.Union or origin is types.UnionType


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
