"""Query parameters: defaults, optional, bool conversion, required, lists."""

from typing import Annotated, Any

from fastapi import FastAPI, Query

FAKE_ITEMS = [{"item_name": "Foo"}, {"item_name": "Bar"}, {"item_name": "Baz"}]


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/")
    async def list_items(skip: int = 0, limit: int = 10) -> list[dict[str, str]]:
        return FAKE_ITEMS[skip : skip + limit]

    @app.get("/items/{item_id}")
    async def read_item(item_id: str, q: str | None = None, short: bool = False) -> dict[str, Any]:
        item: dict[str, Any] = {"item_id": item_id}
        if q:
            item["q"] = q
        if not short:
            item["description"] = "This is an amazing item that has a long description"
        return item

    @app.get("/needy/{item_id}")
    async def needy(item_id: str, needy: str) -> dict[str, str]:
        return {"item_id": item_id, "needy": needy}

    @app.get("/tags/")
    async def tags(q: Annotated[list[str], Query()] = ["foo", "bar"]) -> dict[str, list[str]]:  # noqa: B006
        return {"q": q}

    return app


def check(client: Any) -> None:
    assert client.get("/items/").json() == FAKE_ITEMS
    assert client.get("/items/?skip=1&limit=1").json() == [{"item_name": "Bar"}]
    assert client.get("/items/foo?q=hi&short=yes").json() == {"item_id": "foo", "q": "hi"}
    assert client.get("/items/foo", params={"short": "off"}).json()["description"]
    assert client.get("/items/x?short=maybe").status_code == 422
    assert client.get("/needy/a?needy=sooo").json() == {"item_id": "a", "needy": "sooo"}
    missing = client.get("/needy/a")
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["query", "needy"]
    assert client.get("/tags/").json() == {"q": ["foo", "bar"]}
    assert client.get("/tags/?q=a&q=b%20c&q=a").json() == {"q": ["a", "b c", "a"]}
