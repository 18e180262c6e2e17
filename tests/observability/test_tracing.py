"""One trace from the HTTP edge through the engine and two workers; error spans; logs with
trace ids; OTEL_ENABLED=false; the engine's /otel store queried by trace id (protocol.md
§1.11, §3.6)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.trace import SpanKind, StatusCode

import iii
from iii import IIIInvocationError, InitOptions, get_context
from iii.observability import flush_otel, with_span
from iii.observability._state import state
from iii_asgi.engine import EngineThread
from tests.helpers import call_until_found, wait_for
from tests.observability.conftest import Otel

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
CLIENT_TRACEPARENT = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"


@pytest.fixture
def workers(request: pytest.FixtureRequest) -> Iterator[Callable[[EngineThread, str], iii.III]]:
    started: list[iii.III] = []

    def make(engine: EngineThread, name: str) -> iii.III:
        client = iii.register_worker(engine.url, InitOptions(worker_name=name))
        started.append(client)
        return client

    yield make
    for client in started:
        client.shutdown()


def stored_spans(client: iii.III, trace_id: str, count: int) -> list[dict[str, Any]]:
    """The engine's stored spans of ``trace_id`` once at least ``count`` arrived."""
    found: list[dict[str, Any]] = []

    def enough() -> bool:
        flush_otel()
        found[:] = client.trigger(
            {"function_id": "engine::traces::list", "payload": {"trace_id": trace_id}}
        )["spans"]
        return len(found) >= count

    wait_for(enough, timeout=10)
    return found


def serve_quote(front: iii.III, back: iii.III) -> None:
    """``GET /quote`` on ``front`` calls ``backend::price`` on ``back`` and logs."""
    back.register_function("backend::price", lambda data: {"price": 3})

    async def quote(data: Any) -> dict[str, Any]:
        price = await front.trigger_async({"function_id": "backend::price", "payload": {}})
        ctx = get_context()
        ctx.logger.info("priced", {"price": price["price"]})
        return {"status_code": 200, "body": {**price, "trace_id": ctx.trace_id}}

    front.register_function("shop::quote", quote)
    front.register_trigger(
        {"type": "http", "function_id": "shop::quote", "config": {"api_path": "quote"}}
    )


def test_http_request_through_engine_and_two_workers_is_one_trace(
    engine_factory: Callable[..., EngineThread],
    otel_factory: Callable[..., Otel],
    workers: Callable[[EngineThread, str], iii.III],
) -> None:
    engine = engine_factory(tracing=True)
    otel = otel_factory(engine_ws_url=engine.url)  # SDK telemetry goes to this engine too
    front, back = workers(engine, "front"), workers(engine, "back")
    serve_quote(front, back)
    url = f"{engine.http_url}/quote"
    wait_for(lambda: httpx.get(url).status_code == 200)  # route registered (untraced calls)

    response = httpx.get(url, headers={"traceparent": CLIENT_TRACEPARENT})
    assert response.json() == {"price": 3, "trace_id": CLIENT_TRACE}

    by_name = {s["name"]: s for s in stored_spans(front, CLIENT_TRACE, 4)}
    server = by_name["GET quote"]
    route = by_name["execute shop::quote"]
    invoke = by_name["invoke backend::price"]
    backend = by_name["execute backend::price"]
    assert len(by_name) == 4  # nothing else joined the trace, no second root
    assert server["parent_span_id"] == CLIENT_SPAN  # the client's trace is continued
    assert route["parent_span_id"] == server["span_id"]
    assert invoke["parent_span_id"] == route["span_id"]
    assert backend["parent_span_id"] == invoke["span_id"]
    assert (server["kind"], server["service_name"]) == ("SPAN_KIND_SERVER", "iii")
    assert server["attributes"]["http.route"] == "quote"
    assert server["attributes"]["http.response.status_code"] == 200
    assert route["service_name"] == backend["service_name"] == "iii-python-sdk"
    assert [e["name"] for e in backend["events"]] == [
        "iii.invocation.input",
        "iii.invocation.output",
    ]
    assert backend["events"][1]["attributes"]["iii.payload"] == '{"price":3}'
    assert backend["attributes"]["iii.function.id"] == "backend::price"

    # the SDK's own exporter saw the same two handler spans
    handler_spans = {s.name: s for s in otel.spans() if s.context.trace_id == int(CLIENT_TRACE, 16)}
    assert set(handler_spans) == {"execute shop::quote", "execute backend::price"}
    assert format(handler_spans["execute shop::quote"].context.span_id, "016x") == route["span_id"]

    # the log record carries the route handler's trace and span, in the SDK and in the engine
    (record,) = [
        r.log_record
        for r in otel.logs()
        if r.log_record.body == "priced" and r.log_record.trace_id == int(CLIENT_TRACE, 16)
    ]
    assert format(record.trace_id, "032x") == CLIENT_TRACE
    assert format(record.span_id, "016x") == route["span_id"]

    def logged() -> list[dict[str, Any]]:
        flush_otel()
        logs: list[dict[str, Any]] = front.trigger(
            {"function_id": "engine::logs::list", "payload": {"trace_id": CLIENT_TRACE}}
        )["logs"]
        return logs

    wait_for(lambda: logged(), timeout=10)
    (stored_log,) = logged()
    assert (stored_log["body"], stored_log["span_id"]) == ("priced", route["span_id"])
    assert stored_log["attributes"] == {"price": 3, "iii.function.id": "shop::quote"}
    assert stored_log["severity_text"] == "INFO"

    tree = front.trigger(
        {"function_id": "engine::traces::tree", "payload": {"trace_id": CLIENT_TRACE}}
    )
    (root,) = tree["roots"]  # the server span: its parent (the client's) is not stored
    assert root["name"] == "GET quote"
    assert [c["name"] for c in root["children"]] == ["execute shop::quote"]
    assert root["children"][0]["children"][0]["children"][0]["name"] == "execute backend::price"


