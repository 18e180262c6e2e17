"""The bridge contract: every route of the example apps answers the same through the engine's
HTTP port as straight from uvicorn — status, headers (minus per-hop ones) and body — and a
streamed response reaches the engine's client before the app's generator finishes.

Each side gets a fresh lifespan (fresh app state), so stateful sequences (ids) line up.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx

from tests.contract import edge_app
from tests.contract.compare import Call, compare
from tests.workers.servers import serve

TODO_CALLS = [
    Call("GET", "/todos"),
    Call("POST", "/todos", json={"title": "write docs", "tags": ["docs", "team"]}),
    Call("POST", "/todos", json={"title": "ship it", "done": True}),
    Call("POST", "/todos", json={"title": "naïve café ✓", "tags": ["docs"]}),
    Call("POST", "/todos", json={"title": ""}),  # validation error
    Call("POST", "/todos", json={"tags": "not a list"}),  # two validation errors
    Call("POST", "/todos", content=b"{not json", headers={"content-type": "application/json"}),
    Call("POST", "/todos", content=b"title=x", headers={"content-type": "text/plain"}),
    Call("POST", "/todos"),  # no body
    Call("GET", "/todos?done=false"),
    Call("GET", "/todos?tag=docs&tag=nope"),
    Call("GET", "/todos?tag=team&tag=docs&limit=1"),
    Call("GET", "/todos?limit=0"),  # query validation error
    Call("GET", "/todos/1", ignore=("x-served-by",)),
    Call("GET", "/todos/abc", ignore=("x-served-by",)),  # path validation error
    Call("GET", "/todos/99", ignore=("x-served-by",)),  # HTTPException 404
    Call("PATCH", "/todos/1", json={"done": True}),
    Call("PATCH", "/todos/1", json={"title": ""}),
    Call("GET", "/todos/summary"),  # calls the iii function todos::summarize
    Call("GET", "/todos/1/events?count=3&interval=0"),  # SSE
    Call("GET", "/todos/99/events"),
    # the file is written per request: its mtime (last-modified, etag) differs between sides
    Call("GET", "/todos/export.csv", ignore=("last-modified", "etag")),
    Call("DELETE", "/todos/2"),
    Call("DELETE", "/todos/2"),
    Call("GET", "/todos"),
    Call("HEAD", "/todos"),
    # the docs (include_in_schema=False routes are bridged too)
    Call("GET", "/openapi.json"),
    Call("GET", "/docs"),
    Call("GET", "/docs/oauth2-redirect"),
    Call("GET", "/redoc"),
    # redirect_slashes: the app's own 307 (its location names each side's host)
    Call("GET", "/todos/", ignore=("location",)),
    Call("GET", "/todos/1/", ignore=("location",)),
]


async def test_todo_app_routes_answer_the_same(engine_url: Any) -> None:
    from examples.todo_app import app, bridge

    pairs = await compare(app, TODO_CALLS, engine_url)
    by_call = dict(zip(map(str, TODO_CALLS), pairs, strict=False))
    direct, through = by_call["GET /todos/1"]
    assert (direct.raw_headers["x-served-by"], through.raw_headers["x-served-by"]) == (
        "direct",
        "iii",
    )
    direct, through = by_call["GET /todos/summary"]
    assert through.status == 200 and b"still open" in through.body
    assert [through.status for _, through in pairs[1:4]] == [201, 201, 201]
    # every bridged route (and method) of the example was exercised with a success
    assert bridge.routes, "the bridge registered no routes"
    for row in bridge.routes:
        template = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", row.path) + "$")
        for method in row.methods:
            answered = [
                through.status
                for call, (_, through) in zip(TODO_CALLS, pairs, strict=True)
                if call.method == method and template.match(call.path.split("?")[0])
            ]
            assert any(s < 300 for s in answered), f"{method} {row.path} not in the contract"


EDGE_CALLS = [
    Call("GET", "/edge/teapot"),
    Call("GET", "/edge/cookies"),
    Call("GET", "/edge/unicode"),
    Call("GET", "/edge/big?kib=300"),
    Call("GET", "/edge/binary"),
    Call(
        "POST",
        "/edge/upload",
        content=bytes(range(256)) * 64,
        headers={"content-type": "application/octet-stream"},
    ),
    Call(
        "POST",
        "/edge/upload",
        content=b"a=1&b=2",
        headers={"content-type": "application/x-www-form-urlencoded"},
    ),
    Call("GET", "/edge/query?tag=a&tag=b%20c&q=%C3%A9%26x"),
    Call("GET", "/edge/header", headers={"x-token": "secret"}),
    Call("GET", "/edge/header"),
    Call("GET", "/edge/forbidden"),
    Call("GET", "/edge/crash"),
    Call("GET", "/edge/redirect"),
    Call("GET", "/edge/empty"),
    Call("PUT", "/edge/items/5", json={"name": "five", "nested": {"ok": [1, 2.5, None]}}),
    Call("PUT", "/edge/items/x", json={}),
    Call("GET", "/edge/files/a/b/c.txt"),
    Call("GET", "/edge/files/one"),
]


async def test_edge_routes_answer_the_same(engine_url: Any) -> None:
    app, _bridge, gate = edge_app.make_app()
    gate.opened.set()
    await compare(app, [*EDGE_CALLS, Call("GET", "/edge/gated")], engine_url)


STARLETTE_CALLS = [
    Call("GET", "/"),
    Call("GET", "/notes/7"),
    Call("GET", "/notes/101"),
    Call("GET", "/notes/abc"),
    Call("POST", "/echo", content="héllo\n".encode(), headers={"content-type": "text/markdown"}),
    Call("POST", "/echo", content=b"\x00\xff\x10", headers={"content-type": "image/png"}),
    Call("GET", "/echo", engine_answers=True),  # 405
    Call("GET", "/api/version"),
]


async def test_starlette_app_routes_answer_the_same(engine_url: Any) -> None:
    from examples.starlette_app import app

    await compare(app, STARLETTE_CALLS, engine_url)


async def test_stream_reaches_the_client_before_the_generator_finishes(engine_url: Any) -> None:
    app, _bridge, gate = edge_app.make_app()
    async with serve(app), httpx.AsyncClient(timeout=20) as http:
        async with http.stream("GET", f"{engine_url.http_url}/edge/gated") as response:
            assert response.status_code == 200
            chunks = response.aiter_raw()
            first = await chunks.__anext__()
            # the client holds the first chunk while the generator is parked at the gate
            assert first == b"first\n"
            assert gate.first_sent and not gate.finished
            gate.opened.set()
            rest = b"".join([chunk async for chunk in chunks])
        assert rest == b"second\n"
        assert gate.finished
        await asyncio.sleep(0)
