"""Security: API keys in a header, a query parameter or a cookie."""

from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Security
from fastapi.security import APIKeyCookie, APIKeyHeader, APIKeyQuery

header_key = APIKeyHeader(name="X-API-Key", auto_error=False)
query_key = APIKeyQuery(name="api_key", auto_error=False)
cookie_key = APIKeyCookie(name="session", auto_error=False)


def api_key(
    header: Annotated[str | None, Security(header_key)],
    query: Annotated[str | None, Security(query_key)],
    cookie: Annotated[str | None, Security(cookie_key)],
) -> str:
    for where, key in (("header", header), ("query", query), ("cookie", cookie)):
        if key == "k3y":
            return where
    raise HTTPException(status_code=403, detail="Could not validate credentials")


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/protected")
    def protected(where: Annotated[str, Depends(api_key)]) -> dict[str, str]:
        return {"via": where}

    return app


def check(client: Any) -> None:
    assert client.get("/protected", headers={"X-API-Key": "k3y"}).json() == {"via": "header"}
    assert client.get("/protected?api_key=k3y").json() == {"via": "query"}
    client.cookies.set("session", "k3y")
    assert client.get("/protected").json() == {"via": "cookie"}
    client.cookies.clear()
    denied = client.get("/protected", headers={"X-API-Key": "wrong"})
    assert (denied.status_code, denied.json()) == (
        403,
        {"detail": "Could not validate credentials"},
    )