def test_incoming_traceparent_is_continued_with_engine_tracing_off(
    engine: EngineThread, otel: Otel, workers: Callable[[EngineThread, str], iii.III]
) -> None:
    front, back = workers(engine, "front"), workers(engine, "back")
    serve_quote(front, back)
    url = f"{engine.http_url}/quote"
    wait_for(lambda: httpx.get(url).status_code == 200)
    assert httpx.get(url, headers={"traceparent": CLIENT_TRACEPARENT}).json()["trace_id"] == (
        CLIENT_TRACE
    )
    spans = {s.name: s for s in otel.spans() if s.context.trace_id == int(CLIENT_TRACE, 16)}
    route, backend = spans["execute shop::quote"], spans["execute backend::price"]
    assert route.parent is not None and format(route.parent.span_id, "016x") == CLIENT_SPAN
    assert route.parent.is_remote
    # no engine span in between: the backend's parent is the route handler's span
    assert backend.parent is not None and backend.parent.span_id == route.context.span_id
    assert dict(backend.attributes or {})["iii.function.id"] == "backend::price"


def test_worker_to_worker_call_is_a_child_of_the_callers_span(
    engine: EngineThread, otel: Otel, workers: Callable[[EngineThread, str], iii.III]
) -> None:
    caller, executor = workers(engine, "caller"), workers(engine, "executor")
    executor.register_function("math::double", lambda data: data * 2)
    call_until_found(caller, {"function_id": "math::double", "payload": 1})

    def call(span: Any) -> Any:
        return caller.trigger({"function_id": "math::double", "payload": 21})

    assert with_span("caller", call) == 42
    parent = otel.span("caller")
    (handler,) = [
        s
        for s in otel.spans()
        if s.name == "execute math::double" and s.context.trace_id == parent.context.trace_id
    ]
    assert handler.parent is not None and handler.parent.span_id == parent.context.span_id
    assert handler.kind is SpanKind.INTERNAL
    assert handler.status.status_code is StatusCode.UNSET


def test_failing_handler_marks_its_span_error_with_the_exception(
    engine_factory: Callable[..., EngineThread],
    otel_factory: Callable[..., Otel],
    workers: Callable[[EngineThread, str], iii.III],
) -> None:
    engine = engine_factory(tracing=True)
    otel = otel_factory()
    caller, executor = workers(engine, "caller"), workers(engine, "executor")

    def boom(data: Any) -> None:
        raise ValueError("kaboom")

    executor.register_function("bad::boom", boom)
    with pytest.raises(IIIInvocationError):
        call_until_found(caller, {"function_id": "bad::boom", "payload": None})

    def call(span: Any) -> None:
        caller.trigger({"function_id": "bad::boom", "payload": {"x": 1}})

    with pytest.raises(IIIInvocationError, match="kaboom") as raised:
        with_span("caller", call)
    assert raised.value.code == "invocation_failed"
    parent = otel.span("caller")
    assert parent.status.status_code is StatusCode.ERROR  # the exception crossed with_span
    (handler,) = [
        s
        for s in otel.spans()
        if s.name == "execute bad::boom" and s.context.trace_id == parent.context.trace_id
    ]
    assert handler.status.status_code is StatusCode.ERROR
    assert handler.status.description == "kaboom"
    (event,) = [e for e in handler.events if e.name == "exception"]
    assert event.attributes is not None
    assert event.attributes["exception.type"] == "ValueError"
    assert "kaboom" in str(event.attributes["exception.stacktrace"])
    # the engine's invoke span between the two failed as well
    trace_id = format(parent.context.trace_id, "032x")
    (invoke,) = [s for s in stored_spans(caller, trace_id, 1) if s["name"] == "invoke bad::boom"]
    assert invoke["status"]["code"] == "STATUS_CODE_ERROR"
    assert invoke["status"]["message"] == "invocation_failed: kaboom"


