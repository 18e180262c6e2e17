"""Two engines on one Redis (docs/engine.md, "Adapters"): what one engine's workers do reaches
the triggers, subscribers and consumers registered on the other."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import websockets
from engine_wire import Wire

from iii_asgi.engine import AdapterConfig, Engine, EngineConfig, EngineThread
from iii_asgi.engine.storage import StorageError
from tests.redis_server import redis_options

Pair = tuple[EngineThread, EngineThread]


@pytest.fixture
def pair(engine_factory: Callable[..., EngineThread], redis_url: str) -> Pair:
    """Engines A and B, every built-in on the same Redis."""
    options = redis_options(redis_url)
    return engine_factory(**options), engine_factory(**options)


class Served:
    """A worker that answers every call with ``null`` and keeps the calls' data."""

    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        self.calls: list[Any] = []
        self.task = asyncio.get_running_loop().create_task(self._serve())

    async def _serve(self) -> None:
        while True:
            call = await self.wire.recv_type("invokefunction", timeout=3600)
            self.calls.append(call.get("data"))
            await self.wire.send(
                {"type": "invocationresult", "invocation_id": call["invocation_id"], "result": None}
            )

    async def wait(self, count: int, timeout: float = 20.0) -> list[Any]:
        async with asyncio.timeout(timeout):
            while len(self.calls) < count:
                await asyncio.sleep(0.02)
        return self.calls

    def close(self) -> None:
        self.task.cancel()


@pytest.fixture
async def served() -> AsyncIterator[Callable[..., Any]]:
    """``await served(engine, function_id, trigger_type?, **config)``: a :class:`Served`
    worker bound by a trigger (none without ``trigger_type``)."""
    workers: list[Served] = []

    async def make(
        engine: EngineThread, function_id: str, trigger_type: str | None = None, **config: Any
    ) -> Served:
        wire = await Wire.connect(engine.url, name=function_id)
        await wire.send({"type": "registerfunction", "id": function_id})
        if trigger_type is not None:
            await wire.send(
                {
                    "type": "registertrigger",
                    "id": f"t-{function_id}-{len(workers)}",
                    "trigger_type": trigger_type,
                    "function_id": function_id,
                    "config": config,
                }
            )
        await wire.sync()
        worker = Served(wire)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.close()


async def test_state_set_on_a_fires_a_state_trigger_on_b(pair: Pair, served: Any) -> None:
    a, b = pair
    watcher = await served(b, "w::on_state", "state", scope="users")
    caller = await Wire.connect(a.url)
    await caller.result("state::set", {"scope": "users", "key": "u1", "value": {"n": 1}})
    await caller.result(
        "state::update",
        {"scope": "users", "key": "u1", "ops": [{"type": "increment", "path": "n", "by": 1}]},
    )
    await caller.result("state::delete", {"scope": "users", "key": "u1"})
    await caller.result("state::set", {"scope": "other", "key": "x", "value": 1})  # filtered
    events = await watcher.wait(3)
    assert [(e["event_type"], e["old_value"], e["new_value"]) for e in events] == [
        ("state:created", None, {"n": 1}),
        ("state:updated", {"n": 1}, {"n": 2}),
        ("state:deleted", {"n": 2}, None),
    ]
    assert events[0] == {
        "type": "state",
        "event_type": "state:created",
        "scope": "users",
        "key": "u1",
        "old_value": None,
        "new_value": {"n": 1},
    }
    reader = await Wire.connect(b.url)
    assert await reader.result("state::get", {"scope": "other", "key": "x"}) == 1
    await asyncio.sleep(0.3)
    assert len(watcher.calls) == 3  # once each: B's own fan-out, no echo


async def test_update_ops_are_atomic_across_engines(pair: Pair) -> None:
    wires = [await Wire.connect(engine.url) for engine in pair]
    per_engine = 40
    op = {"scope": "n", "key": "k", "ops": [{"type": "increment", "path": "i", "by": 1}]}

    async def hammer(wire: Wire) -> list[int]:
        for _ in range(per_engine):  # all in flight at once
            await wire.invoke("state::update", op)
        results = [await wire.recv_type("invocationresult") for _ in range(per_engine)]
        return [r["result"]["new_value"]["i"] for r in results]

    seen = await asyncio.gather(*(hammer(w) for w in wires))
    assert sorted(seen[0] + seen[1]) == list(range(1, 2 * per_engine + 1))  # no lost update
    assert await wires[1].result("state::get", {"scope": "n", "key": "k"}) == {"i": 80}


