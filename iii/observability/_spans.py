"""Span helpers on the current OpenTelemetry context (seed 003).

All of them work whether or not :func:`init_otel` ran: without an active, recording span they
return ``None`` / ``False`` or do nothing. Trace context travels as W3C header values
(protocol.md §3.6): ``traceparent`` (``00-<32 hex trace id>-<16 hex span id>-<2 hex flags>``)
and ``baggage`` (``key=value,key2=value2``).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ._state import state

__all__ = [
    "DEFAULT_ALLOWLIST",
    "BaggageSpanProcessor",
    "current_span_id",
    "current_span_is_recording",
    "current_trace_id",
    "extract_baggage",
    "extract_traceparent",
    "inject_baggage",
    "inject_traceparent",
    "record_span_event",
    "set_current_span_attribute",
    "set_current_span_error",
    "with_span",
]

T = TypeVar("T")

_TRACE_CONTEXT = TraceContextTextMapPropagator()
_BAGGAGE = W3CBaggagePropagator()

#: Baggage keys the seed's ``BaggageSpanProcessor`` copied by default: the ones iii itself sets
#: (the engine writes ``iii.function.id``, protocol.md §3.6). Pass ``allowlist=None`` to copy all.
DEFAULT_ALLOWLIST: frozenset[str] = frozenset(
    {"iii.function.id", "iii.invocation.id", "iii.worker.id", "iii.worker.name"}
)


def current_trace_id() -> str | None:
    """The active span's trace id as 32 lower-case hex characters, or ``None`` without one."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def current_span_id() -> str | None:
    """The active span's id as 16 lower-case hex characters, or ``None`` without one."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.span_id, "016x") if ctx.is_valid else None


def current_span_is_recording() -> bool:
    """``False`` when there is no active span or the sampler dropped it."""
    return trace.get_current_span().is_recording()


def set_current_span_attribute(key: str, value: Any) -> None:
    """Set ``key`` on the active span; no-op when it is not recording. Values that are not
    str/bool/int/float (or lists of one of them) are stored as their ``str()``."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute(key, _attribute(value))


def record_span_event(name: str, attrs: dict[str, Any] | None = None) -> None:
    """Add an event named ``name`` with ``attrs`` to the active span; no-op when it is not
    recording."""
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event(name, {k: _attribute(v) for k, v in (attrs or {}).items()})


def set_current_span_error(message: str) -> None:
    """Mark the active span ERROR with ``message`` as the status description; no-op when there
    is no active span."""
    span = trace.get_current_span()
    if span.get_span_context().is_valid:
        span.set_status(Status(StatusCode.ERROR, message))


def _attribute(value: Any) -> Any:
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)) and all(
        isinstance(v, (str, bool, int, float)) for v in value
    ):
        return list(value)
    return str(value)


def inject_traceparent() -> str | None:
    """The current trace context as a W3C ``traceparent`` value, or ``None`` without an active
    span."""
    carrier: dict[str, str] = {}
    _TRACE_CONTEXT.inject(carrier)
    return carrier.get("traceparent")


def extract_traceparent(traceparent: str) -> Context:
    """A context whose current span is the remote parent named by ``traceparent``; a malformed
    value gives a context without a parent (a new span there starts a new trace)."""
    return _TRACE_CONTEXT.extract({"traceparent": traceparent})


def inject_baggage() -> str | None:
    """The current baggage as a W3C ``baggage`` value, or ``None`` when it is empty."""
    carrier: dict[str, str] = {}
    _BAGGAGE.inject(carrier)
    return carrier.get("baggage")


def extract_baggage(baggage: str) -> Context:
    """A context carrying the entries of the W3C ``baggage`` value (read them with
    ``opentelemetry.baggage.get_all(ctx)``); malformed entries are skipped."""
    return _BAGGAGE.extract({"baggage": baggage})


def with_span(
    name: str,
    fn: Callable[[Any], T],
    kind: SpanKind | None = None,
    traceparent: str | None = None,
) -> T:
    """Start a span ``name`` (``kind``, default INTERNAL), run ``fn(span)`` with it as the current
    span and return what ``fn`` returns.

    ``traceparent`` makes the span a child of that remote span instead of the current one. When
    ``fn`` is a coroutine function the span covers the awaited call: ``await with_span(...)``.
    An exception from ``fn`` is recorded on the span, sets ERROR status, and propagates. Before
    :func:`init_otel` (or with OTel disabled) ``fn`` gets a no-op span that ignores attribute
    and event calls.
    """
    tracer = state.tracer
    if tracer is None:
        return fn(trace.INVALID_SPAN)
    parent = extract_traceparent(traceparent) if traceparent else None
    if inspect.iscoroutinefunction(fn):
        return _with_span_async(tracer, name, fn, kind, parent)  # type: ignore[return-value]
    with tracer.start_as_current_span(name, context=parent, kind=kind or SpanKind.INTERNAL) as span:
        return fn(span)


async def _with_span_async(
    tracer: Any,
    name: str,
    fn: Callable[[Any], Awaitable[T]],
    kind: SpanKind | None,
    parent: Context | None,
) -> T:
    with tracer.start_as_current_span(name, context=parent, kind=kind or SpanKind.INTERNAL) as span:
        return await fn(span)


class BaggageSpanProcessor(SpanProcessor):
    """Copies baggage entries of the parent context onto every span as attributes, at start.

    ``allowlist``: the keys to copy; ``None`` (the default, as in the 0.25 SDK) copies every
    entry; pass :data:`DEFAULT_ALLOWLIST` for the seed's filtered behaviour.
    """

    def __init__(self, allowlist: Iterable[str] | None = None) -> None:
        self.allowlist = None if allowlist is None else frozenset(allowlist)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        entries = otel_baggage.get_all(parent_context or otel_context.get_current())
        for key, value in entries.items():
            if self.allowlist is None or key in self.allowlist:
                span.set_attribute(key, _attribute(value))

    def on_end(self, span: ReadableSpan) -> None:
        return None

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
