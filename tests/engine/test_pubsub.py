"""PubSub (builtins.md §8) and durable pub/sub (§7.3), over raw sockets."""

from __future__ import annotations

import time
from typing import Any

import pytest
from engine_wire import Wire

from iii_asgi.engine import EngineThread

pytestmark = pytest.mark.adapters


async def subscriber(
    engine: EngineThread,
    function_id: str,
    trigger_type: str,
    config: Any,
    trigger_id: str,
    sync: bool = True,
) -> Wire:
    """A worker serving ``function_id`` bound by a trigger; ``sync=False`` when a call may
    arrive at once (``Wire.sync`` would skip it)."""
    wire = await Wire.connect(engine.url, name=function_id)
    await wire.send({"type": "registerfunction", "id": function_id})
    await wire.register_trigger(
        trigger_id, trigger_type, function_id, config, metadata={"who": function_id}
    )
    if sync:
        await wire.sync()
    return wire


async def reply(wire: Wire, call: dict[str, Any], error: bool = False) -> None:
    frame: dict[str, Any] = {"type": "invocationresult", "invocation_id": call["invocation_id"]}
    if error:
        frame["error"] = {"code": "boom", "message": "no"}
    else:
        frame["result"] = None
    await wire.send(frame)


# -- pubsub (§8) -------------------------------------------------------------------------------


async def test_publish_reaches_every_subscriber_with_raw_data(engine: EngineThread) -> None:
    a = await subscriber(engine, "a::on", "subscribe", {"topic": "orders"}, "ta")
    b = await subscriber(engine, "b::on", "subscribe", {"topic": "orders"}, "tb")
    other = await subscriber(engine, "c::on", "subscribe", {"topic": "orders.x"}, "tc")
    publisher = await Wire.connect(engine.url)
    assert await publisher.result("publish", {"topic": "orders", "data": {"id": 1}}) is None
    for wire, fid in ((a, "a::on"), (b, "b::on")):
        call = await wire.recv_type("invokefunction")
        assert call["data"] == {"id": 1}  # raw data: no envelope, no topic
        assert call["metadata"] == {"who": fid}
        await reply(wire, call, error=True)  # errors are ignored
    await other.silent(0.2)  # exact topic match only


async def test_unsubscribing_one_keeps_the_others(engine: EngineThread) -> None:
    a = await subscriber(engine, "a::on", "subscribe", {"topic": "t"}, "ta")
    b = await subscriber(engine, "b::on", "subscribe", {"topic": "t"}, "tb")
    await a.send({"type": "unregistertrigger", "id": "ta", "trigger_type": "subscribe"})
    await a.sync()
    publisher = await Wire.connect(engine.url)
    await publisher.send(
        {
            "type": "invokefunction",
            "function_id": "publish",
            "data": {"topic": "t", "data": 2},
            "action": {"type": "void"},
        }
    )
    assert (await b.recv_type("invokefunction"))["data"] == 2
    await a.silent(0.2)


async def test_publish_errors_and_topicless_subscription(engine: EngineThread) -> None:
    wire = await subscriber(engine, "a::on", "subscribe", {}, "t0")
    await wire.silent(0.2)  # no topic: accepted (warning only), never fires
    frame = await wire.call("publish", {"data": 1})
    assert frame["error"] == {"code": "topic_not_set", "message": "Topic is not set"}
    frame = await wire.call("publish", {"topic": "", "data": 1})
    assert frame["error"]["code"] == "topic_not_set"
    assert (await wire.call("publish", [1]))["error"]["code"] == "deserialization_error"


# -- durable pub/sub (§7.3) --------------------------------------------------------------------


async def _stats(wire: Wire, topic: str) -> dict[str, Any]:
    result: dict[str, Any] = await wire.result("engine::queue::topic_stats", {"topic": topic})
    return result


async def test_durable_publish_fans_out_one_copy_per_function(engine: EngineThread) -> None:
    a = await subscriber(engine, "a::on", "durable:subscriber", {"topic": "paid"}, "ta")
    b = await subscriber(engine, "b::on", "durable:subscriber", {"queue": "paid"}, "tb")
    # a second trigger for the same function shares its queue: still one delivery per publish
    await a.send(
        {
            "type": "registertrigger",
            "id": "ta2",
            "trigger_type": "durable:subscriber",
            "function_id": "a::on",
            "config": {"topic": "paid"},
        }
    )
    await a.sync()
    publisher = await Wire.connect(engine.url)
    assert await publisher.result("iii::durable::publish", {"topic": "paid", "data": 9}) is None
    for wire in (a, b):
        call = await wire.recv_type("invokefunction")
        assert call["data"] == 9
        await reply(wire, call)
    await a.silent(0.2)
    topics = await publisher.result("engine::queue::list_topics")
    assert {"name": "paid", "broker_type": "builtin", "subscriber_count": 2} in topics
    deadline = time.monotonic() + 5
    while (await _stats(publisher, "paid"))["delivered"] != 2:
        assert time.monotonic() < deadline
    assert (await _stats(publisher, "paid"))["consumer_count"] == 2


