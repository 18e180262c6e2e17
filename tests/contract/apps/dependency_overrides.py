"""Testing with dependency overrides."""

from typing import Annotated, Any

from fastapi import Depends, FastAPI


async def common_parameters(
    q: str | None = None, skip: int = 0, limit: int = 100
) -> dict[str, Any]:
    return {"q": q, "skip": skip, "limit": limit}


async def override_dependency(q: str | None = None) -> dict[str, Any]:
    return {"q": q, "skip": 5, "limit": 10}


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/")
    async def read_items(commons: Annotated[dict[str, Any], Depends(common_parameters)]) -> Any:
        return {"message": "Hello Items!", "params": commons}

    app.dependency_overrides[common_parameters] = override_dependency
    return app


def check(client: Any) -> None:
    assert client.get("/items/?q=foo&skip=100").json() == {
        "message": "Hello Items!",
        "params": {"q": "foo", "skip": 5, "limit": 10},
    }
