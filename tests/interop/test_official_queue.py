"""The official ``iii-sdk==0.25.0`` using TriggerAction.Enqueue against our engine: receipts,
asynchronous runs with retries, the dead-letter functions, pubsub and an unknown queue
(builtins.md §7, §8)."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest

from tests.official import run_official

pytestmark = pytest.mark.interop

OFFICIAL_QUEUE_WORKER = textwrap.dedent(
    """
    import json, sys, threading, time
    from iii import register_worker, TriggerAction, InitOptions
    from iii.errors import InvocationError

    client = register_worker(options=InitOptions(worker_name="official-queue"))
    attempts = {}

    def out(tag, value):  # one write per line: stderr (handler tracebacks) shares the pipe
        sys.stdout.write(tag + " " + json.dumps(value) + "\\n")
        sys.stdout.flush()

    done = threading.Event()

    def job(data):
        n = attempts[data["n"]] = attempts.get(data["n"], 0) + 1
        out("CALL", {"n": data["n"], "attempt": n})
        if n == 1:
            raise RuntimeError("first attempt fails")
        return "ok"

    def on_event(data):
        if not done.is_set():
            done.set()
            out("EVENT", data)

    client.register_function("official::job", job)
    client.register_function("official::on_event", on_event)
    client.register_trigger({"type": "subscribe", "function_id": "official::on_event",
                             "config": {"topic": "news"}})

    def attempt(request):
        try:
            return {"ok": client.trigger(request)}
        except InvocationError as exc:
            return {"code": exc.code, "message": exc.message}

    for n in range(3):
        result = attempt({"function_id": "official::job", "payload": {"n": n},
                          "action": TriggerAction.Enqueue(queue="interop")})
        out("RECEIPT", result)
    out("UNKNOWN", attempt({"function_id": "official::job", "payload": {},
                            "action": TriggerAction.Enqueue(queue="nope")}))
    # the subscription is a fire-and-forget frame: publish until it has been seen once
    for _ in range(600):
        published = attempt({"function_id": "publish",
                             "payload": {"topic": "news", "data": {"x": 1}}})
        if done.wait(0.2):
            break
    out("PUBLISH", published)
    while True:
        time.sleep(1)
    """
)


def tagged(line: str) -> Any:
    return json.loads(line.split(" ", 1)[1])


def test_official_worker_enqueues_and_consumes(engine_factory: Any) -> None:
    from iii_asgi.engine.config.queue import QueueConfig

    engine = engine_factory(queues={"interop": QueueConfig(max_retries=3, backoff_ms=50)})
    with run_official(OFFICIAL_QUEUE_WORKER, engine.url) as official:
        receipts = [tagged(official.wait_for("RECEIPT")) for _ in range(3)]
        for receipt in receipts:
            assert set(receipt["ok"]) == {"messageReceiptId"}, receipt
        assert len({r["ok"]["messageReceiptId"] for r in receipts}) == 3
        assert tagged(official.wait_for("UNKNOWN")) == {
            "code": "enqueue_error",
            "message": "queue_not_found: Queue 'nope' not found",
        }
        assert tagged(official.wait_for("PUBLISH")) == {"ok": None}

        def seen(tag: str) -> list[Any]:  # every line so far, including those read above
            return [tagged(line) for line in official.lines if line.startswith(tag + " ")]

        while len(seen("CALL")) < 6 or not seen("EVENT"):
            assert official.readline() is not None, official.lines
        calls: list[dict[str, int]] = seen("CALL")
        assert seen("EVENT") == [{"x": 1}]
        for n in range(3):  # each message: a failed attempt, then a successful retry
            assert [c["attempt"] for c in calls if c["n"] == n] == [1, 2]

        stats = engine.run(_stats(engine))
        assert stats["dlq_depth"] == 0


async def _stats(engine: Any) -> Any:
    from iii_asgi.engine.core.registry import CallContext

    entry = engine.core.registry.functions[("default", "engine::queue::topic_stats")]
    return await entry.handler(CallContext(None, None), {"topic": "interop"})
