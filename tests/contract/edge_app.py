"""Edge cases for the bridge contract, as one FastAPI app (a fresh one per ``make_app()``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, StreamingResponse

from iii_asgi import IIIBridge


class Gate:
    """Holds the gated stream after its first chunk until the test opens it."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.first_sent = False
        self.finished = False


def make_app() -> tuple[FastAPI, IIIBridge, Gate]:
    app = FastAPI()
    gate = Gate()

    @app.get("/edge/teapot")
    async def teapot() -> Response:
        return JSONResponse({"short": "and stout"}, status_code=418, headers={"x-pot": "tea"})

    @app.get("/edge/cookies")
    async def cookies() -> Response:
        response = PlainTextResponse("two cookies")
        response.set_cookie("a", "1")
        response.set_cookie("b", "2", httponly=True)
        return response

    @app.get("/edge/unicode")
    async def unicode() -> dict[str, str]:
        return {"text": "naïve café — 日本語 ✓"}

    @app.get("/edge/big")
    async def big(kib: int = 300) -> dict[str, Any]:
        return {"items": ["x" * 1000] * kib}

    @app.get("/edge/binary")
    async def binary() -> Response:
        return Response(bytes(range(256)) * 4, media_type="application/octet-stream")

    @app.post("/edge/upload")
    async def upload(request: Request) -> dict[str, Any]:
        body = await request.body()
        return {
            "length": len(body),
            "first": list(body[:4]),
            "content_type": request.headers.get("content-type"),
        }

    @app.get("/edge/query")
    async def query(tag: Annotated[list[str], Query()] = [], q: str = "") -> dict[str, Any]:  # noqa: B006
        return {"tag": tag, "q": q}

    @app.get("/edge/header")
    async def header(x_token: str = Header()) -> dict[str, str]:
        return {"token": x_token}

    @app.get("/edge/forbidden")
    async def forbidden() -> None:
        raise HTTPException(403, detail="nope", headers={"www-authenticate": "Bearer"})

    @app.get("/edge/crash")
    async def crash() -> None:
        raise RuntimeError("unhandled on purpose")

    @app.get("/edge/redirect")
    async def redirect() -> Response:
        return RedirectResponse("/edge/unicode", status_code=307)

    @app.get("/edge/empty", status_code=204)
    async def empty() -> Response:
        return Response(status_code=204)

    @app.put("/edge/items/{item_id}")
    async def put_item(item_id: int, body: dict[str, Any]) -> dict[str, Any]:
        return {"item_id": item_id, **body}

    @app.get("/edge/files/{path:path}")
    async def files(path: str) -> dict[str, str]:
        return {"path": path}

    @app.get("/edge/gated")
    async def gated() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first\n"
            gate.first_sent = True
            await gate.opened.wait()
            yield b"second\n"
            gate.finished = True

        return StreamingResponse(chunks(), media_type="text/plain")

    bridge = IIIBridge(app)
    return app, bridge, gate
