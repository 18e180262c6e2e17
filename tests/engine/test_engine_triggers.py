"""Trigger types and bindings (protocol.md §5): worker providers, parking, discovery types."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from engine_wire import Wire

from iii_asgi.engine import EngineThread

TYPE = {
    "type": "registertriggertype",
    "id": "hook",
    "description": "d",
    "trigger_request_format": {"type": "object"},
}


def binding(trigger_id: str = "t1", **extra: object) -> dict[str, object]:
    return {
        "type": "registertrigger",
        "id": trigger_id,
        "trigger_type": "hook",
        "function_id": "user::f",
        "config": {"x": 1},
        **extra,
    }


async def test_binding_forwarded_to_provider(engine: EngineThread) -> None:
    provider = await Wire.connect(engine.url, name="prov")
    await provider.send(TYPE)
    await provider.sync()
    user = await Wire.connect(engine.url, name="user", namespace="orders")
    await user.send(binding(metadata={"tag": "t"}, namespace="orders"))
    frame = await provider.recv_type("registertrigger")
    assert frame == {
        "type": "registertrigger",
        "id": "t1",
        "trigger_type": "hook",
        "function_id": "user::f",
        "config": {"x": 1},
        "metadata": {"tag": "t"},
        "namespace": "orders",
    }
    await provider.send(
        {
            "type": "triggerregistrationresult",
            "id": "t1",
            "trigger_type": "hook",
            "function_id": "user::f",
        }
    )
    await user.send({"type": "unregistertrigger", "id": "t1", "trigger_type": "hook"})
    frame = await provider.recv_type("unregistertrigger")
    assert frame == {"type": "unregistertrigger", "id": "t1", "trigger_type": "hook"}
    await user.silent(0.1)


async def test_absent_config_is_null_and_parked_until_provider(engine: EngineThread) -> None:
    user = await Wire.connect(engine.url, name="user")
    await user.send(
        {"type": "registertrigger", "id": "t2", "trigger_type": "hook", "function_id": "user::f"}
    )
    await user.sync()
    assert engine.core.registry.triggers["t2"].provider is None  # parked
    provider = await Wire.connect(engine.url, name="prov")
    await provider.send(TYPE)
    frame = await provider.recv_type("registertrigger")
    assert frame["id"] == "t2" and frame["config"] is None


async def test_provider_error_ack_is_forwarded_and_parks(engine: EngineThread) -> None:
    provider = await Wire.connect(engine.url, name="prov")
    await provider.send(TYPE)
    user = await Wire.connect(engine.url, name="user")
    await provider.sync()
    await user.send(binding("t3"))
    await provider.recv_type("registertrigger")
    error = {"code": "trigger_registration_failed", "message": "bad config"}
    await provider.send(
        {
            "type": "triggerregistrationresult",
            "id": "t3",
            "trigger_type": "hook",
            "function_id": "user::f",
            "error": error,
        }
    )
    frame = await user.recv_type("triggerregistrationresult")
    assert frame == {
        "type": "triggerregistrationresult",
        "id": "t3",
        "trigger_type": "hook",
        "function_id": "user::f",
        "error": error,
    }
    await provider.sync()
    assert engine.core.registry.triggers["t3"].provider is None


async def test_provider_reconnect_redelivers(engine: EngineThread) -> None:
    provider = await Wire.connect(engine.url, name="prov")
    await provider.send(TYPE)
    user = await Wire.connect(engine.url, name="user")
    await provider.sync()
    await user.send(binding("t4"))
    await provider.recv_type("registertrigger")
    await provider.close()
    await asyncio.sleep(0.1)
    again = await Wire.connect(engine.url, name="prov")
    await again.send(TYPE)
    frame = await again.recv_type("registertrigger")
    assert frame["id"] == "t4"
    # the user disconnects: the provider is told
    await user.close()
    assert (await again.recv_type("unregistertrigger"))["id"] == "t4"


async def test_unregistertriggertype_removes_owned_type(engine: EngineThread) -> None:
    provider = await Wire.connect(engine.url, name="prov")
    other = await Wire.connect(engine.url, name="other")
    await provider.send(TYPE)
    await provider.sync()
    await other.send({"type": "unregistertriggertype", "id": "hook"})  # not the owner
    await other.sync()
    assert ("default", "hook") in engine.core.registry.trigger_types
    await provider.send({"type": "unregistertriggertype", "id": "hook"})
    await provider.sync()
    assert ("default", "hook") not in engine.core.registry.trigger_types


async def test_namespace_provider_preferred_over_default(engine: EngineThread) -> None:
    fallback = await Wire.connect(engine.url, name="fallback")
    await fallback.send(TYPE)
    user = await Wire.connect(engine.url, name="user", namespace="orders")
    await fallback.sync()
    await user.send(binding("t5"))
    await fallback.recv_type("registertrigger")
    home = await Wire.connect(engine.url, name="home", namespace="orders")
    await home.send(TYPE)
    frame = await home.recv_type("registertrigger")
    assert frame["id"] == "t5" and frame["trigger_namespace"] == "orders"
    assert (await fallback.recv_type("unregistertrigger"))["id"] == "t5"


async def test_http_bindings_park_without_an_http_server(
    engine_factory: Callable[..., EngineThread],
) -> None:
    engine = engine_factory(http_port=None)
    user = await Wire.connect(engine.url, name="user")
    await user.send(
        {
            "type": "registertrigger",
            "id": "h1",
            "trigger_type": "http",
            "function_id": "user::f",
            "config": {"api_path": "/x"},
        }
    )
    await user.sync()
    assert engine.core.registry.triggers["h1"].provider is None
    await user.silent(0.1)


async def test_register_trigger_builtin_waits_for_ack(engine: EngineThread) -> None:
    provider = await Wire.connect(engine.url, name="prov")
    await provider.send(TYPE)
    await provider.sync()
    caller = await Wire.connect(engine.url)
    inv = await caller.invoke(
        "engine::register_trigger", {"trigger_type": "hook", "function_id": "user::f", "config": {}}
    )
    frame = await provider.recv_type("registertrigger")
    await caller.silent(0.1)  # still waiting for the ack
    await provider.send(
        {
            "type": "triggerregistrationresult",
            "id": frame["id"],
            "trigger_type": "hook",
            "function_id": "user::f",
        }
    )
    result = await caller.recv_type("invocationresult")
    assert result["invocation_id"] == inv and result["result"] == {"id": frame["id"]}
    removed = await caller.result("engine::unregister_trigger", {"id": frame["id"]})
    assert removed == {"removed": True}
    assert (await provider.recv_type("unregistertrigger"))["id"] == frame["id"]
    assert await caller.result("engine::unregister_trigger", {"id": "none"}) == {"removed": False}


async def test_register_trigger_builtin_error_ack(engine: EngineThread) -> None:
    provider = await Wire.connect(engine.url, name="prov")
    await provider.send(TYPE)
    await provider.sync()
    caller = await Wire.connect(engine.url)
    await caller.invoke("engine::register_trigger", {"trigger_type": "hook", "function_id": "f"})
    frame = await provider.recv_type("registertrigger")
    await provider.send(
        {
            "type": "triggerregistrationresult",
            "id": frame["id"],
            "trigger_type": "hook",
            "function_id": "f",
            "error": {"code": "trigger_registration_failed", "message": "no"},
        }
    )
    result = await caller.recv_type("invocationresult")
    assert result["error"] == {"code": "trigger_registration_failed", "message": "no"}


async def test_workers_available_fires(engine: EngineThread) -> None:
    watcher = await Wire.connect(engine.url, name="watch")
    await watcher.send({"type": "registerfunction", "id": "watch::on"})
    await watcher.send(
        {
            "type": "registertrigger",
            "id": "wa",
            "trigger_type": "engine::workers-available",
            "function_id": "watch::on",
            "metadata": {"m": 1},
        }
    )
    await watcher.sync()
    other = await Wire.connect(engine.url)
    call = await watcher.serve_one()
    assert call["data"] == {"event": "worker_connected", "worker_id": other.worker_id}
    assert call["metadata"] == {"m": 1}  # internal call path: binding metadata, no caller id
    await other.register(name="o")
    call = await watcher.serve_one()
    assert call["data"] == {"event": "worker_metadata_updated", "worker_id": other.worker_id}
    await other.close()
    call = await watcher.serve_one()
    assert call["data"] == {"event": "worker_disconnected", "worker_id": other.worker_id}


async def test_functions_available_fires(engine: EngineThread) -> None:
    watcher = await Wire.connect(engine.url, name="watch")
    await watcher.send({"type": "registerfunction", "id": "watch::fns"})
    await watcher.send(
        {
            "type": "registertrigger",
            "id": "fa",
            "trigger_type": "engine::functions-available",
            "function_id": "watch::fns",
            "config": {},
        }
    )
    await watcher.sync()
    other = await Wire.connect(engine.url, name="o")
    await other.send({"type": "registerfunction", "id": "o::new", "description": "new one"})
    await other.sync()
    expected = {
        "function_id": "o::new",
        "namespace": "default",
        "worker_name": "o",
        "description": "new one",
    }
    while True:  # the first poll may report only the watcher's own function
        call = await watcher.serve_one()
        assert call["data"]["event"] == "functions_changed"
        assert "_caller_worker_id" not in call["data"]
        if expected in call["data"]["functions"]:
            break
