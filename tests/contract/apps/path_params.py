"""Path parameters: types, order, enums, ``{file_path:path}``."""

from enum import Enum
from typing import Any

from fastapi import FastAPI


class ModelName(str, Enum):
    alexnet = "alexnet"
    resnet = "resnet"
    lenet = "lenet"


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def read_item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    @app.get("/users/me")
    async def read_user_me() -> dict[str, str]:
        return {"user_id": "the current user"}

    @app.get("/users/{user_id}")
    async def read_user(user_id: str) -> dict[str, str]:
        return {"user_id": user_id}

    @app.get("/models/{model_name}")
    async def get_model(model_name: ModelName) -> dict[str, str]:
        if model_name is ModelName.alexnet:
            return {"model_name": model_name, "message": "Deep Learning FTW!"}
        return {"model_name": model_name, "message": "Have some residuals"}

    @app.get("/files/{file_path:path}")
    async def read_file(file_path: str) -> dict[str, str]:
        return {"file_path": file_path}

    return app


def check(client: Any) -> None:
    assert client.get("/items/3").json() == {"item_id": 3}
    response = client.get("/items/foo")
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "int_parsing"
    assert client.get("/users/me").json() == {"user_id": "the current user"}
    assert client.get("/users/ann%20b").json() == {"user_id": "ann b"}
    assert client.get("/models/alexnet").json()["message"] == "Deep Learning FTW!"
    assert client.get("/models/lenet").json() == {
        "model_name": "lenet",
        "message": "Have some residuals",
    }
    assert client.get("/models/vgg").status_code == 422
    assert client.get("/files/home/johndoe/myfile.txt").json() == {
        "file_path": "home/johndoe/myfile.txt"
    }
    assert client.get("/files//home/johndoe/myfile.txt").json() == {
        "file_path": "/home/johndoe/myfile.txt"
    }
