"""The ``iii-worker-manager`` worker (builtins.md §13, protocol.md §1): the worker listener."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...core.worker import BuiltinWorker, Listener
from .app import EngineApp, TelemetryEndpoint
from .wsprotocol import ws_protocol

if TYPE_CHECKING:
    from ...core.engine import EngineCore

__all__ = ["WorkerManager"]


class WorkerManager(BuiltinWorker):
    """Serves the worker WebSocket (``/``, ``/otel``, ``/ws/channels/{id}``) on
    ``EngineConfig.host``:``port``; each connection is handed to the core."""

    name = "iii-worker-manager"

    def __init__(self, core: EngineCore, telemetry: TelemetryEndpoint | None = None) -> None:
        self.core = core
        self.app = EngineApp(core, telemetry)

    def listeners(self) -> list[Listener]:
        c = self.core.config
        options = {
            # websockets-sansio: one socket write per loop iteration, frames charged to the budget
            "ws": ws_protocol(c.ws, self.core.frames),
            "ws_max_size": c.max_message_size,
            "ws_per_message_deflate": False,  # loopback: compression costs 10–23 %
            "ws_ping_interval": None,  # the real engine never pings; it answers pings (§1.7)
        }
        return [Listener("worker", self.app, c.host, c.port, options)]
