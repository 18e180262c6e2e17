"""Buffer limits (issue 13, docs/engine.md "Limits"): channel bytes and ownership, queue
depth, a worker that never reads its answers, and the config-file keys of the limits.

The engine runs in this process (``engine_factory``) so its accounting can be read; the
well-behaved worker (``steady``) is a separate process calling its own function throughout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import httpx
import pytest
import websockets
from engine_wire import Wire
from socket_limits_support import peer
from test_socket_limits import STEADY_RATE, STEADY_SECONDS, assert_steady

from iii_asgi.engine import EngineThread, QueueConfig
from iii_asgi.engine.config.file import ConfigError, config_from_mapping

pytestmark = pytest.mark.timeout(180)

MIB = 1 << 20


def channel_url(engine: EngineThread, ref: dict[str, Any], direction: str) -> str:
    return f"{engine.url}/ws/channels/{ref['channel_id']}?key={ref['access_key']}&dir={direction}"


async def _write(url: str, total: int, written: list[int], index: int) -> None:
    chunk = b"x" * (64 * 1024)
    try:
        async with websockets.connect(url, max_size=None, compression=None) as ws:
            while written[index] < total:
                await ws.send(chunk)
                written[index] += len(chunk)
    except websockets.ConnectionClosed:
        pass


async def test_channel_bytes_are_bounded_per_channel_and_engine_wide(
    engine_factory: Any,
) -> None:
    """16 writers pour 16 MiB each into channels nobody reads (1 MiB per channel, 8 MiB for
    all): each writer is held back (its socket is no longer read) instead of the engine
    buffering 256 MiB; a reader that attaches gets every byte; the channels go when the worker
    that created them disconnects (before: 1,024 frames of any size per channel, +770 MB for
    24 × 32 MiB, and channels outlived their creator until the 5-minute sweep)."""
    engine = engine_factory(channel_max_bytes=MIB, channel_budget_bytes=8 * MIB)
    store = engine.core.channels
    steady = peer("steady", engine.url, STEADY_SECONDS, STEADY_RATE)
    try:
        steady.wait_for("READY")
        owner = await Wire.connect(engine.url)
        refs = [
            await owner.result("engine::channels::create", {"buffer_size": 1024}) for _ in range(16)
        ]
        total = 16 * MIB
        written = [0] * 16
        writers = [
            asyncio.ensure_future(
                _write(channel_url(engine, r["writer"], "write"), total, written, i)
            )
            for i, r in enumerate(refs)
        ]
        await asyncio.sleep(2.0)
        budget = store.limits.budget
        held = [store.channels[r["writer"]["channel_id"]].nbytes for r in refs]
        print("CHANNELS", budget.peak, max(held), sum(held), min(written))
        assert budget.peak <= 8 * MIB, budget.peak
        assert max(held) <= MIB + 64 * 1024, held
        assert sum(held) <= 8 * MIB + 16 * 64 * 1024, held
        assert not any(w.done() for w in writers)  # held back, not failed

        # A reader drains one channel completely: backpressure, not loss.
        first = refs[0]
        async with websockets.connect(
            channel_url(engine, first["reader"], "read"), max_size=None, compression=None
        ) as reader:
            received = 0
            while received < total:
                received += len(await asyncio.wait_for(reader.recv(), 10))
        assert received == total

        # The creator leaves: its channels are deleted and the blocked writers closed.
        await owner.close()
        await asyncio.wait_for(asyncio.gather(*writers), 10)
        assert not any(r["writer"]["channel_id"] in store.channels for r in refs)
        assert budget.used == 0
        assert_steady(steady.report(STEADY_SECONDS + 30))
    finally:
        steady.kill()


async def test_queue_depth_is_bounded(engine_factory: Any) -> None:
    """Enqueues beyond a queue's max_depth are answered with enqueue_error queue_full
    (before: 100 000 enqueues reached a depth of 99 900)."""
    engine = engine_factory(queues={"jobs": QueueConfig(max_depth=50, concurrency=1)})
    steady = peer("steady", engine.url, STEADY_SECONDS, STEADY_RATE)
    try:
        steady.wait_for("READY")
        consumer = await Wire.connect(engine.url, name="consumer")
        await consumer.send({"type": "registerfunction", "id": "jobs::slow"})
        await consumer.sync()  # it never answers: the first job stays in delivery
        caller = await Wire.connect(engine.url)
        codes: dict[str, int] = {}
        messages: set[str] = set()
        for i in range(80):
            frame = await caller.call(
                "jobs::slow", {"i": i}, action={"type": "enqueue", "queue": "jobs"}
            )
            error = frame.get("error")
            code = "ok" if error is None else error["code"]
            codes[code] = codes.get(code, 0) + 1
            if error is not None:
                messages.add(error["message"])
        assert codes == {"ok": 50, "enqueue_error": 30}, codes
        assert messages == {"queue_full: Queue 'jobs' is full (50 messages, max_depth 50)"}
        stats = await caller.result("engine::queue::topic_stats", {"topic": "jobs"})
        assert stats["depth"] == 50
        assert_steady(steady.report(STEADY_SECONDS + 30))
    finally:
        steady.kill()


async def test_a_worker_that_never_reads_is_dropped(
    engine_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker that keeps calling but never reads its answers fills its outbound queue; past
    twice the limits the engine drops it (Close 1008) instead of buffering without bound."""
    engine = engine_factory(outbound_queue_size=64, outbound_queue_bytes=64 * 1024)
    ws = await websockets.connect(
        engine.url, max_size=2**26, compression=None, max_queue=1, close_timeout=0.1
    )
    await ws.recv()  # workerregistered; from here on nothing is read
    caplog.set_level(logging.WARNING, "iii_asgi.engine")
    value = "v" * 4096  # each answer ({old_value, new_value}) is 8 KiB: 24 MiB in all, more
    frame = (  # than the kernel's socket buffers hold
        '{"type":"invokefunction","function_id":"state::set","data":{"scope":"s","key":"k",'
        f'"value":"{value}"}},"invocation_id":"%s"}}'
    )
    with contextlib.suppress(websockets.ConnectionClosed):
        for i in range(3000):
            await ws.send(frame % f"00000000-0000-4000-8000-{i:012d}")
            if i % 50 == 0:
                await asyncio.sleep(0)
    for _ in range(100):
        if not engine.core.connections:
            break
        await asyncio.sleep(0.1)
    assert not engine.core.connections, "the engine still holds the connection"
    assert "does not read its socket" in caplog.text
    await ws.close()


