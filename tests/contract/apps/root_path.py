"""Behind a proxy that strips a prefix: the server's root path (``TestClient(app,
root_path=...)``, ``uvicorn --root-path``) in URLs and in the OpenAPI ``servers``."""

from typing import Any

from fastapi import FastAPI, Request

CLIENT_OPTIONS = {"root_path": "/api/v1"}


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/app")
    def read_main(request: Request) -> dict[str, Any]:
        return {
            "message": "Hello World",
            "root_path": request.scope.get("root_path"),
            "url": str(request.url),
            "for": str(request.url_for("read_main")),
        }

    return app


def check(client: Any) -> None:
    assert client.get("/app").json() == {
        "message": "Hello World",
        "root_path": "/api/v1",
        "url": "http://testserver/app",
        "for": "http://testserver/api/v1/app",
    }
    assert client.get("/openapi.json").json()["servers"] == [{"url": "/api/v1"}]
