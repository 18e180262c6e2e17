"""``Logger``: structured logs as OpenTelemetry log records (seeds 002, 003; sdk_surface §3.9).

After :func:`init_otel`, every call emits an OTel ``LogRecord`` carrying the active trace and
span ids (or the ones the logger was built with), exported to the engine as ``LOGS`` frames.
Before it, or with OTel disabled, records go to the stdlib logger ``iii.logger`` as
``"[service] message"`` with the ids and ``data`` as ``extra`` fields.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from ._state import state

__all__ = ["Logger"]

_fallback = logging.getLogger("iii.logger")

_LEVELS: dict[str, tuple[int, SeverityNumber, str]] = {
    "debug": (logging.DEBUG, SeverityNumber.DEBUG, "DEBUG"),
    "info": (logging.INFO, SeverityNumber.INFO, "INFO"),
    "warn": (logging.WARNING, SeverityNumber.WARN, "WARN"),
    "error": (logging.ERROR, SeverityNumber.ERROR, "ERROR"),
}


def _attributes(data: Any) -> dict[str, Any]:
    if data is None:
        return {}
    if isinstance(data, dict):
        return {str(k): _value(v) for k, v in data.items()}
    return {"data": _value(data)}


def _value(value: Any) -> Any:
    """Log attributes accept nested maps and lists of primitives (OTLP AnyValue)."""
    if value is None or isinstance(value, (str, bool, int, float, bytes)):
        return value
    if isinstance(value, dict):
        return {str(k): _value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_value(v) for v in value]
    return str(value)


class Logger:
    """Structured logger: ``info / warn / error / debug(message, data=None)``.

    Example::

        logger = Logger(service_name="orders")
        logger.info("order placed", {"order_id": 42, "total": 9.5})

    ``data`` (a dict, ideally) becomes the record's attributes. ``trace_id`` (32 hex) and
    ``span_id`` (16 hex) pin the record to a span; by default the active span is used.
    ``service_name`` prefixes fallback messages. ``function_name`` (seed 004) is a synonym used
    when ``service_name`` is not given. ``warning`` is an alias of ``warn``.
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

    def _context(self) -> Any:
        """The context whose span the record belongs to: the pinned ids, else the current one."""
        if self.trace_id is None:
            return None
        try:
            span_context = SpanContext(
                int(self.trace_id, 16),
                int(self.span_id or "0" * 15 + "1", 16),
                is_remote=True,
                trace_flags=TraceFlags(TraceFlags.SAMPLED),
            )
        except ValueError:
            return None
        return trace.set_span_in_context(NonRecordingSpan(span_context), otel_context.Context())

    def _ids(self) -> tuple[str | None, str | None]:
        if self.trace_id is not None:
            return self.trace_id, self.span_id
        ctx = trace.get_current_span().get_span_context()
        if not ctx.is_valid:
            return None, None
        return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")

    def _emit(self, level: str, message: str, data: Any) -> None:
        py_level, severity, text = _LEVELS[level]
        otel_logger = state.otel_logger
        if otel_logger is not None:
            attributes = _attributes(data)
            if self.function_name:
                attributes.setdefault("iii.function.id", self.function_name)
            otel_logger.emit(
                timestamp=time.time_ns(),
                context=self._context(),
                severity_number=severity,
                severity_text=text,
                body=message,
                attributes=attributes,
            )
            return
        trace_id, span_id = self._ids()
        prefix = f"[{self.service_name}] " if self.service_name else ""
        _fallback.log(
            py_level,
            "%s%s",
            prefix,
            message,
            extra={"iii_data": data, "trace_id": trace_id, "span_id": span_id},
        )

    def info(self, message: str, data: Any = None) -> None:
        self._emit("info", message, data)

    def warn(self, message: str, data: Any = None) -> None:
        self._emit("warn", message, data)

    warning = warn

    def error(self, message: str, data: Any = None) -> None:
        self._emit("error", message, data)

    def debug(self, message: str, data: Any = None) -> None:
        self._emit("debug", message, data)
