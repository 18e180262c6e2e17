"""The ``iii-worker-manager`` worker (builtins.md §13, protocol.md §1, §8): the worker
listeners, and their in-process side for clients of this process (:mod:`.memory`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ...core.worker import BuiltinWorker, Listener
from .app import EngineApp, TelemetryEndpoint
from .listener import WorkerListener, handshake_protocol
from .memory import MemoryListener
from .wsprotocol import ws_protocol

if TYPE_CHECKING:
    from ...core.engine import EngineCore

__all__ = ["WorkerManager", "listener_name"]


def listener_name(index: int, instance: str | None) -> str:
    """``worker`` for the main listener (``index`` 0), ``worker#<instance>`` for a named further
    one (config entry ``iii-worker-manager#<instance>``), else ``worker#<index>``."""
    if index == 0:
        return "worker"
    return f"worker#{instance or index}"


class WorkerManager(BuiltinWorker):
    """Serves every worker listener of ``EngineConfig.listener_configs()`` (``/``, ``/otel``,
    ``/ws/channels/{id}``): the main one on ``host``:``port``, then each of
    ``worker_listeners``; each connection is handed to the core with its session (§8).

    A trusted listener (no RBAC, no middleware) is also offered in memory to this process's
    clients (:class:`~.memory.MemoryListener`); RBAC listeners authenticate every worker on
    their socket."""

    name = "iii-worker-manager"

    def __init__(self, core: EngineCore, telemetry: TelemetryEndpoint | None = None) -> None:
        self.core = core
        self.worker_listeners = [
            WorkerListener(core, config, listener_name(i, config.name))
            for i, config in enumerate(core.config.listener_configs())
        ]
        self.apps = [EngineApp(core, telemetry, wl) for wl in self.worker_listeners]
        #: The main listener's app.
        self.app = self.apps[0]
        self.memory = [MemoryListener(core) for wl in self.worker_listeners if wl.trusted]

    async def serving(self, urls: Mapping[str, str]) -> None:
        trusted = [wl for wl in self.worker_listeners if wl.trusted]
        for worker_listener, memory in zip(trusted, self.memory, strict=True):
            memory.open(urls[worker_listener.name])

    async def stop(self) -> None:
        for memory in self.memory:
            memory.withdraw()

    async def close(self) -> None:
        for memory in self.memory:
            await memory.close()

    def listeners(self) -> list[Listener]:
        c = self.core.config
        served = []
        for worker_listener, app in zip(self.worker_listeners, self.apps, strict=True):
            config = worker_listener.config
            options = {
                "http": handshake_protocol(worker_listener.handshake_timeout_s),
                "ws": ws_protocol(c.ws, self.core.frames),  # one write per loop turn; frame budget
                "ws_max_size": c.max_message_size,
                "ws_per_message_deflate": False,  # loopback: compression costs 10–23 %
                "ws_ping_interval": None,  # the real engine never pings; it answers (§1.7)
            }
            served.append(Listener(worker_listener.name, app, config.host, config.port, options))
        return served
