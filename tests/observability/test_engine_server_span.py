"""The engine's SERVER span of an HTTP request: a lightweight ``ServerSpan`` while only the
engine's sinks take spans, the OpenTelemetry SDK's span when an exporter is configured; both
record the same OTLP span."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from iii.observability._handler_span import ServerSpan
from iii_asgi.engine import EngineConfig
from iii_asgi.engine.core.tracing import EngineTracer

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def record(tracer: EngineTracer, traceparent: str | None) -> tuple[Any, dict[str, Any]]:
    """Start, fill and end one SERVER span; the span and the OTLP span dict the sink got."""
    got: list[dict[str, Any]] = []
    tracer.add_sink(got.append)
    span = tracer.start_server(
        "GET", traceparent, {"http.request.method": "GET", "url.path": "/x", "server.port": 3111}
    )
    span.update_name("GET /x")
    span.set_attribute("http.route", "/x")
    span.set_attribute("http.response.status_code", 503)
    span.set_status(Status(StatusCode.ERROR))
    span.end()
    (encoded,) = got
    (resource,) = encoded["resourceSpans"]
    (scope,) = resource["scopeSpans"]
    (otlp,) = scope["spans"]
    return span, otlp


def comparable(otlp: dict[str, Any]) -> dict[str, Any]:
    """The span without what differs from one span to the next (ids, times)."""
    return {
        k: v for k, v in otlp.items() if k not in ("spanId", "startTimeUnixNano", "endTimeUnixNano")
    } | {
        "traceId": otlp["traceId"] if "parentSpanId" in otlp else "new",
    }


def test_the_light_span_records_what_the_sdk_span_records() -> None:
    light, light_otlp = record(EngineTracer(EngineConfig(tracing=True)), PARENT)
    exporter = InMemorySpanExporter()
    sdk_tracer = EngineTracer(EngineConfig(tracing=True, span_exporters=[exporter]))
    sdk, sdk_otlp = record(sdk_tracer, PARENT)
    assert type(light) is ServerSpan
    assert type(sdk) is not ServerSpan
    assert comparable(light_otlp) == comparable(sdk_otlp)
    assert light_otlp["kind"] == 2  # SPAN_KIND_SERVER
    assert light_otlp["parentSpanId"] == "b7ad6b7169203331"
    assert light_otlp["traceId"] == "0af7651916cd43dd8448eb211c80319c"
    attributes = {a["key"]: a["value"] for a in light_otlp["attributes"]}
    assert attributes["http.response.status_code"] == {"intValue": "503"}
    assert attributes["server.port"] == {"intValue": "3111"}
    assert light_otlp["status"] == {"code": 2}
    sdk_tracer.shutdown()  # the exporter's batch goes out
    assert [s.name for s in exporter.get_finished_spans()] == ["GET /x"]


def test_a_new_trace_without_a_parent_and_the_sdk_for_an_invalid_one() -> None:
    tracer = EngineTracer(EngineConfig(tracing=True))
    span, otlp = record(tracer, None)
    assert type(span) is ServerSpan
    assert "parentSpanId" not in otlp
    invalid, invalid_otlp = record(EngineTracer(EngineConfig(tracing=True)), "00-zz-yy-01")
    assert type(invalid) is not ServerSpan  # the SDK's parsing decides: a new trace
    assert "parentSpanId" not in invalid_otlp
