"""Dependencies with ``yield``: setup and teardown around the request, exceptions seen by the
dependency, sub-dependencies torn down in reverse order."""

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException

EVENTS: list[str] = []


class OwnerError(Exception):
    pass


def get_db() -> Iterator[str]:
    EVENTS.append("db open")
    try:
        yield "db"
    finally:
        EVENTS.append("db close")


def get_user(db: Annotated[str, Depends(get_db)]) -> Iterator[str]:
    EVENTS.append(f"user from {db}")
    try:
        yield "rick"
    except OwnerError as exc:
        EVENTS.append(f"owner error: {exc}")
        raise HTTPException(status_code=400, detail=f"Owner error: {exc}") from exc
    finally:
        EVENTS.append("user done")


def make_app() -> FastAPI:
    app = FastAPI()
    data = {"plumbus": {"description": "Freshly pickled plumbus", "owner": "morty"}}

    @app.get("/items/{item_id}")
    def get_item(item_id: str, username: Annotated[str, Depends(get_user)]) -> Any:
        if item_id not in data:
            raise HTTPException(status_code=404, detail="Item not found")
        item = data[item_id]
        if item["owner"] != username:
            raise OwnerError(username)
        return item

    @app.get("/me")
    def me(username: Annotated[str, Depends(get_user)]) -> str:
        return username

    return app


def check(client: Any) -> None:
    EVENTS.clear()
    assert client.get("/me").json() == "rick"
    assert EVENTS == ["db open", "user from db", "user done", "db close"]
    EVENTS.clear()
    owner = client.get("/items/plumbus")
    assert (owner.status_code, owner.json()) == (400, {"detail": "Owner error: rick"})
    assert EVENTS == ["db open", "user from db", "owner error: rick", "user done", "db close"]
    EVENTS.clear()
    assert client.get("/items/portal-gun").status_code == 404
    assert EVENTS[-1] == "db close"
