"""An unhandled exception: a 500 with ``raise_server_exceptions=False``, raised in the test
otherwise; a custom handler for ``Exception``."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


class Boom(RuntimeError):
    pass


def make_app() -> FastAPI:
    app = FastAPI()

    @app.exception_handler(ZeroDivisionError)
    async def zero(request: Request, exc: ZeroDivisionError) -> JSONResponse:
        return JSONResponse({"error": "division by zero"}, status_code=400)

    @app.get("/divide")
    def divide(a: int, b: int) -> float:
        return a / b

    @app.get("/boom")
    def boom() -> None:
        raise Boom("kaboom")

    return app


def check(client: Any) -> None:
    assert client.get("/divide?a=6&b=3").json() == 2.0
    assert client.get("/divide?a=1&b=0").json() == {"error": "division by zero"}
    try:
        client.get("/boom")
    except Boom as exc:
        assert str(exc) == "kaboom"
    else:
        raise AssertionError("the app's exception was not raised in the test")
