"""Status codes: ``status_code=``, 204, a ``Response`` parameter changing the status."""

from typing import Any

from fastapi import FastAPI, Response, status


def make_app() -> FastAPI:
    app = FastAPI()
    tasks = {"foo": "Listen to the Bar Fighters"}

    @app.post("/items/", status_code=status.HTTP_201_CREATED)
    async def create_item(name: str) -> dict[str, str]:
        return {"name": name}

    @app.delete("/items/{name}", status_code=204)
    async def delete_item(name: str) -> None:
        return None

    @app.put("/get-or-create-task/{task_id}", status_code=200)
    def get_or_create_task(task_id: str, response: Response) -> str:
        if task_id not in tasks:
            tasks[task_id] = "This didn't exist before"
            response.status_code = status.HTTP_201_CREATED
        return tasks[task_id]

    @app.get("/teapot")
    async def teapot() -> Response:
        return Response(content="short and stout", status_code=418, media_type="text/plain")

    return app


def check(client: Any) -> None:
    created = client.post("/items/?name=x")
    assert (created.status_code, created.json()) == (201, {"name": "x"})
    deleted = client.delete("/items/x")
    assert deleted.status_code == 204 and deleted.content == b""
    assert "content-length" not in deleted.headers
    assert client.put("/get-or-create-task/foo").status_code == 200
    new = client.put("/get-or-create-task/bar")
    assert (new.status_code, new.json()) == (201, "This didn't exist before")
    pot = client.get("/teapot")
    assert (pot.status_code, pot.text, pot.headers["content-type"]) == (
        418,
        "short and stout",
        "text/plain; charset=utf-8",
    )
