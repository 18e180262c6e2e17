"""Responses of the HTTP trigger: buffered results (builtins.md §3.7) and streams (§3.8)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from helpers import wait_until
from http_support import get_routed, http, route, routed, worker

from iii_asgi.engine import EngineThread

BUFFERED: list[tuple[Any, int, dict[str, str], bytes]] = [
    # result, status, expected headers (subset), body
    ({"status_code": 201, "body": {"a": 1}}, 201, {"content-type": "application/json"}, b'{"a":1}'),
    ({"statusCode": 404, "body": "nope"}, 404, {"content-type": "application/json"}, b'"nope"'),
    ({"status_code": "500"}, 200, {}, b"{}"),
    ({"status_code": 1000, "body": None}, 200, {}, b"null"),
    (
        {"headers": {"Content-Type": "text/plain", "X-A": "1", "X-Bad": 2}, "body": "hi"},
        200,
        {"content-type": "text/plain", "x-a": "1"},
        b"hi",
    ),
    (
        {"headers": ["Content-Type: text/csv", "X-B:  2 ", "broken"], "body": "a,b"},
        200,
        {"content-type": "text/csv", "x-b": "2"},
        b"a,b",
    ),
    ({"headers": {"content-type": "text/plain"}, "body": None}, 200, {}, b""),
    (
        {"headers": {"content-type": "text/plain"}, "body": [1, 2]},
        200,
        {"content-type": "text/plain"},
        b"[1,2]",
    ),
    (
        {"headers": {"content-type": "application/json"}, "body": "raw"},
        200,
        {"content-type": "application/json"},
        b"raw",
    ),
    ("just a string", 200, {"content-type": "application/json"}, b"{}"),
    (42, 200, {}, b"{}"),
]


@pytest.mark.parametrize(("result", "status", "headers", "body"), BUFFERED)
async def test_buffered_results(
    engine: EngineThread, result: Any, status: int, headers: dict[str, str], body: bytes
) -> None:
    r = await get_routed(engine, "b::fn", lambda data: result, "/r")
    assert r.status_code == status
    assert r.content == body
    for name, value in headers.items():
        assert r.headers[name] == value
    assert "x-bad" not in r.headers


async def test_streamed_response_arrives_before_the_handler_finishes(
    engine: EngineThread,
) -> None:
    first_read = asyncio.Event()
    finished = asyncio.Event()
    order: list[str] = []

    async def stream(data: dict[str, Any]) -> None:
        res = data["response"]
        await res.send_message_async(json.dumps({"type": "set_status", "status_code": 206}))
        await res.send_message_async(
            json.dumps({"type": "set_headers", "headers": {"content-type": "text/plain"}})
        )
        await res.write(b"first,")
        await first_read.wait()  # the client got the first chunk while we are still running
        order.append("handler continues")
        await res.write(b"second," * 20_000)  # several 64 KiB frames
        await res.close_async()
        order.append("handler done")
        finished.set()
        return None

    async with worker(engine) as w:
        route(w, "s::stream", stream, "/stream")
        await routed(engine)
        async with http(engine) as c, c.stream("GET", "/stream") as r:
            assert r.status_code == 206
            assert r.headers["content-type"] == "text/plain"
            assert "content-length" not in r.headers
            chunks = r.aiter_raw()
            received = await chunks.__anext__()
            order.append("client got first chunk")
            assert not finished.is_set()
            first_read.set()
            async for chunk in chunks:
                received += chunk
    assert received == b"first," + b"second," * 20_000
    assert order == ["client got first chunk", "handler continues", "handler done"]


async def test_return_value_wins_before_any_body_frame(engine: EngineThread) -> None:
    async def handler(data: dict[str, Any]) -> Any:
        res = data["response"]
        await res.send_message_async(json.dumps({"type": "set_status", "status_code": 299}))
        return {"status_code": 202, "body": {"won": "return"}}

    r = await get_routed(engine, "s::wins", handler, "/wins")
    assert r.status_code == 202 and r.json() == {"won": "return"}


async def test_close_without_body_and_null_return(engine: EngineThread) -> None:
    async def handler(data: dict[str, Any]) -> None:
        res = data["response"]
        await res.send_message_async(json.dumps({"type": "set_status", "status_code": 204}))
        await res.send_message_async(json.dumps({"type": "set_status", "status_code": 99}))
        await res.send_message_async("not json")
        await res.close_async()

    r = await get_routed(engine, "s::empty", handler, "/empty")
    assert r.status_code == 204 and r.content == b""
    assert "content-type" not in r.headers
    await asyncio.sleep(0)
    assert engine.core.channels.channels == {}


async def test_large_streamed_response(engine: EngineThread) -> None:
    block = bytes(range(256)) * 4096  # 1 MiB

    async def handler(data: dict[str, Any]) -> None:
        res = data["response"]
        for _ in range(8):
            await res.write(block)
        await res.close_async()

    r = await get_routed(engine, "s::big", handler, "/big")
    assert r.status_code == 200 and r.content == block * 8


# A function that returns without closing its writer: the engine ends the response once the
# invocation has finished and the writer has gone quiet, delivering everything written, well
# before the idle timeout (30 s here, longer than the client's 10 s timeout).


async def test_stream_ends_when_the_handler_returns_without_closing(engine: EngineThread) -> None:
    writers: list[Any] = []

    async def handler(data: dict[str, Any]) -> None:
        res = data["response"]
        writers.append(res)
        await res.send_message_async(json.dumps({"type": "set_status", "status_code": 203}))
        await res.write(b"start,")
        await res.write(b"more," * 30_000)  # several 64 KiB frames, possibly still in flight
        return None  # no close

    async with worker(engine) as w:
        route(w, "s::open", handler, "/open")
        await routed(engine)
        async with http(engine) as c:
            r = await c.get("/open")
        assert r.status_code == 203
        assert r.content == b"start," + b"more," * 30_000
        assert engine.core.channels.channels == {}
        # The engine also closed the abandoned write socket.
        await wait_until(lambda: writers[0]._ws.close_code is not None)


async def test_null_return_with_an_open_writer_sends_what_was_set(engine: EngineThread) -> None:
    async def handler(data: dict[str, Any]) -> None:
        res = data["response"]
        await res.send_message_async(json.dumps({"type": "set_status", "status_code": 201}))
        await res.send_message_async(
            json.dumps({"type": "set_headers", "headers": {"x-made": "yes"}})
        )
        return None  # neither a body nor a close

    r = await get_routed(engine, "s::head", handler, "/head-only")
    assert r.status_code == 201 and r.content == b""
    assert r.headers["x-made"] == "yes"


async def test_stream_ends_when_the_handler_fails_mid_stream(engine: EngineThread) -> None:
    async def handler(data: dict[str, Any]) -> None:
        res = data["response"]
        await res.write(b"partial," * 10_000)
        raise RuntimeError("broke after streaming began")

    r = await get_routed(engine, "s::broken", handler, "/broken")
    assert r.status_code == 200  # the head went out with the first body frame
    assert r.content == b"partial," * 10_000


async def test_streamed_headers_lists_and_declared_length(engine: EngineThread) -> None:
    """Beyond §3.8 (the real engine skips non-string values): a list sets repeated header
    lines; a numeric content-length frames the streamed body (a bad one is dropped)."""

    async def handler(data: dict[str, Any]) -> None:
        res = data["response"]
        headers = {"set-cookie": "b=2", "content-length": "6", "x-bad-length": "1"}
        await res.send_message_async(json.dumps({"type": "set_headers", "headers": headers}))
        repeated = {"set-cookie": ["a=1", "b=2", 3], "vary": []}
        await res.send_message_async(json.dumps({"type": "set_headers", "headers": repeated}))
        await res.write(b"abc")
        await res.write(b"def")
        await res.close_async()

    r = await get_routed(engine, "s::listed", handler, "/listed")
    assert r.content == b"abcdef"
    assert r.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert r.headers["content-length"] == "6" and "transfer-encoding" not in r.headers
    assert "vary" not in r.headers

    async def bad(data: dict[str, Any]) -> None:
        res = data["response"]
        headers = {"content-length": "six", "transfer-encoding": "gzip"}
        await res.send_message_async(json.dumps({"type": "set_headers", "headers": headers}))
        await res.write(b"abcdef")
        await res.close_async()

    r = await get_routed(engine, "s::bad-length", bad, "/bad-length")
    assert r.content == b"abcdef" and r.headers["transfer-encoding"] == "chunked"
