"""Query and path validation: lengths, patterns, numbers, aliases, deprecated."""

from typing import Annotated, Any

from fastapi import FastAPI, Path, Query


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/")
    async def read_items(
        q: Annotated[str | None, Query(min_length=3, max_length=12, pattern="^fixed")] = None,
        item_query: Annotated[str | None, Query(alias="item-query")] = None,
    ) -> dict[str, Any]:
        return {"q": q, "item_query": item_query}

    @app.get("/items/{item_id}")
    async def read_item(
        item_id: Annotated[int, Path(title="The ID", ge=1, le=1000)],
        size: Annotated[float, Query(gt=0, lt=10.5)] = 1.0,
    ) -> dict[str, Any]:
        return {"item_id": item_id, "size": size}

    return app


def check(client: Any) -> None:
    assert client.get("/items/?q=fixedquery").json() == {"q": "fixedquery", "item_query": None}
    assert client.get("/items/?item-query=x").json() == {"q": None, "item_query": "x"}
    short = client.get("/items/?q=fi")
    assert short.status_code == 422 and short.json()["detail"][0]["type"] == "string_too_short"
    assert client.get("/items/?q=nope-not-fixed").status_code == 422
    assert client.get("/items/5?size=2.5").json() == {"item_id": 5, "size": 2.5}
    assert client.get("/items/0").json()["detail"][0]["type"] == "greater_than_equal"
    assert client.get("/items/5?size=10.5").json()["detail"][0]["type"] == "less_than"
    schema = client.get("/openapi.json").json()
    assert schema["paths"]["/items/{item_id}"]["get"]["parameters"][0]["schema"]["maximum"] == 1000
