"""0.25 path of the helpers acting on the current span (no-ops without a recording span)."""

from iii.observability import (
    current_span_is_recording,
    record_span_event,
    set_current_span_attribute,
    set_current_span_error,
)

__all__ = [
    "current_span_is_recording",
    "record_span_event",
    "set_current_span_attribute",
    "set_current_span_error",
]
