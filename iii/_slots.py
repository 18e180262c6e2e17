"""How many handlers this worker runs at once (``InitOptions.max_concurrent_handlers``).

A handler is *busy* while it runs, except while it waits for a call of its own
(``trigger()``): the result of that call arrives on the same socket, so a worker that stopped
reading because every handler waited for one would never see them. The connection stops reading
its socket while ``busy >= limit`` (:meth:`HandlerSlots.full`), so invocations wait in the
engine (which refuses more once its queue to this worker is full) instead of piling up here as
tasks. ``running`` counts every handler, busy or waiting; past ``SHED_FACTOR × limit`` a new
invocation is answered at once with ``WORKER_BACKPRESSURE`` instead of run.
"""

from __future__ import annotations

import asyncio
import contextvars

__all__ = ["SHED_FACTOR", "HandlerSlot", "HandlerSlots", "current_slot"]

#: ``running`` handlers (busy or waiting on their own calls) past which invocations are refused.
SHED_FACTOR = 4


class HandlerSlot:
    """One running handler's hold on its client's slots. :meth:`waiting` brackets a call the
    handler waits for; several at once (``asyncio.gather``) free the slot once."""

    __slots__ = ("slots", "waits")

    def __init__(self, slots: HandlerSlots) -> None:
        self.slots = slots
        self.waits = 0

    def wait_begins(self) -> None:
        self.waits += 1
        if self.waits == 1:
            self.slots.idle()

    def wait_ends(self) -> None:
        self.waits -= 1
        if self.waits == 0:
            self.slots.resume()


#: The slot of the handler running in this context (``None`` outside a handler).
current_slot: contextvars.ContextVar[HandlerSlot | None] = contextvars.ContextVar(
    "iii_handler_slot", default=None
)


class HandlerSlots:
    """Counts of one client's handlers; every method runs on the client's loop."""

    __slots__ = ("_waiter", "busy", "limit", "running")

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.busy = 0
        self.running = 0
        self._waiter: asyncio.Future[None] | None = None

    def start(self) -> None:
        """A handler starts (busy)."""
        self.busy += 1
        self.running += 1

    def finish(self) -> None:
        """A busy handler ended."""
        self.running -= 1
        self.idle()

    def idle(self) -> None:
        """A busy handler waits for a call of its own."""
        self.busy -= 1
        waiter = self._waiter
        if waiter is not None and self.busy < self.limit:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def resume(self) -> None:
        """A handler got its call's result and runs again."""
        self.busy += 1

    def full(self) -> bool:
        """True while the connection should not read: ``limit`` handlers are busy."""
        return self.busy >= self.limit

    def overloaded(self) -> bool:
        """True when a new invocation should be refused rather than run."""
        return self.running >= SHED_FACTOR * self.limit

    async def wait(self) -> None:
        """Return once fewer than ``limit`` handlers are busy."""
        while self.busy >= self.limit:
            waiter = self._waiter
            if waiter is None or waiter.done():
                waiter = self._waiter = asyncio.get_running_loop().create_future()
            await waiter
