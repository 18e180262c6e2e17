"""The stream built-in through real sockets (builtins.md §6.1–§6.3): functions, errors, the
camelCase ``stream`` trigger, custom-stream overrides."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from engine_wire import Wire

from iii_asgi.engine import EngineThread
from tests.helpers import wait_until

pytestmark = pytest.mark.adapters

TODO = {"stream_name": "todo", "group_id": "inbox"}


async def item(wire: Wire, item_id: str, data: Any) -> Any:
    return await wire.result("stream::set", {**TODO, "item_id": item_id, "data": data})


async def test_functions(engine: EngineThread) -> None:
    wire = await Wire.connect(engine.url)
    assert await item(wire, "a", {"t": "A"}) == {"old_value": None, "new_value": {"t": "A"}}
    assert await item(wire, "b", 2) == {"old_value": None, "new_value": 2}
    assert await item(wire, "a", {"t": "A2"}) == {"old_value": {"t": "A"}, "new_value": {"t": "A2"}}
    assert await wire.result("stream::get", {**TODO, "item_id": "a"}) == {"t": "A2"}
    assert await wire.result("stream::get", {**TODO, "item_id": "zz"}) is None
    assert await wire.result("stream::list", TODO) == [{"t": "A2"}, 2]  # no ids, insertion order
    assert await wire.result("stream::list", {**TODO, "group_id": "none"}) == []
    await wire.result("stream::set", {**TODO, "group_id": "archive", "item_id": "x", "data": 1})
    await wire.result(
        "stream::set", {"stream_name": "chat", "group_id": "g", "item_id": "m", "data": 1}
    )
    groups = await wire.result("stream::list_groups", {"stream_name": "todo"})
    assert sorted(groups) == ["archive", "inbox"]  # a bare array (§6.1)
    assert await wire.result("stream::list_groups", {"stream_name": "nope"}) == []
    assert await wire.result("stream::list_all", {}) == {
        "stream": [{"id": "chat", "groups": ["g"]}, {"id": "todo", "groups": ["archive", "inbox"]}],
        "count": 2,
    }
    updated = await wire.result(
        "stream::update",
        {
            **TODO,
            "item_id": "a",
            "ops": [
                {"type": "set", "path": "done", "value": True},
                {"type": "remove", "path": "__proto__"},
            ],
        },
    )
    assert updated == {
        "old_value": {"t": "A2"},
        "new_value": {"t": "A2", "done": True},
        "errors": [
            {
                "op_index": 1,
                "code": "remove.path.proto_polluted",
                "message": updated["errors"][0]["message"],
                "doc_url": "https://iii.dev/docs/workers/iii-state#error-codes",
            }
        ],
    }
    fresh = await wire.result(
        "stream::update",
        {**TODO, "item_id": "n", "ops": [{"type": "increment", "path": "c", "by": 1}]},
    )
    assert fresh == {"old_value": None, "new_value": {"c": 1}}
    assert await wire.result("stream::delete", {**TODO, "item_id": "a"}) == {
        "old_value": {"t": "A2", "done": True}
    }
    assert await wire.result("stream::delete", {**TODO, "item_id": "a"}) == {"old_value": None}
    assert await wire.result("stream::send", {**TODO, "type": "typing", "data": {"u": 1}}) is None


@pytest.mark.parametrize(
    ("function_id", "data", "detail"),
    [
        ("stream::set", {**TODO, "item_id": "a"}, "missing field `data`"),
        (
            "stream::set",
            {"group_id": "g", "item_id": "a", "data": 1},
            "missing field `stream_name`",
        ),
        ("stream::get", {**TODO}, "missing field `item_id`"),
        ("stream::delete", {**TODO, "item_id": 3}, "invalid type for `item_id`"),
        ("stream::list", {"stream_name": "todo"}, "missing field `group_id`"),
        ("stream::list_groups", {}, "missing field `stream_name`"),
        ("stream::list_all", [], "expected an object"),
        ("stream::send", {**TODO, "data": 1}, "missing field `type`"),
        ("stream::send", {**TODO, "type": "t"}, "missing field `data`"),
        ("stream::update", {**TODO, "item_id": "a"}, "missing field `ops`"),
        (
            "stream::update",
            {**TODO, "item_id": "a", "ops": [{"type": "decrement", "path": "n", "by": "1"}]},
            "expected i64",
        ),
    ],
)
async def test_bad_input(engine: EngineThread, function_id: str, data: Any, detail: str) -> None:
    wire = await Wire.connect(engine.url)
    frame = await wire.call(function_id, data)
    assert frame["error"]["code"] == "deserialization_error"
    assert detail in frame["error"]["message"]


async def test_adapter_failures_map_to_error_codes(engine: EngineThread) -> None:
    wire = await Wire.connect(engine.url)
    engine.run(engine.workers.stream.storage.close())
    cases = [
        ("stream::set", {**TODO, "item_id": "a", "data": 1}, "STREAM_SET_ERROR"),
        ("stream::get", {**TODO, "item_id": "a"}, "STREAM_GET_ERROR"),
        ("stream::delete", {**TODO, "item_id": "a"}, "STREAM_DELETE_ERROR"),
        ("stream::list", TODO, "STREAM_GET_GROUP_ERROR"),
        ("stream::list_groups", {"stream_name": "todo"}, "STREAM_LIST_GROUPS_ERROR"),
        ("stream::list_all", {}, "STREAM_LIST_ALL_ERROR"),
        ("stream::update", {**TODO, "item_id": "a", "ops": []}, "STREAM_UPDATE_ERROR"),
    ]
    for function_id, data, code in cases:
        frame = await wire.call(function_id, data)
        assert (function_id, frame["error"]["code"]) == (function_id, code)
    engine.run(engine.workers.stream.storage.open())


# -- the stream trigger (§6.2) -------------------------------------------------------------------


async def bound(
    engine: EngineThread, function_id: str, trigger_type: str = "stream", **config: Any
) -> Wire:
    worker = await Wire.connect(engine.url, name=function_id)
    await worker.send({"type": "registerfunction", "id": function_id})
    await worker.send(
        {
            "type": "registertrigger",
            "id": f"t-{function_id}",
            "trigger_type": trigger_type,
            "function_id": function_id,
            "config": config,
        }
    )
    await worker.sync()
    return worker


def event_of(call: dict[str, Any]) -> tuple[Any, ...]:
    data = call["data"]
    assert data["type"] == "stream" and isinstance(data["timestamp"], int)
    return (data["streamName"], data["groupId"], data["id"], data["event"])


async def test_trigger_payloads(engine: EngineThread) -> None:
    worker = await bound(engine, "on::todo", stream_name="todo")
    wire = await Wire.connect(engine.url)
    await item(wire, "a", 1)
    await item(wire, "a", 2)
    await wire.result(
        "stream::update", {**TODO, "item_id": "a", "ops": [{"type": "set", "path": "", "value": 3}]}
    )
    await wire.result("stream::delete", {**TODO, "item_id": "a"})
    await wire.result("stream::delete", {**TODO, "item_id": "a"})  # missing: no event (§6.1)
    await wire.result("stream::send", {**TODO, "type": "ping", "data": {"x": 1}})
    await wire.result("stream::send", {**TODO, "id": "a", "type": "pong", "data": None})
    await wire.result(
        "stream::set", {"stream_name": "other", "group_id": "g", "item_id": "a", "data": 1}
    )
    events = [event_of(await worker.serve_one()) for _ in range(6)]
    assert events == [
        ("todo", "inbox", "a", {"type": "create", "data": 1}),
        ("todo", "inbox", "a", {"type": "update", "data": 2}),
        ("todo", "inbox", "a", {"type": "update", "data": 3}),
        ("todo", "inbox", "a", {"type": "delete", "data": 3}),
        ("todo", "inbox", None, {"type": "event", "event": {"type": "ping", "data": {"x": 1}}}),
        ("todo", "inbox", "a", {"type": "event", "event": {"type": "pong", "data": None}}),
    ]
    await worker.silent()


async def test_trigger_filters_and_condition(engine: EngineThread) -> None:
    conditions = await Wire.connect(engine.url, name="cond")
    await conditions.send({"type": "registerfunction", "id": "cond::odd"})
    await conditions.sync()
    by_item = await bound(engine, "on::item", stream_name="todo", group_id="inbox", item_id="b")
    by_group = await bound(engine, "on::group", stream_name="todo", group_id="archive", item_id="")
    conditional = await bound(
        engine, "on::cond", stream_name="todo", condition_function_id="cond::odd"
    )
    wire = await Wire.connect(engine.url)
    await item(wire, "a", 1)
    await item(wire, "b", 2)
    await wire.result("stream::set", {**TODO, "group_id": "archive", "item_id": "z", "data": 3})

    def odd(data: Any) -> bool:
        return bool(data["event"]["data"] % 2 == 1)

    # one binding's events are delivered one at a time: condition, handler, next condition...
    await conditions.serve_one(odd)  # 1: true
    assert event_of(await conditional.serve_one())[3]["data"] == 1
    await conditions.serve_one(odd)  # 2: false, skipped
    await conditions.serve_one(odd)  # 3: true
    assert event_of(await conditional.serve_one())[3]["data"] == 3
    assert event_of(await by_item.serve_one())[2] == "b"
    assert event_of(await by_group.serve_one())[:3] == ("todo", "archive", "z")
    await by_item.silent()
    await conditional.silent(0.1)


async def test_trigger_requires_stream_name(engine: EngineThread) -> None:
    worker = await Wire.connect(engine.url, name="bad")
    for config in ({}, {"stream_name": 3}, "x"):
        await worker.send(
            {
                "type": "registertrigger",
                "id": "bad",
                "trigger_type": "stream",
                "function_id": "f",
                "config": config,
            }
        )
        result = await worker.recv_type("triggerregistrationresult")
        assert result["error"]["code"] == "trigger_registration_failed"


# -- custom streams (§6.1 overrides) ---------------------------------------------------------------


async def test_custom_stream_override(engine: EngineThread) -> None:
    custom = await Wire.connect(engine.url, name="custom")
    for op in ("get", "set", "delete", "list", "list_groups", "update"):
        await custom.send({"type": "registerfunction", "id": f"stream::{op}(mem)"})
    await custom.sync()
    watcher = await bound(engine, "on::mem", stream_name="mem")
    wire = await Wire.connect(engine.url)
    target = {"stream_name": "mem", "group_id": "g", "item_id": "i"}

    async def answer(result: Any) -> dict[str, Any]:
        return await custom.serve_one(lambda data: result)

    call = wire.result("stream::get", target)
    task = asyncio.ensure_future(call)
    forwarded = await answer({"from": "custom"})
    assert forwarded["function_id"] == "stream::get(mem)"
    assert forwarded["data"] == target  # the input, without _caller_worker_id
    assert await task == {"from": "custom"}

    task = asyncio.ensure_future(wire.result("stream::set", {**target, "data": 5}))
    await answer({"old_value": 4, "new_value": 5})
    assert await task == {"old_value": 4, "new_value": 5}
    assert event_of(await watcher.serve_one())[3] == {"type": "update", "data": 5}

    task = asyncio.ensure_future(wire.result("stream::delete", target))
    await answer({"old_value": 5})
    assert await task == {"old_value": 5}
    assert event_of(await watcher.serve_one())[3] == {"type": "delete", "data": 5}

    task = asyncio.ensure_future(wire.result("stream::list_groups", {"stream_name": "mem"}))
    await answer(["g1", "g2"])
    assert await task == ["g1", "g2"]

    task = asyncio.ensure_future(wire.call("stream::list", {"stream_name": "mem", "group_id": "g"}))
    await answer({"not": "a list"})
    assert (await task)["error"]["code"] == "JSON_ERROR"

    task = asyncio.ensure_future(wire.call("stream::update", {**target, "ops": []}))
    await answer(7)
    assert (await task)["error"]["code"] == "JSON_ERROR"
    # nothing reached the store
    assert engine.run(engine.workers.stream.storage.list_spaces("stream:")) == []


async def test_join_leave_bindings_are_kept(engine: EngineThread) -> None:
    await bound(engine, "on::join", "stream:join", ignored=True)
    await bound(engine, "on::leave", "stream:leave")
    streams = engine.workers.stream
    await wait_until(lambda: "t-on::join" in streams.join.bindings)
    assert list(streams.leave.bindings) == ["t-on::leave"]
