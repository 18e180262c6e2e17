"""Form data: ``Form()`` fields, form models, an OAuth2-style login form."""

from typing import Annotated, Any

from fastapi import FastAPI, Form
from pydantic import BaseModel


class FormData(BaseModel):
    model_config = {"extra": "forbid"}

    username: str
    password: str


def make_app() -> FastAPI:
    app = FastAPI()

    @app.post("/login/")
    async def login(
        username: Annotated[str, Form()], password: Annotated[str, Form()]
    ) -> dict[str, Any]:
        return {"username": username, "length": len(password)}

    @app.post("/login-model/")
    async def login_model(data: Annotated[FormData, Form()]) -> FormData:
        return data

    return app


def check(client: Any) -> None:
    response = client.post("/login/", data={"username": "ädmin", "password": "s3cret&x=1"})
    assert response.json() == {"username": "ädmin", "length": 10}
    missing = client.post("/login/", data={"username": "x"})
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "password"]
    assert client.post("/login-model/", data={"username": "a", "password": "b"}).json() == {
        "username": "a",
        "password": "b",
    }
    extra = client.post("/login-model/", data={"username": "a", "password": "b", "x": "1"})
    assert extra.status_code == 422
