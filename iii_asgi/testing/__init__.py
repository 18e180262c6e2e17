"""Testing a bridged app through the iii engine.

- :class:`TestClient`: a drop-in for Starlette's / FastAPI's ``TestClient`` whose requests go
  through an in-process engine and the bridge (the production code path);
- :class:`InProcessEngine`: the embedded engine on a loop of its own, to share between test
  clients and SDK clients;
- :class:`MockFunction`: a stand-in for another worker's function, recording its calls.

The pytest plugin (:mod:`iii_asgi.testing.plugin`, registered as a ``pytest11`` entry point)
offers the fixtures ``iii_engine``, ``iii_client``, ``iii_test_client`` and ``mock_function``.
See ``docs/testing.md``.
"""

from __future__ import annotations

from ._client import WEBSOCKET_ERROR, TestClient
from ._engine import InProcessEngine, engine_config
from ._mock import MockFunction

__all__ = [
    "WEBSOCKET_ERROR",
    "InProcessEngine",
    "MockFunction",
    "TestClient",
    "engine_config",
]
