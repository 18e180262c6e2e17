"""Sub-applications mounted with their own docs, and a mounted plain ASGI app."""

from typing import Any

from fastapi import FastAPI, Request
from starlette.types import Receive, Scope, Send


async def raw(scope: Scope, receive: Receive, send: Send) -> None:
    body = f"raw {scope['method']} {scope['path']} root={scope['root_path']}".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/app")
    def read_main() -> dict[str, str]:
        return {"message": "Hello World from main app"}

    subapi = FastAPI()

    @subapi.get("/sub")
    def read_sub(request: Request) -> dict[str, str]:
        return {"message": "Hello World from sub API", "root_path": request.scope["root_path"]}

    app.mount("/subapi", subapi)
    app.mount("/raw", raw)
    return app


def check(client: Any) -> None:
    assert client.get("/app").json() == {"message": "Hello World from main app"}
    assert client.get("/subapi/sub").json() == {
        "message": "Hello World from sub API",
        "root_path": "/subapi",
    }
    assert client.get("/subapi/docs").status_code == 200
    assert client.get("/subapi/openapi.json").json()["servers"] == [{"url": "/subapi"}]
    assert "/sub" in client.get("/subapi/openapi.json").json()["paths"]
    assert client.post("/raw/a/b").text == "raw POST /raw/a/b root=/raw"
