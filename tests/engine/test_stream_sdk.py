"""The SDK's typed stream/state helpers (seed 003): exact wire shapes, and our SDK driving the
engine's ``state``/``stream`` functions and triggers with them; ``create_stream`` with an
``IStream``."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
import websockets

import iii
from iii import InitOptions, register_worker
from iii.helpers import create_stream
from iii.state import (
    StateDeleteResult,
    StateEventData,
    StateEventType,
    StateSetInput,
    StateSetResult,
    StateTriggerConfig,
    StateUpdateInput,
    StateUpdateResult,
)
from iii.stream import (
    IStream,
    StreamChangeEvent,
    StreamDeleteInput,
    StreamDeleteResult,
    StreamGetInput,
    StreamJoinLeaveEvent,
    StreamListGroupsInput,
    StreamListInput,
    StreamSetInput,
    StreamSetResult,
    StreamTriggerConfig,
    StreamUpdateInput,
    StreamUpdateResult,
    UpdateAppend,
    UpdateDecrement,
    UpdateIncrement,
    UpdateMerge,
    UpdateOpError,
    UpdateRemove,
    UpdateSet,
)
from iii_asgi.engine import EngineThread
from tests.helpers import wait_for

#: Every test here runs over the WebSocket and over the in-process transport.
pytestmark = pytest.mark.usefixtures("transport")

T = TypeVar("T")


@pytest.fixture
def client(engine: EngineThread) -> Iterator[iii.III]:
    worker = register_worker(engine.url, InitOptions(worker_name="typed"))
    yield worker
    worker.shutdown()


def test_update_ops_serialise_to_the_wire_shapes() -> None:
    ops = [
        UpdateSet(path="a", value=None),
        UpdateMerge(value={"x": 1}),
        UpdateMerge(path=["p", "q"], value={}),
        UpdateIncrement(path="n", by=2),
        UpdateDecrement(path="n", by=1),
        UpdateAppend(value="s"),
        UpdateAppend(path="l", value=1),
        UpdateRemove(path="gone"),
    ]
    assert [op.model_dump() for op in ops] == [
        {"type": "set", "path": "a", "value": None},
        {"type": "merge", "value": {"x": 1}},
        {"type": "merge", "path": ["p", "q"], "value": {}},
        {"type": "increment", "path": "n", "by": 2},
        {"type": "decrement", "path": "n", "by": 1},
        {"type": "append", "value": "s"},
        {"type": "append", "path": "l", "value": 1},
        {"type": "remove", "path": "gone"},
    ]
    parsed = StreamUpdateInput.model_validate(
        {
            "stream_name": "s",
            "group_id": "g",
            "item_id": "i",
            "ops": [op.model_dump() for op in ops],
        }
    )
    assert [type(op) for op in parsed.ops] == [type(op) for op in ops]
    assert StreamUpdateResult[Any](new_value=1).model_dump() == {"old_value": None, "new_value": 1}
    with_errors = StreamUpdateResult[Any](
        new_value=1, errors=[UpdateOpError(op_index=0, code="c", message="m", doc_url="u")]
    )
    assert with_errors.model_dump()["errors"] == [
        {"op_index": 0, "code": "c", "message": "m", "doc_url": "u"}
    ]
    assert json.loads(StateUpdateResult[Any](new_value={}).model_dump_json()) == {
        "old_value": None,
        "new_value": {},
    }


def test_state_helpers_against_the_engine(client: iii.III) -> None:
    events = collect(
        client,
        "typed::on_state",
        "state",
        StateTriggerConfig(scope="profiles"),
        StateEventData[Any].model_validate,
    )
    raw = client.trigger(
        {
            "function_id": "state::set",
            "payload": StateSetInput(scope="profiles", key="p1", value={"visits": 0}),
        }
    )
    assert StateSetResult[Any].model_validate(raw) == StateSetResult[Any](new_value={"visits": 0})
    update = StateUpdateInput(
        scope="profiles",
        key="p1",
        ops=[
            UpdateIncrement(path="visits", by=2),
            UpdateAppend(path=["tags", "all"], value="x"),
            UpdateMerge(value=[]),
        ],
    )
    result = StateUpdateResult[Any].model_validate(
        client.trigger({"function_id": "state::update", "payload": update})
    )
    assert result.new_value == {"visits": 2, "tags": {"all": ["x"]}}
    assert [e.code for e in result.errors] == ["merge.value.not_an_object"]
    deleted = client.trigger(
        {"function_id": "state::delete", "payload": {"scope": "profiles", "key": "p1"}}
    )
    assert StateDeleteResult(old_value=deleted).old_value == {"visits": 2, "tags": {"all": ["x"]}}
    wait_for(lambda: len(events) == 3)
    assert [e.event_type for e in events] == [
        StateEventType.CREATED,
        StateEventType.UPDATED,
        StateEventType.DELETED,
    ]
    assert events[1].old_value == {"visits": 0}


def collect(
    client: iii.III, function_id: str, trigger_type: str, config: Any, parse: Callable[[Any], T]
) -> list[T]:
    """Bind ``function_id`` to a ``trigger_type`` trigger; the list fills with its payloads,
    parsed. Returns once the binding is in."""
    received: list[T] = []
    client.register_function(function_id, lambda data: received.append(parse(data)))
    client.register_trigger({"type": trigger_type, "function_id": function_id, "config": config})
    wait_for(lambda: trigger_type in bound_types(client))
    return received


def bound_types(client: iii.III) -> list[str]:
    """Trigger types with a binding (``register_trigger`` sends its frame asynchronously)."""
    listed = client.trigger({"function_id": "engine::registered-triggers::list", "payload": {}})
    return [t["trigger_type"] for t in listed["registered_triggers"]]


def test_stream_helpers_against_the_engine(client: iii.III) -> None:
    changes = collect(
        client,
        "typed::on_stream",
        "stream",
        StreamTriggerConfig(stream_name="todo"),
        StreamChangeEvent.model_validate,
    )
    set_result = client.trigger(
        {
            "function_id": "stream::set",
            "payload": StreamSetInput(
                stream_name="todo", group_id="g", item_id="t1", data={"n": 1}
            ),
        }
    )
    assert StreamSetResult[Any].model_validate(set_result).new_value == {"n": 1}
    updated = client.trigger(
        {
            "function_id": "stream::update",
            "payload": StreamUpdateInput(
                stream_name="todo",
                group_id="g",
                item_id="t1",
                ops=[UpdateDecrement(path="n", by=3)],
            ),
        }
    )
    assert StreamUpdateResult[Any].model_validate(updated).new_value == {"n": -2}
    got = client.trigger(
        {
            "function_id": "stream::get",
            "payload": StreamGetInput(stream_name="todo", group_id="g", item_id="t1"),
        }
    )
    assert got == {"n": -2}
    assert client.trigger(
        {
            "function_id": "stream::list",
            "payload": StreamListInput(stream_name="todo", group_id="g"),
        }
    ) == [{"n": -2}]
    assert client.trigger(
        {"function_id": "stream::list_groups", "payload": StreamListGroupsInput(stream_name="todo")}
    ) == ["g"]
    removed = client.trigger(
        {
            "function_id": "stream::delete",
            "payload": StreamDeleteInput(stream_name="todo", group_id="g", item_id="t1"),
        }
    )
    assert StreamDeleteResult.model_validate(removed).old_value == {"n": -2}
    wait_for(lambda: len(changes) == 3)
    assert [(c.streamName, c.groupId, c.id, c.event.type, c.event.data) for c in changes] == [
        ("todo", "g", "t1", "create", {"n": 1}),
        ("todo", "g", "t1", "update", {"n": -2}),
        ("todo", "g", "t1", "delete", {"n": -2}),
    ]


def test_create_stream_serves_a_custom_stream(engine: EngineThread, client: iii.III) -> None:
    with pytest.warns(FutureWarning, match="IStream is deprecated"):

        class Memory(IStream[Any]):
            def __init__(self) -> None:
                self.items: dict[tuple[str, str], Any] = {}
                self.lock = threading.Lock()

            async def get(self, input: StreamGetInput) -> Any:
                return self.items.get((input.group_id, input.item_id))

            async def set(self, input: StreamSetInput) -> StreamSetResult[Any]:
                old = self.items.get((input.group_id, input.item_id))
                self.items[(input.group_id, input.item_id)] = input.data
                return StreamSetResult[Any](old_value=old, new_value=input.data)

            async def delete(self, input: StreamDeleteInput) -> StreamDeleteResult:
                return StreamDeleteResult(
                    old_value=self.items.pop((input.group_id, input.item_id), None)
                )

            async def list(self, input: StreamListInput) -> list[Any]:
                return [v for (g, _), v in self.items.items() if g == input.group_id]

            async def list_groups(self, input: StreamListGroupsInput) -> list[str]:
                return sorted({g for g, _ in self.items})

            async def update(self, input: StreamUpdateInput) -> StreamUpdateResult[Any] | None:
                raise NotImplementedError

    memory = Memory()
    with pytest.warns(FutureWarning, match="create_stream is deprecated"):
        create_stream(client, "mem", memory)
    wait_for(lambda: ("default", "stream::list_groups(mem)") in engine.core.registry.functions)

    async def browser() -> list[Any]:
        async with websockets.connect(engine.stream_url) as ws:
            await ws.send(
                json.dumps(
                    {
                        "type": "join",
                        "data": {"subscriptionId": "s", "streamName": "mem", "groupId": "g"},
                    }
                )
            )
            frames = [json.loads(await asyncio.wait_for(ws.recv(), 5))["event"]]
            await asyncio.to_thread(
                client.trigger,
                {
                    "function_id": "stream::set",
                    "payload": {"stream_name": "mem", "group_id": "g", "item_id": "a", "data": 1},
                },
            )
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), 5))["event"])
            return frames

    frames = asyncio.run(browser())
    assert frames == [
        {"type": "sync", "data": []},
        {"type": "create", "data": 1},
    ]  # via the custom stream
    assert memory.items == {("g", "a"): 1}
    assert (
        client.trigger(
            {
                "function_id": "stream::get",
                "payload": {"stream_name": "mem", "group_id": "g", "item_id": "a"},
            }
        )
        == 1
    )
    assert client.trigger(
        {"function_id": "stream::list_groups", "payload": {"stream_name": "mem"}}
    ) == ["g"]
    deleted = client.trigger(
        {
            "function_id": "stream::delete",
            "payload": {"stream_name": "mem", "group_id": "g", "item_id": "a"},
        }
    )
    assert deleted == {"old_value": 1}
    assert (
        engine.run(engine.workers.storage.list_spaces("stream:")) == []
    )  # the store was never used


def test_join_leave_event_model() -> None:
    event = StreamJoinLeaveEvent.model_validate(
        {
            "subscription_id": "s",
            "stream_name": "n",
            "group_id": "g",
            "id": None,
            "context": {"u": 1},
        }
    )
    assert event.model_dump() == {
        "subscription_id": "s",
        "stream_name": "n",
        "group_id": "g",
        "id": None,
        "context": {"u": 1},
    }
