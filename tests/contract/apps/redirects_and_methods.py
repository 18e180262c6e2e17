"""``redirect_slashes``, allowed methods, HEAD, and a route added after the app started."""

from typing import Any

from fastapi import FastAPI


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items")
    def items() -> list[str]:
        return ["a"]

    @app.get("/folders/")
    def folders() -> list[str]:
        return ["f"]

    @app.post("/items")
    def create() -> dict[str, bool]:
        return {"created": True}

    return app


def check(client: Any) -> None:
    redirected = client.get("/items/")
    assert redirected.json() == ["a"] and redirected.history[0].status_code == 307
    assert redirected.history[0].headers["location"] == "http://testserver/items"
    assert client.get("/folders").json() == ["f"]
    assert client.post("/items/").json() == {"created": True}  # 307 keeps the method
    assert client.put("/items").status_code == 405
    # FastAPI's GET routes do not take HEAD (Starlette's do): the app's own 405
    head = client.head("/items")
    assert head.status_code == 405 and head.headers["allow"] == "GET"
