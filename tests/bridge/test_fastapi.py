"""A FastAPI app answers the same directly (uvicorn) and through the engine (http trigger)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel

import iii
from iii_asgi import IIIBridge, IIIClient, Invocation
from iii_asgi.engine import EngineThread

from .support import UvicornThread, both, comparable, serve, wait_routes


class Todo(BaseModel):
    title: str
    done: bool = False


def make_app() -> FastAPI:
    app = FastAPI()
    app.state.release = asyncio.Event()

    @app.get("/todos/{id}", tags=["todos"])
    def get_todo(id: int) -> dict[str, Any]:
        if id == 404:
            raise HTTPException(404, "no such todo", headers={"x-missing": str(id)})
        return {"id": id}

    @app.post("/todos", tags=["todos"], status_code=201)
    def create_todo(todo: Todo) -> Todo:
        return todo

    @app.get("/search")
    def search(q: Annotated[list[str], Query()], page: int = 1) -> dict[str, Any]:
        return {"q": q, "page": page}

    @app.get("/headers")
    def headers(request: Request) -> dict[str, Any]:
        return {
            "x-multi": request.headers.getlist("x-multi"),
            "path": request.url.path,
            "query": request.url.query,
        }

    @app.get("/files/{rest:path}")
    def files(rest: str) -> dict[str, str]:
        return {"rest": rest}

    @app.post("/form")
    def form(name: Annotated[str, Form()], tags: Annotated[list[str], Form()]) -> dict[str, Any]:
        return {"name": name, "tags": tags}

    @app.post("/upload")
    async def upload(file: Annotated[UploadFile, File()]) -> dict[str, Any]:
        data = await file.read()
        return {"name": file.filename, "size": len(data), "head": list(data[:4])}

    @app.post("/echo")
    async def echo(request: Request) -> Response:
        body = await request.body()
        return Response(body, media_type=request.headers.get("content-type"))

    @app.get("/binary")
    def binary() -> Response:
        return Response(bytes(range(256)) * 4, media_type="application/octet-stream")

    @app.get("/text")
    def text() -> PlainTextResponse:
        response = PlainTextResponse("héllo", headers={"x-a": "1"})
        response.set_cookie("a", "1")
        response.set_cookie("b", "2")
        return response

    @app.get("/empty", status_code=204)
    def empty() -> Response:
        return Response(status_code=204)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first\n"
            await app.state.release.wait()
            yield b"second\n"

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/sse")
    async def sse() -> StreamingResponse:
        async def events() -> AsyncIterator[str]:
            for i in range(3):
                yield f"data: {i}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.get("/whoami")
    async def whoami(inv: Invocation, client: IIIClient) -> dict[str, Any]:
        return {
            "via_engine": inv.via_engine,
            "function_id": inv.function_id,
            "has_invocation_id": inv.invocation_id is not None,
            "connected": client.get_connection_state(),
        }

    @app.get("/loop")
    async def loop(client: IIIClient) -> dict[str, bool]:
        return {"same_loop": client.loop is asyncio.get_running_loop()}

    @app.get("/docs-hidden", include_in_schema=False)
    def hidden() -> dict[str, str]:
        return {}

    return app


@pytest.fixture(scope="module")
def served(module_engine: EngineThread) -> Iterator[tuple[FastAPI, IIIBridge, UvicornThread]]:
    app = make_app()
    bridge = IIIBridge(app, url=module_engine.url)
    with serve(app) as server:
        wait_routes(module_engine, sum(len(r.triggers) for r in bridge.routes))
        yield app, bridge, server


CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/todos/7", {}),
    ("GET", "/todos/404", {}),
    ("GET", "/todos/seven", {}),
    ("POST", "/todos", {"json": {"title": "write tests"}}),
    ("POST", "/todos", {"json": {"done": True}}),
    ("POST", "/todos", {"content": b"{not json", "headers": {"content-type": "application/json"}}),
    ("GET", "/search?q=a&q=b%20c&page=2", {}),
    ("GET", "/search", {}),
    ("GET", "/files/a/b/c.txt", {}),
    ("GET", "/files/one", {}),
    ("POST", "/form", {"data": {"name": "n", "tags": ["x", "y"]}}),
    ("POST", "/upload", {"files": {"file": ("f.bin", bytes(range(200)) * 500)}}),
    ("POST", "/echo", {"content": b"\x00\xffraw", "headers": {"content-type": "application/x"}}),
    ("GET", "/binary", {}),
    ("GET", "/text", {}),
    ("GET", "/empty", {}),
    ("GET", "/boom", {}),
    ("GET", "/sse", {}),
    ("GET", "/nope", {}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), CASES, ids=[f"{m} {p}" for m, p, _ in CASES])
def test_same_answer_direct_and_through_engine(
    served: tuple[FastAPI, IIIBridge, UvicornThread],
    module_engine: EngineThread,
    method: str,
    path: str,
    kwargs: dict[str, Any],
) -> None:
    _, _, server = served
    direct, via_engine = both(server.url, module_engine.http_url, method, path, **kwargs)
    if path == "/nope":  # not a route: the engine's own 404 envelope, never reaches the app
        assert direct.status_code == via_engine.status_code == 404
        return
    assert comparable(via_engine) == comparable(direct)


def test_multi_valued_request_headers_and_raw_query(
    served: tuple[FastAPI, IIIBridge, UvicornThread], module_engine: EngineThread
) -> None:
    _, _, server = served
    headers = [("x-multi", "1"), ("x-multi", "2")]
    direct, via_engine = both(
        server.url, module_engine.http_url, "GET", "/headers?a=1&a=2&b=x+y", headers=headers
    )
    assert via_engine.json() == direct.json()
    assert via_engine.json()["x-multi"] == ["1", "2"]


def test_route_table(served: tuple[FastAPI, IIIBridge, UvicornThread]) -> None:
    _, bridge, _ = served
    table = {row.path: row for row in bridge.routes}
    assert table["/todos/{id}"].function_id == "todos::get_todo"
    assert table["/todos/{id}"].api_paths == ("/todos/:id",)
    assert table["/todos"].methods == ("POST",)
    assert table["/files/{rest:path}"].api_paths[:3] == ("/files/", "/files/:rest", "/files/:rest/")
    assert table["/docs-hidden"].hidden and table["/openapi.json"].hidden and table["/docs"].hidden
    assert table["/todos"].request_format["properties"]["body"]["title"] == "Todo"
    assert bridge.ready


def test_dependencies_tell_engine_from_direct(
    served: tuple[FastAPI, IIIBridge, UvicornThread], module_engine: EngineThread
) -> None:
    _, _, server = served
    direct, via_engine = both(server.url, module_engine.http_url, "GET", "/whoami")
    assert direct.json() == {
        "via_engine": False,
        "function_id": None,
        "has_invocation_id": False,
        "connected": "connected",
    }
    assert via_engine.json() == {
        "via_engine": True,
        "function_id": "whoami::whoami",
        "has_invocation_id": True,
        "connected": "connected",
    }


def test_stream_first_chunk_arrives_before_generator_finishes(
    served: tuple[FastAPI, IIIBridge, UvicornThread], module_engine: EngineThread
) -> None:
    app, _, server = served
    loop = server_loop(server)
    with (
        httpx.Client(timeout=20) as client,
        client.stream("GET", module_engine.http_url + "/stream") as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        chunks = response.iter_bytes()
        first = next(chunks)
        # the generator is still parked on the event: it cannot have finished
        assert first == b"first\n"
        loop.call_soon_threadsafe(app.state.release.set)
        rest = b"".join(chunks)
    assert rest == b"second\n"
    loop.call_soon_threadsafe(app.state.release.clear)


def server_loop(server: UvicornThread) -> asyncio.AbstractEventLoop:
    servers = server.server.servers
    return servers[0].get_loop()  # type: ignore[no-any-return]


def test_another_worker_calls_a_route_function_with_a_hand_made_request(
    served: tuple[FastAPI, IIIBridge, UvicornThread], module_engine: EngineThread
) -> None:
    caller = iii.register_worker(module_engine.url)
    try:
        result = caller.trigger(
            {"function_id": "todos::get_todo", "payload": {"method": "GET", "path": "/todos/7"}}
        )
        assert result["status_code"] == 200
        assert json.loads(result["body"]) == {"id": 7}
        created = caller.trigger(
            {
                "function_id": "todos::create_todo",
                "payload": {"method": "POST", "path": "/todos", "body": {"title": "by call"}},
            }
        )
        assert created["status_code"] == 201
        assert json.loads(created["body"]) == {"title": "by call", "done": False}
        with pytest.raises(iii.IIIInvocationError, match="http trigger"):
            caller.trigger({"function_id": "todos::get_todo", "payload": {"id": 7}})
    finally:
        caller.shutdown()


def test_routes_and_engine_invocations_share_the_servers_loop(
    served: tuple[FastAPI, IIIBridge, UvicornThread], module_engine: EngineThread
) -> None:
    _, bridge, server = served
    direct, via_engine = both(server.url, module_engine.http_url, "GET", "/loop")
    assert direct.json() == via_engine.json() == {"same_loop": True}
    assert bridge.client.loop is server_loop(server)


async def test_bridge_dependencies_resolve_on_the_event_loop() -> None:
    """FastAPI runs a plain ``def`` dependency in its thread pool (a thread hop per request):
    ``IIIClient`` and ``Invocation`` are coroutine functions, and still give the right value."""
    import inspect
    import typing

    for alias in (IIIClient, Invocation):
        dependency = typing.get_args(alias)[1].dependency
        assert inspect.iscoroutinefunction(dependency), alias

    app = FastAPI()

    @app.get("/inv")
    async def inv_route(inv: Invocation) -> dict[str, Any]:
        return {"via_engine": inv.via_engine, "traceparent": inv.traceparent}

    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        body = (await client.get("/inv", headers={"traceparent": tp})).json()
    assert body == {"via_engine": False, "traceparent": tp}
