"""The invocation context: which function and invocation a handler is running for.

Set by the SDK around every handler (async ones on the loop, sync ones in their pool thread, via
``contextvars``). ``get_context()`` returns it with a :class:`Logger` bound to it (seed 004);
``current_invocation()`` is the 0.25 name for the same lookup.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .observability._logger import Logger
from .observability._spans import current_span_id, current_trace_id

__all__ = [
    "Context",
    "InvocationContext",
    "Logger",
    "current_invocation",
    "get_context",
    "with_context",
]

T = TypeVar("T")


@dataclass(frozen=True)
class InvocationContext:
    """What the current handler is running for.

    ``function_id`` and ``invocation_id`` (``None`` for a void call), the ``metadata`` sidecar,
    the W3C ``traceparent`` / ``baggage`` the call carried, and ``worker_id`` of this worker.
    ``observe_depth``, ``caller`` and ``activation`` are 0.25's observe fields (protocol.md
    §10.1): always ``0`` / ``None`` here, as this SDK does not speak observe yet.
    """

    function_id: str
    invocation_id: str | None = None
    metadata: Any = None
    traceparent: str | None = None
    baggage: str | None = None
    worker_id: str | None = None
    observe_depth: int = 0
    caller: Any = None
    activation: Any = None

    @property
    def trace_id(self) -> str | None:
        """The 32-hex trace id from ``traceparent``, if any."""
        parts = (self.traceparent or "").split("-")
        return parts[1] if len(parts) == 4 else None


@dataclass(frozen=True)
class Context:
    """``get_context()`` result: a :class:`Logger` and the :class:`InvocationContext`.

    ``trace_id`` / ``span_id`` are those of the active OpenTelemetry span (inside a handler,
    its ``execute <function_id>`` span), else the trace id of the invocation's
    ``traceparent``; ``None`` outside any trace.
    """

    logger: Logger
    invocation: InvocationContext | None = None

    @property
    def trace_id(self) -> str | None:
        trace_id = current_trace_id()
        if trace_id is None and self.invocation is not None:
            return self.invocation.trace_id
        return trace_id

    @property
    def span_id(self) -> str | None:
        return current_span_id()


# Holds an InvocationContext (set by the SDK around handlers, cheap) or a Context (with_context).
_current: contextvars.ContextVar[InvocationContext | Context | None] = contextvars.ContextVar(
    "iii_context", default=None
)


def current_invocation() -> InvocationContext | None:
    """The invocation the calling handler runs for, or ``None`` outside a handler."""
    value = _current.get()
    return value.invocation if isinstance(value, Context) else value


def get_context() -> Context:
    """The current :class:`Context`; outside a handler, one with a plain logger."""
    value = _current.get()
    if isinstance(value, Context):
        return value
    if value is None:
        return Context(logger=Logger())
    return Context(
        logger=Logger(service_name=value.function_id, function_name=value.function_id),
        invocation=value,
    )


#: The early answer of the invocation the current handler runs for (handlers marked
#: ``iii_answers_early`` only): see :func:`early_answer`.
_early: contextvars.ContextVar[Callable[[Any], bool] | None] = contextvars.ContextVar(
    "iii_early_answer", default=None
)


def early_answer() -> Callable[[Any], bool] | None:
    """Inside a handler marked ``iii_answers_early = True`` (the ASGI bridge's), a callable
    ``answer(result) -> bool`` that sends the invocation's result now, while the handler goes on
    (background work after the response): ``True`` when sent, ``False`` when the invocation was
    answered already or the engine stopped it (its timeout). The handler's own return value is
    then dropped; an exception it raises afterwards is only logged. ``None`` in any other
    handler, outside a handler, and for an invocation without an id (nothing to answer).
    ``result`` must be JSON values built for this answer alone: an in-process engine takes
    them as they are."""
    return _early.get()


def enter_invocation(
    invocation: InvocationContext,
) -> contextvars.Token[InvocationContext | Context | None]:
    return _current.set(invocation)


def exit_invocation(token: contextvars.Token[InvocationContext | Context | None]) -> None:
    _current.reset(token)


async def with_context(fn: Callable[[Context], Awaitable[T]], ctx: Context) -> T:
    """Run ``await fn(ctx)`` with ``ctx`` as the current context (seed 004)."""
    token = _current.set(ctx)
    try:
        return await fn(ctx)
    finally:
        _current.reset(token)
