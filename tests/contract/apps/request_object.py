"""Using the ``Request`` directly: URL, client, query, headers, ``url_for``, raw body."""

from typing import Any

from fastapi import FastAPI, Request


def make_app() -> FastAPI:
    app = FastAPI()

    @app.api_route("/items/{item_id}", methods=["GET", "PUT"], name="item")
    async def read_root(item_id: str, request: Request) -> dict[str, Any]:
        client_host = request.client.host if request.client else None
        return {
            "client_host": client_host,
            "item_id": item_id,
            "method": request.method,
            "url": str(request.url),
            "base_url": str(request.base_url),
            "query": request.query_params.multi_items(),
            "path_params": request.path_params,
            "for": str(request.url_for("item", item_id="x y")),
            "body": (await request.body()).decode(),
        }

    return app


def check(client: Any) -> None:
    data = client.put("/items/a%20b?x=1&x=2&y=%C3%A9", content=b"raw text").json()
    assert data == {
        "client_host": "testclient",
        "item_id": "a b",
        "method": "PUT",
        "url": "http://testserver/items/a b?x=1&x=2&y=%C3%A9",
        "base_url": "http://testserver/",
        "query": [["x", "1"], ["x", "2"], ["y", "é"]],
        "path_params": {"item_id": "a b"},
        "for": "http://testserver/items/x y",
        "body": "raw text",
    }
