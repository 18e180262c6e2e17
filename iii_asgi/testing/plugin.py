"""The pytest plugin of ``iii_asgi.testing`` (entry point ``pytest11``: loaded by pytest when
iii-asgi is installed). Fixtures, each function-scoped:

- ``iii_engine``: a started :class:`~iii_asgi.testing.InProcessEngine` (``.url``,
  ``.http_url``);
- ``iii_client``: an :class:`iii.III` worker connected to it (its own loop thread: call
  ``trigger`` from a sync test, ``await trigger_async`` from an async one);
- ``iii_test_client``: ``iii_test_client(app, **TestClient options)`` returns a started
  (``with``-entered) :class:`~iii_asgi.testing.TestClient` on ``iii_engine``, closed after the
  test;
- ``mock_function``: ``mock_function("payments::charge", return_value=..., side_effect=...)``
  serves that id from ``iii_client`` for the test and returns the
  :class:`~iii_asgi.testing.MockFunction` recording its calls.

Everything is imported when a fixture is used, so the plugin costs nothing otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from iii import III

    from ._client import TestClient
    from ._engine import InProcessEngine
    from ._mock import MockFunction


@pytest.fixture
def iii_engine() -> Iterator[InProcessEngine]:
    """An in-process iii engine on ephemeral ports, stopped after the test."""
    from ._engine import InProcessEngine

    with InProcessEngine() as engine:
        yield engine


@pytest.fixture
def iii_client(iii_engine: InProcessEngine) -> Iterator[III]:
    """An SDK worker connected to ``iii_engine``, shut down after the test."""
    import iii

    # OpenTelemetry is process-wide: exporting to a per-test engine would outlive it.
    client = iii.register_worker(iii_engine.url, iii.InitOptions(otel={"enabled": False}))
    try:
        yield client
    finally:
        client.shutdown()


@pytest.fixture
def iii_test_client(iii_engine: InProcessEngine) -> Iterator[Callable[..., TestClient]]:
    """``iii_test_client(app, **options)``: a started ``TestClient`` on ``iii_engine``."""
    from ._client import TestClient

    started: list[TestClient] = []

    def make(app: Any, **options: Any) -> TestClient:
        client = TestClient(app, engine=iii_engine, **options)
        client.__enter__()
        started.append(client)
        return client

    try:
        yield make
    finally:
        for client in reversed(started):
            client.__exit__(None, None, None)


@pytest.fixture
def mock_function(iii_client: III) -> Iterator[Callable[..., MockFunction]]:
    """``mock_function(function_id, return_value=None, *, side_effect=None)``: a stand-in for
    another worker's function, served for the test (see ``MockFunction``)."""
    from ._mock import MockFunction

    mocks: list[MockFunction] = []

    def make(function_id: str, return_value: Any = None, **options: Any) -> MockFunction:
        mock = MockFunction(iii_client, function_id, return_value, **options)
        mocks.append(mock)
        return mock

    try:
        yield make
    finally:
        for mock in mocks:
            mock.unregister()
