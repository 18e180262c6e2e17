"""HTTP trigger routing (builtins.md §3.2, §3.3, §3.12): methods, parameters, conflicts, removal."""

from __future__ import annotations

from typing import Any

from engine_wire import Wire
from http_support import http, route, routed, worker

from iii_asgi.engine import EngineThread


async def echo(data: Any) -> Any:
    return {"body": {"fn": "echo", "path": data["path"], "params": data["path_params"]}}


async def test_default_method_is_get_and_methods_are_case_insensitive(
    engine: EngineThread,
) -> None:
    async with worker(engine) as w:
        w.register_function("r::get", echo)
        w.register_trigger({"type": "http", "function_id": "r::get", "config": {"api_path": "a"}})
        route(w, "r::post", lambda d: {"body": "posted"}, "/a", "post")
        await routed(engine, 2)
        async with http(engine) as c:
            got = await c.get("/a")
            assert got.status_code == 200
            assert got.json() == {"fn": "echo", "path": "a", "params": {}}
            posted = await c.post("/a")
            assert posted.json() == "posted"
            assert posted.headers["content-type"] == "application/json"


async def test_colon_and_brace_parameters_and_static_wins(engine: EngineThread) -> None:
    async with worker(engine) as w:
        route(w, "r::colon", echo, "/users/:id/posts/:postId")
        route(w, "r::brace", echo, "/items/{id}")
        route(w, "r::static", lambda d: {"body": "copy"}, "/items/copy")
        await routed(engine, 3)
        async with http(engine) as c:
            got = (await c.get("/users/7/posts/hello%20world")).json()
            assert got["params"] == {"id": "7", "postId": "hello%20world"}  # not decoded (§3.5)
            assert got["path"] == "/users/:id/posts/:postId"
            assert (await c.get("/items/9")).json()["params"] == {"id": "9"}
            assert (await c.get("/items/copy")).json() == "copy"
            assert (await c.get("/items/")).status_code == 404  # a parameter is never empty
            assert (await c.get("/users/7/posts")).status_code == 404


async def test_head_uses_the_get_route(engine: EngineThread) -> None:
    async with worker(engine) as w:
        route(w, "r::page", lambda d: {"body": {"method": d["method"]}}, "/page")
        await routed(engine)
        async with http(engine) as c:
            head = await c.head("/page")
            assert head.status_code == 200 and head.content == b""
            assert head.headers["content-type"] == "application/json"


async def test_not_found_and_method_not_allowed(engine: EngineThread) -> None:
    async with worker(engine) as w:
        route(w, "r::only_get", echo, "/thing/:id")
        await routed(engine)
        async with http(engine) as c:
            missing = await c.get("/nothing")
            assert missing.status_code == 404
            assert missing.headers["content-type"] == "application/json"
            assert missing.json() == {"error": {"code": "NOT_FOUND", "message": "Not Found"}}
            wrong = await c.delete("/thing/1")
            assert wrong.status_code == 405 and wrong.content == b""
            assert wrong.headers["allow"] == "GET, HEAD"
            assert (await c.get("/thing/1/")).status_code == 404  # trailing slash: other route


async def registration_error(wire: Wire, trigger_id: str, config: Any) -> Any:
    await wire.send(
        {
            "type": "registertrigger",
            "id": trigger_id,
            "trigger_type": "http",
            "function_id": "w::f",
            "config": config,
        }
    )
    return await wire.recv_type("triggerregistrationresult")


async def test_bad_configs_and_conflicts_are_refused(engine: EngineThread) -> None:
    wire = await Wire.connect(engine.url, name="routes")
    await wire.send({"type": "registerfunction", "id": "w::f"})
    ack = await registration_error(wire, "t1", {"http_method": "GET"})
    assert ack["id"] == "t1" and ack["function_id"] == "w::f"
    assert ack["error"] == {
        "code": "trigger_registration_failed",
        "message": "api_path is required for http triggers",
    }
    ack = await registration_error(wire, "t2", {"api_path": "/x", "http_method": "BREW"})
    assert ack["error"]["code"] == "trigger_registration_failed"
    assert "BREW" in ack["error"]["message"]

    await wire.send(
        {
            "type": "registertrigger",
            "id": "t3",
            "trigger_type": "http",
            "function_id": "w::f",
            "config": {"api_path": "/a/:x"},
        }
    )
    ack = await registration_error(wire, "t4", {"api_path": "a/:y", "http_method": "get"})
    assert ack["id"] == "t4"
    assert ack["error"]["code"] == "trigger_registration_failed"
    assert "conflicts with already-registered route 'GET /a/:x'" in ack["error"]["message"]
    # same shape, other method: a different route; re-registering the same id replaces it
    for trigger_id, method in (("t5", "POST"), ("t3", "GET")):
        await wire.send(
            {
                "type": "registertrigger",
                "id": trigger_id,
                "trigger_type": "http",
                "function_id": "w::f",
                "config": {"api_path": "/a/:z", "http_method": method},
            }
        )
    await wire.silent(0.2)
    await routed(engine, 2)


async def test_routes_leave_with_unregister_and_disconnect(engine: EngineThread) -> None:
    async with worker(engine) as w:
        trigger = route(w, "r::gone", echo, "/gone")
        route(w, "r::kept", echo, "/kept")
        await routed(engine, 2)
        async with http(engine) as c:
            assert (await c.get("/gone")).status_code == 200
            trigger.unregister()
            await routed(engine, 1)
            assert (await c.get("/gone")).status_code == 404
    await routed(engine, 0)  # the worker disconnected: its routes went with it
    async with worker(engine) as other:
        route(other, "r::kept2", echo, "/kept")  # the path is free again
        await routed(engine, 1)
        async with http(engine) as c:
            assert (await c.get("/kept")).status_code == 200


async def test_routes_are_owner_checked(engine: EngineThread) -> None:
    first = await Wire.connect(engine.url, name="first")
    second = await Wire.connect(engine.url, name="second")
    frame = {
        "type": "registertrigger",
        "id": "shared",
        "trigger_type": "http",
        "function_id": "w::f",
        "config": {"api_path": "/shared"},
    }
    await first.send(frame)
    await first.sync()
    await second.send(frame)  # the same trigger id from another worker: refused (security.md)
    refused = await second.recv_type("triggerregistrationresult")
    assert refused["error"]["code"] == "FORBIDDEN"
    await routed(engine, 1)
    await first.close()
    await routed(engine, 0)  # the owner leaving removes its route
    await second.send(frame)  # the id is free again
    await second.sync()
    await routed(engine, 1)
    await second.close()
    await routed(engine, 0)


async def test_empty_segments_reach_a_parameter_only_as_a_fallback(engine: EngineThread) -> None:
    """``/files//home/x`` (Starlette's ``{p:path}`` takes it) reaches an expanded catch-all;
    a route that matches without an empty parameter wins; a trailing empty one never
    matches."""
    async with worker(engine) as w:
        route(w, "r::deep", echo, "/files/:p/:p__2/:p__3")
        route(w, "r::one", echo, "/users/:id")
        route(w, "r::literal", echo, "/a//b")
        await routed(engine, 3)
        async with http(engine) as c:
            deep = await c.get("/files//home/x")
            assert deep.json()["params"] == {"p": "", "p__2": "home", "p__3": "x"}
            assert (await c.head("/files//home/x")).status_code == 200
            assert (await c.get("/a//b")).json()["path"] == "/a//b"
            assert (await c.get("/users/")).status_code == 404
            assert (await c.get("/files/a//")).status_code == 404
