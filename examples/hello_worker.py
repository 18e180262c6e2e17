"""The main job until the ASGI bridge lands: an embedded engine plus a worker.

Starts the embedded iii engine in this process (unless ``III_URL`` names a running engine),
connects a worker with the SDK, registers a few functions and calls them through the engine,
printing each result. Run: ``python examples/hello_worker.py``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from pydantic import BaseModel

import iii
from iii import InitOptions, TriggerAction, register_worker
from iii.observability import shutdown_otel


class Order(BaseModel):
    item: str
    quantity: int


def add(data: dict[str, int]) -> int:
    """A sync handler: runs in the SDK's handler thread pool."""
    return data["a"] + data["b"]


async def greet(data: dict[str, str]) -> dict[str, str]:
    """An async handler: runs on the SDK's event loop."""
    return {"greeting": f"Hello, {data['name']}!"}


async def place_order(order: Order) -> dict[str, object]:
    """A handler with a pydantic model: the payload is validated into ``Order``."""
    return {"accepted": True, "item": order.item, "total_items": order.quantity}


def fail(data: object) -> None:
    raise ValueError("this function always fails")


@contextlib.contextmanager
def engine_url() -> Iterator[str]:
    if os.environ.get("III_URL"):
        yield os.environ["III_URL"]
        return
    from iii_asgi.engine import EngineConfig, EngineThread

    with EngineThread(EngineConfig(host="127.0.0.1", port=0)) as engine:
        print(f"embedded engine listening on {engine.url}")
        yield engine.url


def main() -> None:
    # The SDK logs every handler exception with its traceback (logger "iii.client"); the demo
    # fails on purpose, so keep its output short.
    logging.getLogger("iii.client").setLevel(logging.CRITICAL)
    with engine_url() as url:
        client = register_worker(url, InitOptions(worker_name="hello-worker"))
        try:
            client.register_function("math::add", add, description="adds a and b")
            client.register_function("hello::greet", greet)
            client.register_function("orders::place", place_order)
            client.register_function("demo::fail", fail)

            print(
                "math::add ->",
                client.trigger({"function_id": "math::add", "payload": {"a": 2, "b": 3}}),
            )
            print(
                "hello::greet ->",
                client.trigger({"function_id": "hello::greet", "payload": {"name": "iii"}}),
            )
            print(
                "orders::place ->",
                client.trigger(
                    {"function_id": "orders::place", "payload": {"item": "book", "quantity": 2}}
                ),
            )
            print(
                "void call ->",
                client.trigger(
                    {
                        "function_id": "hello::greet",
                        "payload": {"name": "x"},
                        "action": TriggerAction.Void(),
                    }
                ),
            )
            try:
                client.trigger({"function_id": "demo::fail", "payload": {}})
            except iii.IIIInvocationError as exc:
                print("demo::fail ->", exc.code, exc.message)
            try:
                client.trigger({"function_id": "nope::missing", "payload": {}})
            except iii.IIIInvocationError as exc:
                print("nope::missing ->", exc.code, exc.message)
            functions = client.trigger({"function_id": "engine::functions::list", "payload": {}})
            print(
                "engine::functions::list ->",
                sorted(f["function_id"] for f in functions["functions"]),
            )
        finally:
            client.shutdown()
            # Telemetry is process-wide and outlives the client: flush it and close its /otel
            # socket while the engine still runs (as `iii-asgi run` does).
            shutdown_otel()


if __name__ == "__main__":
    main()
