"""The client-facing stream WebSocket (builtins.md §6.4) with a real ``websockets`` client
acting as the browser."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
from engine_wire import Wire
from websockets.asyncio.client import ClientConnection

from iii_asgi.engine import EngineThread
from tests.helpers import wait_until

pytestmark = pytest.mark.adapters

TIMEOUT = 5.0
TODO = {"stream_name": "todo", "group_id": "inbox"}


@pytest.fixture
async def browser(engine: EngineThread) -> AsyncIterator[ClientConnection]:
    async with websockets.connect(engine.stream_url) as ws:
        yield ws


async def join(
    ws: ClientConnection, sid: str, item_id: str | None = None, kind: str = "join"
) -> None:
    data = {"subscriptionId": sid, "streamName": "todo", "groupId": "inbox"}
    if item_id is not None:
        data["id"] = item_id
    await ws.send(json.dumps({"type": kind, "data": data}))


async def recv(ws: ClientConnection) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    assert frame["type"] == "stream" and isinstance(frame["timestamp"], int), frame
    return frame


def short(frame: dict[str, Any]) -> tuple[Any, ...]:
    return (frame["streamName"], frame["groupId"], frame["id"], frame["event"])


async def silent(ws: ClientConnection, seconds: float = 0.3) -> None:
    try:
        frame = await asyncio.wait_for(ws.recv(), seconds)
    except asyncio.TimeoutError:
        return
    raise AssertionError(f"unexpected frame {frame}")


async def test_group_subscription_sees_changes_live(
    engine: EngineThread, browser: ClientConnection
) -> None:
    wire = await Wire.connect(engine.url)
    await wire.result("stream::set", {**TODO, "item_id": "old", "data": {"t": 0}})
    await join(browser, "s1")
    assert short(await recv(browser)) == (
        "todo",
        "inbox",
        None,
        {"type": "sync", "data": [{"t": 0}]},
    )
    await wire.result("stream::set", {**TODO, "item_id": "a", "data": {"t": 1}})
    await wire.result("stream::set", {**TODO, "item_id": "a", "data": {"t": 2}})
    await wire.result(
        "stream::update",
        {**TODO, "item_id": "a", "ops": [{"type": "merge", "value": {"done": True}}]},
    )
    await wire.result("stream::delete", {**TODO, "item_id": "a"})
    await wire.result("stream::send", {**TODO, "type": "typing", "data": {"who": "x"}})
    await wire.result("stream::set", {**TODO, "group_id": "other", "item_id": "b", "data": 1})
    frames = [short(await recv(browser)) for _ in range(5)]
    assert frames == [
        ("todo", "inbox", "a", {"type": "create", "data": {"t": 1}}),
        ("todo", "inbox", "a", {"type": "update", "data": {"t": 2}}),
        ("todo", "inbox", "a", {"type": "update", "data": {"t": 2, "done": True}}),
        ("todo", "inbox", "a", {"type": "delete", "data": {"t": 2, "done": True}}),
        (
            "todo",
            "inbox",
            None,
            {"type": "event", "event": {"type": "typing", "data": {"who": "x"}}},
        ),
    ]
    await silent(browser)


async def test_item_subscription_duplicates_and_leave(
    engine: EngineThread, browser: ClientConnection
) -> None:
    wire = await Wire.connect(engine.url)
    await join(browser, "item", item_id="a")
    assert short(await recv(browser))[3] == {"type": "sync", "data": None}
    await join(browser, "group")
    assert short(await recv(browser))[3] == {"type": "sync", "data": []}
    await wire.result("stream::set", {**TODO, "item_id": "b", "data": 1})  # group only
    assert short(await recv(browser))[2] == "b"
    await wire.result("stream::set", {**TODO, "item_id": "a", "data": 2})  # both: two copies
    assert [short(await recv(browser))[2] for _ in range(2)] == ["a", "a"]
    await wire.result("stream::send", {**TODO, "type": "t", "data": 0})  # no id: group only
    assert short(await recv(browser))[2] is None
    await wire.result("stream::send", {**TODO, "id": "a", "type": "t", "data": 0})  # both
    assert [short(await recv(browser))[2] for _ in range(2)] == ["a", "a"]
    await silent(browser, 0.2)
    await join(browser, "group", kind="leave")
    await wait_until(
        lambda: all(len(c.subscriptions) == 1 for c in engine.workers.stream.subscribers or [])
    )
    await wire.result("stream::set", {**TODO, "item_id": "b", "data": 3})  # nobody listens
    await wire.result("stream::set", {**TODO, "item_id": "a", "data": 4})
    assert short(await recv(browser))[2:] == ("a", {"type": "update", "data": 4})


async def test_join_authorisation_and_leave_triggers(engine_factory: Any) -> None:
    engine = engine_factory(stream_auth_function="auth::stream")
    hooks = await Wire.connect(engine.url, name="hooks")
    for fid in ("auth::stream", "on::join", "on::leave"):
        await hooks.send({"type": "registerfunction", "id": fid})
    for fid, kind in (("on::join", "stream:join"), ("on::leave", "stream:leave")):
        await hooks.send(
            {
                "type": "registertrigger",
                "id": fid,
                "trigger_type": kind,
                "function_id": fid,
                "config": {},
            }
        )
    await hooks.sync()
    wire = await Wire.connect(engine.url)
    await wire.result("stream::set", {**TODO, "item_id": "a", "data": 1})
    connecting = asyncio.ensure_future(
        websockets.connect(
            engine.stream_url + "/?token=t1&token=t2", additional_headers={"X-User": "ann"}
        )
    )
    # the auth function runs during the upgrade (before the handshake completes)
    auth = await hooks.serve_one(lambda data: {"context": {"user": data["headers"]["x-user"]}})
    async with await connecting as ws:
        assert auth["data"]["path"] == "/"
        assert auth["data"]["query_params"] == {"token": ["t1", "t2"]}
        assert auth["data"]["addr"].startswith("127.0.0.1:")
        await join(ws, "denied", item_id="a")
        call = await hooks.serve_one(lambda data: {"unauthorized": True})
        assert call["data"] == {
            "subscription_id": "denied",
            "stream_name": "todo",
            "group_id": "inbox",
            "id": "a",
            "context": {"user": "ann"},
        }
        assert short(await recv(ws)) == ("todo", "inbox", "a", {"type": "unauthorized"})
        await join(ws, "ok")
        await hooks.serve_one(lambda data: {"unauthorized": "yes"})  # not a bool: counts as false
        assert short(await recv(ws))[3] == {"type": "sync", "data": [1]}
        await join(ws, "ok2", item_id="a")
        await hooks.serve_one(lambda data: None)
        assert short(await recv(ws))[3] == {"type": "sync", "data": 1}
        await join(ws, "ok2", item_id="a", kind="leave")
        left = await hooks.serve_one()
        assert (left["function_id"], left["data"]["subscription_id"]) == ("on::leave", "ok2")
        await wire.result("stream::set", {**TODO, "item_id": "a", "data": 2})
        assert short(await recv(ws))[3] == {"type": "update", "data": 2}  # only "ok" remains
        await silent(ws, 0.2)
    closed = await hooks.serve_one()  # closing the socket leaves what remains
    assert (closed["function_id"], closed["data"]["subscription_id"]) == ("on::leave", "ok")
    assert closed["data"]["context"] == {"user": "ann"}
    await hooks.silent(0.2)


async def test_auth_failure_still_accepts(engine_factory: Any) -> None:
    engine = engine_factory(stream_auth_function="auth::missing")
    async with websockets.connect(engine.stream_url) as ws:
        await join(ws, "s")
        assert short(await recv(ws))[3] == {"type": "sync", "data": []}


async def test_bad_frames_are_ignored(engine: EngineThread, browser: ClientConnection) -> None:
    for bad in [
        "",
        "   ",
        "not json",
        "[1]",
        json.dumps({"type": "join"}),
        json.dumps({"type": "dance", "data": {}}),
        json.dumps(
            {
                "type": "join",
                "data": {"subscriptionId": 1, "streamName": "todo", "groupId": "inbox"},
            }
        ),
    ]:
        await browser.send(bad)
    await silent(browser, 0.2)
    await browser.send(
        json.dumps(
            {
                "type": "join",
                "data": {"subscriptionId": "b", "streamName": "todo", "groupId": "inbox"},
            }
        ).encode()
    )
    assert short(await recv(browser))[3] == {"type": "sync", "data": []}  # binary frames work
    pong = await browser.ping()
    await asyncio.wait_for(pong, TIMEOUT)


async def test_only_root_is_routed(engine: EngineThread) -> None:
    with pytest.raises(websockets.exceptions.InvalidStatus) as info:
        async with websockets.connect(engine.stream_url + "/stream/todo/inbox/"):
            pass
    assert info.value.response.status_code == 404
    async with httpx.AsyncClient() as http:
        response = await http.get(engine.stream_url.replace("ws://", "http://") + "/")
    assert response.status_code == 404


def test_no_stream_socket(engine_factory: Any) -> None:
    engine = engine_factory(stream_port=None)
    with pytest.raises(RuntimeError, match="not running"):
        print(engine.stream_url)
