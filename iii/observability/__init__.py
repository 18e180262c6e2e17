"""``iii.observability``: OpenTelemetry for iii workers (seed 003; protocol.md §1.11, §3.6).

Example::

    from iii.observability import Logger, OtelConfig, init_otel, with_span

    init_otel(OtelConfig(service_name="orders"))      # a worker does this itself on connect
    Logger().info("ready", {"port": 8000})
    with_span("load", lambda span: span.set_attribute("rows", 3))

Workers initialise OTel on connect (``InitOptions.otel``, default on; ``OTEL_ENABLED=false``
turns it off): every handler runs in an ``execute <function_id>`` span, child of the caller's
``traceparent``; spans, logs and metrics go to the engine's ``/otel`` socket as ``OTLP`` /
``LOGS`` / ``MTRC`` frames, and to any extra exporter in :class:`OtelConfig`.
"""

from ..options import ReconnectionConfig
from ._config import OtelConfig
from ._http import execute_traced_request
from ._logger import Logger
from ._payload import (
    REDACTED_PLACEHOLDER,
    redact,
    redact_and_truncate,
    resolve_max_bytes_from_env,
)
from ._spans import (
    DEFAULT_ALLOWLIST,
    BaggageSpanProcessor,
    current_span_id,
    current_span_is_recording,
    current_trace_id,
    extract_baggage,
    extract_traceparent,
    inject_baggage,
    inject_traceparent,
    record_span_event,
    set_current_span_attribute,
    set_current_span_error,
    with_span,
)
from ._telemetry import flush_otel, init_otel, shutdown_otel

__all__ = [
    "DEFAULT_ALLOWLIST",
    "REDACTED_PLACEHOLDER",
    "BaggageSpanProcessor",
    "Logger",
    "OtelConfig",
    "ReconnectionConfig",
    "current_span_id",
    "current_span_is_recording",
    "current_trace_id",
    "execute_traced_request",
    "extract_baggage",
    "extract_traceparent",
    "flush_otel",
    "init_otel",
    "inject_baggage",
    "inject_traceparent",
    "record_span_event",
    "redact",
    "redact_and_truncate",
    "resolve_max_bytes_from_env",
    "set_current_span_attribute",
    "set_current_span_error",
    "shutdown_otel",
    "with_span",
]
