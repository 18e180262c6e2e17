"""Our SDK against our embedded engine, over real sockets (issue: the wire)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from pydantic import BaseModel

import iii
from iii import (
    IIIInvocationError,
    IIITimeoutError,
    InitOptions,
    TriggerAction,
    get_context,
    register_worker,
)
from tests.helpers import CallInThread, call_until_found, wait_for

#: Every test here runs over the WebSocket and over the in-process transport.
pytestmark = pytest.mark.usefixtures("transport")


@pytest.fixture
def worker(engine: Any) -> Any:
    client = register_worker(engine.url, InitOptions(worker_name="test-worker"))
    yield client
    client.shutdown()


@pytest.fixture
def caller(engine: Any) -> Any:
    client = register_worker(engine.url, InitOptions(worker_name="test-caller"))
    yield client
    client.shutdown()


def test_connects_and_gets_worker_id(worker: iii.III) -> None:
    assert worker.get_connection_state() == "connected"
    wait_for(lambda: worker.worker_id is not None)
    assert len(worker.worker_id or "") == 36


def test_sync_and_async_handlers_round_trip(worker: iii.III, caller: iii.III) -> None:
    worker.register_function("math::add", lambda d: d["a"] + d["b"])

    async def greet(data: dict[str, str]) -> dict[str, str]:
        return {"hello": data["name"]}

    worker.register_function("hello::greet", greet)
    assert call_until_found(caller, {"function_id": "math::add", "payload": {"a": 2, "b": 3}}) == 5
    assert call_until_found(caller, {"function_id": "hello::greet", "payload": {"name": "x"}}) == {
        "hello": "x"
    }


def test_none_payload_and_none_result(worker: iii.III, caller: iii.III) -> None:
    seen: list[Any] = []
    worker.register_function("echo::none", lambda d: seen.append(d))
    assert call_until_found(caller, {"function_id": "echo::none"}) is None
    assert seen == [None]


def test_metadata_parameter(worker: iii.III, caller: iii.III) -> None:
    async def with_meta(data: Any, metadata: Any) -> Any:
        return {"data": data, "metadata": metadata}

    def keyword_only(data: Any, *, metadata: Any = None) -> Any:
        return metadata

    worker.register_function("meta::pos", with_meta)
    worker.register_function("meta::kw", keyword_only)
    result = call_until_found(
        caller, {"function_id": "meta::pos", "payload": {"a": 1}, "metadata": {"m": 2}}
    )
    assert result["metadata"] == {"m": 2}
    assert result["data"]["a"] == 1
    assert (
        call_until_found(caller, {"function_id": "meta::kw", "payload": 1, "metadata": "side"})
        == "side"
    )


class Order(BaseModel):
    item: str
    quantity: int


def test_pydantic_model_parameter_is_validated(worker: iii.III, caller: iii.III) -> None:
    async def place(order: Order) -> dict[str, Any]:
        assert isinstance(order, Order)
        return {"item": order.item, "n": order.quantity}

    worker.register_function("orders::place", place)
    ok = call_until_found(
        caller, {"function_id": "orders::place", "payload": {"item": "a", "quantity": 2}}
    )
    assert ok == {"item": "a", "n": 2}
    with pytest.raises(IIIInvocationError) as info:
        caller.trigger({"function_id": "orders::place", "payload": {"item": "a"}})
    assert info.value.code == "invocation_failed"
    assert "quantity" in info.value.message


def test_handler_exception_becomes_invocation_failed(worker: iii.III, caller: iii.III) -> None:
    def boom(data: Any) -> None:
        raise ValueError("kaboom")

    worker.register_function("demo::boom", boom)
    with pytest.raises(IIIInvocationError) as info:
        call_until_found(caller, {"function_id": "demo::boom", "payload": {}})
    err = info.value
    assert (err.code, err.message, err.function_id) == ("invocation_failed", "kaboom", "demo::boom")
    assert err.stacktrace is not None and "ValueError: kaboom" in err.stacktrace
    assert str(err) == "invocation_failed: kaboom"
    assert iii.InvocationError is IIIInvocationError


def test_function_not_found(caller: iii.III) -> None:
    with pytest.raises(IIIInvocationError) as info:
        caller.trigger({"function_id": "nope::missing", "payload": {}})
    assert info.value.code == "function_not_found"
    assert "nope::missing" in info.value.message


def test_void_runs_the_handler_and_returns_none(worker: iii.III, caller: iii.III) -> None:
    done = threading.Event()
    worker.register_function("void::target", lambda d: done.set())
    call_until_found(caller, {"function_id": "void::target", "payload": {}})
    done.clear()
    assert (
        caller.trigger(
            {"function_id": "void::target", "payload": {}, "action": TriggerAction.Void()}
        )
        is None
    )
    assert done.wait(5)


def test_enqueue_to_unknown_queue_is_a_clear_error(worker: iii.III, caller: iii.III) -> None:
    worker.register_function("jobs::run", lambda d: d)
    call_until_found(caller, {"function_id": "jobs::run", "payload": 1})
    with pytest.raises(IIIInvocationError) as info:
        caller.trigger(
            {"function_id": "jobs::run", "payload": 1, "action": TriggerAction.Enqueue(queue="q")}
        )
    assert info.value.code == "enqueue_error"
    assert "Queue 'q' not found" in info.value.message


def test_timeout_raises_timeout_error(worker: iii.III, caller: iii.III) -> None:
    release = threading.Event()
    worker.register_function("slow::wait", lambda d: release.wait(5))
    worker.register_function("slow::ping", lambda d: "pong")
    call_until_found(caller, {"function_id": "slow::ping"})
    started = time.monotonic()
    with pytest.raises(IIITimeoutError) as info:
        caller.trigger({"function_id": "slow::wait", "payload": {}, "timeout_ms": 200})
    release.set()
    assert info.value.code == "TIMEOUT"
    assert info.value.message == "invocation timed out after 200ms"
    assert time.monotonic() - started < 3


def test_sync_triggers_from_many_threads_at_once(worker: iii.III, caller: iii.III) -> None:
    """Blocking ``trigger()`` calls posted by many threads at once share the loop's wake-ups
    (``Invoker._post_from_thread``): every one is sent, answered and matched to its thread;
    void calls from the same threads go out too."""
    worker.register_function("math::double", lambda d: d["n"] * 2)
    seen: list[int] = []
    worker.register_function("math::note", lambda d: seen.append(d["n"]))
    call_until_found(caller, {"function_id": "math::double", "payload": {"n": 0}})
    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def run(thread: int) -> None:
        try:
            mine = results.setdefault(thread, [])
            for i in range(25):
                n = thread * 1000 + i
                mine.append(caller.trigger({"function_id": "math::double", "payload": {"n": n}}))
            caller.trigger(
                {
                    "function_id": "math::note",
                    "payload": {"n": thread},
                    "action": TriggerAction.Void(),
                }
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors[:3]
    assert results == {t: [2 * (t * 1000 + i) for i in range(25)] for t in range(24)}
    wait_for(lambda: len(seen) == 24)
    assert sorted(seen) == list(range(24))


def test_sync_trigger_on_the_loop_thread_raises(worker: iii.III, caller: iii.III) -> None:
    async def bad(data: Any) -> str:
        try:
            worker.trigger({"function_id": "math::x", "payload": {}})
        except RuntimeError as exc:
            return str(exc)
        return "no error"

    worker.register_function("loop::bad", bad)
    message = call_until_found(caller, {"function_id": "loop::bad"})
    assert "event loop thread" in message and "trigger_async" in message


def test_sync_handlers_run_in_a_bounded_pool(engine: Any, caller: iii.III) -> None:
    client = register_worker(engine.url, InitOptions(max_handler_threads=3))
    try:
        lock = threading.Lock()
        active = [0, 0]  # current, peak
        names: set[str] = set()

        def work(data: Any) -> None:
            with lock:
                active[0] += 1
                active[1] = max(active[1], active[0])
                names.add(threading.current_thread().name)
            time.sleep(0.05)
            with lock:
                active[0] -= 1

        client.register_function("pool::work", work)
        call_until_found(caller, {"function_id": "pool::work"})

        async def many() -> None:
            await asyncio.gather(
                *(caller.trigger_async({"function_id": "pool::work"}) for _ in range(12))
            )

        asyncio.run(many())
        assert active[1] == 3
        assert len(names) == 3 and all(n.startswith("iii-handler") for n in names)
    finally:
        client.shutdown()


def test_unregister_function(worker: iii.III, caller: iii.III) -> None:
    ref = worker.register_function("tmp::fn", lambda d: 1)
    assert call_until_found(caller, {"function_id": "tmp::fn"}) == 1
    ref.unregister()
    deadline = time.monotonic() + 5
    while True:
        try:
            caller.trigger({"function_id": "tmp::fn"})
        except IIIInvocationError as exc:
            assert exc.code == "function_not_found"
            break
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_register_function_argument_errors(worker: iii.III) -> None:
    with pytest.raises(TypeError):
        worker.register_function(123, lambda d: d)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        worker.register_function("  ", lambda d: d)
    worker.register_function("dup::fn", lambda d: d)
    with pytest.raises(ValueError):
        worker.register_function("dup::fn", lambda d: d)


def test_get_context_inside_handler(worker: iii.III, caller: iii.III) -> None:
    async def ctx_fn(data: Any) -> dict[str, Any]:
        ctx = get_context()
        ctx.logger.info("inside", {"x": 1})
        assert ctx.invocation is not None
        return {"fid": ctx.invocation.function_id, "iid": ctx.invocation.invocation_id}

    def sync_ctx(data: Any) -> str | None:
        invocation = iii.current_invocation()
        return invocation.function_id if invocation else None

    worker.register_function("ctx::fn", ctx_fn)
    worker.register_function("ctx::sync", sync_ctx)
    result = call_until_found(caller, {"function_id": "ctx::fn"})
    assert result["fid"] == "ctx::fn" and len(result["iid"]) == 36
    assert call_until_found(caller, {"function_id": "ctx::sync"}) == "ctx::sync"
    assert get_context().invocation is None


async def test_with_context() -> None:
    ctx = iii.Context(logger=iii.Logger(service_name="svc"))

    async def body(c: iii.Context) -> bool:
        return get_context() is c

    assert await iii.with_context(body, ctx)


def test_connection_state_listener(engine: Any) -> None:
    states: list[str] = []
    client = iii.III(engine.url)
    unsubscribe = client.on_connection_state_change(states.append)
    assert states == ["disconnected"]

    async def run() -> None:
        await client.connect()
        await client.shutdown_async()

    asyncio.run(run())
    assert states == ["disconnected", "connecting", "connected", "disconnected"]
    unsubscribe()
    unsubscribe()  # idempotent


def test_shutdown_leaves_no_threads_and_fails_pending(engine: Any) -> None:
    before = {t.name for t in threading.enumerate()}
    client = register_worker(engine.url)
    release = threading.Event()
    client.register_function("hang::fn", lambda d: release.wait(10))
    call = CallInThread(client, {"function_id": "hang::fn"})
    time.sleep(0.3)
    client.shutdown()
    release.set()
    error = call.outcome(5)
    assert isinstance(error, IIIInvocationError)
    assert error.code == "SHUTDOWN"
    wait_for(lambda: not ({t.name for t in threading.enumerate()} - before))
    assert client.get_connection_state() == "disconnected"


def test_unserialisable_result_is_an_error_not_a_hang(worker: iii.III, caller: iii.III) -> None:
    worker.register_function("bad::result", lambda d: object())
    with pytest.raises(IIIInvocationError) as info:
        call_until_found(caller, {"function_id": "bad::result"})
    assert info.value.code == "invocation_failed"
    assert "not JSON" in info.value.message


def test_sync_trigger_sends_the_calling_threads_trace_context(
    worker: iii.III, caller: iii.III
) -> None:
    """The blocking trigger() builds its frame on the calling thread, so the span active there
    is the call's parent (protocol.md §3.6), as with trigger_async()."""
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    seen: list[str | None] = []

    def handler(data: Any) -> None:
        context = iii.current_invocation()
        seen.append(context.traceparent if context else None)

    worker.register_function("trace::probe", handler)
    call_until_found(caller, {"function_id": "trace::probe"})
    parent = SpanContext(trace_id=0xABC, span_id=0xDEF, is_remote=False, trace_flags=TraceFlags(1))
    with trace.use_span(NonRecordingSpan(parent)):
        caller.trigger({"function_id": "trace::probe"})
    assert seen[0] is None
    assert seen[1] is not None and f"{0xABC:032x}" in seen[1]
