"""Security: HTTP Basic auth compared in constant time."""

import secrets
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, status
from fastapi.security import HTTPBasic, HTTPBasicCredentials

security = HTTPBasic()


def current_username(credentials: Annotated[HTTPBasicCredentials, Depends(security)]) -> str:
    good_user = secrets.compare_digest(credentials.username.encode(), b"stanleyjobson")
    good_pass = secrets.compare_digest(credentials.password.encode(), b"swordfish")
    if not (good_user and good_pass):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="Incorrect username or password",
            headers={"WWW-Authenticate": "Basic"},
        )
    return credentials.username


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/users/me")
    def read_current_user(username: Annotated[str, Depends(current_username)]) -> dict[str, str]:
        return {"username": username}

    return app


def check(client: Any) -> None:
    assert client.get("/users/me", auth=("stanleyjobson", "swordfish")).json() == {
        "username": "stanleyjobson"
    }
    wrong = client.get("/users/me", auth=("stanleyjobson", "nope"))
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Basic"
    none = client.get("/users/me")
    assert none.status_code == 401 and none.json() == {"detail": "Not authenticated"}
