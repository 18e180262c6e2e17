"""The request payload of the HTTP trigger (builtins.md §3.5, §3.6) and request bodies."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from http_support import http, route, routed, worker

from iii_asgi.engine import EngineThread


def capture(seen: list[dict[str, Any]]) -> Any:
    async def handler(data: dict[str, Any]) -> Any:
        raw = b""
        async for chunk in data["request_body"]:
            raw += chunk
        copy = {k: v for k, v in data.items() if k not in ("request_body", "response")}
        copy["refs"] = [type(data["request_body"]).__name__, type(data["response"]).__name__]
        copy["keys"] = list(data)
        copy["raw"] = raw
        seen.append(copy)
        return {"status_code": 200, "body": "ok"}

    return handler


async def test_exact_payload_fields(engine: EngineThread) -> None:
    seen: list[dict[str, Any]] = []
    async with worker(engine) as w:
        route(w, "p::users", capture(seen), "/users/:id", "POST")
        w.register_function("p::raw", capture(seen))
        w.register_trigger({"type": "http", "function_id": "p::raw", "config": {"api_path": "raw"}})
        await routed(engine, 2)
        async with http(engine) as c:
            r = await c.post(
                "/users/42?page=2&q=a+b&tag=x&tag=y&empty=",
                json={"name": "x"},
                headers=[("X-Multi", "1"), ("X-Multi", "2"), ("User-Agent", "t/1")],
            )
            assert r.status_code == 200 and r.json() == "ok"
            await c.get("/raw")
    got, raw = seen
    host = engine.http_url.removeprefix("http://")
    assert got["query_params"] == {"page": "2", "q": "a b", "tag": ["x", "y"], "empty": ""}
    assert got["path_params"] == {"id": "42"}
    assert got["headers"]["host"] == host
    assert got["headers"]["content-type"] == "application/json"
    assert got["headers"]["user-agent"] == "t/1"
    assert got["headers"]["x-multi"] == ["1", "2"]
    assert got["path"] == "/users/:id"
    assert got["method"] == "POST"
    assert got["body"] == {"name": "x"}
    assert got["trigger"] == {"type": "http", "path": "/users/:id", "method": "POST"}
    assert got["refs"] == ["ChannelReader", "ChannelWriter"]
    assert got["raw"] == b'{"name":"x"}'  # JSON bodies are also in the request_body channel
    assert got["keys"] == [
        "query_params",
        "path_params",
        "headers",
        "path",
        "method",
        "body",
        "trigger",
        "request_body",
        "response",
        "client",  # beyond §3.5: the HTTP peer, for the ASGI bridge's request.client
    ]
    assert got["client"] == {"host": "127.0.0.1", "port": got["client"]["port"]}
    assert raw["body"] is None and raw["query_params"] == {} and raw["path"] == "raw"
    assert raw["raw"] == b"" and raw["method"] == "GET"


async def test_body_kinds(engine: EngineThread) -> None:
    seen: list[dict[str, Any]] = []
    async with worker(engine) as w:
        route(w, "p::body", capture(seen), "/body", "PUT")
        await routed(engine)
        async with http(engine) as c:
            requests: list[tuple[str | None, bytes]] = [
                ("application/json; charset=utf-8", b'[1, 2, {"a": null}]'),
                ("application/json", b"{not json"),
                ("application/json", b""),
                ("application/vnd.api+json", b'{"a": 1}'),
                ("text/plain", "héllo".encode()),
                ("application/x-www-form-urlencoded", b"a=1&b=2"),
                ("application/octet-stream", bytes(range(256))),
                (None, b"no content type"),
            ]
            for content_type, body in requests:
                headers = {"content-type": content_type} if content_type else {}
                r = await c.put("/body", content=body, headers=headers)
                assert r.status_code == 200
    bodies = [s["body"] for s in seen]
    assert bodies == [[1, 2, {"a": None}], None, None, None, None, None, None, None]
    assert [s["raw"] for s in seen] == [body for _, body in requests]


async def test_large_upload_streams_through_the_channel(engine: EngineThread) -> None:
    payload = hashlib.sha256(b"seed").digest() * (5 * 1024 * 1024 // 32)  # 5 MiB
    sizes: list[int] = []

    async def upload(data: dict[str, Any]) -> Any:
        digest = hashlib.sha256()
        async for chunk in data["request_body"]:
            sizes.append(len(chunk))
            digest.update(chunk)
        return {"body": {"sha256": digest.hexdigest(), "body": data["body"]}}

    async with worker(engine) as w:
        route(w, "p::upload", upload, "/upload", "POST")
        await routed(engine)

        async def chunks() -> Any:  # chunked transfer, no content-length
            for start in range(0, len(payload), 300_000):
                yield payload[start : start + 300_000]

        async with http(engine) as c:
            r = await c.post("/upload", content=chunks())
            assert r.json() == {"sha256": hashlib.sha256(payload).hexdigest(), "body": None}
            r = await c.post("/upload", content=payload)  # with content-length
            assert r.json()["sha256"] == hashlib.sha256(payload).hexdigest()
    assert sum(sizes) == 2 * len(payload)
    assert max(sizes) <= 64 * 1024


async def test_large_json_bodies_reach_the_worker_as_sent(engine: EngineThread) -> None:
    """Bodies from 64 KiB are put into the invocation frame as the client sent them (validated,
    not re-encoded): the worker parses the same value, whatever the headers and query hold;
    non-strict JSON (NaN) and invalid JSON take the usual path."""
    from iii_asgi.engine.core import invocation

    seen: list[Any] = []

    def handler(data: dict[str, Any]) -> Any:
        seen.append(data["body"])
        return {"body": "ok"}

    value = {"text": 'é€😀 " \\ \u0000' * 5000, "n": [1, 2.5, -3e300, 10**30], "t": True}
    sent = json.dumps(value, indent=1).encode()  # pretty-printed: whitespace survives
    assert len(sent) > 64 * 1024
    placeholder = invocation._RAW_BODY[1:-1]
    async with worker(engine) as w:
        route(w, "p::json", handler, "/json", "POST")
        await routed(engine)
        async with http(engine) as c:
            headers = {"content-type": "application/json", "x-trick": placeholder}
            r = await c.post("/json", content=sent, headers=headers, params={"q": placeholder})
            assert r.json() == "ok"
            padding = b" " * 70_000
            r = await c.post("/json", content=b"[NaN]" + padding, headers=headers)
            r = await c.post("/json", content=b"[1," + padding, headers=headers)
    assert seen[0] == value
    assert seen[1][0] != seen[1][0]  # NaN: parsed and encoded again, as for small bodies
    assert seen[2] is None  # invalid JSON: body null (builtins.md §3.6)


async def test_body_over_the_limit_is_413(engine_factory: Any) -> None:
    engine = engine_factory(http_max_body_bytes=1000)
    calls: list[Any] = []

    async def handler(data: dict[str, Any]) -> Any:
        calls.append(data["body"])
        async for _ in data["request_body"]:
            pass
        return {"body": "read"}

    async with worker(engine) as w:
        route(w, "p::small", handler, "/small", "POST")
        await routed(engine)
        too_large = {"error": {"code": "PAYLOAD_TOO_LARGE", "message": "Request body too large"}}

        async def chunked() -> Any:
            for _ in range(4):
                yield b"x" * 400

        async with http(engine) as c:
            for kwargs in (
                {"content": b"x" * 1001},
                {"json": {"a": "x" * 1000}},
                {"content": chunked()},
            ):
                r = await c.post("/small", **kwargs)
                assert r.status_code == 413, kwargs
                assert r.json() == too_large
            assert (await c.post("/small", content=b"x" * 1000)).json() == "read"
    assert calls[-1] is None
    await asyncio.sleep(0)
    assert engine.core.channels.channels == {}


async def test_body_sent_after_a_pause_arrives_whole(engine: EngineThread) -> None:
    """A client that sends its body well after the head (here 0.3 s, past the point where the
    engine starts watching slow requests for a disconnect) loses nothing."""
    seen: list[dict[str, Any]] = []
    async with worker(engine) as w:
        route(w, "p::late", capture(seen), "/late", "POST")
        await routed(engine)
        port = int(engine.http_url.rsplit(":", 1)[1])
        for content_type, body in (
            (b"text/plain", b"late body " * 50),
            (b"application/json", b'{"a": [1, 2, 3]}'),
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"POST /late HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: "
                + content_type
                + b"\r\ncontent-length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
            )
            await writer.drain()
            await asyncio.sleep(0.3)
            writer.write(body[:10])
            await writer.drain()
            await asyncio.sleep(0.2)
            writer.write(body[10:])
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head
            writer.close()
            assert seen[-1]["raw"] == body
    assert seen[-1]["body"] == {"a": [1, 2, 3]}
