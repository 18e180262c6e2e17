"""A worker written only against the official iii-sdk / iii-helpers 0.25 import paths.

``tests/interop/test_dropin.py`` runs this file unchanged under the official SDK and under ours
(each in its own interpreter) against our embedded engine and compares what it serves. It uses:
``register_worker`` / ``IIIClient``, ``iii.iii.III``, an ``http(...)`` streaming route and a
buffered ``HttpResponse``, a custom trigger type (``iii.trigger.TriggerHandler[Cfg]``), a custom
stream (``IStream`` with ``iii_helpers.stream`` models), a ``state`` trigger, a ``subscribe``
(pubsub) trigger and ``iii.engine`` ids. It prints ``READY`` once everything is registered,
then serves until killed.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

from pydantic import BaseModel

from iii import IIIClient, InitOptions, IStream, register_worker
from iii.engine import EngineFunctions, EngineTriggers
from iii.helpers import create_stream
from iii.iii import III
from iii.protocol import RegisterTriggerTypeInput
from iii.trigger import TriggerConfig, TriggerHandler
from iii.types import StreamRequest, StreamResponse
from iii_helpers.http import HttpRequest, HttpResponse, http
from iii_helpers.stream import (
    StreamDeleteInput,
    StreamDeleteResult,
    StreamGetInput,
    StreamListGroupsInput,
    StreamListInput,
    StreamSetInput,
    StreamSetResult,
    StreamUpdateInput,
    StreamUpdateResult,
)

warnings.simplefilter("ignore", DeprecationWarning)  # register_trigger* are deprecated in 0.25
warnings.simplefilter("ignore", FutureWarning)  # and so are IStream / create_stream

iii: IIIClient = register_worker(options=InitOptions(worker_name="dropin-e2e"))
assert isinstance(iii, III)
seen: dict[str, list[Any]] = {"state": [], "pubsub": [], "tick": []}


def public(data: Any) -> Any:
    """``data`` without the keys the engine adds to a payload (``_caller_worker_id``)."""
    if isinstance(data, dict):
        return {key: value for key, value in data.items() if not key.startswith("_")}
    return data


def bind(trigger_type: str, function_id: str, config: dict[str, Any]) -> None:
    iii.register_trigger({"type": trigger_type, "function_id": function_id, "config": config})


# -- HTTP: a streamed response through http(), and a buffered HttpResponse -----------------------


async def echo(req: StreamRequest, res: StreamResponse) -> None:
    body = await req.request_body.read_all()
    await res.status(201)
    await res.headers({"content-type": "text/plain", "x-name": req.path_params["name"]})
    await res.writer.write(b"hello " + req.path_params["name"].encode() + b": ")
    await res.writer.write(body[::-1])
    await res.writer.close_async()


def hello(data: dict[str, Any]) -> dict[str, Any]:
    request = HttpRequest.model_validate(data)
    response = HttpResponse(status_code=202, body={"query": request.query_params})
    return response.model_dump()


iii.register_function("dropin::echo", http(echo))
bind("http", "dropin::echo", {"api_path": "/dropin/:name", "http_method": "POST"})
iii.register_function("dropin::hello", hello)
bind("http", "dropin::hello", {"api_path": "/dropin-hello", "http_method": "GET"})


# -- a custom trigger type ------------------------------------------------------------------------


class TickConfig(BaseModel):
    label: str


class Ticks(TriggerHandler[TickConfig]):
    def __init__(self) -> None:
        self.configs: dict[str, TriggerConfig[TickConfig]] = {}

    async def register_trigger(self, config: TriggerConfig[TickConfig]) -> None:
        self.configs[config.id] = config

    async def unregister_trigger(self, config: TriggerConfig[TickConfig]) -> None:
        self.configs.pop(config.id, None)


ticks = Ticks()
iii.register_trigger_type(
    RegisterTriggerTypeInput(id="dropin-tick", description="on demand"), ticks
)


async def on_tick(data: dict[str, Any]) -> dict[str, Any]:
    seen["tick"].append(public(data))
    return {"ticked": data["label"], "n": data["n"]}


async def fire(data: dict[str, Any]) -> list[Any]:
    results = []
    for config in list(ticks.configs.values()):
        label = TickConfig.model_validate(config.config).label
        payload = {"label": label, "n": data["n"]}
        results.append(
            await iii.trigger_async({"function_id": config.function_id, "payload": payload})
        )
    return results


iii.register_function("dropin::on_tick", on_tick)
iii.register_function("dropin::fire", fire)
bind("dropin-tick", "dropin::on_tick", {"label": "a"})


# -- a custom stream ------------------------------------------------------------------------------


class Memory(IStream[Any]):
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Any] = {}

    async def get(self, input: StreamGetInput) -> Any:
        return self.items.get((input.group_id, input.item_id))

    async def set(self, input: StreamSetInput) -> StreamSetResult[Any]:
        old = self.items.get((input.group_id, input.item_id))
        self.items[(input.group_id, input.item_id)] = input.data
        return StreamSetResult(old_value=old, new_value=input.data)

    async def delete(self, input: StreamDeleteInput) -> StreamDeleteResult:
        return StreamDeleteResult(old_value=self.items.pop((input.group_id, input.item_id), None))

    async def list(self, input: StreamListInput) -> list[Any]:
        return [value for (group, _), value in self.items.items() if group == input.group_id]

    async def list_groups(self, input: StreamListGroupsInput) -> list[str]:
        return sorted({group for group, _ in self.items})

    async def update(self, input: StreamUpdateInput) -> StreamUpdateResult[Any] | None:
        return None


create_stream(iii, "dropin-mem", Memory())


# -- a state trigger and a pubsub subscriber ------------------------------------------------------


async def on_state(data: dict[str, Any]) -> None:
    keys = ("event_type", "scope", "key", "old_value", "new_value")
    seen["state"].append({key: data.get(key) for key in keys})


def on_topic(data: Any) -> None:  # a sync handler
    seen["pubsub"].append(public(data))


async def on_functions(data: Any) -> None:
    return None


iii.register_function("dropin::on_state", on_state)
bind("state", "dropin::on_state", {"scope": "dropin"})
iii.register_function("dropin::on_topic", on_topic)
bind("subscribe", "dropin::on_topic", {"topic": "dropin-topic"})
iii.register_function("dropin::on_functions", on_functions)
bind(EngineTriggers.FUNCTIONS_AVAILABLE, "dropin::on_functions", {})


async def report(data: Any) -> dict[str, Any]:
    listed = await iii.trigger_async({"function_id": EngineFunctions.LIST_FUNCTIONS, "payload": {}})
    ids = sorted(f["function_id"] for f in listed["functions"] if "dropin" in f["function_id"])
    return {**seen, "pubsub": sorted(seen["pubsub"], key=repr), "functions": ids}


iii.register_function("dropin::report", report)
print("READY", flush=True)
threading.Event().wait()
