"""Logger (OTel log records with trace and span ids, stdlib fallback), BaggageSpanProcessor,
execute_traced_request (httpx) and the urllib instrumentation, against the engine's real HTTP
server."""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from opentelemetry import baggage, context
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import iii
from iii import InitOptions
from iii.observability import (
    DEFAULT_ALLOWLIST,
    BaggageSpanProcessor,
    Logger,
    execute_traced_request,
    with_span,
)
from iii_asgi.engine import EngineThread
from tests.helpers import wait_for
from tests.observability.conftest import Otel


def test_logger_records_carry_the_active_trace_and_span(otel: Otel) -> None:
    def fn(span: Any) -> None:
        Logger(service_name="orders").info("order placed", {"order_id": 42, "tags": ["a"]})
        Logger().warn("low stock")
        Logger().error("failed", {"nested": {"code": 7}})
        Logger().debug("detail")

    with_span("handler", fn)
    span = otel.span("handler")
    records = [r.log_record for r in otel.logs()]
    assert [r.body for r in records] == ["order placed", "low stock", "failed", "detail"]
    assert [r.severity_number for r in records] == [
        SeverityNumber.INFO,
        SeverityNumber.WARN,
        SeverityNumber.ERROR,
        SeverityNumber.DEBUG,
    ]
    for record in records:
        assert record.trace_id == span.context.trace_id
        assert record.span_id == span.context.span_id
    assert dict(records[0].attributes or {}) == {"order_id": 42, "tags": ("a",)}
    assert dict(records[2].attributes or {}) == {"nested": {"code": 7}}


