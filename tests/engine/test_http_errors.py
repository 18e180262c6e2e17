"""HTTP trigger errors (builtins.md §3.9), conditions, middleware (§3.10), CORS and timeouts
(§3.11), client disconnects."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
from engine_wire import Wire
from helpers import wait_until
from http_support import http, route, routed, worker

from iii_asgi.engine import EngineThread
from iii_asgi.engine.config.engine import CorsConfig, HttpMiddleware


def error_of(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    error: dict[str, Any] = r.json()["error"]
    if status >= 500:
        assert int(error.pop("error_id"), 16) > 0
    else:
        assert "error_id" not in error
    return error


async def test_handler_errors_and_missing_functions(engine: EngineThread) -> None:
    def boom(data: Any) -> Any:
        raise ValueError("kaboom")

    async with worker(engine) as w:
        route(w, "e::boom", boom, "/boom")
        w.register_trigger(
            {"type": "http", "function_id": "e::missing", "config": {"api_path": "/missing"}}
        )
        await routed(engine, 2)
        async with http(engine) as c:
            assert error_of(await c.get("/boom"), 500) == {
                "code": "invocation_failed",
                "message": "kaboom",
            }
            error = error_of(await c.get("/missing"), 500)
            assert error["code"] == "function_not_found"


async def test_worker_leaving_mid_call_is_invocation_stopped(engine: EngineThread) -> None:
    wire = await Wire.connect(engine.url, name="leaver")
    await wire.send({"type": "registerfunction", "id": "e::hang"})
    await wire.send(
        {
            "type": "registertrigger",
            "id": "t",
            "trigger_type": "http",
            "function_id": "e::hang",
            "config": {"api_path": "/hang"},
        }
    )
    await routed(engine)
    async with http(engine) as c:
        pending = asyncio.ensure_future(c.get("/hang"))
        call = await wire.recv_type("invokefunction")
        assert call["data"]["path"] == "/hang"
        await wire.close()
        error = error_of(await pending, 500)
    assert error == {"code": "invocation_stopped", "message": "Invocation stopped"}


async def test_timeout_is_504_with_an_empty_body(engine_factory: Any) -> None:
    engine = engine_factory(http_default_timeout_ms=200)
    never = asyncio.Event()

    async def hang(data: Any) -> None:
        await never.wait()

    async def silent(data: Any) -> None:
        return None  # streaming mode, but the writer is never used

    async with worker(engine) as w:
        route(w, "e::hang", hang, "/hang")
        route(w, "e::silent", silent, "/silent")
        await routed(engine, 2)
        async with http(engine) as c:
            for path in ("/hang", "/silent"):
                r = await c.get(path)
                assert r.status_code == 504 and r.content == b""
    assert engine.core.channels.channels == {}
    assert engine.core.invoker.pending == {}
    never.set()


async def test_client_disconnect_frees_the_channels(engine: EngineThread) -> None:
    started = asyncio.Event()
    never = asyncio.Event()

    async def hang(data: Any) -> None:
        started.set()
        await never.wait()

    async with worker(engine) as w:
        route(w, "e::wait", hang, "/wait")
        await routed(engine)
        async with http(engine) as c:
            request = asyncio.ensure_future(c.get("/wait"))
            await started.wait()
            assert len(engine.core.channels.channels) == 2
            request.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await request
        for _ in range(200):
            if not engine.core.channels.channels and not engine.core.invoker.pending:
                break
            await asyncio.sleep(0.01)
        assert engine.core.channels.channels == {}
        assert engine.core.invoker.pending == {}
        never.set()


async def test_concurrency_limit_queues_requests_in_order(engine_factory: Any) -> None:
    engine = engine_factory(http_concurrency_limit=1)
    gate = asyncio.Event()
    order: list[str] = []

    async def slow(data: Any) -> Any:
        order.append("slow start")
        await gate.wait()
        order.append("slow end")
        return {"body": "slow"}

    async def fast(data: Any) -> Any:
        order.append("fast")
        return {"body": "fast"}

    async with worker(engine) as w:
        route(w, "e::slow", slow, "/slow")
        route(w, "e::fast", fast, "/fast")
        await routed(engine, 2)
        async with http(engine) as c:
            first = asyncio.ensure_future(c.get("/slow"))
            await wait_until(lambda: order == ["slow start"])
            second = asyncio.ensure_future(c.get("/fast"))
            await asyncio.sleep(0.2)
            assert order == ["slow start"]  # the second request waits for the slot
            gate.set()
            assert (await first).json() == "slow" and (await second).json() == "fast"
    assert order == ["slow start", "slow end", "fast"]
    app = engine.engine.http_app
    assert app is not None
    await wait_until(lambda: app.active == 0)


async def test_condition(engine: EngineThread) -> None:
    seen: list[Any] = []

    def condition(data: Any) -> Any:
        seen.append(sorted(data))
        return {"false": False, "null": None, "str": "no"}.get(data["query_params"].get("c"), True)

    def broken(data: Any) -> Any:
        raise RuntimeError("condition broke")

    async with worker(engine) as w:
        w.register_function("e::cond", condition)
        w.register_function("e::broken", broken)
        ran = lambda d: {"body": "ran"}  # noqa: E731
        route(w, "e::guarded", ran, "/guarded", condition_function_id="e::cond")
        route(w, "e::b", ran, "/b", condition_function_id="e::broken")
        await routed(engine, 2)
        async with http(engine) as c:
            r = await c.get("/guarded", params={"c": "false"})
            assert r.status_code == 422
            assert r.json() == {
                "error": {"code": "CONDITION_NOT_MET", "message": "Request condition not met"},
                "skipped": True,
            }
            for value in ("null", "str", "true"):
                assert (await c.get("/guarded", params={"c": value})).json() == "ran"
            error = error_of(await c.get("/b"), 500)
            assert error == {"code": "invocation_failed", "message": "condition broke"}
    # the handler's payload without the two channel refs (§1.3)
    fields = ["body", "headers", "method", "path", "path_params", "query_params", "trigger"]
    assert seen[0] == fields


async def test_route_middleware(engine_factory: Any) -> None:
    engine = engine_factory(http_default_timeout_ms=300)
    calls: list[str] = []
    never = asyncio.Event()

    def passes(data: Any) -> Any:
        assert data["phase"] == "preHandler" and data["context"] == {}
        assert set(data["request"]) == {"path_params", "query_params", "headers", "method"}
        calls.append("passes")
        return {"action": "continue"}

    def answers(data: Any) -> Any:
        calls.append("answers")
        return {
            "action": "respond",
            "response": {"status_code": 401, "body": {"denied": True}, "headers": {"X-M": "1"}},
        }

    def fails(data: Any) -> Any:
        raise RuntimeError("middleware broke")

    async def slow(data: Any) -> Any:
        await never.wait()

    async with worker(engine) as w:
        for name, fn in (("passes", passes), ("answers", answers), ("fails", fails)):
            w.register_function(f"mw::{name}", fn)
        w.register_function("mw::slow", slow)
        handler = lambda d: {"body": "handler"}  # noqa: E731
        route(w, "e::ok", handler, "/ok", middleware_function_ids=["mw::passes", 3])
        route(w, "e::no", handler, "/no", middleware_function_ids=["mw::passes", "mw::answers"])
        route(w, "e::fail", handler, "/fail", middleware_function_ids=["mw::fails"])
        route(w, "e::slow", handler, "/slow", middleware_function_ids=["mw::slow"])
        await routed(engine, 4)
        async with http(engine) as c:
            assert (await c.get("/ok")).json() == "handler"
            denied = await c.get("/no")
            assert denied.status_code == 401 and denied.json() == {"denied": True}
            assert denied.headers["x-m"] == "1"
            assert denied.headers["content-type"] == "application/json"
            error = error_of(await c.get("/fail"), 500)
            assert error == {"code": "invocation_failed", "message": "middleware broke"}
            timeout = await c.get("/slow")
            assert timeout.status_code == 504
            assert timeout.json() == {
                "error": {"code": "MIDDLEWARE_TIMEOUT", "message": "Middleware timeout"}
            }
    assert calls == ["passes", "passes", "answers"]
    never.set()


async def test_global_middleware_runs_by_priority(engine_factory: Any) -> None:
    engine = engine_factory(
        http_middleware=[
            HttpMiddleware("g::second", priority=5),
            HttpMiddleware("g::first", priority=-1),
            HttpMiddleware("g::other-phase", phase="onResponse"),
        ]
    )
    order: list[str] = []

    def make(name: str) -> Any:
        def middleware(data: Any) -> Any:
            order.append(name)
            if data["request"]["query_params"].get("stop") == name:
                return {"action": "respond", "response": {"body": f"stopped by {name}"}}
            return None  # anything else continues

        return middleware

    async with worker(engine) as w:
        for name in ("first", "second", "other-phase"):
            w.register_function(f"g::{name}", make(name))
        route(w, "g::handler", lambda d: {"body": "handler"}, "/g")
        await routed(engine)
        async with http(engine) as c:
            assert (await c.get("/g")).json() == "handler"
            stopped = await c.get("/g", params={"stop": "first"})
            assert stopped.status_code == 200 and stopped.json() == "stopped by first"
            assert (await c.get("/nothing-here")).status_code == 404
    assert order == ["first", "second", "first"]


async def test_no_cors_headers_by_default(engine: EngineThread) -> None:
    """Issue 12: without ``http_cors`` the port sends no CORS headers, 404s included, and a
    preflight is an ordinary OPTIONS request (the real engine is permissive here)."""
    async with worker(engine) as w:
        route(w, "c::fn", lambda d: {"body": 1}, "/c", "PATCH")
        await routed(engine)
        async with http(engine) as c:
            origin = {"Origin": "https://a.example"}
            ask = {**origin, "Access-Control-Request-Method": "PATCH"}
            pre = await c.options("/c", headers=ask)
            assert pre.status_code == 405 and pre.headers["allow"] == "PATCH"
            actual = await c.patch("/c", headers=origin)
            missing = await c.get("/zzz", headers=origin)
            assert actual.json() == 1 and missing.status_code == 404
            for r in (pre, actual, missing):
                assert not [h for h in r.headers if h.startswith("access-control-")], r.headers


async def test_cors_permissive_when_configured_empty(engine_factory: Any) -> None:
    """``CorsConfig()`` (config file ``cors: {}``) is the real engine's permissive layer."""
    engine = engine_factory(http_cors=CorsConfig())
    async with worker(engine) as w:
        route(w, "c::fn", lambda d: {"body": 1}, "/c", "PATCH")
        await routed(engine)
        async with http(engine) as c:
            pre = await c.options(
                "/c",
                headers={
                    "Origin": "https://a.example",
                    "Access-Control-Request-Method": "PATCH",
                    "Access-Control-Request-Headers": "x-token",
                },
            )
            assert pre.status_code == 200 and pre.content == b""
            assert pre.headers["access-control-allow-origin"] == "*"
            assert pre.headers["access-control-allow-methods"] == "*"
            assert pre.headers["access-control-allow-headers"] == "x-token"
            actual = await c.patch("/c", headers={"Origin": "https://a.example"})
            assert actual.json() == 1
            assert actual.headers["access-control-allow-origin"] == "*"
            missing = await c.get("/zzz", headers={"Origin": "https://a.example"})
            assert missing.headers["access-control-allow-origin"] == "*"  # unmatched paths too
            plain = await c.patch("/c")
            assert "access-control-allow-origin" not in plain.headers


