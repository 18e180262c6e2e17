"""Background tasks: added in the endpoint and in a dependency; they run after the response."""

from typing import Annotated, Any

from fastapi import BackgroundTasks, Depends, FastAPI

LOG: list[str] = []


def write_log(message: str) -> None:
    LOG.append(message)


async def write_log_async(message: str) -> None:
    LOG.append(f"async {message}")


def get_query(background_tasks: BackgroundTasks, q: str | None = None) -> str | None:
    if q:
        background_tasks.add_task(write_log, f"found query: {q}")
    return q


def make_app() -> FastAPI:
    app = FastAPI()

    @app.post("/send-notification/{email}")
    async def send_notification(
        email: str, background_tasks: BackgroundTasks, q: Annotated[str | None, Depends(get_query)]
    ) -> dict[str, str]:
        background_tasks.add_task(write_log, f"message to {email}")
        background_tasks.add_task(write_log_async, email)
        return {"message": "Notification sent in the background"}

    return app


def check(client: Any) -> None:
    LOG.clear()
    response = client.post("/send-notification/a@example.com?q=hi")
    assert response.json() == {"message": "Notification sent in the background"}
    # test clients return once the app is done, background tasks included
    assert LOG == ["found query: hi", "message to a@example.com", "async a@example.com"]
