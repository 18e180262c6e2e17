"""One trace from the HTTP client through the engine, the ASGI bridge, an instrumented FastAPI
route and its ``trigger_async`` into a second worker (docs/observability.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

import iii
from iii.observability import current_trace_id
from iii_asgi import IIIBridge, IIIClient
from iii_asgi.engine import EngineThread
from tests.bridge.support import serve, wait_routes
from tests.observability.conftest import Otel
from tests.observability.test_tracing import (
    CLIENT_SPAN,
    CLIENT_TRACE,
    CLIENT_TRACEPARENT,
    stored_spans,
)


@pytest.fixture
def instrumented_app() -> Iterator[FastAPI]:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int, client: IIIClient) -> dict[str, Any]:
        price = await client.trigger_async(
            {"function_id": "backend::price", "payload": {"id": item_id}}
        )
        return {"id": item_id, "price": price["price"], "trace_id": current_trace_id()}

    FastAPIInstrumentor.instrument_app(app, exclude_spans=["receive", "send"])
    yield app
    FastAPIInstrumentor.uninstrument_app(app)


def test_engine_bridge_fastapi_trigger_async_worker_is_one_trace(
    engine_factory: Callable[..., EngineThread],
    otel_factory: Callable[..., Otel],
    instrumented_app: FastAPI,
) -> None:
    engine = engine_factory(tracing=True)
    otel_factory(engine_ws_url=engine.url)  # the global provider: FastAPI's spans join it
    backend = iii.register_worker(engine.url, iii.InitOptions(worker_name="backend"))
    try:
        backend.register_function("backend::price", lambda data: {"price": data["id"] * 2})
        bridge = IIIBridge(instrumented_app, url=engine.url, worker_name="shop")
        with serve(instrumented_app):
            wait_routes(engine, sum(len(r.triggers) for r in bridge.routes))
            response = httpx.get(
                f"{engine.http_url}/items/7", headers={"traceparent": CLIENT_TRACEPARENT}
            )
            assert response.status_code == 200, response.text
            assert response.json() == {"id": 7, "price": 14, "trace_id": CLIENT_TRACE}
            spans = stored_spans(backend, CLIENT_TRACE, 5)
    finally:
        backend.shutdown()

    by_id = {s["span_id"]: s for s in spans}
    # no second root: the engine's SERVER span is the only span whose parent is not in the
    # trace, and its parent is the client's span
    (root,) = [s for s in spans if s["parent_span_id"] not in by_id]
    assert root["parent_span_id"] == CLIENT_SPAN
    assert (root["kind"], root["service_name"]) == ("SPAN_KIND_SERVER", "iii")

    def only(predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        (found,) = [s for s in spans if predicate(s)]
        return found

    bridged = only(lambda s: s["name"] == "execute items::item")  # the bridge's function
    route = only(lambda s: s["name"] == "GET /items/{item_id}")  # FastAPI instrumentation
    invoke = only(lambda s: s["name"] == "invoke backend::price")
    backend_span = only(lambda s: s["name"] == "execute backend::price")
    assert len(spans) == 5
    # engine SERVER → the bridge worker's handler span → the app's span: with the handler's
    # span current, the ASGI instrumentation nests an INTERNAL span instead of a new SERVER one
    assert bridged["parent_span_id"] == root["span_id"]
    assert route["parent_span_id"] == bridged["span_id"]
    assert route["kind"] == "SPAN_KIND_INTERNAL"
    assert route["attributes"]["http.route"] == "/items/{item_id}"
    # the route's trigger_async → engine invoke span → the second worker's handler span
    assert invoke["parent_span_id"] == route["span_id"]
    assert backend_span["parent_span_id"] == invoke["span_id"]