def test_logger_with_pinned_ids_and_outside_spans(otel: Otel) -> None:
    Logger(trace_id="0af7651916cd43dd8448eb211c80319c", span_id="b7ad6b7169203331").info("x")
    Logger().info("untraced", "plain data")
    pinned, untraced = (r.log_record for r in otel.logs())
    assert format(pinned.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert format(pinned.span_id, "016x") == "b7ad6b7169203331"
    assert not untraced.trace_id
    assert dict(untraced.attributes or {}) == {"data": "plain data"}


def test_logger_falls_back_to_stdlib_logging_without_otel(caplog: pytest.LogCaptureFixture) -> None:
    provider = TracerProvider()  # an application's own tracer, OTel in iii not initialised
    with (
        caplog.at_level(logging.DEBUG, logger="iii.logger"),
        provider.get_tracer("app").start_as_current_span("app-span") as span,
    ):
        Logger(service_name="svc").warn("careful", {"k": 1})
    (record,) = caplog.records
    assert record.name == "iii.logger" and record.levelno == logging.WARNING
    assert record.getMessage() == "[svc] careful"
    assert record.iii_data == {"k": 1}  # type: ignore[attr-defined]
    assert record.trace_id == format(span.get_span_context().trace_id, "032x")  # type: ignore[attr-defined]
    assert record.span_id == format(span.get_span_context().span_id, "016x")  # type: ignore[attr-defined]


def test_get_context_logger_outside_a_handler(caplog: pytest.LogCaptureFixture) -> None:
    ctx = iii.get_context()
    assert ctx.invocation is None and ctx.trace_id is None and ctx.span_id is None
    with caplog.at_level(logging.INFO, logger="iii.logger"):
        ctx.logger.info("hello")
    assert [r.getMessage() for r in caplog.records] == ["hello"]


def _spans_under(ctx: context.Context, *processors: SpanProcessor) -> tuple[ReadableSpan, ...]:
    """Start and end one span with ``ctx`` attached, on a provider running ``processors``
    (then an in-memory exporter); the finished spans."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    for processor in processors:
        provider.add_span_processor(processor)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    token = context.attach(ctx)
    try:
        with provider.get_tracer("t").start_as_current_span("s"):
            pass
    finally:
        context.detach(token)
    return exporter.get_finished_spans()


def test_baggage_span_processor_copies_entries() -> None:
    ctx = baggage.set_baggage("tenant", "acme")
    ctx = baggage.set_baggage("iii.function.id", "orders::place", ctx)
    everything = BaggageSpanProcessor()
    (span,) = _spans_under(ctx, everything, BaggageSpanProcessor(allowlist=DEFAULT_ALLOWLIST))
    assert dict(span.attributes or {}) == {"tenant": "acme", "iii.function.id": "orders::place"}

    (only,) = _spans_under(ctx, BaggageSpanProcessor(allowlist=DEFAULT_ALLOWLIST))
    assert dict(only.attributes or {}) == {"iii.function.id": "orders::place"}


# -- outgoing HTTP ---------------------------------------------------------------------------


@pytest.fixture
def echo_route(engine: EngineThread) -> Callable[[], str]:
    """``GET <http_url>/headers`` answers with the request headers it received; returns the URL."""
    worker = iii.register_worker(
        engine.url, InitOptions(worker_name="echo-headers", otel={"enabled": False})
    )

    def headers(data: Any) -> dict[str, Any]:
        return {"status_code": 200, "body": {"headers": data["headers"]}}

    worker.register_function("http::headers", headers)
    worker.register_trigger(
        {"type": "http", "function_id": "http::headers", "config": {"api_path": "headers"}}
    )
    url = f"{engine.http_url}/headers"
    wait_for(lambda: httpx.get(url).status_code == 200)
    yield lambda: url
    worker.shutdown()


async def test_execute_traced_request_async(otel: Otel, echo_route: Callable[[], str]) -> None:
    url = echo_route()
    async with httpx.AsyncClient() as client:

        async def fn(span: Any) -> httpx.Response:
            response: httpx.Response = await execute_traced_request(
                client, client.build_request("GET", url)
            )
            return response

        response = await with_span("parent", fn)
        missing = await execute_traced_request(client, client.build_request("GET", url + "/no"))
    assert response.status_code == 200 and missing.status_code == 404
    parent = otel.span("parent")
    ok, failed = (s for s in otel.spans() if s.kind is SpanKind.CLIENT)
    assert ok.kind is SpanKind.CLIENT and ok.parent is not None
    assert ok.parent.span_id == parent.context.span_id
    seen = response.json()["headers"]["traceparent"]
    flags = int(ok.context.trace_flags)
    assert seen == f"00-{ok.context.trace_id:032x}-{ok.context.span_id:016x}-{flags:02x}"
    attributes = dict(ok.attributes or {})
    assert attributes["http.request.method"] == "GET"
    assert attributes["url.full"] == url
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["http.response.status_code"] == 200
    assert ok.status.status_code is StatusCode.UNSET
    assert dict(failed.attributes or {})["http.response.status_code"] == 404
    assert failed.status.status_code is StatusCode.ERROR


def test_execute_traced_request_sync_network_error(otel: Otel) -> None:
    with httpx.Client() as client:
        with pytest.raises(httpx.ConnectError):
            execute_traced_request(client, client.build_request("GET", "http://127.0.0.1:9/"))
        with pytest.raises(TypeError, match="httpx client"):
            execute_traced_request(object(), client.build_request("GET", "http://x/"))
    (span,) = otel.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]
    assert dict(span.attributes or {})["error.type"] == "ConnectError"


def test_urllib_calls_get_client_spans(otel_factory: Any, echo_route: Callable[[], str]) -> None:
    otel = otel_factory(fetch_instrumentation_enabled=True)
    url = echo_route()
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read()
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(url + "/no", timeout=10)
    ok, failed = (s for s in otel.spans() if s.kind is SpanKind.CLIENT)  # and the handler's
    assert ok.name == "GET"
    assert f"{ok.context.span_id:016x}".encode() in body  # the traceparent reached the server
    assert dict(ok.attributes or {})["http.response.status_code"] == 200
    assert dict(failed.attributes or {})["http.response.status_code"] == 404
    assert failed.status.status_code is StatusCode.ERROR
