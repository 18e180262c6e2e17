"""Built-in middleware: CORS (preflight and simple requests), GZip, TrustedHost."""

from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.middleware.trustedhost import TrustedHostMiddleware


def make_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["https://front.example.com"],
        allow_credentials=True,
        allow_methods=["GET", "POST"],
        allow_headers=["X-Token"],
    )
    app.add_middleware(GZipMiddleware, minimum_size=500)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=["testserver", "*.example.com"])

    @app.get("/")
    async def main() -> dict[str, str]:
        return {"message": "Hello World"}

    @app.get("/big")
    async def big() -> dict[str, str]:
        return {"text": "lorem ipsum " * 200}

    return app


ORIGIN = "https://front.example.com"


def check(client: Any) -> None:
    simple = client.get("/", headers={"Origin": ORIGIN})
    assert simple.headers["access-control-allow-origin"] == ORIGIN
    assert simple.headers["access-control-allow-credentials"] == "true"
    preflight = client.options(
        "/",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "X-Token",
        },
    )
    assert preflight.status_code == 200 and preflight.text == "OK"
    assert preflight.headers["access-control-allow-methods"] == "GET, POST"
    denied = client.options(
        "/", headers={"Origin": "https://evil.example.org", "Access-Control-Request-Method": "GET"}
    )
    assert denied.status_code == 400
    big = client.get("/big", headers={"Accept-Encoding": "gzip"})
    assert big.headers["content-encoding"] == "gzip" and big.json()["text"].startswith("lorem")
    assert client.get("/", headers={"host": "api.example.com"}).status_code == 200
    bad_host = client.get("/", headers={"host": "attacker.org"})
    assert (bad_host.status_code, bad_host.text) == (400, "Invalid host header")