async def test_stream_item_set_on_a_reaches_a_trigger_and_a_socket_on_b(
    pair: Pair, served: Any
) -> None:
    a, b = pair
    watcher = await served(b, "w::on_todo", "stream", stream_name="todo")
    async with websockets.connect(b.stream_url) as browser:
        join = {"subscriptionId": "s1", "streamName": "todo", "groupId": "inbox"}
        await browser.send(json.dumps({"type": "join", "data": join}))
        assert json.loads(await browser.recv())["event"] == {"type": "sync", "data": []}
        caller = await Wire.connect(a.url)
        item = {"stream_name": "todo", "group_id": "inbox", "item_id": "t1"}
        await caller.result("stream::set", {**item, "data": {"title": "milk"}})
        await caller.result(
            "stream::send",
            {"stream_name": "todo", "group_id": "inbox", "type": "ping", "data": 1},
        )
        frames = [json.loads(await asyncio.wait_for(browser.recv(), 10)) for _ in range(2)]
        assert [f["event"] for f in frames] == [
            {"type": "create", "data": {"title": "milk"}},
            {"type": "event", "event": {"type": "ping", "data": 1}},
        ]
        assert (frames[0]["streamName"], frames[0]["groupId"], frames[0]["id"]) == (
            "todo",
            "inbox",
            "t1",
        )
        events = await watcher.wait(2)
        assert [e["event"]["type"] for e in events] == ["create", "event"]
        assert events[0]["id"] == "t1" and events[0]["streamName"] == "todo"
    reader = await Wire.connect(b.url)
    assert await reader.result("stream::get", item) == {"title": "milk"}


async def test_publish_on_a_reaches_subscribers_on_both(pair: Pair, served: Any) -> None:
    a, b = pair
    on_a = await served(a, "a::on", "subscribe", topic="orders")
    on_b = await served(b, "b::on", "subscribe", topic="orders")
    caller = await Wire.connect(a.url)
    await caller.result("publish", {"topic": "orders", "data": {"id": 1}})
    await caller.result("publish", {"topic": "elsewhere", "data": {"id": 2}})
    other = await Wire.connect(b.url)
    await other.result("publish", {"topic": "orders", "data": {"id": 3}})
    assert sorted(c["id"] for c in await on_b.wait(2)) == [1, 3]
    assert sorted(c["id"] for c in await on_a.wait(2)) == [1, 3]
    await asyncio.sleep(0.3)
    assert (len(on_a.calls), len(on_b.calls)) == (2, 2)  # once each


async def test_cron_on_both_engines_fires_once_per_tick(pair: Pair, served: Any) -> None:
    ticks = 10
    workers = [
        await served(engine, "job::tick", "cron", expression="* * * * * *") for engine in pair
    ]

    def scheduled() -> list[str]:
        return [call["scheduled_time"] for w in workers for call in w.calls]

    async with asyncio.timeout(60):
        while len(set(scheduled())) < ticks:
            await asyncio.sleep(0.1)
    counts = Counter(scheduled())
    assert max(counts.values()) == 1, counts  # no tick ran on both engines
    assert len(counts) >= ticks


async def test_queue_consumer_on_b_runs_what_a_enqueued(pair: Pair, served: Any) -> None:
    a, b = pair
    job = await served(b, "w::job")  # registered on B only
    durable = await served(b, "w::audit", "durable:subscriber", topic="audit")
    caller = await Wire.connect(a.url)
    for n in range(5):
        frame = await caller.call(
            "w::job", {"n": n}, action={"type": "enqueue", "queue": "default"}
        )
        assert "messageReceiptId" in frame["result"]
    await caller.result("iii::durable::publish", {"topic": "audit", "data": {"who": "a"}})
    assert sorted(c["n"] for c in await job.wait(5)) == [0, 1, 2, 3, 4]
    assert await durable.wait(1) == [{"who": "a"}]
    stats = await caller.result("engine::queue::topic_stats", {"topic": "default"})
    assert (stats["depth"], stats["dlq_depth"]) == (0, 0)


async def test_unknown_adapter_and_unreachable_redis_fail_clearly() -> None:
    with pytest.raises(ValueError, match=r"EngineConfig.state_adapter: adapter 'bridge'"):
        await Engine(EngineConfig(port=0, state_adapter=AdapterConfig("bridge"))).start()
    dead = AdapterConfig("redis", redis_url="redis://127.0.0.1:1/0")
    engine = Engine(EngineConfig(port=0, http_port=None, stream_adapter=dead))
    with pytest.raises(StorageError, match=r"cannot connect to Redis at redis://127\.0\.0\.1:1/0"):
        await engine.start()