def test_otel_disabled_opens_no_socket_and_records_nothing(
    engine: EngineThread, workers: Callable[[EngineThread, str], iii.III]
) -> None:
    # the suite's default environment: OTEL_ENABLED=false
    caller, executor = workers(engine, "caller"), workers(engine, "executor")
    executor.register_function("math::double", lambda data: data * 2)
    seen: list[Any] = []

    def traced(data: Any) -> Any:
        ctx = get_context()
        seen.append((ctx.trace_id, ctx.span_id, ctx.invocation and ctx.invocation.traceparent))
        ctx.logger.info("fallback only")
        return data

    executor.register_function("probe::ctx", traced)
    assert call_until_found(caller, {"function_id": "math::double", "payload": 4}) == 8
    call_until_found(caller, {"function_id": "probe::ctx", "payload": 1})
    assert not state.initialized and state.tracer is None
    assert seen == [(None, None, None)]  # no span, nothing propagated
    assert engine.workers.observability.store.sockets_opened == 0
    assert not engine.workers.observability.store.pending
    assert engine.workers.observability.store.traces == {}


def test_otel_enabled_worker_opens_the_otel_socket_and_exports_metrics(
    engine: EngineThread, otel_env: None, workers: Callable[[EngineThread, str], iii.III]
) -> None:
    caller, executor = workers(engine, "caller"), workers(engine, "executor")
    assert state.initialized  # register_worker initialised OTel for its engine
    executor.register_function("math::double", lambda data: data * 2)
    assert call_until_found(caller, {"function_id": "math::double", "payload": 4}) == 8
    store = engine.workers.observability.store
    wait_for(lambda: store.sockets_opened == 1)

    def invocations() -> list[dict[str, Any]]:
        flush_otel()
        metrics: list[dict[str, Any]] = caller.trigger(
            {"function_id": "engine::metrics::list", "payload": {"name": "iii.invocations"}}
        )["metrics"]
        return metrics

    wait_for(lambda: invocations(), timeout=10)
    points = invocations()[0]["data_points"]
    ok = [
        p
        for p in points
        if p["attributes"] == {"iii.function.id": "math::double", "iii.invocation.status": "ok"}
    ]
    assert ok and int(ok[0]["asInt"]) >= 1
    assert invocations()[0]["type"] == "sum"
    assert store.sockets_opened == 1  # one socket per process, shared by both workers


def test_sync_handler_on_a_thread_passes_its_span_on(
    engine: EngineThread, otel: Otel, workers: Callable[[EngineThread, str], iii.III]
) -> None:
    front, back = workers(engine, "front"), workers(engine, "back")
    back.register_function("math::inc", lambda data: data + 1)

    def outer(data: Any) -> Any:  # runs on the handler thread pool; trigger() blocks there
        return front.trigger({"function_id": "math::inc", "payload": data})

    front.register_function("math::outer", outer)
    call_until_found(front, {"function_id": "math::inc", "payload": 0})
    assert call_until_found(back, {"function_id": "math::outer", "payload": 1}) == 2
    (outer_span,) = [s for s in otel.spans() if s.name == "execute math::outer"]
    (inner,) = [
        s
        for s in otel.spans()
        if s.name == "execute math::inc" and s.context.trace_id == outer_span.context.trace_id
    ]
    assert inner.parent is not None and inner.parent.span_id == outer_span.context.span_id


async def test_channel_creation_gets_an_engine_span(
    engine_factory: Callable[..., EngineThread], otel_factory: Callable[..., Otel]
) -> None:
    engine = engine_factory(tracing=True)
    otel = otel_factory()
    client = iii.III(engine.url, InitOptions(worker_name="channels"))
    await client.connect()
    try:

        async def create(span: Any) -> Any:
            return await client.create_channel()

        channel = await with_span("make-channel", create)
        assert channel.reader_ref.channel_id == channel.writer_ref.channel_id
        parent = otel.span("make-channel")
        trace_id = format(parent.context.trace_id, "032x")
        spans = await asyncio.to_thread(stored_spans, client, trace_id, 1)
    finally:
        await client.shutdown_async()
    (invoke,) = [s for s in spans if s["name"] == "invoke engine::channels::create"]
    assert invoke["parent_span_id"] == format(parent.context.span_id, "016x")
    assert invoke["status"]["code"] == "STATUS_CODE_UNSET"
