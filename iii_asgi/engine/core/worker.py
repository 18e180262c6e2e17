"""The core's interface to built-in workers (the real engine's ``workers/`` seam).

A built-in worker (``iii-state``, ``iii-http``, …) is a :class:`BuiltinWorker`: the composition
module (:mod:`iii_asgi.engine.server`) constructs it with the core's narrow interface,
:class:`EngineServices`, and hands it to :meth:`EngineCore.add_worker
<iii_asgi.engine.core.engine.EngineCore.add_worker>`, which calls :meth:`BuiltinWorker.install`
(register the worker's functions and trigger types). The core then drives its lifecycle:
:meth:`~BuiltinWorker.start` after the core started, :meth:`~BuiltinWorker.stop` before worker
connections are closed (stop deliveries), :meth:`~BuiltinWorker.close` after every connection's
teardown (release clients and files). A worker that serves a port returns it from
:meth:`~BuiltinWorker.listeners`. The core never imports a worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..config.engine import EngineConfig
from ..types import ASGIApp

if TYPE_CHECKING:
    from .channels import ChannelStore
    from .connection import WorkerConnection
    from .invocation import Invoker
    from .ownership import Refusal
    from .registry import BuiltinHandler, FailedFunction, Registry
    from .tracing import EngineTracer
    from .triggers import Triggers

__all__ = ["BuiltinWorker", "EngineServices", "FunctionGuard", "FunctionPreparer", "Listener"]


class FunctionGuard(Protocol):
    """A worker's extra check on ``registerfunction`` (after the core's ownership rules,
    :mod:`.ownership`): the :class:`~.ownership.Refusal` that rejects it
    (``FUNCTION_NAMESPACE_CONFLICT``, protocol.md §2.6), or ``None``. Synchronous, so nothing
    changes between the check and the registration."""

    def __call__(
        self, conn: WorkerConnection, namespace: str, function_id: str
    ) -> Refusal | None: ...


class EngineServices(Protocol):
    """What a built-in worker may use of the core: the config, the registries, invocation and
    trigger routing, channels, the engine tracer, registration guards and background tasks."""

    config: EngineConfig
    registry: Registry
    invoker: Invoker
    triggers: Triggers
    channels: ChannelStore
    tracing: EngineTracer
    function_guards: list[FunctionGuard]

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Run ``coro`` in the background, keeping a reference; failures are logged."""


class FunctionPreparer(Protocol):
    """Turns a ``registerfunction.invocation`` (protocol.md §4.1) into the in-process handler
    that executes it, or a :class:`FailedFunction` saying why it cannot be registered."""

    async def prepare(
        self, function_id: str, namespace: str, invocation: Any
    ) -> BuiltinHandler | FailedFunction: ...


@dataclass
class Listener:
    """One port a worker serves: an ASGI ``app`` on ``host``:``port`` (0 or ``None``: any free
    port), served by uvicorn with ``options`` (``uvicorn.Config`` keyword arguments). When a
    ``required`` listener cannot bind its port the engine stops; any other is logged and
    skipped (``bound_port`` stays ``None``)."""

    name: str
    app: ASGIApp
    host: str
    port: int | None
    options: dict[str, Any] = field(default_factory=dict)
    required: bool = True
    #: Set to the bound port once serving.
    bound_port: int | None = None
    #: Set once serving (the uvicorn server and its task), for the server module.
    server: Any = None
    task: asyncio.Task[None] | None = None


class BuiltinWorker:
    """Base of a built-in worker; every hook is a no-op by default."""

    #: The worker's name in ``config.yaml`` (builtins.md §13), e.g. ``"iii-state"``.
    name: str = ""

    def install(self) -> None:
        """Register the worker's functions and trigger types on the core (called once)."""

    async def start(self) -> None:
        """Start background work (called after the core started, in installation order)."""

    async def serving(self, urls: Mapping[str, str]) -> None:
        """Called once every listener of the engine serves, with their URLs by listener name
        (``{"worker": "ws://127.0.0.1:49134", "http": ...}``), e.g. to start processes that
        connect to the engine."""

    async def stop(self) -> None:
        """Stop background work and deliveries (called before connections are closed, in
        reverse installation order)."""

    async def close(self) -> None:
        """Release clients, files and sockets (called after every connection's teardown)."""

    def listeners(self) -> list[Listener]:
        """The ports this worker serves (none by default)."""
        return []
