"""Dependencies: functions, classes, sub-dependencies, caching, in the decorator, global."""

from typing import Annotated, Any

from fastapi import Cookie, Depends, FastAPI, Header, HTTPException

CALLS: list[str] = []


async def common_parameters(
    q: str | None = None, skip: int = 0, limit: int = 100
) -> dict[str, Any]:
    return {"q": q, "skip": skip, "limit": limit}


class CommonQueryParams:
    def __init__(self, q: str | None = None, skip: int = 0, limit: int = 100) -> None:
        self.q = q
        self.skip = skip
        self.limit = limit


def query_extractor(q: str | None = None) -> str | None:
    CALLS.append("query_extractor")
    return q


def query_or_cookie_extractor(
    q: Annotated[str | None, Depends(query_extractor)],
    last_query: Annotated[str | None, Cookie()] = None,
) -> str | None:
    return q or last_query


async def verify_token(x_token: Annotated[str, Header()]) -> None:
    if x_token != "fake-super-secret-token":
        raise HTTPException(status_code=400, detail="X-Token header invalid")


async def verify_key(x_key: Annotated[str, Header()]) -> str:
    if x_key != "fake-super-secret-key":
        raise HTTPException(status_code=400, detail="X-Key header invalid")
    return x_key


def make_app() -> FastAPI:
    app = FastAPI(dependencies=[Depends(verify_token)])

    @app.get("/items/")
    async def read_items(commons: Annotated[dict[str, Any], Depends(common_parameters)]) -> Any:
        return commons

    @app.get("/users/")
    async def read_users(commons: Annotated[CommonQueryParams, Depends()]) -> Any:
        return {"q": commons.q, "skip": commons.skip, "limit": commons.limit}

    @app.get("/query/")
    async def read_query(
        query: Annotated[str | None, Depends(query_or_cookie_extractor)],
        again: Annotated[str | None, Depends(query_extractor)],
    ) -> Any:
        return {"q_or_cookie": query, "extractor_calls": CALLS.count("query_extractor")}

    @app.get("/keyed/", dependencies=[Depends(verify_key)])
    async def keyed() -> list[str]:
        return ["ok"]

    return app


TOKEN = {"x-token": "fake-super-secret-token"}


def check(client: Any) -> None:
    CALLS.clear()
    assert client.get("/items/?q=a&limit=5", headers=TOKEN).json() == {
        "q": "a",
        "skip": 0,
        "limit": 5,
    }
    assert client.get("/items/").status_code == 422  # the global dependency's header
    bad = client.get("/items/", headers={"x-token": "nope"})
    assert (bad.status_code, bad.json()) == (400, {"detail": "X-Token header invalid"})
    assert client.get("/users/?skip=3", headers=TOKEN).json() == {
        "q": None,
        "skip": 3,
        "limit": 100,
    }
    client.cookies.set("last_query", "from-cookie")
    assert client.get("/query/", headers=TOKEN).json() == {
        "q_or_cookie": "from-cookie",
        "extractor_calls": 1,  # cached within a request
    }
    client.cookies.clear()
    assert client.get("/keyed/", headers={**TOKEN, "x-key": "fake-super-secret-key"}).json() == [
        "ok"
    ]
    assert client.get("/keyed/", headers={**TOKEN, "x-key": "x"}).status_code == 400
