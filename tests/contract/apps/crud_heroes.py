"""A typical small CRUD app with an in-memory store (ids, 201, 404, listing, deletion)."""

from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel


class HeroIn(BaseModel):
    name: str
    secret_name: str
    age: int | None = None


class Hero(HeroIn):
    id: int


def make_app() -> FastAPI:
    app = FastAPI()
    heroes: dict[int, Hero] = {}

    @app.post("/heroes/", status_code=201)
    def create_hero(hero: HeroIn) -> Hero:
        created = Hero(id=len(heroes) + 1, **hero.model_dump())
        heroes[created.id] = created
        return created

    @app.get("/heroes/")
    def read_heroes(offset: int = 0, limit: int = 100) -> list[Hero]:
        return list(heroes.values())[offset : offset + limit]

    @app.get("/heroes/{hero_id}")
    def read_hero(hero_id: int) -> Hero:
        if hero_id not in heroes:
            raise HTTPException(status_code=404, detail="Hero not found")
        return heroes[hero_id]

    @app.delete("/heroes/{hero_id}")
    def delete_hero(hero_id: int) -> dict[str, bool]:
        if heroes.pop(hero_id, None) is None:
            raise HTTPException(status_code=404, detail="Hero not found")
        return {"ok": True}

    return app


def check(client: Any) -> None:
    for name in ("Deadpond", "Spider-Boy", "Rusty-Man"):
        created = client.post("/heroes/", json={"name": name, "secret_name": name.lower()})
        assert created.status_code == 201
    assert [h["id"] for h in client.get("/heroes/?offset=1").json()] == [2, 3]
    assert client.get("/heroes/2").json()["name"] == "Spider-Boy"
    assert client.delete("/heroes/2").json() == {"ok": True}
    missing = client.get("/heroes/2")
    assert (missing.status_code, missing.json()) == (404, {"detail": "Hero not found"})
    assert client.post("/heroes/", json={"name": "x"}).status_code == 422
