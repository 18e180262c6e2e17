"""The worker listener's in-process side (``iii._memory_transport``): clients of this process
that connect to the listener's URL get an in-memory link instead of a socket.

:class:`MemoryListener` offers the URL once the listener serves and withdraws it when the engine
stops; each link becomes a :class:`~...core.memory.MemoryWorkerConnection`, handed to the core
as a socket's connection is (attach, read until the link ends, teardown).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from iii import _memory_transport as memory

from ...core.memory import MemoryWorkerConnection

if TYPE_CHECKING:
    from ...core.engine import EngineCore

__all__ = ["MemoryListener"]

logger = logging.getLogger("iii_asgi.engine")


class MemoryListener:
    """``MemoryListener(core)``: serves the core to in-process clients of one URL."""

    def __init__(self, core: EngineCore) -> None:
        self.core = core
        self.links: set[memory.Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._withdraw: Callable[[], None] | None = None

    def open(self, url: str) -> None:
        """Offer ``url`` to this process's clients (on the running loop). Logs and does nothing
        when another engine of this process offers it already."""
        try:
            self._withdraw = memory.serve(
                url, asyncio.get_running_loop(), self._accept, self.core.config.outbound_queue_size
            )
        except RuntimeError as exc:
            logger.warning("no in-process transport for %s: %s", url, exc)

    def withdraw(self) -> None:
        """Accept no more in-memory clients (connected ones stay until the engine closes them)."""
        if self._withdraw is not None:
            self._withdraw()
            self._withdraw = None

    async def close(self) -> None:
        """Withdraw, end every link and wait for their connections' teardown."""
        self.withdraw()
        for link in list(self.links):
            link.close()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _accept(self, link: memory.Link) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(link))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, link: memory.Link) -> None:
        core = self.core
        conn = MemoryWorkerConnection(link, queue_size=core.config.outbound_queue_size)
        self.links.add(link)
        try:
            await core.attach(conn)
            await conn.read(core.dispatch, core.bad_frame, core.invoker.complete)
        finally:
            self.links.discard(link)
            await core.teardown(conn)
            await conn.stop_writer()
