"""Errors: ``HTTPException`` with headers, custom exceptions and handlers, overriding the
validation and HTTP error handlers."""

from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class UnicornException(Exception):
    def __init__(self, name: str) -> None:
        self.name = name


def make_app() -> FastAPI:
    app = FastAPI()
    items = {"foo": "The Foo Wrestlers"}

    @app.exception_handler(UnicornException)
    async def unicorn_handler(request: Request, exc: UnicornException) -> JSONResponse:
        return JSONResponse(status_code=418, content={"message": f"Oops! {exc.name} did it."})

    @app.exception_handler(RequestValidationError)
    async def validation_handler(request: Request, exc: RequestValidationError) -> Any:
        return PlainTextResponse(f"invalid: {len(exc.errors())} error(s)", status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_handler(request: Request, exc: StarletteHTTPException) -> Any:
        return PlainTextResponse(str(exc.detail), status_code=exc.status_code, headers=exc.headers)

    @app.get("/items/{item_id}")
    async def read_item(item_id: str) -> dict[str, str]:
        if item_id not in items:
            raise HTTPException(404, "Item not found", headers={"X-Error": "There goes my error"})
        return {"item": items[item_id]}

    @app.get("/unicorns/{name}")
    async def read_unicorn(name: str) -> dict[str, str]:
        if name == "yolo":
            raise UnicornException(name=name)
        return {"unicorn_name": name}

    @app.get("/numbers/{n}")
    async def numbers(n: int) -> int:
        return n

    return app


def check(client: Any) -> None:
    assert client.get("/items/foo").json() == {"item": "The Foo Wrestlers"}
    missing = client.get("/items/bar")
    assert (missing.status_code, missing.text) == (404, "Item not found")
    assert missing.headers["x-error"] == "There goes my error"
    unicorn = client.get("/unicorns/yolo")
    assert (unicorn.status_code, unicorn.json()) == (418, {"message": "Oops! yolo did it."})
    assert client.get("/unicorns/ok").json() == {"unicorn_name": "ok"}
    invalid = client.get("/numbers/x")
    assert (invalid.status_code, invalid.text) == (400, "invalid: 1 error(s)")
