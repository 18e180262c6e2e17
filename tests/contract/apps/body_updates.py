"""Body updates: replacing with PUT, partial PATCH with ``exclude_unset``, ``jsonable_encoder``."""

from datetime import datetime
from typing import Any

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel


class Item(BaseModel):
    name: str | None = None
    description: str | None = None
    price: float | None = None
    tax: float = 10.5
    tags: list[str] = []
    updated: datetime | None = None


def make_app() -> FastAPI:
    app = FastAPI()
    items: dict[str, Any] = {
        "foo": {"name": "Foo", "price": 50.2},
        "bar": {"name": "Bar", "description": "The bartenders", "price": 62, "tax": 20.2},
    }

    @app.get("/items/{item_id}", response_model=Item)
    async def read_item(item_id: str) -> Any:
        return items[item_id]

    @app.put("/items/{item_id}", response_model=Item)
    async def update_item(item_id: str, item: Item) -> Any:
        items[item_id] = jsonable_encoder(item)
        return items[item_id]

    @app.patch("/items/{item_id}", response_model=Item)
    async def patch_item(item_id: str, item: Item) -> Any:
        stored = Item(**items[item_id])
        updated = stored.model_copy(update=item.model_dump(exclude_unset=True))
        items[item_id] = jsonable_encoder(updated)
        return updated

    return app


def check(client: Any) -> None:
    patched = client.patch("/items/bar", json={"name": "Barz", "updated": "2024-05-01T12:00:00"})
    assert patched.json()["name"] == "Barz" and patched.json()["tax"] == 20.2
    assert client.get("/items/bar").json()["updated"] == "2024-05-01T12:00:00"
    replaced = client.put("/items/foo", json={"name": "New Foo"})
    assert replaced.json() == {
        "name": "New Foo",
        "description": None,
        "price": None,
        "tax": 10.5,
        "tags": [],
        "updated": None,
    }
