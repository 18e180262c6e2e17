"""Security: OAuth2 password flow with a Bearer token, scopes of a current-user dependency."""

from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, status
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm
from pydantic import BaseModel

USERS = {
    "johndoe": {"username": "johndoe", "password": "secret", "disabled": False},
    "alice": {"username": "alice", "password": "secret2", "disabled": True},
}
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="token")


class User(BaseModel):
    username: str
    disabled: bool = False


async def current_user(token: Annotated[str, Depends(oauth2_scheme)]) -> User:
    user = USERS.get(token)
    if user is None:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="Invalid authentication credentials",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return User(**user)


async def active_user(user: Annotated[User, Depends(current_user)]) -> User:
    if user.disabled:
        raise HTTPException(status_code=400, detail="Inactive user")
    return user


def make_app() -> FastAPI:
    app = FastAPI()

    @app.post("/token")
    async def login(form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> dict[str, str]:
        user = USERS.get(form.username)
        if not user or form.password != user["password"]:
            raise HTTPException(status_code=400, detail="Incorrect username or password")
        return {"access_token": form.username, "token_type": "bearer"}

    @app.get("/users/me")
    async def read_me(user: Annotated[User, Depends(active_user)]) -> User:
        return user

    return app


def check(client: Any) -> None:
    token = client.post("/token", data={"username": "johndoe", "password": "secret"}).json()
    assert token == {"access_token": "johndoe", "token_type": "bearer"}
    assert client.post("/token", data={"username": "johndoe", "password": "x"}).status_code == 400
    me = client.get("/users/me", headers={"Authorization": "Bearer johndoe"})
    assert me.json() == {"username": "johndoe", "disabled": False}
    anonymous = client.get("/users/me")
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    assert client.get("/users/me", headers={"Authorization": "Bearer nobody"}).status_code == 401
    inactive = client.get("/users/me", headers={"Authorization": "Bearer alice"})
    assert inactive.json() == {"detail": "Inactive user"}
    schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
    assert schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == "token"
