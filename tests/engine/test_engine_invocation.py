"""Invocation routing (protocol.md §3): sync, void, enqueue, not found, stopped calls."""

from __future__ import annotations

from engine_wire import Wire

from iii_asgi.engine import EngineThread


async def pair(engine: EngineThread, function_id: str = "w::echo") -> tuple[Wire, Wire]:
    caller = await Wire.connect(engine.url, name="caller")
    worker = await Wire.connect(engine.url, name="worker")
    await worker.send({"type": "registerfunction", "id": function_id})
    await worker.sync()
    return caller, worker


async def test_sync_call_reuses_id_and_injects_caller(engine: EngineThread) -> None:
    caller, worker = await pair(engine)
    inv = await caller.invoke(
        "w::echo", {"a": 1}, metadata={"m": 2}, traceparent="00-x-y-01", baggage="k=v"
    )
    call = await worker.recv_type("invokefunction")
    assert call == {
        "type": "invokefunction",
        "invocation_id": inv,
        "function_id": "w::echo",
        "data": {"a": 1, "_caller_worker_id": caller.worker_id},
        "traceparent": "00-x-y-01",
        "baggage": "k=v,iii.function.id=w::echo",  # §3.6: names the target function
        "metadata": {"m": 2},
    }
    await worker.send(
        {
            "type": "invocationresult",
            "invocation_id": inv,
            "function_id": "w::echo",
            "result": {"ok": True},
        }
    )
    result = await caller.recv_type("invocationresult")
    assert result["invocation_id"] == inv and result["result"] == {"ok": True}


async def test_non_object_payload_is_not_touched(engine: EngineThread) -> None:
    caller, worker = await pair(engine)
    await caller.invoke("w::echo", [1, 2])
    assert (await worker.serve_one())["data"] == [1, 2]
    assert (await caller.recv_type("invocationresult"))["result"] == [1, 2]


async def test_error_result_is_relayed(engine: EngineThread) -> None:
    caller, worker = await pair(engine)
    inv = await caller.invoke("w::echo", {})
    call = await worker.recv_type("invokefunction")
    error = {"code": "invocation_failed", "message": "kaboom", "stacktrace": "Traceback"}
    await worker.send(
        {
            "type": "invocationresult",
            "invocation_id": call["invocation_id"],
            "function_id": "w::echo",
            "error": error,
        }
    )
    result = await caller.recv_type("invocationresult")
    assert result["invocation_id"] == inv and result["error"] == error


async def test_void_is_forwarded_with_fresh_id_and_result_swallowed(engine: EngineThread) -> None:
    caller, worker = await pair(engine)
    await caller.send(
        {
            "type": "invokefunction",
            "function_id": "w::echo",
            "data": {"v": 1},
            "action": {"type": "void"},
            "invocation_id": "ignored",
        }
    )
    call = await worker.serve_one()
    assert call["data"]["v"] == 1 and call["invocation_id"] != "ignored"
    await caller.silent(0.3)


async def test_function_not_found_names_other_namespaces(engine: EngineThread) -> None:
    caller = await Wire.connect(engine.url)
    worker = await Wire.connect(engine.url, name="o", namespace="orders")
    await worker.send({"type": "registerfunction", "id": "orders::make"})
    await worker.sync()
    frame = await caller.call("nope::fn", {})
    assert frame["error"] == {
        "code": "function_not_found",
        "message": "Function nope::fn not found in namespace default.",
    }
    frame = await caller.call("orders::make", {})
    assert frame["error"]["message"] == (
        "Function orders::make not found in namespace default. "
        "It is registered in namespace(s): orders."
    )
    await caller.invoke("orders::make", {"x": 1}, namespace="orders")
    await worker.serve_one()
    assert "error" not in await caller.recv_type("invocationresult")


async def test_enqueue_to_unknown_queue_answers_enqueue_error(engine: EngineThread) -> None:
    caller, worker = await pair(engine)
    frame = await caller.call("w::echo", {}, action={"type": "enqueue", "queue": "jobs"})
    assert frame["error"] == {
        "code": "enqueue_error",
        "message": "queue_not_found: Queue 'jobs' not found",
    }
    await worker.silent(0.2)


async def test_executor_disconnect_stops_invocation(engine: EngineThread) -> None:
    caller, worker = await pair(engine)
    inv = await caller.invoke("w::echo", {})
    await worker.recv_type("invokefunction")
    await worker.close()
    frame = await caller.recv_type("invocationresult")
    assert frame["invocation_id"] == inv
    assert frame["error"] == {"code": "invocation_stopped", "message": "Invocation stopped"}
    assert (await caller.call("w::echo", {}))["error"]["code"] == "function_not_found"


async def test_caller_disconnect_drops_late_result(engine: EngineThread) -> None:
    caller, worker = await pair(engine)
    inv = await caller.invoke("w::echo", {})
    await worker.recv_type("invokefunction")
    await caller.close()
    await worker.sync()
    await worker.send(
        {"type": "invocationresult", "invocation_id": inv, "function_id": "w::echo", "result": 1}
    )
    await worker.sync()
    assert engine.core.invoker.pending == {}


async def test_worker_may_call_itself(engine: EngineThread) -> None:
    worker = await Wire.connect(engine.url, name="self")
    await worker.send({"type": "registerfunction", "id": "self::f"})
    inv = await worker.invoke("self::f", {"n": 1})
    call = await worker.recv_type("invokefunction")
    assert call["invocation_id"] == inv
    assert call["data"]["_caller_worker_id"] == worker.worker_id
    await worker.send(
        {"type": "invocationresult", "invocation_id": inv, "function_id": "self::f", "result": 2}
    )
    assert (await worker.recv_type("invocationresult"))["result"] == 2


async def test_blank_namespace_is_invalid(engine: EngineThread) -> None:
    caller = await Wire.connect(engine.url)
    frame = await caller.call("x::y", {}, namespace="  ")
    assert frame["error"]["code"] == "INVALID_NAMESPACE"


async def test_unknown_result_is_ignored(engine: EngineThread) -> None:
    wire = await Wire.connect(engine.url)
    await wire.send(
        {"type": "invocationresult", "invocation_id": "nobody", "function_id": "x", "result": 1}
    )
    await wire.sync()