def test_limit_options_are_config_file_keys() -> None:
    config = config_from_mapping(
        {
            "workers": [
                {
                    "name": "iii-worker-manager",
                    "config": {
                        "port": 0,
                        "outbound_queue_size": 100,
                        "outbound_queue_bytes": 2 * MIB,
                        "max_inflight_invocations": 500,
                        "invocation_timeout_ms": 60_000,
                        "max_message_size": 8 * MIB,
                        "frame_budget_bytes": 64 * MIB,
                        "channel_max_bytes": MIB,
                        "channel_budget_bytes": 32 * MIB,
                    },
                },
                {"name": "iii-queue", "config": {"queue_configs": {"q": {"max_depth": 10}}}},
            ]
        }
    )
    assert (config.outbound_queue_size, config.outbound_queue_bytes) == (100, 2 * MIB)
    assert (config.max_inflight_invocations, config.invocation_timeout_ms) == (500, 60_000)
    assert (config.max_message_size, config.frame_budget_bytes) == (8 * MIB, 64 * MIB)
    assert (config.channel_max_bytes, config.channel_budget_bytes) == (MIB, 32 * MIB)
    assert config.queues["q"].max_depth == 10
    with pytest.raises(ConfigError, match="frame_budget_bytes must be an integer >= 1"):
        config_from_mapping(
            {"workers": [{"name": "iii-worker-manager", "config": {"frame_budget_bytes": 0}}]}
        )
    none = config_from_mapping(
        {"workers": [{"name": "iii-worker-manager", "config": {"invocation_timeout_ms": None}}]}
    )
    assert none.invocation_timeout_ms is None


async def test_engine_timeout_applies_to_callers_that_name_none(engine_factory: Any) -> None:
    """``invocation_timeout_ms`` gives calls without ``timeout_ms`` (the official SDK's) a
    deadline: the caller gets TIMEOUT from the engine, the executor the stop notice, and the
    pending entry goes."""
    engine = engine_factory(invocation_timeout_ms=300)
    executor = await Wire.connect(engine.url, name="silent")
    await executor.send({"type": "registerfunction", "id": "silent::fn"})
    await executor.sync()
    caller = await Wire.connect(engine.url)
    inv_id = await caller.invoke("silent::fn", {})
    called = await executor.recv_type("invokefunction")
    result = await caller.recv_type("invocationresult", timeout=5.0)
    assert result["invocation_id"] == inv_id
    assert result["error"] == {"code": "TIMEOUT", "message": "invocation timed out after 300ms"}
    notice = await executor.recv_type("invocationresult", timeout=5.0)
    assert notice["invocation_id"] == called["invocation_id"]
    assert notice["error"]["code"] == "invocation_stopped", notice
    assert not engine.core.invoker.pending


