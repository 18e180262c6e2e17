"""A second worker for the console's browser tests: ``python helper_worker.py <engine ws url>``.

It gives the console something of every kind to show: a function that fails while the state
item ``console-test/flaky`` is ``"fail"`` (dead letters, then a redrive), a state reader behind
an HTTP route (a worker reading back what the console wrote), log records, and bindings of every
built-in trigger type plus a custom trigger type it provides itself. Runs until killed.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

from iii import InitOptions, TriggerHandler, register_worker
from iii.observability import Logger

SCOPE = "console-test"


class Webhooks(TriggerHandler):
    """A custom trigger type (``console-test:webhook``): keeps the bindings, never fires."""

    def __init__(self) -> None:
        self.bindings: dict[str, Any] = {}

    async def register_trigger(self, config: Any) -> None:
        self.bindings[config.id] = config

    async def unregister_trigger(self, config: Any) -> None:
        self.bindings.pop(config.id, None)


def main(url: str) -> None:
    client = register_worker(url, InitOptions(worker_name="console-helper"))
    log = Logger(service_name="console-helper")

    async def flaky(data: Any) -> Any:
        mode = await client.trigger_async(
            {"function_id": "state::get", "payload": {"scope": SCOPE, "key": "flaky"}}
        )
        if mode == "fail":
            log.error("flaky: failing on purpose", {"order": str(data)})
            raise RuntimeError("flaky: failing on purpose")
        log.info("flaky: processed", {"order": str(data)})
        await client.trigger_async(
            {
                "function_id": "state::set",
                "payload": {"scope": SCOPE, "key": "processed", "value": data},
            }
        )
        return {"processed": data}

    async def read_state(request: dict[str, Any]) -> dict[str, Any]:
        query = request.get("query_params") or {}

        def one(name: str) -> str:
            value = query.get(name)
            return str(value[0] if isinstance(value, list) else value)

        value = await client.trigger_async(
            {"function_id": "state::get", "payload": {"scope": one("scope"), "key": one("key")}}
        )
        log.info("read state", {"scope": one("scope"), "key": one("key")})
        return {"status_code": 200, "body": {"value": value}}

    async def on_state(event: dict[str, Any]) -> None:
        await client.trigger_async(
            {
                "function_id": "state::set",
                "payload": {"scope": "console-events", "key": event["key"], "value": event},
            }
        )

    def noop(data: Any) -> None:
        return None

    client.register_function("helper::flaky", flaky, description="Fails while flaky is 'fail'")
    client.register_function("helper::read_state", read_state, description="Reads a state item")
    client.register_function("helper::on_state", on_state, description="Records state events")
    for name in ("tick", "on_topic", "on_durable", "on_stream", "on_webhook"):
        client.register_function(f"helper::{name}", noop)
    client.register_trigger_type(
        {"id": "console-test:webhook", "description": "Webhooks (a custom trigger type)"},
        Webhooks(),
    )
    triggers = [
        ("http", "helper::read_state", {"api_path": "/helper/state", "http_method": "GET"}),
        ("cron", "helper::tick", {"expression": "0 0 * * * *"}),
        ("state", "helper::on_state", {"scope": SCOPE}),
        ("subscribe", "helper::on_topic", {"topic": "console-news"}),
        ("durable:subscriber", "helper::on_durable", {"topic": "console-orders"}),
        ("stream", "helper::on_stream", {"stream_name": "console-stream"}),
        ("console-test:webhook", "helper::on_webhook", {"url": "/hooks/github"}),
    ]
    for kind, function_id, config in triggers:
        client.register_trigger({"type": kind, "function_id": function_id, "config": config})
    print("helper ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    client.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
