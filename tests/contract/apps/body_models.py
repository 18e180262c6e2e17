"""Request body: a model, path + query + body, multiple bodies, ``Body(embed=True)``."""

from typing import Annotated, Any

from fastapi import Body, FastAPI
from pydantic import BaseModel


class Item(BaseModel):
    name: str
    description: str | None = None
    price: float
    tax: float | None = None


class User(BaseModel):
    username: str
    full_name: str | None = None


def make_app() -> FastAPI:
    app = FastAPI()

    @app.post("/items/")
    async def create_item(item: Item) -> dict[str, Any]:
        data = item.model_dump()
        if item.tax is not None:
            data["price_with_tax"] = item.price + item.tax
        return data

    @app.put("/items/{item_id}")
    async def update_item(item_id: int, item: Item, q: str | None = None) -> dict[str, Any]:
        return {"item_id": item_id, **item.model_dump(), "q": q}

    @app.put("/multi/{item_id}")
    async def multi(
        item_id: int, item: Item, user: User, importance: Annotated[int, Body(gt=0)]
    ) -> dict[str, Any]:
        return {"item_id": item_id, "item": item, "user": user, "importance": importance}

    @app.put("/embedded/{item_id}")
    async def embedded(item_id: int, item: Annotated[Item, Body(embed=True)]) -> dict[str, Any]:
        return {"item_id": item_id, "item": item}

    return app


def check(client: Any) -> None:
    created = client.post("/items/", json={"name": "Foo", "price": 35.4, "tax": 3.2})
    assert created.json() == {
        "name": "Foo",
        "description": None,
        "price": 35.4,
        "tax": 3.2,
        "price_with_tax": 38.6,
    }
    assert client.post("/items/", json={"name": "Foo"}).json()["detail"][0]["loc"] == [
        "body",
        "price",
    ]
    bad = client.post("/items/", content=b"{bad json", headers={"content-type": "application/json"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["type"] == "json_invalid"
    assert client.put("/items/5?q=x", json={"name": "A", "price": 1}).json()["q"] == "x"
    multi = client.put(
        "/multi/1",
        json={"item": {"name": "a", "price": 1}, "user": {"username": "dave"}, "importance": 5},
    )
    assert multi.json()["user"] == {"username": "dave", "full_name": None}
    assert multi.json()["importance"] == 5
    assert client.put("/embedded/2", json={"item": {"name": "e", "price": 2}}).json() == {
        "item_id": 2,
        "item": {"name": "e", "description": None, "price": 2.0, "tax": None},
    }
    assert client.put("/embedded/2", json={"name": "e", "price": 2}).status_code == 422
