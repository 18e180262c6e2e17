"""Extra data types: UUID, datetime, timedelta, time, Decimal."""

from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from fastapi import Body, FastAPI


def make_app() -> FastAPI:
    app = FastAPI()

    @app.put("/items/{item_id}")
    async def read_items(
        item_id: UUID,
        start_datetime: Annotated[datetime, Body()],
        end_datetime: Annotated[datetime, Body()],
        process_after: Annotated[timedelta, Body()],
        repeat_at: Annotated[time | None, Body()] = None,
        amount: Annotated[Decimal, Body()] = Decimal("0"),
    ) -> dict[str, Any]:
        start_process = start_datetime + process_after
        return {
            "item_id": item_id,
            "start_process": start_process,
            "duration": end_datetime - start_process,
            "repeat_at": repeat_at,
            "amount": amount * 2,
        }

    return app


def check(client: Any) -> None:
    item_id = "c0a8b3f2-7d0e-4a5c-9e3b-1f2d3c4b5a69"
    response = client.put(
        f"/items/{item_id}",
        json={
            "start_datetime": "2024-01-01T10:00:00",
            "end_datetime": "2024-01-02T10:00:00",
            "process_after": 3600,
            "repeat_at": "08:30:00",
            "amount": "1.25",
        },
    )
    assert response.json() == {
        "item_id": item_id,
        "start_process": "2024-01-01T11:00:00",
        "duration": "PT23H",
        "repeat_at": "08:30:00",
        "amount": "2.50",
    }
    assert client.put("/items/not-a-uuid", json={}).status_code == 422
