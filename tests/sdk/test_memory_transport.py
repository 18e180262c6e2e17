"""The in-process transport (``iii._memory_transport``): how it is chosen, and the protocol
through it: copies (never shared dicts), errors, disconnect cleanup, back-pressure."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any

import httpx
import pytest

import iii
from iii import IIIInvocationError, InitOptions
from iii import _memory_transport as memory
from iii_asgi.engine import Engine, EngineConfig, EngineThread
from iii_asgi.engine.core.memory import MemoryWorkerConnection
from tests.conftest import FAST
from tests.helpers import acall_until_found, connected, poll, wait_until


def kinds(engine: Engine | EngineThread) -> list[str]:
    """The transport of each worker connection the engine holds."""
    core = engine.core
    assert core is not None
    return sorted(
        "memory" if isinstance(c, MemoryWorkerConnection) else "websocket" for c in core.connections
    )


# -- selection --------------------------------------------------------------------------------


async def test_a_client_on_the_engines_loop_connects_in_memory(local_engine: Engine) -> None:
    worker = await connected(local_engine.url, worker_name="same-loop")
    try:
        worker.register_function("m::add", lambda d: d["a"] + d["b"])
        result = await acall_until_found(
            worker, {"function_id": "m::add", "payload": {"a": 1, "b": 2}}
        )
        assert result == 3
        assert kinds(local_engine) == ["memory"]
        (info,) = [w for w in await worker.list_workers() if w.name == "same-loop"]
        assert info.ip_address is None  # no socket, no peer address
    finally:
        await worker.shutdown_async()
    await wait_until(lambda: not kinds(local_engine))


async def test_websocket_when_asked(local_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    by_option = await connected(local_engine.url, transport="websocket")
    monkeypatch.setenv("III_TRANSPORT", "websocket")
    by_env = await connected(local_engine.url)
    monkeypatch.setenv("III_TRANSPORT", "memory")
    option_wins = await connected(local_engine.url, transport="auto")
    try:
        assert kinds(local_engine) == ["memory", "websocket", "websocket"]
    finally:
        for worker in (by_option, by_env, option_wins):
            await worker.shutdown_async()


def test_unknown_transport_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown transport 'pigeon'"):
        iii.III("ws://127.0.0.1:1", InitOptions(transport="pigeon"))


async def test_another_loop_uses_the_socket_unless_memory(
    engine: EngineThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("III_TRANSPORT", raising=False)
    auto = await connected(engine.url)
    across = await connected(engine.url, transport="memory")
    try:
        await wait_until(lambda: len(kinds(engine)) == 2)
        assert kinds(engine) == ["memory", "websocket"]
        assert await across.trigger_async({"function_id": "engine::workers::list"})
    finally:
        await auto.shutdown_async()
        await across.shutdown_async()


async def test_an_engine_url_is_offered_once() -> None:
    loop = asyncio.get_running_loop()
    withdraw = memory.serve("ws://127.0.0.1:9/", loop, lambda link: None, 8)
    try:
        with pytest.raises(RuntimeError, match="already serves"):
            memory.serve("WS://127.0.0.1:9", loop, lambda link: None, 8)
    finally:
        withdraw()
    assert memory.connect("ws://127.0.0.1:9", {}, "memory") is None


# -- copies -----------------------------------------------------------------------------------


async def test_no_side_sees_the_others_dicts(local_engine: Engine) -> None:
    caller = await connected(local_engine.url, worker_name="caller")
    executor = await connected(local_engine.url, worker_name="executor")
    kept: dict[str, Any] = {"items": [1, 2]}
    seen: list[Any] = []

    async def handler(data: dict[str, Any]) -> dict[str, Any]:
        seen.append(data)
        data["items"].append("handler")  # its own copy
        return kept

    try:
        executor.register_function("m::keep", handler)
        payload = {"items": [1], "nested": {"k": "v"}}
        result = await acall_until_found(caller, {"function_id": "m::keep", "payload": payload})
        # the engine's _caller_worker_id went into the executor's copy, not the caller's dict
        assert payload == {"items": [1], "nested": {"k": "v"}}
        assert seen[0]["_caller_worker_id"] == caller.worker_id
        result["items"].append("caller")
        kept["items"].append("later")
        assert result == {"items": [1, 2, "caller"]}
        assert kept == {"items": [1, 2, "later"]}

        # the engine's own stored values are not handed out either
        value = {"visits": [1]}
        await caller.trigger_async(
            {"function_id": "state::set", "payload": {"scope": "s", "key": "k", "value": value}}
        )
        value["visits"].append(2)
        got = await caller.trigger_async(
            {"function_id": "state::get", "payload": {"scope": "s", "key": "k"}}
        )
        got["visits"].append(3)
        again = await caller.trigger_async(
            {"function_id": "state::get", "payload": {"scope": "s", "key": "k"}}
        )
        assert again == {"visits": [1]}
    finally:
        await caller.shutdown_async()
        await executor.shutdown_async()


async def test_each_subscriber_opens_its_own_channel_ends(local_engine: Engine) -> None:
    """Channel refs in a payload become live readers in the receiver's copy
    (``resolve_channel_refs`` replaces them in place); a fan-out must not share that dict."""
    worker = await connected(local_engine.url)
    got: list[Any] = []

    async def on_event(data: dict[str, Any]) -> None:
        got.append(data["reader"])

    try:
        for name in ("a", "b"):
            worker.register_function(f"m::on_{name}", on_event)
            worker.register_trigger(
                {"type": "subscribe", "function_id": f"m::on_{name}", "config": {"topic": "t"}}
            )
        channel = await worker.create_channel()
        await asyncio.sleep(0.2)
        ref = channel.reader_ref.model_dump()
        await worker.trigger_async(
            {"function_id": "publish", "payload": {"topic": "t", "data": {"reader": ref}}}
        )
        await wait_until(lambda: len(got) == 2)
        assert all(isinstance(r, iii.ChannelReader) for r in got)
        assert got[0] is not got[1]
    finally:
        await worker.shutdown_async()


# -- errors -----------------------------------------------------------------------------------


async def test_errors_are_the_sockets(local_engine: Engine) -> None:
    worker = await connected(local_engine.url)

    def boom(data: Any) -> None:
        raise ValueError("no")

    async def not_json(data: Any) -> Any:
        return object()

    try:
        worker.register_function("m::boom", boom)
        worker.register_function("m::not_json", not_json)
        with pytest.raises(IIIInvocationError) as failed:
            await acall_until_found(worker, {"function_id": "m::boom"})
        assert failed.value.code == "invocation_failed"
        assert failed.value.message == "no"
        with pytest.raises(IIIInvocationError) as bad_result:
            await acall_until_found(worker, {"function_id": "m::not_json"})
        assert "result is not JSON" in bad_result.value.message
        with pytest.raises(IIIInvocationError) as missing:
            await worker.trigger_async({"function_id": "m::missing"})
        assert missing.value.code == "function_not_found"
        with pytest.raises(TypeError, match="not JSON-serialisable"):
            await worker.trigger_async({"function_id": "m::boom", "payload": object()})
        with pytest.raises(iii.IIITimeoutError):
            worker.register_function("m::slow", lambda d: threading.Event().wait(1))
            await acall_until_found(worker, {"function_id": "m::slow", "timeout_ms": 100})
    finally:
        await worker.shutdown_async()


async def test_a_malformed_frame_is_answered_like_on_a_socket(local_engine: Engine) -> None:
    link = memory.connect(local_engine.url, {}, "auto")
    assert link is not None
    try:
        registered = await anext(link)
        assert registered["type"] == "workerregistered"
        await link.send({"type": "invokefunction", "function_id": 7, "invocation_id": "i1"})
        answer = await anext(link)
        assert answer["type"] == "invocationresult"
        assert answer["invocation_id"] == "i1"
        assert answer["error"]["code"] == "deserialization_error"
    finally:
        await link.close()


# -- disconnect and back-pressure ---------------------------------------------------------------


async def test_disconnect_cleans_up_like_a_socket(local_engine: Engine) -> None:
    caller = await connected(local_engine.url)
    executor = await connected(local_engine.url, worker_name="leaving")
    started = asyncio.Event()

    async def hang(data: Any) -> None:
        started.set()
        await asyncio.sleep(30)

    try:
        executor.register_function("m::hang", hang)
        executor.register_trigger(
            {"type": "subscribe", "function_id": "m::hang", "config": {"topic": "x"}}
        )
        call = asyncio.ensure_future(acall_until_found(caller, {"function_id": "m::hang"}))
        await asyncio.wait_for(started.wait(), 5)
        await executor.shutdown_async()
        with pytest.raises(IIIInvocationError) as stopped:
            await asyncio.wait_for(call, 5)
        assert stopped.value.code == "invocation_stopped"
        core = local_engine.core
        assert core is not None
        await wait_until(lambda: len(core.connections) == 1)
        assert ("default", "m::hang") not in core.registry.functions
        assert not any(t.function_id == "m::hang" for t in core.registry.triggers.values())
        names = [w.name for w in await caller.list_workers()]
        assert "leaving" not in names
    finally:
        await caller.shutdown_async()


async def test_engine_stop_ends_the_link_and_the_client_reconnects(local_engine: Engine) -> None:
    worker = iii.III(
        local_engine.url,
        InitOptions(
            reconnection_config=iii.ReconnectionConfig(initial_delay_ms=50, max_delay_ms=100)
        ),
    )
    await worker.connect()
    states: list[str] = []
    worker.on_connection_state_change(states.append)
    try:
        await local_engine.stop()
        await wait_until(lambda: "reconnecting" in states)
    finally:
        await worker.shutdown_async()


async def test_the_engine_never_holds_more_than_the_pipe_for_a_slow_worker() -> None:
    """A worker that does not take its frames: ``outbound_queue_size`` invocations wait in its
    pipe, further ones are refused at once with WORKER_BACKPRESSURE (as on a socket, never a
    wait in the engine); once it reads, the queued ones are answered in order."""
    engine = Engine(EngineConfig(host="127.0.0.1", port=0, outbound_queue_size=4, **FAST))
    await engine.start()
    caller = await connected(engine.url)
    link = memory.connect(engine.url, {}, "auto")
    assert link is not None
    try:
        assert (await anext(link))["type"] == "workerregistered"
        await link.send({"type": "registerfunction", "id": "m::slow"})
        pipe = link.link.to_worker
        calls = [
            asyncio.ensure_future(
                acall_until_found(caller, {"function_id": "m::slow", "payload": i})
            )
            for i in range(4)
        ]
        while len(pipe) < 4:  # registration grace, then the calls pile up in the pipe
            await asyncio.sleep(0.02)
        with pytest.raises(IIIInvocationError) as refused:
            await caller.trigger_async({"function_id": "m::slow", "payload": 99})
        assert refused.value.code == "WORKER_BACKPRESSURE"
        assert "4 frames already queued" in str(refused.value)
        assert len(pipe) == 4 and not any(c.done() for c in calls)
        answered = 0
        while answered < 4:  # read now: the queued calls flow, in order
            frame = await anext(link)
            if frame["type"] == "invokefunction":
                await link.send(
                    {
                        "type": "invocationresult",
                        "invocation_id": frame["invocation_id"],
                        "result": frame["data"],
                    }
                )
                answered += 1
        assert await asyncio.gather(*calls) == list(range(4))
    finally:
        await link.close()
        await caller.shutdown_async()
        await engine.stop()


async def test_a_result_sent_while_the_engine_hands_over_the_call_is_not_lost() -> None:
    """An in-memory worker may answer inside the engine's hand-over of the call (our SDK's
    immediate WORKER_BACKPRESSURE does): the engine records the call before handing it over,
    so that answer reaches the HTTP client instead of being dropped as an unknown id."""
    config = EngineConfig(host="127.0.0.1", port=0, **{**FAST, "http_port": 0})
    engine = Engine(config)
    await engine.start()
    link = memory.connect(engine.url, {}, "auto")
    assert link is not None
    reader: asyncio.Future[Any] | None = None
    try:
        assert (await anext(link))["type"] == "workerregistered"
        await link.send({"type": "registerfunction", "id": "m::busy"})
        await link.send(
            {
                "type": "registertrigger",
                "id": "t-busy",
                "trigger_type": "http",
                "function_id": "m::busy",
                "config": {"api_path": "/busy", "http_method": "GET"},
            }
        )
        await link.send(  # ends the registration buffering at once (protocol.md §1.5)
            {
                "type": "invokefunction",
                "function_id": "engine::workers::register",
                "data": {"name": "busy", "pid": 1, "runtime": "python"},
                "action": {"type": "void"},
            }
        )
        await link.send({"type": "ping"})
        while (await anext(link))["type"] != "pong":
            pass
        to_worker, to_engine = link.link.to_worker, link.link.to_engine
        answered: list[str] = []

        def answer_at_once(frame: dict[str, Any]) -> bool:
            if frame.get("type") != "invokefunction":
                return False
            answered.append(frame["invocation_id"])
            body = {"code": "WORKER_BACKPRESSURE", "message": "busy right now"}
            result = {
                "type": "invocationresult",
                "invocation_id": frame["invocation_id"],
                "function_id": frame["function_id"],
                "error": body,
            }
            assert to_engine.put_nowait(result)
            return True

        to_worker.inline = answer_at_once
        reader = asyncio.ensure_future(to_worker.get())  # the worker waits: inline applies
        await asyncio.sleep(0)
        async with httpx.AsyncClient(base_url=engine.http_url, timeout=10) as http:
            response = await http.get("/busy")
        assert len(answered) == 1
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "WORKER_BACKPRESSURE"
        assert engine.core.invoker.pending == {}
    finally:
        if reader is not None:
            reader.cancel()
        await link.close()
        await engine.stop()


async def test_a_worker_that_never_takes_its_frames_is_dropped() -> None:
    """Frames that are not invocations (results, stops) are never refused: past twice
    ``outbound_queue_size`` waiting, the engine drops the worker (as a socket's slow consumer,
    Close 1008) instead of holding more."""
    engine = Engine(EngineConfig(host="127.0.0.1", port=0, outbound_queue_size=2, **FAST))
    await engine.start()
    link = memory.connect(engine.url, {}, "auto")
    assert link is not None
    try:
        assert (await anext(link))["type"] == "workerregistered"
        for _ in range(8):  # each ping's pong goes to a pipe nobody reads
            await link.send({"type": "ping"})
        workers = engine.core.registry.workers
        await wait_until(lambda: link.link.to_worker.closed)
        await wait_until(
            lambda: not any(isinstance(w, MemoryWorkerConnection) for w in workers.values())
        )
    finally:
        await link.close()
        await engine.stop()


# -- the pipe ---------------------------------------------------------------------------------


async def test_pipe_bounds_order_and_close() -> None:
    pipe = memory.Pipe(2)
    assert await pipe.put({"n": 1}) and await pipe.put({"n": 2})
    third = asyncio.ensure_future(pipe.put({"n": 3}))
    await asyncio.sleep(0.01)
    assert not third.done() and len(pipe) == 2
    assert await pipe.get() == {"n": 1}
    assert await third
    pipe.close_after()
    assert not await pipe.put({"n": 4})  # refused once closing
    assert [await pipe.get(), await pipe.get(), await pipe.get()] == [{"n": 2}, {"n": 3}, None]

    dropped = memory.Pipe(1)
    await dropped.put({"n": 1})
    waiting = asyncio.ensure_future(dropped.put({"n": 2}))
    await asyncio.sleep(0.01)
    dropped.close()
    assert await waiting is False
    assert await dropped.get() is None


async def test_pipe_across_threads() -> None:
    pipe = memory.Pipe(3)
    count = 500

    async def produce() -> None:
        for n in range(count):
            await pipe.put({"n": n})
        pipe.close_after()

    thread = threading.Thread(target=lambda: asyncio.run(produce()))
    thread.start()
    received = []
    while (frame := await pipe.get()) is not None:
        received.append(frame["n"])
        assert len(pipe) <= 3
    thread.join()
    assert received == list(range(count))


PROBE: contextvars.ContextVar[str] = contextvars.ContextVar("probe", default="unset")


async def test_a_handler_never_runs_in_the_engines_context(local_engine: Engine) -> None:
    """Frames handed over inline run the worker's code in its read loop's context, as a socket
    does, never in the context of the engine code that sent them."""
    worker = await connected(local_engine.url)
    seen: list[str] = []

    async def probe(data: Any) -> None:
        seen.append(PROBE.get())

    try:
        worker.register_function("m::probe", probe)
        await acall_until_found(worker, {"function_id": "m::probe"})
        PROBE.set("engine side")
        core = local_engine.core
        assert core is not None
        await core.invoker.call("m::probe", None)
        assert seen == ["unset", "unset"]
    finally:
        await worker.shutdown_async()


async def test_the_http_payload_is_handed_over_but_the_route_metadata_is_copied() -> None:
    """The HTTP trigger's request payload is built for the call alone and goes to an in-memory
    worker without a copy (``Invocation.owned``); the route's metadata, shared by every
    request, is still copied: a handler that changes what it got changes nothing later."""
    config = EngineConfig(host="127.0.0.1", port=0, **{**FAST, "http_port": 0})
    engine = Engine(config)
    await engine.start()
    worker = await connected(engine.url)
    seen: list[Any] = []

    async def handler(data: dict[str, Any]) -> dict[str, Any]:
        invocation = iii.current_invocation()
        assert invocation is not None
        seen.append((list(invocation.metadata["tags"]), dict(data["headers"])))
        invocation.metadata["tags"].append("changed")
        data["headers"]["x-test"] = "changed"
        return {"status_code": 200, "headers": ["content-type: text/plain"], "body": "ok"}

    try:
        assert kinds(engine) == ["memory"]
        worker.register_function("m::meta", handler)
        worker.register_trigger(
            {
                "type": "http",
                "function_id": "m::meta",
                "config": {"api_path": "/meta", "http_method": "GET"},
                "metadata": {"tags": ["route"]},
            }
        )
        async with httpx.AsyncClient(base_url=engine.http_url, timeout=10) as http:
            await poll(lambda: http.get("/meta"), lambda r: r.status_code == 200)
            second = await http.get("/meta", headers={"x-test": "sent"})
        assert second.text == "ok"
        assert all(tags == ["route"] for tags, _ in seen)
        assert seen[-1][1]["x-test"] == "sent"
    finally:
        await worker.shutdown_async()
        await engine.stop()
