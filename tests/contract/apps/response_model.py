"""``response_model``: filtering output, ``exclude_unset``, include/exclude, return types."""

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel


class UserIn(BaseModel):
    username: str
    password: str
    email: str
    full_name: str | None = None


class UserOut(BaseModel):
    username: str
    email: str
    full_name: str | None = None


class Item(BaseModel):
    name: str
    description: str | None = None
    price: float
    tax: float = 10.5
    tags: list[str] = []


ITEMS = {
    "foo": {"name": "Foo", "price": 50.2},
    "bar": {"name": "Bar", "description": "The bartenders", "price": 62, "tax": 20.2},
}


def make_app() -> FastAPI:
    app = FastAPI()

    @app.post("/user/", response_model=UserOut)
    async def create_user(user: UserIn) -> Any:
        return user

    @app.get("/items/{item_id}", response_model=Item, response_model_exclude_unset=True)
    async def read_item(item_id: str) -> Any:
        return ITEMS[item_id]

    @app.get("/items/{item_id}/name", response_model=Item, response_model_include={"name"})
    async def read_item_name(item_id: str) -> Any:
        return ITEMS[item_id]

    @app.get("/items/{item_id}/public", response_model=Item, response_model_exclude={"tax"})
    async def read_item_public(item_id: str) -> Any:
        return ITEMS[item_id]

    return app


def check(client: Any) -> None:
    user = {"username": "john", "password": "secret", "email": "john@example.com"}
    assert client.post("/user/", json=user).json() == {
        "username": "john",
        "email": "john@example.com",
        "full_name": None,
    }
    assert client.get("/items/foo").json() == {"name": "Foo", "price": 50.2}
    assert client.get("/items/bar").json()["tax"] == 20.2
    assert client.get("/items/bar/name").json() == {"name": "Bar"}
    assert "tax" not in client.get("/items/bar/public").json()
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert "password" not in schema["UserOut"]["properties"]