async def test_durable_retries_then_dead_letters(engine: EngineThread) -> None:
    config = {"topic": "t", "queue_config": {"maxRetries": 1, "backoffDelayMs": 20}}
    wire = await subscriber(engine, "a::on", "durable:subscriber", config, "ta")
    await wire.result("iii::durable::publish", {"topic": "t", "data": "x"})
    for _ in range(2):  # maxRetries 1 → 2 attempts
        call = await wire.recv_type("invokefunction")
        assert call["data"] == "x"
        await reply(wire, call, error=True)
    await wire.silent(0.2)
    deadline = time.monotonic() + 5
    while (await _stats(wire, "t"))["dlq_depth"] != 1:
        assert time.monotonic() < deadline
    (letter,) = await wire.result("engine::queue::dlq_messages", {"topic": "t"})
    assert letter["payload"] == "x" and letter["retries"] == 2
    assert await wire.result("iii::queue::redrive", {"topic": "t"}) == {"queue": "t", "redriven": 1}
    call = await wire.recv_type("invokefunction")
    await reply(wire, call)


async def test_durable_condition_false_acks_without_calling(engine: EngineThread) -> None:
    wire = await Wire.connect(engine.url, name="w")
    await wire.send({"type": "registerfunction", "id": "a::on"})
    await wire.send({"type": "registerfunction", "id": "a::only_big"})
    await wire.send(
        {
            "type": "registertrigger",
            "id": "t1",
            "trigger_type": "durable:subscriber",
            "function_id": "a::on",
            "config": {"topic": "n", "condition_function_id": "a::only_big"},
        }
    )
    await wire.sync()
    await wire.result("iii::durable::publish", {"topic": "n", "data": 1})
    check = await wire.recv_type("invokefunction")
    assert check["function_id"] == "a::only_big" and check["data"] == 1
    await wire.send(
        {"type": "invocationresult", "invocation_id": check["invocation_id"], "result": False}
    )
    await wire.result("iii::durable::publish", {"topic": "n", "data": 100})
    check = await wire.recv_type("invokefunction")
    await wire.send(
        {"type": "invocationresult", "invocation_id": check["invocation_id"], "result": True}
    )
    call = await wire.recv_type("invokefunction")
    assert (call["function_id"], call["data"]) == ("a::on", 100)
    await reply(wire, call)
    deadline = time.monotonic() + 5
    while (await _stats(wire, "n"))["delivered"] != 2:  # the skipped one counts as handled
        assert time.monotonic() < deadline
    assert (await _stats(wire, "n"))["dlq_depth"] == 0


async def test_durable_message_waits_for_a_returning_subscriber(engine: EngineThread) -> None:
    config = {"topic": "w", "queue_config": {"backoffDelayMs": 10}}
    first = await subscriber(engine, "a::on", "durable:subscriber", config, "ta")
    publisher = await Wire.connect(engine.url)
    await publisher.result("iii::durable::publish", {"topic": "w", "data": "kept"})
    assert (await first.recv_type("invokefunction"))["data"] == "kept"
    await first.ws.close()  # gone mid-delivery: invocation_stopped → retried later
    deadline = time.monotonic() + 5
    while (await _stats(publisher, "w"))["consumer_count"] != 0:
        assert time.monotonic() < deadline
    assert (await _stats(publisher, "w"))["depth"] == 1  # waiting, not lost
    again = await subscriber(engine, "a::on", "durable:subscriber", config, "tb", sync=False)
    call = await again.recv_type("invokefunction")
    assert call["data"] == "kept"
    await reply(again, call)


async def test_durable_errors(engine: EngineThread) -> None:
    wire = await Wire.connect(engine.url, name="w")
    frame = await wire.call("iii::durable::publish", {"data": 1})
    assert frame["error"] == {"code": "topic_not_set", "message": "Topic is not set"}
    await wire.send(
        {
            "type": "registertrigger",
            "id": "bad",
            "trigger_type": "durable:subscriber",
            "function_id": "a::on",
            "config": {},
        }
    )
    ack = await wire.recv_type("triggerregistrationresult")
    assert ack["error"]["code"] == "trigger_registration_failed"
    assert "topic" in ack["error"]["message"]
    await wire.send(
        {
            "type": "registertrigger",
            "id": "bad2",
            "trigger_type": "durable:subscriber",
            "function_id": "a::on",
            "config": {"topic": "t", "queue_config": {"maxRetries": -1}},
        }
    )
    ack = await wire.recv_type("triggerregistrationresult")
    assert "maxRetries" in ack["error"]["message"]
