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

    ``busy`` / ``running`` count handlers as above; ``waiting`` maps the backlog's keys
    (invocation ids) to their frames; ``pause_at`` (``2 × limit``) and ``shed_at``
    (``SHED_FACTOR × limit``) are the thresholds, kept as attributes so that the per-frame
    checks of the client stay attribute reads. ``on_free()`` is called when a slot frees up
    while frames wait (the owner starts the next one).
    """

    __slots__ = (
        "_order",
        "_reader",
        "busy",
        "limit",
        "on_free",
        "pause_at",
        "running",
        "shed_at",
        "waiting",
    )

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.pause_at = 2 * self.limit
        self.shed_at = SHED_FACTOR * self.limit
        self.busy = 0
        self.running = 0
        self.on_free: Callable[[], None] | None = None
        self.waiting: dict[Any, Any] = {}  # key -> frame; a key gone from it was dropped
        self._order: deque[Any] = deque()  # keys, in arrival order
        self._reader: asyncio.Future[None] | None = None

    @property
    def capacity(self) -> int:
        """Invocations this worker can hold at once (busy handlers and backlog)."""
        return 2 * self.limit

    def admit(self, frame: Any) -> bool:
        """True when ``frame``'s handler may start now; otherwise it joins the backlog."""
        if self.busy < self.limit and not self.waiting:
            return True
        key = frame.get("invocation_id") or next(_void_keys)
        self._order.append(key)
        self.waiting[key] = frame
        return False

    def next(self) -> Any:
        """The next backlog frame whose handler may start now, or ``None``."""
        while self.busy < self.limit and self._order:
            frame = self.waiting.pop(self._order.popleft(), None)
            if frame is not None:
                self._wake_reader()
                return frame
        if not self.waiting:
            self._order.clear()  # only dropped keys were left
        return None

    def drop(self, invocation_id: str) -> bool:
        """Remove a waiting invocation (the engine stopped it); False if none waits."""
        if self.waiting.pop(invocation_id, None) is None:
            return False
        self._wake_reader()
        return True

    def idle(self) -> None:
        """A busy handler waits for a call of its own: its slot is free meanwhile (each call
        counts: a handler waiting on several at once frees as many slots, which only lets a
        few more start; the engine still holds at most :attr:`capacity` invocations here)."""
        self.busy -= 1
        if self.on_free is not None and self.waiting:
            self.on_free()

    def resume(self) -> None:
        """A handler got its call's result and runs again."""
        self.busy += 1

    def full(self) -> bool:
        """True while the connection should not read: the backlog holds ``pause_at`` frames
        (more than the engine was told this worker can hold)."""
        return len(self.waiting) >= self.pause_at

    async def wait(self) -> None:
        """Return once the backlog has room."""
        while len(self.waiting) >= self.pause_at:
            reader = self._reader
            if reader is None or reader.done():
                reader = self._reader = asyncio.get_running_loop().create_future()
            await reader

    def _wake_reader(self) -> None:
        reader = self._reader
        if reader is not None and len(self.waiting) < self.pause_at:
            self._reader = None
            if not reader.done():
                reader.set_result(None)
