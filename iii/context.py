"""The invocation context: which function and invocation a handler is running for.

Set by the SDK around every handler (async ones on the loop, sync ones in their pool thread, via
``contextvars``). ``get_context()`` returns it with a :class:`Logger` bound to it (seed 004);
``current_invocation()`` is the 0.25 name for the same lookup.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    "Context",
    "InvocationContext",
    "Logger",
    "current_invocation",
    "get_context",
    "with_context",
]

T = TypeVar("T")

_fallback_logger = logging.getLogger("iii.logger")


class Logger:
    """Structured logger: ``info / warn / error / debug(message, data=None)``.

    Records go to the stdlib logger ``iii.logger`` with ``data``, the function id, and the
    OpenTelemetry trace and span ids (when a span is active) attached as ``extra`` fields.
    """

    def __init__(
        self,
        trace_id: str | None = None,
        service_name: str | None = None,
        span_id: str | None = None,
        *,
        function_name: str | None = None,
    ) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.service_name = service_name or function_name
        self.function_name = function_name

    def _emit(self, level: int, message: str, data: Any) -> None:
        trace_id, span_id = self.trace_id, self.span_id
        if trace_id is None:
            trace_id, span_id = _current_otel_ids()
        prefix = f"[{self.service_name}] " if self.service_name else ""
        _fallback_logger.log(
            level,
            "%s%s",
            prefix,
            message,
            extra={"iii_data": data, "trace_id": trace_id, "span_id": span_id},
        )

    def info(self, message: str, data: Any = None) -> None:
        self._emit(logging.INFO, message, data)

    def warn(self, message: str, data: Any = None) -> None:
        self._emit(logging.WARNING, message, data)

    warning = warn

    def error(self, message: str, data: Any = None) -> None:
        self._emit(logging.ERROR, message, data)

    def debug(self, message: str, data: Any = None) -> None:
        self._emit(logging.DEBUG, message, data)


def _current_otel_ids() -> tuple[str | None, str | None]:
    from opentelemetry import trace

    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None, None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


@dataclass(frozen=True)
class InvocationContext:
    """What the current handler is running for.

    ``function_id`` and ``invocation_id`` (``None`` for a void call), the ``metadata`` sidecar,
    the W3C ``traceparent`` / ``baggage`` the call carried, and ``worker_id`` of this worker.
    """

    function_id: str
    invocation_id: str | None = None
    metadata: Any = None
    traceparent: str | None = None
    baggage: str | None = None
    worker_id: str | None = None

    @property
    def trace_id(self) -> str | None:
        """The 32-hex trace id from ``traceparent``, if any."""
        parts = (self.traceparent or "").split("-")
        return parts[1] if len(parts) == 4 else None


@dataclass(frozen=True)
class Context:
    """``get_context()`` result: a :class:`Logger` and the :class:`InvocationContext`."""

    logger: Logger
    invocation: InvocationContext | None = None


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
