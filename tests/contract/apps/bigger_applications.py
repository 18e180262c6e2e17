"""Bigger applications: routers with prefixes, tags, dependencies and extra responses."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException


async def get_token_header(x_token: Annotated[str, Header()]) -> None:
    if x_token != "fake-super-secret-token":
        raise HTTPException(status_code=400, detail="X-Token header invalid")


async def get_query_token(token: str) -> None:
    if token != "jessica":
        raise HTTPException(status_code=400, detail="No Jessica token provided")


users = APIRouter()


@users.get("/users/", tags=["users"])
async def read_users() -> list[dict[str, str]]:
    return [{"username": "Rick"}, {"username": "Morty"}]


@users.get("/users/{username}", tags=["users"])
async def read_user(username: str) -> dict[str, str]:
    return {"username": username}


items = APIRouter(
    prefix="/items",
    tags=["items"],
    dependencies=[Depends(get_token_header)],
    responses={404: {"description": "Not found"}},
)
ITEMS = {"plumbus": {"name": "Plumbus"}, "gun": {"name": "Portal Gun"}}


@items.get("/")
async def read_items() -> dict[str, Any]:
    return ITEMS


@items.get("/{item_id}")
async def read_item(item_id: str) -> dict[str, str]:
    if item_id not in ITEMS:
        raise HTTPException(status_code=404, detail="Item not found")
    return {"name": ITEMS[item_id]["name"], "item_id": item_id}


admin = APIRouter()


@admin.post("/")
async def update_admin() -> dict[str, str]:
    return {"message": "Admin getting schwifty"}


def make_app() -> FastAPI:
    app = FastAPI(dependencies=[Depends(get_query_token)])
    app.include_router(users)
    app.include_router(items)
    app.include_router(
        admin, prefix="/admin", tags=["admin"], responses={418: {"description": "teapot"}}
    )
    app.include_router(users, prefix="/v2")

    @app.get("/")
    async def root() -> dict[str, str]:
        return {"message": "Hello Bigger Applications!"}

    return app


HEADERS = {"X-Token": "fake-super-secret-token"}


def check(client: Any) -> None:
    assert client.get("/?token=jessica").json() == {"message": "Hello Bigger Applications!"}
    assert client.get("/").status_code == 422
    assert client.get("/users/?token=jessica").json()[0] == {"username": "Rick"}
    assert client.get("/v2/users/summer?token=jessica").json() == {"username": "summer"}
    assert client.get("/items/gun?token=jessica", headers=HEADERS).json() == {
        "name": "Portal Gun",
        "item_id": "gun",
    }
    assert client.get("/items/?token=jessica").json() == {
        "detail": [
            {
                "type": "missing",
                "loc": ["header", "x-token"],
                "msg": "Field required",
                "input": None,
            }
        ]
    }
    assert client.get("/items/x?token=jessica", headers=HEADERS).status_code == 404
    assert client.post("/admin/?token=jessica").json() == {"message": "Admin getting schwifty"}
    paths = client.get("/openapi.json").json()["paths"]
    assert paths["/items/{item_id}"]["get"]["tags"] == ["items"]
    assert "418" in paths["/admin/"]["post"]["responses"]
