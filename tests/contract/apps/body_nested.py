"""Nested models, lists and sets, ``HttpUrl``, bodies of pure lists and dicts."""

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, HttpUrl


class Image(BaseModel):
    url: HttpUrl
    name: str


class Item(BaseModel):
    name: str
    price: float
    tags: set[str] = set()
    images: list[Image] | None = None


def make_app() -> FastAPI:
    app = FastAPI()

    @app.put("/items/{item_id}")
    async def update_item(item_id: int, item: Item) -> dict[str, Any]:
        return {"item_id": item_id, "item": item}

    @app.post("/images/multiple/")
    async def create_images(images: list[Image]) -> list[Image]:
        return images

    @app.post("/index-weights/")
    async def weights(weights: dict[int, float]) -> dict[int, float]:
        return weights

    return app


def check(client: Any) -> None:
    body = {
        "name": "Foo",
        "price": 42.0,
        "tags": ["rock", "metal", "rock"],
        "images": [{"url": "http://example.com/baz.jpg", "name": "The Foo live"}],
    }
    item = client.put("/items/1", json=body).json()["item"]
    assert sorted(item["tags"]) == ["metal", "rock"]
    assert item["images"][0]["url"] == "http://example.com/baz.jpg"
    bad = client.put("/items/1", json={**body, "images": [{"url": "nope", "name": "x"}]})
    assert bad.status_code == 422 and bad.json()["detail"][0]["type"] == "url_parsing"
    images = [{"url": "https://example.com/a.png", "name": "ä ✓"}]
    assert client.post("/images/multiple/", json=images).json() == images
    assert client.post("/index-weights/", json={"1": 0.5, "2": 1}).json() == {"1": 0.5, "2": 1.0}
