"""Our span encoder produces exactly opentelemetry-exporter-otlp-json-common's OTLP/JSON, and the
exporters' frames are ``prefix + OTLP/JSON`` (protocol.md §1.11)."""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.exporter.otlp.json.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from iii.observability._exporters import PREFIX_SPANS, EngineSpanExporter, otel_url
from iii.observability._otlp import encode_spans_dict, encode_spans_json


def make_spans() -> Any:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "svc", "n": 3}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t", "1.0", schema_url="https://example/schema")
    other = provider.get_tracer("other")
    remote = TraceContextTextMapPropagator().extract(
        {
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "tracestate": "a=b,c=d",
        }
    )
    attributes = {"s": "x", "i": 1, "f": 1.5, "b": True, "l": [1, 2], "ls": ["a", "b"]}
    with tracer.start_as_current_span(
        "server", context=remote, kind=SpanKind.SERVER, attributes=attributes
    ) as span:
        span.add_event("ev", {"k": "v", "n": 2})
        span.add_event("bare")
        span.set_status(Status(StatusCode.ERROR, "boom"))
        with other.start_as_current_span(
            "linked", links=[Link(span.get_span_context(), {"x": 1})], kind=SpanKind.CONSUMER
        ) as child:
            child.set_status(Status(StatusCode.OK))
        with tracer.start_as_current_span("client", kind=SpanKind.CLIENT):
            pass
    return exporter.get_finished_spans()


def test_span_encoding_matches_the_library_encoder() -> None:
    spans = make_spans()
    assert encode_spans_dict(spans) == encode_spans(spans).to_dict()
    assert encode_spans_dict([]) == encode_spans([]).to_dict()
    assert json.loads(encode_spans_json(spans)) == encode_spans(spans).to_dict()
    assert json.loads(encode_spans_json([])) == encode_spans([]).to_dict()


class Recorder:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def send(self, prefix: bytes, payload: bytes) -> bool:
        self.frames.append(prefix + payload)
        return True


def test_span_exporter_frames() -> None:
    recorder = Recorder()
    spans = make_spans()
    EngineSpanExporter(recorder).export(spans)  # type: ignore[arg-type]
    (frame,) = recorder.frames
    assert frame[:4] == PREFIX_SPANS == b"OTLP"
    document = json.loads(frame[4:])
    (server,) = [
        span
        for scope in document["resourceSpans"][0]["scopeSpans"]
        for span in scope["spans"]
        if span["name"] == "server"
    ]
    assert server["traceId"] == "0af7651916cd43dd8448eb211c80319c"  # lower-case hex
    assert server["parentSpanId"] == "b7ad6b7169203331"
    assert server["startTimeUnixNano"].isdigit()  # 64-bit integers as strings


def test_otel_url() -> None:
    assert otel_url("ws://h:1") == "ws://h:1/otel"
    assert otel_url("ws://h:1/") == "ws://h:1/otel"
    assert otel_url("wss://h/base?token=x") == "wss://h/base/otel?token=x"
