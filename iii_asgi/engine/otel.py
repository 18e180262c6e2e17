"""Engine observability: the ``/otel`` socket, the telemetry store's functions, engine spans.

- ``/otel`` (protocol.md §1.11): a telemetry-only WebSocket, never a worker. Binary frames go to
  the :class:`TelemetryStore`; text frames are ignored; pings are answered by the server.
- Functions (builtins.md §12 names the families ``engine::traces::*``, ``engine::logs::*``,
  ``engine::metrics::list``), all in namespace ``default``:

  ======================== ============================================ ==========================
  function                 input                                        output
  ======================== ============================================ ==========================
  ``engine::traces::list`` ``{trace_id?, service_name?, name?,          ``{spans: [Span], total}``
                           limit?=100, offset?=0}``
  ``engine::traces::tree`` ``{trace_id}``                               ``{trace_id, roots:
                                                                        [Span + children]}``
  ``engine::traces::clear`` ``{}``                                      ``{cleared}``
  ``engine::logs::list``   ``{trace_id?, span_id?, service_name?,       ``{logs: [Log], total}``
                           severity_min?, limit?=100, offset?=0}``
  ``engine::logs::clear``  ``{}``                                       ``{cleared}``
  ``engine::metrics::list`` ``{name?, service_name?}``                  ``{metrics: [Metric]}``
  ======================== ============================================ ==========================

  ``traces::tree`` of an unknown trace fails with ``NOT_FOUND``; bad input with
  ``deserialization_error``. Shapes: :mod:`iii_asgi.engine.otel_store`.
- Engine spans, when ``EngineConfig.tracing`` is on (or ``span_exporters`` are given): a SERVER
  span per HTTP trigger request (:mod:`.otel_http`) and an INTERNAL span ``invoke
  <function_id>`` per routed invocation that carries a ``traceparent``. They go to the store
  (service ``iii``) and to the configured exporters. With tracing off the engine only passes
  ``traceparent`` / ``baggage`` through, and rewrites the baggage entry ``iii.function.id`` to
  the target function (protocol.md §3.6).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from iii.observability._otlp import encode_spans_dict

from .config import EngineConfig
from .errors import InvocationError
from .otel_store import TelemetryStore
from .registry import CallContext, Registry
from .types import Receive, Send

__all__ = ["EngineTelemetry", "serve_otel", "traceparent_of", "with_function_id"]

logger = logging.getLogger("iii_asgi.engine.otel")

ENGINE_SERVICE_NAME = "iii"
_PROPAGATOR = TraceContextTextMapPropagator()
_BAGGAGE_SAFE = "!#$&'()*+-./:<=>?@[]^_`{|}~"


def with_function_id(baggage: str | None, function_id: str) -> str:
    """``baggage`` with its ``iii.function.id`` entry set to ``function_id`` (§3.6)."""
    entry = "iii.function.id=" + quote(function_id, safe=_BAGGAGE_SAFE)
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
    if not traceparent:
        return None
    return _PROPAGATOR.extract({"traceparent": traceparent})


class _StoreExporter(SpanExporter):
    """Engine spans into the engine's own store, through the same OTLP/JSON path as the SDK's."""

    def __init__(self, store: TelemetryStore) -> None:
        self.store = store

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.store.add_spans(encode_spans_dict(spans))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class EngineTelemetry:
    """The store, and the engine tracer (``None`` when tracing is off)."""

    def __init__(self, config: EngineConfig) -> None:
        self.store = TelemetryStore(
            max_traces=config.telemetry_max_traces, max_logs=config.telemetry_max_logs
        )
        self.provider: TracerProvider | None = None
        self.tracer: Tracer | None = None
        if config.tracing or config.span_exporters:
            provider = TracerProvider(
                resource=Resource.create({"service.name": ENGINE_SERVICE_NAME})
            )
            provider.add_span_processor(SimpleSpanProcessor(_StoreExporter(self.store)))
            for exporter in config.span_exporters:
                provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=100))
            self.provider = provider
            self.tracer = provider.get_tracer("iii_asgi.engine")

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()

    # -- engine spans ---------------------------------------------------------------------------

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

    # -- functions ------------------------------------------------------------------------------

    def install(self, registry: Registry) -> None:
        table: dict[str, Callable[[CallContext, Any], Any]] = {
            "engine::traces::list": self.traces_list,
            "engine::traces::tree": self.traces_tree,
            "engine::traces::clear": self.traces_clear,
            "engine::logs::list": self.logs_list,
            "engine::logs::clear": self.logs_clear,
            "engine::metrics::list": self.metrics_list,
        }
        registry.add_builtins(table, internal=True)

    async def traces_list(self, context: CallContext, data: Any) -> dict[str, Any]:
        """Stored spans, newest trace first; filter by trace_id, service_name, name."""
        args = _args("engine::traces::list", data, ("trace_id", "service_name", "name"))
        trace_id = args.get("trace_id")
        spans = self.store.trace(trace_id) if trace_id else self.store.spans()
        for key in ("service_name", "name"):
            if args.get(key) is not None:
                spans = [s for s in spans if s[key] == args[key]]
        return {"spans": _page(spans, args), "total": len(spans)}

    async def traces_tree(self, context: CallContext, data: Any) -> dict[str, Any]:
        """The spans of one trace as a tree: roots with nested children."""
        args = _args("engine::traces::tree", data, ("trace_id",), required=("trace_id",))
        spans = self.store.trace(args["trace_id"])
        if not spans:
            raise InvocationError("NOT_FOUND", f"trace {args['trace_id']} not found")
        nodes = {s["span_id"]: {**s, "children": []} for s in spans}
        roots: list[dict[str, Any]] = []
        for node in nodes.values():
            parent = nodes.get(node["parent_span_id"] or "")
            (parent["children"] if parent is not None else roots).append(node)
        return {"trace_id": args["trace_id"].lower(), "roots": roots}

    async def traces_clear(self, context: CallContext, data: Any) -> dict[str, Any]:
        """Forget every stored span."""
        return {"cleared": self.store.clear_traces()}

    async def logs_list(self, context: CallContext, data: Any) -> dict[str, Any]:
        """Stored log records, newest first; filter by trace_id, span_id, service_name,
        severity_min."""
        args = _args("engine::logs::list", data, ("trace_id", "span_id", "service_name"))
        logs = self.store.recent_logs()
        for key in ("trace_id", "span_id"):
            if args.get(key) is not None:
                logs = [r for r in logs if r[key] == str(args[key]).lower()]
        if args.get("service_name") is not None:
            logs = [r for r in logs if r["service_name"] == args["service_name"]]
        minimum = args.get("severity_min")
        if minimum is not None:
            if not isinstance(minimum, int) or isinstance(minimum, bool):
                raise _bad("engine::logs::list", "invalid type for `severity_min`: expected int")
            logs = [r for r in logs if r["severity_number"] >= minimum]
        return {"logs": _page(logs, args), "total": len(logs)}

    async def logs_clear(self, context: CallContext, data: Any) -> dict[str, Any]:
        """Forget every stored log record."""
        return {"cleared": self.store.clear_logs()}

    async def metrics_list(self, context: CallContext, data: Any) -> dict[str, Any]:
        """Stored metric reports, newest first; filter by name, service_name."""
        args = _args("engine::metrics::list", data, ("name", "service_name"))
        metrics = self.store.recent_metrics()
        for key in ("name", "service_name"):
            if args.get(key) is not None:
                metrics = [m for m in metrics if m[key] == args[key]]
        return {"metrics": metrics}


def _bad(function_id: str, reason: str) -> InvocationError:
    return InvocationError(
        "deserialization_error", f"Failed to deserialize input for {function_id}: {reason}"
    )


def _args(
    function_id: str, data: Any, strings: tuple[str, ...], required: tuple[str, ...] = ()
) -> dict[str, Any]:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _bad(function_id, f"invalid type: {type(data).__name__}, expected an object")
    for key in strings:
        value = data.get(key)
        if value is None:
            if key in required:
                raise _bad(function_id, f"missing field `{key}`")
        elif not isinstance(value, str):
            raise _bad(function_id, f"invalid type for `{key}`: expected str")
    for key in ("limit", "offset"):
        value = data.get(key)
        bad = not isinstance(value, int) or isinstance(value, bool) or value < 0
        if value is not None and bad:
            raise _bad(function_id, f"invalid value for `{key}`: expected a non-negative int")
    return data


def _page(items: list[dict[str, Any]], args: dict[str, Any]) -> list[dict[str, Any]]:
    offset = args.get("offset") or 0
    limit = args.get("limit")
    return items[offset : offset + (100 if limit is None else limit)]


async def serve_otel(store: TelemetryStore, receive: Receive, send: Send) -> None:
    """Serve one ``/otel`` WebSocket (protocol.md §1.11): store binary frames, ignore text."""
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    store.sockets_opened += 1
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.disconnect":
            return
        if kind == "websocket.receive":
            data = message.get("bytes")
            if data:
                store.ingest(data)
