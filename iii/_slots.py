"""How many handlers this worker runs at once (``InitOptions.max_concurrent_handlers``).

A handler is *busy* while it runs, except while it waits for a call of its own
(``trigger()``): the result of that call arrives on the same socket, so it must never wait for
a slot. At most ``limit`` handlers are busy; further invocations wait in a backlog (frames, not
tasks). The worker tells the engine it can hold ``2 × limit`` invocations
(``engine::workers::register`` ``max_inflight_invocations``) and our engine refuses more with
``WORKER_BACKPRESSURE``, so the backlog stays under ``limit`` and the socket is always read: a
stop notice (the caller's timeout) reaches a waiting or running invocation at once. With an
engine that sends more, the connection stops reading while the backlog holds ``2 × limit``
frames, so that engine holds the rest.

``running`` counts every handler, busy or waiting; past ``SHED_FACTOR × limit`` a new
invocation is answered at once with ``WORKER_BACKPRESSURE`` instead of queued.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["SHED_FACTOR", "HandlerSlots"]

#: ``running`` handlers (busy or waiting on their own calls) past which invocations are refused.
SHED_FACTOR = 4

_void_keys = itertools.count()


class HandlerSlots:
    """One client's handler counts and backlog; every method runs on the client's loop.
    ``on_free()`` is called when a slot frees up (the owner starts the next backlog frame)."""

    __slots__ = ("_backlog", "_queued", "_reader", "busy", "limit", "on_free", "running")

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.busy = 0
        self.running = 0
        self.on_free: Callable[[], None] | None = None
        self._backlog: deque[Any] = deque()  # keys, in arrival order
        self._queued: dict[Any, Any] = {}  # key -> frame; a key gone from it was dropped
        self._reader: asyncio.Future[None] | None = None

    @property
    def capacity(self) -> int:
        """Invocations this worker can hold at once (busy handlers and backlog)."""
        return 2 * self.limit

    def admit(self, frame: Any) -> bool:
        """True when ``frame``'s handler may start now; otherwise it joins the backlog."""
        if self.busy < self.limit and not self._queued:
            return True
        key = frame.get("invocation_id") or next(_void_keys)
        self._backlog.append(key)
        self._queued[key] = frame
        return False

    def next(self) -> Any:
        """The next backlog frame whose handler may start now, or ``None``."""
        while self.busy < self.limit and self._backlog:
            frame = self._queued.pop(self._backlog.popleft(), None)
            if frame is not None:
                self._wake_reader()
                return frame
        if not self._queued:
            self._backlog.clear()  # only dropped keys were left
        return None

    def drop(self, invocation_id: str) -> bool:
        """Remove a waiting invocation (the engine stopped it); False if none waits."""
        if self._queued.pop(invocation_id, None) is None:
            return False
        self._wake_reader()
        return True

    def start(self) -> None:
        """A handler starts (busy)."""
        self.busy += 1
        self.running += 1

    def finish(self) -> None:
        """A busy handler ended."""
        self.running -= 1
        self.idle()

    def idle(self) -> None:
        """A busy handler waits for a call of its own: its slot is free meanwhile (each call
        counts: a handler waiting on several at once frees as many slots, which only lets a
        few more start; the engine still holds at most :attr:`capacity` invocations here)."""
        self.busy -= 1
        if self.on_free is not None and self._queued:
            self.on_free()

    def resume(self) -> None:
        """A handler got its call's result and runs again."""
        self.busy += 1

    def overloaded(self) -> bool:
        """True when a new invocation should be refused rather than queued."""
        return self.running >= SHED_FACTOR * self.limit

    def full(self) -> bool:
        """True while the connection should not read: the backlog holds ``2 × limit`` frames
        (more than the engine was told this worker can hold)."""
        return len(self._queued) >= 2 * self.limit

    async def wait(self) -> None:
        """Return once the backlog has room."""
        while len(self._queued) >= 2 * self.limit:
            reader = self._reader
            if reader is None or reader.done():
                reader = self._reader = asyncio.get_running_loop().create_future()
            await reader

    def _wake_reader(self) -> None:
        reader = self._reader
        if reader is not None and len(self._queued) < 2 * self.limit:
            self._reader = None
            if not reader.done():
                reader.set_result(None)
