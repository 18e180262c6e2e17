"""Registered functions: how a handler is called and what its schemas are (sdk_surface §3.5)."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, TypeAdapter

__all__ = ["LocalFunction", "jsonable", "schema_of"]


def schema_of(annotation: Any) -> dict[str, Any] | None:
    """JSON Schema for a type hint (pydantic models and any type pydantic understands)."""
    if annotation is inspect.Parameter.empty or annotation is Any or annotation is None:
        return None
    try:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return annotation.model_json_schema()
        return TypeAdapter(annotation).json_schema()
    except Exception:
        return None


@dataclass
class LocalFunction:
    """A function this worker serves: its handler and how to call it.

    ``wants_metadata``: the handler declares a parameter literally named ``metadata`` (second
    positional or keyword-only) and receives the invocation's metadata sidecar. ``model``: the
    first parameter is annotated with a pydantic model, so the payload is validated into it.
    """

    id: str
    handler: Callable[..., Any]
    is_async: bool
    wants_metadata: bool
    model: type[BaseModel] | None
    request_format: Any
    response_format: Any

    @classmethod
    def from_handler(
        cls,
        function_id: str,
        handler: Callable[..., Any],
        request_format: Any = None,
        response_format: Any = None,
    ) -> LocalFunction:
        if not callable(handler):
            raise TypeError(f"handler for {function_id!r} must be callable, got {handler!r}")
        signature = inspect.signature(handler)
        try:
            hints = typing.get_type_hints(handler)
        except Exception:
            hints = {}
        params = list(signature.parameters.values())
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        wants_metadata = any(
            p.name == "metadata"
            and (p.kind == p.KEYWORD_ONLY or (p in positional and positional.index(p) == 1))
            for p in params
        )
        first_hint = hints.get(positional[0].name, inspect.Parameter.empty) if positional else None
        model = (
            first_hint
            if isinstance(first_hint, type) and issubclass(first_hint, BaseModel)
            else None
        )
        if request_format is None and positional:
            request_format = schema_of(first_hint)
        if response_format is None:
            response_format = schema_of(hints.get("return", inspect.Parameter.empty))
        is_async = inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
            getattr(handler, "__call__", None)  # noqa: B004 - async callable objects
        )
        return cls(
            id=function_id,
            handler=handler,
            is_async=is_async,
            wants_metadata=wants_metadata,
            model=model,
            request_format=jsonable(request_format),
            response_format=jsonable(response_format),
        )

    def arguments(self, data: Any, metadata: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Positional and keyword arguments for one call. Raises pydantic ``ValidationError``
        when the payload does not fit the handler's model."""
        if self.model is not None and not isinstance(data, self.model):
            data = self.model.model_validate(data)
        if self.wants_metadata:
            return (data,), {"metadata": metadata}
        return (data,), {}


def jsonable(value: Any) -> Any:
    """A format for the wire: a pydantic model instance dumped, a model class as its JSON
    Schema, anything else as is."""
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_none=True)
    if isinstance(value, type) and issubclass(value, BaseModel):
        return value.model_json_schema()
    return value
