"""Engine spans (protocol.md §3.6): the engine tracer and the trace-context helpers.

When ``EngineConfig.tracing`` is on (or ``span_exporters`` are given) the engine makes a SERVER
span per HTTP trigger request and an INTERNAL span ``invoke <function_id>`` per routed
invocation that carries a ``traceparent``. Finished spans go, as OTLP/JSON span dicts, to every
sink added with :meth:`EngineTracer.add_sink` (the observability worker adds its store) and to
the configured exporters. With tracing off the engine only passes ``traceparent`` / ``baggage``
through, and rewrites the baggage entry ``iii.function.id`` to the target function.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from iii.observability._handler_span import HandlerSpans, IIITracerProvider, ServerSpan
from iii.observability._invocation import _parent
from iii.observability._otlp import _span as span_dict
from iii.observability._otlp import encode_spans_dict

from ..config.engine import EngineConfig

__all__ = [
    "ENGINE_SERVICE_NAME",
    "EngineTracer",
    "SpanSink",
    "parent_context",
    "traceparent_of",
    "with_function_id",
]

ENGINE_SERVICE_NAME = "iii"
_PROPAGATOR = TraceContextTextMapPropagator()
_BAGGAGE_SAFE = "!#$&'()*+-./:<=>?@[]^_`{|}~"
_NO_CONTEXT = Context()  # what the (no) start processors of a SERVER span would read

#: Receives finished engine spans as OTLP/JSON ``resourceSpans`` dicts.
SpanSink = Callable[[dict[str, Any]], None]


@functools.lru_cache(maxsize=1024)
def _function_entry(function_id: str) -> str:
    return "iii.function.id=" + quote(function_id, safe=_BAGGAGE_SAFE)


def with_function_id(baggage: str | None, function_id: str) -> str:
    """``baggage`` with its ``iii.function.id`` entry set to ``function_id`` (§3.6)."""
    entry = _function_entry(function_id)
    if not baggage:
        return entry
    kept = [
        part
        for part in baggage.split(",")
        if part.strip() and part.split("=", 1)[0].strip() != "iii.function.id"
    ]
    return ",".join([*kept, entry])


def traceparent_of(span: Span) -> str:
    """The W3C ``traceparent`` naming ``span``."""
    ctx = span.get_span_context()
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def parent_context(traceparent: str | None) -> Context | None:
    """The OpenTelemetry context a W3C ``traceparent`` names (``None`` for none)."""
    if not traceparent:
        return None
    return _PROPAGATOR.extract({"traceparent": traceparent})


class _SinkProcessor(SpanProcessor):
    """Engine spans into the sinks as they end, through the same OTLP/JSON path as the SDK's
    (SDK spans and the lightweight :class:`~iii.observability._handler_span.ServerSpan`). The
    resource and scope entries, the same for every engine span, are encoded once."""

    def __init__(self, sinks: list[SpanSink]) -> None:
        self.sinks = sinks
        self._source: tuple[int, int] | None = None  # ids of the resource and scope rendered
        self._resource_entry: dict[str, Any] = {}
        self._scope_entry: dict[str, Any] = {}

    def on_end(self, span: ReadableSpan) -> None:
        if not span.context.trace_flags.sampled:
            return
        source = (id(span.resource), id(span.instrumentation_scope))
        if source != self._source:
            (resource_entry,) = encode_spans_dict([span])["resourceSpans"]
            (scope_entry,) = resource_entry.pop("scopeSpans")
            del scope_entry["spans"]
            self._resource_entry, self._scope_entry = resource_entry, scope_entry
            self._source = source
        scope_spans = {**self._scope_entry, "spans": [span_dict(span)]}
        encoded = {"resourceSpans": [{**self._resource_entry, "scopeSpans": [scope_spans]}]}
        for sink in self.sinks:
            sink(encoded)


class EngineTracer:
    """The engine tracer (``tracer`` is ``None`` when tracing is off) and its span sinks."""

    def __init__(self, config: EngineConfig) -> None:
        self.sinks: list[SpanSink] = []
        self.provider: TracerProvider | None = None
        self.tracer: Tracer | None = None
        #: Lightweight SERVER spans while only the sinks take spans (no exporter configured).
        self.light: HandlerSpans | None = None
        if config.tracing or config.span_exporters:
            provider = IIITracerProvider(
                resource=Resource.create({"service.name": ENGINE_SERVICE_NAME})
            )
            provider.add_span_processor(_SinkProcessor(self.sinks))
            for exporter in config.span_exporters:
                provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=100))
            self.provider = provider
            self.tracer = provider.get_tracer("iii_asgi.engine")
            self.light = HandlerSpans(provider, self.tracer, "iii_asgi.engine", (_SinkProcessor,))

    def add_sink(self, sink: SpanSink) -> None:
        """Send every finished engine span to ``sink`` too."""
        self.sinks.append(sink)

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()

    def start_server(self, name: str, traceparent: str | None, attributes: dict[str, Any]) -> Span:
        """The SERVER span of an HTTP request, child of the client's ``traceparent`` (else a new
        trace); ``attributes`` (str, int) are its own. A :class:`ServerSpan` (recorded without
        the SDK's per-span machinery, exported the same) when only the sinks take spans and the
        SDK would make the same span, else the SDK's. Tracing must be on."""
        assert self.tracer is not None
        light = self.light
        if light is not None:
            parent = _parent(traceparent, _NO_CONTEXT)[0] if traceparent else None
            if parent is not None or not traceparent:  # else an invalid one: the SDK's way
                span = light.start(name, parent, _NO_CONTEXT, attributes, False, ServerSpan)
                if span is not None:
                    return span
        return self.tracer.start_span(
            name, context=parent_context(traceparent), kind=SpanKind.SERVER, attributes=attributes
        )

    def start_invoke(self, function_id: str, traceparent: str | None) -> Span | None:
        """The ``invoke <function_id>`` span of a routed call, child of ``traceparent``."""
        if self.tracer is None:
            return None
        return self.tracer.start_span(
            f"invoke {function_id}",
            context=parent_context(traceparent),
            kind=SpanKind.INTERNAL,
            attributes={"iii.function.id": function_id},
        )

    @staticmethod
    def end(span: Span, error: Any = None) -> None:
        """End a span; ``error`` (an ErrorBody dict or an exception) sets ERROR status."""
        if error is not None:
            if isinstance(error, BaseException):
                span.record_exception(error)
                message = str(error)
            else:
                message = f"{error.get('code')}: {error.get('message')}"
                span.set_attribute("error.type", str(error.get("code")))
            span.set_status(Status(StatusCode.ERROR, message))
        span.end()
