"""Custom responses: HTML, plain text, XML, redirects, ``response_class``, a ``Response``
returned directly."""

from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/", response_class=HTMLResponse)
    async def read_items() -> str:
        return "<html><body><h1>Look ma! HTML! ✓</h1></body></html>"

    @app.get("/plain", response_class=PlainTextResponse)
    async def plain() -> str:
        return "Hello World"

    @app.get("/legacy/")
    def get_legacy_data() -> Response:
        data = '<?xml version="1.0"?><shampoo><Header>Apply shampoo here.</Header></shampoo>'
        return Response(content=data, media_type="application/xml")

    @app.get("/old")
    async def old() -> RedirectResponse:
        return RedirectResponse("/plain")

    @app.get("/moved", response_class=RedirectResponse, status_code=302)
    async def moved() -> str:
        return "/items/"

    return app


def check(client: Any) -> None:
    html = client.get("/items/")
    assert html.headers["content-type"] == "text/html; charset=utf-8"
    assert "Look ma! HTML! ✓" in html.text
    assert client.get("/plain").text == "Hello World"
    xml = client.get("/legacy/")
    assert xml.headers["content-type"] == "application/xml" and xml.text.startswith("<?xml")
    followed = client.get("/old")
    assert followed.text == "Hello World" and [r.status_code for r in followed.history] == [307]
    moved = client.get("/moved", follow_redirects=False)
    assert (moved.status_code, moved.headers["location"]) == (302, "/items/")
