"""The pytest plugin's fixtures (the ``pytest11`` entry point loads them for this suite too):
an engine, an SDK client on it, bridged test clients, and ``mock_function``."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI, HTTPException

from iii import IIIInvocationError
from iii_asgi import IIIClient


def checkout_app() -> FastAPI:
    app = FastAPI()

    @app.post("/checkout")
    async def checkout(order: dict[str, Any], client: IIIClient) -> dict[str, Any]:
        try:
            receipt = await client.trigger_async(
                {"function_id": "payments::charge", "payload": {"amount": order["amount"]}}
            )
        except IIIInvocationError as exc:
            raise HTTPException(status_code=402, detail=exc.message) from exc
        return {"paid": True, "receipt": receipt}

    return app


def test_mock_function_stands_in_for_another_worker(
    iii_test_client: Any, mock_function: Any
) -> None:
    charge = mock_function("payments::charge", return_value={"id": "ch_1"})
    client = iii_test_client(checkout_app())
    response = client.post("/checkout", json={"amount": 10})
    assert response.json() == {"paid": True, "receipt": {"id": "ch_1"}}
    charge.assert_called_once_with({"amount": 10})
    assert charge.call_count == 1 and charge.last_call == {"amount": 10}
    assert charge.callers[0]  # the app's worker, as the engine told


def test_side_effects(iii_test_client: Any, mock_function: Any) -> None:
    charge = mock_function(
        "payments::charge", side_effect=[{"id": "a"}, RuntimeError("card declined")]
    )
    client = iii_test_client(checkout_app())
    assert client.post("/checkout", json={"amount": 1}).json()["receipt"] == {"id": "a"}
    declined = client.post("/checkout", json={"amount": 2})
    assert declined.status_code == 402 and "card declined" in declined.json()["detail"]
    assert charge.calls == [{"amount": 1}, {"amount": 2}]
    charge.reset()
    charge.side_effect = lambda data: {"id": f"x{data['amount']}"}
    assert client.post("/checkout", json={"amount": 3}).json()["receipt"] == {"id": "x3"}


def test_engine_and_sdk_client_fixtures(iii_engine: Any, iii_client: Any) -> None:
    iii_client.register_function("math::double", lambda data: data * 2)
    assert iii_client.trigger({"function_id": "math::double", "payload": 21}) == 42
    assert iii_engine.url.startswith("ws://127.0.0.1:")


async def test_fixtures_work_in_async_tests(iii_client: Any, mock_function: Any) -> None:
    mock_function("inventory::reserve", return_value="reserved")
    result = await iii_client.trigger_async({"function_id": "inventory::reserve", "payload": {}})
    assert result == "reserved"


def test_last_call_without_calls_fails(mock_function: Any) -> None:
    unused = mock_function("audit::log")
    with pytest.raises(AssertionError, match="audit::log was not called"):
        _ = unused.last_call
