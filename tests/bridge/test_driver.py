"""The ASGI driver and the bridge's declarations, beyond the direct-vs-engine comparisons:
trace context into headers, chunked request bodies, files, large and HEAD responses, plain
functions bound to other trigger types."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect
from starlette.routing import Route

import iii
from iii.context import InvocationContext, enter_invocation, exit_invocation
from iii_asgi import IIIBridge
from iii_asgi.bridge.driver import BUFFER_LIMIT, drive
from iii_asgi.engine import EngineThread
from tests.helpers import wait_for

from .support import UvicornThread, both, comparable, serve, wait_routes

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def test_driver_scope_carries_trace_context_query_and_state() -> None:
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.update(scope)
        seen["request"] = await receive()
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [
                    (b"content-type", b"text/plain"),
                    (b"set-cookie", b"a=1"),
                    (b"set-cookie", b"b=2"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": "héllo".encode()})

    data = {
        "path": "/items/:id",
        "path_params": {"id": "a%2Fb"},
        "query_params": {"tag": ["x", "y z"], "q": "1"},
        "headers": {
            "host": "example.org:3111",
            "content-type": "application/json",
            "traceparent": "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-00",
            "x-forwarded-for": "10.0.0.7, 10.0.0.1",
        },
        "method": "POST",
        "body": {"a": [1, 2.5, "ü"]},
        "client": {"host": "10.0.0.9", "port": 5555},
    }
    token = enter_invocation(
        InvocationContext(
            function_id="items::create",
            invocation_id="inv-1",
            traceparent=TRACEPARENT,
            baggage="k=v",
        )
    )
    try:
        result = await drive(app, data, state={"pool": 1}, root_path="")
    finally:
        exit_invocation(token)
    assert result == {
        "status_code": 201,
        "headers": ["content-type: text/plain", "set-cookie: a=1", "set-cookie: b=2"],
        "body": "héllo",
    }
    headers = seen["headers"]
    assert (b"traceparent", TRACEPARENT.encode()) in headers
    # only the client's own baggage reaches the app; the invocation's is in the extension
    assert not [h for h in headers if h[0] == b"baggage"]
    assert seen["extensions"]["iii"] == {
        "function_id": "items::create",
        "invocation_id": "inv-1",
        "worker_id": None,
        "route": "/items/:id",
        "traceparent": TRACEPARENT,
        "baggage": "k=v",
    }
    assert [h for h in headers if h[0] == b"traceparent"] == [
        (b"traceparent", TRACEPARENT.encode())
    ]
    assert seen["path"] == "/items/a/b" and seen["raw_path"] == b"/items/a%2Fb"
    assert seen["query_string"] == b"tag=x&tag=y+z&q=1"
    assert seen["server"] == ("example.org", 3111)
    assert seen["client"] == ("10.0.0.9", 5555)  # X-Forwarded-For: the bridge's proxy layer
    assert seen["state"] == {"pool": 1}
    body = '{"a":[1,2.5,"ü"]}'.encode()
    assert seen["request"] == {"type": "http.request", "body": body, "more_body": False}
    assert (b"content-length", str(len(body)).encode()) in headers
    info = seen["iii_invocation"]
    assert (info.via_engine, info.function_id, info.invocation_id, info.trace_id) == (
        True,
        "items::create",
        "inv-1",
        "0af7651916cd43dd8448eb211c80319c",
    )


async def test_driver_refuses_a_non_http_payload() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not called")

    with pytest.raises(TypeError, match="http trigger"):
        await drive(app, [1, 2])
    with pytest.raises(TypeError, match=r"keys \['id'\]"):
        await drive(app, {"id": 1})


def make_app(tmp: Path) -> FastAPI:
    app = FastAPI()
    report = tmp / "report.csv"
    report.write_bytes(b"id,total\n" + b"".join(b"%d,%d\n" % (i, i * 3) for i in range(20000)))

    @app.post("/digest")
    async def digest(request: Request) -> dict[str, Any]:
        sha = hashlib.sha256()
        chunks = 0
        async for chunk in request.stream():
            if chunk:
                chunks += 1
                sha.update(chunk)
        return {"sha256": sha.hexdigest(), "many_chunks": chunks > 1}

    @app.get("/report.csv")
    def download() -> FileResponse:
        return FileResponse(report, filename="report.csv", media_type="text/csv")

    @app.get("/large")
    def large() -> PlainTextResponse:
        return PlainTextResponse("z" * (BUFFER_LIMIT + 10))

    @app.get("/json-list")
    def json_list() -> JSONResponse:
        return JSONResponse([{"i": i} for i in range(100)], headers={"x-count": "100"})

    return app


@pytest.fixture(scope="module")
def served(module_engine: EngineThread, tmp_path_factory: Any) -> Iterator[UvicornThread]:
    app = make_app(tmp_path_factory.mktemp("files"))
    bridge = IIIBridge(app, url=module_engine.url)
    with serve(app) as server:
        wait_routes(module_engine, sum(len(r.triggers) for r in bridge.routes))
        yield server


def test_chunked_request_body_arrives_in_pieces(
    served: UvicornThread, module_engine: EngineThread
) -> None:
    payload = bytes(range(256)) * 8192  # 2 MiB

    def body() -> Iterator[bytes]:
        for start in range(0, len(payload), 100_000):
            yield payload[start : start + 100_000]

    with httpx.Client(timeout=30) as client:
        direct = client.post(served.url + "/digest", content=body())
        via_engine = client.post(module_engine.http_url + "/digest", content=body())
    expected = hashlib.sha256(payload).hexdigest()
    assert direct.json() == via_engine.json() == {"sha256": expected, "many_chunks": True}


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/report.csv"), ("GET", "/large"), ("GET", "/json-list"), ("HEAD", "/json-list")],
)
def test_files_large_and_head(
    served: UvicornThread, module_engine: EngineThread, method: str, path: str
) -> None:
    direct, via_engine = both(served.url, module_engine.http_url, method, path)
    assert comparable(via_engine) == comparable(direct)


def test_plain_function_bound_to_a_state_trigger(module_engine: EngineThread) -> None:
    app = Starlette(routes=[Route("/noop", lambda request: PlainTextResponse("ok"))])
    bridge = IIIBridge(app, url=module_engine.url)
    events: list[dict[str, Any]] = []

    @bridge.trigger("state", {"scope": "bridge-orders"})
    @bridge.function("orders::on_change", description="state changes of orders")
    async def on_change(data: dict[str, Any]) -> None:
        events.append(data)

    with pytest.raises(TypeError, match=r"@bridge\.function"):
        bridge.trigger("state", {})(lambda data: None)

    with serve(app):
        caller = iii.register_worker(module_engine.url)
        try:
            caller.trigger(
                {
                    "function_id": "state::set",
                    "payload": {"scope": "bridge-orders", "key": "o1", "value": {"n": 1}},
                }
            )
            wait_for(lambda: len(events) == 1, timeout=10)
        finally:
            caller.shutdown()
    assert events[0]["event_type"] == "state:created"
    assert events[0]["new_value"] == {"n": 1}


def _traced_app() -> tuple[Any, Any, Any]:
    """``GET /t`` → ``ok`` (Starlette) under OpenTelemetry's ASGI middleware with a tracer
    provider of its own: the app, its in-memory span exporter and the provider."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    inner = Starlette(routes=[Route("/t", lambda request: PlainTextResponse("ok"))])
    app = OpenTelemetryMiddleware(
        inner, tracer_provider=provider, exclude_spans=["receive", "send"]
    )
    return app, exporter, provider


