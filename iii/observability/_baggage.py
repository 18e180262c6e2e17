"""Baggage and context helpers of 0.25's ``iii_helpers.observability.telemetry``: read and set
W3C baggage entries on the current OpenTelemetry context (protocol.md §3.6)."""

from __future__ import annotations

from opentelemetry import baggage as otel_baggage
from opentelemetry.context import Context

from ._spans import _BAGGAGE, _TRACE_CONTEXT

__all__ = [
    "extract_context",
    "get_all_baggage",
    "get_baggage_entry",
    "remove_baggage_entry",
    "set_baggage_entry",
]


def extract_context(traceparent: str | None = None, baggage: str | None = None) -> Context:
    """A context with the remote parent of ``traceparent`` and the entries of ``baggage``
    (either may be ``None``); attach it to make a new span a child of the caller."""
    context = _TRACE_CONTEXT.extract({"traceparent": traceparent}) if traceparent else None
    if baggage:
        context = _BAGGAGE.extract({"baggage": baggage}, context)
    return context if context is not None else Context()


def get_baggage_entry(key: str) -> str | None:
    """The current context's baggage entry ``key`` as text, or ``None``."""
    value = otel_baggage.get_baggage(key)
    return None if value is None else str(value)


def set_baggage_entry(key: str, value: str) -> Context:
    """A copy of the current context with ``key=value`` in its baggage (attach it to use it)."""
    return otel_baggage.set_baggage(key, value)


def remove_baggage_entry(key: str) -> Context:
    """A copy of the current context without the baggage entry ``key``."""
    return otel_baggage.remove_baggage(key)


def get_all_baggage() -> dict[str, str]:
    """Every baggage entry of the current context, values as text."""
    return {key: str(value) for key, value in otel_baggage.get_all().items()}
