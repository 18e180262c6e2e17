"""Ownership (docs/security.md): what a connection registers belongs to it, through real sockets.

The attacks of issue 12 are each tried and refused: a route taken over by re-registering its
trigger id, a trigger removed by another worker (frame and ``engine::unregister_trigger``), an
engine-provided trigger type replaced, ``engine::`` ids and built-in ids registered by a worker,
a stream's store taken over by a custom-stream override.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from engine_wire import Wire

from iii_asgi.engine import EngineThread


async def _serve_route(engine: EngineThread, wire: Wire, path: str) -> httpx.Response:
    """GET ``path`` on the HTTP trigger port while ``wire`` answers the one invocation."""

    def answer(data: Any) -> Any:
        return {"status_code": 200, "body": {"served_by": wire.worker_id}}

    async with httpx.AsyncClient(base_url=engine.http_url, timeout=5) as http:
        response, _ = await asyncio.gather(http.get(path), wire.serve_one(answer))
    return response


async def _route(wire: Wire, function_id: str, trigger_id: str, path: str) -> None:
    await wire.send({"type": "registerfunction", "id": function_id})
    await wire.register_trigger(trigger_id, "http", function_id, {"api_path": path})
    await wire.sync()


async def test_route_takeover_by_trigger_id_is_refused(
    engine: EngineThread, caplog: pytest.LogCaptureFixture
) -> None:
    owner = await Wire.connect(engine.url, name="a")
    await _route(owner, "a::route", "trigger-a", "/a")
    thief = await Wire.connect(engine.url, name="b")
    listed = await thief.result("engine::registered-triggers::list", {})
    [row] = [t for t in listed["registered_triggers"] if t["function_id"] == "a::route"]
    await thief.send({"type": "registerfunction", "id": "b::steal"})
    await thief.register_trigger(row["id"], "http", "b::steal", {"api_path": "/a"})
    refused = await thief.recv_type("triggerregistrationresult")
    assert refused["id"] == "trigger-a" and refused["function_id"] == "b::steal"
    assert refused["error"]["code"] == "FORBIDDEN"
    assert f"belongs to worker {owner.worker_id}" in refused["error"]["message"]
    assert "refused registertrigger" in caplog.text
    # the route still reaches its owner, bound to its own function
    response = await _serve_route(engine, owner, "/a")
    assert response.json() == {"served_by": owner.worker_id}
    info = await thief.result("engine::registered-triggers::info", {"id": "trigger-a"})
    assert info["function_id"] == "a::route"
    # the owner itself may rebind its trigger (idempotent replace)
    await owner.send({"type": "registerfunction", "id": "a::other"})
    await owner.register_trigger("trigger-a", "http", "a::other", {"api_path": "/a"})
    await owner.sync()
    info = await owner.result("engine::registered-triggers::info", {"id": "trigger-a"})
    assert info["function_id"] == "a::other"


async def test_only_the_owner_removes_a_trigger(
    engine: EngineThread, caplog: pytest.LogCaptureFixture
) -> None:
    owner = await Wire.connect(engine.url, name="a")
    await _route(owner, "a::route", "trigger-a", "/a")
    thief = await Wire.connect(engine.url, name="b")
    # the unregistertrigger frame from another connection: ignored, logged, no reply (§2.10)
    await thief.send({"type": "unregistertrigger", "id": "trigger-a", "trigger_type": "http"})
    await thief.sync()
    assert "refused to remove trigger" in caplog.text
    # engine::unregister_trigger from another connection: FORBIDDEN
    frame = await thief.call("engine::unregister_trigger", {"id": "trigger-a"})
    assert frame["error"]["code"] == "FORBIDDEN"
    assert "only its owner may remove it" in frame["error"]["message"]
    assert (await _serve_route(engine, owner, "/a")).status_code == 200
    # the owner removes it, through either form
    assert await owner.result("engine::unregister_trigger", {"id": "trigger-a"}) == {
        "removed": True
    }
    async with httpx.AsyncClient(base_url=engine.http_url, timeout=5) as http:
        assert (await http.get("/a")).status_code == 404
    await _route(owner, "a::route", "trigger-a2", "/a")
    await owner.send({"type": "unregistertrigger", "id": "trigger-a2", "trigger_type": "http"})
    await owner.sync()
    async with httpx.AsyncClient(base_url=engine.http_url, timeout=5) as http:
        assert (await http.get("/a")).status_code == 404


async def test_durable_triggers_belong_to_the_engine(engine: EngineThread) -> None:
    """A binding made through engine::register_trigger has no owner: no worker replaces it or
    removes it with a frame; engine::unregister_trigger removes it (builtins.md §10.1)."""
    worker = await Wire.connect(engine.url, name="w")
    await worker.send({"type": "registerfunction", "id": "w::tick"})
    await worker.sync()
    config = {"expression": "0 0 0 1 1 *"}
    made = await worker.result(
        "engine::register_trigger",
        {"trigger_type": "cron", "function_id": "w::tick", "config": config},
    )
    durable = made["id"]
    await worker.register_trigger(durable, "cron", "w::tick", config)
    refused = await worker.recv_type("triggerregistrationresult")
    assert refused["error"]["code"] == "FORBIDDEN"
    assert "belongs to the engine" in refused["error"]["message"]
    await worker.send({"type": "unregistertrigger", "id": durable})
    await worker.sync()
    assert durable in engine.core.registry.triggers
    other = await Wire.connect(engine.url, name="other")
    assert await other.result("engine::unregister_trigger", {"id": durable}) == {"removed": True}
    assert durable not in engine.core.registry.triggers


ENGINE_TYPES = [
    "http",
    "cron",
    "state",
    "stream",
    "stream:join",
    "stream:leave",
    "subscribe",
    "durable:subscriber",
    "engine::functions-available",
    "engine::workers-available",
    "engine::evil",
]


async def test_engine_trigger_types_cannot_be_registered_by_a_worker(
    engine: EngineThread, caplog: pytest.LogCaptureFixture
) -> None:
    thief = await Wire.connect(engine.url, name="b")
    for type_id in ENGINE_TYPES:
        for namespace in (None, "elsewhere"):
            frame: dict[str, Any] = {
                "type": "registertriggertype",
                "id": type_id,
                "description": "mine now",
            }
            if namespace is not None:
                frame["namespace"] = namespace
            await thief.send(frame)
            refused = await thief.recv_type("triggerregistrationresult")
            assert refused["id"] == type_id and refused["trigger_type"] == type_id
            assert refused["function_id"] == ""
            assert refused["error"]["code"] == "FORBIDDEN"
    assert "refused registertriggertype" in caplog.text
    types = engine.core.registry.trigger_types
    assert all(t.in_process for t in types.values())
    # the engine's providers survive the worker
    await thief.close()
    owner = await Wire.connect(engine.url, name="a")
    await _route(owner, "a::route", "trigger-a", "/a")
    assert (await _serve_route(engine, owner, "/a")).status_code == 200


async def test_a_worker_trigger_type_belongs_to_its_provider(engine: EngineThread) -> None:
    provider = await Wire.connect(engine.url, name="provider")
    await provider.send({"type": "registertriggertype", "id": "webhook", "description": "d"})
    await provider.sync()
    thief = await Wire.connect(engine.url, name="thief")
    await thief.send({"type": "registertriggertype", "id": "webhook", "description": "mine"})
    refused = await thief.recv_type("triggerregistrationresult")
    assert refused["error"]["code"] == "FORBIDDEN"
    assert f"provided by worker {provider.worker_id}" in refused["error"]["message"]
    # a binding still reaches the real provider
    user = await Wire.connect(engine.url, name="user")
    await user.send({"type": "registerfunction", "id": "user::on"})
    await user.register_trigger("hook-1", "webhook", "user::on", {"x": 1})
    delivered = await provider.recv_type("registertrigger")
    assert delivered["id"] == "hook-1"
    await thief.silent(0.1)
    # the provider may re-register its own type; once it is gone, another worker may provide it
    await provider.send({"type": "registertriggertype", "id": "webhook", "description": "d2"})
    await provider.sync()
    await provider.close()
    await asyncio.sleep(0.1)
    await thief.send({"type": "registertriggertype", "id": "webhook", "description": "mine"})
    assert (await thief.recv_type("registertrigger"))["id"] == "hook-1"  # re-delivered


@pytest.mark.parametrize("namespace", [None, "orders"])
async def test_engine_and_builtin_function_ids_are_reserved(
    engine: EngineThread, namespace: str | None
) -> None:
    register = {"namespace": namespace} if namespace else {}
    thief = await Wire.connect(engine.url, name="b", **register)
    expected = namespace or "default"
    for function_id in ("engine::evil", "engine::log::info", "stream::get", "state::set"):
        await thief.send({"type": "registerfunction", "id": function_id})
        rejected = await thief.recv_type("registrationrejected")
        assert rejected == {
            "type": "registrationrejected",
            "code": "FUNCTION_NAMESPACE_CONFLICT",
            "namespace": expected,
            "function_id": function_id,
            "owner_worker_id": "",
        }
    await thief.sync()  # still connected
    # a state call from that namespace still reaches the engine's state built-in
    await thief.result("state::set", {"scope": "s", "key": "k", "value": 1})
    assert await thief.result("state::get", {"scope": "s", "key": "k"}) == 1


async def test_custom_stream_overrides_cannot_take_over_a_stream(engine: EngineThread) -> None:
    writer = await Wire.connect(engine.url, name="writer")
    item = {"stream_name": "orders", "group_id": "g", "item_id": "1"}
    await writer.result("stream::set", {**item, "data": {"total": 5}})
    thief = await Wire.connect(engine.url, name="thief")
    # a stream kept in the engine's store: no override
    await thief.send({"type": "registerfunction", "id": "stream::get(orders)"})
    rejected = await thief.recv_type("registrationrejected")
    assert rejected["owner_worker_id"] == ""
    assert await writer.result("stream::get", item) == {"total": 5}
    # a new custom stream belongs to the connection that made it
    owner = await Wire.connect(engine.url, name="owner")
    for op in ("get", "set"):
        await owner.send({"type": "registerfunction", "id": f"stream::{op}(todo)"})
    await owner.sync()
    await thief.send({"type": "registerfunction", "id": "stream::update(todo)"})
    rejected = await thief.recv_type("registrationrejected")
    assert rejected["function_id"] == "stream::update(todo)"
    assert rejected["owner_worker_id"] == owner.worker_id
    await owner.send({"type": "registerfunction", "id": "stream::update(todo)"})  # its own: fine
    await owner.sync()
    assert ("default", "stream::update(todo)") in engine.core.registry.functions
    # in another namespace the name is an ordinary function (overrides live in default only)
    other = await Wire.connect(engine.url, name="other", namespace="elsewhere")
    await other.send({"type": "registerfunction", "id": "stream::get(orders)"})
    await other.sync()
    assert ("elsewhere", "stream::get(orders)") in engine.core.registry.functions


async def test_telemetry_clear_is_off_unless_allowed(engine_factory: Any) -> None:
    strict = engine_factory()
    wire = await Wire.connect(strict.url, name="w")
    for function_id in ("engine::traces::clear", "engine::logs::clear"):
        frame = await wire.call(function_id, {})
        assert frame["error"]["code"] == "FORBIDDEN"
        assert "--allow-telemetry-clear" in frame["error"]["message"]
    allowed = engine_factory(telemetry_clear=True)
    wire = await Wire.connect(allowed.url, name="w")
    assert await wire.result("engine::logs::clear", {}) == {"cleared": 0}
    assert await wire.result("engine::traces::clear", {}) == {"cleared": 0}