def _get_t() -> dict[str, Any]:
    """A fresh payload of an HTTP call of ``GET /t``."""
    return {"path": "/t", "path_params": {}, "query_params": {}, "headers": {}, "method": "GET"}


async def test_opentelemetry_asgi_instrumentation_continues_the_iii_trace() -> None:
    app, exporter, _ = _traced_app()
    token = enter_invocation(
        InvocationContext(function_id="t::t", invocation_id="i", traceparent=TRACEPARENT)
    )
    try:
        result = await drive(app, _get_t())
    finally:
        exit_invocation(token)
    assert result["status_code"] == 200
    (span,) = exporter.get_finished_spans()
    assert format(span.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert span.parent is not None and format(span.parent.span_id, "016x") == "b7ad6b7169203331"


def test_upload_cut_short_is_a_disconnect_not_a_short_body(module_engine: EngineThread) -> None:
    seen: list[str] = []
    app = FastAPI()

    @app.post("/upload-raw")
    async def upload_raw(request: Request) -> dict[str, int]:
        size = 0
        try:
            async for chunk in request.stream():
                if chunk and not size:
                    seen.append("first chunk")
                size += len(chunk)
        except ClientDisconnect:
            seen.append("disconnect")
            raise
        seen.append(f"body {size}")
        return {"size": size}

    bridge = IIIBridge(app, url=module_engine.url)
    with serve(app):
        wait_routes(module_engine, bridge, prefix="upload-raw::")
        host, port = module_engine.http_url.rsplit("/", 1)[1].split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(
                b"POST /upload-raw HTTP/1.1\r\nhost: localhost\r\n"
                b"content-type: application/octet-stream\r\n"
                b"content-length: 1000000\r\n\r\n" + b"x" * 1000
            )
            wait_for(lambda: seen == ["first chunk"], timeout=15)
        # the client is gone with 999 000 bytes unsent: the app must not see a complete body
        wait_for(lambda: len(seen) == 2, timeout=15)
    assert seen == ["first chunk", "disconnect"]


async def test_asgi_span_is_a_child_of_the_sdks_handler_span() -> None:
    """With the SDK's span around the handler current, the app's server span hangs under it
    (same trace as the invocation's traceparent)."""
    from opentelemetry import trace
    from opentelemetry.propagate import extract

    app, exporter, provider = _traced_app()
    token = enter_invocation(
        InvocationContext(function_id="t::t", invocation_id="i", traceparent=TRACEPARENT)
    )
    tracer = provider.get_tracer("test")
    try:
        parent = extract({"traceparent": TRACEPARENT})
        with tracer.start_as_current_span("execute t::t", context=parent) as handler_span:
            await drive(app, _get_t())
    finally:
        exit_invocation(token)
    server_span = next(s for s in exporter.get_finished_spans() if s.name != "execute t::t")
    assert server_span.context.trace_id == handler_span.get_span_context().trace_id
    assert server_span.parent is not None
    assert server_span.parent.span_id == handler_span.get_span_context().span_id
    assert trace.get_current_span() is trace.INVALID_SPAN
