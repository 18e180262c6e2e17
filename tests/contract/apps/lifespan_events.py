"""Lifespan: resources made at startup used by routes (through the lifespan state too)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request

EVENTS: list[str] = []


def make_app() -> FastAPI:
    models: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        EVENTS.append("startup")
        models["answer"] = lambda x: x * 42
        yield {"pool": "the-pool"}
        models.clear()
        EVENTS.append("shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.get("/predict")
    async def predict(x: float, request: Request) -> dict[str, Any]:
        return {"result": models["answer"](x), "pool": request.state.pool}

    return app


def check(client: Any) -> None:
    assert EVENTS[-1] == "startup"
    assert client.get("/predict?x=2").json() == {"result": 84.0, "pool": "the-pool"}