async def test_max_inflight_invocations_of_a_worker(engine_factory: Any) -> None:
    """A worker that declares no capacity (the official SDK, a raw socket) gets at most
    ``max_inflight_invocations`` calls at once; more are refused at once."""
    engine = engine_factory(max_inflight_invocations=5)
    executor = await Wire.connect(engine.url, name="busy")
    await executor.send({"type": "registerfunction", "id": "busy::fn"})
    await executor.sync()
    caller = await Wire.connect(engine.url)
    for i in range(8):
        await caller.invoke("busy::fn", {"i": i})
    refused = [await caller.recv_type("invocationresult") for _ in range(3)]
    assert {r["error"]["code"] for r in refused} == {"WORKER_BACKPRESSURE"}
    assert "already has 5 invocations in flight (its limit: 5)" in refused[0]["error"]["message"]
    for _ in range(5):  # the five routed ones are answered normally
        await executor.serve_one()
    answers = [await caller.recv_type("invocationresult") for _ in range(5)]
    assert all("error" not in a for a in answers)


async def test_invocations_beyond_the_frame_budget(engine_factory: Any) -> None:
    """Large invocations queued to a worker that does not read are charged to the engine's
    frame budget; once it is spent, further ones get FRAME_BUDGET_EXCEEDED at once."""
    engine = engine_factory(frame_budget_bytes=8 * MIB)
    ws = await websockets.connect(
        engine.url, max_size=2**26, compression=None, max_queue=1, close_timeout=0.1
    )
    await ws.recv()
    await ws.send('{"type":"registerfunction","id":"deaf::fn"}')
    await ws.send(
        '{"type":"invokefunction","function_id":"engine::workers::register",'
        '"data":{"name":"deaf"},"action":{"type":"void"}}'
    )
    await ws.send('{"type":"ping"}')
    await ws.recv()  # pong: registered; from here on it reads nothing
    caller = await Wire.connect(engine.url)
    caller.ws.close_timeout = 0.5  # it stops reading its answers too, at the end
    blob = "x" * (3 * MIB // 2)
    codes: dict[str, int] = {}
    for _ in range(40):  # 60 MiB offered: the kernel's buffers take some, the budget 8 MiB
        await caller.invoke("deaf::fn", {"blob": blob})
    with contextlib.suppress(TimeoutError):
        while codes.get("FRAME_BUDGET_EXCEEDED", 0) < 3:
            frame = await caller.recv_type("invocationresult", timeout=3)
            codes[frame["error"]["code"]] = codes.get(frame["error"]["code"], 0) + 1
    assert codes.get("FRAME_BUDGET_EXCEEDED", 0) >= 3, codes
    assert set(codes) == {"FRAME_BUDGET_EXCEEDED"}, codes
    assert engine.core.frames.peak <= 8 * MIB + 2 * MIB, engine.core.frames.peak
    await ws.close()


async def test_an_http_route_to_a_full_worker_answers_503(engine_factory: Any) -> None:
    """An HTTP request whose worker cannot take the call gets 503 with the code and
    ``retry-after``, not a 500 (the worker is not failing, it is busy)."""
    engine = engine_factory(max_inflight_invocations=1)
    worker = await Wire.connect(engine.url, name="routes")
    await worker.send({"type": "registerfunction", "id": "routes::slow"})
    config = {"api_path": "/slow", "http_method": "GET"}
    await worker.register_trigger("t-slow", "http", "routes::slow", config)
    await worker.sync()
    async with httpx.AsyncClient(base_url=engine.http_url, timeout=10) as http:
        first = asyncio.ensure_future(http.get("/slow"))
        await worker.recv_type("invokefunction")  # the first call holds the worker's one slot
        second = await http.get("/slow")
        assert second.status_code == 503
        assert second.headers["retry-after"] == "1"
        assert second.json()["error"]["code"] == "WORKER_BACKPRESSURE"
        first.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await first
