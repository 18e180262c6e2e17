"""Our SDK with TriggerAction.Enqueue against our engine: EnqueueResult, retries in order,
dead letters and redrive through the SDK's ``trigger`` (builtins.md §7)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import iii
from iii import EnqueueResult, IIIInvocationError, InitOptions, TriggerAction, register_worker
from iii_asgi.engine.config.queue import QueueConfig
from tests.helpers import call_until_found, wait_for

#: Every test here runs over the WebSocket and over the in-process transport.
pytestmark = pytest.mark.usefixtures("transport")


@pytest.fixture
def fast(engine_factory: Any) -> Any:
    return engine_factory(queues={"fast": QueueConfig(max_retries=3, backoff_ms=50)})


@pytest.fixture
def client(fast: Any) -> Iterator[iii.III]:
    worker = register_worker(fast.url, InitOptions(worker_name="queue-sdk"))
    yield worker
    worker.shutdown()


def enqueue(client: iii.III, function_id: str, payload: Any, queue: str = "fast") -> Any:
    return client.trigger(
        {
            "function_id": function_id,
            "payload": payload,
            "action": TriggerAction.Enqueue(queue=queue),
        }
    )


def test_enqueue_returns_enqueue_result_and_runs_async(client: iii.III) -> None:
    seen: list[Any] = []
    client.register_function("jobs::note", lambda d: seen.append(d))
    call_until_found(client, {"function_id": "jobs::note", "payload": "warmup"})
    result = enqueue(client, "jobs::note", {"n": 1}, queue="default")
    assert isinstance(result, EnqueueResult)
    assert uuid.UUID(result.messageReceiptId).version == 4
    assert result["messageReceiptId"] == result.messageReceiptId
    wait_for(lambda: {"n": 1} in seen)
    from iii.queue import EnqueueResult as FromModule  # seed 003's ``queue`` module

    assert FromModule is EnqueueResult


def test_fails_twice_then_succeeds_is_called_three_times_and_acked_once(
    client: iii.III,
) -> None:
    calls: list[float] = []
    lock = threading.Lock()

    def flaky(data: Any) -> str:
        with lock:
            calls.append(time.monotonic())
            attempt = len(calls)
        if attempt <= 2:
            raise RuntimeError(f"attempt {attempt} fails")
        return "ok"

    client.register_function("jobs::flaky", flaky)
    wait_for(lambda: _registered(client, "jobs::flaky"))
    enqueue(client, "jobs::flaky", {"k": 1})
    wait_for(lambda: _stats(client)["delivered"] == 1)
    time.sleep(0.4)  # a fourth delivery would come 200 ms after the third at the latest
    assert len(calls) == 3
    assert calls[1] - calls[0] >= 0.045 and calls[2] - calls[1] >= 0.095  # 50 ms, 100 ms
    stats = _stats(client)
    assert (stats["depth"], stats["dlq_depth"], stats["failed"]) == (0, 0, 0)


def test_always_failing_message_goes_to_dead_letters_and_redrive_works(client: iii.III) -> None:
    healthy = threading.Event()
    calls: list[Any] = []

    def handler(data: Any) -> None:
        calls.append(data)
        if not healthy.is_set():
            raise ValueError("still broken")

    client.register_function("jobs::broken", handler)
    wait_for(lambda: _registered(client, "jobs::broken"))
    receipt = enqueue(client, "jobs::broken", {"order": 5}).messageReceiptId
    wait_for(lambda: _stats(client)["dlq_depth"] == 1)
    assert len(calls) == 3
    (letter,) = client.trigger(
        {"function_id": "engine::queue::dlq_messages", "payload": {"topic": "fast"}}
    )
    assert letter["id"] == receipt and letter["payload"] == {"order": 5}
    assert letter["retries"] == 3 and "still broken" in letter["error"]
    healthy.set()
    redriven = client.trigger({"function_id": "iii::queue::redrive", "payload": {"queue": "fast"}})
    assert redriven == {"queue": "fast", "redriven": 1}
    wait_for(lambda: _stats(client)["delivered"] == 1)
    assert len(calls) == 4 and _stats(client)["dlq_depth"] == 0


def test_unknown_queue_raises_enqueue_error(client: iii.III) -> None:
    with pytest.raises(IIIInvocationError) as info:
        enqueue(client, "jobs::any", 1, queue="nope")
    assert info.value.code == "enqueue_error"
    assert info.value.message == "queue_not_found: Queue 'nope' not found"


def _stats(client: iii.III) -> dict[str, Any]:
    result: dict[str, Any] = client.trigger(
        {"function_id": "engine::queue::topic_stats", "payload": {"topic": "fast"}}
    )
    return result


def _registered(client: iii.III, function_id: str) -> bool:
    listed = client.trigger({"function_id": "engine::functions::list", "payload": {}})
    return any(f["function_id"] == function_id for f in listed["functions"])


def test_sdk_registers_subscribe_durable_and_cron_triggers(client: iii.III) -> None:
    """``register_trigger`` with the documented configs (builtins.md §7.3, §8, §9)."""
    events: list[tuple[str, Any]] = []
    lock = threading.Lock()

    def recorder(kind: str) -> Any:
        def handler(data: Any) -> None:
            with lock:
                events.append((kind, data))

        return handler

    client.register_function("t::sub", recorder("subscribe"))
    client.register_function("t::durable", recorder("durable"))
    client.register_function("t::cron", recorder("cron"))
    client.register_trigger(
        {"type": "subscribe", "function_id": "t::sub", "config": {"topic": "a"}}
    )
    client.register_trigger(
        {
            "type": "durable:subscriber",
            "function_id": "t::durable",
            "config": {"topic": "b", "queue_config": {"maxRetries": 0}},
        }
    )
    cron = client.register_trigger(
        {"type": "cron", "function_id": "t::cron", "config": {"expression": "* * * * * *"}}
    )
    wait_for(lambda: _registered(client, "t::cron"))

    def kinds() -> set[str]:
        with lock:
            return {kind for kind, _ in events}

    deadline = time.monotonic() + 10
    while kinds() != {"subscribe", "durable", "cron"}:  # triggers are fire-and-forget frames
        assert time.monotonic() < deadline, events
        client.trigger({"function_id": "publish", "payload": {"topic": "a", "data": 1}})
        client.trigger(
            {"function_id": "iii::durable::publish", "payload": {"topic": "b", "data": 2}}
        )
        time.sleep(0.1)
    with lock:
        payloads = {kind: data for kind, data in events}
    assert payloads["subscribe"] == 1 and payloads["durable"] == 2
    assert payloads["cron"]["trigger"] == "cron" and payloads["cron"]["job_id"] == cron.id
