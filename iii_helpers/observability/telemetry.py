"""0.25 path ``iii_helpers.observability.telemetry``: OTel setup and teardown, trace-context and
baggage helpers (sdk_surface.md §1i, §3.9). Implemented in :mod:`iii.observability`.
"""

from iii.observability import (
    OtelConfig,
    current_span_id,
    current_trace_id,
    extract_baggage,
    extract_traceparent,
    flush_otel,
    init_otel,
    inject_baggage,
    inject_traceparent,
    shutdown_otel,
    with_span,
)
from iii.observability._baggage import (
    extract_context,
    get_all_baggage,
    get_baggage_entry,
    remove_baggage_entry,
    set_baggage_entry,
)
from iii.observability._telemetry import attach_event_loop, get_logger, shutdown_otel_async

__all__ = [
    "OtelConfig",
    "attach_event_loop",
    "current_span_id",
    "current_trace_id",
    "extract_baggage",
    "extract_context",
    "extract_traceparent",
    "flush_otel",
    "get_all_baggage",
    "get_baggage_entry",
    "get_logger",
    "init_otel",
    "inject_baggage",
    "inject_traceparent",
    "remove_baggage_entry",
    "set_baggage_entry",
    "shutdown_otel",
    "shutdown_otel_async",
    "with_span",
]
