"""Starlette apps (middleware form), mounts with prefixes, root_path, raw ASGI apps, startup
collisions, client disconnects and backpressure on streams."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

import iii
from iii_asgi import IIIBridge, IIIMiddleware, get_client, get_invocation
from iii_asgi.bridge import bridge_of
from iii_asgi.engine import EngineThread
from tests.helpers import call_until_found, wait_for

from .support import UvicornThread, both, bridge_in, comparable, serve, wait_routes


async def hello(request: Request) -> JSONResponse:
    return JSONResponse(
        {"hello": request.path_params.get("name", "world")}, headers={"x-app": "starlette"}
    )


async def who(request: Request) -> JSONResponse:
    return JSONResponse({"via_engine": get_invocation(request).via_engine})


async def table(request: Request) -> JSONResponse:
    bridge = bridge_of(request)
    return JSONResponse({"ready": bridge.ready, "ids": [r.function_id for r in bridge.routes]})


async def call_other(request: Request) -> JSONResponse:
    client = get_client(request)
    result = await client.trigger_async({"function_id": "math::double", "payload": 21})
    return JSONResponse({"result": result})


class Counter(HTTPEndpoint):
    async def get(self, request: Request) -> PlainTextResponse:
        return PlainTextResponse("count")

    async def post(self, request: Request) -> PlainTextResponse:
        return PlainTextResponse((await request.body()).upper(), status_code=201)


def starlette_app(url: str) -> Starlette:
    async def sub_info(request: Request) -> JSONResponse:
        return JSONResponse({"path": request.url.path, "root_path": request.scope["root_path"]})

    sub = Starlette(routes=[Route("/info/{item}", sub_info, name="info")])
    app = Starlette(
        routes=[
            Route("/hello", hello),
            Route("/hello/{name}", hello, name="hello_name"),
            Route("/table", table),
            Route("/who", who),
            Route("/double", call_other),
            Route("/counter", Counter),
            Mount("/sub", app=sub),
        ]
    )
    app.add_middleware(IIIMiddleware, url=url)
    return app


@pytest.fixture(scope="module")
def starlette_server(module_engine: EngineThread) -> Any:
    app = starlette_app(module_engine.url)
    with serve(app) as server:
        wait_routes(module_engine, bridge_in(app))
        yield server


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/hello", {}),
        ("GET", "/hello/ann%20b", {}),
        ("GET", "/counter", {}),
        ("POST", "/counter", {"content": b"shout"}),
        ("DELETE", "/counter", {}),
        ("GET", "/sub/info/7?x=1", {}),
    ],
)
def test_starlette_same_answer(
    starlette_server: UvicornThread,
    module_engine: EngineThread,
    method: str,
    path: str,
    kwargs: dict[str, Any],
) -> None:
    direct, via_engine = both(starlette_server.url, module_engine.http_url, method, path, **kwargs)
    if method == "DELETE":  # no DELETE trigger: the engine answers 405 itself, as the app does
        assert direct.status_code == via_engine.status_code == 405
        return
    assert comparable(via_engine) == comparable(direct)


def test_starlette_table_and_client(
    starlette_server: UvicornThread, module_engine: EngineThread
) -> None:
    with httpx.Client(timeout=10) as http:
        info = http.get(module_engine.http_url + "/table").json()
        assert info["ready"] is True
        assert set(info["ids"]) == {
            "hello::hello",
            "hello::hello_name",
            "table::table",
            "who::who",
            "double::call_other",
            "counter::counter",
            "sub::info",
        }
        assert http.get(module_engine.http_url + "/who").json() == {"via_engine": True}
        assert http.get(starlette_server.url + "/who").json() == {"via_engine": False}

    # the route calls another worker's function on the server's loop
    other = iii.register_worker(module_engine.url)
    try:
        other.register_function("math::double", lambda n: n * 2)
        wait_for(lambda: _answers(module_engine.http_url + "/double"), timeout=10)
        assert httpx.get(module_engine.http_url + "/double").json() == {"result": 42}
        assert httpx.get(starlette_server.url + "/double").json() == {"result": 42}
    finally:
        other.shutdown()


def _answers(url: str) -> bool:
    return httpx.get(url, timeout=10).status_code == 200


def test_root_path_prefixes_engine_routes(module_engine: EngineThread) -> None:
    """``uvicorn --root-path /api`` behind a prefix-stripping proxy; the bridge is told the
    prefix (uvicorn does not show it to the lifespan), so the engine routes ``/api/where``."""
    app = FastAPI()

    @app.get("/where")
    def where(request: Request) -> dict[str, str]:
        return {"url": str(request.url.path), "root": request.scope.get("root_path", "")}

    bridge = IIIBridge(app, url=module_engine.url, root_path="/api")
    with serve(app, root_path="/api") as server, httpx.Client(timeout=10) as http:
        assert {row.path: row.api_paths for row in bridge.routes}["/api/where"] == ("/api/where",)
        wait_routes(module_engine, bridge, prefix="where::")
        direct = http.get(server.url + "/where")
        via_engine = http.get(module_engine.http_url + "/api/where")
        assert direct.json() == {"url": "/api/where", "root": "/api"}
        assert comparable(via_engine) == comparable(direct)


def test_same_derived_function_id_gets_a_suffix(module_engine: EngineThread, caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="iii_asgi.bridge")
    app = FastAPI()

    @app.get("/a", name="dup")
    def a() -> str:
        return "a"

    @app.get("/a/b", name="dup")
    def b() -> str:
        return "b"

    bridge = IIIBridge(app, url=module_engine.url)
    with serve(app), httpx.Client(timeout=10) as http:
        assert [row.function_id for row in bridge.routes if row.path.startswith("/a")] == [
            "a::dup",
            "a::dup_2",
        ]
        wait_routes(module_engine, bridge, prefix="a::")
        assert http.get(module_engine.http_url + "/a").json() == "a"
        assert http.get(module_engine.http_url + "/a/b").json() == "b"
    assert any("served as 'a::dup_2'" in r.getMessage() for r in caplog.records)


def test_raw_asgi_app_gets_the_bridges_own_lifespan(module_engine: EngineThread) -> None:
    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http", "no lifespan support here"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"raw"})

    wrapped = IIIMiddleware(raw, url=module_engine.url)

    @wrapped.bridge.function("raw::ping")
    async def ping(data: Any) -> dict[str, Any]:
        return {"pong": data}

    with serve(wrapped):
        assert wrapped.bridge.ready
        caller = iii.register_worker(module_engine.url)
        try:
            assert call_until_found(caller, {"function_id": "raw::ping", "payload": 1}) == {
                "pong": 1
            }
        finally:
            caller.shutdown()


def test_stream_backpressure_and_client_disconnect(module_engine: EngineThread) -> None:
    produced = 0
    finished = threading.Event()
    chunk = b"x" * 65536

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/firehose")
    async def firehose() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            nonlocal produced
            try:
                while produced < 100_000:
                    produced += 1
                    yield chunk
                    await asyncio.sleep(0)
            finally:
                finished.set()

        return StreamingResponse(chunks(), media_type="application/octet-stream")

    bridge = IIIBridge(app, url=module_engine.url)
    with serve(app):
        wait_routes(module_engine, bridge, prefix="firehose::")
        host, port = module_engine.http_url.rsplit("/", 1)[1].split(":")
        # A raw socket with a small receive buffer: a client that reads one chunk and stops.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.connect((host, int(port)))
        try:
            sock.sendall(f"GET /firehose HTTP/1.1\r\nhost: {host}\r\n\r\n".encode())
            assert sock.recv(100).startswith(b"HTTP/1.1 200")
            # The reader stopped reading: the generator must stall, not run ahead.
            last = -1
            while last != produced:
                last = produced
                threading.Event().wait(0.3)
            assert produced < 2000, f"{produced} chunks produced for a stalled reader"
            assert not finished.is_set()
        finally:
            sock.close()
        # The client went away: the generator is stopped (its finally runs).
        assert finished.wait(20), "the stream kept running after the client left"
        assert produced < 2000
