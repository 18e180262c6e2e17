"""The contract suite: small FastAPI apps in the styles of FastAPI's tutorial
(``tests/contract/apps/``), each checked with ``fastapi.testclient.TestClient`` (straight into
the app) and with ``iii_asgi.testing.TestClient`` (every request through the engine's HTTP
trigger, the worker socket and the bridge): the same assertions pass both ways."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient as FastAPIClient

from iii_asgi.testing import InProcessEngine, TestClient
from tests.contract import apps

APPS = sorted(module.name for module in pkgutil.iter_modules(apps.__path__))


@pytest.fixture(scope="module")
def shared_engine() -> Iterator[InProcessEngine]:
    """One engine for the module: each app's bridge comes and goes on it."""
    with InProcessEngine() as engine:
        yield engine


def test_at_least_thirty_apps() -> None:
    assert len(APPS) >= 30, APPS


@pytest.mark.parametrize("through", ["fastapi", "engine"])
@pytest.mark.parametrize("name", APPS)
def test_app(name: str, through: str, shared_engine: InProcessEngine) -> None:
    module: Any = importlib.import_module(f"tests.contract.apps.{name}")
    app = module.make_app()
    options = getattr(module, "CLIENT_OPTIONS", {})
    if through == "fastapi":
        with FastAPIClient(app, **options) as client:
            module.check(client)
        return
    with TestClient(app, engine=shared_engine, **options) as engine_client:
        assert engine_client.bridge.ready and engine_client.bridge.routes
        module.check(engine_client)
        # the engine answered: a path no app route serves gets the engine's own 404
        missing = engine_client.get("/" + "/".join("nowhere" for _ in range(12)))
        assert missing.json() == {"error": {"code": "NOT_FOUND", "message": "Not Found"}}
