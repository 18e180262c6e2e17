"""The route table: path syntax both ways, ids, filters, overrides, collisions, mounts."""

from __future__ import annotations

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
    return {row.path: row.function_id for row in table}


def test_defaults_overrides_and_descriptions() -> None:
    app, _, _ = fastapi_app()
    table = collect_routes(app.routes)
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
        {"api_path": "/api/todos/:id", "http_method": "GET"}
    ]
    assert "todos::get_todo" in format_table(table)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"include_paths": ["/api"]}, {"/api/todos/{id}", "/api/todos"}),
        ({"exclude_paths": ["/api/*", "/health", "/metrics"]}, {"/admin/stats"}),
        ({"include_tags": ["todos"]}, {"/api/todos/{id}", "/api/todos"}),
        ({"exclude_tags": ["todos"]}, {"/admin/stats", "/health", "/metrics"}),
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
    assert {row.path for row in no_todos} == {"/admin/stats", "/health", "/metrics"}


def test_function_id_collision_is_a_clear_error() -> None:
    app = FastAPI()

    @app.get("/a/x", name="same", tags=["t"])
    def one() -> None:
        return None

    @app.get("/b/x", name="same", tags=["t"])
    def two() -> None:
        return None

    with pytest.raises(RouteCollisionError, match=r"'/a/x' and '/b/x' both map to .*t::same"):
        collect_routes(app.routes)


def test_engine_shape_collision_is_a_clear_error() -> None:
    app = FastAPI()

    @app.get("/items/{id:int}")
    def by_id(id: int) -> None:
        return None

    @app.get("/items/{name}")
    def by_name(name: str) -> None:
        return None

    with pytest.raises(RouteCollisionError, match="same engine path shape"):
        collect_routes(app.routes)


def test_catch_all_leaves_depths_taken_by_earlier_routes() -> None:
    app = FastAPI()

    @app.get("/files/{name}")
    def one(name: str) -> None:
        return None

    @app.get("/files/{p:path}")
    def rest(p: str) -> None:
        return None

    rows = collect_routes(app.routes, path_depth=3)
    table = {row.path: row for row in rows}
    assert "http /files/:p/:p__2 (+1 deeper)" in format_table(rows)
    assert table["/files/{name}"].api_paths == ("/files/:name",)
    assert table["/files/{p:path}"].api_paths == ("/files/:p/:p__2", "/files/:p/:p__2/:p__3")


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
    assert {path: row.function_id for path, row in table.items()} == {
        "/api/hello": "greet::hello",
        "/api/items": "items::items",
        "/api/v1/users/{id:int}": "v1::user",
        "/api/sub/ping": "sub::ping",
        "/api/nested/deep/x": "nested::deep",
    }
    assert table["/api/items"].methods == ("GET", "POST")
    assert table["/api/v1/users/{id:int}"].api_paths == ("/api/v1/users/:id",)
