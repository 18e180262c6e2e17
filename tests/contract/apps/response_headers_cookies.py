"""Response headers and cookies: a ``Response`` parameter, cookies set and read back."""

from typing import Annotated, Any

from fastapi import Cookie, FastAPI, Response
from fastapi.responses import JSONResponse


def make_app() -> FastAPI:
    app = FastAPI()

    @app.post("/login")
    def login(response: Response) -> dict[str, str]:
        response.set_cookie(key="session", value="fake-cookie-session-value", httponly=True)
        response.set_cookie(key="theme", value="dark")
        response.headers["X-Cat-Dog"] = "alone in the world"
        return {"message": "Come to the dark side, we have cookies"}

    @app.get("/whoami")
    def whoami(session: Annotated[str | None, Cookie()] = None) -> dict[str, Any]:
        return {"session": session}

    @app.post("/logout")
    def logout() -> JSONResponse:
        response = JSONResponse({"bye": True}, headers={"Content-Language": "en-US"})
        response.delete_cookie("session")
        return response

    return app


def check(client: Any) -> None:
    login = client.post("/login")
    assert login.headers["x-cat-dog"] == "alone in the world"
    assert len(login.headers.get_list("set-cookie")) == 2
    assert login.cookies["session"] == "fake-cookie-session-value"
    assert client.get("/whoami").json() == {"session": "fake-cookie-session-value"}
    logout = client.post("/logout")
    assert logout.headers["content-language"] == "en-US"
    assert client.get("/whoami").json() == {"session": None}
