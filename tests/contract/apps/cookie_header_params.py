"""Cookie and Header parameters, duplicate headers, header and cookie models."""

from typing import Annotated, Any

from fastapi import Cookie, FastAPI, Header
from pydantic import BaseModel


class Cookies(BaseModel):
    model_config = {"extra": "forbid"}

    session_id: str
    tracker: str | None = None


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/cookie/")
    async def read_cookie(ads_id: Annotated[str | None, Cookie()] = None) -> dict[str, Any]:
        return {"ads_id": ads_id}

    @app.get("/headers/")
    async def read_headers(
        user_agent: Annotated[str | None, Header()] = None,
        strange_header: Annotated[str | None, Header(convert_underscores=False)] = None,
        x_token: Annotated[list[str] | None, Header()] = None,
    ) -> dict[str, Any]:
        return {"user_agent": user_agent, "strange": strange_header, "x_token": x_token}

    @app.get("/cookie-model/")
    async def cookie_model(cookies: Annotated[Cookies, Cookie()]) -> Cookies:
        return cookies

    return app


def check(client: Any) -> None:
    assert client.get("/cookie/").json() == {"ads_id": None}
    client.cookies.set("ads_id", "a1")
    assert client.get("/cookie/").json() == {"ads_id": "a1"}
    client.cookies.clear()
    headers = client.get(
        "/headers/", headers=[("strange_header", "s"), ("x-token", "foo"), ("x-token", "bar")]
    ).json()
    assert headers == {"user_agent": "testclient", "strange": "s", "x_token": ["foo", "bar"]}
    client.cookies.set("session_id", "s")
    assert client.get("/cookie-model/").json() == {"session_id": "s", "tracker": None}
    client.cookies.set("x", "1")
    assert client.get("/cookie-model/").status_code == 422
    client.cookies.clear()
