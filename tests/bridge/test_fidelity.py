"""A FastAPI app answers through the engine as straight from uvicorn (status, headers minus
per-hop ones, body; framing too where marked), for what issue 15 found differing: routes the
bridge did not register, trailing-slash redirects, responses waiting for background work,
headers the client did not send, framing, repeated cookies, empty path segments."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from a2wsgi import WSGIMiddleware
from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI, Header, Request, Response
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import PlainTextResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from iii_asgi import IIIBridge
from iii_asgi.engine import EngineThread
from tests.contract.compare import Call, compare, send
from tests.workers.servers import serve


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "index.html").write_text("<h1>home</h1>")
    (tmp_path / "a.txt").write_text("a file\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "index.html").write_text("<h1>sub</h1>")
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "app.js").write_text("console.log(1)")
    return tmp_path


def _wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = f"wsgi {environ['REQUEST_METHOD']} {environ['PATH_INFO']}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Wsgi", "1")])
    return [body]


def coverage_app(site: Path) -> FastAPI:
    app = FastAPI()

    @app.get("/items/{id}")
    def read_item(id: int) -> dict[str, int]:
        return {"id": id}

    @app.get("/items/{name}")  # the same engine shape: the app picks, first match
    def read_item_by_name(name: str) -> dict[str, str]:
        return {"name": name}

    @app.get("/a/0", name="same")  # the same derived function id: a numeric suffix
    def same_0() -> int:
        return 0

    @app.get("/a/1", name="same")
    def same_1() -> int:
        return 1

    @app.get("/hidden", include_in_schema=False)
    def hidden() -> dict[str, bool]:
        return {"hidden": True}

    router = APIRouter()

    @router.get("/ping")
    def ping() -> str:
        return "pong"

    router.mount("/assets", StaticFiles(directory=site / "assets"), name="assets")
    app.include_router(router, prefix="/v1")
    app.mount("/static", StaticFiles(directory=site, html=True), name="static")
    app.mount("/legacy", WSGIMiddleware(_wsgi))  # type: ignore[arg-type]
    sub = FastAPI()

    @sub.get("/")
    def sub_root() -> dict[str, str]:
        return {"app": "sub"}

    app.mount("/sub", sub)
    other = FastAPI()

    @other.get("/who")
    def who(request: Request) -> dict[str, str]:
        return {"host": request.headers["host"]}

    app.host("api.example.com", other)
    app.frontend("/", directory=site)
    IIIBridge(app)
    return app


COVERAGE_CALLS = [
    Call("GET", "/openapi.json"),
    Call("GET", "/docs"),
    Call("GET", "/docs/oauth2-redirect"),
    Call("GET", "/redoc"),
    Call("GET", "/hidden"),
    Call("GET", "/items/3"),
    Call("GET", "/items/abc"),
    Call("GET", "/a/0"),
    Call("GET", "/a/1"),
    Call("GET", "/v1/ping"),
    Call("GET", "/v1/assets/app.js", ignore=("etag", "last-modified")),
    Call("GET", "/static/a.txt", ignore=("etag", "last-modified"), strict_framing=True),
    Call("HEAD", "/static/a.txt", ignore=("etag", "last-modified"), strict_framing=True),
    Call("GET", "/static/", ignore=("etag", "last-modified")),
    Call("GET", "/static/sub/", ignore=("etag", "last-modified")),
    Call("GET", "/static/nope.txt"),
    Call("POST", "/static/a.txt"),  # StaticFiles' own 405
    Call("GET", "/legacy/x/y?q=1"),
    Call("DELETE", "/legacy/z"),
    Call("GET", "/sub/"),
    Call("GET", "/sub/openapi.json"),
    Call("GET", "/who", headers={"host": "api.example.com"}),
    Call("GET", "/who", headers={"host": "elsewhere.example.com"}),  # the app's 404
    Call("GET", "/assets/app.js", ignore=("etag", "last-modified")),  # the frontend
    Call("GET", "/", ignore=("etag", "last-modified")),
    Call("GET", "/a/deep/page", headers={"accept": "text/html"}, ignore=("etag", "last-modified")),
    Call("PUT", "/a.txt"),  # the frontend's own 405
]


async def test_everything_the_app_serves_is_registered(
    engine_factory: Any, site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every Host allowed: the app's Host route decides (a loopback engine refuses others)
    engine = engine_factory(http_allowed_hosts=["*"])
    monkeypatch.setenv("III_URL", engine.url)
    monkeypatch.setenv("OTEL_ENABLED", "false")
    await compare(coverage_app(site), COVERAGE_CALLS, engine)


SLASH_CALLS = [
    Call("GET", "/items/", ignore=("location",)),
    Call("GET", "/items/5/", ignore=("location",)),
    Call("POST", "/items/5/", ignore=("location",)),
    Call("GET", "/files", ignore=("location",)),
    Call("GET", "/files/", ignore=()),
    Call("GET", "/static", ignore=("location",)),
    Call("GET", "/tail", ignore=("location",)),
]


async def test_the_apps_own_trailing_slash_redirects(engine_url: EngineThread, site: Path) -> None:
    app = FastAPI()

    @app.get("/items")
    def items() -> list[int]:
        return [1]

    @app.api_route("/items/{id}", methods=["GET", "POST"])
    def item(id: int) -> int:
        return id

    @app.get("/files/{path:path}")
    def files(path: str) -> str:
        return path

    @app.get("/tail/")
    def tail() -> str:
        return "tail"

    app.mount("/static", StaticFiles(directory=site), name="static")
    IIIBridge(app)
    pairs = await compare(app, SLASH_CALLS, engine_url)
    for call, (direct, through) in zip(SLASH_CALLS, pairs, strict=True):
        if direct.status == 307:  # the same target, each on its own host
            assert (
                through.raw_headers["location"].split("/", 3)[3]
                == (direct.raw_headers["location"].split("/", 3)[3])
            ), call
    assert [d.status for d, _ in pairs] == [307, 307, 307, 307, 200, 307, 307]


EVENTS: list[str] = []


async def resource() -> AsyncIterator[str]:
    yield "db"
    await asyncio.sleep(0.5)
    EVENTS.append("dependency closed")


def background_app() -> FastAPI:
    app = FastAPI()

    @app.get("/order")
    async def order(
        tasks: BackgroundTasks, db: Annotated[str, Depends(resource)]
    ) -> dict[str, str]:
        async def notify() -> None:
            await asyncio.sleep(1)
            EVENTS.append("notified")

        tasks.add_task(notify)
        return {"db": db}

    return app


#: A response that waited for the 1 s background task would take 1 s at least; one that did
#: not takes ~10 ms, more on a busy machine.
BEFORE_BACKGROUND_S = 0.9


async def test_background_work_does_not_delay_the_response(engine_url: EngineThread) -> None:
    """A 1 s background task and the exit of a ``yield`` dependency run after the response,
    through the engine as under uvicorn; shutdown drains what is still running."""
    app = background_app()
    IIIBridge(app)
    call = Call("GET", "/order")
    async with serve(app) as direct, httpx.AsyncClient(timeout=20) as http:
        plain = await send(http, direct, call)
        assert plain.status == 200 and plain.seconds < BEFORE_BACKGROUND_S
        await asyncio.sleep(1.6)
        assert EVENTS == ["notified", "dependency closed"]
        EVENTS.clear()
        through = await send(http, engine_url.http_url, call)
        assert (through.status, through.headers, through.body) == (
            plain.status,
            plain.headers,
            plain.body,
        )
        assert through.seconds < BEFORE_BACKGROUND_S, (
            f"through the engine in {through.seconds:.3f}s"
        )
        assert EVENTS == []  # still running on the app's loop
        again = await send(http, engine_url.http_url, call)
        assert again.seconds < BEFORE_BACKGROUND_S
    # the server stopped only after the bridge drained both requests' background work
    assert EVENTS == ["notified", "notified", "dependency closed", "dependency closed"]


class TraceHeaders(BaseModel):
    model_config = {"extra": "forbid"}

    host: str
    user_agent: str
    accept: str
    accept_encoding: str
    connection: str
    traceparent: str | None = None


def headers_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(GZipMiddleware, minimum_size=100)

    @app.get("/strict")
    def strict(headers: Annotated[TraceHeaders, Header()]) -> dict[str, Any]:
        return {"traceparent": headers.traceparent is not None}

    @app.get("/seen")
    def seen(request: Request) -> list[str]:
        return sorted({name for name in request.headers if name != "content-length"})

    @app.get("/client")
    def client(request: Request) -> dict[str, Any]:
        assert request.client is not None
        return {"host": request.client.host, "scheme": request.url.scheme}

    @app.get("/big")
    def big() -> PlainTextResponse:
        return PlainTextResponse("abc" * 2000)  # gzipped: binary, with its content-length

    @app.get("/nothing")
    def nothing() -> Response:
        return Response(status_code=204, media_type="text/plain")

    @app.get("/cookies")
    def cookies() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"one,"
            yield b"two"

        response = StreamingResponse(body(), media_type="text/plain")
        response.set_cookie("a", "1")
        response.set_cookie("b", "2", httponly=True)
        response.headers.append("vary", "x-one")
        response.headers.append("vary", "x-two")
        return response

    @app.get("/declared")
    def declared() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"12345"
            yield b"67890"

        return StreamingResponse(body(), media_type="text/plain", headers={"content-length": "10"})

    @app.get("/files/{file_path:path}")
    def files(file_path: str) -> dict[str, str]:
        return {"file_path": file_path}

    @app.get("/extension")
    def extension(request: Request) -> dict[str, Any]:
        iii = request.scope.get("extensions", {}).get("iii") or {}
        return {"function_id": iii.get("function_id")}

    IIIBridge(app)
    return app


TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
HEADER_CALLS = [
    Call("GET", "/strict"),
    Call("GET", "/strict", headers={"traceparent": TRACEPARENT}),
    Call("GET", "/seen", headers={"traceparent": TRACEPARENT, "x-a": "1"}),
    Call("GET", "/seen", headers={"baggage": "k=v"}),
    Call("GET", "/client"),
    Call("GET", "/client", headers={"x-forwarded-for": "10.1.2.3", "x-forwarded-proto": "https"}),
    Call("GET", "/big", strict_framing=True),
    Call("HEAD", "/big", strict_framing=True),
    Call("GET", "/nothing", strict_framing=True),
    Call("GET", "/cookies", strict_framing=True),
    Call("GET", "/declared", strict_framing=True),
    Call("GET", "/files//home/johndoe/myfile.txt"),
    Call("GET", "/files/a//b/"),
]


async def test_headers_client_and_framing(engine_url: EngineThread) -> None:
    app = headers_app()
    pairs = await compare(app, HEADER_CALLS, engine_url)
    by_call = {
        str(call) + repr(call.headers): pair for call, pair in zip(HEADER_CALLS, pairs, strict=True)
    }
    direct, _ = by_call["GET /seen" + repr({"baggage": "k=v"})]
    assert "baggage" in direct.body.decode()  # the client's own baggage reaches the app
    direct, _ = by_call["GET /strict" + repr({"traceparent": TRACEPARENT})]
    assert direct.status == 200
    direct, _ = by_call["GET /cookies{}"]
    assert direct.raw_headers.get_list("set-cookie") == [
        "a=1; Path=/; SameSite=lax",
        "b=2; HttpOnly; Path=/; SameSite=lax",
    ]
    direct, _ = by_call["GET /big{}"]
    assert (
        direct.raw_headers["content-encoding"] == "gzip" and "content-length" in direct.raw_headers
    )
    direct, _ = by_call["GET /nothing{}"]
    assert "content-length" not in direct.raw_headers
    direct, _ = by_call["GET /files//home/johndoe/myfile.txt{}"]
    assert direct.body == b'{"file_path":"/home/johndoe/myfile.txt"}'
    # the function id is in the scope's extensions, not in a header
    async with serve(app), httpx.AsyncClient(timeout=20) as http:
        answer = await http.get(engine_url.http_url + "/extension")
    assert answer.json() == {"function_id": "extension::extension"}


async def test_routes_added_later(engine_url: EngineThread) -> None:
    app = FastAPI()

    @app.get("/first")
    def first() -> str:
        return "first"

    bridge = IIIBridge(app)
    async with serve(app) as direct, httpx.AsyncClient(timeout=20) as http:

        @app.get("/second")
        def second() -> str:
            return "second"

        assert (await http.get(engine_url.http_url + "/second")).status_code == 404
        result = await bridge.sync()
        assert result.added == ("second::second",)
        assert (await http.get(engine_url.http_url + "/second")).json() == "second"
        assert not await bridge.sync()  # nothing changed

        router = APIRouter(prefix="/third")

        @router.get("")
        def third() -> str:
            return "third"

        app.include_router(router)
        # any request notices the change and syncs in the background
        assert (await http.get(direct + "/first")).json() == "first"
        deadline = time.monotonic() + 10
        while (await http.get(engine_url.http_url + "/third")).status_code != 200:
            assert time.monotonic() < deadline, "the route added later was never registered"
            await asyncio.sleep(0.05)
        assert "third::third" in {row.function_id for row in bridge.routes}

        @router.get("/more")  # into a router already included: seen within DEEP_CHECK_S
        def more() -> str:
            return "more"

        deadline = time.monotonic() + 10
        while (await http.get(engine_url.http_url + "/third/more")).status_code != 200:
            assert time.monotonic() < deadline, "the route added to the router never came"
            await http.get(direct + "/first")
            await asyncio.sleep(0.1)


async def test_extra_paths_another_worker_has_are_not_fatal(
    engine_url: EngineThread, site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another worker already serves ``GET /:name``: the frontend's depth-1 catch-all path and
    the ``/items/:id/`` twin are refused, the app starts anyway (a warning), and the rest is
    served through the engine."""
    import iii

    other = iii.register_worker(engine_url.url, iii.InitOptions(otel={"enabled": False}))
    try:
        other.register_function("other::page", lambda data: {"body": "other"})
        for path in ("/:name", "/items/:x/"):
            other.register_trigger(
                {"type": "http", "function_id": "other::page", "config": {"api_path": path}}
            )
        other.trigger({"function_id": "engine::functions::list", "payload": {}})
        app = FastAPI()

        @app.get("/items/{id}")
        def item(id: int) -> int:
            return id

        app.frontend("/", directory=site)
        bridge = IIIBridge(app)
        async with serve(app), httpx.AsyncClient(timeout=20) as http:
            assert bridge.ready
            assert (await http.get(engine_url.http_url + "/items/4")).json() == 4
            assert (await http.get(engine_url.http_url + "/a.txt")).json() == "other"
            deep = await http.get(engine_url.http_url + "/assets/app.js")
            assert deep.text == "console.log(1)"
        assert caplog.text.count("refused an extra path") == 2
    finally:
        other.shutdown()
