"""Trace context around invocations (protocol.md §3.6; sdk_surface.md §3.5, §3.6).

- Caller side: :func:`outgoing` gives the ``traceparent`` / ``baggage`` of the current context
  for an ``invokefunction`` frame (``None`` when there is no active span / no baggage).
- Executor side: :func:`start_execution` opens the INTERNAL span ``execute <function_id>``,
  child of the incoming ``traceparent`` (its baggage attached), with the redacted, truncated
  input as the ``iii.invocation.input`` event; :func:`end_execution` records the output (event
  ``iii.invocation.output``) or the exception (ERROR status), ends the span and restores the
  context. With OTel off no span is made, but the caller's context is still attached, so calls
  the handler makes carry it on.
"""

from __future__ import annotations

import os
import time
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from ._payload import redact_and_truncate, resolve_max_bytes_from_env
from ._spans import _BAGGAGE, _TRACE_CONTEXT, inject_baggage, inject_traceparent
from ._state import state

__all__ = ["Execution", "end_execution", "outgoing", "start_execution"]


def outgoing() -> tuple[str | None, str | None]:
    """``(traceparent, baggage)`` of the current context, for an outgoing invocation."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None, inject_baggage()
    return inject_traceparent(), inject_baggage()


def _payloads_enabled() -> bool:
    return os.environ.get("III_DISABLE_TRACE_PAYLOADS", "").strip().lower() not in ("1", "true")


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
    ctx = otel_context.Context()
    if traceparent is not None:
        ctx = _TRACE_CONTEXT.extract({"traceparent": traceparent}, ctx)
    if baggage is not None:
        ctx = _BAGGAGE.extract({"baggage": baggage}, ctx)
    span = None
    if tracer is not None:
        attributes: dict[str, Any] = {"iii.function.id": function_id}
        if invocation_id is not None:
            attributes["iii.invocation.id"] = invocation_id
        span = tracer.start_span(
            f"execute {function_id}", context=ctx, kind=SpanKind.INTERNAL, attributes=attributes
        )
        if span.is_recording() and _payloads_enabled():
            span.add_event(
                "iii.invocation.input",
                {"iii.payload": redact_and_truncate(data, resolve_max_bytes_from_env())},
            )
        ctx = trace.set_span_in_context(span, ctx)
    return Execution(function_id, span, otel_context.attach(ctx))


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
    elif span.is_recording() and _payloads_enabled():
        span.add_event(
            "iii.invocation.output",
            {"iii.payload": redact_and_truncate(result, resolve_max_bytes_from_env())},
        )
    span.end()
    if state.invocations is not None:
        attributes = {
            "iii.function.id": execution.function_id,
            "iii.invocation.status": "error" if error is not None else "ok",
        }
        state.invocations.add(1, attributes)
        state.duration.record((time.perf_counter() - execution.started) * 1000, attributes)
