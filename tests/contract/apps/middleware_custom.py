"""Middleware: ``@app.middleware("http")`` and a pure ASGI middleware class."""

import time
from typing import Any

from fastapi import FastAPI, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class StampMiddleware:
    def __init__(self, app: ASGIApp, stamp: str) -> None:
        self.app = app
        self.stamp = stamp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-stamp", self.stamp.encode()))
            await send(message)

        await self.app(scope, receive, stamped)


def make_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(StampMiddleware, stamp="v1")

    @app.middleware("http")
    async def add_process_time_header(request: Request, call_next: Any) -> Any:
        start = time.perf_counter()
        response = await call_next(request)
        response.headers["X-Process-Time"] = str(time.perf_counter() - start)
        if request.url.path == "/blocked":
            response.status_code = 403
        return response

    @app.get("/")
    async def root() -> dict[str, str]:
        return {"message": "Hello World"}

    @app.get("/blocked")
    async def blocked() -> dict[str, str]:
        return {"message": "nope"}

    return app


def check(client: Any) -> None:
    response = client.get("/")
    assert response.json() == {"message": "Hello World"}
    assert float(response.headers["x-process-time"]) >= 0
    assert response.headers["x-stamp"] == "v1"
    assert client.get("/blocked").status_code == 403
