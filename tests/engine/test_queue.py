"""Named queues behind TriggerAction.Enqueue (builtins.md §7.1, §7.2, §7.4), over raw sockets."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from engine_wire import Wire

from iii_asgi.engine import EngineThread
from iii_asgi.engine.config.queue import QueueConfig, queue_configs_from_mapping

pytestmark = pytest.mark.adapters

ENQ = {"type": "enqueue", "queue": "default"}


async def pair(engine: EngineThread, function_id: str = "w::job") -> tuple[Wire, Wire]:
    worker = await Wire.connect(engine.url, name="w")
    await worker.send({"type": "registerfunction", "id": function_id})
    await worker.sync()
    return await Wire.connect(engine.url, name="c"), worker


async def answer(worker: Wire, *, error: str | None = None) -> dict[str, Any]:
    """Receive the next call and answer it (an error with code ``error`` when given)."""
    call = await worker.recv_type("invokefunction")
    frame: dict[str, Any] = {
        "type": "invocationresult",
        "invocation_id": call["invocation_id"],
        "function_id": call["function_id"],
    }
    if error is None:
        frame["result"] = {"ok": True}
    else:
        frame["error"] = {"code": error, "message": "failed on purpose"}
    await worker.send(frame)
    return call


async def stats(wire: Wire, topic: str = "default") -> dict[str, Any]:
    result: dict[str, Any] = await wire.result("engine::queue::topic_stats", {"topic": topic})
    return result


async def until(check: Callable[[], Any], wire: Wire, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await wire.sync()


async def test_enqueue_answers_receipt_and_delivers_raw_data(engine: EngineThread) -> None:
    caller, worker = await pair(engine)
    frame = await caller.call("w::job", {"n": 1}, action=ENQ)
    receipt = frame["result"]["messageReceiptId"]
    assert frame["result"] == {"messageReceiptId": receipt} and uuid.UUID(receipt).version == 4
    call = await answer(worker)
    assert call["data"] == {"n": 1}  # raw, no _caller_worker_id, no envelope (§7.1)
    assert call["invocation_id"] != frame["invocation_id"]
    await until(lambda: _delivered(caller, 1), caller)
    assert (await stats(caller))["depth"] == 0


async def _delivered(wire: Wire, n: int, topic: str = "default") -> bool:
    return bool((await stats(wire, topic))["delivered"] == n)


async def test_trace_context_travels_with_the_job(engine_factory: Any) -> None:
    engine = engine_factory(queues={"plain": {"backoff_ms": 10}})  # a dict works as a config
    caller, worker = await pair(engine)
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    enq = {"type": "enqueue", "queue": "plain"}
    await caller.call("w::job", 1, action=enq, traceparent=parent, baggage="k=v")
    call = await answer(worker)
    assert (call["traceparent"], call["baggage"]) == (parent, "k=v")


async def test_enqueue_without_invocation_id_is_silent_but_runs(engine: EngineThread) -> None:
    caller, worker = await pair(engine)
    await caller.send({"type": "invokefunction", "function_id": "w::job", "data": 5, "action": ENQ})
    assert (await answer(worker))["data"] == 5
    await caller.silent(0.2)


async def test_enqueue_in_a_namespace(engine: EngineThread) -> None:
    worker = await Wire.connect(engine.url, name="w", namespace="orders")
    await worker.send({"type": "registerfunction", "id": "orders::make"})
    await worker.sync()
    caller = await Wire.connect(engine.url, name="c")
    frame = await caller.call("orders::make", [1], action=ENQ, namespace="orders")
    assert "messageReceiptId" in frame["result"]
    assert (await answer(worker))["data"] == [1]


async def test_unknown_queue_is_enqueue_error(engine: EngineThread) -> None:
    caller, worker = await pair(engine)
    frame = await caller.call("w::job", {}, action={"type": "enqueue", "queue": "nope"})
    assert frame["error"] == {
        "code": "enqueue_error",
        "message": "queue_not_found: Queue 'nope' not found",
    }
    await worker.silent(0.2)


async def test_missing_provider_message(engine: EngineThread) -> None:
    async def drop() -> None:
        del engine.core.registry.functions[("default", "engine::queue::enqueue")]

    engine.run(drop())
    caller, _ = await pair(engine)
    frame = await caller.call("w::job", {}, action=ENQ)
    assert frame["error"]["code"] == "enqueue_error"
    assert frame["error"]["message"].startswith("No queue provider is installed.")
    assert "engine::queue::enqueue" in frame["error"]["message"]


async def test_retries_with_backoff_then_ack_once(engine_factory: Any) -> None:
    engine = engine_factory(queues={"q": QueueConfig(max_retries=3, backoff_ms=100)})
    caller, worker = await pair(engine)
    await caller.call("w::job", {"k": "v"}, action={"type": "enqueue", "queue": "q"})
    times = []
    for error in ("boom", "boom", None):
        call = await answer(worker, error=error)
        times.append(time.monotonic())
        assert call["data"] == {"k": "v"}
    await until(lambda: _delivered(caller, 1, "q"), caller)
    await worker.silent(0.4)  # acknowledged once: no fourth delivery
    assert times[1] - times[0] >= 0.09  # backoff 100 ms, then 200 ms (§7.2)
    assert times[2] - times[1] >= 0.19
    after = await stats(caller, "q")
    assert (after["depth"], after["dlq_depth"], after["failed"]) == (0, 0, 0)


async def test_dead_letter_list_and_redrive(engine_factory: Any) -> None:
    engine = engine_factory(queues={"q": QueueConfig(max_retries=2, backoff_ms=10)})
    caller, worker = await pair(engine)
    frame = await caller.call("w::job", {"id": 7}, action={"type": "enqueue", "queue": "q"})
    receipt = frame["result"]["messageReceiptId"]
    await answer(worker, error="boom")
    await answer(worker, error="boom")
    await until(lambda: _dlq_count(caller, "q", 1), caller)
    assert await caller.result("engine::queue::dlq_topics") == [
        {"topic": "q", "broker_type": "function_queue", "message_count": 1}
    ]
    letters = await caller.result("engine::queue::dlq_messages", {"topic": "q"})
    assert len(letters) == 1
    letter = letters[0]
    assert letter["id"] == receipt and letter["payload"] == {"id": 7}
    assert letter["retries"] == 2 and letter["error"] == "boom: failed on purpose"
    assert letter["size_bytes"] == len('{"id":7}') and isinstance(letter["failed_at"], int)
    assert await caller.result("engine::queue::dlq_messages", {"topic": "q", "offset": 1}) == []
    assert await caller.result("iii::queue::redrive", {"queue": "q"}) == {
        "queue": "q",
        "redriven": 1,
    }
    assert (await answer(worker))["data"] == {"id": 7}
    await until(lambda: _delivered(caller, 1, "q"), caller)
    assert await caller.result("engine::queue::dlq_topics") == []


async def _dlq_count(wire: Wire, topic: str, n: int) -> bool:
    return bool((await stats(wire, topic))["dlq_depth"] == n)


async def test_missing_function_ends_in_dead_letters(engine_factory: Any) -> None:
    engine = engine_factory(queues={"q": QueueConfig(max_retries=2, backoff_ms=10)})
    caller = await Wire.connect(engine.url, name="c")
    frame = await caller.call("ghost::fn", 1, action={"type": "enqueue", "queue": "q"})
    receipt = frame["result"]["messageReceiptId"]
    await until(lambda: _dlq_count(caller, "q", 1), caller)
    (letter,) = await caller.result("engine::queue::dlq_messages", {"topic": "q"})
    assert letter["error"].startswith("function_not_found: Function ghost::fn not found")
    single = {"queue": "q", "message_id": receipt}
    assert await caller.result("iii::queue::redrive_message", {**single, "message_id": "x"}) == {
        "queue": "q",
        "message_id": "x",
        "redriven": 0,
    }
    await until(lambda: _dlq_count(caller, "q", 1), caller)
    assert await caller.result("iii::queue::discard_message", single) == {**single, "redriven": 1}
    assert await caller.result("engine::queue::dlq_messages", {"topic": "q"}) == []
    assert await caller.result("iii::queue::discard_message", single) == {**single, "redriven": 0}


async def test_redrive_one_message(engine_factory: Any) -> None:
    engine = engine_factory(queues={"q": QueueConfig(max_retries=1)})
    caller, worker = await pair(engine)
    frame = await caller.call("w::job", "a", action={"type": "enqueue", "queue": "q"})
    await answer(worker, error="boom")
    await until(lambda: _dlq_count(caller, "q", 1), caller)
    single = {"queue": "q", "message_id": frame["result"]["messageReceiptId"]}
    assert await caller.result("iii::queue::redrive_message", single) == {**single, "redriven": 1}
    assert (await answer(worker))["data"] == "a"


async def test_concurrency_limit(engine_factory: Any) -> None:
    engine = engine_factory(queues={"q": QueueConfig(concurrency=2)})
    caller, worker = await pair(engine)
    for n in range(4):
        await caller.call("w::job", n, action={"type": "enqueue", "queue": "q"})
    first = [await worker.recv_type("invokefunction") for _ in range(2)]
    await worker.silent(0.3)  # two running: the others wait
    assert [c["data"] for c in first] == [0, 1]
    await worker.send(
        {"type": "invocationresult", "invocation_id": first[0]["invocation_id"], "result": None}
    )
    assert (await worker.recv_type("invokefunction"))["data"] == 2


async def test_fifo_one_at_a_time_in_order_and_group_field(engine_factory: Any) -> None:
    config = QueueConfig(type="fifo", message_group_field="user", concurrency=5)
    engine = engine_factory(queues={"f": config})
    caller, worker = await pair(engine)
    fifo = {"type": "enqueue", "queue": "f"}
    for n in range(3):
        assert "result" in await caller.call("w::job", {"user": "u", "n": n}, action=fifo)
    seen = []
    for _ in range(3):
        call = await worker.recv_type("invokefunction")
        await worker.silent(0.1)  # prefetch 1: nothing else until this one is answered
        seen.append(call["data"]["n"])
        await worker.send(
            {"type": "invocationresult", "invocation_id": call["invocation_id"], "result": 1}
        )
    assert seen == [0, 1, 2]
    missing = await caller.call("w::job", {"n": 1}, action=fifo)
    assert missing["error"] == {
        "code": "enqueue_error",
        "message": "fifo_group_missing: FIFO queue 'f' requires field 'user' in data",
    }
    null = await caller.call("w::job", {"user": None}, action=fifo)
    assert null["error"]["message"].endswith("must not be null")


async def test_enqueue_function_called_directly(engine: EngineThread) -> None:
    caller, worker = await pair(engine)
    request = {"queue": "default", "function_id": "w::job", "data": 3, "messageReceiptId": "r-1"}
    assert await caller.result("engine::queue::enqueue", request) == {"messageReceiptId": "r-1"}
    assert (await answer(worker))["data"] == 3
    bad = await caller.call("engine::queue::enqueue", {"queue": "default"})
    assert bad["error"]["code"] == "deserialization_error"


async def test_duplicate_receipt_fails_alone_in_a_shared_commit(engine: EngineThread) -> None:
    caller = await Wire.connect(engine.url, name="c")
    ids = []
    for receipt in ("dup", "dup", "other"):  # sent together: stored in one batch
        request = {"queue": "default", "function_id": "x::y", "data": 1}
        ids.append(
            await caller.invoke("engine::queue::enqueue", {**request, "messageReceiptId": receipt})
        )
    results = {}
    for _ in ids:
        frame = await caller.recv_type("invocationresult")
        results[frame["invocation_id"]] = frame
    first, second, third = (results[i] for i in ids)
    assert first["result"] == {"messageReceiptId": "dup"}
    assert second["error"]["code"] == "enqueue_failed" and "dup" in second["error"]["message"]
    assert third["result"] == {"messageReceiptId": "other"}


@pytest.mark.parametrize(
    ("function_id", "data", "code"),
    [
        ("iii::queue::redrive", {}, "queue_not_set"),
        ("iii::queue::redrive", {"queue": "nope"}, "redrive_failed"),
        ("iii::queue::redrive_message", {"message_id": "m"}, "queue_not_set"),
        ("iii::queue::redrive_message", {"queue": "default"}, "message_id_not_set"),
        ("iii::queue::discard_message", {"queue": "default"}, "message_id_not_set"),
        ("engine::queue::topic_stats", {}, "topic_required"),
        ("engine::queue::topic_stats", {"topic": "nope"}, "topic_not_found"),
        ("engine::queue::dlq_messages", {}, "topic_required"),
        ("engine::queue::dlq_messages", {"topic": "q", "limit": "x"}, "deserialization_error"),
    ],
)
async def test_queue_function_errors(
    engine: EngineThread, function_id: str, data: Any, code: str
) -> None:
    caller = await Wire.connect(engine.url)
    frame = await caller.call(function_id, data)
    assert frame["error"]["code"] == code, frame


async def test_list_topics_and_stats_shape(engine_factory: Any) -> None:
    engine = engine_factory(queues={"emails": QueueConfig(concurrency=3)})
    caller = await Wire.connect(engine.url)
    assert await caller.result("engine::queue::list_topics") == [
        {"name": "default", "broker_type": "function_queue", "subscriber_count": 1},
        {"name": "emails", "broker_type": "function_queue", "subscriber_count": 1},
    ]
    assert await stats(caller, "emails") == {
        "depth": 0,
        "consumer_count": 1,
        "dlq_depth": 0,
        "config": {
            "max_retries": 3,
            "concurrency": 3,
            "type": "standard",
            "message_group_field": None,
            "backoff_ms": 1000,
            "poll_interval_ms": 100,
            "max_depth": 100_000,
        },
        "delivered": 0,
        "failed": 0,
    }


def test_queue_config_validation() -> None:
    assert queue_configs_from_mapping(
        {"a": {"max_retries": 5, "type": "fifo", "message_group_field": "g"}}
    )["a"] == QueueConfig(max_retries=5, type="fifo", message_group_field="g")
    for bad, why in [
        ({"a": {"colour": 1}}, "unknown keys colour"),
        ({"a": {"type": "lifo"}}, "'standard' or 'fifo'"),
        ({"a": {"concurrency": 0}}, ">= 1"),
        ({"a": {"type": "fifo"}}, "requires message_group_field"),
        ({"a": {"max_retries": "3"}}, "must be an integer"),
        ([1], "mapping"),
    ]:
        with pytest.raises(ValueError, match=why):
            queue_configs_from_mapping(bad)
    sub = QueueConfig.from_subscriber({"maxRetries": 4, "backoffDelayMs": 5, "type": "fifo"})
    assert (sub.max_retries, sub.backoff_ms, sub.limit) == (5, 5, 1)  # retries + 1 attempts
    assert QueueConfig.from_subscriber(None) == QueueConfig()