async def test_cors_configured(engine_factory: Any) -> None:
    engine = engine_factory(
        http_cors=CorsConfig(allowed_origins=["https://ok.example"], allowed_methods=["get"])
    )
    async with worker(engine) as w:
        route(w, "c::fn", lambda d: {"body": 1}, "/c")
        await routed(engine)
        async with http(engine) as c:
            ask = {"Access-Control-Request-Method": "GET"}
            ok = await c.options("/c", headers={"Origin": "https://ok.example", **ask})
            assert ok.headers["access-control-allow-origin"] == "https://ok.example"
            assert ok.headers["access-control-allow-methods"] == "GET"
            assert ok.headers["vary"] == "origin"
            bad = await c.options("/c", headers={"Origin": "https://evil.example", **ask})
            assert "access-control-allow-origin" not in bad.headers
            got = await c.get("/c", headers={"Origin": "https://evil.example"})
            assert got.json() == 1 and "access-control-allow-origin" not in got.headers


async def test_no_http_server(engine_factory: Any) -> None:
    engine = engine_factory(http_port=None)
    assert engine.engine.http_app is None
    try:
        engine.http_url  # noqa: B018
    except RuntimeError:
        pass
    else:
        raise AssertionError("http_url without an HTTP server")
    assert ("default", "http") not in engine.core.registry.trigger_types
