"""Registration: namespace buffering, conflicts, owner-checked cleanup, reattach (§1.5–§1.10)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from engine_wire import Wire

from iii_asgi.engine import EngineThread


async def test_registrations_wait_for_workers_register(engine: EngineThread) -> None:
    caller = await Wire.connect(engine.url)
    worker = await Wire.connect(engine.url)
    await worker.send({"type": "registerfunction", "id": "ns::f"})
    await worker.sync()
    # pending: the function is not visible yet (§1.5 consequence)
    assert (await caller.call("ns::f", {}, namespace="orders"))["error"]["code"] == (
        "function_not_found"
    )
    await worker.register(name="w", namespace="orders")
    await worker.sync()
    await caller.invoke("ns::f", {}, namespace="orders")
    await worker.serve_one()
    assert "error" not in await caller.recv_type("invocationresult")
    assert (await caller.call("ns::f", {}))["error"]["code"] == "function_not_found"


async def test_grace_period_fixes_namespace_to_default(
    engine_factory: Callable[..., EngineThread],
) -> None:
    engine = engine_factory(registration_grace_ms=200)
    caller = await Wire.connect(engine.url)
    worker = await Wire.connect(engine.url)
    started = time.monotonic()
    await worker.send({"type": "registerfunction", "id": "late::f"})
    await worker.sync()
    assert (await caller.call("late::f", {}))["error"]["code"] == "function_not_found"
    await asyncio.sleep(0.3)
    assert time.monotonic() - started >= 0.2
    await caller.invoke("late::f", {})
    await worker.serve_one()
    assert "error" not in await caller.recv_type("invocationresult")
    # a late engine::workers::register cannot move the namespace
    await worker.register(name="late", namespace="orders")
    await worker.sync()
    await caller.invoke("late::f", {})
    await worker.serve_one()
    assert "error" not in await caller.recv_type("invocationresult")


async def test_function_namespace_conflict(engine: EngineThread) -> None:
    first = await Wire.connect(engine.url, name="a")
    second = await Wire.connect(engine.url, name="b")
    await first.send({"type": "registerfunction", "id": "svc::f"})
    await first.sync()
    await second.send({"type": "registerfunction", "id": "svc::f"})
    frame = await second.recv_type("registrationrejected")
    assert frame == {
        "type": "registrationrejected",
        "code": "FUNCTION_NAMESPACE_CONFLICT",
        "namespace": "default",
        "function_id": "svc::f",
        "owner_worker_id": first.worker_id,
    }
    await second.sync()  # stays connected
    await first.send({"type": "registerfunction", "id": "svc::f"})  # idempotent for the owner
    await first.sync()


async def test_engine_prefix_reserved_outside_default(engine: EngineThread) -> None:
    worker = await Wire.connect(engine.url, name="x", namespace="orders")
    await worker.send({"type": "registerfunction", "id": "engine::mine"})
    frame = await worker.recv_type("registrationrejected")
    assert frame["code"] == "FUNCTION_NAMESPACE_CONFLICT"
    assert frame["owner_worker_id"] == "" and frame["namespace"] == "orders"
    default = await Wire.connect(engine.url, name="y")
    await default.send({"type": "registerfunction", "id": "engine::channels::create"})
    frame = await default.recv_type("registrationrejected")
    assert frame["owner_worker_id"] == ""


async def test_owner_checked_cleanup(engine: EngineThread) -> None:
    """M12: a re-registration by a new connection survives the old one's late teardown."""
    caller = await Wire.connect(engine.url)
    old = await Wire.connect(engine.url, name="old")
    await old.send({"type": "registerfunction", "id": "m12::f"})
    await old.sync()
    core = engine.core
    old_conn = core.registry.workers[old.worker_id]
    new = await Wire.connect(engine.url, name="new")
    # the old connection starts tearing down (not live any more) but has not finished
    engine.call_soon(setattr, old_conn, "alive", False)
    await new.send({"type": "registerfunction", "id": "m12::f"})
    await new.sync()
    old_conn.alive = True  # let the real teardown run its compare-and-delete
    await old.close()
    await new.sync()
    await asyncio.sleep(0.1)
    await caller.invoke("m12::f", {})
    call = await new.serve_one()
    assert call["function_id"] == "m12::f"
    assert "error" not in await caller.recv_type("invocationresult")


async def test_unregisterfunction_only_by_owner(engine: EngineThread) -> None:
    caller = await Wire.connect(engine.url)
    owner = await Wire.connect(engine.url, name="o")
    other = await Wire.connect(engine.url, name="p")
    await owner.send({"type": "registerfunction", "id": "u::f"})
    await owner.sync()
    await other.send({"type": "unregisterfunction", "id": "u::f"})
    await other.sync()
    await caller.invoke("u::f", {})
    await owner.serve_one()
    await caller.recv_type("invocationresult")
    await owner.send({"type": "unregisterfunction", "id": "u::f"})
    await owner.sync()
    assert (await caller.call("u::f", {}))["error"]["code"] == "function_not_found"


async def test_worker_name_conflict_is_fatal(engine: EngineThread) -> None:
    first = await Wire.connect(engine.url, name="dup", namespace="orders")
    await first.sync()
    second = await Wire.connect(engine.url, name="dup", namespace="orders")
    frame = await second.recv_type("registrationrejected")
    assert frame == {
        "type": "registrationrejected",
        "code": "WORKER_NAMESPACE_CONFLICT",
        "namespace": "orders",
        "worker_name": "dup",
        "owner_worker_id": first.worker_id,
    }
    await asyncio.wait_for(second.ws.wait_closed(), 2)
    # another namespace may use the name; after the holder leaves the name is free again
    third = await Wire.connect(engine.url, name="dup")
    await third.sync()
    await first.close()
    await asyncio.sleep(0.1)
    fourth = await Wire.connect(engine.url, name="dup", namespace="orders")
    await fourth.sync()


async def test_reattach_evicts_previous_connection(engine: EngineThread) -> None:
    caller = await Wire.connect(engine.url)
    old = await Wire.connect(engine.url, name="r")
    await old.send({"type": "registerfunction", "id": "r::f"})
    await old.sync()
    inv = await caller.invoke("r::f", {})
    await old.recv_type("invokefunction")
    new = await Wire.connect(engine.url)
    await new.send(
        {"type": "reattach", "previous_worker_id": old.worker_id, "reattach_token": old.token}
    )
    await new.send({"type": "registerfunction", "id": "r::f"})
    await new.register(name="r")
    await new.sync()
    await asyncio.wait_for(old.ws.wait_closed(), 2)
    stopped = await caller.recv_type("invocationresult")
    assert stopped["invocation_id"] == inv
    assert stopped["error"]["code"] == "invocation_stopped"
    assert new.worker_id != old.worker_id
    await caller.invoke("r::f", {})
    await new.serve_one()
    assert "error" not in await caller.recv_type("invocationresult")


async def test_reattach_with_wrong_token_is_ignored(engine: EngineThread) -> None:
    old = await Wire.connect(engine.url, name="keep")
    new = await Wire.connect(engine.url)
    await new.send(
        {"type": "reattach", "previous_worker_id": old.worker_id, "reattach_token": "wrong"}
    )
    await new.send({"type": "reattach", "previous_worker_id": "not-a-uuid"})
    await new.sync()
    await old.sync()


async def test_registerservice_is_stored(engine: EngineThread) -> None:
    worker = await Wire.connect(engine.url, name="s")
    await worker.send({"type": "registerservice", "id": "svc", "description": "d"})
    await worker.sync()
    assert engine.core.registry.services[("default", "svc")]["name"] == "svc"
