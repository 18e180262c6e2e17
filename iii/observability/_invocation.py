"""Trace context around invocations (protocol.md §3.6; sdk_surface.md §3.5, §3.6).

- Caller side: :func:`outgoing` gives the ``traceparent`` / ``baggage`` of the current context
  for an ``invokefunction`` frame (``None`` when there is no active span / no baggage).
- Executor side: :func:`start_execution` opens the INTERNAL span ``execute <function_id>``,
  child of the incoming ``traceparent`` (its baggage attached), with the redacted, truncated
  input as the ``iii.invocation.input`` event; :func:`end_execution` records the output (event
  ``iii.invocation.output``) or the exception (ERROR status), ends the span, counts the
  invocation and its run time (observable counters ``iii.invocations`` and
  ``iii.invocation.time`` in ms, attributes ``iii.function.id`` and ``iii.invocation.status``,
  read only when metrics are exported) and restores the context. Payload events are off with
  ``III_DISABLE_TRACE_PAYLOADS=1|true`` and capped by ``III_TRACE_PAYLOAD_MAX_BYTES``, both read
  by ``init_otel``. With OTel off no span is made, but the caller's context is still attached,
  so calls the handler makes carry it on.
"""

from __future__ import annotations

import functools
import re
import time
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

from ._handler_span import HandlerSpan
from ._payload import redact_and_truncate
from ._spans import _BAGGAGE, _TRACE_CONTEXT, inject_baggage, inject_traceparent
from ._state import state

__all__ = ["Execution", "end_execution", "outgoing", "start_execution"]

#: A version-00 ``traceparent`` exactly (W3C Trace Context §3.2); anything else goes through
#: the OpenTelemetry propagator, which knows the other cases.
_TRACEPARENT_00 = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def outgoing() -> tuple[str | None, str | None]:
    """``(traceparent, baggage)`` of the current context, for an outgoing invocation."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None, inject_baggage()
    return inject_traceparent(), inject_baggage()


class Execution:
    """A running handler's span (``None`` with OTel off) and the context token to restore."""

    __slots__ = ("function_id", "span", "started", "token")

    def __init__(self, function_id: str, span: Any, token: Any) -> None:
        self.function_id = function_id
        self.span = span
        self.token = token
        self.started = time.perf_counter()

    @property
    def traceparent(self) -> str | None:
        """The handler span's ``traceparent``, sent back in ``invocationresult``."""
        if self.span is None:
            return None
        ctx = self.span.get_span_context()
        return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def start_execution(
    function_id: str,
    invocation_id: str | None,
    traceparent: str | None,
    baggage: str | None,
    data: Any,
) -> Execution | None:
    """Enter the handler's trace context; ``None`` when there is nothing to do (OTel off and
    no incoming context)."""
    tracer = state.tracer
    if tracer is None and traceparent is None and baggage is None:
        return None
    ctx = otel_context.Context() if baggage is None else _baggage_context(baggage)
    parent = None
    if traceparent is not None:
        parent, ctx = _parent(traceparent, ctx)
    span: Any = None
    if tracer is not None:
        attributes: dict[str, Any] = {"iii.function.id": function_id}
        if invocation_id is not None:
            attributes["iii.invocation.id"] = invocation_id
        name = f"execute {function_id}"
        handler_spans = state.handler_spans
        if handler_spans is not None:
            span = handler_spans.start(name, parent, ctx, attributes, baggage is not None)
        if span is None:
            span = tracer.start_span(
                name, context=ctx, kind=SpanKind.INTERNAL, attributes=attributes
            )
        _payload_event(span, "iii.invocation.input", data)
        ctx = trace.set_span_in_context(span, ctx)
    return Execution(function_id, span, otel_context.attach(ctx))


@functools.lru_cache(maxsize=256)
def _baggage_context(baggage: str) -> otel_context.Context:
    """A context holding the W3C ``baggage`` header's entries. Cached by the header's text:
    calls of one function carry the same (the engine's ``iii.function.id``), and its parsing
    (percent-decoding, limits) cost more than the rest of the handler's context. A context is
    immutable: setting a value makes a new one."""
    return _BAGGAGE.extract({"baggage": baggage}, otel_context.Context())


def _payload_event(span: Any, name: str, value: Any) -> None:
    """Event ``name`` with ``value`` redacted and truncated as ``iii.payload``, unless payload
    events are off or the span does not record."""
    if not state.payloads or not span.is_recording():
        return
    payload = redact_and_truncate(value, state.max_bytes)
    if type(span) is HandlerSpan:
        span.add_payload_event(name, payload)
    else:
        span.add_event(name, {"iii.payload": payload})


def _parent(
    traceparent: str, ctx: otel_context.Context
) -> tuple[SpanContext | None, otel_context.Context]:
    """The remote parent span named by ``traceparent`` (``None`` when invalid) and ``ctx``
    with it as the current span: what the W3C propagator extracts, without its per-call
    carrier and regex work for the common version-00 case."""
    match = _TRACEPARENT_00.fullmatch(traceparent)
    if match is None:
        ctx = _TRACE_CONTEXT.extract({"traceparent": traceparent}, ctx)
        found = trace.get_current_span(ctx).get_span_context()
        return (found if found.is_valid else None), ctx
    trace_id, span_id = int(match[1], 16), int(match[2], 16)
    if not trace_id or not span_id:
        return None, ctx
    parent = SpanContext(
        trace_id, span_id, is_remote=True, trace_flags=TraceFlags(int(match[3], 16))
    )
    return parent, trace.set_span_in_context(NonRecordingSpan(parent), ctx)


def end_execution(
    execution: Execution | None, result: Any = None, error: BaseException | None = None
) -> None:
    """Record the outcome on the span, end it, restore the context (same task as start)."""
    if execution is None:
        return
    otel_context.detach(execution.token)
    span = execution.span
    if span is None:
        return
    if error is not None:
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, str(error) or type(error).__name__))
    else:
        _payload_event(span, "iii.invocation.output", result)
    span.end()
    stats = state.stats
    if stats is not None:  # read by the observable counters at each metrics export
        key = (execution.function_id, "error" if error is not None else "ok")
        entry = stats.get(key)
        if entry is None:
            entry = stats[key] = [0, 0.0]
        entry[0] += 1
        entry[1] += (time.perf_counter() - execution.started) * 1000
