"""The route table: path syntax both ways, ids, filters, overrides, collisions, mounts."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, Router

from iii_asgi.bridge import RouteCollisionError, asgi_path, engine_paths, route_options
from iii_asgi.bridge.routes import RouteFilter, collect_routes, concrete_path, format_table


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", ["/"]),
        ("/todos", ["/todos"]),
        ("/todos/{id}", ["/todos/:id"]),
        ("/todos/{id:int}/items/{n:float}", ["/todos/:id/items/:n"]),
        ("/files/{p:path}", ["/files/:p", "/files/:p/:p__2", "/files/:p/:p__2/:p__3"]),
        ("/{p:path}", ["/:p", "/:p/:p__2", "/:p/:p__2/:p__3"]),
        ("/files/{name}.{ext}", None),
        ("/a/{p:path}/b", None),
    ],
)
def test_engine_paths(path: str, expected: list[str] | None) -> None:
    assert engine_paths(path, depth=3) == expected


@pytest.mark.parametrize(
    ("api_path", "expected"),
    [
        ("/todos/:id", "/todos/{id}"),
        ("/files/:p/:p__2/:p__3", "/files/{p:path}"),
        ("/files/:p", "/files/{p}"),
        ("/static", "/static"),
    ],
)
def test_asgi_path(api_path: str, expected: str) -> None:
    assert asgi_path(api_path) == expected


def test_concrete_path_keeps_percent_encoding() -> None:
    assert concrete_path("/todos/:id", {"id": "a%20b"}) == "/todos/a%20b"
    assert concrete_path("/files/:p/:p__2", {"p": "a", "p__2": "b.txt"}) == "/files/a/b.txt"
    assert concrete_path("static", {}) == "/static"


def fastapi_app() -> tuple[FastAPI, APIRouter, APIRouter]:
    app = FastAPI()
    todos = APIRouter(prefix="/todos", tags=["todos"])
    admin = APIRouter(prefix="/admin")

    @todos.get("/{id}")
    def get_todo(id: int) -> dict[str, int]:
        return {"id": id}

    @todos.post("", openapi_extra={"x-iii": {"function_id": "todo.create", "metadata": {"a": 1}}})
    def create_todo() -> dict[str, str]:
        """Create a todo.

        Long text."""
        return {}

    @todos.delete("/{id}", openapi_extra={"x-iii": {"enabled": False}})
    def delete_todo(id: int) -> None:
        return None

    @admin.get("/stats")
    def stats() -> dict[str, str]:
        return {}

    @app.get("/health", summary="Health check")
    def health() -> dict[str, str]:
        return {}

    @app.get("/internal")
    @route_options(enabled=False)
    def internal() -> dict[str, str]:
        return {}

    @app.get("/metrics")
    @route_options(function_id="ops::metrics", description="Metrics", metadata={"m": 1})
    def metrics() -> dict[str, str]:
        return {}

    app.include_router(todos, prefix="/api")
    app.include_router(admin)
    return app, todos, admin


def ids(table: list[Any]) -> dict[str, str]:
    return {row.path: row.function_id for row in table if not row.hidden}


DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def test_defaults_overrides_and_descriptions() -> None:
    app, _, _ = fastapi_app()
    table = collect_routes(app.routes)
    assert {row.path for row in table if row.hidden} == DOCS
    assert ids(table) == {
        "/api/todos/{id}": "todos::get_todo",
        "/api/todos": "todo.create",
        "/admin/stats": "admin::stats",
        "/health": "health::health",
        "/metrics": "ops::metrics",
    }
    rows = {row.path: row for row in table}
    assert (rows["/metrics"].description, rows["/metrics"].metadata) == ("Metrics", {"m": 1})
    assert rows["/api/todos"].metadata == {"a": 1}
    assert rows["/api/todos"].description == "Create a todo."
    assert rows["/health"].description == "Health check"
    assert rows["/api/todos/{id}"].triggers == [
        {"api_path": "/api/todos/:id", "http_method": "GET"},
        {"api_path": "/api/todos/:id/", "http_method": "GET"},  # the redirect twin
    ]
    assert rows["/api/todos/{id}"].redirect_paths == ("/api/todos/:id/",)
    assert "todos::get_todo" in format_table(table)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"include_paths": ["/api"]}, {"/api/todos/{id}", "/api/todos"}),
        ({"exclude_paths": ["/api/*", "/health", "/metrics"]}, {"/admin/stats", *DOCS}),
        ({"include_tags": ["todos"]}, {"/api/todos/{id}", "/api/todos"}),
        ({"exclude_tags": ["todos"]}, {"/admin/stats", "/health", "/metrics", *DOCS}),
        (
            {"include_hidden": False},
            {"/api/todos/{id}", "/api/todos", "/admin/stats", "/health", "/metrics"},
        ),
    ],
)
def test_filters(options: dict[str, Any], expected: set[str]) -> None:
    app, _, _ = fastapi_app()
    table = collect_routes(app.routes, route_filter=RouteFilter(**options))
    assert {row.path for row in table} == expected


def test_router_filters() -> None:
    app, todos, admin = fastapi_app()
    only_admin = collect_routes(app.routes, route_filter=RouteFilter(include_routers=[admin]))
    assert {row.path for row in only_admin} == {"/admin/stats"}
    no_todos = collect_routes(app.routes, route_filter=RouteFilter(exclude_routers=[todos]))
    assert {row.path for row in no_todos} == {"/admin/stats", "/health", "/metrics", *DOCS}


def test_same_derived_function_id_gets_a_numeric_suffix(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="iii_asgi.bridge")
    app = FastAPI()

    @app.get("/items/0", name="read_item")
    def zero() -> None:
        return None

    @app.get("/items/1", name="read_item")
    def one() -> None:
        return None

    @app.get(
        "/items/2", name="read_item", openapi_extra={"x-iii": {"function_id": "items::read_item"}}
    )
    def two() -> None:
        return None

    assert ids(collect_routes(app.routes)) == {
        "/items/0": "items::read_item_2",  # the explicit id wins its name; derived ones follow
        "/items/1": "items::read_item_3",
        "/items/2": "items::read_item",
    }
    assert "served as 'items::read_item_3'" in caplog.text


def test_the_same_explicit_function_id_twice_is_an_error() -> None:
    app = FastAPI()

    @app.get("/a/x", openapi_extra={"x-iii": {"function_id": "t::same"}})
    def one() -> None:
        return None

    @app.get("/b/x", openapi_extra={"x-iii": {"function_id": "t::same"}})
    def two() -> None:
        return None

    with pytest.raises(RouteCollisionError, match=r"'/a/x' and '/b/x' are both given .*t::same"):
        collect_routes(app.routes)


def test_same_shape_routes_follow_first_match_order() -> None:
    app = FastAPI()

    @app.get("/items/{id:int}")
    def by_id(id: int) -> None:
        return None

    @app.get("/items/{name}")
    def by_name(name: str) -> None:
        return None

    @app.post("/items/{name}")
    def post(name: str) -> None:
        return None

    rows = {row.function_id: row for row in collect_routes(app.routes)}
    assert rows["items::by_id"].bindings == (("GET", "/items/:id"), ("GET", "/items/:id/"))
    assert rows["items::by_name"].bindings == ()  # the app picks by_name for /items/abc
    assert rows["items::post"].bindings == (("POST", "/items/:name"), ("POST", "/items/:name/"))
    assert "(served by an earlier route)" in format_table(list(rows.values()))


def test_twins_follow_redirect_slashes() -> None:
    app = FastAPI(redirect_slashes=False)

    @app.get("/a")
    def a() -> None:
        return None

    assert collect_routes(app).pop().triggers == [{"api_path": "/a", "http_method": "GET"}]
    on = FastAPI()

    @on.get("/a/")
    def slash() -> None:
        return None

    @on.get("/a")
    def bare() -> None:
        return None

    rows = {row.function_id: row for row in collect_routes(on) if not row.hidden}
    # each is the other's twin: the routes themselves win, no redirect path is left
    assert rows["a::slash"].bindings == (("GET", "/a/"),)
    assert rows["a::bare"].bindings == (("GET", "/a"),)


def test_catch_all_leaves_depths_taken_by_earlier_routes() -> None:
    app = FastAPI()

    @app.get("/files/{name}")
    def one(name: str) -> None:
        return None

    @app.get("/files/{p:path}")
    def rest(p: str) -> None:
        return None

    rows = collect_routes(app.routes, path_depth=3, route_filter=RouteFilter(include_hidden=False))
    table = {row.path: row for row in rows}
    assert "http /files/ (+6)" in format_table(rows)
    assert table["/files/{name}"].api_paths == ("/files/:name",)
    # an empty path, each depth with and without a trailing slash, but /files/:p (taken)
    assert table["/files/{p:path}"].api_paths == (
        "/files/",
        "/files/:p/",
        "/files/:p/:p__2",
        "/files/:p/:p__2/",
        "/files/:p/:p__2/:p__3",
        "/files/:p/:p__2/:p__3/",
    )
    assert table["/files/{p:path}"].redirect_paths == ("/files",)
    # /files/:name/ (a twin) comes after every route's own paths: the catch-all has it
    assert table["/files/{name}"].redirect_paths == ()


async def hello(request: Request) -> JSONResponse:
    return JSONResponse({"hello": True})


hello.__iii__ = {"function_id": "greet::hello"}  # type: ignore[attr-defined]


async def deep(request: Request) -> JSONResponse:
    return JSONResponse({"deep": True})


class Items(HTTPEndpoint):
    async def get(self, request: Request) -> JSONResponse:
        return JSONResponse([])

    async def post(self, request: Request) -> JSONResponse:
        return JSONResponse({}, status_code=201)


def test_starlette_routes_mounts_and_root_path() -> None:
    sub = Starlette(routes=[Route("/ping", deep, name="ping")])
    app = Starlette(
        routes=[
            Route("/hello", hello),
            Route("/items", Items),
            Route("/hidden", deep, include_in_schema=False),
            Mount("/v1", routes=[Route("/users/{id:int}", deep, name="user")]),
            Mount("/sub", app=sub),
            Mount("/nested", app=Router(routes=[Mount("/deep", routes=[Route("/x", deep)])])),
        ]
    )
    table = {row.path: row for row in collect_routes(app.routes, root_path="/api")}
    assert {path: row.function_id for path, row in table.items() if not row.hidden} == {
        "/api/hello": "greet::hello",
        "/api/items": "items::items",
        "/api/v1/users/{id:int}": "v1::user",
        "/api/sub/ping": "sub::ping",
        "/api/nested/deep/x": "nested::deep",
    }
    assert table["/api/items"].methods == ("GET", "POST")
    assert table["/api/v1/users/{id:int}"].api_paths == ("/api/v1/users/:id",)
