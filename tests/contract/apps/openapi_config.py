"""Metadata and docs URLs: custom ``openapi_url``, no ``/docs``, ReDoc elsewhere, tags."""

from typing import Any

from fastapi import FastAPI

TAGS = [{"name": "users", "description": "Operations with users."}]


def make_app() -> FastAPI:
    app = FastAPI(
        title="ChimichangApp",
        version="0.0.1",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
        redoc_url="/documentation",
        openapi_tags=TAGS,
    )

    @app.get("/users/", tags=["users"], summary="List users", operation_id="list_users")
    async def get_users() -> list[dict[str, str]]:
        return [{"name": "Harry"}]

    @app.get("/hidden", include_in_schema=False)
    async def hidden() -> str:
        return "not in the schema"

    return app


def check(client: Any) -> None:
    schema = client.get("/api/v1/openapi.json").json()
    assert schema["info"] == {"title": "ChimichangApp", "version": "0.0.1"}
    assert schema["tags"] == TAGS and "/hidden" not in schema["paths"]
    assert schema["paths"]["/users/"]["get"]["operationId"] == "list_users"
    assert client.get("/documentation").headers["content-type"].startswith("text/html")
    assert client.get("/hidden").json() == "not in the schema"
    assert client.get("/docs").status_code == 404
    assert client.get("/users/").json() == [{"name": "Harry"}]
